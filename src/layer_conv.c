/* layer_conv.c - 2-D convolution (cross-correlation, like PyTorch's Conv2d): square kernel,
 * stride and zero padding.
 *
 * Every output float is produced by one thread in one fixed order, so results are bitwise
 * identical for any thread count. Inner loops are contiguous and elementwise (axpy) so they
 * vectorise without -ffast-math; unavoidable reductions go through a 16-lane accumulator
 * (kernel_util.h).
 *
 * Paths, chosen by shape alone: "dense" (1x1 output whose kernel covers the whole input,
 * pad 0: kernel_util.h's fully connected kernels), "wide" (stride 1, pad 0: for each tap the
 * plane is one contiguous run at the input's row pitch) and the general row path (any stride
 * and pad). The wide path's forward, weight-gradient and input-gradient kernels are
 * register-blocked (conv_taps16, conv_dots16) when the plane is at least 16 floats and the
 * scratch fits; they keep the plain wide kernels' order of operations exactly (same bits),
 * which stay as the fallback.
 *
 * Threads: each kernel runs on its thread's share (kernel_util.h), no barrier (layer.h):
 * forward and input gradient split the samples; the blocked weight gradient splits the
 * samples too, into the network's per-sample partials (l->dpartial), or the filters when the
 * layer has none; the other weight-gradient paths split the filters (the 1x1 path: units,
 * units, input features). */
#include <limits.h>
#include <string.h>

#include "cfg_read.h"
#include "kernel_util.h"
#include "layers.h"

/* Floats of per-task stack scratch for the wide-row path (16 KiB): an output plane laid out
 * with the input's row pitch. */
#define CONV_WIDE_MAX 4096

/* Floats of stack scratch of the register-blocked kernels (32 KiB), and their block sizes
 * (kernel_util.h's KU_ACC): output channels per micro-kernel call (forward, input gradient),
 * filters per weight-gradient call; the _MAX sizes bound their arrays. */
#define CONV_SCRATCH 8192
#define CONV_NF KU_ACC
#define CONV_FB (KU_ACC < 4 ? KU_ACC : 4)
#define CONV_NF_MAX KU_ACC_MAX
#define CONV_FB_MAX 4

/* Floats of stack scratch of the blocked input gradient (96 KiB): every filter's dout plane
 * of one sample, zero-padded (e.g. 64 filters of 12x12 on a 16x16 input). */
#define CONV_INPUT_SCRATCH 24576

/* Blocks of 16 positions per conv_taps16 call for NF output channels: NF * NP accumulators,
 * at most 24 of AVX-512's 32 registers; one elsewhere (a 16-float vector takes 2 or 4
 * registers there). Only the speed depends on it. */
#if KU_NV == 1
#define CONV_NP(nf) ((nf) >= 7 ? 2 : (nf) >= 5 ? 3 : 4)
#define CONV_NP_MAX 4
#else
#define CONV_NP(nf) 1
#define CONV_NP_MAX 1
#endif

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
    /* The kernels index the padded input in int (e.g. H + P - oy * S, ox * S + kx - P):
     * every such sum stays below the padded extent plus one stride. */
    if (in.h + 2 * p + s > INT_MAX || in.w + 2 * p + s > INT_MAX)
        return lo_fail(err, "pad %lld and stride %lld on input %dx%dx%d are too large", p, s,
                       in.c, in.h, in.w);
    /* k, in.c, filters < 2^31: each product below is checked before it could exceed 2^63. */
    long long kk = k * k;
    long long fan_in = kk <= INT_MAX ? in.c * kk : (long long)INT_MAX + 1;
    long long fan_out = kk <= INT_MAX ? cs->filters * kk : (long long)INT_MAX + 1;
    long long n_weight = fan_in <= INT_MAX ? cs->filters * fan_in : (long long)INT_MAX + 1;
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

/* plane: [OH][OW] <- wide: [OH][W] at row pitch W, the extra columns dropped; relu: through
 * ku_relu (a fused relu layer). */
