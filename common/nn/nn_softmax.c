/* nn_softmax.c: see nn_softmax.h.
 *
 * The logits are scaled and max-subtracted in double (z = x/T - max(x)/T loses nothing for rows
 * with large spreads or huge logits, and x/T cannot overflow), row sums are accumulated in
 * double; the exponentials of z <= 0 are nn_exp_nonpos (float, about 1 ulp), which GCC
 * vectorises, where exp() in double was a libm call per element. log-softmax needs no exp per
 * element: y = z - log(sum). Loops run over fixed blocks of NN_SM_BLOCK elements plus a scalar
 * tail (GCC's -O2 vectoriser takes only fixed trip counts), with one partial sum per lane. */
#include "common/nn/nn_softmax.h"

#include <math.h>

#include "common/hsrl_check.h"

#define NN_SM_BLOCK 8

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_SM_HOT __attribute__((target_clones("avx2", "default")))
#else
#define NN_SM_HOT
#endif
/* Row helpers are inlined into each compiled copy of their callers. */
#ifdef __GNUC__
#define NN_SM_INLINE inline __attribute__((always_inline))
#else
#define NN_SM_INLINE inline
#endif

/* Row max (a NaN at x[0] propagates; elsewhere it reaches the sum through exp). */
static NN_SM_INLINE float row_max(const float *restrict x, int64_t v) {
  float mx[NN_SM_BLOCK];
  for (int k = 0; k < NN_SM_BLOCK; k++) mx[k] = x[0];
  int64_t j = 0;
  for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
    for (int k = 0; k < NN_SM_BLOCK; k++) mx[k] = x[j + k] > mx[k] ? x[j + k] : mx[k];
  float m = mx[0];
  for (int k = 1; k < NN_SM_BLOCK; k++) m = mx[k] > m ? mx[k] : m;
  for (; j < v; j++) m = x[j] > m ? x[j] : m;
  return m;
}

