/* nn_update.c: see nn_update.h. */
#include "common/nn/nn_update.h"

#include <math.h>

#include "common/hsrl_check.h"

/* Elementwise loops in fixed blocks, which GCC's -O2 vectoriser takes (see nn_activation.c). */
#define NN_UPDATE_BLOCK 16

double nn_sum_squares(const float *x, int64_t n) {
  HSRL_CHECK(n >= 0);
  double lane[NN_UPDATE_BLOCK] = {0};
  int64_t i = 0;
  for (; i + NN_UPDATE_BLOCK <= n; i += NN_UPDATE_BLOCK)
    for (int k = 0; k < NN_UPDATE_BLOCK; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
  double s = 0.0;
  for (int k = 0; k < NN_UPDATE_BLOCK; k++) s += lane[k];
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

double nn_clip_grad_norm(float *grads, int64_t n, float max_norm) {
  HSRL_CHECK(n >= 0);
  HSRL_CHECKF(max_norm > 0.0f && isfinite(max_norm), "max_norm %g", (double)max_norm);
  double norm = sqrt(nn_sum_squares(grads, n));
  if (!isfinite(norm)) return norm;
  double coef = (double)max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    float c = (float)coef;
    for (int64_t i = 0; i < n; i++) grads[i] = grads[i] * c;
  }
  return norm;
}

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
