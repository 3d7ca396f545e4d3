/* fuzz_idx.c - libFuzzer harness: mnist_load on an image file and a label file, raw or gzip.
 * Input: a 4-byte little-endian length L, then the image file (min(L, rest) bytes), then the
 * label file (what remains). Both are written to memfds and loaded by path. A refused pair
 * may have cost only what fuzz_check_refusal_memory allows (issue 12, class 3). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mnist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file images, labels;
    if (!images.path[0]) {
        fuzz_file_open(&images, "images");
        fuzz_file_open(&labels, "labels");
    }
    if (size < 4)
        return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
                 (size_t)data[3] << 24;
    data += 4;
    size -= 4;
    if (len > size)
        len = size;
    fuzz_file_set(&images, data, len);
    fuzz_file_set(&labels, data + len, size - len);

    mnist_set set;
    lo_error err = {{0}};
    fuzz_mem_reset();
    if (mnist_load(&set, images.path, labels.path, &err) != 0) {
        if (!err.msg[0] || set.pixels || set.labels || set.count)
            abort();
        fuzz_check_refusal_memory(size, "mnist_load");
        return 0;
    }
    if (set.count < 1 || set.rows < 1 || set.cols < 1 || !set.pixels || !set.labels)
        abort();
    /* Touch every byte (ASan checks the sizes) and the label range. */
    unsigned sum = 0;
    size_t total = (size_t)set.count * (size_t)set.rows * (size_t)set.cols;
    for (size_t i = 0; i < total; i++)
        sum += set.pixels[i];
    for (int i = 0; i < set.count; i++)
        if (set.labels[i] > 9)
            abort();
    (void)sum;
    mnist_free(&set);
    return 0;
}
