/* nn_dropout.c: see nn_dropout.h.
 *
 * Counter layout: element i uses word (offset+i) % 4 of Philox block (offset+i) / 4; the block
 * index fills ctr[0..1] and ctr[2..3] hold a fixed tag, so dropout words never coincide with the
 * hsrl_rng streams (whose ctr[2..3] is a stream id) even when a caller reuses a seed as the key.
 * An element is kept when its word >= p * 2^32, i.e. with probability 1 - p (to 2^-32). */
#include "common/nn/nn_dropout.h"

#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"

#define NN_DROPOUT_TAG0 0x44524f50u /* "DROP" */
#define NN_DROPOUT_TAG1 0x4d41534bu /* "MASK" */

void nn_dropout_mask(uint8_t *mask, int64_t n, float p, uint64_t key, uint64_t offset) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  if (p == 0.0f) {
    for (int64_t i = 0; i < n; i++) mask[i] = 1;
    return;
  }
  uint64_t threshold = (uint64_t)((double)p * 4294967296.0);
  uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  uint32_t words[4];
  uint64_t block = UINT64_MAX; /* the block held in words */
  for (int64_t i = 0; i < n; i++) {
    uint64_t c = offset + (uint64_t)i;
    if (c / 4 != block) {
      block = c / 4;
      uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), NN_DROPOUT_TAG0, NN_DROPOUT_TAG1};
      hsrl_philox4x32(words, ctr, k);
    }
    mask[i] = (uint64_t)words[c % 4] >= threshold;
  }
}

void nn_dropout_apply(float *out, const float *inp, const uint8_t *mask, int64_t n, float p) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; i++) out[i] = mask[i] ? inp[i] * scale : 0.0f;
}

void nn_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n, float p, uint64_t key,
                        uint64_t offset) {
  nn_dropout_mask(mask, n, p, key, offset);
  nn_dropout_apply(out, inp, mask, n, p);
}

void nn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; i++)
    if (mask[i]) dinp[i] += dout[i] * scale;
}
