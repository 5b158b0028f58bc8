/* agent_hsrl.h: the HSRL agent (method.md §6-8) behind the agent.h contract: acting by decoding
 * Semantic IDs from the Hierarchical Policy Network, and learning with the advantage actor-critic
 * over the semantic action with the Multi-Level Critic. The networks and losses are in
 * agent_hsrl_net.h.
 *
 * Acting (agent.h act()): the online actor in inference mode (no dropout, in both modes: exploration
 * comes from sampling, not from dropout as in the reference), then
 *   GREEDY:  the exact top-K items by p(i|s) = prod_l pi_l[z_l(i)] (pi_l = softmax(logits_l / tau)),
 *            by best-first trie search (decoder "trie") or by scoring the live catalog ("catalog");
 *            both give the same slate (sim_sid_decode.h's total order);
 *   EXPLORE: K distinct items sampled without replacement from the tempered product
 *            prod_l softmax(logits_l / (tau T)) restricted to the live catalog, with epsilon-mixing
 *            (sim_sid_decode_sample along the trie, or _sample_list over the catalog).
 * out->tokens gets the items' SIDs and out->logp the log-probabilities of the chosen tokens under
 * the per-level distributions that were decoded (tau, and T when exploring): the behaviour
 * log-probs. Slots left empty (live catalog < K) hold item 0, tokens 0, logp 0.
 *
 * Learning (agent.h learn()), one update per call on a sampled batch:
 *   y = r + gamma (1 - done) V_target(s')   target actor's contexts and target critic, both in
 *                                           inference mode (no dropout; method.md is silent, and
 *                                           a target should not be noisy); rows with done = 1
 *                                           are not encoded at all
 *   the losses of agent_hsrl_net.h on s in training mode (encoder dropout agent.dropout, critic
 *   dropout agent.critic_dropout), masks keyed by (seed, update number);
 *   optional global-norm clipping per network; Adam for the actor (actor_lr) and the critic
 *   (critic_lr; level_w is the critic's), coupled L2 weight_decay; then the soft update
 *   target <- tau online + (1 - tau) target (tau = target_tau) of both targets. A non-finite loss or gradient norm
 *   skips the step (parameters unchanged) and is reported in the stats (grad_norm NaN) so the
 *   learner stops.
 * Stats: critic_loss, actor_loss = the pg term (like the reference's log), entropy = sum_l mean_b
 * H(pi_l), bc_loss = the unweighted bc term, advantage / value / td_target = batch means, grad_norm
 * = sqrt(|g_actor|^2 + |g_critic|^2) before clipping, level_weight = softmax(level_w) (L+1).
 *
 * Choice documented here (method.md eq. 26 "joint objective = actor + critic"): by default the
 * critic loss's gradient also flows into the actor through the contexts it reads
 * (critic_to_actor = 1); 0 detaches them as the reference does.
 *
 * Checkpoints (save/load into an open io_h5): the tables under "actor/", "critic/",
 * "actor_target/", "critic_target/" (nn_params layout: values, plus optim/m, optim/v and the Adam
 * step for actor and critic) and "agent_hsrl/n_updates" (the update counter) with the attribute
 * "dropout_key" (the base key of the dropout masks: masks of update t use derive(key, t), so a
 * resumed run draws the masks the uninterrupted run would have drawn). An act-only agent writes and reads "actor/" values only. load() changes nothing
 * unless every table reads.
 *
 * Memory: everything is sized at init for max_batch rows; act() and learn() allocate nothing. */
#ifndef AGENT_HSRL_H
#define AGENT_HSRL_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "learner/agents/agent.h"
#include "learner/agents/agent_hsrl_net.h"
#include "sim/sim_data.h"
#include "sim/sim_sid_index.h"
#include "sim/sim_sid_trie.h"

