/* agent_hsrl_net.h: the networks of the HSRL agent and their losses (method.md §6-8): the SASRec
 * state encoder (agent_encoder.h, shared by every agent), the hierarchical policy heads with
 * residual contexts (the HPN), the Multi-Level Critic (MLC), and the actor-critic losses of §8
 * with their backward passes. agent_hsrl.c builds the agent (act, learn, checkpoints) on top of
 * this file.
 *
 * Conventions. Letters as in method.md: B rows, H history length, D item-feature width, P
 * user-feature width, d model width, L SID levels (l = 0..L-1 here; method.md counts 1..L),
 * V_l vocabulary of level l, K slate size. Item ids 1..N, 0 = padding.
 *
 * Actor (one nn_params table, names under "<prefix>/"):
 *   enc/...                                        the state encoder s (agent_encoder.h, with
 *                                                    prefix "<prefix>/enc"; its tensors come first;
 *                                                    the options sid_embedding and user_state)
 *   heads/level<l>/w (V_l, d), /b (V_l)            logits_l = W_l c_l + b_l  (c_l: c_0 = s)
 *   heads/level<l>/emb (V_l, d)                    pi_l = softmax(logits_l / tau); e_l = pi_l E_l
 *   heads/level<l>/ln/gamma, /ln/beta (d)          c_{l+1} = LN_l(c_l - e_l)
 * c_L (after the last level) is read only by the MLC, so it is computed only with it: without the
 * MLC, E_{L-1} and LN_{L-1} are unused; with critic_to_actor = 0 they get no gradient (as in the
 * reference, whose critic is detached).
 * No-hierarchy ablation (hierarchy = 0): every head reads c_0 and no residual context is computed
 * (the emb and ln tensors exist but are unused; the critic then sees c_0 only).
 *
 * Critic (one table, names under "<prefix>/"): v = nn_mlp d -> hidden... -> 1 (ReLU, dropout,
 * LayerNorm after each hidden layer) as named tensors mlp/layer<i>/{w,b,gamma,beta}, mlp/out/{w,b}
 * when nn_mlp's packed layout coincides with the aligned table layout (every width a multiple of
 * 16, as at the defaults), else one tensor mlp/params; and level_w (L+1), init 0. With the MLC,
 * V(s) = sum_{j=0..L} softmax(level_w)_j v(c_j) and level_w is trained by the critic loss; without
 * it (mlc = 0, or hierarchy = 0) V(s) = v(c_0) and level_w is unused.
 *
 * Losses (method.md §8), for a batch with TD targets y (B) computed elsewhere:
 *   critic = mean_b (V_b - y_b)^2
 *   A_b    = clip(y_b - V_b, -1, 1), no gradient (or given by the caller, for gradient checks);
 *            normalise_advantage: (y_b - V_b - mean) / std over the batch
 *   A_bk   = A_b, or with click_credit A_b + (y_bk - mean_{k valid} y_bk) (each slot's own click
 *            against the slate's click rate: the per-slot part of the slate's reward)
 *   pg     = mean_b mean_{k valid} rho_bk A_bk sum_l -log pi_l[z_l(a_bk)]
 *            (slots with item 0 are not valid; rho_bk = 1 unless the off-policy correction is on:
 *            min(1, exp(sum_l log pi_l[z_l] - sum_l behaviour log-probs)), no gradient)
 *   negent = sum_l mean_b sum_v pi_l log pi_l   (over the V_l real tokens: V_l is the codebook's)
 *   bc     = mean_b -sum_k y_bk sum_l log pi_l[z_l(a_bk)] / max(1, sum_k y_bk)
 *   actor  = pg + lambda_H negent + lambda_BC bc
 * Gradients: the critic's parameters get d critic; the actor's get d actor, plus d critic through
 * the contexts when critic_to_actor (the joint objective of eq. 26; 0 detaches the contexts as
 * the reference does).
 *
 * Memory: agent_hsrl_net_init sizes the encoder's and one own workspace for max_batch rows
 * (forward activations, and the backward buffers when with_backward); no call after init
 * allocates. Dropout: a forward with train != 0 applies the encoder's dropout (cfg.enc.dropout)
 * and the critic's (cfg.critic.dropout) with masks keyed by `key` (stateless, so the same key
 * gives the same masks): the encoder gets derive(key, 1), the critic derive(key, 2); train == 0
 * is the inference mode (no dropout). */
