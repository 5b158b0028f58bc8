/* nn_mha.h: multi-head attention exactly like torch.nn.MultiheadAttention (method.md section 6;
 * reference-hsrl.md section 0, "Multi-head attention").
 *
 * Query input q_in (B, Tq, E), key/value input kv_in (B, Tk, E) (self-attention passes the same
 * tensor twice; the transformer layer passes only the last Tq rows of it as q_in). Parameters as
 * torch stores them:
 *   w_in (3E, E) packed in-projection, rows [0,E) = W_q, [E,2E) = W_k, [2E,3E) = W_v; b_in (3E);
 *   w_o (E, E), b_o (E) out-projection.
 *   Q = q_in W_q^T + b_q, K = kv_in W_k^T + b_k, V = kv_in W_v^T + b_v;
 *   per head (head size E/h, columns [hd*E/h, (hd+1)*E/h) of Q, K, V):
 *     A  = softmax(Q_h K_h^T / sqrt(E/h) over the ALLOWED keys);  A' = Drop(A);  C_h = A' V_h;
 *   out = concat_h(C_h) W_o^T + b_o.
 *
 * Masks (nn_mha_mask): a key is NOT allowed for query i of batch row b when
 *   causal and j > q_offset + i   (query i sits at absolute position q_offset + i), or
 *   key_padding != NULL and key_padding[b*Tk + j] != 0   (1 = padding, like torch's bool masks).
 * A query row whose keys are ALL disallowed gets zero attention (all weights 0, so its output is
 * b_o and no gradient flows into its scores). torch gives NaN there; left-padded histories with a
 * causal mask produce such rows at the padding positions, and the zero convention keeps them
 * finite and harmless.
 *
 * Attention dropout: with p > 0 the weight of (b, head, query i, key j) is kept by the mask of
 * nn_dropout_mask(key, counter), counter = offset + ((b*h + head) * (q_offset + Tq) + q_offset + i)
 * * Tk + j (an element counter of nn_dropout.h, which maps it to 16 random bits), i.e. indexed by
 * the query's ABSOLUTE position, so computing only the last queries of a sequence
 * (q_offset = T - Tq) draws exactly the masks the full computation draws for those rows.
 * p == 0 disables dropout (key and offset are ignored).
 *
 * Memory ("size then place"): the forward fills a caller cache of nn_mha_cache_floats() floats
 * that the backward reads; the backward needs a scratch of nn_mha_scratch_floats() floats. Nothing
 * is allocated. Backward ADDS into dq_in, dkv_in, dw_in, db_in, dw_o, db_o (any may be NULL when
 * not needed; dq_in and dkv_in may be the same buffer for self-attention, both contributions are
 * added).
 * The cache holds Q, K|V and the concatenated heads (the views below) and the weights in a compact
 * form: per query row only the keys from the first unpadded block of 8 keys to the causal
 * end, and with dropout the keep bytes instead of a second copy. The dense weight views att and
 * att_drop are for inspection (tests, debugging): nn_mha_cache_view() fills them from the compact
 * form, the layer itself never reads or writes them.
 *
 * Packed rows (nn_mha_forward_packed / nn_mha_backward_packed, for a caller that does not need
 * the outputs of left-padded positions, e.g. a transformer stack whose top layer reads only the
 * last position): rows (B+1) are offsets, rows[0] = 0; batch row b keeps only its LAST
 * n_b = rows[b+1] - rows[b] <= Tk key positions, stored as rows rows[b].. of kv_in, and its last
 * min(Tq, n_b) query positions, stored one batch row after the other in q_in (and in out, dq_in).
 * Dropped keys are treated as padding; positions, masks and dropout counters stay those of the
 * dense (B, Tq, Tk) problem, so a kept row's results equal the dense computation's up to the
 * order of float sums (the attention sums start at the first kept key). dkv_in gets nothing for
 * dropped rows (they do not exist). nn_mha_cache_view does not expand a packed forward's weights.
 *
 * Speed: the projections go through nn_linear (nn_gemm, batched over all B*T rows); the per-(b,head)
 * attention (50x50x8 in the policy) is a fused, vectorised kernel (see nn_mha.c); query rows that
 * see no key and keys before the first unpadded block cost nothing. Inputs must be finite (a NaN
 * in a padded position of an unpadded block reaches the output, as in torch). */
