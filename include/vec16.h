/* vec16.h - the arithmetic every kernel shares: one multiply-add (fused where the target has
 * FMA), the rectifier, 16-lane reductions and a 16-float vector type whose operations are
 * lane-wise.
 *
 * Determinism: every helper here computes each output float in one fixed order that does not
 * depend on the thread count or the vector width the compiler picks. Every multiply-add of a
 * kernel goes through ku_fma or ku_madd: one fused multiply-add (one rounding) when the target
 * has FMA instructions (KU_FUSED, e.g. -march=native on any x86-64 CPU since 2013), a multiply
 * then an add otherwise; -std=c11 keeps the compiler from fusing anything else on its own. So
 * a build's results are the same for any thread count, and builds for FMA and non-FMA targets
 * differ in the last bits. The 16-float vector (ku_v16) is made of
 * GNU C vectors of the target's width when the compiler has them and is a plain array of 16
 * floats otherwise; its operations are lane-wise, so every target gives the same bits (tests:
 * test_layers.c's *_exact tests against scalar references of each order). */
#ifndef VEC16_H
#define VEC16_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* The rectifier, exactly as the relu layer computes it (NaN gives 0). */
static inline float ku_relu(float x) { return x > 0.0f ? x : 0.0f; }

/* KU_FUSED: whether multiply-adds are fused (x86 FMA; define KU_NO_FMA to turn it off). */
#if defined(__FMA__) && (defined(__x86_64__) || defined(__i386__)) && !defined(KU_NO_FMA)
#define KU_FUSED 1
#include <immintrin.h>
#else
#define KU_FUSED 0
#endif

/* a + w * x: fused (rounded once) when KU_FUSED, else a multiply then an add. */
static inline float ku_fma(float a, float w, float x)
{
#if KU_FUSED
    return fmaf(w, x, a);
#else
    return a + w * x;
#endif
}

/* ---------------------------------------------------------------------------------------
 * 16-lane reductions. A dot product of n floats accumulates element i into lane i % 16 in
 * order, then sums the lanes pairwise (lane j += lane j + half, half = 8, 4, 2, 1). */
#define KU_LANES 16

/* acc[16] += a[0..n) * b[0..n) lane by lane. */
static inline void ku_lanes_dot(float *restrict acc, const float *restrict a,
                                const float *restrict b, size_t n)
{
    size_t i = 0;
    for (; i + KU_LANES <= n; i += KU_LANES)
        for (int j = 0; j < KU_LANES; j++)
            acc[j] = ku_fma(acc[j], a[i + j], b[i + j]);
    for (int j = 0; i + (size_t)j < n; j++)
        acc[j] = ku_fma(acc[j], a[i + (size_t)j], b[i + (size_t)j]);
}

/* acc[16] += a[i] * b[i * stride] for i in [0, n), lane by lane. */
static inline void ku_lanes_dot_strided(float *restrict acc, const float *restrict a,
                                        const float *restrict b, int stride, int n)
{
    for (int i = 0; i < n; i++)
        acc[i % KU_LANES] = ku_fma(acc[i % KU_LANES], a[i], b[(size_t)i * (size_t)stride]);
}

/* acc[16] += a[0..n) lane by lane. */
static inline void ku_lanes_sum(float *restrict acc, const float *restrict a, size_t n)
{
    size_t i = 0;
    for (; i + KU_LANES <= n; i += KU_LANES)
        for (int j = 0; j < KU_LANES; j++)
            acc[j] += a[i + j];
    for (int j = 0; i + (size_t)j < n; j++)
        acc[j] += a[i + (size_t)j];
}

/* Sum of the 16 lanes in the fixed pairwise order (acc is clobbered). */
static inline float ku_lanes_total(float *acc)
{
    for (int half = KU_LANES / 2; half > 0; half /= 2)
        for (int j = 0; j < half; j++)
            acc[j] += acc[j + half];
    return acc[0];
}

/* Dot product of a[0..n) and b[0..n) through the lane accumulator. */
static inline float ku_dot(const float *restrict a, const float *restrict b, size_t n)
{
    float acc[KU_LANES] = {0};
    ku_lanes_dot(acc, a, b, n);
    return ku_lanes_total(acc);
}