#ifndef AGENT_HSRL_NET_H
#define AGENT_HSRL_NET_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "common/nn/nn_mlp.h"
#include "common/nn/nn_params.h"
#include "learner/agents/agent.h"
#include "learner/agents/agent_encoder.h"

typedef struct agent_hsrl_net_config {
  agent_encoder_config enc;         /* the state encoder: H, D, P, d, layers, heads, FFN, dropout,
                                       options, and the tables it reads (item features; the SIDs
                                       with sid_embedding, then n_levels and vocab as below) */
  int64_t K;                        /* slate size */
  int n_levels;                     /* L, 1..AGENT_MAX_LEVELS */
  int64_t vocab[AGENT_MAX_LEVELS];  /* V_l: exactly the codebook's */
  nn_mlp_config critic;             /* in_dim d, out_dim 1 */
  float tau;                        /* softmax temperature of the heads */
  int hierarchy, mlc;               /* switches (method.md §6-8 ablations) */
  int64_t max_batch;                /* rows of the largest forward */
} agent_hsrl_net_config;

/* Offsets (floats) of the heads' tensors in the actor's table (the encoder's offsets are its
 * object's: agent_encoder.h). */
typedef struct agent_hsrl_actor_layout {
  int64_t head_w[AGENT_MAX_LEVELS], head_b[AGENT_MAX_LEVELS], tok_emb[AGENT_MAX_LEVELS];
  int64_t res_g[AGENT_MAX_LEVELS], res_b[AGENT_MAX_LEVELS];
} agent_hsrl_actor_layout;

typedef struct agent_hsrl_critic_layout {
  int64_t mlp;     /* first float of the nn_mlp parameter array */
  int64_t level_w; /* (L+1) */
} agent_hsrl_critic_layout;

/* Weights and switches of the losses. scale[] multiplies the four terms (critic, pg, lambda_H
 * negent, lambda_BC bc) in value and gradient: 1 in training, other values in gradient checks. */
typedef struct agent_hsrl_loss_config {
  float lambda_h, lambda_bc; /* 0 switches the term off */
  int critic_to_actor;       /* 1: the critic loss also trains the actor through the contexts */
  int off_policy;            /* 1: clipped importance weights on the pg term (needs behaviour_logp) */
  int normalise_advantage;   /* 1: A = (y - V - mean) / std over the batch instead of clip(y - V, -1, 1) */
  int click_credit;          /* 1: each slot's advantage adds its click's deviation from the slate's click rate */
  float scale[4];
} agent_hsrl_loss_config;

/* The loss terms of one batch (unweighted, unscaled) and batch means. */
typedef struct agent_hsrl_terms {
  double critic, pg, negent, bc;
  double advantage, value, td_target; /* means of A, V(s), y */
  double entropy;                     /* sum_l mean_b H(pi_l) = -negent */
} agent_hsrl_terms;

/* The workspace: views are valid after init; the forward writes them for its B rows. Read-only
 * for callers (agent_hsrl.c and tests). */
