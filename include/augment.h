/* augment.h - random distortions of training images (data.augment): translation, rotation,
 * scaling (one affine map about the image centre) and the elastic distortion of Simard,
 * Steinkraus and Platt (2003): a random displacement field, uniform in [-1, 1] per pixel,
 * smoothed by a Gaussian of standard deviation elastic_sigma and scaled by elastic_alpha. The
 * distorted image is sampled bilinearly from the original on the padded canvas (the padding
 * and anything outside the image are background, byte 0).
 *
 * Each image's draw comes from its own stream, keyed by (seed, epoch, its index in the set):
 * a pure function of those numbers, whatever thread fills it and in whatever order, so
 * training is the same for any thread count and a resumed run replays it. */
#ifndef AUGMENT_H
#define AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "mnist.h"

/* Floats of work space augment_image needs for an H x W canvas. */
size_t augment_work_floats(int H, int W);

/* Image `index` of set, distorted by its draw for (seed, epoch), on the canvas padded by pad:
 * out (H x W, H = rows + 2 pad, W = cols + 2 pad) in byte units (0..255, fractional).
 * work: augment_work_floats(H, W) floats. */
void augment_image(const mnist_set *set, uint32_t index, int pad, const augment_config *aug,
                   uint64_t seed, int epoch, float *out, float *work);

/* dataset_fill with every image distorted: x (B x 1 x H x W) and labels (B) from samples
 * idx[0..B) of set, each normalised by norm after its distortion. Returns 0, or -1 when out
 * of memory for the work space. */
int augment_fill(const mnist_set *set, const data_norm *norm, const augment_config *aug,
                 uint64_t seed, int epoch, const uint32_t *idx, int B, float *x,
                 uint8_t *labels);

#endif
