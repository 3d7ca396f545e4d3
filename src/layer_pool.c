/* layer_pool.c - max and average pooling over square windows, per channel, no padding, any
 * size and stride; every kernel runs over a range of samples.
 *
 * Max pooling stores no indices: backward recomputes each window's first maximal element
 * (row-major scan, strict >), the comparisons forward makes. Windows may overlap (stride <
 * size); their gradients then accumulate, windows in scan order. The loops run along a row of
 * windows (ox innermost), so they vectorise for any window. */
#include <string.h>

#include "cfg_read.h"
#include "vec16.h"
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
    layer_no_params(l);
    return 0;
}

/* Output columns handled at once by maxpool's row loops (their state lives on the stack). */
#define POOL_COLS 64

#if defined(__AVX512F__)
/* Lanes j < nc: p[j * S]; the others 0. Reads only those floats. */
static inline __m512 load_strided(const float *p, int S, int nc)
{
    const __mmask16 m = (__mmask16)((1u << nc) - 1u);
    if (S == 1)
        return _mm512_maskz_loadu_ps(m, p);
    if (S == 2) { /* two loads and one lane shuffle */
        const int span = 2 * nc - 1; /* floats from p[0] to p[2 (nc - 1)] */
        const __mmask16 lo = (__mmask16)(span >= 16 ? 0xffffu : (1u << span) - 1u);
        const __mmask16 hi = (__mmask16)(span <= 16 ? 0u : (1u << (span - 16)) - 1u);
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, p), even,
                                      _mm512_maskz_loadu_ps(hi, p + 16));
    }
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(S));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, p, 4);
}
#endif

/* m[j] = the window maximum (first in scan order) and at[j] its offset from the window's
 * corner, for the windows of output row oy, columns [ox0, ox0 + nc), nc <= POOL_COLS.
 * in_p: [H][W]. The comparisons of the scan, strict >, a vector of windows at a time. */
static void max_row(const float *in_p, int W, int size, int S, int oy, int ox0, int nc,
                    float *restrict m, int *restrict at)
{
    const float *corner = in_p + (size_t)oy * S * W + (size_t)ox0 * S;
#if defined(__AVX512F__)
    for (int j0 = 0; j0 < nc; j0 += 16) {
        const int k = nc - j0 < 16 ? nc - j0 : 16;
        const float *c0 = corner + (size_t)j0 * S;
        __m512 mv = load_strided(c0, S, k);
        __m512i av = _mm512_setzero_si512();
        for (int ky = 0; ky < size; ky++)
            for (int kx = ky ? 0 : 1; kx < size; kx++) {
                const __m512 v = load_strided(c0 + (size_t)ky * W + kx, S, k);
                const __mmask16 gt = _mm512_cmp_ps_mask(v, mv, _CMP_GT_OQ);
                mv = _mm512_mask_mov_ps(mv, gt, v);
                av = _mm512_mask_mov_epi32(av, gt, _mm512_set1_epi32(ky * W + kx));
            }
        const __mmask16 out = (__mmask16)((1u << k) - 1u);
        _mm512_mask_storeu_ps(m + j0, out, mv);
        _mm512_mask_storeu_epi32(at + j0, out, av);
    }
#else
    for (int j = 0; j < nc; j++) {
        m[j] = corner[(size_t)j * S];
        at[j] = 0;
    }
    for (int ky = 0; ky < size; ky++)
        for (int kx = ky ? 0 : 1; kx < size; kx++) {
            const float *src = corner + (size_t)ky * W + kx;
            const int off = ky * W + kx;
            for (int j = 0; j < nc; j++) {
                const float v = src[(size_t)j * S];
                at[j] = v > m[j] ? off : at[j];
                m[j] = v > m[j] ? v : m[j];
            }
        }
#endif
}

#if defined(__AVX512F__)
/* 2x2 windows at stride 2, nc of them side by side from corner (row pitch W): each window's
 * winner (at[j]: 0, 1, W or W + 1) gets 0 + g[j] (as += into the zeroed plane), its other
 * three elements 0; the two rows' 2 nc elements written as whole vectors. */
static void tile2_rows(float *corner, int W, const float *g, const int *at, int nc)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                         15, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int j0 = 0; j0 < nc; j0 += 16) {
        const int k = nc - j0 < 16 ? nc - j0 : 16;
        const __mmask16 in = (__mmask16)((1u << k) - 1u);
        const __m512 v = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(in, g + j0));
        const __m512i a = _mm512_maskz_loadu_epi32(in, at + j0);
        for (int ky = 0; ky < 2; ky++) {
            const __m512 left = _mm512_maskz_mov_ps(
                _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(ky * W)), v);
            const __m512 right = _mm512_maskz_mov_ps(
                _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(ky * W + 1)), v);
            float *row = corner + (size_t)ky * W + (size_t)j0 * 2;
            /* lanes 2j, 2j + 1 of the row: window j's left and right element */
            const int n = 2 * k;
            _mm512_mask_storeu_ps(row, (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u),
                                  _mm512_permutex2var_ps(left, lo, right));
            if (n > 16)
                _mm512_mask_storeu_ps(row + 16, (__mmask16)((1u << (n - 16)) - 1u),
                                      _mm512_permutex2var_ps(left, hi, right));
        }
    }
}
#endif

