/* layer_pool.c - max and average pooling over square windows, per channel, no padding.
 *
 * Max pooling stores no indices: backward recomputes each window's first maximal element
 * (row-major scan, strict >) from the forward input, the same scan forward uses. Windows
 * may overlap (stride < size); their gradients then accumulate. */
#include <string.h>

#include "cfg_read.h"
#include "layers.h"

#ifdef _OPENMP
#define POOL_OMP(directive) _Pragma(directive)
#else
#define POOL_OMP(directive)
#endif

static const char *const pool_keys[] = {"size", "stride", NULL};

/* Reads size (required) and stride (default: size) into l->u.pool. */
static int pool_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    pool_settings *ps = &l->u.pool;
    if (cfg_read_int(group, "size", 1, 0, 1, &ps->size, err) < 0 ||
        cfg_read_int(group, "stride", 0, ps->size, 1, &ps->stride, err) < 0)
        return -1;
    return 0;
}

/* Output {in.c, (in.h - size)/stride + 1, (in.w - size)/stride + 1}; no parameters. */
static int pool_setup(layer *l, lo_error *err)
{
    const pool_settings *ps = &l->u.pool;
    shape3 in = l->in;
    if (ps->size < 1 || ps->stride < 1)
        return lo_fail(err, "invalid settings: size %d, stride %d", ps->size, ps->stride);
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", in.c, in.h, in.w);
    if (ps->size > in.h || ps->size > in.w)
        return lo_fail(err, "%s window %dx%d (stride %d) does not fit its input %dx%dx%d",
                       l->ops ? l->ops->kind : "pool", ps->size, ps->size, ps->stride,
                       in.c, in.h, in.w);
    l->out.c = in.c;
    l->out.h = (in.h - ps->size) / ps->stride + 1;
    l->out.w = (in.w - ps->size) / ps->stride + 1;
    l->n_weight = 0;
    l->n_bias = 0;
    l->weight_ndim = 0;
    l->fan_in = 0;
    l->fan_out = 0;
    return 0;
}

/* Offset in a [H][W] plane of the first maximal element of the window whose top-left
 * corner is at win (row stride W, size x size). */
static size_t pool_argmax(const float *win, int W, int size)
{
    size_t best = 0;
    float m = win[0];
    for (int ky = 0; ky < size; ky++)
        for (int kx = 0; kx < size; kx++) {
            size_t at = (size_t)ky * W + kx;
            if (win[at] > m) {
                m = win[at];
                best = at;
            }
        }
    return best;
}

/* in: B x [C][H][W], out: B x [C][OH][OW]. One (sample, channel) plane per task. */
static void maxpool_forward(const layer *l, const float *in, float *out, int B)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    POOL_OMP("omp parallel for collapse(2) schedule(static)")
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            const float *in_p = in + ((size_t)n * C + c) * H * W;
            float *out_p = out + ((size_t)n * C + c) * OH * OW;
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    const float *win = in_p + (size_t)oy * S * W + (size_t)ox * S;
                    out_p[(size_t)oy * OW + ox] = win[pool_argmax(win, W, size)];
                }
        }
}

/* in: B x [C][H][W], dout: B x [C][OH][OW], din: B x [C][H][W] (overwritten) or NULL.
 * Each (sample, channel) plane of din is written by one thread, windows in scan order. */
static void maxpool_backward(layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B)
{
    (void)out;
    if (!din)
        return;
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    POOL_OMP("omp parallel for collapse(2) schedule(static)")
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            const float *in_p = in + ((size_t)n * C + c) * H * W;
            const float *d_p = dout + ((size_t)n * C + c) * OH * OW;
            float *din_p = din + ((size_t)n * C + c) * H * W;
            memset(din_p, 0, (size_t)H * W * sizeof *din_p);
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    size_t corner = (size_t)oy * S * W + (size_t)ox * S;
                    din_p[corner + pool_argmax(in_p + corner, W, size)] +=
                        d_p[(size_t)oy * OW + ox];
                }
        }
}

/* in: B x [C][H][W], out: B x [C][OH][OW]: the window's sum (row-major) over size^2. */
static void avgpool_forward(const layer *l, const float *in, float *out, int B)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    const float area = (float)size * (float)size;
    POOL_OMP("omp parallel for collapse(2) schedule(static)")
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            const float *in_p = in + ((size_t)n * C + c) * H * W;
            float *out_p = out + ((size_t)n * C + c) * OH * OW;
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    const float *win = in_p + (size_t)oy * S * W + (size_t)ox * S;
                    float sum = 0.0f;
                    for (int ky = 0; ky < size; ky++)
                        for (int kx = 0; kx < size; kx++)
                            sum += win[(size_t)ky * W + kx];
                    out_p[(size_t)oy * OW + ox] = sum / area;
                }
        }
}

/* dout: B x [C][OH][OW], din: B x [C][H][W] (overwritten) or NULL: each window's
 * gradient divided by size^2, spread over the window. */
static void avgpool_backward(layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B)
{
    (void)in;
    (void)out;
    if (!din)
        return;
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    const float area = (float)size * (float)size;
    POOL_OMP("omp parallel for collapse(2) schedule(static)")
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            const float *d_p = dout + ((size_t)n * C + c) * OH * OW;
            float *din_p = din + ((size_t)n * C + c) * H * W;
            memset(din_p, 0, (size_t)H * W * sizeof *din_p);
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    const float g = d_p[(size_t)oy * OW + ox] / area;
                    float *win = din_p + (size_t)oy * S * W + (size_t)ox * S;
                    for (int ky = 0; ky < size; ky++)
                        for (int kx = 0; kx < size; kx++)
                            win[(size_t)ky * W + kx] += g;
                }
        }
}

const layer_ops maxpool_ops = {
    .kind = "maxpool",
    .keys = pool_keys,
    .is_loss = 0,
    .parse = pool_parse,
    .setup = pool_setup,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

const layer_ops avgpool_ops = {
    .kind = "avgpool",
    .keys = pool_keys,
    .is_loss = 0,
    .parse = pool_parse,
    .setup = pool_setup,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};