typedef struct agent_hsrl_net {
  agent_hsrl_net_config cfg;   /* cfg.enc holds the current tables (agent_hsrl_net_set_tables) */
  agent_encoder *enc;          /* the state encoder with its workspace: c_0 = s */
  agent_hsrl_actor_layout al;
  agent_hsrl_critic_layout cl;
  int64_t v_sum, v_max;        /* sum_l V_l, max_l V_l */
  int64_t level_off[AGENT_MAX_LEVELS]; /* sum_{j<l} V_j (level blocks of logits, pi, logp) */
  int n_ctx;                   /* contexts the critic reads: L+1 with MLC and hierarchy, else 1 */
  int with_backward;
  void *mem;                   /* the one allocation */
  /* forward (max_batch rows; "B" below is the rows of the last forward) */
  int64_t B;
  float *ctx;                  /* (L+1, B, d) c_0..c_L, level-major: c_l at ctx + l*B*d (c_L only
                                  with the MLC; c_1.. only with the hierarchy) */
  float *res;                  /* (L, B, d) c_l - e_l (LayerNorm inputs) */
  float *res_mean, *res_rstd;  /* (L, B) */
  float *logits, *pi, *logp;   /* level-major: level l is a (B, V_l) block at B*level_off[l];
                                  raw logits, softmax(logits / tau), log_softmax(logits / tau) */
  float *mlp_cache;            /* critic cache for n_ctx * B rows */
  float *v;                    /* (n_ctx, B) per-level values */
  float *value;                /* (B) V(s) */
  /* backward */
  float *dctx;                 /* (L+1, B, d) */
  float *dres;                 /* (B, d) */
  float *dlogits, *dpi;        /* (B, v_max) */
  float *dv;                   /* (n_ctx, B) */
  float *rho;                  /* (B, K) rho_bk A_bk: the pg weight of each slot */
  float *adv;                  /* (B) the advantages A used */
} agent_hsrl_net;

/* The tables (finalized, zero values); the layout is filled. prefix e.g. "actor",
 * "actor_target". Two calls with the same config give the same offsets, the actor's encoder
 * tensors those of agent_hsrl_net.enc. */
nn_params *agent_hsrl_net_actor_table(const agent_hsrl_net_config *c, const char *prefix,
                                      agent_hsrl_actor_layout *lay);
nn_params *agent_hsrl_net_critic_table(const agent_hsrl_net_config *c, const char *prefix,
                                       agent_hsrl_critic_layout *lay);

/* Initial values: the encoder's (agent_encoder_init_params), then the heads' as torch's defaults
 * (Linear U(+-1/sqrt(fan_in)), emb N(0,1), LayerNorm 1/0); the critic nn_mlp_init, level_w 0. */
void agent_hsrl_net_actor_init(float *values, const agent_hsrl_net *n, hsrl_rng *rng);
void agent_hsrl_net_critic_init(float *values, const agent_hsrl_net *n, hsrl_rng *rng);

/* Checks the config (a violation is a bug: check failure; agent_hsrl_init validates user input
 * first) and allocates the workspaces (the config's tables are borrowed). */
agent_hsrl_net *agent_hsrl_net_init(const agent_hsrl_net_config *c, int with_backward);
void agent_hsrl_net_free(agent_hsrl_net *n); /* NULL ok */

/* Replaces the tables the encoder reads (catalog churn; agent_encoder_set_tables). */
void agent_hsrl_net_set_tables(agent_hsrl_net *n, int64_t n_items, const float *item_features,
                               const uint16_t *item_tokens, int64_t n_users, const float *user_features);

/* Actor forward for B rows: encoder and heads. Fills ctx (c_0, and c_1..c_L with hierarchy),
 * logits, pi and logp. users may be NULL without user_state. */
void agent_hsrl_net_actor_forward(agent_hsrl_net *n, const float *actor, int64_t B,
                                  const int32_t *users /* (B) */,
                                  const int32_t *history /* (B, H) */, int train, uint64_t key);

/* Critic forward on the contexts of the last actor forward: fills v and value (B). */
void agent_hsrl_net_critic_forward(agent_hsrl_net *n, const float *critic, int train, uint64_t key);

/* softmax weights of the levels: w (n_ctx) from level_w (L+1); [1] without the MLC. */
void agent_hsrl_net_level_weights(const agent_hsrl_net *n, const float *critic, double *w);

/* One loss evaluation with gradients, online networks, on batch b (tokens required) with TD
 * targets y (B): actor and critic forward (train, key), the terms, and their gradients written
 * into the grads of both tables (zeroed first). adv: A fixed by the caller (B), or NULL to compute
 * clip(y - V, -1, 1). adv_out (B) or NULL receives the A used. Returns the scaled weighted total
 * sum_i scale[i] * term_i. */
double agent_hsrl_net_loss(agent_hsrl_net *n, nn_params *actor, nn_params *critic, const agent_batch *b,
                           const float *y, const float *adv, float *adv_out, const agent_hsrl_loss_config *lc,
                           int train, uint64_t key, agent_hsrl_terms *terms);

#endif
