/* gemm_bench.c - lenet-gemm-bench: gemm (src/gemm.c) against gemm_ref and, when built with
 * it (-Dlibxsmm), libxsmm's JIT kernels, on the GEMM shapes of the convolution and dense
 * layers (issue 9), one thread.
 *
 * For every shape it checks gemm == gemm_ref bit for bit and whether libxsmm's C equals
 * gemm_ref's (else the largest difference in ulps), then times the three in turn inside each
 * repeat (so all see the same machine) and prints medians as GFLOP/s and as a share of one
 * core's FMA peak, measured here by a loop of independent FMA chains (bench.c's method).
 * Operands stay in cache between calls, as im2col's freshly written scratch is.
 *
 * libxsmm is column-major: our row-major C[M][N] = A B is C^T = B^T A^T, a kernel with
 * m = N, n = M, k = K, lda = ldb, ldb = a_rs, ldc = ldc, beta 0 (start ZERO) or 1 (start ROWS:
 * C filled with the row values first, inside the timing). A transposed A (a_cs != 1) is asked
 * for with LIBXSMM_GEMM_FLAG_TRANS_B; where libxsmm refuses it, A is copied to row-major first
 * (the copy timed too) and the table says so. Dispatch is not in the timing: the table gives
 * the first call's (the JIT) and a later call's (a look-up) per shape.
 *
 * Usage: lenet-gemm-bench [--repeats N] [--ms T] */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif
#ifdef HAVE_LIBXSMM
#include <libxsmm.h>
#endif

#include "bench_clock.h"
#include "fma_peak.h"
#include "gemm.h"
#include "rng.h"

typedef struct gshape {
    const char *use;
    int M, N, K;
    int trans_a; /* A given as A^T[K][M]: a_rs = 1, a_cs = M */
    gemm_start start;
} gshape;

/* forward: out[F][P] = bias rows + W[F][T] Col[T][P]; weight gradient per sample:
 * dW[F][T] = dout[F][P] ColT[P][T]; input gradient: dColT[P][T] = dout^T[P][F] W[F][T];
 * dense: y[B][U] = x[B][I] W^T[I][U]. */
static const gshape shapes[] = {
    {"fwd", 6, 784, 25, 0, GEMM_ROWS},      {"fwd", 16, 100, 150, 0, GEMM_ROWS},
    {"fwd", 32, 1024, 25, 0, GEMM_ROWS},    {"fwd", 64, 144, 800, 0, GEMM_ROWS},
    {"fwd", 128, 16, 1600, 0, GEMM_ROWS},   {"fwd", 64, 256, 576, 0, GEMM_ROWS},
    {"fwd", 32, 256, 288, 0, GEMM_ROWS},    {"fwd", 64, 64, 800, 0, GEMM_ROWS},
    {"wgrad", 6, 25, 784, 0, GEMM_ZERO},    {"wgrad", 16, 150, 100, 0, GEMM_ZERO},
    {"wgrad", 32, 25, 1024, 0, GEMM_ZERO},  {"wgrad", 64, 800, 144, 0, GEMM_ZERO},
    {"wgrad", 128, 1600, 4, 0, GEMM_ZERO},  {"wgrad", 64, 576, 256, 0, GEMM_ZERO},
    {"wgrad", 64, 800, 64, 0, GEMM_ZERO},   {"igrad", 100, 150, 16, 1, GEMM_ZERO},
    {"igrad", 144, 800, 64, 1, GEMM_ZERO},  {"igrad", 4, 1600, 128, 1, GEMM_ZERO},
    {"igrad", 256, 576, 64, 1, GEMM_ZERO},  {"dense", 8, 256, 512, 0, GEMM_ZERO},
    {"dense", 8, 84, 120, 0, GEMM_ZERO},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))
#define MAX_REPEATS 99

/* Busy CPU seconds of the whole machine and of this process (bench.c's noise measure). */
static void cpu_seconds(double *all, double *own)
{
    unsigned long long v[8] = {0};
    *all = -1.0;
    FILE *f = fopen("/proc/stat", "r");
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4], &v[5], &v[6], &v[7]) == 8)
        *all = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    if (f)
        fclose(f);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* GFLOP/s of one thread's FMA loop (fma_peak.c); 0 without AVX2/AVX-512 FMA. */
