/* nn_linear.c: see nn_linear.h. Both passes are products through nn_gemm.
 *
 * Speed: the bias enters the forward through nn_gemm_bias (added as the product is stored, on
 * machines with nn_gemm's tiled kernels), and the bias gradient is summed row by row into per-column
 * double accumulators in blocks GCC vectorises (the column-by-column double chain it replaced
 * cost as much as the products at the policy's shapes). */
#include "common/nn/nn_linear.h"

#include <string.h>

#include "common/hsrl_check.h"
#include "common/nn/nn_gemm.h"

#define NN_LIN_CHUNK 256 /* columns summed at a time (double accumulators on the stack) */
#define NN_LIN_BLOCK 8

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_LIN_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_LIN_HOT
#endif

void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, int64_t n,
                       int64_t in_dim, int64_t out_dim) {
  HSRL_CHECK(n >= 0 && in_dim > 0 && out_dim > 0);
  /* out (n, out) = inp (n, in) * w^T (in, out) [+ b in every row] */
  if (b) nn_gemm_bias(0, 1, n, out_dim, in_dim, inp, in_dim, w, in_dim, b, out, out_dim);
  else nn_gemm(0, 1, n, out_dim, in_dim, 1.0f, inp, in_dim, w, in_dim, 0.0f, out, out_dim);
}

/* db[o] += sum_i dout[i][o], summed in double. */
NN_LIN_HOT static void column_sums_add(float *restrict db, const float *restrict dout, int64_t n,
                                       int64_t m) {
  double acc[NN_LIN_CHUNK];
  for (int64_t c0 = 0; c0 < m; c0 += NN_LIN_CHUNK) {
    const int64_t w = m - c0 < NN_LIN_CHUNK ? m - c0 : NN_LIN_CHUNK;
    for (int64_t o = 0; o < w; o++) acc[o] = 0.0;
    for (int64_t i = 0; i < n; i++) {
      const float *row = dout + i * m + c0;
      int64_t o = 0;
      for (; o + NN_LIN_BLOCK <= w; o += NN_LIN_BLOCK)
        for (int k = 0; k < NN_LIN_BLOCK; k++) acc[o + k] += (double)row[o + k];
      for (; o < w; o++) acc[o] += (double)row[o];
    }
    for (int64_t o = 0; o < w; o++) db[c0 + o] += (float)acc[o];
  }
}

void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int64_t n, int64_t in_dim, int64_t out_dim) {
  HSRL_CHECK(n >= 0 && in_dim > 0 && out_dim > 0);
  /* dinp (n, in) += dout (n, out) * w (out, in) */
  if (dinp) nn_gemm(0, 0, n, in_dim, out_dim, 1.0f, dout, out_dim, w, in_dim, 1.0f, dinp, in_dim);
  /* dw (out, in) += dout^T (out, n) * inp (n, in) */
  if (dw) nn_gemm(1, 0, out_dim, in_dim, n, 1.0f, dout, out_dim, inp, in_dim, 1.0f, dw, in_dim);
  if (db) column_sums_add(db, dout, n, out_dim);
}
