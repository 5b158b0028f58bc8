/* nn_activation.c: see nn_activation.h.
 *
 * Speed: the loops run over fixed blocks of NN_ACT_BLOCK elements plus a scalar tail, written
 * without branches on the data (a random-sign input made the branchy loop mispredict every other
 * element: 4 ns/element). GCC at -O2 (its "very cheap" vectoriser cost model) vectorises a loop
 * only when the vector code replaces the scalar code exactly, i.e. a fixed trip count; the block
 * loops are that. The backward selects dout through a bit mask instead of "out > 0 ? dout : 0",
 * which GCC keeps as a branch under the default -ftrapping-math. */
#include "common/nn/nn_activation.h"

#include <string.h>

#include "common/hsrl_check.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_ACT_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_ACT_HOT
#endif

#define NN_ACT_BLOCK 16

/* Forward, out != inp (restrict lets the block loop vectorise without alias checks). */
NN_ACT_HOT static void relu_forward_copy(float *restrict out, const float *restrict inp, int64_t n) {
  int64_t i = 0;
  for (; i + NN_ACT_BLOCK <= n; i += NN_ACT_BLOCK)
    for (int k = 0; k < NN_ACT_BLOCK; k++) out[i + k] = inp[i + k] < 0.0f ? 0.0f : inp[i + k];
  for (; i < n; i++) out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
}

NN_ACT_HOT static void relu_forward_inplace(float *restrict x, int64_t n) {
  int64_t i = 0;
  for (; i + NN_ACT_BLOCK <= n; i += NN_ACT_BLOCK)
    for (int k = 0; k < NN_ACT_BLOCK; k++) x[i + k] = x[i + k] < 0.0f ? 0.0f : x[i + k];
  for (; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void nn_relu_forward(float *out, const float *inp, int64_t n) {
  HSRL_CHECK(n >= 0);
  /* "x < 0 ? 0 : x", not "x > 0 ? x : 0": the latter maps NaN to 0; keep NaN visible so the
   * learner's guard sees it. */
  if (out == inp) relu_forward_inplace(out, n);
  else relu_forward_copy(out, inp, n);
}

/* dout where out > 0, +0.0f elsewhere, without a branch (see the file comment). */
static float relu_pass(float dout, float out) {
  uint32_t u;
  memcpy(&u, &dout, sizeof u);
  u &= 0u - (uint32_t)(out > 0.0f);
  float g;
  memcpy(&g, &u, sizeof g);
  return g;
}

NN_ACT_HOT static void relu_backward_kernel(float *restrict dinp, const float *restrict dout,
                                 const float *restrict out, int64_t n) {
  int64_t i = 0;
  for (; i + NN_ACT_BLOCK <= n; i += NN_ACT_BLOCK)
    for (int k = 0; k < NN_ACT_BLOCK; k++) dinp[i + k] += relu_pass(dout[i + k], out[i + k]);
  for (; i < n; i++)
    if (out[i] > 0.0f) dinp[i] += dout[i];
}

void nn_relu_backward(float *dinp, const float *dout, const float *out, int64_t n) {
  HSRL_CHECK(n >= 0);
  if (dinp == dout) { /* in place: each element reads its own value first */
    for (int64_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dinp[i] : 0.0f;
    return;
  }
  relu_backward_kernel(dinp, dout, out, n);
}
