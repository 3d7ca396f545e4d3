/* conv_kernels.c - convolution kernels over ranges of samples (conv_kernels.h): the fast ones
 * lay the input out as matrices in scratch (im2col) and multiply with gemm.h; the plain
 * reference ones loop. Both keep the orders conv_kernels.h gives, so the same bits. */
#include "conv_kernels.h"

#include <string.h>

#include "gemm.h"
#include "vec16.h"

/* Floats of one im2col block (256 KiB: stays in the core's L2 cache). */
#define CONV_COL_FLOATS 65536
/* Below this many output positions per sample, forward multiplies several samples at once
 * (gemm along n works on 16 columns at a time); their columns number about CONV_GROUP_COLS. */
#define CONV_MIN_COLS 64
#define CONV_GROUP_COLS 128

conv_geom conv_geom_make(int C, int H, int W, int F, int KH, int KW, int S, int P)
{
    conv_geom g = {C, H, W, F, KH, KW, S, P, 0, 0, 0, 0};
    g.OH = (H + 2 * P - KH) / S + 1;
    g.OW = (W + 2 * P - KW) / S + 1;
    g.T = C * KH * KW;
    g.NP = g.OH * g.OW;
    return g;
}

static size_t in_size(const conv_geom *g) { return (size_t)g->C * g->H * g->W; }
static size_t out_size(const conv_geom *g) { return (size_t)g->F * g->NP; }

/* Output positions o in [0, n_out) whose input index o*S - P + k lies in [0, n): [*lo, *hi). */
static void valid_range(int k, int P, int S, int n, int n_out, int *lo, int *hi)
{
    int first = P - k > 0 ? (P - k + S - 1) / S : 0;
    int last = n - 1 + P - k >= 0 ? (n - 1 + P - k) / S + 1 : 0;
    if (last > n_out)
        last = n_out;
    *lo = first < last ? first : last;
    *hi = last;
}

/* ---------------------------------------------------------------------------------------
 * How the fast kernels cut their work into blocks that fit the scratch. */

/* Forward: positions per gemm call of one sample (NP >= CONV_MIN_COLS), else 0. */
static int forward_position_block(const conv_geom *g)
{
    if (g->NP < CONV_MIN_COLS)
        return 0;
    int pb = CONV_COL_FLOATS / g->T;
    pb = pb < 16 ? 16 : pb / 16 * 16;
    return pb < g->NP ? pb : g->NP;
}

/* Forward with small outputs: samples per gemm call. */
static int forward_group(const conv_geom *g)
{
    int k = CONV_GROUP_COLS / g->NP, fit = CONV_COL_FLOATS / (g->T * g->NP);
    k = k < fit ? k : fit;
    return k < 1 ? 1 : k;
}

/* Backward (data and grad): positions per block of the transposed layout [positions][T]. */
static int backward_position_block(const conv_geom *g)
{
    int pb = CONV_COL_FLOATS / g->T;
    pb = pb < 1 ? 1 : pb;
    return pb < g->NP ? pb : g->NP;
}

size_t conv_scratch_floats(const conv_geom *g)
{
    size_t T = (size_t)g->T, fwd;
    const int pb = forward_position_block(g);
    if (pb)
        fwd = T * (size_t)pb;
    else {
        const size_t cols = (size_t)forward_group(g) * (size_t)g->NP;
        fwd = (T + (size_t)g->F) * cols;
    }
    const size_t bwd = T * (size_t)backward_position_block(g);
    return gemm_scratch_floats() + (fwd > bwd ? fwd : bwd);
}

/* ---------------------------------------------------------------------------------------
 * Layouts. */

/* col[t][q] = x(p0 + q, t) for q < np, every tap t (row pitch ld): the columns of positions
 * [p0, p0 + np) of one sample, in_n: [C][H][W]. */
