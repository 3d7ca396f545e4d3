/* dataset.c - per-batch padding and normalisation of byte images. */
#include "dataset.h"

#include <math.h>
#include <string.h>

int dataset_load(const data_config *d, mnist_set *train, mnist_set *test, lo_error *err)
{
    *test = (mnist_set){0};
    int rc = mnist_load(train, d->train_images, d->train_labels, err);
    if (rc == 0)
        rc = mnist_load(test, d->test_images, d->test_labels, err);
    if (rc == 0 && (train->rows != test->rows || train->cols != test->cols))
        rc = lo_fail(err, "%s: images are %dx%d but the training images are %dx%d",
                     d->test_images, test->rows, test->cols, train->rows, train->cols);
    if (rc < 0) {
        mnist_free(train);
        mnist_free(test);
    }
    return rc;
}

shape3 dataset_input_shape(const mnist_set *set, int pad)
{
    shape3 s = {1, set->rows + 2 * pad, set->cols + 2 * pad};
    return s;
}

data_norm dataset_norm(const mnist_set *set, int pad, norm_kind kind)
{
    data_norm norm = {pad, 1.0f / 255.0f, 0.0f};
    if (kind == NORM_SCALE01)
        return norm;
    /* Histogram of byte values, padding counted as zeros: exact and order-independent. */
    double count[256] = {0};
    size_t pixels = (size_t)set->count * (size_t)set->rows * (size_t)set->cols;
    for (size_t i = 0; i < pixels; i++)
        count[set->pixels[i]] += 1.0;
    shape3 in = dataset_input_shape(set, pad);
    count[0] += (double)set->count * ((double)in.h * in.w - (double)set->rows * set->cols);
    int lo = 0, hi = 255;
    while (lo < 255 && count[lo] == 0.0)
        lo++;
    while (hi > lo && count[hi] == 0.0)
        hi--;
    double range = hi > lo ? hi - lo : 1.0, total = 0.0, sum = 0.0, sum_sq = 0.0;
    for (int v = 0; v < 256; v++) {
        double x = (v - lo) / range;
        total += count[v];
        sum += count[v] * x;
        sum_sq += count[v] * x * x;
    }
    double mean = sum / total;
    double std = sqrt(fmax(sum_sq / total - mean * mean, 0.0));
    if (std == 0.0)
        std = 1.0;
    norm.scale = (float)(1.0 / (range * std));
    norm.offset = (float)((-lo / range - mean) / std);
    return norm;
}

void dataset_fill(const mnist_set *set, const data_norm *norm, const uint32_t *idx,
                  uint32_t first, int B, float *x, uint8_t *labels)
{
    int pad = norm->pad, rows = set->rows, cols = set->cols;
    int H = rows + 2 * pad, W = cols + 2 * pad;
    float background = norm->offset; /* byte 0 */
    for (int b = 0; b < B; b++) {
        uint32_t s = idx ? idx[b] : first + (uint32_t)b;
        const uint8_t *src = set->pixels + (size_t)s * rows * cols;
        float *dst = x + (size_t)b * H * W;
        for (int i = 0; i < H * W; i++)
            dst[i] = background;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                dst[(r + pad) * W + c + pad] = src[r * cols + c] * norm->scale + norm->offset;
        labels[b] = set->labels[s];
    }
}
