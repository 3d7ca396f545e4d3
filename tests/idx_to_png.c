/* idx_to_png.c - writes real MNIST digits out as PNG pictures for tests/cli_predict.sh, with
 * digit_image.c's writer: images FIRST..FIRST+COUNT of an IDX set become DIR/NNNNN-L.png
 * (NNNNN the index, L the label). --invert writes black digits on white; --scale N enlarges
 * each digit N times (nearest neighbour) and adds a margin of N*4 pixels on every side, so
 * that predict has to refit it to 28x28.
 * Usage: idx_to_png [--invert] [--scale N] IMAGES LABELS FIRST COUNT DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digit_image.h"
#include "mnist.h"

int main(int argc, char **argv)
{
    int invert = 0, scale = 1, a = 1;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
        if (strcmp(argv[a], "--invert") == 0)
            invert = 1;
        else if (strcmp(argv[a], "--scale") == 0 && a + 1 < argc)
            scale = atoi(argv[++a]);
        else
            break;
    }
    if (argc - a != 5 || scale < 1 || scale > 100) {
        fprintf(stderr, "usage: idx_to_png [--invert] [--scale N] IMAGES LABELS FIRST COUNT DIR\n");
        return 2;
    }
    mnist_set set;
    lo_error err;
    if (mnist_load(&set, argv[a], argv[a + 1], &err) < 0) {
        fprintf(stderr, "idx_to_png: %s\n", err.msg);
        return 2;
    }
    int first = atoi(argv[a + 2]), count = atoi(argv[a + 3]), rc = 0;
    int margin = 4 * scale, w = set.cols * scale + 2 * margin, h = set.rows * scale + 2 * margin;
    uint8_t *px = malloc((size_t)w * h);
    if (!px || first < 0 || count < 0 || first + count > set.count) {
        fprintf(stderr, "idx_to_png: images %d..%d are not in the set\n", first, first + count);
        return 2;
    }
    for (int i = first; i < first + count && rc == 0; i++) {
        const uint8_t *src = set.pixels + (size_t)i * set.rows * set.cols;
        memset(px, 0, (size_t)w * h);
        for (int y = 0; y < set.rows * scale; y++)
            for (int x = 0; x < set.cols * scale; x++)
                px[(size_t)(y + margin) * w + x + margin] = src[(y / scale) * set.cols + x / scale];
        for (size_t k = 0; invert && k < (size_t)w * h; k++)
            px[k] = (uint8_t)(255 - px[k]);
        char path[4096];
        snprintf(path, sizeof path, "%s/%05d-%d.png", argv[a + 4], i, set.labels[i]);
        if (digit_write_png(path, px, w, h, &err) < 0) {
            fprintf(stderr, "idx_to_png: %s\n", err.msg);
            rc = 2;
        }
    }
    free(px);
    mnist_free(&set);
    return rc;
}
