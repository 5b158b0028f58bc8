/* nn_dropout.h: inverted dropout with stateless masks (method.md section 7).
 *
 * mask[i] = 1 keeps element i; drawn from Philox keyed by `key` with counter c = offset + i
 * (stateless, so the same (key, offset) always gives the same mask, however the tensor is split).
 * Each decision takes 16 random bits: element c uses the 16-bit half c % 2 (the low half first) of
 * word c / 2 of the nn_dropout_words stream (word (c / 2) % 4 of Philox block c / 8), and is kept
 * when that half >= t = round(p * 65536) (half-way cases up), capped at 65535. So an element is
 * dropped with probability t / 65536, within 2^-17 of p (p > 1 - 2^-17 gives 65535 / 65536, the
 * largest drop rate the 16 bits can express); a p < 2^-17, which rounds to t = 0, keeps everything
 * and, like p == 0, draws nothing. Kept elements are scaled by 1/(1-p) (p itself, not t / 65536).
 * p == 0: out = inp, mask all 1. 0 <= p < 1. A mask may be supplied by the caller instead with
 * nn_dropout_apply. Backward ADDS dout * mask / (1-p) into dinp. */
#ifndef NN_DROPOUT_H
#define NN_DROPOUT_H

#include <stdint.h>
#include <string.h>

void nn_dropout_mask(uint8_t *mask /* (n) */, int64_t n, float p, uint64_t key, uint64_t offset);
void nn_dropout_apply(float *out /* (n) */, const float *inp /* (n) */, const uint8_t *mask /* (n) */,
                      int64_t n, float p); /* out may alias inp */
void nn_dropout_forward(float *out /* (n) */, uint8_t *mask /* (n) */, const float *inp /* (n) */,
                        int64_t n, float p, uint64_t key, uint64_t offset);
void nn_dropout_backward(float *dinp /* (n) */, const float *dout /* (n) */,
                         const uint8_t *mask /* (n) */, int64_t n, float p);

/* Dropout after a ReLU, fused (the FFN hidden layer of nn_transformer, the hidden layers of
 * nn_mlp). Forward: x = Drop(ReLU(x)) in place, with the mask nn_dropout_mask(n, p, key, offset)
 * gives, drawn piece by piece and not kept; ReLU is "x < 0 ? 0 : x" like nn_relu_forward (NaN
 * stays visible); p == 0 is the plain ReLU. Backward: d = dL/dx from d = dL/dy in place, given the
 * forward's output y: d / (1-p) where y > 0, +0.0f elsewhere (written, not accumulated). y > 0
 * exactly where the input was > 0 and the element was kept (a scale 1/(1-p) >= 1 keeps a positive
 * value positive), so the backward needs no mask. */
void nn_dropout_relu_forward(float *x /* (n) */, int64_t n, float p, uint64_t key, uint64_t offset);
void nn_dropout_relu_backward(float *d /* (n) */, const float *y /* (n) */, int64_t n, float p);

/* Pieces for the passes that draw a mask and apply it at once (here and in the layers): at most
 * NN_DROPOUT_PIECE elements, so that the mask bytes are still in L1 when the pass reads them, each
 * ending at a counter that is a multiple of 8 (a Philox block boundary), so that no block is
 * computed for two pieces. nn_dropout_piece(c, left) is the length of the piece from counter c
 * with left elements to go. */
#define NN_DROPOUT_PIECE 1024
static inline int64_t nn_dropout_piece(uint64_t c, int64_t left) {
  const int64_t m = NN_DROPOUT_PIECE - (int64_t)(c % 8u);
  return left < m ? left : m;
}

/* The leading parts of the rows of an (n_rows, ld) mask, as nn_dropout_mask draws them for the
 * whole matrix: row r gets mask[r*ld + j] (counter offset + r*ld + j) for
 * j < min(len0 + r*step, max_len) (0 if negative), max_len <= ld; the rest is not written. With
 * step = 1 this is a causal attention mask's lower staircase, drawn without the random bits of the
 * keys no query sees. Same result as one nn_dropout_mask call per row, fewer calls. */
void nn_dropout_mask_rows(uint8_t *mask /* (n_rows, ld) */, int64_t ld, int64_t n_rows, int64_t len0,
                          int64_t step, int64_t max_len, float p, uint64_t key, uint64_t offset);

/* The raw 32-bit Philox word stream behind the masks: words[i] is word (offset+i) % 4 of block
 * (offset+i) / 4 under key. Mask element c reads the 16-bit half c % 2 (low first) of word c / 2 of
 * this stream (see the top of this file), so n mask elements from counter c use the words
 * c / 2 .. (c + n - 1) / 2. The blocks are computed with vector instructions when the machine has
 * them; max_isa caps the instruction set (NN_DROPOUT_ISA_*, lowered to what the machine supports)
 * so that tests can check every path against hsrl_philox4x32. */
enum { NN_DROPOUT_ISA_C = 0, NN_DROPOUT_ISA_SSE2 = 1, NN_DROPOUT_ISA_AVX2 = 2, NN_DROPOUT_ISA_AVX512 = 3,
       NN_DROPOUT_ISA_BEST = 3 };
void nn_dropout_words(uint32_t *words /* (n) */, int64_t n, uint64_t key, uint64_t offset, int max_isa);

/* x where keep is 1, +0.0f where it is 0, without a branch: the select of the vectorised dropout
 * loops here and in the layers that fuse dropout into other passes (GCC keeps a float
 * "keep ? x : 0" as a branch under the default -ftrapping-math, and a branch stops the
 * vectoriser). keep must be 0 or 1. */
static inline float nn_dropout_keep_or_zero(float x, uint8_t keep) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u &= 0u - (uint32_t)keep;
  memcpy(&x, &u, sizeof x);
  return x;
}

#endif
