/* sim_env.h: the batched slate-recommendation environment (method.md section 4; the reference's
 * defects listed in reference-hsrl.md section 3 are not copied).
 *
 * B simulated users at once. A row holds one user's episode:
 *   start     a record drawn from a pool of record indices (a split of the dataset), in an order
 *             shuffled with hsrl_rng and reshuffled whenever the pool is used up; the row takes the
 *             record's user and logged history (H item ids, left-padded with 0); temper = temper0.
 *   step      p = click_model(user, history, slate) (B, K); y_k ~ Bernoulli(p_k), one uniform per
 *             shown item of an active row, row-major, from the env's click stream (no discarded
 *             draws); in float32:
 *               m = (sum_k (y_k ? 1 : -cost)) / K          (mean_with_cost, summed in slate order)
 *               m <- 1 - |m - sweet_value|                  (only with sweet_point, RL4RS)
 *               reward = m (mean_with_cost) or sum_k (y_k ? 1 : -cost) (sum_with_cost)
 *               temper <- temper - ((1 - m) * K + 1); the user leaves when temper < 1.
 *             The leave model always uses m, the per-slate mean: with sum_with_cost a sum
 *             above 1 would otherwise raise the temper and users would never leave. m <= 1, so
 *             every step costs at least 1 and an episode lasts at most floor(temper0 - 1) + 1
 *             steps (20 at temper0 = 20).
 *             history <- the last H of (history ++ the clicked slate items in slate order).
 *   finish    the episode's Total Reward (float32 sum of its rewards) and Depth (its steps) are
 *             recorded for EVERY finished episode (the step result and the running statistics),
 *             and the row gets a fresh user at once, unless cfg.max_episodes episodes have
 *             already started: then the row goes inactive (its slates are ignored).
 *   idle      an inactive row still holds a valid state: its last user's, or, for a row that never
 *             got a user (max_episodes < B), a placeholder, the user and history of the pool's
 *             first record. The click model is called on all B rows (a model may refuse user 0,
 *             as the synthetic world's does); the env draws no clicks for idle rows and ignores
 *             their probabilities, so they change nothing. Policies may act on them too.
 *
 * Transitions: after sim_env_step the result's next_users / next_histories are s' of the users who
 * acted (for a finished row, the old user's final state), while sim_env_users / sim_env_histories
 * already hold the state to act on next (the fresh user in a finished row). So a learner stores
 * (s = the state it acted on, a, r, done, s' = result.next_*) and acts next on sim_env_*.
 *
 * Randomness: two hsrl_rng streams keyed by (hsrl_rng_derive(seed, purpose), cfg.stream): user
 * draws and clicks. The same config, pool and click model give the same episodes.
 * Memory: everything is allocated by sim_env_init; reset and step allocate nothing. The dataset,
 * pool and click model are borrowed and must outlive the env. One env per thread. */
#ifndef SIM_ENV_H
#define SIM_ENV_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "sim/sim_click_model.h"
#include "sim/sim_data.h"

typedef enum sim_env_reward {
  SIM_ENV_REWARD_MEAN = 0, /* mean_with_cost */
  SIM_ENV_REWARD_SUM = 1,  /* sum_with_cost */
} sim_env_reward;

typedef struct sim_env_config {
  int64_t batch;                   /* B */
  int64_t slate_size, history_len; /* K, H */
  float temper;                    /* temper0 (20) */
  sim_env_reward reward;
  float cost;           /* penalty per shown item not clicked (0.1) */
  int sweet_point;      /* 1: m <- 1 - |m - sweet_value| */
  float sweet_value;    /* 0.9 */
  int64_t max_episodes; /* episodes started in all, then rows go idle (0: unlimited) */
  uint64_t seed, stream;
} sim_env_config;

/* The config from the [env] settings; K and H from the dataset, max_episodes 0. HSRL_E_USAGE
 * naming the field for combinations the env does not define (sweet_point with sum_with_cost). */
hsrl_status sim_env_config_make(sim_env_config *out, const hsrl_settings_env *s, int64_t slate_size,
                                int64_t history_len, uint64_t seed, uint64_t stream);

typedef struct sim_env sim_env;

/* Checks (bugs): sizes agree (model K, H and N with cfg and the dataset), pool indices in range,
 * n_pool >= 1. Calls sim_env_reset. */
sim_env *sim_env_init(const sim_env_config *cfg, const sim_dataset *data,
                      const int64_t *pool /* (n_pool) record indices */, int64_t n_pool,
                      const sim_click_model *model);
void sim_env_free(sim_env *e); /* NULL is a no-op */

/* Back to the state right after init: streams re-seeded, pool reshuffled, B fresh users (or
 * max_episodes if fewer), statistics cleared. */
void sim_env_reset(sim_env *e);

const sim_env_config *sim_env_get_config(const sim_env *e);

/* The state to act on. Pointers stay valid for the env's life; contents change with each step. */
const int32_t *sim_env_users(const sim_env *e);     /* (B) user ids */
const int32_t *sim_env_histories(const sim_env *e); /* (B, H) */
const uint8_t *sim_env_active(const sim_env *e);    /* (B) 1: the row holds a user */
const int32_t *sim_env_depths(const sim_env *e);    /* (B) steps taken in the current episode */
const float *sim_env_tempers(const sim_env *e);     /* (B) */
int64_t sim_env_n_active(const sim_env *e);         /* 0: every started episode has finished */

typedef struct sim_env_step_result {
  /* views into the env, valid until the next step or reset */
  const uint8_t *active;         /* (B) rows that took part (the others: zeros below) */
  const float *probs;            /* (B, K) click probabilities */
  const uint8_t *clicks;         /* (B, K) */
  const float *reward;           /* (B) */
  const uint8_t *done;           /* (B) the user left at this step */
  const int32_t *next_users;     /* (B) s' of the users who acted */
  const int32_t *next_histories; /* (B, H) */
  const float *episode_reward;   /* (B) Total Reward of the episode that ended (where done) */
  const int32_t *episode_depth;  /* (B) its Depth (where done) */
  int64_t n_active, n_done;
} sim_env_step_result;

/* One step of every active row: slates (B, K) item ids in 1..N (rows of inactive users are
 * ignored and may hold anything). Fills *out. Allocates nothing. */
void sim_env_step(sim_env *e, const int32_t *slates /* (B, K) */, sim_env_step_result *out);

/* Running totals since the last reset. Episode sums are over finished episodes. */
typedef struct sim_env_stats {
  int64_t n_started, n_episodes;  /* episodes started, finished */
  double sum_reward, sum_reward2; /* of the finished episodes' Total Reward */
  double sum_depth, sum_depth2;   /* and Depth */
  int64_t n_user_steps;           /* active rows stepped */
  int64_t n_clicks, n_shown;      /* over all user-steps */
} sim_env_stats;

const sim_env_stats *sim_env_get_stats(const sim_env *e);

#endif
