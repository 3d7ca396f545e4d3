/* gemm.h - the one small matrix multiply under every convolution and dense kernel.
 *
 * C[m][n] = start(m, n) + sum over k = 0..K-1, in this order, of A(m, k) * B[k][n], for
 * 0 <= m < M, 0 <= n < N. Every output is one chain of multiply-adds in k order with
 * vec16.h's ku_fma (fused where KU_FUSED), so any blocking of M, N and K (K blocks continue
 * the chain through C) gives the same bits.
 * A(m, k) = a[m * a_rs + k * a_cs] (any strides: A may be a transposed view);
 * B row k = b + k * ldb (contiguous along n); C row m = c + m * ldc.
 * start: GEMM_ZERO (the chain starts at +0), GEMM_ACC (at C's current value), GEMM_ROWS (at
 * row_init[m]). M, N, K >= 0 (K = 0: C = start).
 *
 * Called by every thread on its own data with its own scratch (gemm_scratch_floats floats):
 * no OpenMP inside, no shared state. */
#ifndef GEMM_H
#define GEMM_H

#include <stddef.h>

typedef enum { GEMM_ZERO, GEMM_ACC, GEMM_ROWS } gemm_start;

void gemm(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
          ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start, const float *row_init,
          float *scratch);

/* Floats of scratch gemm needs (a constant). */
size_t gemm_scratch_floats(void);

/* The plain triple loop, the tests' reference: the same bits as gemm. */
void gemm_ref(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
              const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start,
              const float *row_init);

#endif