/* ---------------------------------------------------------------------------------------
 * ku_v16: 16 floats operated on lane-wise. With GNU C vectors it is 64 / KU_VB vectors of
 * the target's native width (one AVX-512 register, two AVX, four SSE), so the compiler keeps
 * it in registers on every target. Loads and stores are unaligned. */
#if defined(__GNUC__) && !defined(KU_NO_VECTOR_EXT)
/* Passing vectors wider than the baseline ABI's by value between these static inline
 * functions draws a note about the ABI; nothing here crosses a translation unit. */
#pragma GCC diagnostic ignored "-Wpsabi"
#if defined(__AVX512F__)
#define KU_VB 64
#elif defined(__AVX__)
#define KU_VB 32
#else
#define KU_VB 16
#endif
#define KU_NV (64 / KU_VB)
typedef float ku_vn __attribute__((vector_size(KU_VB)));
typedef int ku_vi __attribute__((vector_size(KU_VB)));
typedef struct ku_v16 {
    ku_vn v[KU_NV];
} ku_v16;
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define KU_SHUFFLEVECTOR 1
#endif
#endif

/* part by part, so the compiler keeps each in a register */
static inline ku_v16 ku_load(const float *p)
{
    ku_v16 r;
    for (int k = 0; k < KU_NV; k++) {
        ku_vn x;
        memcpy(&x, p + k * (KU_VB / 4), sizeof x);
        r.v[k] = x;
    }
    return r;
}
static inline void ku_store(float *p, ku_v16 v)
{
    for (int k = 0; k < KU_NV; k++) {
        const ku_vn x = v.v[k];
        memcpy(p + k * (KU_VB / 4), &x, sizeof x);
    }
}
static inline ku_v16 ku_splat(float x)
{
    ku_v16 r;
    for (int k = 0; k < KU_NV; k++)
        r.v[k] = x - (ku_vn){0};
    return r;
}
/* a + w * x on one native vector, lane-wise as ku_fma (fused when KU_FUSED: C has no
 * spelling of a fused vector multiply-add, hence the intrinsics). */
static inline ku_vn ku_vfma(ku_vn a, ku_vn w, ku_vn x)
{
#if KU_FUSED && KU_VB == 64
    return _mm512_fmadd_ps(w, x, a);
#elif KU_FUSED && KU_VB == 32
    return _mm256_fmadd_ps(w, x, a);
#elif KU_FUSED
    return _mm_fmadd_ps(w, x, a);
#else
    return a + w * x;
#endif
}
/* a + b lane-wise. */
static inline ku_v16 ku_add(ku_v16 a, ku_v16 b)
{
    for (int k = 0; k < KU_NV; k++)
        a.v[k] = a.v[k] + b.v[k];
    return a;
}
/* a + w * x lane-wise, as ku_fma. */
static inline ku_v16 ku_madd(ku_v16 a, float w, ku_v16 x)
{
    const ku_vn wv = w - (ku_vn){0}; /* w in every lane (x - 0 is x, even for -0) */
    for (int k = 0; k < KU_NV; k++)
        a.v[k] = ku_vfma(a.v[k], wv, x.v[k]);
    return a;
}
static inline ku_v16 ku_madd_v(ku_v16 a, ku_v16 w, ku_v16 x)
{
    for (int k = 0; k < KU_NV; k++)
        a.v[k] = ku_vfma(a.v[k], w.v[k], x.v[k]);
    return a;
}

/* Loads p[0..rem) into lanes [0, rem), 0 <= rem <= 16, zeros in the others. */
static inline ku_v16 ku_load_part(const float *p, int rem)
{
    float t[16] = {0};
    memcpy(t, p, (size_t)rem * sizeof *t);
    return ku_load(t);
}

/* Lanes [0, rem) of p[0..rem), 0 < rem <= 16; the other lanes hold finite values (callers
 * multiply them by zeros). Reads only p[rem-16..rem) (with AVX-512: one load and a lane
 * rotation) or p[0..rem). */
static inline ku_v16 ku_load_tail(const float *p, int rem)
{
#if KU_NV == 1 && !defined(__clang__)
    const ku_vi lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    ku_v16 r = ku_load(p + rem - 16);
    r.v[0] = __builtin_shuffle(r.v[0], (lane + (16 - rem)) & 15);
    return r;
#else
    return ku_load_part(p, rem);
#endif
}

/* Sum of the 16 lanes in the fixed pairwise order of ku_lanes_total: lane j += lane j + 8,
 * then j + 4, j + 2, j + 1, as whole (half-)vector adds. */
