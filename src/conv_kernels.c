/* conv_kernels.c - convolution kernels over ranges of samples (conv_kernels.h): the fast ones
 * lay the input out as matrices in scratch (im2col) and multiply with gemm.h; the plain
 * reference ones loop. Both keep the orders conv_kernels.h gives, so the same bits. */
#include "conv_kernels.h"

#include <string.h>

#include "gemm.h"
#include "vec16.h"

/* Floats of one im2col block (512 KiB: half the core's L2 cache, room for a whole sample of
 * LeNet's or custom_cnn's convolutions, so gemm sees its widest columns). */
#define CONV_COL_FLOATS 131072
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

/* ---------------------------------------------------------------------------------------
 * How the fast kernels cut their work into blocks that fit the scratch. Scratch, in order:
 * gemm's, one sample's padded input (or input gradient), then the block. */

/* Forward and input gradient: whole output rows per block of one sample's columns (NP >=
 * CONV_MIN_COLS), else 0 (then several samples side by side: forward_group). In the forward
 * pass a block's columns are rows of OW positions at a pitch of the block's width plus 16
 * (slack for im2col's whole-vector stores). */
static int row_block(const conv_geom *g)
{
    if (g->NP < CONV_MIN_COLS)
        return 0;
    int rows = CONV_COL_FLOATS / (g->T * g->OW);
    rows = rows < 1 ? 1 : rows;
    return rows < g->OH ? rows : g->OH;
}

/* Small outputs (forward, input gradient): samples per gemm call. */
static int sample_group(const conv_geom *g)
{
    int k = CONV_GROUP_COLS / g->NP, fit = CONV_COL_FLOATS / (g->T * g->NP);
    k = k < fit ? k : fit;
    return k < 1 ? 1 : k;
}

/* Row pitch of the transposed layout: T taps and 16 floats of slack (whole-vector stores). */
static size_t colT_pitch(const conv_geom *g) { return (size_t)g->T + 16; }

/* Weight gradient: positions per block of the transposed layout [positions][T]. */
static int backward_position_block(const conv_geom *g)
{
    int pb = CONV_COL_FLOATS / (g->T + 16);
    pb = pb < 1 ? 1 : pb;
    return pb < g->NP ? pb : g->NP;
}

static int padded_h(const conv_geom *g) { return g->H + 2 * g->P; }
static int padded_w(const conv_geom *g) { return g->W + 2 * g->P; }

/* Floats of one sample's padded plane stack, [C][H + 2P][W + 2P]. */
static size_t padded_floats(const conv_geom *g)
{
    return (size_t)g->C * padded_h(g) * padded_w(g);
}

/* Floats before the block in scratch: gemm's scratch, then one sample's padded input or input
 * gradient with 16 floats of slack (ku_add_over), aligned. */
static size_t block_offset(const conv_geom *g)
{
    return (gemm_scratch_floats() + padded_floats(g) + 16 + 15) / 16 * 16;
}

size_t conv_scratch_floats(const conv_geom *g)
{
    size_t T = (size_t)g->T, fwd;
    const int rows = row_block(g);
    if (rows)
        fwd = T * ((size_t)rows * g->OW + 16);
    else {
        const size_t cols = (size_t)sample_group(g) * (size_t)g->NP;
        fwd = T * (cols + 16) + (size_t)g->F * cols;
    }
    const int drows = row_block(g);
    const size_t data = drows ? T * (size_t)drows * (size_t)g->OW
                             : (T + (size_t)g->F) * (size_t)sample_group(g) * (size_t)g->NP;
    size_t most = colT_pitch(g) * (size_t)backward_position_block(g);
    most = fwd > most ? fwd : most;
    most = data > most ? data : most;
    return block_offset(g) + most + 16; /* slack: ku_copy_over */
}

/* ---------------------------------------------------------------------------------------
 * Layouts. Every one reads the input through its padded copy ([C][Hp][Wp], Hp = H + 2P,
 * Wp = W + 2P: tap (ky, kx) of position (oy, ox) is element (oy S + ky, ox S + kx)), so no
 * loop tests an edge. */

/* The sample in_n ([C][H][W]) with its zero padding: in_n itself without padding, else a
 * copy in xp. */