static void conv_narrow(float *restrict plane, const float *restrict wide, int OH, int OW, int W,
                        int relu)
{
    for (int oy = 0; oy < OH; oy++) {
        float *restrict o = plane + (size_t)oy * OW;
        const float *restrict w = wide + (size_t)oy * W;
        if (relu)
            for (int ox = 0; ox < OW; ox++)
                o[ox] = ku_relu(w[ox]);
        else
            memcpy(o, w, (size_t)OW * sizeof *o);
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
                    acc[i] = ku_fma(acc[i], w, src[i]);
            }
    conv_narrow(out_nf, acc, OH, OW, W, l->relu_out);
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
                            o[ox] = ku_fma(o[ox], w, row[ox + off]);
                    } else {
                        for (int ox = x0; ox < x1; ox++)
                            o[ox] = ku_fma(o[ox], w, row[ox * S + off]);
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Register-blocked kernels (stride 1, pad 0). They keep every output's order of operations
 * of the wide-row path above, so they give the same bits; they only hold NF outputs x 16
 * positions in registers across all taps instead of streaming a plane through memory per tap.
 */

/* dst[o * ldd + j] = (init ? init[o] : 0) + sum over taps (i, ky, kx), in that order, of
 *   w[o * wo + i * wi + ky * K + kx] * src[i * si + ky * sy + kx * sx + j]
 * for o < NF output channels and j < 16 * NP positions (NP blocks of 16 side by side, so each
 * weight broadcast feeds NP multiply-adds). i runs over CI input channels, ky over
 * [ky_lo, ky_hi) (the caller leaves out only rows whose source is all zeros: their terms are
 * +-0, which change no sum that starts from +0), kx over [0, K). The strides may be negative
 * (the input gradient walks the taps backwards through its source). */
KU_INLINE void conv_taps16(const int NF, const int NP, const float *src, ptrdiff_t si,
                           ptrdiff_t sy, ptrdiff_t sx, int CI, int K, int ky_lo, int ky_hi,
                           const float *w, size_t wo, size_t wi, const float *init, float *dst,
                           size_t ldd)
{
    ku_v16 acc[CONV_NF_MAX][CONV_NP_MAX];
    for (int o = 0; o < NF; o++)
        for (int p = 0; p < NP; p++)
            acc[o][p] = ku_splat(init ? init[o] : 0.0f);
    for (int i = 0; i < CI; i++) {
        const float *s_i = src + i * si, *w_i = w + (size_t)i * wi;
        for (int ky = ky_lo; ky < ky_hi; ky++) {
            const float *s_y = s_i + ky * sy, *w_y = w_i + (size_t)ky * K;
            for (int kx = 0; kx < K; kx++) {
                ku_v16 x[CONV_NP_MAX];
                for (int p = 0; p < NP; p++)
                    x[p] = ku_load(s_y + kx * sx + 16 * p);
                for (int o = 0; o < NF; o++) {
                    const float wt = w_y[(size_t)o * wo + kx];
                    for (int p = 0; p < NP; p++)
                        acc[o][p] = ku_madd(acc[o][p], wt, x[p]);
                }
            }
        }
    }
    for (int o = 0; o < NF; o++)
        for (int p = 0; p < NP; p++)
            ku_store(dst + (size_t)o * ldd + 16 * p, acc[o][p]);
}

/* conv_taps16 for NF (a constant) over positions [0, len) (len >= 16): groups of CONV_NP(NF)
 * blocks of 16, then single blocks, the last of which overlaps the one before it (recomputing
 * the same bits) instead of reading past the end. rows > 0: the positions are a plane of that
 * many rows at pitch `pitch`, and the source row of tap ky for position row y is y - ky, valid
 * in [0, rows_valid): taps whose rows are all invalid for a whole group are skipped (their
 * source is zero). rows == 0: every tap. */
KU_INLINE void conv_taps_nf(const int NF, const float *src, ptrdiff_t si, ptrdiff_t sy,
                            ptrdiff_t sx, int CI, int K, const float *w, size_t wo, size_t wi,
                            const float *init, float *dst, size_t ldd, size_t len, int rows,
                            size_t pitch, int rows_valid)
{
    const int NP = CONV_NP(NF);
    for (size_t i0 = 0;;) {
        const int np = i0 + 16 * (size_t)NP <= len ? NP : 1;
        if (i0 + 16 > len)
            i0 = len - 16;
        int lo = 0, hi = K;
        if (rows > 0) {
            const int y0 = (int)(i0 / pitch), y1 = (int)((i0 + 16 * (size_t)np - 1) / pitch);
            lo = y0 - (rows_valid - 1) > 0 ? y0 - (rows_valid - 1) : 0;
            hi = y1 + 1 < K ? y1 + 1 : K;
        }
        const float *s = src + (ptrdiff_t)i0;
        if (np == NP)
            conv_taps16(NF, NP, s, si, sy, sx, CI, K, lo, hi, w, wo, wi, init, dst + i0, ldd);
        else
            conv_taps16(NF, 1, s, si, sy, sx, CI, K, lo, hi, w, wo, wi, init, dst + i0, ldd);
        i0 += 16 * (size_t)np;
        if (i0 >= len)
            return;
    }
}

/* conv_taps_nf for nf (1 <= nf <= CONV_NF) output channels. */
static void conv_taps(int nf, const float *src, ptrdiff_t si, ptrdiff_t sy, ptrdiff_t sx,
                      int CI, int K, const float *w, size_t wo, size_t wi, const float *init,
                      float *dst, size_t ldd, size_t len, int rows, size_t pitch, int rows_valid)
{
#define CONV_TAPS_CASE(k)                                                                      \
    case k:                                                                                    \
        conv_taps_nf(k, src, si, sy, sx, CI, K, w, wo, wi, init, dst, ldd, len, rows, pitch,   \
                     rows_valid);                                                              \
        break
    switch (nf) {
        CONV_TAPS_CASE(8);
        CONV_TAPS_CASE(7);
        CONV_TAPS_CASE(6);
        CONV_TAPS_CASE(5);
        CONV_TAPS_CASE(4);
        CONV_TAPS_CASE(3);
        CONV_TAPS_CASE(2);
    default:
        CONV_TAPS_CASE(1);
    }
#undef CONV_TAPS_CASE
}

/* The forward pass takes the blocked kernel on the wide-row path when the wide plane is at
 * least one block long and CONV_NF wide planes fit the scratch. */
static int conv_forward_blocked(const layer *l)
{
    size_t len = conv_wide_len(l);
    return conv_is_wide(l) && len >= 16 && (size_t)CONV_NF * len <= CONV_SCRATCH;
}

/* One sample, every filter, blocked. in_n: [C][H][W], out_n: [F][OH][OW]. Each output is
 * bias + taps in (c, ky, kx) order, as conv_forward_plane_wide. */
static void conv_forward_sample_blocked(const layer *l, const float *in_n, float *out_n)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel;
    const size_t len = conv_wide_len(l), T = (size_t)C * K * K;
    _Alignas(64) float wide[CONV_SCRATCH]; /* [nf][len]: output planes at row pitch W */
    for (int f0 = 0; f0 < F; f0 += CONV_NF) {
        const int nf = F - f0 < CONV_NF ? F - f0 : CONV_NF;
        conv_taps(nf, in_n, (ptrdiff_t)H * W, W, 1, C, K, l->weight + (size_t)f0 * T, T,
                  (size_t)K * K, l->bias + f0, wide, len, len, 0, 0, 0);
        for (int f = 0; f < nf; f++)
            conv_narrow(out_n + (size_t)(f0 + f) * OH * OW, wide + f * len, OH, OW, W,
                        l->relu_out);
    }
}

