/* make_idx.c - writes a small synthetic, learnable digit set as IDX files, for tests that
 * must not depend on the real MNIST: each class k is a bright 6x6 square whose position
 * depends on k, plus deterministic noise.
 * Usage: make_idx DIR COUNT_TRAIN COUNT_TEST [SEED] -> DIR/{train,test}-{images,labels}.idx */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static void put_be32(FILE *f, unsigned v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static int write_set(const char *dir, const char *which, int count, rng *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-images.idx", dir, which);
    FILE *img = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/%s-labels.idx", dir, which);
    FILE *lab = fopen(path, "wb");
    if (!img || !lab)
        return -1;
    put_be32(img, 0x803);
    put_be32(img, (unsigned)count);
    put_be32(img, 28);
    put_be32(img, 28);
    put_be32(lab, 0x801);
    put_be32(lab, (unsigned)count);
    for (int i = 0; i < count; i++) {
        unsigned char px[28 * 28], label = (unsigned char)rng_below(r, 10);
        int top = 2 + 5 * (label / 5) + (int)rng_below(r, 3);
        int left = 1 + 5 * (label % 5) + (int)rng_below(r, 2);
        for (int k = 0; k < 28 * 28; k++)
            px[k] = (unsigned char)rng_below(r, 40);
        for (int y = top; y < top + 6 && y < 28; y++)
            for (int x = left; x < left + 6 && x < 28; x++)
                px[y * 28 + x] = (unsigned char)(200 + rng_below(r, 56));
        fwrite(px, 1, sizeof px, img);
        fwrite(&label, 1, 1, lab);
    }
    return (fclose(img) | fclose(lab)) ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: make_idx DIR COUNT_TRAIN COUNT_TEST [SEED]\n");
        return 2;
    }
    rng r;
    rng_seed(&r, argc > 4 ? strtoull(argv[4], NULL, 10) : 7);
    if (write_set(argv[1], "train", atoi(argv[2]), &r) < 0 ||
        write_set(argv[1], "test", atoi(argv[3]), &r) < 0) {
        fprintf(stderr, "make_idx: cannot write into %s\n", argv[1]);
        return 1;
    }
    return 0;
}
