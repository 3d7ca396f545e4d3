/* layer_conv.c - 2-D convolution (cross-correlation, like PyTorch's Conv2d): square kernel,
 * stride and zero padding.
 *
 * Every output float is produced by one thread in one fixed order, so results are bitwise
 * identical for any thread count. Inner loops are contiguous and elementwise (axpy) so they
 * vectorise without -ffast-math; unavoidable reductions go through a 16-lane accumulator.
 *
 * Three paths, chosen by shape alone: "dense" (1x1 output whose kernel covers the whole
 * input, pad 0: plain dot products), "wide" (stride 1, pad 0: one long axpy per tap over
 * the plane at the input's row pitch) and the general row path (any stride and pad). */
#include <limits.h>
#include <string.h>

#include "cfg_read.h"
#include "layers.h"

#ifdef _OPENMP
#define CONV_OMP(directive) _Pragma(directive)
#else
#define CONV_OMP(directive)
#endif

#define CONV_LANES 16

/* Floats of per-task stack scratch for the wide-row path (16 KiB): an output plane laid out
 * with the input's row pitch. */
#define CONV_WIDE_MAX 4096

static const char *const conv_keys[] = {"filters", "kernel", "stride", "pad", NULL};

/* Reads filters, kernel (required), stride (default 1) and pad (default 0) into l->u.conv. */
static int conv_parse(layer *l, const config_setting_t *group, lo_error *err)
{
    conv_settings *cs = &l->u.conv;
    if (cfg_read_int(group, "filters", 1, 0, 1, &cs->filters, err) < 0 ||
        cfg_read_int(group, "kernel", 1, 0, 1, &cs->kernel, err) < 0 ||
        cfg_read_int(group, "stride", 0, 1, 1, &cs->stride, err) < 0 ||
        cfg_read_int(group, "pad", 0, 0, 0, &cs->pad, err) < 0)
        return -1;
    return 0;
}

/* Sets the output shape {filters, oh, ow} and the weight [filters][in.c][k][k], bias
 * [filters]. Sizes are checked in 64 bits before they are stored in ints. */
static int conv_setup(layer *l, lo_error *err)
{
    const conv_settings *cs = &l->u.conv;
    shape3 in = l->in;
    long long k = cs->kernel, s = cs->stride, p = cs->pad;
    if (cs->filters < 1 || k < 1 || s < 1 || p < 0)
        return lo_fail(err, "invalid settings: filters %d, kernel %lld, stride %lld, pad %lld",
                       cs->filters, k, s, p);
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return lo_fail(err, "empty input %dx%dx%d", in.c, in.h, in.w);
    if (in.h + 2 * p < k || in.w + 2 * p < k)
        return lo_fail(err, "kernel %lldx%lld (stride %lld, pad %lld) does not fit its input "
                       "%dx%dx%d", k, k, s, p, in.c, in.h, in.w);
    long long fan_in = in.c * k * k, fan_out = cs->filters * k * k;
    long long n_weight = (long long)cs->filters * fan_in;
    if (fan_in > INT_MAX || fan_out > INT_MAX || n_weight > INT_MAX)
        return lo_fail(err, "kernel %lldx%lld with %d filters on input %dx%dx%d is too large",
                       k, k, cs->filters, in.c, in.h, in.w);
    l->out.c = cs->filters;
    l->out.h = (int)((in.h + 2 * p - k) / s + 1);
    l->out.w = (int)((in.w + 2 * p - k) / s + 1);
    l->n_weight = (size_t)n_weight;
    l->n_bias = (size_t)cs->filters;
    l->weight_ndim = 4;
    l->weight_shape[0] = cs->filters;
    l->weight_shape[1] = in.c;
    l->weight_shape[2] = (int)k;
    l->weight_shape[3] = (int)k;
    l->fan_in = (int)fan_in;
    l->fan_out = (int)fan_out;
    return 0;
}

/* True when each output is one dot product of the filter with the whole input sample
 * (output 1x1, pad 0, kernel covering the input exactly: LeNet's C5). */
static int conv_is_dense(const layer *l)
{
    return l->u.conv.pad == 0 && l->in.h == l->u.conv.kernel && l->in.w == l->u.conv.kernel;
}

