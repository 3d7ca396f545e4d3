/* gemm.c - the small matrix multiply (gemm.h). Placeholder: the plain loops. */
#include "gemm.h"

#include "vec16.h"

void gemm_ref(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
              const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start,
              const float *row_init)
{
    for (int m = 0; m < M; m++) {
        float *c_m = c + m * ldc;
        for (int n = 0; n < N; n++) {
            float acc = start == GEMM_ZERO ? 0.0f : start == GEMM_ROWS ? row_init[m] : c_m[n];
            for (int k = 0; k < K; k++)
                acc = ku_fma(acc, a[m * a_rs + k * a_cs], b[k * ldb + n]);
            c_m[n] = acc;
        }
    }
}

void gemm(int M, int N, int K, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float *b,
          ptrdiff_t ldb, float *c, ptrdiff_t ldc, gemm_start start, const float *row_init,
          float *scratch)
{
    (void)scratch;
    gemm_ref(M, N, K, a, a_rs, a_cs, b, ldb, c, ldc, start, row_init);
}

size_t gemm_scratch_floats(void) { return 0; }
