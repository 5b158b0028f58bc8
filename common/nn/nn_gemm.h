/* nn_gemm.h: the one general matrix multiply of the tree (architecture.md "Numerical core").
 *
 * Row-major C(m,n) = alpha * op(A)(m,k) * op(B)(k,n) + beta * C, op(X) = X^T when trans_* != 0.
 * lda/ldb/ldc are the row strides of A, B, C as stored (A is (k,m) in memory when trans_a).
 * This wrapper is the only caller of cblas_sgemm (OpenBLAS); every layer multiplies through it.
 * beta == 0 overwrites C without reading it (NaNs already in C do not propagate).
 * nn_gemm_bias: C = op(A) op(B) + bias in every row (alpha 1, C not read): the bias is added as the
 * product is stored (nn_linear's forward), not by a pass of its own.
 * On x86-64 machines with AVX-512 or AVX2 + FMA, products with n <= 256 (and k n <= 16384 when
 * trans_b) run in register-tiled kernels, the rest through OpenBLAS (see nn_gemm.c). Nothing is
 * allocated (the tiled path uses up to 128 KiB of stack). Results are
 * the same bits run to run, do not depend on any thread count, and are the same with the AVX-512
 * and the AVX2 kernels.
 * The path: the machine's best, capped by the environment variable HSRL_GEMM_PATH = blas | avx2 |
 * avx512 when it is set (read once, at the first product: to compare paths, or to run OpenBLAS
 * everywhere); AddressSanitizer builds default to blas (nn_gemm.c). nn_gemm_cap_path: every later call of the process uses at most that path (lowered
 * to what the machine runs); returns the path now in use; call it while no other thread
 * multiplies. nn_gemm_path: the path in use. */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stdint.h>

void nn_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc);
void nn_gemm_bias(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                  int64_t lda, const float *b, int64_t ldb, const float *bias /* (n) */, float *c,
                  int64_t ldc);

enum { NN_GEMM_PATH_BLAS = 0, NN_GEMM_PATH_AVX2 = 1, NN_GEMM_PATH_AVX512 = 2, NN_GEMM_PATH_BEST = 2 };
int nn_gemm_cap_path(int max_path);
int nn_gemm_path(void); /* the path in use */
const char *nn_gemm_path_name(int path);

#endif