static const float *pad_input(const conv_geom *g, const float *in_n, float *xp)
{
    if (!g->P)
        return in_n;
    const int Hp = padded_h(g), Wp = padded_w(g), P = g->P;
    memset(xp, 0, padded_floats(g) * sizeof *xp);
    for (int c = 0; c < g->C; c++)
        for (int y = 0; y < g->H; y++)
            ku_copy(xp + ((size_t)c * Hp + y + P) * Wp + P, in_n + ((size_t)c * g->H + y) * g->W,
                    g->W); /* masked: the padding after the row must stay 0 */
    return xp;
}

/* dst[i] = src[i * S] for i < n; may write up to 15 floats after dst + n (ku_copy_over). */
static void copy_strided(float *restrict dst, const float *restrict src, int n, int S)
{
    if (S == 1 && n > 4) { /* shorter runs: scalar stores beat a vector one */
        ku_copy_over(dst, src, n);
        return;
    }
    for (int i = 0; i < n; i++)
        dst[i] = src[(size_t)i * S];
}

/* col[t][q0 + (oy - oy0) OW + ox] = x((oy, ox), t) for output rows [oy0, oy1) of one sample,
 * every tap t, from its padded input xp; col's rows have pitch ld. Every row of col gets
 * 16 floats after its part written with anything (whole-vector stores): a caller filling
 * several parts of a row fills them left to right, and leaves 16 floats of slack after the
 * last. With AVX-512 and stride 1, a stretch of an input row is loaded once into two
 * registers and each of the KW taps along it is a lane shift of them. */
static void im2col_rows(const conv_geom *g, const float *xp, int oy0, int oy1, float *col,
                        size_t ld, size_t q0)
{
    const int Hp = padded_h(g), Wp = padded_w(g), S = g->S, OW = g->OW, KW = g->KW;
#if defined(__AVX512F__)
    if (S == 1 && KW <= 17) {
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                               15);
        for (int c = 0; c < g->C; c++)
            for (int ky = 0; ky < g->KH; ky++) {
                float *rows = col + (size_t)((c * g->KH + ky) * KW) * ld + q0;
                for (int oy = oy0; oy < oy1; oy++) {
                    const float *src = xp + ((size_t)c * Hp + oy + ky) * Wp;
                    float *dst = rows + (size_t)(oy - oy0) * OW;
                    for (int ox0 = 0; ox0 < OW; ox0 += 16) {
                        const int n = OW - ox0 < 16 ? OW - ox0 : 16, need = n + KW - 1;
                        const __m512 v0 = _mm512_maskz_loadu_ps(
                            (__mmask16)(need >= 16 ? 0xffffu : (1u << need) - 1u), src + ox0);
                        const __m512 v1 = _mm512_maskz_loadu_ps(
                            (__mmask16)(need <= 16 ? 0u : (1u << (need - 16)) - 1u),
                            src + ox0 + 16);
                        for (int kx = 0; kx < KW; kx++)
                            _mm512_storeu_ps(dst + (size_t)kx * ld + ox0,
                                             _mm512_permutex2var_ps(
                                                 v0, _mm512_add_epi32(iota, _mm512_set1_epi32(kx)),
                                                 v1));
                    }
                }
            }
        return;
    }
#endif
    for (int c = 0, t = 0; c < g->C; c++)
        for (int ky = 0; ky < g->KH; ky++)
            for (int kx = 0; kx < KW; kx++, t++) {
                float *dst = col + (size_t)t * ld + q0;
                const float *plane = xp + ((size_t)c * Hp + ky) * Wp + kx;
                for (int oy = oy0; oy < oy1; oy++)
                    copy_strided(dst + (size_t)(oy - oy0) * OW, plane + (size_t)oy * S * Wp, OW,
                                 S);
            }
}

/* colT[q][t] = x(p0 + q, t) for q < np (row pitch colT_pitch): the transposed layout, one
 * kernel row of taps (KW floats) at a time, each stored as a whole vector (its tail lands on
 * the next kernel row's place, written after, or on the slack). With AVX-512 and stride 1,
 * 32 floats of an input row are loaded once for up to 16 positions, and each position's taps
 * are a lane shift of them. */
