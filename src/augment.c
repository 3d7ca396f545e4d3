/* augment.c - random translation, rotation, scaling and elastic distortion of training
 * images, per image from a stream keyed by (seed, epoch, index) (augment.h). */
#include "augment.h"

#include <math.h>
#include <stdlib.h>

#include "rng.h"

/* Separates augmentation's streams from the other users of the run's seed. */
#define AUGMENT_DOMAIN 0x6175676d656e7421ull /* "augment!" */

/* Gaussian taps beyond this many standard deviations are dropped. */
#define GAUSS_RADIUS 3.0

size_t augment_work_floats(int H, int W)
{
    const int side = H > W ? H : W;
    return 3 * (size_t)H * (size_t)W + 2 * (size_t)side + 1;
}

/* Byte (r, c) of image `src` (rows x cols) as a float, 0 outside. */
static float pixel(const uint8_t *src, int rows, int cols, int r, int c)
{
    return r >= 0 && r < rows && c >= 0 && c < cols ? (float)src[r * cols + c] : 0.0f;
}

/* Bilinear sample of src at (y, x) in image coordinates (pixel centres at integers). */
static float bilinear(const uint8_t *src, int rows, int cols, double y, double x)
{
    if (!(y > -1.0 && y < rows && x > -1.0 && x < cols)) /* also NaN */
        return 0.0f;
    const double fy = floor(y), fx = floor(x);
    const int r = (int)fy, c = (int)fx;
    const float wy = (float)(y - fy), wx = (float)(x - fx);
    const float top = pixel(src, rows, cols, r, c) +
                      wx * (pixel(src, rows, cols, r, c + 1) - pixel(src, rows, cols, r, c));
    const float bottom =
        pixel(src, rows, cols, r + 1, c) +
        wx * (pixel(src, rows, cols, r + 1, c + 1) - pixel(src, rows, cols, r + 1, c));
    return top + wy * (bottom - top);
}

/* f (H x W) smoothed by the normalised Gaussian taps g[-R..R] (g points at the centre), rows
 * then columns, zero beyond the edges; tmp: H x W. Each output adds its taps in k order; the
 * loops run along x, so they vectorise. */
static void smooth(float *f, float *tmp, int H, int W, const float *g, int R)
{
    for (int y = 0; y < H; y++) {
        const float *row = f + (size_t)y * W;
        float *acc = tmp + (size_t)y * W;
        for (int x = 0; x < W; x++)
            acc[x] = 0.0f;
        for (int k = -R; k <= R; k++) {
            const int x0 = k < 0 ? -k : 0, x1 = k > 0 ? W - k : W;
            for (int x = x0; x < x1; x++)
                acc[x] += g[k] * row[x + k];
        }
    }
    for (int y = 0; y < H; y++) {
        float *acc = f + (size_t)y * W;
        for (int x = 0; x < W; x++)
            acc[x] = 0.0f;
        for (int k = -R; k <= R; k++) {
            if (y + k < 0 || y + k >= H)
                continue;
            const float *row = tmp + (size_t)(y + k) * W;
            for (int x = 0; x < W; x++)
                acc[x] += g[k] * row[x];
        }
    }
}

void augment_image(const mnist_set *set, uint32_t index, int pad, const augment_config *aug,
                   uint64_t seed, int epoch, float *out, float *work)
{
    const int rows = set->rows, cols = set->cols, H = rows + 2 * pad, W = cols + 2 * pad;
    const uint8_t *src = set->pixels + (size_t)index * (size_t)rows * (size_t)cols;
    rng g;
    rng_seed(&g, rng_hash(rng_hash(seed ^ AUGMENT_DOMAIN, (uint64_t)epoch), index));
    /* The affine draws come first and always, so turning one setting on changes no other. */
    const double tx = aug->shift * (2.0 * rng_uniform(&g) - 1.0);
    const double ty = aug->shift * (2.0 * rng_uniform(&g) - 1.0);
    const double angle = aug->rotate * (2.0 * rng_uniform(&g) - 1.0) * (3.14159265358979323846 / 180.0);
    const double s = 1.0 + aug->scale * (2.0 * rng_uniform(&g) - 1.0);
    float *ex = work, *ey = work + (size_t)H * W, *tmp = ey + (size_t)H * W;
    const int elastic = aug->elastic_alpha > 0.0;
    if (elastic) {
        const int side = H > W ? H : W;
        int R = (int)ceil(GAUSS_RADIUS * aug->elastic_sigma);
        R = R < side ? R : side;
        float *taps = tmp + (size_t)H * W + R, sum = 0.0f;
        for (int k = -R; k <= R; k++) {
            taps[k] = (float)exp(-0.5 * k * k / (aug->elastic_sigma * aug->elastic_sigma));
            sum += taps[k];
        }
        for (int k = -R; k <= R; k++)
            taps[k] /= sum;
        for (size_t i = 0; i < 2 * (size_t)H * W; i++)
            work[i] = (float)(2.0 * rng_uniform(&g) - 1.0);
        smooth(ex, tmp, H, W, taps, R);
        smooth(ey, tmp, H, W, taps, R);
    }
    /* Output pixel p shows the original at A^-1(p + e(p)), A = translate(t) rotate(angle)
     * scale(s) about the canvas centre c. */
    const double cy = 0.5 * (H - 1), cx = 0.5 * (W - 1), cs = cos(angle) / s, sn = sin(angle) / s;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double qx = x, qy = y;
            if (elastic) {
                qx += aug->elastic_alpha * ex[y * W + x];
                qy += aug->elastic_alpha * ey[y * W + x];
            }
            const double ux = qx - cx - tx, uy = qy - cy - ty;
            const double sx = cx + cs * ux + sn * uy, sy = cy - sn * ux + cs * uy;
            out[y * W + x] = bilinear(src, rows, cols, sy - pad, sx - pad);
        }
}

int augment_fill(const mnist_set *set, const data_norm *norm, const augment_config *aug,
                 uint64_t seed, int epoch, const uint32_t *idx, int B, float *x,
                 uint8_t *labels)
{
    const int H = set->rows + 2 * norm->pad, W = set->cols + 2 * norm->pad;
    if (B <= 0)
        return 0;
    float *work = malloc(augment_work_floats(H, W) * sizeof *work);
    if (!work)
        return -1;
    for (int b = 0; b < B; b++) {
        float *dst = x + (size_t)b * (size_t)H * (size_t)W;
        augment_image(set, idx[b], norm->pad, aug, seed, epoch, dst, work);
        for (size_t i = 0; i < (size_t)H * W; i++)
            dst[i] = dst[i] * norm->scale + norm->offset;
        labels[b] = set->labels[idx[b]];
    }
    free(work);
    return 0;
}
