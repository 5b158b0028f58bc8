/* sim_env.c: the batched environment (contract in sim_env.h; method.md section 4).
 *
 * Every reward and temper operation is float32, in the order the reference evaluates it, so the
 * boundary cases of the leave model match (reference-hsrl.md section 3.5: with 9 clicks of 9 and
 * the sweet point, temper is just below 1 after 10 steps in float32, exactly 1 in real numbers).
 * The build disables FMA contraction (-ffp-contract=off), which these comparisons rely on. */
#include "sim/sim_env.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"

/* hsrl_rng_derive purposes of the env's two streams */
#define ENV_PURPOSE_USERS 0x656e762d75736572ull  /* "env-user" */
#define ENV_PURPOSE_CLICKS 0x656e762d636c6963ull /* "env-clic" */

struct sim_env {
  sim_env_config cfg;
  const sim_dataset *data;
  const int64_t *pool; /* (n_pool) borrowed */
  int64_t n_pool;
  sim_click_model model;
  hsrl_rng rng_users, rng_clicks;
  int64_t *order; /* (n_pool) positions into pool, shuffled */
  int64_t next;   /* next position of order to use */

  /* live state */
  int32_t *users;   /* (B) */
  int32_t *hist;    /* (B, H) */
  uint8_t *active;  /* (B) */
  float *temper;    /* (B) */
  float *ep_reward; /* (B) running Total Reward */
  int32_t *depth;   /* (B) */
  int64_t n_active;

  /* step outputs */
  int32_t *slates;     /* (B, K) what the model saw (inactive rows: a valid filler slate) */
  float *probs;        /* (B, K) */
  uint8_t *clicks;     /* (B, K) */
  float *reward;       /* (B) */
  uint8_t *done;       /* (B) */
  uint8_t *stepped;    /* (B) active at the step */
  int32_t *next_users; /* (B) */
  int32_t *next_hist;  /* (B, H) */
  float *fin_reward;   /* (B) */
  int32_t *fin_depth;  /* (B) */

  sim_env_stats stats;
};

hsrl_status sim_env_config_make(sim_env_config *out, const hsrl_settings_env *s, int64_t slate_size,
                                int64_t history_len, uint64_t seed, uint64_t stream) {
  memset(out, 0, sizeof *out);
  if (s->batch < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "env.batch", "must be >= 1, not %lld",
                    (long long)s->batch);
  if (!(s->temper > 0.0))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "env.temper", "must be > 0, not %g", s->temper);
  if (!(s->cost >= 0.0))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "env.cost", "must be >= 0, not %g", s->cost);
  int sum = !strcmp(s->reward, "sum_with_cost");
  if (!sum && strcmp(s->reward, "mean_with_cost"))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "env.reward", "unknown reward '%s'", s->reward);
  if (sum && s->sweet_point)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "env.sweet_point",
                    "the sweet-point transform is defined for env.reward = mean_with_cost only");
  if (slate_size < 1 || history_len < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "data.slate_size",
                    "slate size %lld and history length %lld must be >= 1", (long long)slate_size,
                    (long long)history_len);
  out->batch = s->batch;
  out->slate_size = slate_size;
  out->history_len = history_len;
  out->temper = (float)s->temper;
  out->reward = sum ? SIM_ENV_REWARD_SUM : SIM_ENV_REWARD_MEAN;
  out->cost = (float)s->cost;
  out->sweet_point = s->sweet_point ? 1 : 0;
  out->sweet_value = (float)s->sweet_value;
  out->max_episodes = 0;
  out->seed = seed;
  out->stream = stream;
  return HSRL_OK;
}

