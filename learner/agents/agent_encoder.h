/* agent_encoder.h: the SASRec state encoder shared by every agent (method.md section 6, "State
 * encoder"; section 10: "same encoder" for the baselines).
 *
 * For B states (user u, history h of H item ids left-padded with 0):
 *   phi(i)  = item_map(x_i) [+ E_id[i]] [+ sum_l E^sid_l[z_l(i)]]        the item vector (d)
 *             item_map: Linear(D -> d) over the dataset's item features x_i;
 *             E_id (N+1, d): optional learned item-id embedding (row 0 stays 0 for padding);
 *             E^sid_l (V_l, d): optional SID-token embeddings (agent.sid_embedding), skipped for
 *             the padding id 0.
 *   x       = phi(h_t) + pos_emb[t]                                         (B, H, d)
 *   x       = LayerNorm(Dropout(x))                                         (add, dropout, norm)
 *   x       = layers x post-norm transformer (d, heads, ffn, ReLU, dropout) with a causal mask and
 *             a key-padding mask (history id 0 = padding: never attended to). The top layer is
 *             computed for the last position only (nn_transformer's last-n_q mode, n_q = 1):
 *             only s is read, and the top layer costs about 1/H of a full one.
 *   s       = x[:, H-1, :] [+ Linear(P -> d)(u)]                            (B, d)
 * An empty history masks every key: the attention gives b_o there (nn_mha's convention).
 *
 * Parameters live in the caller's nn_params table under `prefix` ("sl/enc", "actor/enc"):
 *   <prefix>/item_map/w (d, D), item_map/b (d), [item_id_emb (N+1, d)], pos_emb (H, d),
 *   [sid_emb/level<l> (V_l, d)], emb_norm/gamma (d), emb_norm/beta (d),
 *   layer<k>/{attn/w_in, attn/b_in, attn/w_o, attn/b_o, w1, b1, w2, b2, ln1/gamma, ln1/beta,
 *             ln2/gamma, ln2/beta}   (nn_transformer.h order: one flat pointer per layer),
 *   [user_proj/w (d, P), user_proj/b (d)]
 * Every function takes the table's values (and grads) BASE pointer, so one encoder object serves
 * any table built by the same sequence of adds (a target copy: agent_encoder_register on it); a
 * caller may add its own tensors (heads) before or after the encoder's.
 *
 * Init: item_map and user_proj as torch.nn.Linear (U(+-1/sqrt(fan_in))); pos_emb N(0, 1) like
 * torch.nn.Embedding; E_id and E^sid N(0, AGENT_ENCODER_EMB_INIT_STD^2) (N(0, 1) would swamp the
 * feature projection at the start, as measured for the simulator's id embedding, sim_urm.h);
 * LayerNorms 1 / 0; each transformer layer nn_transformer_init in turn (the reference deep-copies
 * one layer; distinct layers are the ordinary choice and method.md does not ask for copies).
 *
 * Dropout (train != 0, p = cfg.dropout): the encoder derives its keys from the call's key:
 * hsrl_rng_derive(key, 1) the embedding dropout, derive(key, 2 + k) layer k. A caller that draws
 * other masks from the same key (a critic's) passes the encoder a key of its own, e.g.
 * derive(key, purpose), so that no two sites share a mask stream. Masks are indexed by absolute
 * position (nn_dropout, nn_transformer), so a row's masks depend only on (key, row). train == 0
 * or p == 0 is inference (no dropout, no masks drawn).
 *
 * Tables: item_features, user_features and sid_tokens are borrowed at init and may be replaced
 * later (agent_encoder_set_tables, after catalog churn); ids are checked against n_items, n_users.
 *
 * Memory ("size then place"): agent_encoder_init makes ONE allocation holding the activations for
 * max_batch states and the backward's buffers (agent_encoder_init_inference: without the latter,
 * for acting copies); nothing after init allocates. The forward keeps what the backward needs
 * until the next forward; backward ADDS into the grads (the caller zeroes). One encoder object per
 * thread. */
#ifndef AGENT_ENCODER_H
#define AGENT_ENCODER_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/nn/nn_params.h"
#include "learner/agents/agent.h"

#define AGENT_ENCODER_EMB_INIT_STD 0.1f
#define AGENT_ENCODER_MAX_LAYERS 64 /* the [agent] layers setting's bound */

