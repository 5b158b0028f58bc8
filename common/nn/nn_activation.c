/* nn_activation.c: see nn_activation.h. */
#include "common/nn/nn_activation.h"

#include "common/hsrl_check.h"

void nn_relu_forward(float *out, const float *inp, int64_t n) {
  HSRL_CHECK(n >= 0);
  /* "x > 0 ? x : 0" maps NaN to 0; keep NaN visible so the learner's guard sees it. */
  for (int64_t i = 0; i < n; i++) out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
}

void nn_relu_backward(float *dinp, const float *dout, const float *out, int64_t n) {
  HSRL_CHECK(n >= 0);
  for (int64_t i = 0; i < n; i++)
    if (out[i] > 0.0f) dinp[i] += dout[i];
}