static inline float ku_total(ku_v16 x)
{
#if KU_NV == 1 && defined(KU_SHUFFLEVECTOR)
    typedef float v8 __attribute__((vector_size(32)));
    typedef float v4 __attribute__((vector_size(16)));
    const ku_vn v = x.v[0];
    const v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const v4 c = __builtin_shufflevector(a, a, 0, 1, 2, 3) +
                 __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (c[0] + c[2]) + (c[1] + c[3]);
#elif KU_NV == 2
    const ku_vn a = x.v[0] + x.v[1]; /* lanes j + j+8 */
    float c[4];
    for (int j = 0; j < 4; j++)
        c[j] = a[j] + a[j + 4];
    return (c[0] + c[2]) + (c[1] + c[3]);
#elif KU_NV == 4
    const ku_vn c = (x.v[0] + x.v[2]) + (x.v[1] + x.v[3]); /* lanes j + j+8, then + j+4 */
    return (c[0] + c[2]) + (c[1] + c[3]);
#else
    float acc[16];
    ku_store(acc, x);
    return ku_lanes_total(acc);
#endif
}

/* out[k] = ku_total of the k-th vector, four at a time: the same adds in the same pairs,
 * done on lanes of shared vectors where one vector holds 16 lanes. */
static inline void ku_total4(ku_v16 a4, ku_v16 b4, ku_v16 c4, ku_v16 d4, float *out)
{
#if KU_NV == 1 && defined(KU_SHUFFLEVECTOR)
    typedef float v8 __attribute__((vector_size(32)));
    typedef float v4 __attribute__((vector_size(16)));
    const ku_vn a = a4.v[0], b = b4.v[0], c = c4.v[0], d = d4.v[0];
    /* lanes 0-7: a[j] + a[j+8]; lanes 8-15: b[j] + b[j+8] (q: c, d) */
    const ku_vn p = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20,
                                            21, 22, 23) +
                    __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27,
                                            28, 29, 30, 31);
    const ku_vn q = __builtin_shufflevector(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20,
                                            21, 22, 23) +
                    __builtin_shufflevector(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27,
                                            28, 29, 30, 31);
    /* four lanes each of a, b, c, d: x[j] + x[j+4] */
    const ku_vn r = __builtin_shufflevector(p, q, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24,
                                            25, 26, 27) +
                    __builtin_shufflevector(p, q, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28,
                                            29, 30, 31);
    /* two lanes each: x[j] + x[j+2] */
    const v8 t = __builtin_shufflevector(r, r, 0, 1, 4, 5, 8, 9, 12, 13) +
                 __builtin_shufflevector(r, r, 2, 3, 6, 7, 10, 11, 14, 15);
    /* one lane each: x[0] + x[1] */
    const v4 u = __builtin_shufflevector(t, t, 0, 2, 4, 6) +
                 __builtin_shufflevector(t, t, 1, 3, 5, 7);
    memcpy(out, &u, sizeof u);
#else
    out[0] = ku_total(a4);
    out[1] = ku_total(b4);
    out[2] = ku_total(c4);
    out[3] = ku_total(d4);
#endif
}
#else /* no GNU vectors: plain arrays, the same lane-wise operations and bits */
typedef struct ku_v16 {
    float f[16];
} ku_v16;

static inline ku_v16 ku_load(const float *p)
{
    ku_v16 v;
    memcpy(v.f, p, sizeof v.f);
    return v;
}
static inline void ku_store(float *p, ku_v16 v) { memcpy(p, v.f, sizeof v.f); }
static inline ku_v16 ku_splat(float x)
{
    ku_v16 v;
    for (int j = 0; j < 16; j++)
        v.f[j] = x;
    return v;
}
static inline ku_v16 ku_add(ku_v16 a, ku_v16 b)
{
    for (int j = 0; j < 16; j++)
        a.f[j] += b.f[j];
    return a;
}
static inline ku_v16 ku_madd(ku_v16 a, float w, ku_v16 x)
{
    for (int j = 0; j < 16; j++)
        a.f[j] = ku_fma(a.f[j], w, x.f[j]);
    return a;
}
static inline ku_v16 ku_madd_v(ku_v16 a, ku_v16 w, ku_v16 x)
{
    for (int j = 0; j < 16; j++)
        a.f[j] = ku_fma(a.f[j], w.f[j], x.f[j]);
    return a;
}
static inline ku_v16 ku_load_part(const float *p, int rem)
{
    ku_v16 v = ku_splat(0.0f);
    memcpy(v.f, p, (size_t)rem * sizeof *v.f);
    return v;
}
static inline ku_v16 ku_load_tail(const float *p, int rem) { return ku_load_part(p, rem); }
static inline float ku_total(ku_v16 v) { return ku_lanes_total(v.f); }
static inline void ku_total4(ku_v16 a, ku_v16 b, ku_v16 c, ku_v16 d, float *out)
{
    out[0] = ku_total(a);
    out[1] = ku_total(b);
    out[2] = ku_total(c);
    out[3] = ku_total(d);
}
#endif

