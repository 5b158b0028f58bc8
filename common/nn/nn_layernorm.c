/* nn_layernorm.c: see nn_layernorm.h.
 *
 * Backward, with xhat = (x - mean) * rstd and g = dout * gamma (per row, d elements):
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma += dout * xhat,  dbeta += dout.
 *
 * Speed: every loop over a row runs in fixed blocks of NN_LN_BLOCK columns plus a scalar tail,
 * so GCC's -O2 vectoriser takes them (see nn_activation.c). Row sums are kept in double, one
 * partial sum per lane of a block (lane-wise accumulation reorders nothing within a lane, so it
 * needs no -ffast-math), and the lanes are added by halving at the end of the row (lanes_sum). Rows go in groups of
 * NN_LN_ROWS, phase by phase (see layernorm_forward_rows), and the backward computes dx, dgamma
 * and dbeta in one pass over the rows. Hot loops are compiled twice (AVX2 and baseline) and picked
 * at load time on x86-64 with GCC. */
#include "common/nn/nn_layernorm.h"

#include <math.h>

#include "common/hsrl_check.h"

#define NN_LN_BLOCK 8 /* lanes_sum is written for 8 */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_LN_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_LN_HOT
#endif
/* Row helpers are inlined into each compiled copy of their callers. */
#ifdef __GNUC__
#define NN_LN_INLINE inline __attribute__((always_inline))
#else
#define NN_LN_INLINE inline
#endif

/* The lanes of a block's partial sums added by halving (lane k + lane k + 4, then + 2, then + 1):
 * a chain of three additions that stays in registers, where adding them one after another was a
 * chain of eight through memory. Written out for NN_LN_BLOCK = 8. */
static NN_LN_INLINE double lanes_sum(const double *acc) {
  const double a0 = acc[0] + acc[4], a1 = acc[1] + acc[5], a2 = acc[2] + acc[6], a3 = acc[3] + acc[7];
  return (a0 + a2) + (a1 + a3);
}

