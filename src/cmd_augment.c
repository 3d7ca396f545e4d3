/* cmd_augment.c - `lenet-omp augment [-o DIR] CONFIG`: a PNG sheet of the first 64 training
 * images as data.augment distorts them in epoch 1 (the same draws training makes), 8 x 8, each
 * on its padded canvas, shown twice its size; to look at the distortions before training. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "cli.h"
#include "digit_image.h"
#include "mnist.h"
#include "run_dir.h"

#define SHEET_SIDE 8 /* digits per row and column */
#define ZOOM 2       /* pixels per canvas pixel */
#define GAP 2        /* canvas pixels between digits */

int cmd_augment(const cli_options *o)
{
    run_config cfg;
    mnist_set train = {0};
    lo_error err;
    char path[CONFIG_PATH_MAX + 32];
    if (o->n_operands != 1) {
        fprintf(stderr, "lenet-omp: expected one CONFIG (try --help)\n");
        return EXIT_BAD_INPUT;
    }
    if (config_load_file(&cfg, o->operands[0], o->overrides, o->n_overrides, &err) < 0)
        return cli_fail(&err);
    const int pad = cfg.data.padding;
    int rc = mnist_load(&train, cfg.data.train_images, cfg.data.train_labels, &err);
    const int H = train.rows + 2 * pad, W = train.cols + 2 * pad;
    if (rc == 0 && (H > 512 || W > 512))
        rc = lo_fail(&err, "%s: images of %dx%d are too large for a sheet", cfg.data.train_images,
                     H, W);
    if (rc == 0)
        rc = run_dir_create(cfg.output_dir, &err);
    const int n = rc == 0 && train.count < SHEET_SIDE * SHEET_SIDE ? train.count
                                                                     : SHEET_SIDE * SHEET_SIDE;
    const int sw = ZOOM * (SHEET_SIDE * (W + GAP) + GAP), sh = ZOOM * (SHEET_SIDE * (H + GAP) + GAP);
    uint8_t *sheet = rc == 0 ? calloc((size_t)sw * (size_t)sh, 1) : NULL;
    float *canvas = rc == 0 ? malloc((size_t)H * W * sizeof *canvas) : NULL;
    float *work = rc == 0 ? malloc(augment_work_floats(H, W) * sizeof *work) : NULL;
    if (rc == 0 && (!sheet || !canvas || !work))
        rc = lo_fail(&err, "out of memory");
    for (int k = 0; rc == 0 && k < n; k++) {
        augment_image(&train, (uint32_t)k, pad, &cfg.data.augment, cfg.seed, 1, canvas, work);
        const int x0 = ZOOM * (GAP + (k % SHEET_SIDE) * (W + GAP));
        const int y0 = ZOOM * (GAP + (k / SHEET_SIDE) * (H + GAP));
        for (int y = 0; y < ZOOM * H; y++)
            for (int x = 0; x < ZOOM * W; x++) {
                const float v = canvas[(y / ZOOM) * W + x / ZOOM];
                sheet[(size_t)(y0 + y) * sw + x0 + x] = (uint8_t)lrintf(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
    snprintf(path, sizeof path, "%s/augment.png", cfg.output_dir);
    if (rc == 0)
        rc = digit_write_png(path, sheet, sw, sh, &err);
    if (rc == 0)
        printf("%s: the first %d training images of %s as epoch 1 distorts them%s\n", path, n,
               cfg.data.train_images,
               config_augments(&cfg) ? "" : " (data.augment is not set: undistorted)");
    free(sheet);
    free(canvas);
    free(work);
    mnist_free(&train);
    config_free(&cfg);
    return rc < 0 ? cli_fail(&err) : 0;
}
