/* agent_sl.h: the supervised baseline "SL" (method.md section 10; the reference's OfflineSLAgent,
 * reference-hsrl.md section 8): the SASRec state encoder (agent_encoder.h) trained by binary
 * cross-entropy on LOGGED slates' clicks, acting by its item scores.
 *
 *   score(s, i) = <s, phi(i)>,  phi(i) = item_map(x_i) [+ E_id[i]]   (the encoder's item vectors:
 *                 the reference's kernel score with the encoder's own input projection; the
 *                 optional item-id embedding lets it tell apart items with equal features)
 *   learn(batch): loss = mean over the B*K shown items of BCE(score(s_b, slate_bk), click_bk), one
 *                 sigmoid on the raw scores; Adam (agent.actor_lr, coupled L2 agent.weight_decay).
 *                 It reads users, history, slate and clicks of the batch only, so it learns from
 *                 logged records (the paper's SL row) or from replay transitions alike.
 *   act GREEDY:   the top K items of 1..N by score, best first, ties to the lower id.
 *   act EXPLORE:  K distinct items drawn one after another without replacement; draw k picks
 *                 item i among the items R_k not drawn yet with probability
 *                   (1 - eps) q_i / sum_{j in R_k} q_j + eps / |R_k|,
 *                 q_i = exp((score_i - max score) / tau)    (tau = agent.tau_temp, eps =
 *                 agent.epsilon), from the caller's rng.
 * Acting runs the encoder in inference mode (no dropout). act and learn allocate nothing.
 *
 * Dropout keys of update t (1-based) are hsrl_rng_derive(seed, t): the update count is the Adam
 * step, which checkpoints restore, so a resumed run draws the same masks.
 * A non-finite loss or gradient norm skips the optimiser step (the parameters stay the last good
 * ones) and is reported in the stats for the learner to stop on.
 *
 * Tables: one nn_params table "sl/enc/..." (agent_encoder.h); save/load write it with its Adam
 * moments and step (nn_params_write, NN_PARAMS_OPTIM) plus root attribute sl_format_version. */
#ifndef AGENT_SL_H
#define AGENT_SL_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "learner/agents/agent.h"
#include "learner/agents/agent_encoder.h"
#include "sim/sim_data.h"

#define AGENT_SL_FORMAT_VERSION 1

typedef struct agent_sl_config {
  agent_encoder_config enc;
  int64_t slate_size; /* K */
  int64_t max_batch;  /* rows per act / learn call (act splits larger calls) */
  float lr, weight_decay, temperature, epsilon;
  nn_lr_schedule lr_schedule; /* train.lr_decay over train.iterations updates */
  int exclude_history; /* env.exclude_history: slates skip the state's history items */
  uint64_t seed;      /* parameter init and dropout keys */
} agent_sl_config;

/* The config from the settings ([agent]) and the dataset (sizes, feature tables: borrowed, must
 * outlive the agent). item_id_embedding: 1 adds E_id to phi. */
agent_sl_config agent_sl_config_make(const hsrl_settings *s, const sim_dataset *data,
                                     int item_id_embedding, int64_t max_batch, uint64_t seed);

agent *agent_sl_init(const agent_sl_config *cfg);

/* Early stopping (agent.sl_val_fraction; the learner evaluates, the agent keeps):
 * agent_sl_heldout_loss: the mean BCE of the batch's logged clicks, inference mode (no dropout, no
 *   gradient), B <= max_batch;
 * agent_sl_offer_heldout: keeps a copy of the current parameters when loss is below every loss
 *   offered before (returns 1), with the Adam step they are from; checkpoints save the copy
 *   ("sl/kept_values", attributes update and heldout_loss) and load restores it;
 * agent_sl_kept_update: that step (0: none kept) and its loss;
 * agent_use_best (agent.h): act with the kept copy (evaluation of a checkpoint). */
double agent_sl_heldout_loss(agent *a, const agent_batch *batch);
int agent_sl_offer_heldout(agent *a, double loss);
int64_t agent_sl_kept_update(const agent *a, double *loss);

/* The item scores of B states over the catalog: out (B, N+1), column 0 (padding) is -INFINITY.
 * The exact numbers greedy acting ranks by. Any B (split internally). */
void agent_sl_scores(agent *a, int64_t B, const int32_t *users, const int32_t *histories,
                     float *out /* (B, N+1) */);

/* The loss of a batch in training mode (dropout masks keyed by key) and, when dloss != 0, ADDS
 * dloss * d(loss)/d(theta) into the table's grads (the caller zeroes). learn() is: zero the grads,
 * this with dloss = 1 and key agent_sl_dropout_key(a, t) for update t = Adam step + 1, Adam. */
double agent_sl_loss(agent *a, const agent_batch *b, uint64_t key, float dloss);
uint64_t agent_sl_dropout_key(const agent *a, int64_t update);

/* The parameter table (values, grads, Adam moments), for tests and tools. */
nn_params *agent_sl_params(agent *a);

#endif