/* Sum of x[0..d) in double, lane-wise over blocks. */
static NN_LN_INLINE double row_sum(const float *restrict x, int64_t d) {
  double acc[NN_LN_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
    for (int k = 0; k < NN_LN_BLOCK; k++) acc[k] += (double)x[j + k];
  double s = lanes_sum(acc);
  for (; j < d; j++) s += (double)x[j];
  return s;
}

/* Sum of (x - m)^2 in double. Two-pass variance: no cancellation when |mean| >> std. */
static NN_LN_INLINE double row_sq_dev(const float *restrict x, int64_t d, double m) {
  double acc[NN_LN_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
    for (int k = 0; k < NN_LN_BLOCK; k++) {
      double c = (double)x[j + k] - m;
      acc[k] += c * c;
    }
  double s = lanes_sum(acc);
  for (; j < d; j++) {
    double c = (double)x[j] - m;
    s += c * c;
  }
  return s;
}

/* Rows are processed NN_LN_ROWS at a time in phases (statistics of every row of the group, then
 * their outputs), so that the processor overlaps the rows' latency-bound chains of reduction,
 * division and square root instead of waiting on each row's. */
#define NN_LN_ROWS 8

NN_LN_HOT static void layernorm_forward_rows(float *restrict out, float *restrict mean,
                                             float *restrict rstd, const float *restrict inp,
                                             const float *restrict gamma,
                                             const float *restrict beta, int64_t n, int64_t d) {
  const double inv_d = 1.0 / (double)d;
  for (int64_t i0 = 0; i0 < n; i0 += NN_LN_ROWS) {
    const int nb = (int)(n - i0 < NN_LN_ROWS ? n - i0 : NN_LN_ROWS);
    double m[NN_LN_ROWS], v[NN_LN_ROWS] = {0}, r[NN_LN_ROWS];
    for (int k = 0; k < nb; k++) m[k] = row_sum(inp + (i0 + k) * d, d) * inv_d;
    for (int k = 0; k < nb; k++) v[k] = row_sq_dev(inp + (i0 + k) * d, d, m[k]) * inv_d;
    /* all NN_LN_ROWS lanes (unused ones are 0): a fixed-count loop, vector sqrt and divide */
    for (int k = 0; k < NN_LN_ROWS; k++) r[k] = 1.0 / sqrt(v[k] + NN_LAYERNORM_EPS);
    for (int k = 0; k < nb; k++) {
      mean[i0 + k] = (float)m[k];
      rstd[i0 + k] = (float)r[k];
    }
    for (int k = 0; k < nb; k++) {
      const float *x = inp + (i0 + k) * d;
      float *y = out + (i0 + k) * d;
      const float mf = mean[i0 + k], rf = rstd[i0 + k];
      int64_t j = 0;
      for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
        for (int l = 0; l < NN_LN_BLOCK; l++)
          y[j + l] = (x[j + l] - mf) * rf * gamma[j + l] + beta[j + l];
      for (; j < d; j++) y[j] = (x[j] - mf) * rf * gamma[j] + beta[j];
    }
  }
}

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *gamma,
                          const float *beta, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  layernorm_forward_rows(out, mean, rstd, inp, gamma, beta, n, d);
}

/* sum(g) and sum(g * xhat) of one row in double, g = dy * gamma, xhat = (x - m) * r. */
static NN_LN_INLINE void row_grad_sums(double *sg_out, double *sgx_out, const float *restrict x,
                          const float *restrict dy, const float *restrict gamma, float m, float r,
                          int64_t d) {
  double sg[NN_LN_BLOCK] = {0}, sgx[NN_LN_BLOCK] = {0};
  int64_t j = 0;
  for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
    for (int k = 0; k < NN_LN_BLOCK; k++) {
      float xhat = (x[j + k] - m) * r;
      float g = dy[j + k] * gamma[j + k];
      sg[k] += (double)g;
      sgx[k] += (double)g * (double)xhat;
    }
  double a = lanes_sum(sg), b = lanes_sum(sgx);
  for (; j < d; j++) {
    float xhat = (x[j] - m) * r;
    float g = dy[j] * gamma[j];
    a += (double)g;
    b += (double)g * (double)xhat;
  }
  *sg_out = a;
  *sgx_out = b;
}

/* dx, and with dgamma and dbeta (both non-NULL) their sums in the same pass over the rows. */
NN_LN_HOT static void layernorm_backward_dx(float *restrict dinp, float *restrict dgamma,
                                            float *restrict dbeta, const float *restrict dout,
                                            const float *restrict inp, const float *restrict mean,
                                            const float *restrict rstd,
                                            const float *restrict gamma, int64_t n, int64_t d,
                                            int set) {
  const double inv_d = 1.0 / (double)d;
  for (int64_t i0 = 0; i0 < n; i0 += NN_LN_ROWS) {
    const int nb = (int)(n - i0 < NN_LN_ROWS ? n - i0 : NN_LN_ROWS);
    double sg[NN_LN_ROWS], sgx[NN_LN_ROWS];
    for (int k = 0; k < nb; k++) {
      const int64_t i = i0 + k;
      row_grad_sums(&sg[k], &sgx[k], inp + i * d, dout + i * d, gamma, mean[i], rstd[i], d);
    }
    for (int k = 0; k < nb; k++) {
      const int64_t i = i0 + k;
      const float *x = inp + i * d, *dy = dout + i * d;
      const float m = mean[i], r = rstd[i];
      const float mg = (float)(sg[k] * inv_d), mgx = (float)(sgx[k] * inv_d);
      float *dx = dinp + i * d;
      if (set) /* what "+=" into a zeroed buffer gives, +0 + v (so a -0 becomes +0 as there) */
        for (int64_t j = 0; j < d; j++) dx[j] = 0.0f;
      int64_t j = 0;
      if (dgamma) {
        for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
          for (int l = 0; l < NN_LN_BLOCK; l++) {
            float xhat = (x[j + l] - m) * r;
            dx[j + l] += r * (dy[j + l] * gamma[j + l] - mg - xhat * mgx);
            dgamma[j + l] += dy[j + l] * xhat;
            dbeta[j + l] += dy[j + l];
          }
      } else {
        for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
          for (int l = 0; l < NN_LN_BLOCK; l++) {
            float xhat = (x[j + l] - m) * r;
            dx[j + l] += r * (dy[j + l] * gamma[j + l] - mg - xhat * mgx);
          }
      }
      for (; j < d; j++) {
        float xhat = (x[j] - m) * r;
        dx[j] += r * (dy[j] * gamma[j] - mg - xhat * mgx);
        if (dgamma) {
          dgamma[j] += dy[j] * xhat;
          dbeta[j] += dy[j];
        }
      }
    }
  }
}

/* dgamma += sum_i dout * xhat, dbeta += sum_i dout: row by row into the (d) vectors. */
NN_LN_HOT static void layernorm_backward_params(float *restrict dgamma, float *restrict dbeta,
                                                const float *restrict dout,
                                                const float *restrict inp,
                                                const float *restrict mean,
                                                const float *restrict rstd, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * d, *dy = dout + i * d;
    float m = mean[i], r = rstd[i];
    int64_t j = 0;
    for (; j + NN_LN_BLOCK <= d; j += NN_LN_BLOCK)
      for (int k = 0; k < NN_LN_BLOCK; k++) {
        dgamma[j + k] += dy[j + k] * ((x[j + k] - m) * r);
        dbeta[j + k] += dy[j + k];
      }
    for (; j < d; j++) {
      dgamma[j] += dy[j] * ((x[j] - m) * r);
      dbeta[j] += dy[j];
    }
  }
}

