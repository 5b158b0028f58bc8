/* learner_select.c: see learner_select.h. */
#include "learner/learner_select.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_log.h"
#include "learner/learner_train.h"
#include "sim/sim_eval.h"

#define SELECTED "learner/selected"
#define SELECTED_PARAMS "learner/selected/params"
enum { PURPOSE_VALIDATION = 0x4a07 };

void learner_select_init(learner_select *v, const hsrl_settings *s, const struct learner_world *w,
                         const sim_env_config *env_cfg, int64_t n_policy_params, uint64_t seed) {
  memset(v, 0, sizeof *v);
  v->every = s->train.val_every;
  v->episodes = s->train.val_episodes;
  v->last = s->train.iterations;
  v->cfg = *env_cfg;
  v->cfg.seed = hsrl_rng_derive(seed, PURPOSE_VALIDATION);
  v->w = w;
  v->n_params = n_policy_params;
  v->kept_reward = v->last_reward = NAN;
  if (v->every > 0) v->kept = hsrl_calloc((size_t)n_policy_params, sizeof(float));
}

void learner_select_free(learner_select *v) {
  if (!v) return;
  hsrl_free(v->kept);
  memset(v, 0, sizeof *v);
}

int learner_select_due(const learner_select *v, int64_t it) {
  return v->every > 0 && (it % v->every == 0 || it == v->last);
}

hsrl_status learner_select_validate(learner_select *v, agent *a, int64_t it) {
  const learner_world *w = v->w;
  sim_eval_policy pol = learner_train_greedy_policy(a, "validation");
  sim_eval_result r;
  hsrl_status st = sim_eval_run_pool(&r, &v->cfg, &w->data, w->data.train_idx, w->data.n_train, &w->model,
                                     &pol, v->episodes, v->cfg.seed);
  if (st != HSRL_OK) return st;
  v->last_reward = r.reward_mean;
  if (r.reward_mean > v->kept_reward || v->kept_iteration == 0) {
    memcpy(v->kept, a->vt->policy_params(a), (size_t)v->n_params * sizeof(float));
    v->kept_reward = r.reward_mean;
    v->kept_iteration = it;
  }
  return HSRL_OK;
}

hsrl_status learner_select_write(const learner_select *v, io_h5 *f) {
  hsrl_status st = HSRL_OK;
  if (v->kept_iteration == 0) return HSRL_OK;
  const int64_t n = v->n_params;
  HSRL_TRY(io_h5_write_f32(f, SELECTED_PARAMS, v->kept, 1, &n, 0));
  HSRL_TRY(io_h5_attr_set_i64(f, SELECTED_PARAMS, "iteration", v->kept_iteration));
  HSRL_TRY(io_h5_attr_set_f64(f, SELECTED_PARAMS, "val_reward", v->kept_reward));
  HSRL_TRY(io_h5_attr_set_f64(f, SELECTED, "last_reward", v->last_reward));
done:
  return st;
}

hsrl_status learner_select_read(learner_select *v, io_h5 *f, const char *path) {
  hsrl_status st = HSRL_OK;
  if (!io_h5_exists(f, SELECTED_PARAMS)) return HSRL_OK;
  if (v->every <= 0) return HSRL_OK; /* a config without validation cannot resume one with it */
  HSRL_TRY(io_h5_read_f32(f, SELECTED_PARAMS, v->kept, v->n_params));
  HSRL_TRY(io_h5_attr_get_i64(f, SELECTED_PARAMS, "iteration", &v->kept_iteration));
  HSRL_TRY(io_h5_attr_get_f64(f, SELECTED_PARAMS, "val_reward", &v->kept_reward));
  HSRL_TRY(io_h5_attr_get_f64(f, SELECTED, "last_reward", &v->last_reward));
  if (v->kept_iteration < 1)
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, SELECTED_PARAMS, "iteration %lld is not a training update",
                  (long long)v->kept_iteration);
done:
  return st;
}

hsrl_status learner_select_apply(agent *a, io_h5 *f, const char *path) {
  hsrl_status st = HSRL_OK;
  if (!io_h5_exists(f, SELECTED_PARAMS)) return HSRL_OK;
  int64_t it = 0;
  double reward = NAN;
  HSRL_TRY(io_h5_read_f32(f, SELECTED_PARAMS, a->vt->policy_params(a), a->vt->n_policy_params(a)));
  HSRL_TRY(io_h5_attr_get_i64(f, SELECTED_PARAMS, "iteration", &it));
  HSRL_TRY(io_h5_attr_get_f64(f, SELECTED_PARAMS, "val_reward", &reward));
  HSRL_INFO("%s acts with its parameters of update %lld (best validation in the training environment: "
            "total reward %.4f)",
            a->vt->name, (long long)it, reward);
done:
  if (st != HSRL_OK) hsrl_err_context(st, "reading the selected policy of %s", path);
  return st;
}