static void im2col(const conv_geom *g, const float *in_n, int p0, int np, float *col,
                   size_t ld)
{
    const int H = g->H, W = g->W, S = g->S, P = g->P, OW = g->OW;
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->KH; ky++)
            for (int kx = 0; kx < g->KW; kx++) {
                float *dst = col + (size_t)((c * g->KH + ky) * g->KW + kx) * ld;
                int x_lo, x_hi;
                valid_range(kx, P, S, W, OW, &x_lo, &x_hi);
                for (int q = 0; q < np;) { /* one output row's part at a time */
                    const int p = p0 + q, oy = p / OW, ox0 = p % OW;
                    const int ox1 = ox0 + (np - q) < OW ? ox0 + (np - q) : OW;
                    const int y = oy * S + ky - P;
                    float *d = dst + q - ox0; /* d[ox]: position (oy, ox) */
                    if (y < 0 || y >= H) {
                        memset(d + ox0, 0, (size_t)(ox1 - ox0) * sizeof *d);
                    } else {
                        const float *row = in_n + ((size_t)c * H + y) * W + kx - P;
                        const int a = x_lo > ox0 ? x_lo : ox0, b = x_hi < ox1 ? x_hi : ox1;
                        for (int ox = ox0; ox < (a < ox1 ? a : ox1); ox++)
                            d[ox] = 0.0f;
                        if (S == 1)
                            for (int ox = a; ox < b; ox++)
                                d[ox] = row[ox];
                        else
                            for (int ox = a; ox < b; ox++)
                                d[ox] = row[(size_t)ox * S];
                        for (int ox = b > ox0 ? b : ox0; ox < ox1; ox++)
                            d[ox] = 0.0f;
                    }
                    q += ox1 - ox0;
                }
            }
}

/* colT[q][t] = x(p0 + q, t) for q < np (row pitch T): the transposed layout, rows of taps. */
static void im2col_t(const conv_geom *g, const float *in_n, int p0, int np, float *colT)
{
    const int H = g->H, W = g->W, S = g->S, P = g->P, KW = g->KW;
    for (int q = 0; q < np; q++) {
        const int oy = (p0 + q) / g->OW, ox = (p0 + q) % g->OW;
        const int x0 = ox * S - P;
        const int kx_lo = x0 < 0 ? -x0 : 0, kx_hi = W - x0 < KW ? W - x0 : KW;
        float *dst = colT + (size_t)q * g->T;
        for (int c = 0; c < g->C; c++)
            for (int ky = 0; ky < g->KH; ky++, dst += KW) {
                const int y = oy * S + ky - P;
                if (y < 0 || y >= H || kx_lo >= kx_hi) {
                    memset(dst, 0, (size_t)KW * sizeof *dst);
                    continue;
                }
                const float *row = in_n + ((size_t)c * H + y) * W + x0;
                for (int kx = 0; kx < kx_lo; kx++)
                    dst[kx] = 0.0f;
                memcpy(dst + kx_lo, row + kx_lo, (size_t)(kx_hi - kx_lo) * sizeof *dst);
                for (int kx = kx_hi; kx < KW; kx++)
                    dst[kx] = 0.0f;
            }
    }
}

/* din_n[...] += d[q][t] for q < np in order, t in order: each tap's value added to the input
 * element under it at position p0 + q (taps in the padding dropped). din_n: [C][H][W]. */
static void col2im_t(const conv_geom *g, const float *d, int p0, int np, float *din_n)
{
    const int H = g->H, W = g->W, S = g->S, P = g->P, KW = g->KW;
    for (int q = 0; q < np; q++) {
        const int oy = (p0 + q) / g->OW, ox = (p0 + q) % g->OW;
        const int x0 = ox * S - P;
        const int kx_lo = x0 < 0 ? -x0 : 0, kx_hi = W - x0 < KW ? W - x0 : KW;
        const float *src = d + (size_t)q * g->T;
        for (int c = 0; c < g->C; c++)
            for (int ky = 0; ky < g->KH; ky++, src += KW) {
                const int y = oy * S + ky - P;
                if (y < 0 || y >= H)
                    continue;
                float *restrict row = din_n + ((size_t)c * H + y) * W + x0;
                for (int kx = kx_lo; kx < kx_hi; kx++)
                    row[kx] += src[kx];
            }
    }
}