static double measure_peak(const char **isa)
{
    *isa = fma_peak_isa();
    return fma_peak_gflops(1);
}

/* ---- one shape's operands ---- */

typedef struct operands {
    const gshape *s;
    float *a, *a_rm, *b, *c, *c_ref, *c_x, *row_init, *scratch;
    ptrdiff_t a_rs, a_cs;
#ifdef HAVE_LIBXSMM
    libxsmm_smmfunction xk; /* NULL: libxsmm refused the shape */
    int xk_copies_a;        /* the kernel needs A row-major: copied to a_rm first */
#endif
} operands;

static float *falloc(size_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64 + 64);
    if (!p) {
        fprintf(stderr, "lenet-gemm-bench: out of memory\n");
        exit(1);
    }
    return p;
}

static void fill(float *p, size_t n, rng *g)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2.0 * rng_uniform(g) - 1.0);
}

#ifdef HAVE_LIBXSMM
/* Distance in ulps between two floats (ordered as sign-magnitude integers). */
static int64_t ulps(float x, float y)
{
    int32_t i, j;
    memcpy(&i, &x, sizeof i);
    memcpy(&j, &y, sizeof j);
    int64_t a = i < 0 ? (int64_t)INT32_MIN - i : i, b = j < 0 ? (int64_t)INT32_MIN - j : j;
    return a > b ? a - b : b - a;
}

static int64_t max_ulps(const float *x, const float *y, size_t n)
{
    int64_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d = ulps(x[i], y[i]);
        m = d > m ? d : m;
    }
    return m;
}
#endif

static void run_own(operands *o)
{
    const gshape *s = o->s;
    gemm(s->M, s->N, s->K, o->a, o->a_rs, o->a_cs, o->b, s->N, o->c, s->N, s->start,
         o->row_init, o->scratch);
}

static void run_ref(operands *o)
{
    const gshape *s = o->s;
    gemm_ref(s->M, s->N, s->K, o->a, o->a_rs, o->a_cs, o->b, s->N, o->c_ref, s->N, s->start,
             o->row_init);
}

#ifdef HAVE_LIBXSMM
/* Dispatches (JITs) the kernel for this shape; returns the seconds it took. A second call
 * only looks the kernel up (*lookup: seconds per call, over 1000). */
static double xsmm_dispatch(operands *o, double *lookup)
{
    const gshape *s = o->s;
    const libxsmm_blasint m = s->N, n = s->M, k = s->K, lda = s->N, ldc = s->N;
    const float alpha = 1.0f, beta = s->start == GEMM_ZERO ? 0.0f : 1.0f;
    const int prefetch = LIBXSMM_PREFETCH_NONE;
    double t0 = bench_wall();
    o->xk = NULL;
    o->xk_copies_a = 0;
    if (s->trans_a) { /* B^T's operand A^T[K][M] read transposed: libxsmm's TRANS_B */
        const libxsmm_blasint ldb = s->M;
        const int flags = LIBXSMM_GEMM_FLAG_TRANS_B;
        o->xk = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    }
    if (!o->xk) {
        const libxsmm_blasint ldb = s->K;
        const int flags = LIBXSMM_GEMM_FLAG_NONE;
        o->xk = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
        o->xk_copies_a = s->trans_a && o->xk;
    }
    const double jit = bench_wall() - t0;
    const libxsmm_blasint ldb = o->xk_copies_a || !s->trans_a ? s->K : s->M;
    const int flags = s->trans_a && !o->xk_copies_a ? LIBXSMM_GEMM_FLAG_TRANS_B : 0;
    t0 = bench_wall();
    for (int i = 0; i < 1000; i++)
        if (libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch) !=
            o->xk)
            fprintf(stderr, "lenet-gemm-bench: libxsmm's second dispatch gave another kernel\n");
    *lookup = (bench_wall() - t0) / 1000;
    return jit;
}