/* The calling thread's share of the forward pass: samples (units on the 1x1 path).
 * in: B x [C][H][W], out: B x [F][OH][OW]. */
static void conv_forward_team(const layer *l, const float *in, float *out, int B)
{
    const int F = l->out.c;
    const size_t in_size = shape3_size(l->in), out_size = shape3_size(l->out);
    if (conv_is_dense(l)) {
        ku_fc_forward(l->weight, l->bias, in, out, B, F, in_size, l->relu_out);
        return;
    }
    const int blocked = conv_forward_blocked(l), wide = conv_is_wide(l);
    int lo, hi;
    ku_share(B, &lo, &hi);
    for (int n = lo; n < hi; n++) {
        const float *in_n = in + (size_t)n * in_size;
        if (blocked) {
            conv_forward_sample_blocked(l, in_n, out + (size_t)n * out_size);
            continue;
        }
        for (int f = 0; f < F; f++) {
            float *out_nf = out + (size_t)n * out_size + (size_t)f * l->out.h * l->out.w;
            if (wide)
                conv_forward_plane_wide(l, in_n, out_nf, f);
            else
                conv_forward_plane(l, in_n, out_nf, f);
        }
        if (!wide && l->relu_out) /* a fused relu (the wide paths apply it on the way out) */
            for (size_t i = 0; i < out_size; i++)
                out[(size_t)n * out_size + i] = ku_relu(out[(size_t)n * out_size + i]);
    }
}