/* ---------------------------------------------------------------------------------------
 * The fast kernels. */

static void relu_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ku_relu(x[i]);
}

void conv_forward(const conv_geom *g, const float *w, const float *bias, const float *in,
                  float *out, int lo, int hi, int relu, float *scratch)
{
    const int T = g->T, F = g->F, NP = g->NP;
    float *gs = scratch, *col = scratch + gemm_scratch_floats();
    const int pb = forward_position_block(g);
    if (pb) { /* per sample, blocks of positions: out_n[F][NP] = bias + w[F][T] col[T][pb] */
        for (int n = lo; n < hi; n++) {
            const float *in_n = in + (size_t)n * in_size(g);
            float *out_n = out + (size_t)n * out_size(g);
            for (int p0 = 0; p0 < NP; p0 += pb) {
                const int np = NP - p0 < pb ? NP - p0 : pb;
                im2col(g, in_n, p0, np, col, (size_t)np);
                gemm(F, np, T, w, T, 1, col, np, out_n + p0, NP, GEMM_ROWS, bias, gs);
            }
            if (relu)
                relu_inplace(out_n, out_size(g));
        }
        return;
    }
    /* small outputs: k samples side by side, tmp[F][k * NP], then back to [k][F][NP] */
    const int group = forward_group(g);
    float *tmp = col + (size_t)T * group * NP;
    for (int n0 = lo; n0 < hi; n0 += group) {
        const int k = hi - n0 < group ? hi - n0 : group, cols = k * NP;
        for (int j = 0; j < k; j++)
            im2col(g, in + (size_t)(n0 + j) * in_size(g), 0, NP, col + (size_t)j * NP, cols);
        gemm(F, cols, T, w, T, 1, col, cols, tmp, cols, GEMM_ROWS, bias, gs);
        for (int j = 0; j < k; j++) {
            float *out_n = out + (size_t)(n0 + j) * out_size(g);
            for (int f = 0; f < F; f++)
                memcpy(out_n + (size_t)f * NP, tmp + (size_t)f * cols + (size_t)j * NP,
                       (size_t)NP * sizeof *out_n);
            if (relu)
                relu_inplace(out_n, out_size(g));
        }
    }
}

void conv_backward_data(const conv_geom *g, const float *w, const float *dout, float *din,
                        int lo, int hi, float *scratch)
{
    const int T = g->T, F = g->F, NP = g->NP, pb = backward_position_block(g);
    float *gs = scratch, *d = scratch + gemm_scratch_floats();
    for (int n = lo; n < hi; n++) {
        const float *dout_n = dout + (size_t)n * out_size(g);
        float *din_n = din + (size_t)n * in_size(g);
        memset(din_n, 0, in_size(g) * sizeof *din_n);
        for (int p0 = 0; p0 < NP; p0 += pb) { /* d[pb][T] = dout_n^T[pb][F] w[F][T] */
            const int np = NP - p0 < pb ? NP - p0 : pb;
            gemm(np, T, F, dout_n + p0, 1, NP, w, T, d, T, GEMM_ZERO, NULL, gs);
            col2im_t(g, d, p0, np, din_n);
        }
    }
}

void conv_grad_sample(const conv_geom *g, const float *in, const float *dout, int n, float *dw,
                      float *db, float *scratch)
{
    const int T = g->T, F = g->F, NP = g->NP, pb = backward_position_block(g);
    const float *in_n = in + (size_t)n * in_size(g), *dout_n = dout + (size_t)n * out_size(g);
    float *gs = scratch, *colT = scratch + gemm_scratch_floats();
    for (int f = 0; f < F; f++) {
        const float *d = dout_n + (size_t)f * NP;
        float s = 0.0f;
        for (int p = 0; p < NP; p++)
            s += d[p];
        db[f] = s;
    }
    for (int p0 = 0; p0 < NP; p0 += pb) { /* dw[F][T] (+)= dout_n[F][pb] colT[pb][T] */
        const int np = NP - p0 < pb ? NP - p0 : pb;
        im2col_t(g, in_n, p0, np, colT);
        gemm(F, T, np, dout_n + p0, NP, 1, colT, T, dw, T, p0 ? GEMM_ACC : GEMM_ZERO, NULL, gs);
    }
}