#ifndef NN_MHA_H
#define NN_MHA_H

#include <stdint.h>

typedef struct nn_mha_shape {
  int64_t B;       /* batch rows */
  int64_t Tq;      /* queries per row */
  int64_t Tk;      /* keys/values per row */
  int64_t E;       /* embedding width, divisible by n_heads */
  int64_t n_heads; /* h */
} nn_mha_shape;

typedef struct nn_mha_mask {
  int causal;                 /* 1: query i may attend keys j <= q_offset + i */
  int64_t q_offset;           /* absolute position of query 0 (0 for plain self-attention) */
  const uint8_t *key_padding; /* (B, Tk) 1 = padding = not allowed, or NULL */
} nn_mha_mask;

/* Views of the cache buffer (offsets are fixed by the shape). */
typedef struct nn_mha_cache {
  float *q;        /* (B, Tq, E)  projected queries, bias included, unscaled */
  float *kv;       /* (B, Tk, 2E) projected keys (first E) and values (last E) per row */
  float *att;      /* (B, h, Tq, Tk) softmax weights before dropout (0 where not allowed) */
  float *att_drop; /* (B, h, Tq, Tk) weights after dropout (not written when p == 0) */
  float *ctx;      /* (B, Tq, E)  concatenated head outputs, the input of W_o */
} nn_mha_cache;

int64_t nn_mha_cache_floats(const nn_mha_shape *s);
int64_t nn_mha_scratch_floats(const nn_mha_shape *s);
/* Carves the views out of buf (nn_mha_cache_floats(s) floats) and, after a (dense) forward, fills
 * att and att_drop (the latter when that forward had p > 0) from the compact weights. */
nn_mha_cache nn_mha_cache_view(float *buf, const nn_mha_shape *s);

void nn_mha_forward(float *out /* (B, Tq, E) */, float *cache /* nn_mha_cache_floats */,
                    const float *q_in /* (B, Tq, E) */, const float *kv_in /* (B, Tk, E) */,
                    const float *w_in /* (3E, E) */, const float *b_in /* (3E) */,
                    const float *w_o /* (E, E) */, const float *b_o /* (E) */,
                    const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                    const nn_mha_shape *s);

void nn_mha_backward(float *dq_in /* (B, Tq, E) or NULL */, float *dkv_in /* (B, Tk, E) or NULL */,
                     float *dw_in /* (3E, E) or NULL */, float *db_in /* (3E) or NULL */,
                     float *dw_o /* (E, E) or NULL */, float *db_o /* (E) or NULL */,
                     float *scratch /* nn_mha_scratch_floats */, const float *dout /* (B, Tq, E) */,
                     const float *cache /* filled by nn_mha_forward */,
                     const float *q_in /* (B, Tq, E) */, const float *kv_in /* (B, Tk, E) */,
                     const float *w_in /* (3E, E) */, const float *w_o /* (E, E) */,
                     const nn_mha_mask *mask, float p, const nn_mha_shape *s);

/* The same on packed rows (see above): q_in, out, dq_in (sum_b min(Tq, n_b), E), kv_in, dkv_in
 * (rows[B], E). The cache and scratch sizes are those of the dense shape. */
void nn_mha_forward_packed(float *out, float *cache, const float *q_in, const float *kv_in,
                           const float *w_in, const float *b_in, const float *w_o, const float *b_o,
                           const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                           const nn_mha_shape *s, const int64_t *rows /* (B+1) */);

void nn_mha_backward_packed(float *dq_in, float *dkv_in, float *dw_in, float *db_in, float *dw_o,
                            float *db_o, float *scratch, const float *dout, const float *cache,
                            const float *q_in, const float *kv_in, const float *w_in,
                            const float *w_o, const nn_mha_mask *mask, float p,
                            const nn_mha_shape *s, const int64_t *rows /* (B+1) */);

#endif