/* Output range [*lo, *hi) whose input index o*stride - pad + k lies in [0, n). */
static void conv_valid_range(int k, int pad, int stride, int n, int n_out, int *lo, int *hi)
{
    int first = pad - k > 0 ? (pad - k + stride - 1) / stride : 0;
    int last = n - 1 + pad - k >= 0 ? (n - 1 + pad - k) / stride + 1 : 0;
    if (last > n_out)
        last = n_out;
    *lo = first < last ? first : last;
    *hi = last;
}

/* acc[16] += a[0..n) * b[0..n) lane by lane (a fixed, vectorisable order). */
static inline void conv_lanes_dot(float *restrict acc, const float *restrict a,
                                  const float *restrict b, int n)
{
    int i = 0;
    for (; i + CONV_LANES <= n; i += CONV_LANES)
        for (int j = 0; j < CONV_LANES; j++)
            acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++)
        acc[j] += a[i + j] * b[i + j];
}

/* acc[16] += a[i] * b[i * stride] for i in [0, n), lane by lane. */
static inline void conv_lanes_dot_strided(float *restrict acc, const float *restrict a,
                                          const float *restrict b, int stride, int n)
{
    for (int i = 0; i < n; i++)
        acc[i % CONV_LANES] += a[i] * b[(size_t)i * (size_t)stride];
}

/* acc[16] += a[0..n) lane by lane. */
static inline void conv_lanes_sum(float *restrict acc, const float *restrict a, size_t n)
{
    size_t i = 0;
    for (; i + CONV_LANES <= n; i += CONV_LANES)
        for (int j = 0; j < CONV_LANES; j++)
            acc[j] += a[i + j];
    for (int j = 0; i + (size_t)j < n; j++)
        acc[j] += a[i + (size_t)j];
}

/* Sum of the 16 lanes in a fixed pairwise order. */
static inline float conv_lanes_total(float *acc)
{
    for (int half = CONV_LANES / 2; half > 0; half /= 2)
        for (int j = 0; j < half; j++)
            acc[j] += acc[j + half];
    return acc[0];
}

/* Dot product of a[0..n) and b[0..n) through the lane accumulator. */
static float conv_dot(const float *restrict a, const float *restrict b, size_t n)
{
    float acc[CONV_LANES] = {0};
    size_t i = 0;
    for (; i + CONV_LANES <= n; i += CONV_LANES)
        for (int j = 0; j < CONV_LANES; j++)
            acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i + (size_t)j < n; j++)
        acc[j] += a[i + (size_t)j] * b[i + (size_t)j];
    return conv_lanes_total(acc);
}

/* True for the wide-row path: stride 1, pad 0, and an output plane laid out with the
 * input's row pitch W fits the scratch. Then output (oy, ox) and tap (ky, kx) read input
 * offset (oy + ky) * W + ox + kx, so for each tap the whole plane is one contiguous axpy of
 * (OH - 1) * W + OW floats instead of OH short rows (LeNet's rows are 28 and 10 wide). The
 * W - OW columns between rows are junk, discarded on output and zeroed on the way back. */
static int conv_is_wide(const layer *l)
{
    return l->u.conv.stride == 1 && l->u.conv.pad == 0 &&
           (size_t)l->out.h * (size_t)l->in.w <= CONV_WIDE_MAX;
}

/* Length of one wide-row axpy: from output (0, 0) to (OH-1, OW-1) at row pitch W. */
static size_t conv_wide_len(const layer *l)
{
    return (size_t)(l->out.h - 1) * (size_t)l->in.w + (size_t)l->out.w;
}

/* wide: [OH][W] <- plane: [OH][OW], the extra columns zeroed. */
static void conv_widen(float *restrict wide, const float *restrict plane, int OH, int OW,
                       int W)
{
    for (int oy = 0; oy < OH; oy++) {
        memcpy(wide + (size_t)oy * W, plane + (size_t)oy * OW, (size_t)OW * sizeof *wide);
        memset(wide + (size_t)oy * W + OW, 0, (size_t)(W - OW) * sizeof *wide);
    }
}

