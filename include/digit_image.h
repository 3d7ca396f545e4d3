/* digit_image.h - single digit images for `predict`: 8-bit grayscale PNG (libpng) and PGM
 * files, and the MNIST preprocessing that fits an arbitrary digit picture to the 28x28 field
 * the network was trained on. */
#ifndef DIGIT_IMAGE_H
#define DIGIT_IMAGE_H

#include <stdint.h>

#include "lo_error.h"

#define DIGIT_MAX_SIDE 16384 /* wider or taller images are refused before allocating */
#define DIGIT_SIDE 28        /* the MNIST field: DIGIT_SIDE x DIGIT_SIDE bytes */
#define DIGIT_BOX 20         /* the digit's bounding box is scaled to fit DIGIT_BOX^2 */

/* An 8-bit grayscale image: 0 black, 255 white. */
typedef struct digit_image {
    int width, height;
    uint8_t *pixels; /* height x width, row-major */
} digit_image;

/* Reads a PNG (any colour type and bit depth) or PGM (P5 binary or P2 ASCII, maxval up to
 * 65535) file, chosen by its first bytes, into *img as 8-bit gray. Colour becomes luminance,
 * 16-bit and PGM samples are scaled to 0..255, and PNG transparency is composited over the
 * gray level `background` (0..255). Returns 0, or -1 with err "<path>: <what is wrong>" and
 * *img empty. */
int digit_read(digit_image *img, const char *path, int background, lo_error *err);

/* Writes pixels (height x width bytes, row-major) as an 8-bit grayscale PNG at path,
 * atomically (atomic_file.h): a failed write leaves a previous file at path as it was.
 * Returns 0, or -1 with err "<path>: <what is wrong>". */
int digit_write_png(const char *path, const uint8_t *pixels, int width, int height,
                    lo_error *err);

/* Frees the image's pixels and empties it; safe on an empty image. */
void digit_free(digit_image *img);

/* MNIST's preprocessing of a digit picture: with invert set the picture is a dark digit on a
 * light background and is inverted first, so that ink is bright. The background level (the
 * median of the border pixels) becomes 0 and the brightest ink 255; the bounding box of the
 * ink (pixels above a tenth of that range) is scaled, aspect ratio kept, so that its longer
 * side is DIGIT_BOX pixels (area averaging when shrinking, bilinear when enlarging) and placed
 * in a DIGIT_SIDE x DIGIT_SIDE field so that its centre of mass lands on (14, 14) (pixel
 * index coordinates, rounded to whole pixels; what falls outside is clipped). Writes
 * DIGIT_SIDE^2 bytes to out. Returns 0, or -1 with err "no digit found ..." (no prefix). */
int digit_to_mnist(const digit_image *img, int invert, uint8_t *out, lo_error *err);

#endif