sim_env *sim_env_init(const sim_env_config *cfg, const sim_dataset *data, const int64_t *pool,
                      int64_t n_pool, const sim_click_model *model) {
  HSRL_CHECK(cfg != NULL && data != NULL && model != NULL && model->probs != NULL);
  const int64_t B = cfg->batch, K = cfg->slate_size, H = cfg->history_len;
  HSRL_CHECKF(B >= 1 && K >= 1 && H >= 1, "env: B %lld, K %lld, H %lld", (long long)B, (long long)K,
              (long long)H);
  HSRL_CHECKF(model->slate_size == K && model->history_len == H,
              "env: click model takes K %lld, H %lld; env has K %lld, H %lld",
              (long long)model->slate_size, (long long)model->history_len, (long long)K,
              (long long)H);
  HSRL_CHECKF(data->history_len == H, "env: dataset histories have %lld items, env H is %lld",
              (long long)data->history_len, (long long)H);
  HSRL_CHECKF(model->n_items == data->n_items, "env: click model has %lld items, dataset %lld",
              (long long)model->n_items, (long long)data->n_items);
  HSRL_CHECKF(n_pool >= 1 && pool != NULL, "env: empty user pool");
  for (int64_t i = 0; i < n_pool; i++)
    HSRL_CHECKF(pool[i] >= 0 && pool[i] < data->n_records, "env: pool entry %lld = %lld",
                (long long)i, (long long)pool[i]);
  HSRL_CHECK(cfg->temper > 0.0f && cfg->cost >= 0.0f && cfg->max_episodes >= 0);
  HSRL_CHECK(!(cfg->sweet_point && cfg->reward == SIM_ENV_REWARD_SUM));

  sim_env *e = hsrl_calloc(1, sizeof *e);
  e->cfg = *cfg;
  e->data = data;
  e->pool = pool;
  e->n_pool = n_pool;
  e->model = *model;
  e->order = hsrl_malloc((size_t)n_pool * sizeof(int64_t));
  e->users = hsrl_calloc((size_t)B, sizeof(int32_t));
  e->hist = hsrl_calloc((size_t)(B * H), sizeof(int32_t));
  e->active = hsrl_calloc((size_t)B, 1);
  e->temper = hsrl_calloc((size_t)B, sizeof(float));
  e->ep_reward = hsrl_calloc((size_t)B, sizeof(float));
  e->depth = hsrl_calloc((size_t)B, sizeof(int32_t));
  e->slates = hsrl_calloc((size_t)(B * K), sizeof(int32_t));
  e->probs = hsrl_calloc((size_t)(B * K), sizeof(float));
  e->clicks = hsrl_calloc((size_t)(B * K), 1);
  e->reward = hsrl_calloc((size_t)B, sizeof(float));
  e->done = hsrl_calloc((size_t)B, 1);
  e->stepped = hsrl_calloc((size_t)B, 1);
  e->next_users = hsrl_calloc((size_t)B, sizeof(int32_t));
  e->next_hist = hsrl_calloc((size_t)(B * H), sizeof(int32_t));
  e->fin_reward = hsrl_calloc((size_t)B, sizeof(float));
  e->fin_depth = hsrl_calloc((size_t)B, sizeof(int32_t));
  sim_env_reset(e);
  return e;
}

void sim_env_free(sim_env *e) {
  if (!e) return;
  hsrl_free(e->order);
  hsrl_free(e->users);
  hsrl_free(e->hist);
  hsrl_free(e->active);
  hsrl_free(e->temper);
  hsrl_free(e->ep_reward);
  hsrl_free(e->depth);
  hsrl_free(e->slates);
  hsrl_free(e->probs);
  hsrl_free(e->clicks);
  hsrl_free(e->reward);
  hsrl_free(e->done);
  hsrl_free(e->stepped);
  hsrl_free(e->next_users);
  hsrl_free(e->next_hist);
  hsrl_free(e->fin_reward);
  hsrl_free(e->fin_depth);
  hsrl_free(e);
}