/* in: B x [C][H][W], out: B x [F][OH][OW]. */
static void conv_forward(const layer *l, const float *in, float *out, int B)
{
    KU_TEAM(conv_forward_team(l, in, out, B));
}

/* Gradients of filter f, batch loop inside. in: B x [C][H][W], dout: B x [F][OH][OW];
 * adds into dweight[f]: [C][K][K] and dbias[f]. */
static void conv_backward_filter(layer *l, const float *in, const float *dout, int B, int f)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel, S = l->u.conv.stride, P = l->u.conv.pad;
    const size_t in_size = shape3_size(l->in), plane = (size_t)OH * OW;
    float acc[KU_LANES] = {0};
    for (int n = 0; n < B; n++)
        ku_lanes_sum(acc, dout + ((size_t)n * F + f) * plane, plane);
    l->dbias[f] += ku_lanes_total(acc);

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
                            ku_lanes_dot(acc, d_row, row, x1 - x0);
                        else
                            ku_lanes_dot_strided(acc, d_row, row, S, x1 - x0);
                    }
                }
                dw_f[((size_t)c * K + ky) * K + kx] += ku_lanes_total(acc);
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
    float acc[KU_LANES];
    for (int n = 0; n < B; n++) { /* per sample, as conv_filter_grads_sample */
        memset(acc, 0, sizeof acc);
        ku_lanes_sum(acc, dout + ((size_t)n * F + f) * plane, plane);
        l->dbias[f] += ku_lanes_total(acc);
    }

    _Alignas(64) float dwide[CONV_WIDE_MAX];
    float *dw_f = l->dweight + (size_t)f * C * K * K;
    for (int n = 0; n < B; n++) {
        conv_widen(dwide, dout + ((size_t)n * F + f) * plane, OH, OW, W);
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    const float *src = in + (size_t)n * in_size + ((size_t)c * H + ky) * W + kx;
                    memset(acc, 0, sizeof acc);
                    ku_lanes_dot(acc, dwide, src, (int)len);
                    dw_f[((size_t)c * K + ky) * K + kx] += ku_lanes_total(acc);
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
                        dst[i] = ku_fma(dst[i], w, dwide[i]);
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
                                row[ox + off] = ku_fma(row[ox + off], w, d_row[ox]);
                        } else {
                            for (int ox = x0; ox < x1; ox++)
                                row[ox * S + off] = ku_fma(row[ox * S + off], w, d_row[ox]);
                        }
                    }
                }
            }
        }
    }
}

