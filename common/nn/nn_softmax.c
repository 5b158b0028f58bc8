/* nn_softmax.c: see nn_softmax.h. Sums are accumulated in double; exp/log in double so that the
 * max-subtracted form loses nothing for rows with large spreads. */
#include "common/nn/nn_softmax.h"

#include <math.h>

#include "common/hsrl_check.h"

/* Row max of x / T (T > 0, so max of x then divide). */
static double row_max_scaled(const float *x, int64_t v, double inv_t) {
  float m = x[0];
  for (int64_t j = 1; j < v; j++)
    if (x[j] > m) m = x[j];
  return (double)m * inv_t;
}

void nn_softmax_forward(float *out, const float *inp, int64_t n, int64_t v, float temperature) {
  HSRL_CHECK(n >= 0 && v > 0);
  HSRL_CHECKF(temperature > 0.0f, "temperature %g", (double)temperature);
  double inv_t = 1.0 / (double)temperature;
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * v;
    float *y = out + i * v;
    double m = row_max_scaled(x, v, inv_t), s = 0.0;
    for (int64_t j = 0; j < v; j++) {
      double e = exp((double)x[j] * inv_t - m);
      y[j] = (float)e;
      s += e;
    }
    double inv_s = 1.0 / s;
    for (int64_t j = 0; j < v; j++) y[j] = (float)((double)y[j] * inv_s);
  }
}

void nn_softmax_backward(float *dinp, const float *dout, const float *out, int64_t n, int64_t v,
                         float temperature) {
  HSRL_CHECK(n >= 0 && v > 0);
  HSRL_CHECKF(temperature > 0.0f, "temperature %g", (double)temperature);
  float inv_t = 1.0f / temperature;
  for (int64_t i = 0; i < n; i++) {
    const float *y = out + i * v, *dy = dout + i * v;
    double s = 0.0;
    for (int64_t j = 0; j < v; j++) s += (double)dy[j] * (double)y[j];
    float sf = (float)s;
    float *dx = dinp + i * v;
    for (int64_t j = 0; j < v; j++) dx[j] += inv_t * y[j] * (dy[j] - sf);
  }
}

void nn_log_softmax_forward(float *out, const float *inp, int64_t n, int64_t v, float temperature) {
  HSRL_CHECK(n >= 0 && v > 0);
  HSRL_CHECKF(temperature > 0.0f, "temperature %g", (double)temperature);
  double inv_t = 1.0 / (double)temperature;
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * v;
    float *y = out + i * v;
    double m = row_max_scaled(x, v, inv_t), s = 0.0;
    for (int64_t j = 0; j < v; j++) s += exp((double)x[j] * inv_t - m);
    /* (x/T - m) - log s, not x/T - (m + log s): log s would vanish next to a huge m. */
    double ls = log(s);
    for (int64_t j = 0; j < v; j++) y[j] = (float)(((double)x[j] * inv_t - m) - ls);
  }
}

void nn_log_softmax_backward(float *dinp, const float *dout, const float *out, int64_t n, int64_t v,
                             float temperature) {
  HSRL_CHECK(n >= 0 && v > 0);
  HSRL_CHECKF(temperature > 0.0f, "temperature %g", (double)temperature);
  float inv_t = 1.0f / temperature;
  for (int64_t i = 0; i < n; i++) {
    const float *y = out + i * v, *dy = dout + i * v;
    double s = 0.0;
    for (int64_t j = 0; j < v; j++) s += (double)dy[j];
    float *dx = dinp + i * v;
    for (int64_t j = 0; j < v; j++)
      dx[j] += (float)((double)inv_t * ((double)dy[j] - exp((double)y[j]) * s));
  }
}
