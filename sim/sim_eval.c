/* sim_eval.c: the evaluation protocol of method.md section 9 (contract in sim_eval.h). */
#include "sim/sim_eval.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_progress.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"

hsrl_status sim_eval_run(sim_eval_result *out, const sim_env_config *cfg, const sim_dataset *data,
                         const sim_click_model *model, const sim_eval_policy *policy,
                         int64_t episodes, uint64_t env_seed) {
  if (data->n_test < 1) {
    memset(out, 0, sizeof *out);
    return hsrl_err(HSRL_E_INPUT, data->name, 0, "split/test", "the test split is empty");
  }
  return sim_eval_run_pool(out, cfg, data, data->test_idx, data->n_test, model, policy, episodes, env_seed);
}

hsrl_status sim_eval_run_pool(sim_eval_result *out, const sim_env_config *cfg, const sim_dataset *data,
                              const int64_t *pool, int64_t n_pool, const sim_click_model *model,
                              const sim_eval_policy *policy, int64_t episodes, uint64_t env_seed) {
  memset(out, 0, sizeof *out);
  HSRL_CHECK(episodes >= 1 && policy != NULL && policy->act != NULL && pool != NULL && n_pool >= 1);
  sim_env_config c = *cfg;
  c.max_episodes = episodes;
  c.seed = env_seed;
  c.stream = 0;
  const int64_t B = c.batch, K = c.slate_size, N = data->n_items;
  double t0 = hsrl_time_now();
  sim_env *env = sim_env_init(&c, data, pool, n_pool, model);
  int32_t *slates = hsrl_calloc((size_t)(B * K), sizeof(int32_t));
  uint8_t *seen = hsrl_calloc((size_t)(N + 1), 1);
  int64_t n_seen = 0;
  if (policy->reset) policy->reset(policy->ctx, env_seed);
  sim_env_step_result r;
  while (sim_env_n_active(env) > 0) {
    const uint8_t *active = sim_env_active(env);
    policy->act(policy->ctx, B, sim_env_users(env), sim_env_histories(env), active, slates);
    for (int64_t i = 0; i < B; i++) {
      if (!active[i]) continue;
      for (int64_t k = 0; k < K; k++) {
        int32_t id = slates[i * K + k];
        if (id >= 1 && id <= N && !seen[id]) seen[id] = 1, n_seen++;
      }
    }
    sim_env_step(env, slates, &r);
    out->n_env_steps++;
  }
  const sim_env_stats *st = sim_env_get_stats(env);
  HSRL_CHECKF(st->n_episodes == episodes && st->n_started == episodes,
              "eval: %lld episodes finished, %lld started, %lld wanted", (long long)st->n_episodes,
              (long long)st->n_started, (long long)episodes);
  double n = (double)st->n_episodes;
  out->n_episodes = st->n_episodes;
  out->n_user_steps = st->n_user_steps;
  out->reward_mean = st->sum_reward / n;
  out->depth_mean = st->sum_depth / n;
  if (st->n_episodes > 1) {
    double vr = (st->sum_reward2 - st->sum_reward * out->reward_mean) / (n - 1.0);
    double vd = (st->sum_depth2 - st->sum_depth * out->depth_mean) / (n - 1.0);
    out->reward_std = vr > 0.0 ? sqrt(vr) : 0.0;
    out->depth_std = vd > 0.0 ? sqrt(vd) : 0.0;
  }
  out->click_rate = st->n_shown > 0 ? (double)st->n_clicks / (double)st->n_shown : 0.0;
  out->coverage = (double)n_seen / (double)N;
  out->seconds = hsrl_time_now() - t0;
  hsrl_free(slates);
  hsrl_free(seen);
  sim_env_free(env);
  return HSRL_OK;
}

/* mean and sample std of the field at `offset` (a double) of results (n) */
static void eval_mean_std(const sim_eval_result *res, int64_t n, size_t offset, double *mean,
                          double *std) {
  double s = 0.0, s2 = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double v;
    memcpy(&v, (const char *)(res + i) + offset, sizeof v);
    s += v;
  }
  double m = s / (double)n;
  for (int64_t i = 0; i < n; i++) {
    double v;
    memcpy(&v, (const char *)(res + i) + offset, sizeof v);
    s2 += (v - m) * (v - m);
  }
  *mean = m;
  *std = n > 1 ? sqrt(s2 / (double)(n - 1)) : 0.0;
}