/* tot[f] = lane dot of d[f * ld ..][0..len) and x[0..len) for f < NF, the same bits as
 * ku_dot(d_f, x, len); d is zero-padded to a multiple of 16, len >= 16. */
KU_INLINE void conv_dots16(const int NF, const float *restrict d, size_t ld,
                           const float *restrict x, size_t len, float *restrict tot)
{
    ku_v16 acc[CONV_FB_MAX];
    const size_t full = len / 16;
    const int rem = (int)(len % 16);
    for (int f = 0; f < NF; f++)
        acc[f] = ku_splat(0.0f);
    for (size_t k = 0; k < full; k++) {
        const ku_v16 xv = ku_load(x + 16 * k);
        for (int f = 0; f < NF; f++)
            acc[f] = ku_madd_v(acc[f], ku_load(d + f * ld + 16 * k), xv);
    }
    if (rem) { /* lanes >= rem: d is 0 there, adding +-0 changes nothing */
        const ku_v16 xv = ku_load_tail(x + 16 * full, rem);
        for (int f = 0; f < NF; f++)
            acc[f] = ku_madd_v(acc[f], ku_load(d + f * ld + 16 * full), xv);
    }
    if (NF == 1) {
        tot[0] = ku_total(acc[0]);
        return;
    }
    float t4[4];
    const ku_v16 zero = ku_splat(0.0f);
    ku_total4(acc[0], acc[1], NF > 2 ? acc[2] : zero, NF > 3 ? acc[3] : zero, t4);
    for (int f = 0; f < NF; f++)
        tot[f] = t4[f];
}

/* The weight gradient takes the blocked kernel when the wide plane is at least one block
 * long and CONV_FB zero-padded dout planes fit the scratch. */
static int conv_filter_blocked(const layer *l)
{
    size_t len = conv_wide_len(l);
    return conv_is_wide(l) && len >= 16 && (size_t)CONV_FB * (len + 16) <= CONV_SCRATCH;
}

/* Gradients of filters [f_lo, f_hi) from sample n alone, blocked. in_n: [C][H][W], dout_n:
 * [F][OH][OW]. Per weight: one lane dot of the widened dout plane with the tap's input run,
 * as conv_backward_filter_wide; per bias: the lane total of the dout plane. add: dw[f][..] +=
 * and db[f] += (dw: [F][C][K][K], db: [F], the gradient layout); else = (a per-sample
 * partial of the same layout). */
static void conv_filter_grads_sample(const layer *l, const float *in_n, const float *dout_n,
                                     int f_lo, int f_hi, float *dw, float *db, int add)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int K = l->u.conv.kernel;
    const size_t plane = (size_t)OH * OW;
    const size_t len = conv_wide_len(l), ld = (len + 15) / 16 * 16, T = (size_t)C * K * K;
    for (int f = f_lo; f < f_hi; f++) {
        float acc[KU_LANES] = {0};
        ku_lanes_sum(acc, dout_n + (size_t)f * plane, plane);
        const float tot = ku_lanes_total(acc);
        db[f] = add ? db[f] + tot : tot;
    }
    _Alignas(64) float dwide[CONV_SCRATCH]; /* [nf][ld]: dout planes at pitch W, zero-padded */
    float tot[CONV_FB_MAX];
    for (int f0 = f_lo; f0 < f_hi; f0 += CONV_FB) {
        const int nf = f_hi - f0 < CONV_FB ? f_hi - f0 : CONV_FB;
        for (int f = 0; f < nf; f++) {
            conv_widen(dwide + f * ld, dout_n + (size_t)(f0 + f) * plane, OH, OW, W);
            memset(dwide + f * ld + len, 0, (ld - len) * sizeof *dwide);
        }
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    const float *x = in_n + ((size_t)c * H + ky) * W + kx;
                    switch (nf) {
                    case 4: conv_dots16(4, dwide, ld, x, len, tot); break;
                    case 3: conv_dots16(3, dwide, ld, x, len, tot); break;
                    case 2: conv_dots16(2, dwide, ld, x, len, tot); break;
                    default: conv_dots16(1, dwide, ld, x, len, tot); break;
                    }
                    float *d = dw + (size_t)f0 * T + ((size_t)c * K + ky) * K + kx;
                    for (int f = 0; f < nf; f++)
                        d[(size_t)f * T] = add ? d[(size_t)f * T] + tot[f] : tot[f];
                }
    }
}