/* Starts an episode in row i if the episode budget allows; else the row goes idle. */
static void env_start_user(sim_env *e, int64_t i) {
  const int64_t H = e->cfg.history_len;
  if (e->cfg.max_episodes > 0 && e->stats.n_started >= e->cfg.max_episodes) {
    if (e->active[i]) e->n_active--;
    e->active[i] = 0;
    return;
  }
  if (e->next >= e->n_pool) {
    hsrl_rng_permutation(&e->rng_users, e->order, e->n_pool);
    e->next = 0;
  }
  int64_t r = e->pool[e->order[e->next++]];
  e->users[i] = e->data->rec_user[r];
  memcpy(e->hist + i * H, e->data->rec_history + r * H, (size_t)H * sizeof(int32_t));
  e->temper[i] = e->cfg.temper;
  e->ep_reward[i] = 0.0f;
  e->depth[i] = 0;
  if (!e->active[i]) e->n_active++;
  e->active[i] = 1;
  e->stats.n_started++;
}

void sim_env_reset(sim_env *e) {
  const int64_t B = e->cfg.batch, H = e->cfg.history_len;
  hsrl_rng_init(&e->rng_users, hsrl_rng_derive(e->cfg.seed, ENV_PURPOSE_USERS), e->cfg.stream);
  hsrl_rng_init(&e->rng_clicks, hsrl_rng_derive(e->cfg.seed, ENV_PURPOSE_CLICKS), e->cfg.stream);
  e->next = e->n_pool; /* the first start shuffles */
  memset(&e->stats, 0, sizeof e->stats);
  memset(e->active, 0, (size_t)B);
  e->n_active = 0;
  /* Every row first gets the placeholder state (the pool's first record; no random draw, so the
   * episodes do not depend on it): rows left without a user when max_episodes < B keep it, and
   * the click model, which runs on all B rows, never sees user 0. */
  const int64_t r0 = e->pool[0];
  for (int64_t i = 0; i < B; i++) {
    e->users[i] = e->data->rec_user[r0];
    memcpy(e->hist + i * H, e->data->rec_history + r0 * H, (size_t)H * sizeof(int32_t));
    e->temper[i] = 0.0f;
    e->ep_reward[i] = 0.0f;
    e->depth[i] = 0;
  }
  for (int64_t i = 0; i < B; i++) env_start_user(e, i);
}

const sim_env_config *sim_env_get_config(const sim_env *e) { return &e->cfg; }
const int32_t *sim_env_users(const sim_env *e) { return e->users; }
const int32_t *sim_env_histories(const sim_env *e) { return e->hist; }
const uint8_t *sim_env_active(const sim_env *e) { return e->active; }
const int32_t *sim_env_depths(const sim_env *e) { return e->depth; }
const float *sim_env_tempers(const sim_env *e) { return e->temper; }
int64_t sim_env_n_active(const sim_env *e) { return e->n_active; }
const sim_env_stats *sim_env_get_stats(const sim_env *e) { return &e->stats; }

/* history (H) <- the last H of (history ++ the clicked items of slate (K) in slate order) */
static void env_update_history(int32_t *out, const int32_t *hist, const int32_t *slate,
                               const uint8_t *clicks, int64_t H, int64_t K) {
  int64_t n_c = 0;
  for (int64_t k = 0; k < K; k++) n_c += clicks[k] != 0;
  int64_t keep = n_c < H ? H - n_c : 0; /* old entries that stay: the last `keep` */
  memmove(out, hist + (H - keep), (size_t)keep * sizeof(int32_t));
  int64_t skip = n_c - (H - keep); /* clicked items pushed out by later clicks */
  int64_t pos = keep;
  for (int64_t k = 0; k < K; k++) {
    if (!clicks[k]) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    out[pos++] = slate[k];
  }
  HSRL_CHECK(pos == H);
}

