/* nn_mlp.h: the MLP block of the critic (method.md section 7: d -> 256 -> 64 -> 1, ReLU,
 * dropout 0.2, LayerNorm after each hidden layer).
 *
 * Each hidden layer is Linear -> ReLU -> Dropout -> LayerNorm; a final Linear maps to out_dim.
 * n_hidden = 0 is a plain Linear.
 *
 * Parameters live in one flat float array (gradients use the same layout), in this order:
 *   for l in 0..n_hidden-1:  W_l (hidden[l], in_l), b_l (hidden[l]), gamma_l (hidden[l]), beta_l (hidden[l])
 *   final:                   W (out_dim, in_L), b (out_dim)
 * with in_0 = in_dim and in_{l+1} = hidden[l]. nn_mlp_layer_at() gives the offsets.
 *
 * Memory is "size then place": nn_mlp_cache_floats(cfg, n) floats of caller-owned cache hold the
 * activations of a forward pass over n rows (and the backward pass's scratch). The backward pass
 * reads the cache of the matching forward pass and ADDS into dparams and dinp (caller zeroes).
 *
 * Dropout (only when train != 0 and cfg->dropout > 0): hidden layer l draws its mask from
 * nn_dropout_mask with key hsrl_rng_derive(key, l) and offset row_offset * hidden[l], so a row's
 * mask depends on (key, its absolute row index) only, never on how a batch is split. With the
 * same key the masks are fixed, so finite differences see a deterministic function. */
#ifndef NN_MLP_H
#define NN_MLP_H

#include <stdint.h>

#include "common/hsrl_rng.h"

#define NN_MLP_MAX_HIDDEN 4

typedef struct nn_mlp_config {
  int64_t in_dim;
  int n_hidden;                       /* 0..NN_MLP_MAX_HIDDEN */
  int64_t hidden[NN_MLP_MAX_HIDDEN];  /* widths of the hidden layers */
  int64_t out_dim;
  float dropout;                      /* probability of dropping, 0 <= p < 1 */
} nn_mlp_config;

/* Where layer l's tensors sit in the flat parameter array (l == n_hidden is the final Linear,
 * whose gamma and beta are -1). */
typedef struct nn_mlp_layer {
  int64_t in_dim, out_dim;
  int64_t w, b, gamma, beta; /* offsets in floats */
} nn_mlp_layer;

nn_mlp_layer nn_mlp_layer_at(const nn_mlp_config *cfg, int l);
int64_t nn_mlp_n_params(const nn_mlp_config *cfg);
int64_t nn_mlp_cache_floats(const nn_mlp_config *cfg, int64_t n);

/* torch default init: Linear W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); LayerNorm gamma 1, beta 0. */
void nn_mlp_init(float *params, const nn_mlp_config *cfg, hsrl_rng *rng);

void nn_mlp_forward(float *out /* (n, out_dim) */, float *cache /* nn_mlp_cache_floats(cfg, n) */,
                    const float *params, const float *inp /* (n, in_dim) */, int64_t n,
                    const nn_mlp_config *cfg, int train, uint64_t key, uint64_t row_offset);
/* cache is also scratch here (its activations are left intact); train must match the forward. */
void nn_mlp_backward(float *dinp /* (n, in_dim) or NULL */, float *dparams /* like params */,
                     float *cache, const float *dout /* (n, out_dim) */, const float *params,
                     const float *inp /* (n, in_dim) */, int64_t n, const nn_mlp_config *cfg,
                     int train);

#endif