static void im2col_t(const conv_geom *g, const float *xp, int p0, int np, float *colT)
{
    const int Hp = padded_h(g), Wp = padded_w(g), S = g->S, KW = g->KW, OW = g->OW;
    const size_t pitch = colT_pitch(g);
#if defined(__AVX512F__)
    if (S == 1 && KW <= 17) {
        const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                               15);
        for (int c = 0, t0 = 0; c < g->C; c++)
            for (int ky = 0; ky < g->KH; ky++, t0 += KW) {
                int oy = p0 / OW, ox = p0 % OW;
                for (int q = 0; q < np;) { /* up to 16 positions of one output row */
                    const int n = OW - ox < 16 ? OW - ox : 16, m = np - q < n ? np - q : n;
                    const float *src = xp + ((size_t)c * Hp + oy + ky) * Wp + ox;
                    const int need = Wp - ox < 32 ? Wp - ox : 32;
                    const __m512 v0 = _mm512_maskz_loadu_ps(
                        (__mmask16)(need >= 16 ? 0xffffu : (1u << need) - 1u), src);
                    const __m512 v1 = _mm512_maskz_loadu_ps(
                        (__mmask16)(need <= 16 ? 0u : (1u << (need - 16)) - 1u), src + 16);
                    float *dst = colT + (size_t)q * pitch + t0;
                    if (KW <= 8) /* half a vector: fewer stores split across cache lines */
                        for (int i = 0; i < m; i++, dst += pitch)
                            _mm256_storeu_ps(dst, _mm512_castps512_ps256(_mm512_permutex2var_ps(
                                                      v0,
                                                      _mm512_add_epi32(iota, _mm512_set1_epi32(i)),
                                                      v1)));
                    else
                        for (int i = 0; i < m; i++, dst += pitch)
                            _mm512_storeu_ps(dst, _mm512_permutex2var_ps(
                                                      v0,
                                                      _mm512_add_epi32(iota, _mm512_set1_epi32(i)),
                                                      v1));
                    q += m;
                    ox += m;
                    if (ox == OW) {
                        ox = 0;
                        oy++;
                    }
                }
            }
        return;
    }
#endif
    int oy = p0 / OW, ox = p0 % OW;
    for (int q = 0; q < np; q++, ox = ox + 1 < OW ? ox + 1 : (oy++, 0)) {
        const float *corner = xp + (size_t)oy * S * Wp + (size_t)ox * S;
        float *dst = colT + (size_t)q * pitch;
        for (int c = 0; c < g->C; c++)
            for (int ky = 0; ky < g->KH; ky++, dst += KW)
                ku_copy_over(dst, corner + ((size_t)c * Hp + ky) * Wp, KW);
    }
}

/* Adds output rows [oy0, oy1) of d (d[t][(oy - oy0) * OW + ox], row pitch ld) into the
 * padded input gradient dp ([C][Hp][Wp]): each element gets the values of the taps over it
 * in position order (oy, then ox ascending: ky, then kx descending), one add each. A row of dp
 * is held in vectors of 16 lanes while its taps are added (a tap's run of OW values lands on
 * lanes kx, kx + S, ...: one masked expanding load; the other lanes add -0, which changes no
 * float), then stored: no store is read back before it lands. */
static void col2im_rows(const conv_geom *g, const float *d, size_t ld, int oy0, int oy1,
                        float *dp)
{
    const int Hp = padded_h(g), Wp = padded_w(g), S = g->S, OW = g->OW, KH = g->KH;
    const int KW = g->KW, y_lo = oy0 * S, y_hi = (oy1 - 1) * S + KH;
#if defined(__AVX512F__)
    unsigned spaced[17]; /* bits 0, S, 2S, ... of the first c lanes */
    spaced[0] = 0;
    for (int c = 1; c <= 16; c++)
        spaced[c] = spaced[c - 1] | (S * (c - 1) < 16 ? 1u << (S * (c - 1)) : 0u);
    const __m512 minus_zero = _mm512_set1_ps(-0.0f);
#endif
    for (int c = 0; c < g->C; c++)
        for (int y = y_lo; y < y_hi && y < Hp; y++) {
            float *row = dp + ((size_t)c * Hp + y) * Wp;
            for (int x0 = 0; x0 < Wp; x0 += 16) { /* lanes x0 .. x0 + 15 of the row */
#if defined(__AVX512F__)
                __m512 acc = _mm512_loadu_ps(row + x0); /* the slack covers a short row */
#endif
                for (int ky = KH - 1; ky >= 0; ky--) {
                    if ((y - ky) % S != 0 || y - ky < oy0 * S || y - ky >= oy1 * S)
                        continue;
                    const int oy = (y - ky) / S;
                    for (int kx = KW - 1; kx >= 0; kx--) {
                        /* ox whose lane x = ox S + kx is in [x0, x0 + 16) */
                        int a = x0 - kx > 0 ? (x0 - kx + S - 1) / S : 0;
                        int b = x0 + 16 - kx > 0 ? (x0 + 16 - kx + S - 1) / S : 0;
                        b = b < OW ? b : OW;
                        if (a >= b)
                            continue;
                        const float *src = d + (size_t)((c * KH + ky) * KW + kx) * ld +
                                           (size_t)(oy - oy0) * OW + a;
#if defined(__AVX512F__)
                        const __mmask16 m = (__mmask16)(spaced[b - a] << (a * S + kx - x0));
                        acc = _mm512_add_ps(acc, _mm512_mask_expandloadu_ps(minus_zero, m, src));
#else
                        for (int ox = a; ox < b; ox++)
                            row[ox * S + kx] += src[ox - a];
#endif
                    }
                }
#if defined(__AVX512F__)
                _mm512_storeu_ps(row + x0, acc);
#endif
            }
        }
}