void sim_env_step(sim_env *e, const int32_t *slates, sim_env_step_result *out) {
  const int64_t B = e->cfg.batch, K = e->cfg.slate_size, H = e->cfg.history_len;
  const int64_t N = e->model.n_items;
  const float Kf = (float)K, cost = e->cfg.cost;

  /* what the model sees: the policy's slates for active rows, a valid filler for idle ones */
  for (int64_t i = 0; i < B; i++) {
    int32_t *s = e->slates + i * K;
    if (e->active[i]) {
      for (int64_t k = 0; k < K; k++) {
        int32_t id = slates[i * K + k];
        HSRL_CHECKF(id >= 1 && id <= N,
                    "env: slate row %lld position %lld: item %d not in [1, %lld]", (long long)i,
                    (long long)k, id, (long long)N);
        s[k] = id;
      }
    } else {
      for (int64_t k = 0; k < K; k++) s[k] = (int32_t)(k % N + 1);
    }
  }
  for (int64_t i = 0; i < B; i++) /* idle rows included (sim_env.h "idle") */
    HSRL_CHECKF(e->users[i] >= 1, "env: row %lld (active %d) holds user id %d", (long long)i,
                (int)e->active[i], (int)e->users[i]);
  e->model.probs(e->model.ctx, B, e->users, e->hist, e->slates, e->probs);

  int64_t n_active = 0, n_done = 0;
  for (int64_t i = 0; i < B; i++) {
    uint8_t *y = e->clicks + i * K;
    const float *p = e->probs + i * K;
    e->stepped[i] = e->active[i];
    e->done[i] = 0;
    e->fin_reward[i] = 0.0f;
    e->fin_depth[i] = 0;
    e->next_users[i] = e->users[i];
    if (!e->active[i]) {
      memset(y, 0, (size_t)K);
      e->reward[i] = 0.0f;
      memcpy(e->next_hist + i * H, e->hist + i * H, (size_t)H * sizeof(int32_t));
      continue;
    }
    n_active++;
    float sum = 0.0f;
    int64_t n_c = 0;
    for (int64_t k = 0; k < K; k++) {
      HSRL_CHECKF(p[k] >= 0.0f && p[k] <= 1.0f, "env: click probability %g at row %lld pos %lld",
                  (double)p[k], (long long)i, (long long)k);
      y[k] = (uint8_t)hsrl_rng_bernoulli(&e->rng_clicks, p[k]);
      sum += y[k] ? 1.0f : -cost;
      n_c += y[k];
    }
    float m = sum / Kf;
    if (e->cfg.sweet_point) m = 1.0f - fabsf(m - e->cfg.sweet_value);
    float r = e->cfg.reward == SIM_ENV_REWARD_SUM ? sum : m;
    e->reward[i] = r;
    e->ep_reward[i] += r;
    e->temper[i] = e->temper[i] - ((1.0f - m) * Kf + 1.0f);
    e->depth[i]++;
    env_update_history(e->next_hist + i * H, e->hist + i * H, e->slates + i * K, y, H, K);
    memcpy(e->hist + i * H, e->next_hist + i * H, (size_t)H * sizeof(int32_t));
    e->stats.n_user_steps++;
    e->stats.n_clicks += n_c;
    e->stats.n_shown += K;
    if (e->temper[i] < 1.0f) {
      double tr = (double)e->ep_reward[i], dp = (double)e->depth[i];
      e->done[i] = 1;
      e->fin_reward[i] = e->ep_reward[i];
      e->fin_depth[i] = e->depth[i];
      e->stats.n_episodes++;
      e->stats.sum_reward += tr;
      e->stats.sum_reward2 += tr * tr;
      e->stats.sum_depth += dp;
      e->stats.sum_depth2 += dp * dp;
      n_done++;
      env_start_user(e, i);
    }
  }
  out->active = e->stepped;
  out->probs = e->probs;
  out->clicks = e->clicks;
  out->reward = e->reward;
  out->done = e->done;
  out->next_users = e->next_users;
  out->next_histories = e->next_hist;
  out->episode_reward = e->fin_reward;
  out->episode_depth = e->fin_depth;
  out->n_active = n_active;
  out->n_done = n_done;
}
