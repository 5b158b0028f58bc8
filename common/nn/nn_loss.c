/* nn_loss.c: see nn_loss.h. All reductions are accumulated in double.
 *
 * Entropy gradient: with p = softmax(z), H = -sum_j p_j log p_j, dH/dp_j = -(log p_j + 1) and
 * dp_j/dz_k = p_j (delta_jk - p_k), so dH/dz_k = -p_k (log p_k + 1) + p_k sum_j p_j (log p_j + 1)
 * = -p_k (log p_k + H). Entries with p_k = 0 get 0 (p log p -> 0). */
#include "common/nn/nn_loss.h"

#include <math.h>

#include "common/hsrl_check.h"

double nn_bce_with_logits_forward(const float *logits, const float *targets, int64_t n) {
  HSRL_CHECK(n > 0);
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double x = logits[i], y = targets[i];
    s += fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
  }
  return s / (double)n;
}

void nn_bce_with_logits_backward(float *dlogits, const float *logits, const float *targets, int64_t n,
                                 float scale) {
  HSRL_CHECK(n > 0);
  double c = (double)scale / (double)n;
  for (int64_t i = 0; i < n; i++) {
    double x = logits[i];
    /* Sigmoid without overflow in exp for either sign. */
    double e = exp(-fabs(x));
    double sig = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    dlogits[i] += (float)(c * (sig - (double)targets[i]));
  }
}

double nn_mse_forward(const float *pred, const float *target, int64_t n) {
  HSRL_CHECK(n > 0);
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)pred[i] - (double)target[i];
    s += d * d;
  }
  return s / (double)n;
}

void nn_mse_backward(float *dpred, const float *pred, const float *target, int64_t n, float scale) {
  HSRL_CHECK(n > 0);
  double c = 2.0 * (double)scale / (double)n;
  for (int64_t i = 0; i < n; i++) dpred[i] += (float)(c * ((double)pred[i] - (double)target[i]));
}

double nn_nll_forward(const float *logp, const int32_t *idx, int64_t n, int64_t v) {
  HSRL_CHECK(n > 0 && v > 0);
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) {
    HSRL_CHECKF(idx[i] >= 0 && idx[i] < v, "idx[%lld] = %d, v = %lld", (long long)i, (int)idx[i],
                (long long)v);
    s -= (double)logp[i * v + idx[i]];
  }
  return s / (double)n;
}

void nn_nll_backward(float *dlogp, const int32_t *idx, int64_t n, int64_t v, float scale) {
  HSRL_CHECK(n > 0 && v > 0);
  float g = (float)(-(double)scale / (double)n);
  for (int64_t i = 0; i < n; i++) {
    HSRL_CHECKF(idx[i] >= 0 && idx[i] < v, "idx[%lld] = %d, v = %lld", (long long)i, (int)idx[i],
                (long long)v);
    dlogp[i * v + idx[i]] += g;
  }
}

static double row_entropy(const float *p, int64_t v) {
  double h = 0.0;
  for (int64_t j = 0; j < v; j++)
    if (p[j] > 0.0f) h -= (double)p[j] * log((double)p[j]);
  return h;
}

double nn_entropy_forward(float *ent, const float *probs, int64_t n, int64_t v) {
  HSRL_CHECK(n > 0 && v > 0);
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double h = row_entropy(probs + i * v, v);
    if (ent) ent[i] = (float)h;
    s += h;
  }
  return s / (double)n;
}

void nn_entropy_backward(float *dlogits, const float *probs, int64_t n, int64_t v, float scale) {
  HSRL_CHECK(n > 0 && v > 0);
  double c = (double)scale / (double)n;
  for (int64_t i = 0; i < n; i++) {
    const float *p = probs + i * v;
    double h = row_entropy(p, v);
    float *dz = dlogits + i * v;
    for (int64_t j = 0; j < v; j++) {
      if (!(p[j] > 0.0f)) continue;
      double pj = p[j];
      dz[j] += (float)(-c * pj * (log(pj) + h));
    }
  }
}
