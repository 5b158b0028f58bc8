/* test_sim_env.c: the environment's invariants (method.md section 4), the reference policies and
 * the evaluation protocol (section 9).
 *
 * Forced clicks: a click model with p = 1 at the first c slate positions and p = 0 elsewhere makes
 * every step click exactly c items, so Depth and Total Reward have closed forms: the float32
 * table of reference-hsrl.md section 3.5 for K = 9 (with and without the RL4RS sweet point) and
 * the formula for K = 10 computed here in double. Also: episodes never exceed 20 steps, every
 * finished episode is recorded (also when many end at the same step), (s, a, r, done, s') is
 * consistent across a user's replacement, same seed -> same episodes, no allocation per step,
 * greedy's two scoring paths agree with a brute-force top K, the myopic oracle beats random on a
 * small synthetic world, fewer episodes than rows never hands the world's click model user 0 (and
 * the idle rows change nothing), and `hsrl eval` runs end to end. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "sim/sim_click_adapters.h"
#include "sim/sim_click_model.h"
#include "sim/sim_data.h"
#include "sim/sim_env.h"
#include "sim/sim_eval.h"
#include "sim/sim_policy_simple.h"
#include "sim/sim_reader_movielens.h"
#include "sim/sim_synth.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

/* ---------------------------------------------------------------- fixtures */

/* A dataset of R records, user r % U + 1, history of record r: items (r + j) % N + 1 at its last
 * r % (H + 1) positions (so some histories are empty), every record in both splits. */
static void make_dataset(sim_dataset *d, int64_t N, int64_t U, int64_t R, int64_t K, int64_t H) {
  sim_dataset_alloc(d, N, 2, U, 3, R, K, H);
  snprintf(d->name, sizeof d->name, "test");
  for (int64_t i = 0; i <= N; i++) d->item_features[i * 2] = (float)i / (float)N;
  for (int64_t u = 1; u <= U; u++) d->user_features[u * 3 + u % 3] = 1.0f;
  for (int64_t r = 0; r < R; r++) {
    d->rec_user[r] = (int32_t)(r % U + 1);
    int64_t len = r % (H + 1);
    for (int64_t j = 0; j < len; j++)
      d->rec_history[r * H + H - len + j] = (int32_t)((r + j) % N + 1);
    for (int64_t k = 0; k < K; k++) {
      d->rec_slate[r * K + k] = (int32_t)((r * 7 + k * 3) % N + 1);
      d->rec_clicks[r * K + k] = (uint8_t)((r + k) % 3 == 0);
    }
    d->rec_time[r] = r;
    d->train_idx[r] = r;
    d->test_idx[r] = r;
  }
  d->n_train = R;
  d->n_test = R;
}

typedef struct forced_model {
  int64_t c, K;
} forced_model;

static void forced_probs(void *ctx, int64_t b, const int32_t *user_ids, const int32_t *histories,
                         const int32_t *slates, float *out_p) {
  const forced_model *m = ctx;
  (void)user_ids, (void)histories, (void)slates;
  for (int64_t i = 0; i < b; i++)
    for (int64_t k = 0; k < m->K; k++) out_p[i * m->K + k] = k < m->c ? 1.0f : 0.0f;
}

/* p(user, item) from a hash: position- and neighbour-independent, in (0.02, 0.98) */
static float hash_prob(int32_t user, int32_t item) {
  uint32_t ctr[4] = {(uint32_t)user, (uint32_t)item, 0, 0}, key[2] = {17, 29}, out[4];
  hsrl_philox4x32(out, ctr, key);
  return 0.02f + 0.96f * (float)(out[0] >> 8) / 16777216.0f;
}

typedef struct hash_model {
  int64_t K;
} hash_model;

static void hash_probs(void *ctx, int64_t b, const int32_t *user_ids, const int32_t *histories,
                       const int32_t *slates, float *out_p) {
  const hash_model *m = ctx;
  (void)histories;
  for (int64_t i = 0; i < b; i++)
    for (int64_t k = 0; k < m->K; k++)
      out_p[i * m->K + k] = hash_prob(user_ids[i], slates[i * m->K + k]);
}

static void hash_scores(void *ctx, int64_t b, const int32_t *user_ids, const int32_t *histories,
                        const int32_t *items, int64_t n, float *out) {
  (void)ctx, (void)histories;
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = 0; j < n; j++) out[i * n + j] = hash_prob(user_ids[i], items[j]);
}

static sim_click_model model_of(void *ctx, sim_click_model_probs_fn probs, int64_t N, int64_t K,
                                int64_t H) {
  sim_click_model m;
  memset(&m, 0, sizeof m);
  m.ctx = ctx;
  m.probs = probs;
  m.n_items = N;
  m.slate_size = K;
  m.history_len = H;
  return m;
}

static sim_env_config env_config(int64_t B, int64_t K, int64_t H, int sweet, uint64_t seed) {
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  s.env.batch = B;
  s.env.sweet_point = sweet != 0;
  sim_env_config c;
  hsrl_status st = sim_env_config_make(&c, &s.env, K, H, seed, 0);
  (void)st;
  return c;
}

static void fill_slates(int32_t *slates, int64_t B, int64_t K, int64_t N, int64_t step) {
  for (int64_t i = 0; i < B; i++)
    for (int64_t k = 0; k < K; k++) slates[i * K + k] = (int32_t)((i * 5 + k + step * 3) % N + 1);
}

/* Runs env until `want` episodes have finished; writes their depth/total in finish order.
 * Returns the number of steps. */
static int64_t run_episodes(sim_env *e, int64_t want, int32_t *depth, float *total, int64_t N) {
  const sim_env_config *c = sim_env_get_config(e);
  int32_t *slates = hsrl_malloc((size_t)(c->batch * c->slate_size) * sizeof(int32_t));
  int64_t got = 0, steps = 0;
  sim_env_step_result r;
  while (got < want && steps < 10000) {
    fill_slates(slates, c->batch, c->slate_size, N, steps);
    sim_env_step(e, slates, &r);
    steps++;
    for (int64_t i = 0; i < c->batch && got < want; i++)
      if (r.done[i]) depth[got] = r.episode_depth[i], total[got] = r.episode_reward[i], got++;
  }
  hsrl_free(slates);
  return steps;
}

/* ---------------------------------------------------------------- forced clicks */

/* reference-hsrl.md section 3.5 (K = 9, float32): per c, the reward with and without the sweet
 * point and each one's Depth and Total Reward. */