static void run_xsmm(operands *o)
{
    const gshape *s = o->s;
    const float *a = o->a;
    if (o->xk_copies_a) { /* A^T[K][M] -> A[M][K] */
        for (int m = 0; m < s->M; m++)
            for (int k = 0; k < s->K; k++)
                o->a_rm[(size_t)m * s->K + k] = o->a[(size_t)k * s->M + m];
        a = o->a_rm;
    }
    if (s->start == GEMM_ROWS)
        for (int m = 0; m < s->M; m++)
            for (int n = 0; n < s->N; n++)
                o->c_x[(size_t)m * s->N + n] = o->row_init[m];
    o->xk(o->b, a, o->c_x); /* column-major: C^T = B^T A^T */
}
#endif

/* Seconds per call of fn(o): the median of `repeats` timings of `calls` calls each. */
typedef void (*bench_fn)(operands *o);

static double time_calls(bench_fn fn, operands *o, int calls)
{
    double t0 = bench_wall();
    for (int i = 0; i < calls; i++)
        fn(o);
    return (bench_wall() - t0) / calls;
}

/* Calls that make one timing last about `ms` milliseconds (after a warm-up call). */
static int calibrate(bench_fn fn, operands *o, double ms)
{
    double t = time_calls(fn, o, 1);
    t = time_calls(fn, o, 1) < t ? time_calls(fn, o, 1) : t;
    int calls = (int)(ms * 1e-3 / (t > 1e-9 ? t : 1e-9));
    return calls < 1 ? 1 : calls > 1000000 ? 1000000 : calls;
}

int main(int argc, char **argv)
{
    int repeats = 11;
    double ms = 5.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
            repeats = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
            ms = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: lenet-gemm-bench [--repeats N (1-%d)] [--ms T]\n",
                    MAX_REPEATS);
            return 2;
        }
    }
    if (repeats < 1 || repeats > MAX_REPEATS || !(ms > 0.0)) {
        fprintf(stderr, "lenet-gemm-bench: bad --repeats or --ms\n");
        return 2;
    }

    const char *isa;
    double peak = measure_peak(&isa);
    printf("lenet-gemm-bench: one thread; medians of %d repeats of ~%.0f ms; operands in "
           "cache\nFMA peak (%s, 12 independent chains): %.1f GFLOP/s measured before the "
           "table\n", repeats, ms, isa, peak);
#ifdef HAVE_LIBXSMM
    libxsmm_init();
    printf("libxsmm %s, JIT target %s\n", LIBXSMM_VERSION, libxsmm_get_target_arch());
#else
    printf("libxsmm: not built in (-Dlibxsmm=disabled or not found)\n");