typedef struct agent_encoder_config {
  int64_t n_items, item_dim;      /* N, D */
  int64_t n_users, user_dim;      /* U, P (used with user_state) */
  int64_t history_len;            /* H */
  int64_t d, layers, heads, ffn;  /* model width, transformer layers, heads, FFN width */
  float dropout;
  int item_id_embedding;          /* 1: phi adds E_id */
  int user_state;                 /* 1: s adds Linear(P -> d)(u) */
  int sid_embedding;              /* 1: phi adds the SID-token embeddings */
  int n_levels;                   /* L (sid_embedding) */
  int64_t vocab[AGENT_MAX_LEVELS];/* V_l (sid_embedding) */
  const float *item_features;     /* (N+1, D) borrowed; row 0 = padding */
  const float *user_features;     /* (U+1, P) borrowed (user_state) or NULL */
  const uint16_t *sid_tokens;     /* (N+1, L) borrowed (sid_embedding) or NULL */
} agent_encoder_config;

/* The config from the [agent] settings (d, layers, heads, ffn, dropout, user_state,
 * sid_embedding) and the sizes and feature tables of a dataset (sim_data.h's fields, passed
 * one by one so that this header needs nothing from sim/). item_id_embedding is 0 and the SID
 * fields are empty: the caller sets them. */
agent_encoder_config agent_encoder_config_make(const hsrl_settings_agent *s, int64_t n_items,
                                               int64_t item_dim, const float *item_features,
                                               int64_t n_users, int64_t user_dim,
                                               const float *user_features, int64_t history_len);

typedef struct agent_encoder agent_encoder;

/* Adds the encoder's tensors under prefix to p (not finalized yet); returns the offset of the
 * first. For a second table of the same layout (a target network) call it there too. A bad config
 * (heads not dividing d, missing tables) is a bug: check failure. */
int64_t agent_encoder_register(const agent_encoder_config *cfg, nn_params *p, const char *prefix);

/* agent_encoder_register + the workspace for max_batch states (forward and backward). cfg is
 * copied (its tables are borrowed and must outlive the encoder or be replaced first). */
agent_encoder *agent_encoder_init(const agent_encoder_config *cfg, nn_params *p, const char *prefix,
                                  int64_t max_batch);
/* The same without the backward's buffers (a transformer scratch and two (B*H, d) gradients):
 * for acting copies; agent_encoder_backward is then a check failure. */
agent_encoder *agent_encoder_init_inference(const agent_encoder_config *cfg, nn_params *p,
                                            const char *prefix, int64_t max_batch);
void agent_encoder_free(agent_encoder *e); /* NULL is a no-op */

/* Replaces the borrowed tables (catalog churn: a grown feature table, the SIDs of a new index):
 * ids then range over 0..n_items and 0..n_users. Widths, levels and vocabularies do not change;
 * n_items does not change with item_id_embedding (its table has N+1 rows). Checked like init
 * (check failure); allocates nothing. The config returned below reflects the new tables. */
void agent_encoder_set_tables(agent_encoder *e, int64_t n_items, const float *item_features,
                              const uint16_t *sid_tokens, int64_t n_users,
                              const float *user_features);

const agent_encoder_config *agent_encoder_get_config(const agent_encoder *e);
int64_t agent_encoder_max_batch(const agent_encoder *e);

/* Initial values of the encoder's tensors in params (the finalized table's values), drawn from
 * rng in the order of the list above. */
void agent_encoder_init_params(const agent_encoder *e, float *params, hsrl_rng *rng);

/* s (B, d) of B <= max_batch states. users may be NULL without user_state. */
void agent_encoder_forward(agent_encoder *e, const float *params, int64_t B,
                           const int32_t *users /* (B) */, const int32_t *histories /* (B, H) */,
                           int train, uint64_t key, float *out_s /* (B, d) */);

/* Backward of the last forward (same params): ADDS d(loss)/d(theta) into grads given
 * ds = d(loss)/ds (B, d). */
void agent_encoder_backward(agent_encoder *e, float *grads, const float *params,
                            const float *ds /* (B, d) */);

/* Item vectors phi(ids[j]) (n, d), ids in 0..N; gather (n, D) is the caller's scratch that the
 * backward reads again. */
void agent_encoder_item_vectors(const agent_encoder *e, const float *params, int64_t n,
                                const int32_t *ids /* (n) */, float *gather /* (n, D) */,
                                float *out /* (n, d) */);
/* ADDS into grads the gradient of phi(ids) given dout (n, d); gather as filled by the forward. */
void agent_encoder_item_vectors_backward(const agent_encoder *e, float *grads, const float *params,
                                         int64_t n, const int32_t *ids, const float *gather,
                                         const float *dout /* (n, d) */);
/* phi(i) for every i = 0..N (row 0: the padding item), without any gather (for catalog scoring). */
void agent_encoder_catalog_vectors(const agent_encoder *e, const float *params,
                                   float *out /* (N+1, d) */);

#endif