static void test_forced_clicks_k9_table(void) {
  static const double sweet_r[10] = {0.0,    0.1222, 0.2444, 0.3667, 0.4889,
                                     0.6111, 0.7333, 0.8556, 0.9778, 0.9};
  static const int sweet_depth[10] = {2, 3, 3, 3, 4, 5, 6, 9, 16, 10};
  static const double sweet_total[10] = {0.0,  0.37, 0.73, 1.10,   1.96,
                                         3.06, 4.40, 7.70, 15.644, 9.0};
  static const double plain_r[10] = {-0.1,   0.0222, 0.1444, 0.2667, 0.3889,
                                     0.5111, 0.6333, 0.7556, 0.8778, 1.0};
  static const int plain_depth[10] = {2, 2, 3, 3, 3, 4, 5, 6, 10, 20};
  static const double plain_total[10] = {-0.2, 0.04, 0.43, 0.80, 1.17,
                                         2.04, 3.17, 4.53, 8.78, 20.0};
  const int64_t K = 9, H = 5, N = 40, B = 3;
  sim_dataset d;
  make_dataset(&d, N, 4, 12, K, H);
  for (int sweet = 0; sweet <= 1; sweet++)
    for (int64_t c = 0; c <= K; c++) {
      forced_model fm = {c, K};
      sim_click_model m = model_of(&fm, forced_probs, N, K, H);
      sim_env_config cfg = env_config(B, K, H, sweet, 5);
      sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
      /* the first step's reward */
      int32_t slates[27];
      fill_slates(slates, B, K, N, 0);
      sim_env_step_result r;
      sim_env_step(e, slates, &r);
      double want_r = sweet ? sweet_r[c] : plain_r[c];
      for (int64_t i = 0; i < B; i++) TEST_NEAR(r.reward[i], want_r, 1e-4);
      int32_t depth[9];
      float total[9];
      run_episodes(e, 9, depth, total, N);
      int want_d = sweet ? sweet_depth[c] : plain_depth[c];
      double want_t = sweet ? sweet_total[c] : plain_total[c];
      for (int j = 0; j < 9; j++) {
        TEST_ASSERTF(depth[j] == want_d, "sweet %d, c = %lld: depth %d, want %d", sweet,
                     (long long)c, depth[j], want_d);
        TEST_NEAR(total[j], want_t, 0.006); /* the table rounds to 2 decimals */
      }
      sim_env_free(e);
    }
  /* the boundary case in full precision: c = 9 with the sweet point ends at depth 10 in float32
   * (11 in exact arithmetic), total 10 * 0.9f */
  sim_dataset_free(&d);
}

/* K = 10, plain mean_with_cost: r = (1.1 c - 1) / 10, drop = (1 - r) 10 + 1 = 12 - 1.1 c;
 * the user leaves at the first n with 20 - n drop < 1. */