/* One output plane on the wide-row path. in_n: [C][H][W], out_nf: [OH][OW]. Same per-output
 * order (c, ky, kx) as conv_forward_plane, so the same bits. */
static void conv_forward_plane_wide(const layer *l, const float *restrict in_n,
                                    float *restrict out_nf, int f)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int K = l->u.conv.kernel;
    const size_t len = conv_wide_len(l);
    const float *w_f = l->weight + (size_t)f * C * K * K;
    _Alignas(64) float acc[CONV_WIDE_MAX];
    const float b = l->bias[f];
    for (size_t i = 0; i < len; i++)
        acc[i] = b;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float w = w_f[((size_t)c * K + ky) * K + kx];
                const float *restrict src = in_n + ((size_t)c * H + ky) * W + kx;
                for (size_t i = 0; i < len; i++)
                    acc[i] += w * src[i];
            }
    for (int oy = 0; oy < OH; oy++)
        memcpy(out_nf + (size_t)oy * OW, acc + (size_t)oy * W, (size_t)OW * sizeof *out_nf);
}

/* One output plane. in_n: [C][H][W] (one sample), out_nf: [OH][OW] (one sample, filter f).
 * Each output sums its taps in (c, ky, kx) order; rows and columns that would read the
 * padding are skipped through per-offset ranges, never by per-element tests. */
static void conv_forward_plane(const layer *l, const float *restrict in_n,
                               float *restrict out_nf, int f)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int K = l->u.conv.kernel, S = l->u.conv.stride, P = l->u.conv.pad;
    const float *w_f = l->weight + (size_t)f * C * K * K;
    const float b = l->bias[f];
    for (size_t i = 0; i < (size_t)OH * OW; i++)
        out_nf[i] = b;
    for (int c = 0; c < C; c++) {
        const float *in_c = in_n + (size_t)c * H * W;
        const float *w_c = w_f + (size_t)c * K * K;
        for (int oy = 0; oy < OH; oy++) {
            float *restrict o = out_nf + (size_t)oy * OW;
            int ky_lo = P - oy * S > 0 ? P - oy * S : 0;
            int ky_hi = H + P - oy * S < K ? H + P - oy * S : K;
            for (int ky = ky_lo; ky < ky_hi; ky++) {
                const float *restrict row = in_c + (size_t)(oy * S - P + ky) * W;
                for (int kx = 0; kx < K; kx++) {
                    const float w = w_c[ky * K + kx];
                    int x0, x1;
                    conv_valid_range(kx, P, S, W, OW, &x0, &x1);
                    const int off = kx - P;
                    if (S == 1) {
                        for (int ox = x0; ox < x1; ox++)
                            o[ox] += w * row[ox + off];
                    } else {
                        for (int ox = x0; ox < x1; ox++)
                            o[ox] += w * row[ox * S + off];
                    }
                }
            }
        }
    }
}

/* in: B x [C][H][W], out: B x [F][OH][OW]. One (sample, filter) plane per task. */
static void conv_forward(const layer *l, const float *in, float *out, int B)
{
    const int F = l->out.c;
    const size_t in_size = shape3_size(l->in), out_size = shape3_size(l->out);
    if (conv_is_dense(l)) {
        CONV_OMP("omp parallel for collapse(2) schedule(static)")
        for (int n = 0; n < B; n++)
            for (int f = 0; f < F; f++)
                out[(size_t)n * F + f] = l->bias[f] + conv_dot(l->weight + (size_t)f * in_size,
                                                               in + (size_t)n * in_size,
                                                               in_size);
        return;
    }
    const int wide = conv_is_wide(l);
    CONV_OMP("omp parallel for collapse(2) schedule(static)")
    for (int n = 0; n < B; n++)
        for (int f = 0; f < F; f++) {
            const float *in_n = in + (size_t)n * in_size;
            float *out_nf = out + (size_t)n * out_size + (size_t)f * l->out.h * l->out.w;
            if (wide)
                conv_forward_plane_wide(l, in_n, out_nf, f);
            else
                conv_forward_plane(l, in_n, out_nf, f);
        }
}

/* Gradients of filter f, batch loop inside. in: B x [C][H][W], dout: B x [F][OH][OW];
 * adds into dweight[f]: [C][K][K] and dbias[f]. */
