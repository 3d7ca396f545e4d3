/* gemm.c - the small matrix product of gemm.h: register tiles reading A and B where they are.
 *
 * C[M][N] = start + A[M][K] B[K][N], as loops:
 *   k blocks of GEMM_KC steps      blocks after the first continue every chain from C (ACC)
 *     m tiles of mr rows           mr <= gemm_mr_max[nv], the tiles balanced
 *       n tiles of nv x 16 columns nv by a cost estimate; the last vector masked to N
 *         tile kernel              mr x nv vectors of accumulators, k in order: per step nv
 *                                  vectors of B's row and one broadcast of A(r, k) per row
 * Blocking picks which chains run together, never an operation of a chain: the bits equal
 * gemm_ref's on every build. A is read in place, row-major (a_cs = 1) or transposed
 * (a_rs = 1); only with neither stride 1 is a tile's rows copied into scratch first. (Packing
 * a row-major A made 128x16x1600 2.4x slower: where N is small each A value serves few FMAs.)
 * With AVX-512 a tile holds up to 24 accumulators (32 zmm registers; an FMA has 4 cycles of
 * latency and Zen 4 issues one zmm FMA a cycle, so 24 chains hide it with room for the loads);
 * elsewhere ku_v16 tiles of up to 4 rows x 16 columns. */
#include "gemm.h"

#include "vec16.h"

/* Steps of one k block: B's kc rows stay in L2 while the m tiles sweep them (512 x 256 floats
 * = 512 KiB of Zen 4's 1 MiB). Blocks of 256, 512 and 1024 steps timed alike (within 3%) on
 * the shapes, 128 slower. */
#define GEMM_KC 512

/* ---- vectors of 16 columns: AVX-512 registers, or ku_v16 ---- */
#if defined(__AVX512F__)
#include <immintrin.h>
#define GEMM_NV_MAX 4  /* vectors of 16 columns per tile */
#define GEMM_MR_ALL 24 /* the most rows any tile has */
/* The most rows of a tile of nv vectors: 24 accumulators, nv registers for B's row. */
static const int gemm_mr_max[GEMM_NV_MAX + 1] = {0, 24, 12, 8, 6};

typedef __m512 gvec;
typedef __mmask16 gmask; /* the lanes of a tile's last vector that are columns of C */

static inline gmask gmask_make(int rem) { return (gmask)((1u << rem) - 1u); }
static inline gvec gvec_zero(void) { return _mm512_setzero_ps(); }
static inline gvec gvec_splat(float x) { return _mm512_set1_ps(x); }
static inline gvec gvec_load(const float *p) { return _mm512_loadu_ps(p); }
/* B's vector for this step into a register: left to itself gcc folds the load into each of
 * the mr FMAs that use it, mr loads a step where one does. */