/* Lanes [0, rem) of p[0..rem), 0 < rem < 16, the other lanes finite (results there are
 * discarded): ku_load_tail when the 16 floats before p + rem may be read (before: at least 16
 * floats of the same row end at p + rem), else ku_load_part. */
static inline ku_v16 ku_load_rem(const float *p, int rem, int before)
{
    return before ? ku_load_tail(p, rem) : ku_load_part(p, rem);
}

/* Stores lanes [0, rem) of v to p[0..rem). */
static inline void ku_store_part(float *p, ku_v16 v, int rem)
{
    float t[16];
    ku_store(t, v);
    memcpy(p, t, (size_t)rem * sizeof *t);
}

/* Forces inlining where a kernel is specialised on a constant block size. */
#if defined(__GNUC__)
#define KU_INLINE static inline __attribute__((always_inline))
#else
#define KU_INLINE static inline
#endif


/* ---------------------------------------------------------------------------------------
 * Short runs of floats (im2col rows, a kernel row of taps): whole vectors, then one masked
 * vector for the tail, where the target has AVX-512 masks; plain loops elsewhere. */

/* dst[0..n) = src[0..n). */
static inline void ku_copy(float *restrict dst, const float *restrict src, int n)
{
#if defined(__AVX512F__)
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
#else
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
#endif
}

/* dst[i] += src[i] for i < n (each element one add). */
static inline void ku_add_into(float *restrict dst, const float *restrict src, int n)
{
#if defined(__AVX512F__)
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i),
                                                _mm512_loadu_ps(src + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + i),
                                                        _mm512_maskz_loadu_ps(m, src + i)));
    }
#else
    for (int i = 0; i < n; i++)
        dst[i] += src[i];
#endif
}

/* ku_copy that may also write up to 15 floats after dst + n (with anything): for rows filled
 * in increasing order in a buffer with 16 floats of slack at its end. A masked store is slow
 * on some CPUs (Zen 4); a masked load is not. */
static inline void ku_copy_over(float *restrict dst, const float *restrict src, int n)
{
#if defined(__AVX512F__)
    for (int i = 0; i < n; i += 16) {
        const int rem = n - i < 16 ? n - i : 16;
        _mm512_storeu_ps(dst + i, _mm512_maskz_loadu_ps((__mmask16)((1u << rem) - 1u), src + i));
    }
#else
    ku_copy(dst, src, n);
#endif
}

/* ku_add_into that reads and writes back unchanged up to 15 floats after dst + n (adding
 * -0, which changes no float): for a buffer only this thread uses, with 16 floats of slack. */
static inline void ku_add_over(float *restrict dst, const float *restrict src, int n)
{
#if defined(__AVX512F__)
    const __m512 minus_zero = _mm512_set1_ps(-0.0f);
    for (int i = 0; i < n; i += 16) {
        const int rem = n - i < 16 ? n - i : 16;
        const __m512 v = _mm512_mask_loadu_ps(minus_zero, (__mmask16)((1u << rem) - 1u), src + i);
        _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i), v));
    }
#else
    ku_add_into(dst, src, n);
#endif
}

/* How many 16-float accumulators a kernel keeps in registers at once: 8 with AVX-512 (32
 * registers of 16 floats), 6 with AVX (16 of 8), 3 otherwise (SSE: 16 of 4). Only the speed
 * depends on it: blocking never changes an output's order of operations. */
#if defined(__AVX512F__)
#define KU_ACC 8
#elif defined(__AVX__)
#define KU_ACC 6
#else
#define KU_ACC 3
#endif
#define KU_ACC_MAX 8

#endif