static void conv_backward_filter(layer *l, const float *in, const float *dout, int B, int f)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel, S = l->u.conv.stride, P = l->u.conv.pad;
    const size_t in_size = shape3_size(l->in), plane = (size_t)OH * OW;
    float acc[CONV_LANES] = {0};
    for (int n = 0; n < B; n++)
        conv_lanes_sum(acc, dout + ((size_t)n * F + f) * plane, plane);
    l->dbias[f] += conv_lanes_total(acc);

    float *dw_f = l->dweight + (size_t)f * C * K * K;
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < K; ky++) {
            int y0, y1;
            conv_valid_range(ky, P, S, H, OH, &y0, &y1);
            for (int kx = 0; kx < K; kx++) {
                int x0, x1;
                conv_valid_range(kx, P, S, W, OW, &x0, &x1);
                memset(acc, 0, sizeof acc);
                for (int n = 0; n < B; n++) {
                    const float *in_c = in + (size_t)n * in_size + (size_t)c * H * W;
                    const float *d_nf = dout + ((size_t)n * F + f) * plane;
                    for (int oy = y0; oy < y1; oy++) {
                        const float *d_row = d_nf + (size_t)oy * OW + x0;
                        const float *row = in_c + (size_t)(oy * S - P + ky) * W
                                           + (x0 * S - P + kx);
                        if (S == 1)
                            conv_lanes_dot(acc, d_row, row, x1 - x0);
                        else
                            conv_lanes_dot_strided(acc, d_row, row, S, x1 - x0);
                    }
                }
                dw_f[((size_t)c * K + ky) * K + kx] += conv_lanes_total(acc);
            }
        }
    }
}

/* conv_backward_filter on the wide-row path: each sample's dout plane is widened (zeros in
 * the junk columns) and every weight's gradient is one long lane dot per sample. */
static void conv_backward_filter_wide(layer *l, const float *in, const float *dout, int B,
                                      int f)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel;
    const size_t in_size = shape3_size(l->in), plane = (size_t)OH * OW;
    const size_t len = conv_wide_len(l);
    float acc[CONV_LANES] = {0};
    for (int n = 0; n < B; n++)
        conv_lanes_sum(acc, dout + ((size_t)n * F + f) * plane, plane);
    l->dbias[f] += conv_lanes_total(acc);

    _Alignas(64) float dwide[CONV_WIDE_MAX];
    float *dw_f = l->dweight + (size_t)f * C * K * K;
    for (int n = 0; n < B; n++) {
        conv_widen(dwide, dout + ((size_t)n * F + f) * plane, OH, OW, W);
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    const float *src = in + (size_t)n * in_size + ((size_t)c * H + ky) * W + kx;
                    memset(acc, 0, sizeof acc);
                    conv_lanes_dot(acc, dwide, src, (int)len);
                    dw_f[((size_t)c * K + ky) * K + kx] += conv_lanes_total(acc);
                }
    }
}

/* conv_backward_input on the wide-row path: one long axpy per (filter, channel, tap); the
 * zeroed junk columns add exact zeros. dout_n: [F][OH][OW], din_n: [C][H][W]. */
static void conv_backward_input_wide(const layer *l, const float *restrict dout_n,
                                     float *restrict din_n)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel;
    const size_t len = conv_wide_len(l);
    _Alignas(64) float dwide[CONV_WIDE_MAX];
    memset(din_n, 0, shape3_size(l->in) * sizeof *din_n);
    for (int f = 0; f < F; f++) {
        conv_widen(dwide, dout_n + (size_t)f * OH * OW, OH, OW, W);
        for (int c = 0; c < C; c++) {
            const float *w_c = l->weight + ((size_t)f * C + c) * K * K;
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    const float w = w_c[ky * K + kx];
                    float *restrict dst = din_n + ((size_t)c * H + ky) * W + kx;
                    for (size_t i = 0; i < len; i++)
                        dst[i] += w * dwide[i];
                }
        }
    }
}

/* Input gradient of one sample. dout_n: [F][OH][OW], din_n: [C][H][W] (overwritten).
 * Scatters each output's gradient back through the taps, row by row (axpy). */
