/* fma_peak.c - the measured FMA peak of the benchmarks (fma_peak.h). */
#include "fma_peak.h"

#include "bench_clock.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

#ifdef PEAK_X86
/* 12 independent FMA chains; returns a sum so the loop is not optimised away. Flops =
 * iters * 12 * lanes * 2. */
__attribute__((target("avx512f"))) static float fma_loop_512(long iters)
{
    __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a[12];
    for (int j = 0; j < 12; j++)
        a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++)
            a[j] = _mm512_fmadd_ps(a[j], m, c);
    for (int j = 1; j < 12; j++)
        a[0] = _mm512_add_ps(a[0], a[j]);
    return _mm512_reduce_add_ps(a[0]);
}

__attribute__((target("avx2,fma"))) static float fma_loop_256(long iters)
{
    __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a[12];
    for (int j = 0; j < 12; j++)
        a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++)
            a[j] = _mm256_fmadd_ps(a[j], m, c);
    float out[8], s = 0.0f;
    for (int j = 1; j < 12; j++)
        a[0] = _mm256_add_ps(a[0], a[j]);
    _mm256_storeu_ps(out, a[0]);
    for (int j = 0; j < 8; j++)
        s += out[j];
    return s;
}
#endif

const char *fma_peak_isa(void)
{
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return "AVX-512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "AVX2+FMA";
#endif
    return "no FMA";
}

double fma_peak_gflops(int threads)
{
#ifdef PEAK_X86
    const int wide = strcmp(fma_peak_isa(), "AVX-512") == 0, lanes = wide ? 16 : 8;
    if (!wide && strcmp(fma_peak_isa(), "AVX2+FMA") != 0)
        return 0.0;
    const long iters = 20000000;
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int r = -1; r < 5; r++) { /* r = -1: half a second for the clock to ramp up */
        const double t0 = bench_wall();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            float s = 0.0f;
            if (r < 0)
                while (bench_wall() - t0 < 0.5)
                    s += wide ? fma_loop_512(iters / 100) : fma_loop_256(iters / 100);
            else
                s = wide ? fma_loop_512(iters) : fma_loop_256(iters);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += s;
        }
        const double gflops = (double)threads * iters * 12 * lanes * 2 / (bench_wall() - t0) / 1e9;
        if (r >= 0)
            best = gflops > best ? gflops : best;
    }
    (void)sink;
    return best;
#else
    (void)threads;
    return 0.0;
#endif
}
