/* agent.h: what every agent (HSRL, SL, the baselines) offers the training loop, the evaluator and
 * the actors (method.md §6-8; architecture.md: "an actor uses learner/agents/agent.h to act").
 *
 * Acting and learning are separate: an actor holds an agent built from a parameter vector and only
 * calls act(); the learner calls learn() on sampled batches. All of an agent's trainable state is
 * in nn_params tables (values, grads, Adam moments in one layout), so broadcast and checkpoints
 * touch flat arrays. Nothing is allocated per act()/learn() call: buffers are sized at init for
 * max_batch rows.
 *
 * Transition batches (agent_batch) hold ids, never feature vectors: the agent looks features up
 * itself. Done rows: next_users/next_history are the OLD user's s' (sim_env_step_result). */
#ifndef AGENT_H
#define AGENT_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_lr_schedule.h"

#define AGENT_MAX_LEVELS 4

typedef struct agent agent;

typedef struct agent_batch {
  int64_t B;
  const int32_t *users;          /* (B) */
  const int32_t *history;        /* (B, H) item ids, left-padded with 0 */
  const int32_t *slate;          /* (B, K) item ids shown */
  const uint16_t *tokens;        /* (B, K, L) SID tokens of the slate's items (NULL for non-SID agents) */
  const uint8_t *clicks;         /* (B, K) */
  const float *reward;           /* (B) */
  const uint8_t *done;           /* (B) 1: the user left after this step */
  const int32_t *next_users;     /* (B) */
  const int32_t *next_history;   /* (B, H) */
  const float *behaviour_logp;   /* (B, K, L) log pi_l of the chosen tokens at acting time, or NULL */
} agent_batch;

typedef struct agent_act_out {
  int32_t *slate;   /* (B, K) */
  uint16_t *tokens; /* (B, K, L) or NULL */
  float *logp;      /* (B, K, L) behaviour log-probs of the tokens, or NULL */
} agent_act_out;

/* Figures of one update, for metrics.tsv. Fields an agent does not have stay 0. */
typedef struct agent_stats {
  double critic_loss, actor_loss, entropy, bc_loss, advantage, value, td_target, grad_norm;
  double level_weight[AGENT_MAX_LEVELS + 1]; /* softmax(w) of the MLC */
  int n_levels;
} agent_stats;

typedef enum agent_act_mode {
  AGENT_ACT_GREEDY = 0,  /* evaluation: top-K */
  AGENT_ACT_EXPLORE = 1, /* training: sampling with temperature and epsilon */
} agent_act_mode;

typedef struct agent_vtable {
  const char *name; /* "hsrl", "sl" */
  void (*act)(agent *a, int64_t B, const int32_t *users, const int32_t *histories,
              agent_act_mode mode, hsrl_rng *rng, agent_act_out *out);
  void (*learn)(agent *a, const agent_batch *batch, agent_stats *out);
  hsrl_status (*save)(const agent *a, io_h5 *f);  /* every table, optimiser state included */
  hsrl_status (*load)(agent *a, io_h5 *f);
  int64_t (*n_policy_params)(const agent *a);      /* the flat vector actors need */
  float *(*policy_params)(agent *a);               /* pointer to it (broadcast in/out) */
  void (*use_best)(agent *a); /* NULL, or: act with the best-validated parameters held (evaluation) */
  void (*free)(agent *a);
} agent_vtable;

struct agent {
  const agent_vtable *vt;
};

static inline void agent_act(agent *a, int64_t B, const int32_t *users, const int32_t *histories,
                             agent_act_mode mode, hsrl_rng *rng, agent_act_out *out) {
  a->vt->act(a, B, users, histories, mode, rng, out);
}
static inline void agent_learn(agent *a, const agent_batch *batch, agent_stats *out) {
  a->vt->learn(a, batch, out);
}
/* train.lr_decay and train.lr_final over train.iterations updates (the settings check the name). */
static inline nn_lr_schedule agent_lr_schedule_of(const hsrl_settings *s) {
  nn_lr_schedule l;
  const int decay = nn_lr_decay_parse(s->train.lr_decay);
  l.decay = decay < 0 ? NN_LR_CONSTANT : (nn_lr_decay)decay;
  l.final_fraction = s->train.lr_final;
  l.horizon = s->train.iterations;
  return l;
}

/* Evaluation of a loaded checkpoint: agents that keep their best-validated parameters (SL with
 * agent.sl_val_fraction) act with those; others are unchanged. Not for a run to be resumed. */
static inline void agent_use_best(agent *a) {
  if (a->vt->use_best) a->vt->use_best(a);
}

static inline void agent_free(agent *a) {
  if (a) a->vt->free(a);
}

#endif
