/* nn_gemm.h: the one general matrix multiply of the tree (architecture.md "Numerical core").
 *
 * Row-major C(m,n) = alpha * op(A)(m,k) * op(B)(k,n) + beta * C, op(X) = X^T when trans_* != 0.
 * lda/ldb/ldc are the row strides of A, B, C as stored (A is (k,m) in memory when trans_a).
 * This wrapper is the only caller of cblas_sgemm (OpenBLAS); every layer multiplies through it.
 * beta == 0 overwrites C without reading it (NaNs already in C do not propagate).
 * nn_gemm_bias: C = op(A) op(B) + bias in every row (alpha 1, C not read): the bias is added as the
 * product is stored (nn_linear's forward), not by a pass of its own.
 * On x86-64 machines with AVX-512, products with n <= 256 (and k n <= 16384 when trans_b) run in
 * this file's register-tiled kernels, the rest through OpenBLAS (see nn_gemm.c). Results are the
 * same bits run to run and do not depend on any thread count. */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stdint.h>

void nn_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc);
void nn_gemm_bias(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                  int64_t lda, const float *b, int64_t ldb, const float *bias /* (n) */, float *c,
                  int64_t ldc);

#endif