static void conv_backward_input(const layer *l, const float *restrict dout_n,
                                float *restrict din_n)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel, S = l->u.conv.stride, P = l->u.conv.pad;
    memset(din_n, 0, shape3_size(l->in) * sizeof *din_n);
    for (int f = 0; f < F; f++) {
        const float *d_f = dout_n + (size_t)f * OH * OW;
        for (int c = 0; c < C; c++) {
            const float *w_c = l->weight + ((size_t)f * C + c) * K * K;
            float *din_c = din_n + (size_t)c * H * W;
            for (int oy = 0; oy < OH; oy++) {
                const float *restrict d_row = d_f + (size_t)oy * OW;
                int ky_lo = P - oy * S > 0 ? P - oy * S : 0;
                int ky_hi = H + P - oy * S < K ? H + P - oy * S : K;
                for (int ky = ky_lo; ky < ky_hi; ky++) {
                    float *restrict row = din_c + (size_t)(oy * S - P + ky) * W;
                    for (int kx = 0; kx < K; kx++) {
                        const float w = w_c[ky * K + kx];
                        int x0, x1;
                        conv_valid_range(kx, P, S, W, OW, &x0, &x1);
                        const int off = kx - P;
                        if (S == 1) {
                            for (int ox = x0; ox < x1; ox++)
                                row[ox + off] += w * d_row[ox];
                        } else {
                            for (int ox = x0; ox < x1; ox++)
                                row[ox * S + off] += w * d_row[ox];
                        }
                    }
                }
            }
        }
    }
}

/* The 1x1-output case as a dense layer. in: B x [I] (I = C*K*K), dout: B x [F],
 * weight [F][I]; din: B x [I] or NULL. */
static void conv_backward_dense(layer *l, const float *in, const float *dout, float *din,
                                int B)
{
    const int F = l->out.c;
    const size_t I = shape3_size(l->in);
    CONV_OMP("omp parallel for schedule(static)")
    for (int f = 0; f < F; f++) {
        float *restrict dw = l->dweight + (size_t)f * I;
        float db = 0.0f;
        for (int n = 0; n < B; n++) {
            const float g = dout[(size_t)n * F + f];
            const float *restrict x = in + (size_t)n * I;
            db += g;
            for (size_t i = 0; i < I; i++)
                dw[i] += g * x[i];
        }
        l->dbias[f] += db;
    }
    if (!din)
        return;
    CONV_OMP("omp parallel for schedule(static)")
    for (int n = 0; n < B; n++) {
        float *restrict dx = din + (size_t)n * I;
        memset(dx, 0, I * sizeof *dx);
        for (int f = 0; f < F; f++) {
            const float g = dout[(size_t)n * F + f];
            const float *restrict w = l->weight + (size_t)f * I;
            for (size_t i = 0; i < I; i++)
                dx[i] += g * w[i];
        }
    }
}

/* in: B x [C][H][W], dout: B x [F][OH][OW], din: B x [C][H][W] or NULL. Filters are split
 * across threads for the parameter gradients, samples for the input gradient. */
static void conv_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)out;
    if (conv_is_dense(l)) {
        conv_backward_dense(l, in, dout, din, B);
        return;
    }
    const int F = l->out.c, wide = conv_is_wide(l);
    CONV_OMP("omp parallel for schedule(static)")
    for (int f = 0; f < F; f++) {
        if (wide)
            conv_backward_filter_wide(l, in, dout, B, f);
        else
            conv_backward_filter(l, in, dout, B, f);
    }
    if (!din)
        return;
    const size_t in_size = shape3_size(l->in), out_size = shape3_size(l->out);
    CONV_OMP("omp parallel for schedule(static)")
    for (int n = 0; n < B; n++) {
        const float *dout_n = dout + (size_t)n * out_size;
        if (wide)
            conv_backward_input_wide(l, dout_n, din + (size_t)n * in_size);
        else
            conv_backward_input(l, dout_n, din + (size_t)n * in_size);
    }
}

const layer_ops conv_ops = {
    .kind = "conv",
    .keys = conv_keys,
    .is_loss = 0,
    .parse = conv_parse,
    .setup = conv_setup,
    .forward = conv_forward,
    .backward = conv_backward,
};