hsrl_status sim_eval_seeds(sim_eval_summary *out, const sim_env_config *cfg,
                           const sim_dataset *data, const sim_click_model *model,
                           const sim_eval_policy *policy, int64_t episodes, int64_t n_seeds,
                           uint64_t base_seed) {
  HSRL_CHECK(n_seeds >= 1 && n_seeds <= SIM_EVAL_MAX_SEEDS);
  memset(out, 0, sizeof *out);
  snprintf(out->policy, sizeof out->policy, "%s", policy->name);
  out->n_seeds = n_seeds;
  hsrl_progress prog;
  char label[48];
  snprintf(label, sizeof label, "eval %s", policy->name);
  hsrl_progress_init(&prog, label, n_seeds);
  for (int64_t s = 0; s < n_seeds; s++) {
    hsrl_status st = sim_eval_run(&out->seed[s], cfg, data, model, policy, episodes,
                                  hsrl_rng_derive(base_seed, (uint64_t)s));
    if (st != HSRL_OK) return st;
    char note[96];
    snprintf(note, sizeof note, "seed %lld: total reward %.3f, depth %.3f", (long long)s,
             out->seed[s].reward_mean, out->seed[s].depth_mean);
    hsrl_progress_update(&prog, s + 1, note);
  }
  hsrl_progress_finish(&prog, NULL);
  static const size_t fields[] = {
      offsetof(sim_eval_result, reward_mean), offsetof(sim_eval_result, reward_std),
      offsetof(sim_eval_result, depth_mean),  offsetof(sim_eval_result, depth_std),
      offsetof(sim_eval_result, click_rate),  offsetof(sim_eval_result, coverage),
      offsetof(sim_eval_result, seconds)};
  for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++) {
    double m, sd;
    eval_mean_std(out->seed, n_seeds, fields[j], &m, &sd);
    memcpy((char *)&out->mean + fields[j], &m, sizeof m);
    memcpy((char *)&out->std + fields[j], &sd, sizeof sd);
  }
  for (int64_t s = 0; s < n_seeds; s++) { /* counts: the per-seed mean, rounded */
    out->mean.n_episodes += out->seed[s].n_episodes;
    out->mean.n_user_steps += out->seed[s].n_user_steps;
    out->mean.n_env_steps += out->seed[s].n_env_steps;
  }
  out->mean.n_episodes = (out->mean.n_episodes + n_seeds / 2) / n_seeds;
  out->mean.n_user_steps = (out->mean.n_user_steps + n_seeds / 2) / n_seeds;
  out->mean.n_env_steps = (out->mean.n_env_steps + n_seeds / 2) / n_seeds;
  return HSRL_OK;
}

void sim_eval_print_table(FILE *f, const sim_eval_summary *s, int64_t n) {
  int w = 10; /* the policy column: as wide as the longest name */
  for (int64_t i = 0; i < n; i++)
    if ((int)strlen(s[i].policy) > w) w = (int)strlen(s[i].policy);
  fprintf(f, "%-*s %6s %9s  %-19s %-19s %-17s %-17s\n", w, "policy", "seeds", "episodes",
          "total reward", "depth", "click rate", "coverage");
  for (int64_t i = 0; i < n; i++) {
    const sim_eval_result *m = &s[i].mean, *d = &s[i].std;
    fprintf(
        f, "%-*s %6lld %9lld  %8.3f +- %-7.3f %8.3f +- %-7.3f %7.4f +- %-6.4f %7.4f +- %-6.4f\n", w,
        s[i].policy, (long long)s[i].n_seeds,
        (long long)(s[i].n_seeds > 0 ? s[i].seed[0].n_episodes : 0), m->reward_mean, d->reward_mean,
        m->depth_mean, d->depth_mean, m->click_rate, d->click_rate, m->coverage, d->coverage);
  }
  fprintf(f,
          "(mean +- std across seeds of the per-seed means; per-seed episode std in the JSON)\n");
}

static void eval_json_result(FILE *f, const sim_eval_result *r) {
  fprintf(f,
          "{\"episodes\": %lld, \"user_steps\": %lld, \"env_steps\": %lld, "
          "\"total_reward_mean\": %.6f, \"total_reward_std\": %.6f, \"depth_mean\": %.6f, "
          "\"depth_std\": %.6f, \"click_rate\": %.6f, \"coverage\": %.6f, \"seconds\": %.3f, "
          "\"user_steps_per_s\": %.1f}",
          (long long)r->n_episodes, (long long)r->n_user_steps, (long long)r->n_env_steps,
          r->reward_mean, r->reward_std, r->depth_mean, r->depth_std, r->click_rate, r->coverage,
          r->seconds, r->seconds > 0.0 ? (double)r->n_user_steps / r->seconds : 0.0);
}

void sim_eval_write_json(FILE *f, const sim_eval_summary *s, int64_t n, const char *about_json) {
  fprintf(f, "{\n  \"about\": %s,\n  \"policies\": [\n", about_json ? about_json : "{}");
  for (int64_t i = 0; i < n; i++) {
    fprintf(f, "    {\"policy\": \"%s\", \"seeds\": %lld,\n     \"mean\": ", s[i].policy,
            (long long)s[i].n_seeds);
    eval_json_result(f, &s[i].mean);
    fprintf(f, ",\n     \"std\": ");
    eval_json_result(f, &s[i].std);
    fprintf(f, ",\n     \"per_seed\": [");
    for (int64_t j = 0; j < s[i].n_seeds; j++) {
      fprintf(f, "%s\n       ", j ? "," : "");
      eval_json_result(f, &s[i].seed[j]);
    }
    fprintf(f, "]}%s\n", i + 1 < n ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
}

const char *sim_eval_json_str(char *buf, size_t cap, const char *text) {
  size_t o = 0;
  for (const char *c = text; *c && o + 7 < cap; c++) {
    unsigned char u = (unsigned char)*c;
    if (u == '"' || u == '\\')
      buf[o++] = '\\', buf[o++] = (char)u;
    else if (u < 0x20)
      o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", u);
    else
      buf[o++] = (char)u;
  }
  buf[o] = '\0';
  return buf;
}