/* ---------------------------------------------------------------------------------------
 * The fast kernels. */

/* A bias gradient: the sum of d[0..n), element p into lane p % 16 in order, the lanes then
 * added pairwise (vec16.h's ku_lanes_total). */
static float bias_grad(const float *d, int n)
{
    ku_v16 acc = ku_splat(0.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        acc = ku_add(acc, ku_load(d + i));
    if (i < n) /* the other lanes add +0, as ku_lanes_sum leaves them */
        acc = ku_add(acc, ku_load_part(d + i, n - i));
    return ku_total(acc);
}

static void relu_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ku_relu(x[i]);
}

/* Samples and filters per register block of the dense forward pass. */
#define DENSE_NB 4
#define DENSE_FB 4

/* tot[b][j] = the lane dot of w[f0 + j] and x[n0 + b] (dense geometry, conv_kernels.h),
 * b < NB, j < NF: NB x NF accumulators of 16 lanes, each weight and input load serving
 * several of them. */
KU_INLINE void dense_dots(const int NB, const int NF, const float *w, const float *x, int T,
                          float tot[DENSE_NB][DENSE_FB])
{
    ku_v16 acc[DENSE_NB][DENSE_FB];
    for (int b = 0; b < NB; b++)
        for (int j = 0; j < NF; j++)
            acc[b][j] = ku_splat(0.0f);
    int t = 0;
    for (; t + 16 <= T; t += 16) {
        ku_v16 wv[DENSE_FB];
        for (int j = 0; j < NF; j++)
            wv[j] = ku_load(w + (size_t)j * T + t);
        for (int b = 0; b < NB; b++) {
            const ku_v16 xv = ku_load(x + (size_t)b * T + t);
            for (int j = 0; j < NF; j++)
                acc[b][j] = ku_madd_v(acc[b][j], wv[j], xv);
        }
    }
    if (t < T) { /* lanes past T: 0 * 0 added, which changes no chain from +0 */
        ku_v16 wv[DENSE_FB];
        for (int j = 0; j < NF; j++)
            wv[j] = ku_load_part(w + (size_t)j * T + t, T - t);
        for (int b = 0; b < NB; b++) {
            const ku_v16 xv = ku_load_part(x + (size_t)b * T + t, T - t);
            for (int j = 0; j < NF; j++)
                acc[b][j] = ku_madd_v(acc[b][j], wv[j], xv);
        }
    }
    for (int b = 0; b < NB; b++) {
        float t4[4];
        const ku_v16 z = ku_splat(0.0f);
        ku_total4(acc[b][0], NF > 1 ? acc[b][1] : z, NF > 2 ? acc[b][2] : z,
                  NF > 3 ? acc[b][3] : z, t4);
        for (int j = 0; j < NF; j++)
            tot[b][j] = t4[j];
    }
}

/* The dense geometry's forward pass, samples [lo, hi): out[n][f] = bias[f] + the lane dot of
 * w[f] and in[n] (conv_kernels.h), then the fused relu. */