void nn_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *mean, const float *rstd,
                           const float *gamma, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  if (dinp && dinp != dout && dgamma && dbeta) { /* the common case: one pass */
    layernorm_backward_dx(dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, n, d, 0);
    return;
  }
  if (dgamma && dbeta) {
    layernorm_backward_params(dgamma, dbeta, dout, inp, mean, rstd, n, d);
  } else if (dgamma || dbeta) { /* rare: one of the two */
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d; j++) {
        float dy = dout[i * d + j];
        if (dgamma) dgamma[j] += dy * ((inp[i * d + j] - mean[i]) * rstd[i]);
        if (dbeta) dbeta[j] += dy;
      }
  }
  if (!dinp) return;
  if (dinp != dout) {
    layernorm_backward_dx(dinp, NULL, NULL, dout, inp, mean, rstd, gamma, n, d, 0);
    return;
  }
  /* In place (dinp == dout): the restrict kernel does not apply; each row reads dout first. */
  for (int64_t i = 0; i < n; i++) {
    const float *x = inp + i * d;
    float m = mean[i], r = rstd[i];
    double sg = 0.0, sgx = 0.0;
    for (int64_t j = 0; j < d; j++) {
      float g = dinp[i * d + j] * gamma[j];
      sg += (double)g;
      sgx += (double)g * (double)((x[j] - m) * r);
    }
    float mg = (float)(sg / (double)d), mgx = (float)(sgx / (double)d);
    for (int64_t j = 0; j < d; j++) {
      float xhat = (x[j] - m) * r;
      dinp[i * d + j] += r * (dinp[i * d + j] * gamma[j] - mg - xhat * mgx);
    }
  }
}

void nn_layernorm_backward_set(float *dinp, float *dgamma, float *dbeta, const float *dout,
                               const float *inp, const float *mean, const float *rstd,
                               const float *gamma, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  HSRL_CHECK(dinp != NULL && dinp != dout && (dgamma == NULL) == (dbeta == NULL));
  layernorm_backward_dx(dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, n, d, 1);
}