/* The input gradient takes the blocked kernel when the input plane is at least one block
 * long and the sample's dout, zero-padded by (K-1) rows and columns in front, fits. */
static size_t conv_input_pitch(const layer *l)
{
    const int K = l->u.conv.kernel;
    return (size_t)l->in.h * l->in.w + (size_t)(K - 1) * l->in.w + (size_t)(K - 1);
}

static int conv_input_blocked(const layer *l)
{
    return conv_is_wide(l) && (size_t)l->in.h * l->in.w >= 16 &&
           (size_t)l->out.c * conv_input_pitch(l) <= CONV_INPUT_SCRATCH;
}

/* Input gradient of one sample, blocked. dout_n: [F][OH][OW], din_n: [C][H][W]
 * (overwritten). Each dout plane is placed at row pitch W after P0 = (K-1)*W + K-1 zeros,
 * so din[c][q] = sum over (f, ky, kx) in that order of w[f][c][ky][kx] *
 * dpad[f][q + P0 - ky*W - kx]: the order of conv_backward_input_wide, whose missing terms
 * are the +-0 products here. */
static void conv_backward_input_blocked(const layer *l, const float *dout_n, float *din_n)
{
    const int C = l->in.c, H = l->in.h, W = l->in.w, F = l->out.c, OH = l->out.h;
    const int OW = l->out.w, K = l->u.conv.kernel;
    const size_t pitch = conv_input_pitch(l), P0 = (size_t)(K - 1) * W + (size_t)(K - 1);
    const size_t HW = (size_t)H * W, KK = (size_t)K * K;
    _Alignas(64) float dpad[CONV_INPUT_SCRATCH]; /* [F][pitch] */
    memset(dpad, 0, (size_t)F * pitch * sizeof *dpad);
    for (int f = 0; f < F; f++)
        for (int oy = 0; oy < OH; oy++)
            memcpy(dpad + f * pitch + P0 + (size_t)oy * W, dout_n + ((size_t)f * OH + oy) * OW,
                   (size_t)OW * sizeof *dpad);
    for (int c0 = 0; c0 < C; c0 += CONV_NF) {
        const int nc = C - c0 < CONV_NF ? C - c0 : CONV_NF;
        conv_taps(nc, dpad + P0, (ptrdiff_t)pitch, -(ptrdiff_t)W, -1, F, K,
                  l->weight + (size_t)c0 * KK, KK, (size_t)C * KK, NULL, din_n + c0 * HW, HW,
                  HW, H, (size_t)W, OH);
    }
}

/* True when the backward pass splits the samples: the blocked weight gradient (one sample
 * at a time) and any input gradient path (always per sample). */
static int conv_backward_by_sample(const layer *l)
{
    return !conv_is_dense(l) && conv_filter_blocked(l);
}

/* The 1x1 path's input-gradient chunk sums (kernel_util.h). */
static size_t conv_scratch_floats(const layer *l, int max_batch)
{
    return conv_is_dense(l) ? ku_fc_scratch_floats(max_batch, shape3_size(l->in)) : 0;
}

/* Forward and the input gradient split the samples; the weight gradient too when blocked.
 * The 1x1 path as the dense layer (kernel_util.h). */