static void dense_forward(const conv_geom *g, const float *w, const float *bias, const float *in,
                          float *out, int lo, int hi, int relu)
{
    const int T = g->T, F = g->F;
    float tot[DENSE_NB][DENSE_FB];
    for (int n0 = lo; n0 < hi; n0 += DENSE_NB) {
        const int nb = hi - n0 < DENSE_NB ? hi - n0 : DENSE_NB;
        const float *x = in + (size_t)n0 * T;
        for (int f0 = 0; f0 < F; f0 += DENSE_FB) {
            const int nf = F - f0 < DENSE_FB ? F - f0 : DENSE_FB;
            const float *wf = w + (size_t)f0 * T;
#define DENSE_CASE(NB, NF) dense_dots(NB, NF, wf, x, T, tot)
            if (nb == 4 && nf == 4)
                DENSE_CASE(4, 4);
            else if (nf == 4)
                nb == 3 ? DENSE_CASE(3, 4) : nb == 2 ? DENSE_CASE(2, 4) : DENSE_CASE(1, 4);
            else if (nb == 4)
                nf == 3 ? DENSE_CASE(4, 3) : nf == 2 ? DENSE_CASE(4, 2) : DENSE_CASE(4, 1);
            else
                for (int b = 0; b < nb; b++)
                    for (int j = 0; j < nf; j++) {
                        float one[DENSE_NB][DENSE_FB];
                        dense_dots(1, 1, wf + (size_t)j * T, x + (size_t)b * T, T, one);
                        tot[b][j] = one[0][0];
                    }
#undef DENSE_CASE
            for (int b = 0; b < nb; b++)
                for (int j = 0; j < nf; j++) {
                    const float y = bias[f0 + j] + tot[b][j];
                    out[(size_t)(n0 + b) * F + f0 + j] = relu ? ku_relu(y) : y;
                }
        }
    }
}

void conv_forward(const conv_geom *g, const float *w, const float *bias, const float *in,
                  float *out, int lo, int hi, int relu, float *scratch)
{
    const int T = g->T, F = g->F, NP = g->NP, OW = g->OW;
    if (conv_is_dense(g)) {
        dense_forward(g, w, bias, in, out, lo, hi, relu);
        return;
    }
    float *gs = scratch, *xp = scratch + gemm_scratch_floats(), *col = scratch + block_offset(g);
    const int rows = row_block(g);
    if (rows) { /* per sample, blocks of output rows: out_n[F][..] = bias + w[F][T] col[T][..] */
        for (int n = lo; n < hi; n++) {
            const float *x = pad_input(g, in + (size_t)n * in_size(g), xp);
            float *out_n = out + (size_t)n * out_size(g);
            for (int oy0 = 0; oy0 < g->OH; oy0 += rows) {
                const int oy1 = g->OH - oy0 < rows ? g->OH : oy0 + rows, np = (oy1 - oy0) * OW;
                im2col_rows(g, x, oy0, oy1, col, (size_t)np + 16, 0);
                gemm(F, np, T, w, T, 1, col, np + 16, out_n + (size_t)oy0 * OW, NP, GEMM_ROWS,
                     bias, gs);
            }
            if (relu)
                relu_inplace(out_n, out_size(g));
        }
        return;
    }
    /* small outputs: k samples side by side, tmp[F][k * NP], then back to [k][F][NP] */
    const int group = sample_group(g);
    float *tmp = col + (size_t)T * ((size_t)group * NP + 16);
    for (int n0 = lo; n0 < hi; n0 += group) {
        const int k = hi - n0 < group ? hi - n0 : group, cols = k * NP;
        for (int j = 0; j < k; j++) /* left to right along col's rows */
            im2col_rows(g, pad_input(g, in + (size_t)(n0 + j) * in_size(g), xp), 0, g->OH, col,
                        (size_t)cols + 16, (size_t)j * NP);
        gemm(F, cols, T, w, T, 1, col, cols + 16, tmp, cols, GEMM_ROWS, bias, gs);
        for (int j = 0; j < k; j++) {
            float *out_n = out + (size_t)(n0 + j) * out_size(g);
            for (int f = 0; f < F; f++)
                ku_copy(out_n + (size_t)f * NP, tmp + (size_t)f * cols + (size_t)j * NP, NP);
            if (relu)
                relu_inplace(out_n, out_size(g));
        }
    }
}

/* din_n ([C][H][W]) from the padded gradient dp: its inner rows. */
static void crop_input_grad(const conv_geom *g, const float *dp, float *din_n)
{
    const int Hp = padded_h(g), Wp = padded_w(g), P = g->P;
    for (int c = 0; c < g->C; c++)
        for (int y = 0; y < g->H; y++)
            ku_copy(din_n + ((size_t)c * g->H + y) * g->W, dp + ((size_t)c * Hp + y + P) * Wp + P,
                    g->W);
}

