/* mnist.h - IDX image and label files (MNIST, Fashion-MNIST), raw or gzip-compressed. */
#ifndef MNIST_H
#define MNIST_H

#include <stdint.h>

#include "lo_error.h"

/* A labelled set of 8-bit grayscale images, kept as bytes. */
typedef struct mnist_set {
    int count;       /* number of images (= labels) */
    int rows, cols;  /* image size, e.g. 28 x 28 */
    uint8_t *pixels; /* count x rows x cols, row-major */
    uint8_t *labels; /* count, each in 0..9 */
} mnist_set;

/* Loads an IDX3 image file (magic 0x00000803) and an IDX1 label file (magic 0x00000801).
 * Either file may be raw or one gzip member (detected by content, not name). Checks the
 * magic, that the counts agree and that each file holds exactly what its header promises
 * (no truncation, no trailing bytes, nothing after the gzip stream) before reading either
 * body, then that every label is in 0..9. Memory: the data the headers promise, allocated
 * only once the file size (raw) or the gzip trailer (gzip) agrees with it; at most 2 GiB of
 * pixels. On error sets err to "<file>: <what is wrong>", leaves *set empty and returns -1;
 * returns 0 on success. Both files must be regular files (regular_file.h). */
int mnist_load(mnist_set *set, const char *images_path, const char *labels_path,
               lo_error *err);

/* mnist_load for an image file without labels (predict --idx): every label is 0. */
int mnist_load_images(mnist_set *set, const char *images_path, lo_error *err);

/* Frees the set's memory; safe on an empty set. */
void mnist_free(mnist_set *set);

#endif
