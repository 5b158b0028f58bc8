/* nn_transformer.h: the post-norm transformer encoder layer of method.md section 6, exactly
 * torch.nn.TransformerEncoderLayer(d_model=E, nhead=h, dim_feedforward=F, activation=relu,
 * norm_first=False, batch_first=True) (reference-hsrl.md section 0):
 *   x1  = LN1(x + Drop(MHA(x, x, x, masks)))
 *   out = LN2(x1 + Drop(W2 Drop(ReLU(W1 x1 + b1)) + b2))
 * with four dropouts of the same p: the attention weights (inside nn_mha), after attention,
 * after the ReLU and after the FFN.
 *
 * Last-n_q mode: the layer computes the output of only the LAST n_q positions of each sequence
 * (queries, attention output, FFN and norms for those rows only) while keys and values come from
 * all T positions. n_q = T is the full layer; n_q = 1 gives just the last position (the HSRL state
 * comes from the top layer's last position). Every dropout mask is indexed by absolute position
 * (row (b, t) of a (B, T, width) tensor uses counters offset + (b*T + t)*width + column, with a key
 * derived from the layer key per dropout site), so the last-n_q rows are bit-identical to the same
 * rows of the full computation, dropout included.
 *
 * Parameters: ONE flat float array, torch's state_dict order (so golden tensors load as they are):
 *   attn/w_in (3E,E), attn/b_in (3E), attn/w_o (E,E), attn/b_o (E), w1 (F,E), b1 (F), w2 (E,F),
 *   b2 (E), ln1/gamma (E), ln1/beta (E), ln2/gamma (E), ln2/beta (E).
 * Each tensor starts at a multiple of NN_TRANSFORMER_ALIGN floats (= NN_PARAMS_ALIGN), so adding
 * these 12 tensors in this order to an nn_params table gives exactly this layout from the first
 * one's offset on (named tensors in checkpoints, one flat pointer for the layer). The padding
 * (none when E and F are multiples of 16, as in the policy) is zeroed by init and never written.
 * nn_transformer_layout_of() gives the offsets; gradients use the same layout.
 *
 * Packed rows (nn_transformer_forward_packed / _backward_packed): for a stack whose outputs at
 * left-padded positions are never read (the state encoder: padding keys are masked in the next
 * layer and only the top layer's last position is used). rows (B+1) are offsets, rows[0] = 0;
 * batch row b keeps only its LAST n_b = rows[b+1] - rows[b] <= T positions, as rows rows[b].. of
 * x and dx, and its last min(n_q, n_b) query positions, one batch row after the other in out and
 * dout (n_q = T: out has the layout of x; n_q = 1 and every n_b >= 1: out is (B, E)). Dropped
 * positions are treated as key padding; masks, causal positions and dropout counters stay those
 * of the dense (B, T) problem, so kept rows match the dense computation up to the order of float
 * sums (attention sums start at the first kept key; weight gradients sum fewer rows). Nothing is
 * computed for dropped rows: the projections, FFN, norms and dropout masks of left padding cost
 * nothing.
 *
 * Memory: the forward fills a caller cache of nn_transformer_cache_floats() floats (uint8 dropout
 * masks live inside it too) and the backward uses a scratch of nn_transformer_scratch_floats()
 * floats, which may be shared by every layer of a stack (both sized by the dense shape, packed or
 * not). Nothing is allocated. Backward ADDS into dx (all T rows: the keys/values see every
 * position) and dparams. */
#ifndef NN_TRANSFORMER_H
#define NN_TRANSFORMER_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "common/nn/nn_mha.h"

typedef struct nn_transformer_shape {
  int64_t B, T; /* batch rows, sequence length (keys/values) */
  int64_t n_q;  /* last positions computed, 1 <= n_q <= T */
  int64_t E, F; /* model width (d), feed-forward width */
  int64_t n_heads;
} nn_transformer_shape;

typedef struct nn_transformer_layout {
  int64_t w_in, b_in, w_o, b_o, w1, b1, w2, b2, ln1_gamma, ln1_beta, ln2_gamma, ln2_beta; /* offsets */
  int64_t n_params; /* floats from the first tensor to the end of the last, padding included */
} nn_transformer_layout;

#define NN_TRANSFORMER_N_TENSORS 12
#define NN_TRANSFORMER_ALIGN 16 /* floats; equal to NN_PARAMS_ALIGN (checked by the tests) */

/* One named parameter tensor (rows x cols; cols = 1 for vectors) at offset in the flat array. */
typedef struct nn_transformer_tensor {
  const char *name;       /* our name, usable as an HDF5 path suffix: "attn/w_in" */
  const char *torch_name; /* torch state_dict key: "self_attn.in_proj_weight" */
  int64_t offset, rows, cols;
} nn_transformer_tensor;

nn_transformer_layout nn_transformer_layout_of(int64_t E, int64_t F);
int64_t nn_transformer_param_count(int64_t E, int64_t F);
/* Fills out[NN_TRANSFORMER_N_TENSORS] in storage order. */
void nn_transformer_tensors(nn_transformer_tensor out[NN_TRANSFORMER_N_TENSORS], int64_t E, int64_t F);

/* torch's initialisation: w_in Xavier-uniform over the whole (3E, E) matrix, b_in = 0; w_o
 * U(+-1/sqrt(E)), b_o = 0; w1, b1 U(+-1/sqrt(E)); w2, b2 U(+-1/sqrt(F)); gammas 1, betas 0;
 * padding 0. Draws from rng in storage order. */
void nn_transformer_init(float *params, int64_t E, int64_t F, hsrl_rng *rng);

int64_t nn_transformer_cache_floats(const nn_transformer_shape *s);
int64_t nn_transformer_scratch_floats(const nn_transformer_shape *s);

/* mask: causal flag and key padding (B, T) over the full sequence; mask->q_offset is ignored (the
 * layer sets it to T - n_q). p in [0, 1); p == 0 disables all four dropouts. */
void nn_transformer_forward(float *out /* (B, n_q, E) */, float *cache /* cache_floats */,
                            const float *x /* (B, T, E) */, const float *params /* n_params */,
                            const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                            const nn_transformer_shape *s);

void nn_transformer_backward(float *dx /* (B, T, E) or NULL */, float *dparams /* n_params or NULL */,
                             float *scratch /* scratch_floats */, const float *dout /* (B, n_q, E) */,
                             const float *cache /* from the forward */, const float *x /* (B, T, E) */,
                             const float *params, const nn_mha_mask *mask, float p,
                             const nn_transformer_shape *s);

/* The same on packed rows (see above): x, dx (rows[B], E); out, dout (sum_b min(n_q, n_b), E). */
void nn_transformer_forward_packed(float *out, float *cache, const float *x, const float *params,
                                   const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                                   const nn_transformer_shape *s, const int64_t *rows /* (B+1) */);

void nn_transformer_backward_packed(float *dx, float *dparams, float *scratch, const float *dout,
                                    const float *cache, const float *x, const float *params,
                                    const nn_mha_mask *mask, float p, const nn_transformer_shape *s,
                                    const int64_t *rows /* (B+1) */);

#endif
