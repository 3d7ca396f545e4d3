/* gemm.h - the small matrix product behind every convolution and dense operation.
 *
 * C[m][n] = start(m, n) + sum over k = 0..K-1, IN THIS ORDER, of A(m, k) * B[k][n]
 * for 0 <= m < M, 0 <= n < N. Every output is ONE chain of multiply-adds in k order, each step
 * c = ku_fma(c, A(m, k), B[k][n]): fused (one rounding) where KU_FUSED, a multiply then an add
 * otherwise. Blocking of M and N never changes an output's chain, and K blocks continue it
 * through C, so gemm and gemm_ref give the same bits on every build.
 *
 *   A(m, k)  = a[m * a_rs + k * a_cs]  (any strides: a_rs = 1, a_cs = lda is a transposed view)
 *   B row k  = b + k * ldb             (contiguous along n)
 *   C row m  = c + m * ldc             (contiguous along n; ldc >= N)
 *   start    GEMM_ZERO: the chain starts at +0 (the first step gives A * B rounded; an exact
 *            -0 product gives +0); GEMM_ACC: at C's current value; GEMM_ROWS: at row_init[m].
 * M, N, K >= 0; K = 0 sets C to the start values. A and B must not overlap C.
 *
 * Threads: gemm uses no OpenMP and writes no global state; each caller passes its own scratch
 * (gemm_scratch_floats() floats, any alignment), so every thread of a region may call it on
 * its own data at once. */
#ifndef GEMM_H
#define GEMM_H

#include <stddef.h>

typedef enum { GEMM_ZERO, GEMM_ACC, GEMM_ROWS } gemm_start;

void gemm(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
          ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start, const float *row_init,
          float *scratch);

/* Floats of `scratch` gemm needs (its packed panel of A): a constant. */
size_t gemm_scratch_floats(void);

/* The plain triple loop with the same chains: the tests' reference, the same bits as gemm. */
void gemm_ref(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
              const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start,
              const float *row_init);

#endif