int conv_is_dense(const conv_geom *g)
{
    return g->NP == 1 && g->P == 0 && g->KH == g->H && g->KW == g->W;
}

void conv_backward_data(const conv_geom *g, const float *w, const float *dout, float *din,
                        int lo, int hi, float *scratch)
{
    const int T = g->T, F = g->F, NP = g->NP, OW = g->OW, rows = row_block(g);
    float *gs = scratch, *dp = scratch + gemm_scratch_floats(), *d = scratch + block_offset(g);
    if (conv_is_dense(g)) { /* din[n][T] = dout[n][F] w[F][T]: each input one tap of one
                             * position, so 0 + d, which is d (a chain from +0 is never -0) */
        if (hi > lo)
            gemm(hi - lo, T, F, dout + (size_t)lo * F, F, 1, w, T, din + (size_t)lo * T, T,
                 GEMM_ZERO, NULL, gs);
        return;
    }
    if (rows) { /* per sample, blocks of output rows: d[T][np] = w^T[T][F] dout_n[F][np] */
        for (int n = lo; n < hi; n++) {
            const float *dout_n = dout + (size_t)n * out_size(g);
            memset(dp, 0, padded_floats(g) * sizeof *dp);
            for (int oy0 = 0; oy0 < g->OH; oy0 += rows) {
                const int oy1 = g->OH - oy0 < rows ? g->OH : oy0 + rows, np = (oy1 - oy0) * OW;
                gemm(T, np, F, w, 1, T, dout_n + (size_t)oy0 * OW, NP, d, np, GEMM_ZERO, NULL,
                     gs);
                col2im_rows(g, d, (size_t)np, oy0, oy1, dp);
            }
            crop_input_grad(g, dp, din + (size_t)n * in_size(g));
        }
        return;
    }
    /* small outputs: k samples side by side, dout as doutk[F][k * NP] */
    const int group = sample_group(g);
    float *doutk = d + (size_t)T * group * NP;
    for (int n0 = lo; n0 < hi; n0 += group) {
        const int k = hi - n0 < group ? hi - n0 : group, cols = k * NP;
        for (int j = 0; j < k; j++)
            for (int f = 0; f < F; f++)
                ku_copy(doutk + (size_t)f * cols + (size_t)j * NP,
                        dout + (size_t)(n0 + j) * out_size(g) + (size_t)f * NP, NP);
        gemm(T, cols, F, w, 1, T, doutk, cols, d, cols, GEMM_ZERO, NULL, gs);
        for (int j = 0; j < k; j++) {
            memset(dp, 0, padded_floats(g) * sizeof *dp);
            col2im_rows(g, d + (size_t)j * NP, (size_t)cols, 0, g->OH, dp);
            crop_input_grad(g, dp, din + (size_t)(n0 + j) * in_size(g));
        }
    }
}

void conv_grad_sample(const conv_geom *g, const float *in, const float *dout, int n, float *dw,
                      float *db, float *scratch)
{
    const int T = g->T, F = g->F, NP = g->NP, pb = backward_position_block(g);
    const float *dout_n = dout + (size_t)n * out_size(g);
    float *gs = scratch, *colT = scratch + block_offset(g);
    const float *x = pad_input(g, in + (size_t)n * in_size(g), scratch + gemm_scratch_floats());
    for (int f = 0; f < F; f++)
        db[f] = bias_grad(dout_n + (size_t)f * NP, NP);
    for (int p0 = 0; p0 < NP; p0 += pb) { /* dw[F][T] (+)= dout_n[F][pb] colT[pb][T] */
        const int np = NP - p0 < pb ? NP - p0 : pb;
        im2col_t(g, x, p0, np, colT);
        gemm(F, T, np, dout_n + p0, NP, 1, colT, (ptrdiff_t)colT_pitch(g), dw, T,
             p0 ? GEMM_ACC : GEMM_ZERO, NULL, gs);
    }
}

/* Filters whose row gradients conv_grad_rows keeps in registers together (sharing the loads
 * of the input). */
#define ROWS_FB 4

/* The node over samples [n, n + m) (m = 1, 2 or 4, aligned) of the leaves dout[i][f] * x[i]
 * (16 taps, from +0 as the per-sample kernel), for filters f0 .. f0 + NF: perfect pairwise
 * sums, in registers. x points at sample n's taps; nt of the 16 are real. */
