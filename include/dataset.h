/* dataset.h - turns a set of byte images into network input, one batch at a time: padding
 * and normalisation happen per batch, so only the bytes are held in memory. */
#ifndef DATASET_H
#define DATASET_H

#include <stdint.h>

#include "config.h"
#include "layer.h"
#include "mnist.h"

/* value = byte * scale + offset; padding pixels are byte 0. */
typedef struct data_norm {
    int pad;
    float scale, offset;
} data_norm;

/* Loads the training and the test set that d names (mnist_load) and checks that their images
 * have one size (the network's input): what `train` and `check` both read. Returns 0, or -1
 * with err naming the file (both sets then empty). */
int dataset_load(const data_config *d, mnist_set *train, mnist_set *test, lo_error *err);

/* Per-sample network input for images of this set with this padding: 1 x (rows+2p) x (cols+2p). */
shape3 dataset_input_shape(const mnist_set *set, int pad);

/* Computes the normalisation of a set. NORM_SCALE01: byte / 255. NORM_STANDARDIZE (the seed's):
 * min-max to [0, 1] over the padded set, then subtract the mean and divide by the standard
 * deviation of all padded pixels of this set. */
data_norm dataset_norm(const mnist_set *set, int pad, norm_kind kind);

/* Fills x (B x 1 x H x W with H, W the padded size) and labels (B) with the samples
 * idx[0..B) of set (idx NULL: samples first..first+B). */
void dataset_fill(const mnist_set *set, const data_norm *norm, const uint32_t *idx,
                  uint32_t first, int B, float *x, uint8_t *labels);

#endif