#endif
    printf("\n| use | M x N x K | gemm GFLOP/s | %% peak | gemm = ref | libxsmm GFLOP/s | "
           "%% peak | libxsmm = ref | dispatch us: JIT / lookup | ref GFLOP/s |\n"
           "|---|---|---:|---:|---|---:|---:|---|---:|---:|\n");
    double all0, own0;
    cpu_seconds(&all0, &own0);
    const double wall0 = bench_wall();
    int failures = 0;
    rng g;
    rng_seed(&g, 9);
    for (int si = 0; si < N_SHAPES; si++) {
        const gshape *s = &shapes[si];
        const size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N,
                     nc = (size_t)s->M * s->N;
        operands o = {.s = s};
        o.a = falloc(na);
        o.a_rm = falloc(na);
        o.b = falloc(nb);
        o.c = falloc(nc);
        o.c_ref = falloc(nc);
        o.c_x = falloc(nc);
        o.row_init = falloc((size_t)s->M);
        o.scratch = falloc(gemm_scratch_floats());
        o.a_rs = s->trans_a ? 1 : s->K;
        o.a_cs = s->trans_a ? s->M : 1;
        fill(o.a, na, &g);
        fill(o.b, nb, &g);
        fill(o.row_init, (size_t)s->M, &g);

        /* bits: gemm and libxsmm against the reference */
        run_ref(&o);
        run_own(&o);
        const int own_same = memcmp(o.c, o.c_ref, nc * sizeof(float)) == 0;
        failures += !own_same;
        char x_bits[64] = "not built", x_gf[32] = "-", x_pk[32] = "-", x_jit[32] = "-";
        int have_x = 0;
#ifdef HAVE_LIBXSMM
        double lookup;
        const double jit = xsmm_dispatch(&o, &lookup);
        snprintf(x_jit, sizeof x_jit, "%.0f / %.2f", jit * 1e6, lookup * 1e6);
        if (!o.xk) {
            snprintf(x_bits, sizeof x_bits, "refused (dispatch NULL)");
        } else {
            have_x = 1;
            run_xsmm(&o);
            const int64_t d = max_ulps(o.c_x, o.c_ref, nc);
            float *first = falloc(nc);
            memcpy(first, o.c_x, nc * sizeof(float));
            run_xsmm(&o); /* run to run: the same bits? */
            const int stable = memcmp(first, o.c_x, nc * sizeof(float)) == 0;
            free(first);
            if (d == 0)
                snprintf(x_bits, sizeof x_bits, "yes%s", stable ? "" : " (not run to run!)");
            else
                snprintf(x_bits, sizeof x_bits, "no, max %lld ulp%s", (long long)d,
                         stable ? "" : " (not run to run!)");
            if (o.xk_copies_a)
                strncat(x_bits, ", A copied", sizeof x_bits - strlen(x_bits) - 1);
        }
#endif
        /* time: the three in turn within every repeat */
        const int c_own = calibrate(run_own, &o, ms), c_ref = calibrate(run_ref, &o, ms);
        double t_own[MAX_REPEATS], t_ref[MAX_REPEATS], t_x[MAX_REPEATS];
#ifdef HAVE_LIBXSMM
        const int c_x = have_x ? calibrate(run_xsmm, &o, ms) : 0;
#endif
        for (int r = 0; r < repeats; r++) {
            t_own[r] = time_calls(run_own, &o, c_own);
#ifdef HAVE_LIBXSMM
            if (have_x)
                t_x[r] = time_calls(run_xsmm, &o, c_x);
#endif
            t_ref[r] = time_calls(run_ref, &o, c_ref);
        }
        const double flop = 2.0 * (double)s->M * s->N * s->K;
        const double gf_own = flop / bench_summarize(t_own, repeats).median / 1e9;
        const double gf_ref = flop / bench_summarize(t_ref, repeats).median / 1e9;
        if (have_x) {
            const double gf_x = flop / bench_summarize(t_x, repeats).median / 1e9;
            snprintf(x_gf, sizeof x_gf, "%.1f", gf_x);
            snprintf(x_pk, sizeof x_pk, "%.0f%%", peak > 0 ? 100.0 * gf_x / peak : 0.0);
        }
        char dims[48];
        snprintf(dims, sizeof dims, "%dx%dx%d%s", s->M, s->N, s->K, s->trans_a ? " (A^T)" : "");
        printf("| %s | %s | %.1f | %.0f%% | %s | %s | %s | %s | %s | %.2f |\n", s->use, dims,
               gf_own, peak > 0 ? 100.0 * gf_own / peak : 0.0, own_same ? "yes" : "NO", x_gf,
               x_pk, x_bits, x_jit, gf_ref);
        fflush(stdout);
        free(o.a);
        free(o.a_rm);
        free(o.b);
        free(o.c);
        free(o.c_ref);
        free(o.c_x);
        free(o.row_init);
        free(o.scratch);
    }
    double all1, own1;
    cpu_seconds(&all1, &own1);
    const double peak_after = measure_peak(&isa);
    printf("\nFMA peak measured after the table: %.1f GFLOP/s; %% of peak above: of %.1f, the "
           "one measured before\n", peak_after, peak);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (all0 >= 0 && all1 >= 0 && cores > 0)
        printf("\nother processes used %.0f%% of the machine's %ld cores meanwhile\n",
               100.0 * ((all1 - all0) - (own1 - own0)) / ((bench_wall() - wall0) * (double)cores),
               cores);
#ifdef HAVE_LIBXSMM
    libxsmm_finalize();
#endif
    if (failures)
        printf("%d shape(s) where gemm differs from gemm_ref\n", failures);
    return failures ? 1 : 0;
}