static int conv_split(const layer *l)
{
    if (conv_is_dense(l))
        return (ku_fc_tiny(l->out.c, shape3_size(l->in)) ? LAYER_FWD_READS | LAYER_FWD_WRITES
                                                          : 0) |
               LAYER_BWD_WRITES;
    return LAYER_FWD_READS | LAYER_FWD_WRITES | LAYER_BWD_WRITES |
           (conv_backward_by_sample(l) ? LAYER_BWD_READS : 0);
}

/* The parameter gradients: with l->dpartial (the network's per-sample partials) each
 * thread's samples, into their partials; without, this thread's filters over all samples in
 * order, added into dweight/dbias (the same bits once the network adds the partials in
 * sample order); the unblocked paths: this thread's filters, batch loop inside. */
static void conv_backward_params(layer *l, const float *in, const float *dout, int B)
{
    const int F = l->out.c;
    const size_t in_size = shape3_size(l->in), out_size = shape3_size(l->out);
    const size_t per = l->n_weight + l->n_bias;
    int lo, hi;
    if (conv_backward_by_sample(l) && l->dpartial) {
        ku_share(B, &lo, &hi);
        for (int n = lo; n < hi; n++) {
            float *part = l->dpartial + (size_t)n * per;
            conv_filter_grads_sample(l, in + (size_t)n * in_size, dout + (size_t)n * out_size, 0,
                                     F, part, part + l->n_weight, 0);
        }
        return;
    }
    ku_share(F, &lo, &hi);
    if (conv_backward_by_sample(l)) {
        for (int n = 0; n < B; n++)
            conv_filter_grads_sample(l, in + (size_t)n * in_size, dout + (size_t)n * out_size,
                                     lo, hi, l->dweight, l->dbias, 1);
        return;
    }
    for (int f = lo; f < hi; f++) {
        if (conv_is_wide(l))
            conv_backward_filter_wide(l, in, dout, B, f);
        else
            conv_backward_filter(l, in, dout, B, f);
    }
}

/* The calling thread's share of the backward pass: the parameter gradients
 * (conv_backward_params), then the input gradient of its samples (1x1 path: units, then
 * input features). in: B x [C][H][W], dout: B x [F][OH][OW], din: B x [C][H][W] or NULL. */
static void conv_backward_team(layer *l, const float *in, const float *dout, float *din, int B)
{
    const int F = l->out.c;
    const size_t in_size = shape3_size(l->in), out_size = shape3_size(l->out);
    if (conv_is_dense(l)) { /* weight [F][I], in: B x [I], dout: B x [F] */
        ku_fc_backward_params(l->dweight, l->dbias, in, dout, B, F, in_size);
        if (din)
            ku_fc_backward_input(l->weight, dout, din, B, F, in_size, l->scratch);
        return;
    }
    conv_backward_params(l, in, dout, B);
    if (din) {
        const int blocked = conv_input_blocked(l), wide = conv_is_wide(l);
        int lo, hi;
        ku_share(B, &lo, &hi);
        for (int n = lo; n < hi; n++) {
            const float *dout_n = dout + (size_t)n * out_size;
            float *din_n = din + (size_t)n * in_size;
            if (blocked)
                conv_backward_input_blocked(l, dout_n, din_n);
            else if (wide)
                conv_backward_input_wide(l, dout_n, din_n);
            else
                conv_backward_input(l, dout_n, din_n);
        }
    }
}

/* in: B x [C][H][W], dout: B x [F][OH][OW], din: B x [C][H][W] or NULL. */
static void conv_backward(layer *l, const float *in, const float *out, const float *dout,
                          float *din, int B)
{
    (void)out;
    KU_TEAM(conv_backward_team(l, in, dout, din, B));
}

const layer_ops conv_ops = {
    .kind = "conv",
    .keys = conv_keys,
    .is_loss = 0,
    .parse = conv_parse,
    .setup = conv_setup,
    .forward = conv_forward,
    .backward = conv_backward,
    .fuses_relu = 1,
    .split = conv_split,
    .scratch_floats = conv_scratch_floats,
};