static inline gvec gvec_load_b(const float *p, gmask m)
{
    gvec v = _mm512_maskz_loadu_ps(m, p);
    __asm__("" : "+v"(v));
    return v;
}
static inline gvec gvec_load_last(const float *p, gmask m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void gvec_store(float *p, gvec v) { _mm512_storeu_ps(p, v); }
static inline void gvec_store_last(float *p, gvec v, gmask m) { _mm512_mask_storeu_ps(p, m, v); }
/* c + a[0] * b, as ku_fma (one tile vector wide, the broadcast folds into the FMA). */
static inline gvec gvec_madd(gvec c, const float *a, gvec b)
{
#if KU_FUSED
    return _mm512_fmadd_ps(_mm512_set1_ps(*a), b, c);
#else
    return _mm512_add_ps(c, _mm512_mul_ps(_mm512_set1_ps(*a), b));
#endif
}
#else
#define GEMM_NV_MAX 1
#define GEMM_MR_ALL 4
static const int gemm_mr_max[GEMM_NV_MAX + 1] = {0, 4};

typedef ku_v16 gvec;
typedef int gmask; /* columns in the last vector, 1..16 */

static inline gmask gmask_make(int rem) { return rem; }
static inline gvec gvec_zero(void) { return ku_splat(0.0f); }
static inline gvec gvec_splat(float x) { return ku_splat(x); }
static inline gvec gvec_load(const float *p) { return ku_load(p); }
static inline gvec gvec_load_last(const float *p, gmask m)
{
    return m == 16 ? ku_load(p) : ku_load_part(p, m);
}
static inline gvec gvec_load_b(const float *p, gmask m) { return gvec_load_last(p, m); }
static inline void gvec_store(float *p, gvec v) { ku_store(p, v); }
static inline void gvec_store_last(float *p, gvec v, gmask m) { ku_store_part(p, v, m); }
static inline gvec gvec_madd(gvec c, const float *a, gvec b) { return ku_madd(c, *a, b); }
#endif

/* ---- the tile kernel ---- */

/* acc[r][v] += A(r, k) * B's vector v of the row at b, for every r < MR, v < NV: one step. */
KU_INLINE void gemm_step(const int MR, const int NV, gvec acc[][GEMM_NV_MAX],
                         const float *restrict ak, ptrdiff_t rs, const float *restrict b,
                         gmask last)
{
    gvec bv[GEMM_NV_MAX];
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; v++)
        bv[v] = gvec_load_b(b + 16 * v, gmask_make(16));
    bv[NV - 1] = gvec_load_b(b + 16 * (NV - 1), last); /* lanes past N: 0 */
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = gvec_madd(acc[r][v], ak + r * rs, bv[v]);
}

/* A tile: C[r][0 .. 16 NV) for r < MR over kc steps, k in order; lanes of the last vector
 * outside `last` are neither read nor written. A(r, k) = ap[r * as + k] when RM (row-major),
 * ap[k * as + r] otherwise (k-major: a transposed A or a packed panel); B's row k at
 * b + k * ldb. */
KU_INLINE void gemm_tile(const int MR, const int NV, const int RM, int kc,
                         const float *restrict ap, ptrdiff_t as, const float *restrict b,
                         ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, gmask last,
                         gemm_start st, const float *restrict row_init)
{
    const ptrdiff_t rs = RM ? as : 1, cs = RM ? 1 : as; /* A(r, k) = ap[r * rs + k * cs] */
    gvec acc[GEMM_MR_ALL][GEMM_NV_MAX];
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const float *cv = c + r * ldc + 16 * v;
            if (st == GEMM_ACC)
                acc[r][v] = v == NV - 1 ? gvec_load_last(cv, last) : gvec_load(cv);
            else
                acc[r][v] = st == GEMM_ROWS ? gvec_splat(row_init[r]) : gvec_zero();
        }
    }
    int k = 0;
    if (RM && NV == 1) {
        /* Four steps a round: gcc keeps most of the mr row offsets of a row-major A in memory,
         * and this loads each once per four broadcasts (+17% at 128x16x1600). Each chain
         * still takes its steps in k order. */
        for (; k + 4 <= kc; k += 4, ap += 4, b += 4 * ldb) {
            gvec bv[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++)
                bv[u] = gvec_load_b(b + u * ldb, last);
#pragma GCC unroll 32
            for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++)
                    acc[r][0] = gvec_madd(acc[r][0], ap + r * rs + u, bv[u]);
        }
    }
    for (; k < kc; k++, ap += cs, b += ldb)
        gemm_step(MR, NV, acc, ap, rs, b, last);
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV - 1; v++)
            gvec_store(c + r * ldc + 16 * v, acc[r][v]);
        gvec_store_last(c + r * ldc + 16 * (NV - 1), acc[r][NV - 1], last);
    }
}

/* A panel: nt tiles side by side, C[r][0 .. 16 NV nt); only the last tile's last vector is
 * masked. One function per (rows, vectors, A's layout), so each keeps its accumulators in
 * registers: _k reads A k-major, _r row-major. */
typedef void (*gemm_panel_fn)(int kc, const float *restrict ap, ptrdiff_t as,
                              const float *restrict b, ptrdiff_t ldb, float *restrict c,
                              ptrdiff_t ldc, int nt, gmask last, gemm_start st,
                              const float *restrict row_init);