typedef struct agent_hsrl_config {
  hsrl_settings_agent s;        /* the [agent] section */
  int64_t history_len;          /* H (data.history_len) */
  int64_t slate_size;           /* K (data.slate_size) */
  int64_t max_batch;            /* rows of the largest act() or learn() batch */
  uint64_t seed;                /* initial parameters and dropout streams */
  /* Not (yet) in the [agent] section; agent_hsrl_config_defaults sets them: */
  double explore_temp;          /* T of EXPLORE (1) */
  int critic_to_actor;          /* see above (1) */
  double grad_clip;             /* max L2 norm of each network's gradient, 0 = off (0) */
  int act_only;                 /* 1: an actor's copy: the actor table only, no learn() (0) */
  int exclude_history;          /* env.exclude_history: slates skip the state's history items */
  nn_lr_schedule lr_schedule;   /* train.lr_decay over train.iterations updates: scales both lrs */
  nn_lr_schedule bc_schedule;   /* agent.bc_final: linear over train.iterations updates, scales lambda_BC
                                   (final_fraction may exceed 1 here: a rising weight) */
} agent_hsrl_config;

/* The world the agent reads (borrowed: must outlive the agent; see agent_hsrl_set_world). */
typedef struct agent_hsrl_world {
  const float *item_features; /* (N+1, D), row 0 = padding */
  int64_t n_items, item_dim;  /* N, D */
  const float *user_features; /* (U+1, P), or NULL when agent.user_state is off */
  int64_t n_users, user_dim;  /* U, P */
  const sim_sid_index *index; /* SIDs of the live catalog: L and V_l of the heads come from it */
  const sim_sid_trie *trie;   /* built from index (decoder "trie") */
} agent_hsrl_world;

/* Fills c from the settings: the [agent] section, data.history_len, data.slate_size, run.seed,
 * and the defaults above. */
void agent_hsrl_config_defaults(agent_hsrl_config *c, const hsrl_settings *s, int64_t max_batch);

agent_hsrl_world agent_hsrl_world_of(const sim_dataset *data, const sim_sid_index *index,
                                     const sim_sid_trie *trie);

/* Builds the agent (parameters drawn from cfg->seed; targets are copies). A bad config or world
 * (heads do not divide d, critic_hidden unparsable, more than AGENT_MAX_LEVELS levels, user_state
 * without user features, ...) is HSRL_E_USAGE with a message naming the field. */
hsrl_status agent_hsrl_init(agent **out, const agent_hsrl_config *cfg, const agent_hsrl_world *w);

/* Replaces the world (e.g. after catalog churn: a grown feature table, a new index and trie). The
 * levels, vocabularies and widths must not change (check failure). */
void agent_hsrl_set_world(agent *a, const agent_hsrl_world *w);

/* act() over explicit candidate lists cand (B, M) instead of the live catalog (catalog scoring:
 * greedy top-K or sampling without replacement with epsilon among the candidates). */
void agent_hsrl_act_candidates(agent *a, int64_t B, const int32_t *users, const int32_t *histories,
                               const int32_t *cand /* (B, M) */, int64_t m, agent_act_mode mode,
                               hsrl_rng *rng, agent_act_out *out);

/* The TD targets of learn() for a batch: y (B) = r + gamma (1 - done) V_target(s'). */
void agent_hsrl_td_target(agent *a, const agent_batch *b, float *y /* (B) */);

/* V(s) in inference mode with the online (target = 0) or target networks. */
void agent_hsrl_values(agent *a, int64_t B, const int32_t *users, const int32_t *histories, int target,
                       float *value /* (B) */);

typedef enum agent_hsrl_table { AGENT_HSRL_ACTOR, AGENT_HSRL_CRITIC, AGENT_HSRL_ACTOR_TARGET,
                                AGENT_HSRL_CRITIC_TARGET } agent_hsrl_table;

/* Access for the learner's reports and for tests (NULL for tables an act-only agent lacks). */
nn_params *agent_hsrl_params(agent *a, agent_hsrl_table which);
agent_hsrl_net *agent_hsrl_net_of(agent *a);
const agent_hsrl_loss_config *agent_hsrl_loss_config_of(agent *a);
int64_t agent_hsrl_n_updates(const agent *a);

#endif
