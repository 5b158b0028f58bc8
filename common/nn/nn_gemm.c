/* nn_gemm.c: see nn_gemm.h. The only caller of cblas_sgemm in the tree. */
#include "common/nn/nn_gemm.h"

#include <cblas.h>
#include <limits.h>

#include "common/hsrl_check.h"

/* Below this many multiply-adds the BLAS call overhead dominates; a plain loop is faster. */
#define NN_GEMM_SMALL 4096

static void gemm_small(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                       float *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++) {
    for (int64_t j = 0; j < n; j++) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; p++) {
        float av = trans_a ? a[p * lda + i] : a[i * lda + p];
        float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      /* beta == 0 must not read C (it may hold garbage or NaN), as BLAS does. */
      c[i * ldc + j] = beta == 0.0f ? alpha * s : alpha * s + beta * c[i * ldc + j];
    }
  }
}

void nn_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc) {
  HSRL_CHECK(m >= 0 && n >= 0 && k >= 0);
  HSRL_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX);
  HSRL_CHECK(lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
  HSRL_CHECKF(lda >= (trans_a ? m : k) && lda >= 1, "lda %lld", (long long)lda);
  HSRL_CHECKF(ldb >= (trans_b ? k : n) && ldb >= 1, "ldb %lld", (long long)ldb);
  HSRL_CHECKF(ldc >= n && ldc >= 1, "ldc %lld", (long long)ldc);
  if (m == 0 || n == 0) return;
  /* Each factor <= NN_GEMM_SMALL first, so the product cannot overflow. */
  if (m <= NN_GEMM_SMALL && n <= NN_GEMM_SMALL && k <= NN_GEMM_SMALL && m * n * k <= NN_GEMM_SMALL) {
    gemm_small(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
