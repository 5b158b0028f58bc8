/* nn_update.c: see nn_update.h. */
#include "common/nn/nn_update.h"

#include <math.h>

#include "common/hsrl_check.h"

double nn_clip_grad_norm(float *grads, int64_t n, float max_norm) {
  HSRL_CHECK(n >= 0);
  HSRL_CHECKF(max_norm > 0.0f && isfinite(max_norm), "max_norm %g", (double)max_norm);
  double sum_sq = 0.0;
  for (int64_t i = 0; i < n; i++) sum_sq += (double)grads[i] * (double)grads[i];
  double norm = sqrt(sum_sq);
  if (!isfinite(norm)) return norm;
  double coef = (double)max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    float c = (float)coef;
    for (int64_t i = 0; i < n; i++) grads[i] = grads[i] * c;
  }
  return norm;
}

/* Elementwise loops in fixed blocks, which GCC's -O2 vectoriser takes (see nn_activation.c). */
#define NN_UPDATE_BLOCK 16

static void soft_update(float *restrict target, const float *restrict source, int64_t n, float keep,
                        float tau) {
  int64_t i = 0;
  for (; i + NN_UPDATE_BLOCK <= n; i += NN_UPDATE_BLOCK)
    for (int k = 0; k < NN_UPDATE_BLOCK; k++) target[i + k] = target[i + k] * keep + source[i + k] * tau;
  for (; i < n; i++) target[i] = target[i] * keep + source[i] * tau;
}

void nn_soft_update(float *target, const float *source, int64_t n, float tau) {
  HSRL_CHECK(n >= 0);
  HSRL_CHECKF(tau >= 0.0f && tau <= 1.0f, "tau %g", (double)tau);
  const float keep = (float)(1.0 - (double)tau);
  if (target == source) { /* tau * x + (1 - tau) * x, element by element as below */
    for (int64_t i = 0; i < n; i++) target[i] = target[i] * keep + target[i] * tau;
    return;
  }
  soft_update(target, source, n, keep, tau);
}

int nn_all_finite(const float *x, int64_t n) {
  HSRL_CHECK(n >= 0);
  /* Counted, not returned at the first bad value: branch-free, and a clean buffer (the usual
   * case) is read to the end anyway. */
  int64_t n_bad = 0;
  for (int64_t i = 0; i < n; i++) n_bad += !isfinite(x[i]);
  return n_bad == 0;
}