/* ---------------------------------------------------------------------------------------
 * The plain reference kernels. */

/* The input under tap (c, ky, kx) at output (oy, ox) of sample in_n, +0 in the padding. */
static float tap(const conv_geom *g, const float *in_n, int c, int ky, int kx, int oy, int ox)
{
    const int y = oy * g->S + ky - g->P, x = ox * g->S + kx - g->P;
    if (y < 0 || y >= g->H || x < 0 || x >= g->W)
        return 0.0f;
    return in_n[((size_t)c * g->H + y) * g->W + x];
}

void conv_ref_forward(const conv_geom *g, const float *w, const float *bias, const float *in,
                      float *out, int lo, int hi, int relu)
{
    for (int n = lo; n < hi; n++) {
        const float *in_n = in + (size_t)n * in_size(g);
        for (int f = 0; f < g->F; f++)
            for (int oy = 0; oy < g->OH; oy++)
                for (int ox = 0; ox < g->OW; ox++) {
                    float acc = bias[f];
                    const float *w_f = w + (size_t)f * g->T;
                    for (int c = 0, t = 0; c < g->C; c++)
                        for (int ky = 0; ky < g->KH; ky++)
                            for (int kx = 0; kx < g->KW; kx++, t++)
                                acc = ku_fma(acc, w_f[t], tap(g, in_n, c, ky, kx, oy, ox));
                    out[(size_t)n * out_size(g) + ((size_t)f * g->OH + oy) * g->OW + ox] =
                        relu ? ku_relu(acc) : acc;
                }
    }
}

void conv_ref_backward_data(const conv_geom *g, const float *w, const float *dout, float *din,
                            int lo, int hi)
{
    for (int n = lo; n < hi; n++) {
        const float *dout_n = dout + (size_t)n * out_size(g);
        float *din_n = din + (size_t)n * in_size(g);
        memset(din_n, 0, in_size(g) * sizeof *din_n);
        for (int p = 0; p < g->NP; p++) {
            const int oy = p / g->OW, ox = p % g->OW;
            for (int c = 0, t = 0; c < g->C; c++)
                for (int ky = 0; ky < g->KH; ky++)
                    for (int kx = 0; kx < g->KW; kx++, t++) {
                        float d = 0.0f;
                        for (int f = 0; f < g->F; f++)
                            d = ku_fma(d, dout_n[(size_t)f * g->NP + p], w[(size_t)f * g->T + t]);
                        const int y = oy * g->S + ky - g->P, x = ox * g->S + kx - g->P;
                        if (y >= 0 && y < g->H && x >= 0 && x < g->W)
                            din_n[((size_t)c * g->H + y) * g->W + x] += d;
                    }
        }
    }
}

void conv_ref_grad_sample(const conv_geom *g, const float *in, const float *dout, int n,
                          float *dw, float *db)
{
    const float *in_n = in + (size_t)n * in_size(g), *dout_n = dout + (size_t)n * out_size(g);
    for (int f = 0; f < g->F; f++) {
        const float *d = dout_n + (size_t)f * g->NP;
        float s = 0.0f;
        for (int p = 0; p < g->NP; p++)
            s += d[p];
        db[f] = s;
        for (int c = 0, t = 0; c < g->C; c++)
            for (int ky = 0; ky < g->KH; ky++)
                for (int kx = 0; kx < g->KW; kx++, t++) {
                    float acc = 0.0f;
                    for (int p = 0; p < g->NP; p++)
                        acc = ku_fma(acc, d[p], tap(g, in_n, c, ky, kx, p / g->OW, p % g->OW));
                    dw[(size_t)f * g->T + t] = acc;
                }
    }
}
