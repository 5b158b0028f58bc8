/* sim_eval.h: the evaluation protocol (method.md section 9) and `hsrl eval`.
 *
 * One evaluation of a policy for one seed: an environment (sim_env.h) over the TEST split's
 * records with max_episodes = E; the policy acts on every active user at each step until all E
 * episodes it started have finished (so long episodes are not under-counted, as they would be by
 * stopping at the E-th finished episode). Reported per seed:
 *   Total Reward and Depth: mean and sample standard deviation over the E episodes;
 *   click rate: clicks / shown items over all their steps;
 *   coverage: distinct items shown (in any slate of an active user) / N.
 * Over seeds: mean and sample standard deviation (n - 1) of each per-seed number. Seed s uses the
 * env seed hsrl_rng_derive(base_seed, s) and stream 0, the same for every policy, so policies are
 * compared on the same user draws (common random numbers).
 *
 * A policy is an act callback over the env's state (so agents and checkpoints can be evaluated
 * by the same code) and an optional reset called with the per-seed seed before each seed. */
#ifndef SIM_EVAL_H
#define SIM_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "common/hsrl_status.h"
#include "sim/sim_click_model.h"
#include "sim/sim_data.h"
#include "sim/sim_env.h"

#define SIM_EVAL_MAX_SEEDS 1000

typedef struct sim_eval_policy {
  char name[32];
  void *ctx;
  /* slates (b, K) for the users (b) and histories (b, H); rows with active[i] == 0 are ignored */
  void (*act)(void *ctx, int64_t b, const int32_t *user_ids, const int32_t *histories,
              const uint8_t *active, int32_t *slates);
  void (*reset)(void *ctx, uint64_t seed); /* may be NULL */
} sim_eval_policy;

typedef struct sim_eval_result {
  int64_t n_episodes, n_user_steps, n_env_steps;
  double reward_mean, reward_std; /* Total Reward over episodes */
  double depth_mean, depth_std;   /* Depth over episodes */
  double click_rate, coverage;
  double seconds;
} sim_eval_result;

typedef struct sim_eval_summary {
  char policy[32];
  int64_t n_seeds;
  sim_eval_result seed[SIM_EVAL_MAX_SEEDS]; /* per seed */
  sim_eval_result mean, std;                /* across seeds (std: sample, 0 for one seed) */
} sim_eval_summary;

/* One seed: cfg's batch, reward and temper as given; seed/stream/max_episodes are set here from
 * env_seed and episodes. Test-split users (data->test_idx); an empty test split is HSRL_E_INPUT. */
hsrl_status sim_eval_run(sim_eval_result *out, const sim_env_config *cfg, const sim_dataset *data,
                         const sim_click_model *model, const sim_eval_policy *policy,
                         int64_t episodes, uint64_t env_seed);

/* The same over the records pool (n_pool >= 1 record indices, e.g. the train split's: the
 * validation of learner_select.h). */
hsrl_status sim_eval_run_pool(sim_eval_result *out, const sim_env_config *cfg, const sim_dataset *data,
                              const int64_t *pool, int64_t n_pool, const sim_click_model *model,
                              const sim_eval_policy *policy, int64_t episodes, uint64_t env_seed);

/* n_seeds seeds (1..SIM_EVAL_MAX_SEEDS) and their mean/std. */
hsrl_status sim_eval_seeds(sim_eval_summary *out, const sim_env_config *cfg,
                           const sim_dataset *data, const sim_click_model *model,
                           const sim_eval_policy *policy, int64_t episodes, int64_t n_seeds,
                           uint64_t base_seed);

/* A text table (one row per policy: mean +- std across seeds) and a JSON document (every seed's
 * numbers too) of n summaries. f is a FILE. */
void sim_eval_print_table(FILE *f, const sim_eval_summary *s, int64_t n);
void sim_eval_write_json(FILE *f, const sim_eval_summary *s, int64_t n, const char *about_json);
/* The JSON string body of text (quotes, backslashes and control characters escaped) in buf, for
 * the about_json of eval commands; truncated to fit cap. Returns buf. */
const char *sim_eval_json_str(char *buf, size_t cap, const char *text);

/* `hsrl eval --data F.data.h5 (--sim F.sim-all.h5 | --world) --policies random,popular,greedy,
 * oracle --episodes E --seeds S [--batch B] [--json OUT] [--config CONFIG] [--set s.k=v]...`;
 * argv[0] is "eval". Returns the exit status (0, 2 usage/input, 1 internal). */
int sim_eval_command(int argc, char **argv);

#endif
