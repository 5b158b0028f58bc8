/* nn_gemm_tiled.h: the register-tiled kernels behind nn_gemm (internal to common/nn; see
 * nn_gemm.c for the driver and the choice of path).
 *
 * A kernel set computes one tile of C: MR rows x NV vectors of `lanes` floats, as
 *   x = sum over p = 0..k-1 of a(i, p) * b(p, j), one fused multiply-add chain per element in
 *       the order p = 0, 1, ..., k-1, starting from 0, or from in(i, j) when the tile is given the
 *       partial sums `in` (row stride ld_in) of an earlier stretch of p;
 *   x = alpha * x (when alpha != 1); x = x + C (beta == 1) or x + beta * C (when beta != 0);
 *   x = x + bias[j] (when bias); C = x;
 * or, when raw, C = x straight after the sum (a partial sum that a later stretch continues).
 * A chain cut into stretches that store and reload x (exact in float) is the same chain, so
 * summing k in stretches (nn_gemm.c, for long sums) gives the bits of one pass.
 * Every set does exactly these operations in this order, so the AVX2 and the AVX-512 kernels give
 * the same bits (their lanes differ, not their arithmetic). b is a (k, n) row-major panel (row
 * stride ldb); a(i, p) = a[i lda + p], or a[p lda + i] when trans_a. rem (1..lanes) is the number of
 * columns in the tile's last vector. */
#ifndef NN_GEMM_TILED_H
#define NN_GEMM_TILED_H

#include <stdint.h>

typedef struct gemm_tiled {
  int trans_a;
  int64_t k;
  const float *a;
  int64_t lda;
  const float *b;
  int64_t ldb;
  float alpha, beta;
  const float *bias; /* (n) added to every row, or NULL */
  int64_t ld_in;     /* row stride of the tiles' partial sums `in` */
  int raw;           /* store the sums as they are: no alpha, beta or bias */
} gemm_tiled;

typedef void (*gemm_tile_fn)(const gemm_tiled *g, const float *a, const float *b, const float *bias,
                             const float *in, float *c, int64_t ldc, int rem);

typedef struct gemm_kernels {
  int lanes;              /* floats per vector */
  int nv_max;             /* vectors per tile row, at most */
  int mr_max;             /* rows of the tallest tile */
  const int *mr;          /* mr[nv - 1]: rows per tile of nv vectors */
  const gemm_tile_fn *tile; /* tile[(nv - 1) * mr_max + (mr - 1)] for mr <= mr[nv - 1] */
} gemm_kernels;

/* The kernel sets this build has, or NULL (not x86-64 GCC/Clang). They do not check the machine. */
const gemm_kernels *nn_gemm_kernels_avx512(void);
const gemm_kernels *nn_gemm_kernels_avx2(void);

#endif
