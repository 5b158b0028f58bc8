/* nn_linear.c: see nn_linear.h. Both passes are products through nn_gemm. */
#include "common/nn/nn_linear.h"

#include "common/hsrl_check.h"
#include "common/nn/nn_gemm.h"

void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, int64_t n,
                       int64_t in_dim, int64_t out_dim) {
  HSRL_CHECK(n >= 0 && in_dim > 0 && out_dim > 0);
  if (b) {
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < out_dim; o++) out[i * out_dim + o] = b[o];
  }
  /* out (n, out) = inp (n, in) * w^T (in, out) [+ out] */
  nn_gemm(0, 1, n, out_dim, in_dim, 1.0f, inp, in_dim, w, in_dim, b ? 1.0f : 0.0f, out, out_dim);
}

void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int64_t n, int64_t in_dim, int64_t out_dim) {
  HSRL_CHECK(n >= 0 && in_dim > 0 && out_dim > 0);
  /* dinp (n, in) += dout (n, out) * w (out, in) */
  if (dinp) nn_gemm(0, 0, n, in_dim, out_dim, 1.0f, dout, out_dim, w, in_dim, 1.0f, dinp, in_dim);
  /* dw (out, in) += dout^T (out, n) * inp (n, in) */
  if (dw) nn_gemm(1, 0, out_dim, in_dim, n, 1.0f, dout, out_dim, inp, in_dim, 1.0f, dw, in_dim);
  if (db) {
    for (int64_t o = 0; o < out_dim; o++) {
      double s = 0.0;
      for (int64_t i = 0; i < n; i++) s += (double)dout[i * out_dim + o];
      db[o] += (float)s;
    }
  }
}
