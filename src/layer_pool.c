/* layer_pool.c - max and average pooling over square windows, per channel, no padding.
 *
 * Max pooling stores no indices: backward recomputes each window's first maximal element
 * (row-major scan, strict >) from the forward input, the same scan forward uses. Windows
 * may overlap (stride < size); their gradients then accumulate. 2x2 windows at stride 2
 * (LeNet's) have their own loops with the same comparisons in the same order.
 *
 * Each kernel runs on the planes of its thread's share of the samples (kernel_util.h); every
 * plane is written by one thread. */
#include <string.h>

#include "cfg_read.h"
#include "kernel_util.h"
#include "layers.h"


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

/* One plane, 2x2 windows at stride 2. in_p: [H][W], out_p: [OH][OW]. The first maximum in
 * row-major order (strict >), as pool_argmax. */
static void maxpool2_plane_forward(const float *restrict in_p, float *restrict out_p, int W,
                                   int OH, int OW)
{
    for (int oy = 0; oy < OH; oy++) {
        const float *r0 = in_p + (size_t)2 * oy * W, *r1 = r0 + W;
        float *o = out_p + (size_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) {
            const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            float m = a;
            m = b > m ? b : m;
            m = c > m ? c : m;
            m = d > m ? d : m;
            o[ox] = m;
        }
    }
}

/* One plane's input gradient, 2x2 windows at stride 2. in_p, din_p: [H][W] (din_p
 * overwritten), d_p: [OH][OW]. Each window's first maximum gets 0 + its gradient (as the
 * generic path's += into zeros), the rest of the plane 0. */
static void maxpool2_plane_backward(const float *restrict in_p, const float *restrict d_p,
                                    float *restrict din_p, int H, int W, int OH, int OW)
{
    if (2 * OH != H || 2 * OW != W)
        memset(din_p, 0, (size_t)H * W * sizeof *din_p);
    for (int oy = 0; oy < OH; oy++) {
        const float *r0 = in_p + (size_t)2 * oy * W, *r1 = r0 + W;
        float *d0 = din_p + (size_t)2 * oy * W, *d1 = d0 + W;
        const float *g = d_p + (size_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) {
            const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            /* the scan's winner: d if it beats max(a, b, c), else c if it beats max(a, b),
             * else b if it beats a, else a (the comparisons pool_argmax makes); written as
             * selects so the loop vectorises */
            const float mab = b > a ? b : a, mabc = c > mab ? c : mab;
            const float v = 0.0f + g[ox];
            const float vd = d > mabc ? v : 0.0f, rc = d > mabc ? 0.0f : v;
            const float vc = c > mab ? rc : 0.0f, rb = c > mab ? 0.0f : rc;
            d0[2 * ox] = b > a ? 0.0f : rb;
            d0[2 * ox + 1] = b > a ? rb : 0.0f;
            d1[2 * ox] = vc;
            d1[2 * ox + 1] = vd;
        }
    }
}

/* Both passes split the samples. */
static int pool_split(const layer *l)
{
    (void)l;
    return LAYER_BY_SAMPLE;
}

/* in: B x [C][H][W], out: B x [C][OH][OW]. This thread's share of the planes. */
static void maxpool_forward_team(const layer *l, const float *in, float *out, int B)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    size_t lo, hi; /* this thread's samples' planes */
    ku_share_samples(B, (size_t)C, &lo, &hi);
    for (size_t p = lo; p < hi; p++) {
        const float *in_p = in + (size_t)p * H * W;
        float *out_p = out + (size_t)p * OH * OW;
        if (size == 2 && S == 2) {
            maxpool2_plane_forward(in_p, out_p, W, OH, OW);
            continue;
        }
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const float *win = in_p + (size_t)oy * S * W + (size_t)ox * S;
                out_p[(size_t)oy * OW + ox] = win[pool_argmax(win, W, size)];
            }
    }
}

static void maxpool_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(maxpool_forward_team(l, in, out, B));
}

/* in: B x [C][H][W], dout: B x [C][OH][OW], din: B x [C][H][W] (overwritten). Each plane of
 * din is written by one thread, windows in scan order. */
static void maxpool_backward_team(const layer *l, const float *in, const float *dout,
                                  float *din, int B)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    size_t lo, hi; /* this thread's samples' planes */
    ku_share_samples(B, (size_t)C, &lo, &hi);
    for (size_t p = lo; p < hi; p++) {
        const float *in_p = in + (size_t)p * H * W;
        const float *d_p = dout + (size_t)p * OH * OW;
        float *din_p = din + (size_t)p * H * W;
        if (size == 2 && S == 2) {
            maxpool2_plane_backward(in_p, d_p, din_p, H, W, OH, OW);
            continue;
        }
        memset(din_p, 0, (size_t)H * W * sizeof *din_p);
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                size_t corner = (size_t)oy * S * W + (size_t)ox * S;
                din_p[corner + pool_argmax(in_p + corner, W, size)] += d_p[(size_t)oy * OW + ox];
            }
    }
}

/* din: B x [C][H][W] or NULL (then nothing to do). */
static void maxpool_backward(layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B)
{
    (void)out;
    if (din)
        KU_TEAM(maxpool_backward_team(l, in, dout, din, B));
}

/* in: B x [C][H][W], out: B x [C][OH][OW]: the window's sum (row-major) over size^2. */
static void avgpool_forward_team(const layer *l, const float *in, float *out, int B)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    const float area = (float)size * (float)size;
    size_t lo, hi; /* this thread's samples' planes */
    ku_share_samples(B, (size_t)C, &lo, &hi);
    for (size_t p = lo; p < hi; p++) {
        const float *in_p = in + (size_t)p * H * W;
        float *out_p = out + (size_t)p * OH * OW;
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

static void avgpool_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(avgpool_forward_team(l, in, out, B));
}

/* dout: B x [C][OH][OW], din: B x [C][H][W] (overwritten): each window's gradient divided
 * by size^2, spread over the window. This thread's share of the planes. */
static void avgpool_backward_team(const layer *l, const float *dout, float *din, int B)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    const float area = (float)size * (float)size;
    size_t lo, hi; /* this thread's samples' planes */
    ku_share_samples(B, (size_t)C, &lo, &hi);
    for (size_t p = lo; p < hi; p++) {
        const float *d_p = dout + (size_t)p * OH * OW;
        float *din_p = din + (size_t)p * H * W;
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

/* din: B x [C][H][W] or NULL (then nothing to do). */
static void avgpool_backward(layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B)
{
    (void)in;
    (void)out;
    if (din)
        KU_TEAM(avgpool_backward_team(l, dout, din, B));
}

const layer_ops maxpool_ops = {
    .kind = "maxpool",
    .keys = pool_keys,
    .is_loss = 0,
    .parse = pool_parse,
    .setup = pool_setup,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .split = pool_split,
};

const layer_ops avgpool_ops = {
    .kind = "avgpool",
    .keys = pool_keys,
    .is_loss = 0,
    .parse = pool_parse,
    .setup = pool_setup,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .split = pool_split,
};