KU_INLINE void gemm_panel(const int MR, const int NV, const int RM, int kc,
                          const float *restrict ap, ptrdiff_t as, const float *restrict b,
                          ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, int nt, gmask last,
                          gemm_start st, const float *restrict row_init)
{
    for (int t = 0; t < nt - 1; t++) /* full tiles: the mask a constant, so no masking */
        gemm_tile(MR, NV, RM, kc, ap, as, b + 16 * NV * t, ldb, c + 16 * NV * t, ldc,
                  gmask_make(16), st, row_init);
    gemm_tile(MR, NV, RM, kc, ap, as, b + 16 * NV * (nt - 1), ldb, c + 16 * NV * (nt - 1), ldc,
              last, st, row_init);
}
#define GEMM_PANEL_DEF(MR, NV)                                                                 \
    static void gemm_panel_##MR##_##NV##_k(                                                    \
        int kc, const float *restrict ap, ptrdiff_t as, const float *restrict b, ptrdiff_t ldb, \
        float *restrict c, ptrdiff_t ldc, int nt, gmask last, gemm_start st,                   \
        const float *restrict row_init)                                                        \
    {                                                                                          \
        gemm_panel(MR, NV, 0, kc, ap, as, b, ldb, c, ldc, nt, last, st, row_init);             \
    }                                                                                          \
    static void gemm_panel_##MR##_##NV##_r(                                                    \
        int kc, const float *restrict ap, ptrdiff_t as, const float *restrict b, ptrdiff_t ldb, \
        float *restrict c, ptrdiff_t ldc, int nt, gmask last, gemm_start st,                   \
        const float *restrict row_init)                                                        \
    {                                                                                          \
        gemm_panel(MR, NV, 1, kc, ap, as, b, ldb, c, ldc, nt, last, st, row_init);             \
    }
#define GEMM_PANEL_PTR(MR, NV) {gemm_panel_##MR##_##NV##_k, gemm_panel_##MR##_##NV##_r},
#define GEMM_ROWS_4(F, NV) F(1, NV) F(2, NV) F(3, NV) F(4, NV)
#define GEMM_ROWS_6(F, NV) GEMM_ROWS_4(F, NV) F(5, NV) F(6, NV)
#define GEMM_ROWS_8(F, NV) GEMM_ROWS_6(F, NV) F(7, NV) F(8, NV)
#define GEMM_ROWS_12(F, NV) GEMM_ROWS_8(F, NV) F(9, NV) F(10, NV) F(11, NV) F(12, NV)
#define GEMM_ROWS_24(F, NV)                                                                    \
    GEMM_ROWS_12(F, NV) F(13, NV) F(14, NV) F(15, NV) F(16, NV) F(17, NV) F(18, NV) F(19, NV) \
    F(20, NV) F(21, NV) F(22, NV) F(23, NV) F(24, NV)

/* gemm_panels[nv - 1][mr - 1][row-major A], mr <= gemm_mr_max[nv] */
#if GEMM_NV_MAX == 4
GEMM_ROWS_24(GEMM_PANEL_DEF, 1)
GEMM_ROWS_12(GEMM_PANEL_DEF, 2)
GEMM_ROWS_8(GEMM_PANEL_DEF, 3)
GEMM_ROWS_6(GEMM_PANEL_DEF, 4)
static const gemm_panel_fn gemm_panels[GEMM_NV_MAX][GEMM_MR_ALL][2] = {
    {GEMM_ROWS_24(GEMM_PANEL_PTR, 1)},
    {GEMM_ROWS_12(GEMM_PANEL_PTR, 2)},
    {GEMM_ROWS_8(GEMM_PANEL_PTR, 3)},
    {GEMM_ROWS_6(GEMM_PANEL_PTR, 4)},
};
#else
GEMM_ROWS_4(GEMM_PANEL_DEF, 1)
static const gemm_panel_fn gemm_panels[GEMM_NV_MAX][GEMM_MR_ALL][2] = {
    {GEMM_ROWS_4(GEMM_PANEL_PTR, 1)},
};
#endif

/* ---- the driver ---- */

/* p[k * mr + r] = A(r, k) for r < mr, k < kc: a k-major copy of A when neither of its
 * strides is 1. */