static void test_forced_clicks_k10_closed_form(void) {
  const int64_t K = 10, H = 7, N = 50, B = 4;
  sim_dataset d;
  make_dataset(&d, N, 5, 9, K, H);
  for (int64_t c = 0; c <= K; c++) {
    double r = (1.1 * (double)c - 1.0) / 10.0, drop = 12.0 - 1.1 * (double)c;
    int want_d = 0;
    for (double t = 20.0; t >= 1.0 - 1e-9; t -= drop) want_d++; /* 1e-9: c = 10 hits 1 exactly */
    double want_t = want_d * r;
    forced_model fm = {c, K};
    sim_click_model m = model_of(&fm, forced_probs, N, K, H);
    sim_env_config cfg = env_config(B, K, H, 0, 11);
    sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
    int32_t depth[12];
    float total[12];
    run_episodes(e, 12, depth, total, N);
    for (int j = 0; j < 12; j++) {
      TEST_ASSERTF(depth[j] == want_d, "c = %lld: depth %d, want %d", (long long)c, depth[j],
                   want_d);
      TEST_NEAR(total[j], want_t, 1e-4 * want_d);
    }
    TEST_ASSERT(want_d <= 20);
    sim_env_free(e);
  }
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- bookkeeping */

static void test_every_episode_recorded(void) {
  const int64_t K = 5, H = 8, N = 60, B = 7;
  sim_dataset d;
  make_dataset(&d, N, 9, 30, K, H);
  hash_model hm = {K};
  sim_click_model m = model_of(&hm, hash_probs, N, K, H);
  sim_env_config cfg = env_config(B, K, H, 0, 3);
  sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
  int32_t slates[35];
  double run[7] = {0}; /* our own per-row Total Reward */
  int64_t steps_in[7] = {0}, n_done = 0, max_depth = 0, min_depth = 1000;
  double sum_total = 0.0;
  sim_env_step_result r;
  for (int64_t s = 0; s < 400; s++) {
    fill_slates(slates, B, K, N, s);
    sim_env_step(e, slates, &r);
    TEST_ASSERT(r.n_active == B);
    int64_t nd = 0;
    for (int64_t i = 0; i < B; i++) {
      run[i] += (double)r.reward[i];
      steps_in[i]++;
      int64_t nc = 0;
      for (int64_t k = 0; k < K; k++) nc += r.clicks[i * K + k];
      double want_r = ((double)nc - 0.1 * (double)(K - nc)) / (double)K;
      TEST_NEAR(r.reward[i], want_r, 1e-6);
      if (!r.done[i]) continue;
      nd++;
      TEST_ASSERT(r.episode_depth[i] == steps_in[i]);
      TEST_NEAR(r.episode_reward[i], run[i], 1e-4);
      if (r.episode_depth[i] > max_depth) max_depth = r.episode_depth[i];
      if (r.episode_depth[i] < min_depth) min_depth = r.episode_depth[i];
      sum_total += (double)r.episode_reward[i];
      run[i] = 0.0;
      steps_in[i] = 0;
      TEST_ASSERT(sim_env_depths(e)[i] == 0);
      TEST_ASSERT(sim_env_tempers(e)[i] == 20.0f);
    }
    TEST_ASSERT(nd == r.n_done);
    n_done += nd;
  }
  const sim_env_stats *st = sim_env_get_stats(e);
  TEST_ASSERT(st->n_episodes == n_done);
  TEST_ASSERT(n_done > 100);
  TEST_ASSERT(st->n_started == st->n_episodes + B);
  TEST_ASSERT(st->n_user_steps == 400 * B);
  int64_t in_progress = 0;
  for (int64_t i = 0; i < B; i++) in_progress += sim_env_depths(e)[i];
  TEST_NEAR(st->sum_depth + (double)in_progress, (double)(400 * B), 0.0);
  TEST_NEAR(st->sum_reward, sum_total, 1e-6 * (double)n_done);
  TEST_ASSERTF(max_depth <= 20 && min_depth >= 1, "depths in [%lld, %lld]", (long long)min_depth,
               (long long)max_depth);
  sim_env_free(e);

  /* every row ends at the same step: all B episodes are recorded, not one per step */
  forced_model fm = {3, K};
  m = model_of(&fm, forced_probs, N, K, H);
  e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
  int64_t steps = 0;
  do {
    fill_slates(slates, B, K, N, steps++);
    sim_env_step(e, slates, &r);
  } while (r.n_done == 0);
  TEST_ASSERT(r.n_done == B);
  TEST_ASSERT(sim_env_get_stats(e)->n_episodes == B);
  sim_env_free(e);
  sim_dataset_free(&d);
}

/* History update and the transition across a user's replacement. */
static void test_history_and_transitions(void) {
  const int64_t K = 4, H = 6, N = 30, B = 2;
  sim_dataset d;
  make_dataset(&d, N, 5, 10, K, H);
  forced_model fm = {2, K}; /* clicks at positions 0 and 1 */
  sim_click_model m = model_of(&fm, forced_probs, N, K, H);
  sim_env_config cfg = env_config(B, K, H, 0, 21);
  sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
  int32_t slates[8], hist0[12], users0[2];
  sim_env_step_result r;
  int64_t n_replaced = 0;
  for (int64_t s = 0; s < 12; s++) {
    memcpy(hist0, sim_env_histories(e), sizeof hist0);
    memcpy(users0, sim_env_users(e), sizeof users0);
    fill_slates(slates, B, K, N, s);
    sim_env_step(e, slates, &r);
    for (int64_t i = 0; i < B; i++) {
      int32_t want[6];
      for (int64_t j = 0; j < H - 2; j++) want[j] = hist0[i * H + j + 2];
      want[H - 2] = slates[i * K + 0];
      want[H - 1] = slates[i * K + 1];
      TEST_ASSERT(memcmp(r.next_histories + i * H, want, sizeof want) == 0);
      TEST_ASSERT(r.next_users[i] == users0[i]);
      if (r.done[i]) {
        n_replaced++;
        /* the live row holds a fresh user with a logged history */
        int found = 0;
        for (int64_t rec = 0; rec < d.n_records; rec++)
          if (d.rec_user[rec] == sim_env_users(e)[i] &&
              !memcmp(d.rec_history + rec * H, sim_env_histories(e) + i * H, (size_t)H * 4))
            found = 1;
        TEST_ASSERT(found);
      } else {
        TEST_ASSERT(memcmp(sim_env_histories(e) + i * H, want, sizeof want) == 0);
        TEST_ASSERT(sim_env_users(e)[i] == users0[i]);
      }
    }
  }
  TEST_ASSERT(n_replaced >= 2);
  sim_env_free(e);
  sim_dataset_free(&d);

  /* more clicks than H: the history is the last H clicked items */
  const int64_t K2 = 5, H2 = 3;
  make_dataset(&d, N, 5, 10, K2, H2);
  forced_model all = {K2, K2};
  m = model_of(&all, forced_probs, N, K2, H2);
  cfg = env_config(1, K2, H2, 0, 2);
  e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
  int32_t sl[5] = {3, 9, 4, 12, 7};
  sim_env_step(e, sl, &r);
  TEST_ASSERT(r.next_histories[0] == 4 && r.next_histories[1] == 12 && r.next_histories[2] == 7);
  sim_env_free(e);
  sim_dataset_free(&d);
}

static void test_same_seed_same_episodes(void) {
  const int64_t K = 6, H = 10, N = 80, B = 5;
  sim_dataset d;
  make_dataset(&d, N, 11, 40, K, H);
  hash_model hm = {K};
  sim_click_model m = model_of(&hm, hash_probs, N, K, H);
  double totals[3];
  int64_t eps[3];
  for (int run = 0; run < 3; run++) {
    sim_env_config cfg = env_config(B, K, H, 0, run == 2 ? 99 : 42);
    sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
    int32_t depth[200];
    float total[200];
    run_episodes(e, 200, depth, total, N);
    double s = 0.0;
    for (int j = 0; j < 200; j++) s += (double)total[j] * (j + 1) + depth[j];
    totals[run] = s;
    eps[run] = sim_env_get_stats(e)->n_user_steps;
    /* reset reproduces the run */
    sim_env_reset(e);
    int32_t depth2[200];
    float total2[200];
    run_episodes(e, 200, depth2, total2, N);
    TEST_ASSERT(!memcmp(depth, depth2, sizeof depth) && !memcmp(total, total2, sizeof total));
    sim_env_free(e);
  }
  TEST_ASSERT(totals[0] == totals[1] && eps[0] == eps[1]);
  TEST_ASSERT(totals[0] != totals[2]);
  sim_dataset_free(&d);
}

static void test_no_allocation_per_step(void) {
  const int64_t K = 5, H = 9, N = 70, B = 8;
  sim_dataset d;
  make_dataset(&d, N, 7, 5, K, H); /* small pool: reshuffles happen inside the loop */
  hash_model hm = {K};
  sim_click_model m = model_of(&hm, hash_probs, N, K, H);
  sim_env_config cfg = env_config(B, K, H, 1, 8);
  sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
  sim_policy_simple *greedy = sim_policy_simple_greedy(&m, B);
  int32_t slates[40];
  sim_env_step_result r;
  int64_t before = hsrl_alloc_count();
  for (int64_t s = 0; s < 300; s++) {
    sim_policy_simple_act(greedy, B, sim_env_users(e), sim_env_histories(e), slates);
    sim_env_step(e, slates, &r);
  }
  sim_env_reset(e);
  TEST_ASSERT(hsrl_alloc_count() == before);
  TEST_ASSERT(sim_env_get_stats(e)->n_user_steps == 0);
  sim_policy_simple_free(greedy);
  sim_env_free(e);
  sim_dataset_free(&d);
}

/* max_episodes: exactly that many start and finish; the pool is reshuffled when used up. */
static void test_episode_budget_and_pool(void) {
  const int64_t K = 3, H = 4, N = 20, B = 4, R = 5;
  sim_dataset d;
  make_dataset(&d, N, R, R, K, H); /* record r has user r + 1 */
  forced_model fm = {1, K};
  sim_click_model m = model_of(&fm, forced_probs, N, K, H);
  for (int64_t budget = 2; budget <= 23; budget += 21) {
    sim_env_config cfg = env_config(B, K, H, 0, 4);
    cfg.max_episodes = budget;
    sim_env *e = sim_env_init(&cfg, &d, d.train_idx, d.n_train, &m);
    TEST_ASSERT(sim_env_n_active(e) == (budget < B ? budget : B));
    int32_t slates[12];
    int32_t starts[64];
    int64_t n_starts = 0;
    for (int64_t i = 0; i < B; i++)
      if (sim_env_active(e)[i]) starts[n_starts++] = sim_env_users(e)[i];
    sim_env_step_result r;
    int64_t steps = 0, finished = 0;
    while (sim_env_n_active(e) > 0 && steps < 1000) {
      fill_slates(slates, B, K, N, steps++);
      sim_env_step(e, slates, &r);
      finished += r.n_done;
      for (int64_t i = 0; i < B; i++)
        if (r.done[i] && sim_env_active(e)[i]) starts[n_starts++] = sim_env_users(e)[i];
    }
    TEST_ASSERT(finished == budget && n_starts == budget);
    TEST_ASSERT(sim_env_get_stats(e)->n_episodes == budget);
    /* every block of R consecutive starts is a permutation of the R records (users 1..R) */
    for (int64_t b0 = 0; b0 + R <= n_starts; b0 += R) {
      int seen[8] = {0};
      for (int64_t j = 0; j < R; j++) seen[starts[b0 + j]]++;
      for (int64_t u = 1; u <= R; u++)
        TEST_ASSERTF(seen[u] == 1, "block %lld user %lld", (long long)b0, (long long)u);
    }
    sim_env_free(e);
  }
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- policies */

static void test_greedy_paths_agree_with_brute_force(void) {
  const int64_t K = 7, H = 3, N = 9001, b = 3; /* N > SIM_POLICY_SIMPLE_BLOCK: several blocks */
  hash_model hm = {K};
  sim_click_model with = model_of(&hm, hash_probs, N, K, H), without = with;
  with.scores = hash_scores;
  sim_policy_simple *g1 = sim_policy_simple_greedy(&with, 2),
                    *g2 = sim_policy_simple_greedy(&without, 2);
  int32_t users[3] = {4, 77, 1000}, hist[9] = {0}, s1[21], s2[21];
  sim_policy_simple_act(g1, b, users, hist, s1);
  sim_policy_simple_act(g2, b, users, hist, s2);
  TEST_ASSERT(!memcmp(s1, s2, sizeof s1));
  for (int64_t i = 0; i < b; i++) {
    /* brute force: the K best by (prob desc, id asc) */
    int32_t best[7];
    for (int64_t k = 0; k < K; k++) {
      int32_t bi = 0;
      for (int32_t it = 1; it <= N; it++) {
        int taken = 0;
        for (int64_t j = 0; j < k; j++) taken |= best[j] == it;
        if (taken) continue;
        if (!bi || hash_prob(users[i], it) > hash_prob(users[i], bi)) bi = it;
      }
      best[k] = bi;
    }
    TEST_ASSERT(!memcmp(best, s1 + i * K, sizeof best));
  }
  TEST_ASSERT(!strcmp(sim_policy_simple_name(g1), "greedy"));
  sim_policy_simple_free(g1);
  sim_policy_simple_free(g2);
}

static void test_random_and_popular(void) {
  const int64_t K = 4, H = 5, N = 12;
  sim_dataset d;
  make_dataset(&d, N, 6, 40, K, H);
  /* popular: recount the clicks here */
  int64_t count[13] = {0};
  for (int64_t r = 0; r < d.n_train; r++)
    for (int64_t k = 0; k < K; k++)
      if (d.rec_clicks[r * K + k]) count[d.rec_slate[r * K + k]]++;
  sim_policy_simple *pop = sim_policy_simple_popular(&d, d.train_idx, d.n_train, K);
  int32_t users[2] = {1, 2}, hist[10] = {0}, s[8];
  sim_policy_simple_act(pop, 2, users, hist, s);
  TEST_ASSERT(!memcmp(s, s + K, (size_t)K * 4));
  for (int64_t k = 0; k + 1 < K; k++)
    TEST_ASSERT(count[s[k]] > count[s[k + 1]] ||
                (count[s[k]] == count[s[k + 1]] && s[k] < s[k + 1]));
  for (int32_t it = 1; it <= N; it++) {
    int in = 0;
    for (int64_t k = 0; k < K; k++) in |= s[k] == it;
    if (!in) TEST_ASSERT(count[it] <= count[s[K - 1]]);
  }
  sim_policy_simple_free(pop);

  /* random: distinct items in range, about uniform, reset reproduces */
  sim_policy_simple *rnd = sim_policy_simple_random(N, K, 5);
  int64_t freq[13] = {0};
  int32_t first[8];
  for (int rep = 0; rep < 3000; rep++) {
    sim_policy_simple_act(rnd, 2, users, hist, s);
    if (rep == 0) memcpy(first, s, sizeof first);
    for (int64_t i = 0; i < 2; i++)
      for (int64_t k = 0; k < K; k++) {
        TEST_ASSERT(s[i * K + k] >= 1 && s[i * K + k] <= N);
        for (int64_t j = 0; j < k; j++) TEST_ASSERT(s[i * K + j] != s[i * K + k]);
        freq[s[i * K + k]]++;
      }
  }
  double expect = 3000.0 * 2 * (double)K / (double)N; /* 2000 */
  for (int32_t it = 1; it <= N; it++)
    TEST_ASSERTF(fabs((double)freq[it] - expect) < 6 * sqrt(expect), "item %d: %lld", it,
                 (long long)freq[it]);
  sim_policy_simple_reset(rnd, 5);
  sim_policy_simple_act(rnd, 2, users, hist, s);
  TEST_ASSERT(!memcmp(first, s, sizeof first));
  sim_policy_simple_free(rnd);
  sim_dataset_free(&d);
}

/* env.exclude_history: no policy shows an item of the user's history; random stays uniform over
 * the allowed items; popular and greedy take the best allowed ones (the same as without exclusion
 * after dropping the history items). */
static void test_policies_exclude_history(void) {
  const int64_t K = 4, H = 5, N = 12;
  sim_dataset d;
  make_dataset(&d, N, 6, 40, K, H);
  int32_t users[2] = {1, 2}, hist[10] = {0, 3, 7, 12, 3, /* user 2: */ 0, 0, 0, 1, 2}, s[8], plain[8];
  sim_policy_simple *pop = sim_policy_simple_popular(&d, d.train_idx, d.n_train, K),
                    *pop_x = sim_policy_simple_popular(&d, d.train_idx, d.n_train, K);
  sim_policy_simple_exclude_history(pop_x, H);
  sim_policy_simple *rnd = sim_policy_simple_random(N, K, 5);
  sim_policy_simple_exclude_history(rnd, H);
  hash_model hm = {K};
  sim_click_model m = model_of(&hm, hash_probs, 9001, K, H);
  sim_policy_simple *g = sim_policy_simple_greedy(&m, 2), *g_x = sim_policy_simple_greedy(&m, 2);
  sim_policy_simple_exclude_history(g_x, H);
  int32_t ghist[10] = {0};
  int32_t gplain[8];
  sim_policy_simple_act(g, 2, users, ghist, gplain);
  for (int i = 0; i < 2; i++) ghist[i * H + 4] = gplain[i * K], ghist[i * H + 3] = gplain[i * K + 2];
  int32_t gs[8];
  sim_policy_simple_act(g_x, 2, users, ghist, gs);
  int64_t freq[13] = {0};
  for (int rep = 0; rep < 3000; rep++) {
    sim_policy_simple_act(rnd, 2, users, hist, s);
    for (int i = 0; i < 2; i++)
      for (int64_t k = 0; k < K; k++) {
        int32_t it = s[i * K + k];
        for (int64_t j = 0; j < H; j++) TEST_ASSERTF(it != hist[i * H + j], "random showed history item %d", it);
        for (int64_t j = 0; j < k; j++) TEST_ASSERT(s[i * K + j] != it);
        if (i == 0) freq[it]++;
      }
  }
  const double expect = 3000.0 * (double)K / 9.0; /* user 1: 9 allowed items (3, 7, 12 excluded) */
  for (int32_t it = 1; it <= N; it++) {
    if (it == 3 || it == 7 || it == 12) continue;
    TEST_ASSERTF(fabs((double)freq[it] - expect) < 6 * sqrt(expect), "item %d: %lld", it, (long long)freq[it]);
  }
  /* popular: no history item; the plain slate's allowed items keep their order at the front */
  sim_policy_simple_act(pop, 2, users, hist, plain);
  sim_policy_simple_act(pop_x, 2, users, hist, s);
  for (int i = 0; i < 2; i++)
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < H; j++) TEST_ASSERT(s[i * K + k] != hist[i * H + j]);
  /* user 2 excludes 1 and 2: the plain items that survive keep their order at the front */
  int64_t kept = 0;
  for (int64_t k = 0; k < K; k++)
    if (plain[K + k] != 1 && plain[K + k] != 2) TEST_ASSERT(s[K + kept++] == plain[K + k]);
  /* greedy: the excluded top items are gone, the rest of the plain top-K moves up */
  for (int i = 0; i < 2; i++) {
    TEST_ASSERT(gs[i * K] == gplain[i * K + 1] && gs[i * K + 1] == gplain[i * K + 3]);
    for (int64_t k = 0; k < K; k++)
      TEST_ASSERT(gs[i * K + k] != gplain[i * K] && gs[i * K + k] != gplain[i * K + 2]);
  }
  sim_policy_simple_free(pop);
  sim_policy_simple_free(pop_x);
  sim_policy_simple_free(rnd);
  sim_policy_simple_free(g);
  sim_policy_simple_free(g_x);
  sim_dataset_free(&d);
}

/* The group cap (sim_policy_simple_cap): greedy by scores and by probs, with history exclusion,
 * equals a brute force over the whole ranking: in descending order take an item unless `cap` of its
 * group are in, then fill with the best skipped ones; popular follows the same rule on its click
 * ranking. */
typedef struct ranked {
  float s;
  int32_t id;
} ranked;

static int ranked_cmp(const void *a, const void *b) { /* score desc, id asc */
  const ranked *x = a, *y = b;
  if (x->s != y->s) return x->s > y->s ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static void capped_brute_force(const ranked *r, int64_t n, const int32_t *group, int64_t cap, int64_t K,
                               int32_t *slate) {
  int64_t count[16] = {0}, k = 0;
  for (int64_t j = 0; j < n && k < K; j++)
    if (count[group[r[j].id]] < cap) count[group[r[j].id]]++, slate[k++] = r[j].id;
  for (int64_t j = 0; j < n && k < K; j++) {
    int in = 0;
    for (int64_t q = 0; q < k; q++) in |= slate[q] == r[j].id;
    if (!in) slate[k++] = r[j].id;
  }
}

static void test_capped_rankings_match_brute_force(void) {
  const int64_t K = 7, H = 3, N = 9001, b = 3, n_groups = 5; /* several blocks */
  int32_t *group = hsrl_malloc((size_t)(N + 1) * sizeof(int32_t));
  group[0] = 0;
  for (int64_t i = 1; i <= N; i++) group[i] = (int32_t)((i * 7) % n_groups);
  hash_model hm = {K};
  sim_click_model with = model_of(&hm, hash_probs, N, K, H), without = with;
  with.scores = hash_scores;
  int32_t users[3] = {4, 77, 1000}, hist[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  ranked *r = hsrl_malloc((size_t)N * sizeof *r);
  /* user 2's history holds its best item: excluded, so the ranking moves up */
  for (int32_t it = 1; it <= N; it++) r[it - 1] = (ranked){hash_prob(users[1], it), it};
  qsort(r, (size_t)N, sizeof *r, ranked_cmp);
  hist[H + 2] = r[0].id;
  for (int64_t cap = 1; cap <= 2; cap++) { /* cap 1: 5 groups for 7 slots, 2 filled; cap 2: no fill */
    sim_policy_simple *g1 = sim_policy_simple_greedy(&with, 2), *g2 = sim_policy_simple_greedy(&without, 2);
    sim_policy_simple_cap(g1, group, n_groups, cap);
    sim_policy_simple_cap(g2, group, n_groups, cap);
    sim_policy_simple_exclude_history(g1, H);
    sim_policy_simple_exclude_history(g2, H);
    int32_t s1[21], s2[21], want[7];
    sim_policy_simple_act(g1, b, users, hist, s1);
    sim_policy_simple_act(g2, b, users, hist, s2);
    TEST_ASSERT(!memcmp(s1, s2, sizeof s1));
    for (int64_t i = 0; i < b; i++) {
      int64_t n = 0;
      for (int32_t it = 1; it <= N; it++) {
        int banned = 0;
        for (int64_t j = 0; j < H; j++) banned |= hist[i * H + j] == it;
        if (!banned) r[n++] = (ranked){hash_prob(users[i], it), it};
      }
      qsort(r, (size_t)n, sizeof *r, ranked_cmp);
      capped_brute_force(r, n, group, cap, K, want);
      TEST_ASSERTF(!memcmp(want, s1 + i * K, sizeof want), "cap %lld user %lld", (long long)cap, (long long)i);
      /* the accepted slots (all 7 with cap 2, the first 5 with cap 1) hold <= cap per group */
      int64_t count[5] = {0};
      for (int64_t k = 0; k < (cap == 1 ? n_groups : K); k++) count[group[s1[i * K + k]]]++;
      for (int64_t q = 0; q < n_groups; q++) TEST_ASSERT(cap == 1 ? count[q] == 1 : count[q] <= cap);
    }
    sim_policy_simple_free(g1);
    sim_policy_simple_free(g2);
  }

  /* popular: the click ranking, at most one per group, the fill from the skipped ones */
  sim_dataset d;
  const int64_t Kp = 4, Np = 12;
  make_dataset(&d, Np, 6, 40, Kp, H);
  int32_t pgroup[13];
  for (int64_t i = 0; i <= Np; i++) pgroup[i] = (int32_t)(i % 3); /* 3 groups for 4 slots */
  ranked pr[12];
  for (int32_t it = 1; it <= Np; it++) pr[it - 1] = (ranked){0.0f, it};
  for (int64_t q = 0; q < d.n_train; q++)
    for (int64_t k = 0; k < Kp; k++)
      if (d.rec_clicks[q * Kp + k]) pr[d.rec_slate[q * Kp + k] - 1].s += 1.0f;
  qsort(pr, (size_t)Np, sizeof pr[0], ranked_cmp);
  int32_t want[4], got[8], phist[6] = {0};
  capped_brute_force(pr, Np, pgroup, 1, Kp, want);
  sim_policy_simple *pop = sim_policy_simple_popular(&d, d.train_idx, d.n_train, Kp);
  sim_policy_simple_cap(pop, pgroup, 3, 1);
  sim_policy_simple_act(pop, 2, users, phist, got);
  TEST_ASSERT(!memcmp(want, got, sizeof want) && !memcmp(want, got + Kp, sizeof want));
  sim_policy_simple_free(pop);
  sim_dataset_free(&d);
  hsrl_free(r);
  hsrl_free(group);
}

/* ---------------------------------------------------------------- synthetic world, eval */

static void small_world_config(sim_synth_config *c) {
  sim_synth_config_defaults(c);
  c->items = 300;
  c->users = 120;
  c->sessions = 6;
  c->topics = 6;
  c->seed = 3;
}

static void policy_act(void *ctx, int64_t b, const int32_t *u, const int32_t *h,
                       const uint8_t *active, int32_t *slates) {
  (void)active;
  sim_policy_simple_act(ctx, b, u, h, slates);
}

static void policy_reset(void *ctx, uint64_t seed) { sim_policy_simple_reset(ctx, seed); }

static sim_eval_policy eval_policy(sim_policy_simple *p) {
  sim_eval_policy e;
  memset(&e, 0, sizeof e);
  snprintf(e.name, sizeof e.name, "%s", sim_policy_simple_name(p));
  e.ctx = p;
  e.act = policy_act;
  e.reset = policy_reset;
  return e;
}

static void test_synth_oracle_beats_random(void) {
  sim_synth_config sc;
  small_world_config(&sc);
  sim_synth_world w;
  sim_dataset d;
  TEST_ASSERT(sim_synth_generate(&w, &d, &sc) == HSRL_OK);
  sim_click_model m = sim_click_adapters_synth(&w);
  sim_env_config cfg = env_config(16, d.slate_size, d.history_len, 0, 0);
  sim_policy_simple *pol[4] = {sim_policy_simple_random(d.n_items, d.slate_size, 1),
                               sim_policy_simple_popular(&d, d.train_idx, d.n_train, d.slate_size),
                               sim_policy_simple_greedy(&m, 16), sim_policy_simple_oracle(&w, 16)};
  sim_eval_summary *sum = hsrl_calloc(4, sizeof *sum);
  for (int j = 0; j < 4; j++) {
    sim_eval_policy ep = eval_policy(pol[j]);
    TEST_ASSERT(sim_eval_seeds(&sum[j], &cfg, &d, &m, &ep, 150, 2, 7) == HSRL_OK);
    TEST_ASSERT(sum[j].seed[0].n_episodes == 150 && sum[j].seed[1].n_episodes == 150);
    for (int s = 0; s < 2; s++) {
      const sim_eval_result *r = &sum[j].seed[s];
      TEST_ASSERT(r->depth_mean >= 1.0 && r->depth_mean <= 20.0);
      TEST_ASSERT(r->click_rate >= 0.0 && r->click_rate <= 1.0 && r->coverage > 0.0 &&
                  r->coverage <= 1.0);
      /* user-steps are exactly the episodes' steps */
      TEST_NEAR(r->depth_mean * (double)r->n_episodes, (double)r->n_user_steps,
                1e-6 * (double)r->n_user_steps);
    }
  }
  sim_eval_print_table(stdout, sum, 4);
  const double rnd = sum[0].mean.reward_mean, orc = sum[3].mean.reward_mean;
  TEST_ASSERTF(
      orc > rnd + 0.25 && orc > sum[0].seed[0].reward_mean && orc > sum[0].seed[1].reward_mean,
      "oracle %.3f vs random %.3f", orc, rnd);
  /* greedy over the world's model is the oracle: same slates, same episodes */
  TEST_ASSERT(sum[2].mean.reward_mean == orc && sum[2].mean.depth_mean == sum[3].mean.depth_mean);
  TEST_NEAR(sum[1].seed[0].coverage, (double)d.slate_size / (double)d.n_items, 1e-12);
  /* determinism of the whole protocol */
  sim_eval_result again;
  sim_eval_policy ep = eval_policy(pol[0]);
  TEST_ASSERT(sim_eval_run(&again, &cfg, &d, &m, &ep, 150, hsrl_rng_derive(7, 0)) == HSRL_OK);
  TEST_ASSERT(again.reward_mean == sum[0].seed[0].reward_mean &&
              again.n_user_steps == sum[0].seed[0].n_user_steps);
  for (int j = 0; j < 4; j++) sim_policy_simple_free(pol[j]);
  hsrl_free(sum);
  sim_synth_free(&w);
  sim_dataset_free(&d);
}

/* Fewer episodes than rows (max_episodes < B) with the synthetic world's click model, which
 * refuses user 0 (a check failure): the rows that never get a user hold a valid placeholder, the
 * model never sees user 0, and the idle rows change nothing: the episodes are those of an env
 * with B = max_episodes. Then the whole evaluation protocol with E < B. */
typedef struct watch_model {
  sim_click_model inner;
  int32_t min_user;
  int64_t calls;
} watch_model;

static void watch_probs(void *ctx, int64_t b, const int32_t *user_ids, const int32_t *histories,
                        const int32_t *slates, float *out_p) {
  watch_model *m = ctx;
  for (int64_t i = 0; i < b; i++)
    if (user_ids[i] < m->min_user) m->min_user = user_ids[i];
  m->calls++;
  m->inner.probs(m->inner.ctx, b, user_ids, histories, slates, out_p);
}

static void test_fewer_episodes_than_rows_world(void) {
  sim_synth_config sc;
  small_world_config(&sc);
  sim_synth_world w;
  sim_dataset d;
  TEST_ASSERT(sim_synth_generate(&w, &d, &sc) == HSRL_OK);
  const int64_t K = d.slate_size, H = d.history_len, N = d.n_items, E = 5;
  watch_model wm = {sim_click_adapters_synth(&w), INT32_MAX, 0};
  sim_click_model m = wm.inner;
  m.ctx = &wm;
  m.probs = watch_probs;
  sim_env_stats st[2];
  for (int v = 0; v < 2; v++) {
    const int64_t B = v == 0 ? 16 : E; /* 16 rows for 5 episodes, then exactly 5 rows */
    sim_env_config cfg = env_config(B, K, H, 0, 11);
    cfg.max_episodes = E;
    sim_env *e = sim_env_init(&cfg, &d, d.test_idx, d.n_test, &m);
    TEST_ASSERT(sim_env_n_active(e) == E);
    for (int64_t i = 0; i < B; i++) {
      const int32_t u = sim_env_users(e)[i];
      TEST_ASSERTF(u >= 1 && u <= d.n_users, "row %lld: user %d", (long long)i, (int)u);
      TEST_ASSERT(sim_env_active(e)[i] == (i < E));
    }
    int32_t *slates = hsrl_malloc((size_t)(B * K) * sizeof(int32_t));
    sim_env_step_result r;
    int64_t steps = 0;
    while (sim_env_n_active(e) > 0 && steps < 1000) {
      fill_slates(slates, B, K, N, steps++);
      sim_env_step(e, slates, &r);
      for (int64_t i = E; i < B; i++) /* idle rows: no clicks, no reward */
        TEST_ASSERT(!r.active[i] && !r.done[i] && r.reward[i] == 0.0f);
    }
    st[v] = *sim_env_get_stats(e);
    TEST_ASSERT(st[v].n_episodes == E && st[v].n_started == E);
    hsrl_free(slates);
    sim_env_free(e);
  }
  TEST_ASSERT(wm.calls > 0);
  TEST_ASSERTF(wm.min_user >= 1, "the click model saw user %d", (int)wm.min_user);
  /* idle rows draw nothing: the same episodes as with B = E */
  TEST_ASSERT(st[0].sum_reward == st[1].sum_reward && st[0].sum_depth == st[1].sum_depth &&
              st[0].n_user_steps == st[1].n_user_steps && st[0].n_clicks == st[1].n_clicks);
  /* the evaluation protocol with 3 episodes on 16 rows; the oracle also acts on idle rows */
  sim_policy_simple *orc = sim_policy_simple_oracle(&w, 16);
  sim_eval_policy ep = eval_policy(orc);
  sim_env_config cfg = env_config(16, K, H, 0, 0);
  sim_eval_result res;
  TEST_ASSERT(sim_eval_run(&res, &cfg, &d, &m, &ep, 3, 7) == HSRL_OK);
  TEST_ASSERT(res.n_episodes == 3 && res.depth_mean >= 1.0);
  TEST_ASSERT(wm.min_user >= 1);
  sim_policy_simple_free(orc);
  sim_synth_free(&w);
  sim_dataset_free(&d);
}

/* The learned simulator's adapter: its scores are the model's logits, and greedy
 * through scores picks what greedy through probs picks. Random weights on the small world. */
static void test_urm_adapter(void) {
  sim_synth_config sc;
  small_world_config(&sc);
  sim_synth_world w;
  sim_dataset d;
  TEST_ASSERT(sim_synth_generate(&w, &d, &sc) == HSRL_OK);
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  sim_urm_config uc = sim_urm_config_make(&s.sim, &d);
  sim_urm *urm = sim_urm_init(&uc, &d, 5);
  sim_click_adapters_urm *a = sim_click_adapters_urm_init(urm, 24);
  sim_click_model m = sim_click_adapters_urm_model(a);
  TEST_ASSERT(m.scores != NULL);
  /* scores of a logged slate's items (b > max_batch: split calls) are the logits behind probs */
  {
    const int64_t nb = 30, K = d.slate_size, H = d.history_len;
    int32_t *u = hsrl_malloc((size_t)nb * 4), *h = hsrl_malloc((size_t)(nb * H) * 4);
    int32_t *sl = hsrl_malloc((size_t)(nb * K) * 4);
    float *p = hsrl_malloc((size_t)(nb * K) * 4), *sco = hsrl_malloc((size_t)K * 4);
    for (int64_t i = 0; i < nb; i++) {
      int64_t rec = (i * 53) % d.n_records;
      u[i] = d.rec_user[rec];
      memcpy(h + i * H, d.rec_history + rec * H, (size_t)H * 4);
      memcpy(sl + i * K, d.rec_slate + rec * K, (size_t)K * 4);
    }
    float *sb = hsrl_malloc((size_t)(nb * K) * 4); /* all users at once, record 0's slate */
    m.probs(m.ctx, nb, u, h, sl, p);
    m.scores(m.ctx, nb, u, h, sl, K, sb);
    double worst = 0.0, worst_b = 0.0; /* (batch size changes BLAS rounding only) */
    for (int64_t i = 0; i < nb; i++) {
      m.scores(m.ctx, 1, u + i, h + i * H, sl + i * K, K, sco);
      for (int64_t k = 0; k < K; k++)
        worst = fmax(worst, fabs(1.0 / (1.0 + exp(-(double)sco[k])) - (double)p[i * K + k]));
      m.scores(m.ctx, 1, u + i, h + i * H, sl, K, sco);
      for (int64_t k = 0; k < K; k++)
        worst_b = fmax(worst_b, fabs((double)sco[k] - (double)sb[i * K + k]));
    }
    TEST_ASSERTF(worst < 1e-6 && worst_b < 1e-5, "sigmoid(score) vs probs %g, batched %g", worst,
                 worst_b);
    hsrl_free(u);
    hsrl_free(h);
    hsrl_free(sl);
    hsrl_free(p);
    hsrl_free(sco);
    hsrl_free(sb);
  }
  sim_click_model probs_only = m;
  probs_only.scores = NULL;
  sim_policy_simple *g1 = sim_policy_simple_greedy(&m, 8),
                    *g2 = sim_policy_simple_greedy(&probs_only, 8);
  const int64_t b = 20, K = d.slate_size, H = d.history_len;
  int32_t *users = hsrl_malloc((size_t)b * 4), *hist = hsrl_malloc((size_t)(b * H) * 4);
  int32_t *s1 = hsrl_malloc((size_t)(b * K) * 4), *s2 = hsrl_malloc((size_t)(b * K) * 4);
  float *p1 = hsrl_malloc((size_t)(b * K) * 4), *p2 = hsrl_malloc((size_t)(b * K) * 4);
  for (int64_t i = 0; i < b; i++) {
    int64_t rec = (i * 37) % d.n_records;
    users[i] = d.rec_user[rec];
    memcpy(hist + i * H, d.rec_history + rec * H, (size_t)H * 4);
  }
  sim_policy_simple_act(g1, b, users, hist, s1);
  sim_policy_simple_act(g2, b, users, hist, s2);
  m.probs(m.ctx, b, users, hist, s1, p1);
  m.probs(m.ctx, b, users, hist, s2, p2);
  /* the same probabilities position by position (the slates may differ only by exact ties) */
  for (int64_t i = 0; i < b * K; i++) TEST_NEAR(p1[i], p2[i], 1e-6);
  for (int64_t i = 0; i < b; i++)
    for (int64_t k = 0; k + 1 < K; k++) TEST_ASSERT(p1[i * K + k] >= p1[i * K + k + 1]);
  hsrl_free(users);
  hsrl_free(hist);
  hsrl_free(s1);
  hsrl_free(s2);
  hsrl_free(p1);
  hsrl_free(p2);
  sim_policy_simple_free(g1);
  sim_policy_simple_free(g2);
  sim_click_adapters_urm_free(a);
  sim_urm_free(urm);
  sim_synth_free(&w);
  sim_dataset_free(&d);
}

/* The text of a small file into buf (NUL-terminated); 0 if it cannot be read. */
static int read_text(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  return 1;
}

static void test_eval_command(void) {
  sim_synth_config sc;
  small_world_config(&sc);
  sim_synth_world w;
  sim_dataset d;
  TEST_ASSERT(sim_synth_generate(&w, &d, &sc) == HSRL_OK);
  char path[512], json[512];
  snprintf(path, sizeof path, "%s/world.data.h5", test_tmpdir());
  snprintf(json, sizeof json, "%s/eval.json", test_tmpdir());
  TEST_ASSERT(sim_synth_write(&w, &d, path) == HSRL_OK);
  sim_synth_free(&w);
  sim_dataset_free(&d);
  char *ok[] = {"eval",          "--data",     path,     "--world", "--policies",
                "random,oracle", "--episodes", "40",     "--seeds", "2",
                "--batch",       "8",          "--json", json,      NULL};
  TEST_ASSERT(sim_eval_command(14, ok) == 0);
  char buf[8192];
  TEST_ASSERT(read_text(json, buf, sizeof buf));
  TEST_ASSERT(strstr(buf, "\"policy\": \"random\"") && strstr(buf, "\"policy\": \"oracle\""));
  TEST_ASSERT(strstr(buf, "\"per_seed\"") && strstr(buf, "\"episodes\": 40"));
  char *both[] = {"eval", "--data", path, "--world", "--sim", "x.h5", NULL};
  TEST_ASSERT(sim_eval_command(6, both) == 2);
  char *unknown[] = {"eval", "--data", path, "--world", "--policies", "random,best", NULL};
  TEST_ASSERT(sim_eval_command(6, unknown) == 2);
  char *no_world[] = {"eval",           "--data",     path,     "--sim",
                      "missing.sim.h5", "--policies", "oracle", NULL};
  TEST_ASSERT(sim_eval_command(7, no_world) == 2);
  char *missing[] = {"eval", "--data", "/nonexistent/x.data.h5", "--world", NULL};
  TEST_ASSERT(sim_eval_command(4, missing) == 2);
  char *bad_num[] = {"eval", "--data", path, "--world", "--episodes", "0", NULL};
  TEST_ASSERT(sim_eval_command(6, bad_num) == 2);
  char *bad_greedy_sim[] = {"eval", "--data", path, "--world", "--policies", "greedy", "--greedy-sim",
                            "/nonexistent/train.sim.h5", NULL};
  TEST_ASSERT(sim_eval_command(8, bad_greedy_sim) == 2);
  char *excl[] = {"eval",    "--data", path,    "--world", "--policies", "random,popular,oracle", "--episodes",
                  "20",      "--seeds", "1",    "--batch", "8", "--set", "env.exclude_history=true", NULL};
  TEST_ASSERT(sim_eval_command(14, excl) == 0);
  char *help[] = {"eval", "--help", NULL};
  TEST_ASSERT(sim_eval_command(2, help) == 0);
  /* NAME-capC needs --sid, and a SID file of the same catalog */
  char *no_sid[] = {"eval", "--data", path, "--world", "--policies", "oracle-cap1", NULL};
  TEST_ASSERT(sim_eval_command(6, no_sid) == 2);
  char fx_data[512], fx_sid[512];
  snprintf(fx_data, sizeof fx_data, "%s/fixture.data.h5", test_tmpdir());
  snprintf(fx_sid, sizeof fx_sid, "%s/fixture.sid.h5", test_tmpdir());
  const fixture_world_spec spec = {.items = 60, .users = 20, .seed = 5, .sid_vocab2 = 3, .sid_dim = 2};
  TEST_ASSERT(fixture_world_write(&spec, fx_data, fx_sid));
  char *capped[] = {"eval", "--data", fx_data, "--world", "--policies", "oracle,oracle-cap1,popular-cap2,oracle-hpn,popular-hpn",
                    "--sid", fx_sid, "--episodes", "20", "--seeds", "1", "--batch", "8", "--json", json, NULL};
  TEST_ASSERT(sim_eval_command(16, capped) == 0);
  TEST_ASSERT(read_text(json, buf, sizeof buf));
  TEST_ASSERT(strstr(buf, "\"policy\": \"oracle-cap1\"") && strstr(buf, "\"policy\": \"popular-cap2\""));
  TEST_ASSERT(strstr(buf, "\"policy\": \"oracle-hpn\"") && strstr(buf, "\"policy\": \"popular-hpn\""));
  char *hpn_no_sid[] = {"eval", "--data", fx_data, "--world", "--policies", "oracle-hpn", NULL};
  TEST_ASSERT(sim_eval_command(6, hpn_no_sid) == 2);
  char *hpn_random[] = {"eval", "--data", fx_data, "--world", "--policies", "random-hpn", "--sid", fx_sid, NULL};
  TEST_ASSERT(sim_eval_command(8, hpn_random) == 2);
  char *other_catalog[] = {"eval", "--data", path, "--world", "--policies", "oracle-cap1", "--sid", fx_sid, NULL};
  TEST_ASSERT(sim_eval_command(8, other_catalog) == 2);
  /* NAME-hpn searches the whole catalog (per state; popular once): larger catalogs are refused (exit 2) */
  const fixture_world_spec big = {.items = SIM_POLICY_SIMPLE_BLOCK + 1, .users = 20, .seed = 5, .sid_vocab2 = 3,
                                  .sid_dim = 2};
  TEST_ASSERT(fixture_world_write(&big, fx_data, fx_sid));
  char *hpn_big[] = {"eval", "--data", fx_data, "--world", "--policies", "oracle-hpn", "--sid", fx_sid, NULL};
  TEST_ASSERT(sim_eval_command(8, hpn_big) == 2);
  char *popular_big[] = {"eval", "--data", fx_data, "--world", "--policies", "popular-hpn", "--sid", fx_sid, NULL};
  TEST_ASSERT(sim_eval_command(8, popular_big) == 2);
  remove(fx_data);
  remove(fx_sid);
  remove(json);
  remove(path);
}

static void test_config_make_rejects(void) {
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  sim_env_config c;
  TEST_ASSERT(sim_env_config_make(&c, &s.env, 10, 50, 1, 0) == HSRL_OK);
  TEST_ASSERT(c.temper == 20.0f && c.cost == 0.1f && c.reward == SIM_ENV_REWARD_MEAN &&
              !c.sweet_point);
  snprintf(s.env.reward, sizeof s.env.reward, "sum_with_cost");
  s.env.sweet_point = true;
  TEST_ASSERT(sim_env_config_make(&c, &s.env, 10, 50, 1, 0) == HSRL_E_USAGE);
  TEST_ASSERT(strstr(hsrl_err_message(), "env.sweet_point") != NULL);
  /* sum_with_cost: the reward is the sum, the leave model still uses the mean */
  s.env.sweet_point = false;
  TEST_ASSERT(sim_env_config_make(&c, &s.env, 4, 3, 1, 0) == HSRL_OK);
  c.batch = 1;
  sim_dataset d;
  make_dataset(&d, 10, 2, 3, 4, 3);
  forced_model fm = {4, 4};
  sim_click_model m = model_of(&fm, forced_probs, 10, 4, 3);
  sim_env *e = sim_env_init(&c, &d, d.train_idx, d.n_train, &m);
  int32_t depth[3];
  float total[3];
  run_episodes(e, 3, depth, total, 10);
  TEST_ASSERT(depth[0] == 20 && total[0] == 80.0f); /* 4 per step, 20 steps */
  sim_env_free(e);
  sim_dataset_free(&d);
}

/* ML-1M (users 1..2999): greedy-by-simulator > most-popular > random in Total Reward, for each of
 * 3 seeds (200 episodes each), in a simulator trained one epoch on all records: about 6 s of CPU.
 * Skips without the data; in the sanitizer build (several times slower) it runs only with
 * HSRL_TEST_ML1M=1. The full check (1000 episodes, a simulator from `hsrl sim train --split all`)
 * is `hsrl eval` by hand. */
static void test_ml1m_policy_order(void) {
  const char *dir = HSRL_SHARED_DATA "/ml-1m-u2999";
  struct stat sb;
  if (stat(dir, &sb) != 0) TEST_SKIP("needs " HSRL_SHARED_DATA "/ml-1m-u2999");
#ifdef __SANITIZE_ADDRESS__
  const char *on = getenv("HSRL_TEST_ML1M");
  if (!on || strcmp(on, "1")) TEST_SKIP("slow under the sanitizers: set HSRL_TEST_ML1M=1");
#endif
  sim_dataset d;
  sim_provenance prov;
  TEST_ASSERT(sim_reader_movielens_read(&d, &prov, dir, SIM_READER_MOVIELENS_1M) == HSRL_OK);
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  sim_urm_config uc = sim_urm_config_make(&s.sim, &d);
  sim_urm *urm = sim_urm_init(&uc, &d, 1);
  sim_urm_train_options o = sim_urm_train_options_make(&s, 1);
  o.max_epochs = 1;
  o.verbose = 0;
  sim_urm_train_log log;
  memset(&log, 0, sizeof log);
  TEST_ASSERT(sim_urm_train(urm, &d, &o, &log) == HSRL_OK);
  sim_urm_train_log_free(&log);
  sim_click_adapters_urm *a = sim_click_adapters_urm_init(urm, 256);
  sim_click_model m = sim_click_adapters_urm_model(a);
  TEST_ASSERT(m.scores != NULL);
  sim_env_config cfg = env_config(32, d.slate_size, d.history_len, 0, 0);
  sim_policy_simple *pol[3] = {sim_policy_simple_random(d.n_items, d.slate_size, 1),
                               sim_policy_simple_popular(&d, d.train_idx, d.n_train, d.slate_size),
                               sim_policy_simple_greedy(&m, 32)};
  sim_eval_summary *sum = hsrl_calloc(3, sizeof *sum);
  for (int j = 0; j < 3; j++) {
    sim_eval_policy ep = eval_policy(pol[j]);
    TEST_ASSERT(sim_eval_seeds(&sum[j], &cfg, &d, &m, &ep, 200, 3, 1) == HSRL_OK);
  }
  sim_eval_print_table(stdout, sum, 3);
  for (int s3 = 0; s3 < 3; s3++)
    TEST_ASSERTF(sum[2].seed[s3].reward_mean > sum[1].seed[s3].reward_mean &&
                     sum[1].seed[s3].reward_mean > sum[0].seed[s3].reward_mean,
                 "seed %d: greedy %.3f popular %.3f random %.3f", s3, sum[2].seed[s3].reward_mean,
                 sum[1].seed[s3].reward_mean, sum[0].seed[s3].reward_mean);
  for (int j = 0; j < 3; j++) sim_policy_simple_free(pol[j]);
  hsrl_free(sum);
  sim_click_adapters_urm_free(a);
  sim_urm_free(urm);
  sim_dataset_free(&d);
}

int main(void) {
  TEST_RUN(test_forced_clicks_k9_table);
  TEST_RUN(test_forced_clicks_k10_closed_form);
  TEST_RUN(test_every_episode_recorded);
  TEST_RUN(test_history_and_transitions);
  TEST_RUN(test_same_seed_same_episodes);
  TEST_RUN(test_no_allocation_per_step);
  TEST_RUN(test_episode_budget_and_pool);
  TEST_RUN(test_config_make_rejects);
  TEST_RUN(test_greedy_paths_agree_with_brute_force);
  TEST_RUN(test_random_and_popular);
  TEST_RUN(test_policies_exclude_history);
  TEST_RUN(test_capped_rankings_match_brute_force);
  TEST_RUN(test_synth_oracle_beats_random);
  TEST_RUN(test_fewer_episodes_than_rows_world);
  TEST_RUN(test_urm_adapter);
  TEST_RUN(test_eval_command);
  TEST_RUN(test_ml1m_policy_order);
  return test_summary();
}