/* y[j] = exp(x[j] / T - m) (m = max / T, in double) for one row; returns the sum in double. */
static NN_SM_INLINE double row_exp(float *restrict y, const float *restrict x, int64_t v, double inv_t, double m) {
  double acc[NN_SM_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
    for (int k = 0; k < NN_SM_BLOCK; k++) {
      float e = nn_exp_nonpos((float)((double)x[j + k] * inv_t - m));
      y[j + k] = e;
      acc[k] += (double)e;
    }
  double s = 0.0;
  for (int k = 0; k < NN_SM_BLOCK; k++) s += acc[k];
  for (; j < v; j++) {
    float e = nn_exp_nonpos((float)((double)x[j] * inv_t - m));
    y[j] = e;
    s += (double)e;
  }
  return s;
}

/* Sum of exp(x[j] / T - m) without storing it. */
static NN_SM_INLINE double row_exp_sum(const float *restrict x, int64_t v, double inv_t, double m) {
  double acc[NN_SM_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
    for (int k = 0; k < NN_SM_BLOCK; k++)
      acc[k] += (double)nn_exp_nonpos((float)((double)x[j + k] * inv_t - m));
  double s = 0.0;
  for (int k = 0; k < NN_SM_BLOCK; k++) s += acc[k];
  for (; j < v; j++) s += (double)nn_exp_nonpos((float)((double)x[j] * inv_t - m));
  return s;
}

/* sum_j a[j] b[j] and sum_j a[j] in double, in NN_SM_BLOCK lanes folded in order, then the tail. */
static NN_SM_INLINE double row_dot(const float *restrict a, const float *restrict b, int64_t v) {
  double acc[NN_SM_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
    for (int k = 0; k < NN_SM_BLOCK; k++) acc[k] += (double)a[j + k] * (double)b[j + k];
  double s = 0.0;
  for (int k = 0; k < NN_SM_BLOCK; k++) s += acc[k];
  for (; j < v; j++) s += (double)a[j] * (double)b[j];
  return s;
}

static NN_SM_INLINE double row_sum(const float *restrict a, int64_t v) {
  double acc[NN_SM_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
    for (int k = 0; k < NN_SM_BLOCK; k++) acc[k] += (double)a[j + k];
  double s = 0.0;
  for (int k = 0; k < NN_SM_BLOCK; k++) s += acc[k];
  for (; j < v; j++) s += (double)a[j];
  return s;
}

static void check_args(int64_t n, int64_t v, float temperature) {
  HSRL_CHECK(n >= 0 && v > 0);
  HSRL_CHECKF(temperature > 0.0f, "temperature %g", (double)temperature);
}

/* out may alias inp (the header allows it): the row kernels with restrict pointers serve the
 * distinct case, plain loops the in-place one. */
NN_SM_HOT static void softmax_rows(float *out, const float *inp, int64_t n, int64_t v, double inv_t) {
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * v;
    float *y = out + i * v;
    const double m = (double)row_max(x, v) * inv_t;
    double s;
    if (y == x) { /* in place: exponentials into y after the max is known */
      s = 0.0;
      for (int64_t j = 0; j < v; j++) {
        float e = nn_exp_nonpos((float)((double)x[j] * inv_t - m));
        y[j] = e;
        s += (double)e;
      }
    } else {
      s = row_exp(y, x, v, inv_t, m);
    }
    const double inv_s = 1.0 / s;
    int64_t j = 0;
    for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
      for (int k = 0; k < NN_SM_BLOCK; k++) y[j + k] = (float)((double)y[j + k] * inv_s);
    for (; j < v; j++) y[j] = (float)((double)y[j] * inv_s);
  }
}

void nn_softmax_forward(float *out, const float *inp, int64_t n, int64_t v, float temperature) {
  check_args(n, v, temperature);
  softmax_rows(out, inp, n, v, 1.0 / (double)temperature);
}

NN_SM_HOT static void softmax_backward_rows(float *restrict dinp, const float *restrict dout,
                                            const float *restrict out, int64_t n, int64_t v,
                                            float inv_t) {
  for (int64_t i = 0; i < n; i++) {
    const float *y = out + i * v, *dy = dout + i * v;
    const float sf = (float)row_dot(dy, y, v);
    float *dx = dinp + i * v;
    int64_t j = 0;
    for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
      for (int k = 0; k < NN_SM_BLOCK; k++) dx[j + k] += inv_t * y[j + k] * (dy[j + k] - sf);
    for (; j < v; j++) dx[j] += inv_t * y[j] * (dy[j] - sf);
  }
}

void nn_softmax_backward(float *dinp, const float *dout, const float *out, int64_t n, int64_t v,
                         float temperature) {
  check_args(n, v, temperature);
  float inv_t = 1.0f / temperature;
  if (dinp == dout) { /* in place: the restrict kernel does not apply */
    for (int64_t i = 0; i < n; i++) {
      const float *y = out + i * v;
      float *dx = dinp + i * v;
      double s = 0.0;
      for (int64_t j = 0; j < v; j++) s += (double)dx[j] * (double)y[j];
      float sf = (float)s;
      for (int64_t j = 0; j < v; j++) dx[j] += inv_t * y[j] * (dx[j] - sf);
    }
    return;
  }
  softmax_backward_rows(dinp, dout, out, n, v, inv_t);
}

/* y[j] = (x[j] / T - m) - ls for one row, y distinct from x. */
static NN_SM_INLINE void row_log_out(float *restrict y, const float *restrict x, int64_t v,
                                     double inv_t, double m, double ls) {
  int64_t j = 0;
  for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
    for (int k = 0; k < NN_SM_BLOCK; k++) y[j + k] = (float)(((double)x[j + k] * inv_t - m) - ls);
  for (; j < v; j++) y[j] = (float)(((double)x[j] * inv_t - m) - ls);
}

NN_SM_HOT static void log_softmax_rows(float *out, const float *inp, int64_t n, int64_t v,
                                       double inv_t) {
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * v;
    float *y = out + i * v;
    const double m = (double)row_max(x, v) * inv_t;
    /* (x/T - m) - log s, not x/T - (m + log s): log s would vanish next to a huge m. */
    const double ls = log(row_exp_sum(x, v, inv_t, m));
    if (y == x) {
      for (int64_t j = 0; j < v; j++) y[j] = (float)(((double)x[j] * inv_t - m) - ls);
    } else {
      row_log_out(y, x, v, inv_t, m, ls);
    }
  }
}

void nn_log_softmax_forward(float *out, const float *inp, int64_t n, int64_t v, float temperature) {
  check_args(n, v, temperature);
  log_softmax_rows(out, inp, n, v, 1.0 / (double)temperature);
}

NN_SM_HOT static void log_softmax_backward_rows(float *restrict dinp, const float *restrict dout,
                                                const float *restrict out, int64_t n, int64_t v,
                                                float inv_t) {
  for (int64_t i = 0; i < n; i++) {
    const float *y = out + i * v, *dy = dout + i * v;
    const double s = row_sum(dy, v);
    float *dx = dinp + i * v;
    int64_t j = 0;
    for (; j + NN_SM_BLOCK <= v; j += NN_SM_BLOCK)
      for (int k = 0; k < NN_SM_BLOCK; k++)
        dx[j + k] += (float)((double)inv_t *
                             ((double)dy[j + k] - (double)nn_exp_nonpos(y[j + k]) * s));
    for (; j < v; j++)
      dx[j] += (float)((double)inv_t * ((double)dy[j] - (double)nn_exp_nonpos(y[j]) * s));
  }
}

void nn_log_softmax_backward(float *dinp, const float *dout, const float *out, int64_t n, int64_t v,
                             float temperature) {
  check_args(n, v, temperature);
  float inv_t = 1.0f / temperature;
  if (dinp == dout) { /* in place: the restrict kernel does not apply */
    for (int64_t i = 0; i < n; i++) {
      const float *y = out + i * v;
      float *dx = dinp + i * v;
      double s = 0.0;
      for (int64_t j = 0; j < v; j++) s += (double)dx[j];
      for (int64_t j = 0; j < v; j++)
        dx[j] += (float)((double)inv_t * ((double)dx[j] - (double)nn_exp_nonpos(y[j]) * s));
    }
    return;
  }
  log_softmax_backward_rows(dinp, dout, out, n, v, inv_t);
}