KU_INLINE void rows_node(const int NF, const float *x, int T, int nt, const float *d, int F,
                         int m, ku_v16 node[ROWS_FB])
{
    const ku_v16 zero = ku_splat(0.0f);
    ku_v16 leaf[4][ROWS_FB];
    for (int i = 0; i < m; i++) {
        const float *xi = x + (size_t)i * T;
        const ku_v16 xv = nt == 16 ? ku_load(xi) : ku_load_part(xi, nt);
        for (int j = 0; j < NF; j++)
            leaf[i][j] = ku_madd(zero, d[(size_t)i * F + j], xv);
    }
    for (int j = 0; j < NF; j++)
        node[j] = m == 1   ? leaf[0][j]
                  : m == 2 ? ku_add(leaf[0][j], leaf[1][j])
                           : ku_add(ku_add(leaf[0][j], leaf[1][j]), ku_add(leaf[2][j], leaf[3][j]));
}

/* conv_grad_rows' weights for NF filters from f0, 16 taps at a time: nodes of 4 samples (or
 * the whole block when it is smaller) in registers, then a binary counter of them
 * (stack[level]) up to the block's node. */
KU_INLINE void rows_weights(const int NF, const float *in, const float *dout, int T, int F,
                            int n0, int n1, int f0, float *dw)
{
    const int m = n1 - n0 < 4 ? n1 - n0 : 4;
    for (int t0 = 0; t0 < T; t0 += 16) {
        const int nt = T - t0 < 16 ? T - t0 : 16;
        ku_v16 stack[32][ROWS_FB];
        int depth = 0;
        for (int n = n0; n < n1; n += m) {
            rows_node(NF, in + (size_t)n * T + t0, T, nt, dout + (size_t)n * F + f0, F, m,
                      stack[depth++]);
            for (int i = (n - n0) / m; i & 1; i >>= 1, depth--) /* siblings: left + right */
                for (int j = 0; j < NF; j++)
                    stack[depth - 2][j] = ku_add(stack[depth - 2][j], stack[depth - 1][j]);
        }
        for (int j = 0; j < NF; j++) {
            float *dst = dw + (size_t)(f0 + j) * T + t0;
            if (nt == 16)
                ku_store(dst, stack[0][j]);
            else
                ku_store_part(dst, stack[0][j], nt);
        }
    }
}

/* The tree of gradtree.h over samples [n0, n1) (one node: a power-of-two count, aligned) of
 * leaf(n) = dout[n][f] * in[n][t] (from +0, as the per-sample kernel), ROWS_FB filters at a
 * time. */
void conv_grad_rows(const conv_geom *g, const float *in, const float *dout, int n0, int n1,
                    int r0, int r1, float *dw, float *db)
{
    const int T = g->T, F = g->F;
    for (int f0 = r0; f0 < r1; f0 += ROWS_FB) {
        const int nf = r1 - f0 < ROWS_FB ? r1 - f0 : ROWS_FB;
        switch (nf) {
        case 4: rows_weights(4, in, dout, T, F, n0, n1, f0, dw); break;
        case 3: rows_weights(3, in, dout, T, F, n0, n1, f0, dw); break;
        case 2: rows_weights(2, in, dout, T, F, n0, n1, f0, dw); break;
        default: rows_weights(1, in, dout, T, F, n0, n1, f0, dw); break;
        }
        for (int j = 0; j < nf; j++) { /* the bias: leaf 0 + dout[n][f] (bias_grad of one) */
            float stack[32];
            int depth = 0;
            for (int n = n0; n < n1; n++) {
                stack[depth++] = 0.0f + dout[(size_t)n * F + f0 + j];
                for (int i = n - n0; i & 1; i >>= 1, depth--)
                    stack[depth - 2] += stack[depth - 1];
            }
            db[f0 + j] = stack[0];
        }
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
    if (conv_is_dense(g)) { /* lane dots */
        for (int n = lo; n < hi; n++)
            for (int f = 0; f < g->F; f++) {
                float lane[KU_LANES] = {0};
                ku_lanes_dot(lane, w + (size_t)f * g->T, in + (size_t)n * g->T, (size_t)g->T);
                const float y = bias[f] + ku_lanes_total(lane);
                out[(size_t)n * g->F + f] = relu ? ku_relu(y) : y;
            }
        return;
    }
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
        float lane[KU_LANES] = {0};
        for (int p = 0; p < g->NP; p++)
            lane[p % KU_LANES] += d[p];
        db[f] = ku_lanes_total(lane);
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
