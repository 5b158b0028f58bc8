/* learner_select.h: choosing the policy a run hands to evaluation by validation in the training
 * environment (train.val_every, train.val_episodes).
 *
 * Every train.val_every updates, and after the last one, the learner runs its agent's greedy
 * policy for train.val_episodes finished episodes in the click model it learns in (run.sim_train,
 * or the synthetic world with env.model = world), starting users from the TRAIN split's records,
 * always with the same users and click draws (one env seed derived from the training seed:
 * common random numbers, so two validations differ by the policy only). It keeps a copy of the
 * policy parameters (agent.h policy_params: HSRL's actor) of the highest mean Total Reward.
 * Checkpoints carry the copy, and learner_train_load_policy (hsrl eval, hsrl run, curve.sh) acts
 * with it: a run's result is then the best policy the training environment has seen, not
 * whichever parameters the last update left (the reference's HSRL peaks and collapses;
 * docs/quality.md). Nothing here reads the evaluation simulator or the test split.
 *
 * The validation has its own environment and acts greedily (no random draws, no dropout), so it
 * takes nothing from the training streams: a run trains bit-identically with and without it
 * (tests/test_learner_select.c), and only what the checkpoints hand to evaluation changes.
 *
 * Checkpoint group learner/selected: dataset params (the kept copy, n_policy_params floats) with
 * attributes iteration (the update it was taken after) and val_reward (its validation mean), and
 * attribute last_reward (the latest validation's mean, for metrics.tsv after a resume). Absent
 * when no validation has run. */
#ifndef LEARNER_SELECT_H
#define LEARNER_SELECT_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "common/io/io_h5.h"
#include "learner/agents/agent.h"
#include "sim/sim_env.h"

struct learner_world;

typedef struct learner_select {
  int64_t every, episodes, last; /* train.val_every (0: off), val_episodes, train.iterations */
  sim_env_config cfg;            /* the training env's, with its own seed */
  const struct learner_world *w;
  int64_t n_params;
  float *kept;            /* (n_params) when validating, else NULL */
  int64_t kept_iteration; /* 0: nothing kept */
  double kept_reward, last_reward; /* NaN before the first validation */
} learner_select;

/* env_cfg: the training environment's config (batch, reward, temper); seed: the training seed.
 * Allocates nothing when s->train.val_every is 0. */
void learner_select_init(learner_select *v, const hsrl_settings *s, const struct learner_world *w,
                         const sim_env_config *env_cfg, int64_t n_policy_params, uint64_t seed);
void learner_select_free(learner_select *v);

/* 1 when the update just finished (iteration it) is followed by a validation. */
int learner_select_due(const learner_select *v, int64_t it);

/* Validates a's greedy policy (after update it); keeps its parameters when they beat the kept
 * ones (strictly: an equal later policy does not replace an earlier one). */
hsrl_status learner_select_validate(learner_select *v, agent *a, int64_t it);

hsrl_status learner_select_write(const learner_select *v, io_h5 *f);
hsrl_status learner_select_read(learner_select *v, io_h5 *f, const char *path);

/* Evaluation: when the checkpoint f (at path) holds learner/selected, a acts with those
 * parameters from now on (logged); otherwise a is unchanged. A copy whose size is not a's
 * policy's is an error naming the file. */
hsrl_status learner_select_apply(agent *a, io_h5 *f, const char *path);

#endif