/* in: B x [C][H][W], out: B x [C][OH][OW], samples [lo, hi). */
static void maxpool_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                            int hi)
{
    (void)p;
    const int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    float m[POOL_COLS];
    int at[POOL_COLS];
    for (size_t q = (size_t)lo * l->in.c; q < (size_t)hi * l->in.c; q++) { /* planes */
        const float *in_p = in + q * H * W;
        float *out_p = out + q * OH * OW;
        for (int oy = 0; oy < OH; oy++)
            for (int ox0 = 0; ox0 < OW; ox0 += POOL_COLS) {
                const int nc = OW - ox0 < POOL_COLS ? OW - ox0 : POOL_COLS;
                max_row(in_p, W, size, S, oy, ox0, nc, m, at);
                memcpy(out_p + (size_t)oy * OW + ox0, m, (size_t)nc * sizeof *m);
            }
    }
}

/* in, din: B x [C][H][W] (din overwritten), dout: B x [C][OH][OW], samples [lo, hi): din = 0,
 * then each window's first maximum += its gradient, windows in scan order. */
static void maxpool_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                             const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)out;
    if (!din)
        return;
    const int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    float m[POOL_COLS];
    int at[POOL_COLS];
#if defined(__AVX512F__)
    /* 2x2 windows covering the plane exactly: tile2_rows writes every element */
    const int tiled = size == 2 && S == 2 && H == 2 * OH && W == 2 * OW;
#else
    const int tiled = 0;
#endif
    for (size_t q = (size_t)lo * l->in.c; q < (size_t)hi * l->in.c; q++) {
        const float *in_p = in + q * H * W, *d_p = dout + q * OH * OW;
        float *din_p = din + q * H * W;
        if (!tiled)
            memset(din_p, 0, (size_t)H * W * sizeof *din_p);
        for (int oy = 0; oy < OH; oy++)
            for (int ox0 = 0; ox0 < OW; ox0 += POOL_COLS) {
                const int nc = OW - ox0 < POOL_COLS ? OW - ox0 : POOL_COLS;
                max_row(in_p, W, size, S, oy, ox0, nc, m, at);
                float *corner = din_p + (size_t)oy * S * W + (size_t)ox0 * S;
                const float *g = d_p + (size_t)oy * OW + ox0;
#if defined(__AVX512F__)
                if (size == 2 && S == 2) { /* windows tile two rows: write them whole */
                    tile2_rows(corner, W, g, at, nc);
                    continue;
                }
#endif
                for (int j = 0; j < nc; j++)
                    corner[(size_t)j * S + at[j]] += g[j];
            }
    }
}

/* in: B x [C][H][W], out: B x [C][OH][OW]: the window's sum (row-major) over size^2. */
static void avgpool_forward(const layer *l, const pass_ctx *p, const float *in, float *out, int lo,
                            int hi)
{
    (void)p;
    const int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    const float area = (float)size * (float)size;
    for (size_t q = (size_t)lo * l->in.c; q < (size_t)hi * l->in.c; q++) {
        const float *in_p = in + q * H * W;
        float *out_p = out + q * OH * OW;
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

/* dout: B x [C][OH][OW], din: B x [C][H][W] (overwritten): each window's gradient divided
 * by size^2, spread over the window, windows in scan order. */
static void avgpool_backward(layer *l, const pass_ctx *p, const float *in, const float *out,
                             const float *dout, float *din, int lo, int hi)
{
    (void)p;
    (void)in;
    (void)out;
    if (!din)
        return;
    const int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w;
    const int size = l->u.pool.size, S = l->u.pool.stride;
    const float area = (float)size * (float)size;
    for (size_t q = (size_t)lo * l->in.c; q < (size_t)hi * l->in.c; q++) {
        const float *d_p = dout + q * OH * OW;
        float *din_p = din + q * H * W;
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
    .parse = pool_parse,
    .setup = pool_setup,
    .split = layer_split_samples,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

const layer_ops avgpool_ops = {
    .kind = "avgpool",
    .keys = pool_keys,
    .parse = pool_parse,
    .setup = pool_setup,
    .split = layer_split_samples,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};