static void gemm_pack(const float *restrict a, ptrdiff_t a_rs, ptrdiff_t a_cs, int mr, int kc,
                      float *restrict p)
{
    for (int r = 0; r < mr; r++)
        for (int k = 0; k < kc; k++)
            p[k * mr + r] = a[r * a_rs + k * a_cs];
}

size_t gemm_scratch_floats(void) { return (size_t)GEMM_MR_ALL * GEMM_KC; }

/* C = the start values (K = 0). */
static void gemm_fill_start(int M, int N, float *c, ptrdiff_t ldc, gemm_start start,
                            const float *row_init)
{
    if (start == GEMM_ACC)
        return;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            c[m * ldc + n] = start == GEMM_ROWS ? row_init[m] : 0.0f;
}

/* Estimated cycles per k step of tiles nv vectors wide over all of C: an FMA a cycle, at
 * least 4 chains to cover its latency, a cycle of loop and load overhead per tile. */
static long gemm_cost(int M, int nvec, int nv)
{
    const int mt = (M + gemm_mr_max[nv] - 1) / gemm_mr_max[nv], full = nvec / nv,
              tail = nvec % nv;
    long cost = 0;
    for (int t = 0; t < mt; t++) {
        const int mr = (int)((long long)M * (t + 1) / mt - (long long)M * t / mt);
        cost += (long)full * ((mr * nv > 4 ? mr * nv : 4) + 1);
        if (tail)
            cost += (mr * tail > 4 ? mr * tail : 4) + 1;
    }
    return cost;
}

void gemm(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
          ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start, const float *row_init,
          float *scratch)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        gemm_fill_start(M, N, c, ldc, start, row_init);
        return;
    }
    /* tiles of nv vectors: the cheapest by gemm_cost, then m tiles of balanced height */
    const int nvec = (N + 15) / 16;
    int nv = 1;
    for (int w = 2; w <= GEMM_NV_MAX && w <= nvec; w++)
        if (gemm_cost(M, nvec, w) < gemm_cost(M, nvec, nv))
            nv = w;
    const int tiles = (M + gemm_mr_max[nv] - 1) / gemm_mr_max[nv];
    const int full = nvec / nv, tail = nvec % nv; /* n tiles of nv vectors, then one of tail */
    const gmask last = gmask_make(N - 16 * (nvec - 1));
    const int row_major = a_cs == 1 && a_rs != 1;
    for (int k0 = 0; k0 < K; k0 += GEMM_KC) {
        const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        const gemm_start st = k0 == 0 ? start : GEMM_ACC; /* later blocks continue from C */
        for (int t = 0; t < tiles; t++) {
            const int m0 = (int)((long long)M * t / tiles);
            const int mr = (int)((long long)M * (t + 1) / tiles) - m0;
            const float *ap = a + m0 * a_rs + k0 * a_cs;
            ptrdiff_t as = row_major ? a_rs : a_cs;
            if (a_rs != 1 && a_cs != 1) {
                gemm_pack(ap, a_rs, a_cs, mr, kc, scratch);
                ap = scratch;
                as = mr;
            }
            const float *init = start == GEMM_ROWS ? row_init + m0 : NULL;
            const float *bk = b + k0 * ldb;
            float *cm = c + m0 * ldc;
            if (full)
                gemm_panels[nv - 1][mr - 1][row_major](kc, ap, as, bk, ldb, cm, ldc, full,
                                                       tail ? gmask_make(16) : last, st, init);
            if (tail)
                gemm_panels[tail - 1][mr - 1][row_major](kc, ap, as, bk + 16 * nv * full, ldb,
                                                         cm + 16 * nv * full, ldc, 1, last, st,
                                                         init);
        }
    }
}

void gemm_ref(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
              const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start,
              const float *row_init)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float s = start == GEMM_ACC    ? c[m * ldc + n]
                      : start == GEMM_ROWS ? row_init[m]
                                           : 0.0f;
            for (int k = 0; k < K; k++)
                s = ku_fma(s, a[m * a_rs + k * a_cs], b[k * ldb + n]);
            c[m * ldc + n] = s;
        }
}
