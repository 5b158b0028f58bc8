/* nn_layernorm.c: see nn_layernorm.h.
 *
 * Backward, with xhat = (x - mean) * rstd and g = dout * gamma (per row, d elements):
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma += dout * xhat,  dbeta += dout. */
#include "common/nn/nn_layernorm.h"

#include <math.h>

#include "common/hsrl_check.h"

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *gamma,
                          const float *beta, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * d;
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) s += (double)x[j];
    double m = s / (double)d;
    /* Two-pass variance: no cancellation when |mean| >> std. */
    double v = 0.0;
    for (int64_t j = 0; j < d; j++) {
      double c = (double)x[j] - m;
      v += c * c;
    }
    v /= (double)d;
    double r = 1.0 / sqrt(v + NN_LAYERNORM_EPS);
    float mf = (float)m, rf = (float)r;
    float *y = out + i * d;
    for (int64_t j = 0; j < d; j++) y[j] = (x[j] - mf) * rf * gamma[j] + beta[j];
    mean[i] = mf;
    rstd[i] = rf;
  }
}

void nn_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *mean, const float *rstd,
                           const float *gamma, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * d, *dy = dout + i * d;
    float m = mean[i], r = rstd[i];
    double sg = 0.0, sgx = 0.0;
    for (int64_t j = 0; j < d; j++) {
      float xhat = (x[j] - m) * r;
      float g = dy[j] * gamma[j];
      sg += (double)g;
      sgx += (double)g * (double)xhat;
      if (dgamma) dgamma[j] += dy[j] * xhat;
      if (dbeta) dbeta[j] += dy[j];
    }
    if (!dinp) continue;
    float mg = (float)(sg / (double)d), mgx = (float)(sgx / (double)d);
    float *dx = dinp + i * d;
    for (int64_t j = 0; j < d; j++) {
      float xhat = (x[j] - m) * r;
      dx[j] += r * (dy[j] * gamma[j] - mg - xhat * mgx);
    }
  }
}
