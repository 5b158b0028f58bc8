/* test_agent_hsrl.c: the HSRL agent (learner/agents/agent_hsrl.h, agent_hsrl_net.h; method.md
 * §6-8) on small random worlds built here (random item and user features, random SIDs with
 * collisions and items outside the live catalog, an index and a trie).
 * Checks: the random-direction gradient check of the whole loss (critic + pg + entropy + bc, A
 * held fixed) on every parameter tensor of actor and critic (level_w included) and on all of them
 * at once, without and with dropout (fixed masks), for the default switches with the SID-embedding
 * and user-state options, and for the no-hierarchy and no-MLC ablations; greedy slates by trie
 * search equal those by catalog scoring; exploration returns distinct live items with the tempered
 * behaviour log-probs; the TD target equals r + gamma (1 - done) V' on a hand-built batch; the MLC
 * weights move away from uniform during training and the targets follow the soft update; the
 * ablation switches change the computation as specified; detaching the critic; the off-policy
 * weights; no allocation in act() and learn() after init; same seed -> same losses; a non-finite
 * loss skips the step; save/load round trip; after a world change (catalog churn) the agent equals
 * one built on the new world.
 * `test_agent_hsrl --bench` times learn() and act() at the reference shapes (not run by ctest;
 * BENCH_P=0 in the environment times it without dropout). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_mlp.h"
#include "learner/agents/agent_hsrl.h"
#include "sim/sim_data.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

/* ---- fixtures ------------------------------------------------------------------------------ */

typedef struct fixture {
  sim_dataset data;
  int64_t N, H, K;
  int L;
  uint16_t *tokens; /* (N+1, L) */
  uint8_t *live;    /* (N+1) */
  int32_t *live_ids;
  int64_t n_live;
  sim_sid_index idx;
  sim_sid_trie trie;
} fixture;

static void fixture_make(fixture *f, int64_t N, int64_t D, int64_t P, int64_t U, int64_t H, int64_t K, int L,
                         const int64_t *vocab, double p_live, uint64_t seed) {
  memset(f, 0, sizeof *f);
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 1);
  f->N = N, f->H = H, f->K = K, f->L = L;
  sim_dataset_alloc(&f->data, N, D, U, P, 1, K, H);
  for (int64_t i = D; i < (N + 1) * D; i++) f->data.item_features[i] = (float)hsrl_rng_normal(&r);
  for (int64_t i = P; i < (U + 1) * P; i++) f->data.user_features[i] = (float)hsrl_rng_normal(&r);
  f->tokens = hsrl_calloc((size_t)((N + 1) * L), sizeof(uint16_t));
  f->live = hsrl_calloc((size_t)(N + 1), 1);
  f->live_ids = hsrl_calloc((size_t)N, sizeof(int32_t));
  for (int64_t i = 1; i <= N; i++) {
    for (int l = 0; l < L; l++) f->tokens[i * L + l] = (uint16_t)hsrl_rng_below(&r, (uint64_t)vocab[l]);
    f->live[i] = i <= K || hsrl_rng_uniform_double(&r) < p_live;
    if (f->live[i]) f->live_ids[f->n_live++] = (int32_t)i;
  }
  HSRL_CHECK(sim_sid_index_init(&f->idx, L, vocab, N, f->tokens, f->live, 0) == HSRL_OK);
  sim_sid_trie_build(&f->trie, &f->idx);
}

static void fixture_free(fixture *f) {
  sim_sid_trie_free(&f->trie);
  sim_sid_index_free(&f->idx);
  sim_dataset_free(&f->data);
  hsrl_free(f->tokens);
  hsrl_free(f->live);
  hsrl_free(f->live_ids);
}

/* The small world of most tests: 60 items (about 75% live), D 5, P 3, H 7, K 3, V (5, 4, 3). */
static void fixture_small(fixture *f, uint64_t seed) {
  const int64_t vocab[3] = {5, 4, 3};
  fixture_make(f, 60, 5, 3, 9, 7, 3, 3, vocab, 0.75, seed);
}

typedef struct batch_buf {
  agent_batch b;
  int32_t *users, *hist, *slate, *next_users, *next_hist;
  uint16_t *tokens;
  uint8_t *clicks, *done;
  float *reward, *beh;
} batch_buf;

/* Random histories (row 0 empty, then random lengths 0..H, left-padded), slates of K distinct live
 * items (row 1's last slot empty when B > 1), clicks, rewards, done flags and next histories. */
static void batch_make(batch_buf *bb, const fixture *f, int64_t B, hsrl_rng *r) {
  const int64_t H = f->H, K = f->K;
  const int L = f->L;
  memset(bb, 0, sizeof *bb);
  bb->users = hsrl_calloc((size_t)B, sizeof(int32_t));
  bb->next_users = hsrl_calloc((size_t)B, sizeof(int32_t));
  bb->hist = hsrl_calloc((size_t)(B * H), sizeof(int32_t));
  bb->next_hist = hsrl_calloc((size_t)(B * H), sizeof(int32_t));
  bb->slate = hsrl_calloc((size_t)(B * K), sizeof(int32_t));
  bb->tokens = hsrl_calloc((size_t)(B * K * L), sizeof(uint16_t));
  bb->clicks = hsrl_calloc((size_t)(B * K), 1);
  bb->done = hsrl_calloc((size_t)B, 1);
  bb->reward = hsrl_calloc((size_t)B, sizeof(float));
  bb->beh = hsrl_calloc((size_t)(B * K * L), sizeof(float));
  for (int64_t b = 0; b < B; b++) {
    bb->users[b] = 1 + (int32_t)hsrl_rng_below(r, (uint64_t)f->data.n_users);
    bb->next_users[b] = bb->users[b];
    int64_t len = b == 0 ? 0 : (int64_t)hsrl_rng_below(r, (uint64_t)H + 1);
    for (int64_t t = H - len; t < H; t++) bb->hist[b * H + t] = 1 + (int32_t)hsrl_rng_below(r, (uint64_t)f->N);
    int64_t n_slot = (b == 1 && K > 1) ? K - 1 : K, n_click = 0;
    for (int64_t k = 0; k < n_slot; k++) {
      int32_t item;
      int dup;
      do {
        item = f->live_ids[hsrl_rng_below(r, (uint64_t)f->n_live)];
        dup = 0;
        for (int64_t j = 0; j < k; j++) dup |= bb->slate[b * K + j] == item;
      } while (dup);
      bb->slate[b * K + k] = item;
      for (int l = 0; l < L; l++) bb->tokens[(b * K + k) * L + l] = f->tokens[(int64_t)item * L + l];
      bb->clicks[b * K + k] = (uint8_t)(hsrl_rng_uniform(r) < 0.4f);
      n_click += bb->clicks[b * K + k];
    }
    bb->reward[b] = (float)(((double)n_click - 0.1 * (double)(K - n_click)) / (double)K);
    bb->done[b] = (uint8_t)(hsrl_rng_uniform(r) < 0.3f);
    /* next history: the last H of (history ++ clicked items) */
    int32_t seq[256];
    int64_t n = 0;
    for (int64_t t = 0; t < H; t++) seq[n++] = bb->hist[b * H + t];
    for (int64_t k = 0; k < K; k++)
      if (bb->clicks[b * K + k]) seq[n++] = bb->slate[b * K + k];
    memcpy(bb->next_hist + b * H, seq + n - H, (size_t)H * sizeof(int32_t));
    for (int64_t i = 0; i < K * L; i++) bb->beh[b * K * L + i] = -(float)hsrl_rng_uniform(r);
  }
  agent_batch *a = &bb->b;
  a->B = B, a->users = bb->users, a->history = bb->hist, a->slate = bb->slate, a->tokens = bb->tokens;
  a->clicks = bb->clicks, a->reward = bb->reward, a->done = bb->done, a->next_users = bb->next_users;
  a->next_history = bb->next_hist, a->behaviour_logp = NULL;
}

static void batch_free(batch_buf *bb) {
  hsrl_free(bb->users), hsrl_free(bb->next_users), hsrl_free(bb->hist), hsrl_free(bb->next_hist);
  hsrl_free(bb->slate), hsrl_free(bb->tokens), hsrl_free(bb->clicks), hsrl_free(bb->done);
  hsrl_free(bb->reward), hsrl_free(bb->beh);
}

/* A small agent config: d 16, 2 heads, FFN 24, 2 layers, critic 32,16. */
static agent_hsrl_config small_config(const fixture *f, int64_t max_batch, uint64_t seed) {
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  s.agent.d = 16, s.agent.heads = 2, s.agent.ffn = 24, s.agent.layers = 2;
  snprintf(s.agent.critic_hidden, sizeof s.agent.critic_hidden, "32,16");
  s.data.history_len = f->H, s.data.slate_size = f->K, s.run.seed = (int64_t)seed;
  agent_hsrl_config c;
  agent_hsrl_config_defaults(&c, &s, max_batch);
  return c;
}

static agent *make_agent(const agent_hsrl_config *c, const fixture *f) {
  agent_hsrl_world w = agent_hsrl_world_of(&f->data, &f->idx, &f->trie);
  agent *a = NULL;
  hsrl_status st = agent_hsrl_init(&a, c, &w);
  HSRL_CHECKF(st == HSRL_OK, "agent_hsrl_init: %s", hsrl_err_message());
  return a;
}

static float *table_values(agent *a, agent_hsrl_table t) { return nn_params_values(agent_hsrl_params(a, t)); }

/* ---- the whole-loss gradient check -------------------------------------------------------- */

#define GC_SIGNAL 1e-4 /* per-tensor steps move the loss by about this much */
#define GC_H_ALL 3e-5  /* step of the all-tensors check */
#define GC_TOL_TENSOR 3e-2
#define GC_TOL_ALL 5e-3

/* |num - ana| relative to the larger of the two, or to GC_NOISE when both are smaller: the float32
 * forward leaves about 3e-8 of noise in each loss evaluation, so directional derivatives below a
 * few 1e-6 are compared absolutely. */
#define GC_NOISE 2e-6
static double direction_error(const gradcheck_result *r) {
  const double num = r->direction_numeric, ana = r->direction_analytic;
  return fabs(num - ana) / fmax(fmax(fabs(num), fabs(ana)), GC_NOISE);
}

/* The median of the direction errors over three random directions (seeds seed .. seed + 2, step
 * h): a rare ReLU kink between x - delta and x + delta, or float noise, spoils one direction; a
 * wrong gradient spoils all of them. what (or NULL) labels each direction's printed line. */
static double median_direction_error(gradcheck_case *gc, uint64_t seed, double h, const char *what) {
  double e[3];
  for (int k = 0; k < 3; k++) {
    gradcheck_result res;
    if (what) printf("  %s:", what);
    gradcheck_direction(gc, seed + (uint64_t)k, h, 1.0, &res);
    e[k] = direction_error(&res);
  }
  return fmax(fmin(e[0], e[1]), fmin(fmax(e[0], e[1]), e[2]));
}

typedef struct loss_ctx {
  agent *a;
  const agent_batch *b;
  const float *y;
  float *adv; /* fixed at the base point */
  int train;
  uint64_t key;
  double base[4];
  float out[4], dout[4];
} loss_ctx;

static void terms_weighted(const agent_hsrl_terms *t, const agent_hsrl_loss_config *lc, double w[4]) {
  w[0] = t->critic, w[1] = t->pg, w[2] = (double)lc->lambda_h * t->negent, w[3] = (double)lc->lambda_bc * t->bc;
}

static void loss_eval(loss_ctx *c, const float *scale) {
  agent_hsrl_loss_config lc = *agent_hsrl_loss_config_of(c->a);
  memcpy(lc.scale, scale, sizeof lc.scale);
  agent_hsrl_terms t;
  agent_hsrl_net_loss(agent_hsrl_net_of(c->a), agent_hsrl_params(c->a, AGENT_HSRL_ACTOR),
                      agent_hsrl_params(c->a, AGENT_HSRL_CRITIC), c->b, c->y,
                      c->adv, NULL, &lc, c->train, c->key, &t);
  double w[4];
  terms_weighted(&t, &lc, w);
  for (int i = 0; i < 4; i++) c->out[i] = (float)(w[i] - c->base[i]); /* offsets keep float precision */
}

static void loss_forward(void *ctx) {
  const float ones[4] = {1, 1, 1, 1};
  loss_eval(ctx, ones);
}
static void loss_backward(void *ctx) {
  loss_ctx *c = ctx;
  loss_eval(c, c->dout); /* grads = sum_i dout_i d term_i */
}

/* Direction checks on every tensor of actor and critic alone (median error of three directions),
 * then on both tables at once (*err_all). Returns the worst per-tensor error. */
static double gradcheck_agent(agent *a, const agent_batch *b, const float *y, int train, uint64_t seed,
                              const char *label, double *err_all) {
  loss_ctx c;
  memset(&c, 0, sizeof c);
  c.a = a, c.b = b, c.y = y, c.train = train, c.key = 12345;
  c.adv = hsrl_calloc((size_t)b->B, sizeof(float));
  /* base point: A and the term offsets */
  {
    agent_hsrl_loss_config lc = *agent_hsrl_loss_config_of(a);
    agent_hsrl_terms t;
    agent_hsrl_net_loss(agent_hsrl_net_of(a), agent_hsrl_params(a, AGENT_HSRL_ACTOR),
                        agent_hsrl_params(a, AGENT_HSRL_CRITIC), b, y, NULL, c.adv, &lc,
                        train, c.key, &t);
    terms_weighted(&t, &lc, c.base);
  }
  double worst = 0.0;
  const char *worst_name = "";
  nn_params *tabs[2] = {agent_hsrl_params(a, AGENT_HSRL_ACTOR), agent_hsrl_params(a, AGENT_HSRL_CRITIC)};
  /* the gradient of the sum of the terms, to size each tensor's step */
  float *gall[2];
  memcpy(c.dout, (const float[4]){1, 1, 1, 1}, sizeof c.dout);
  loss_backward(&c);
  for (int ti = 0; ti < 2; ti++) {
    gall[ti] = hsrl_malloc((size_t)nn_params_size(tabs[ti]) * sizeof(float));
    memcpy(gall[ti], nn_params_grads(tabs[ti]), (size_t)nn_params_size(tabs[ti]) * sizeof(float));
  }
  int64_t n_checked = 0;
  for (int ti = 0; ti < 2; ti++) {
    nn_params *p = tabs[ti];
    for (int64_t e = 0; e < nn_params_count(p); e++) {
      const nn_param_entry *en = nn_params_entry(p, e);
      gradcheck_case gc;
      memset(&gc, 0, sizeof gc);
      gc.ctx = &c, gc.forward = loss_forward, gc.backward = loss_backward;
      gc.out = c.out, gc.dout = c.dout, gc.n_out = 4;
      gradcheck_add(&gc, en->name, nn_params_values(p) + en->offset, nn_params_grads(p) + en->offset, en->n);
      /* a step that moves the loss by about 1e-4: above float noise, small for the ReLU kinks */
      double g2 = 0.0;
      for (int64_t i = 0; i < en->n; i++) g2 += (double)gall[ti][en->offset + i] * (double)gall[ti][en->offset + i];
      double h = fmin(1e-3, fmax(GC_H_ALL, GC_SIGNAL / (sqrt(g2) + 1e-12)));
      char what[160];
      snprintf(what, sizeof what, "%s %s (h %.1e)", label, en->name, h);
      double err = median_direction_error(&gc, seed + (uint64_t)(ti * 1000 + e) * 3, h, what);
      if (err > worst) worst = err, worst_name = en->name;
      n_checked++;
    }
  }
  gradcheck_case gc;
  memset(&gc, 0, sizeof gc);
  gc.ctx = &c, gc.forward = loss_forward, gc.backward = loss_backward;
  gc.out = c.out, gc.dout = c.dout, gc.n_out = 4;
  for (int ti = 0; ti < 2; ti++)
    gradcheck_add(&gc, ti ? "critic(all)" : "actor(all)", nn_params_values(tabs[ti]), nn_params_grads(tabs[ti]),
                  nn_params_size(tabs[ti]));
  /* the median of three directions, as per tensor: one direction whose derivative is near the
   * float noise (GC_NOISE) fails by chance on some CPUs' rounding (seen on an AMD EPYC: 0.0076) */
  char what_all[96];
  snprintf(what_all, sizeof what_all, "%s all tensors at once", label);
  *err_all = median_direction_error(&gc, seed + 999999, GC_H_ALL, what_all);
  printf("%s: %lld tensors, worst direction error %.3g (%s); all at once %.3g\n", label, (long long)n_checked, worst,
         worst_name, *err_all);
  hsrl_free(c.adv);
  hsrl_free(gall[0]), hsrl_free(gall[1]);
  return worst;
}

static double gradcheck_variant(int hierarchy, int mlc, int options, int train, uint64_t seed, const char *label,
                                double *err_all) {
  fixture f;
  fixture_small(&f, seed);
  agent_hsrl_config cfg = small_config(&f, 8, seed);
  cfg.s.hierarchy = hierarchy, cfg.s.mlc = mlc;
  cfg.s.sid_embedding = options, cfg.s.user_state = options;
  if (options) snprintf(cfg.s.credit, sizeof cfg.s.credit, "click"); /* per-slot pg weights */
  cfg.s.dropout = train ? 0.2 : 0.0;
  cfg.s.critic_dropout = train ? 0.2 : 0.0;
  agent *a = make_agent(&cfg, &f);
  /* level weights away from 0 so that their gradient is not special */
  float *lw = table_values(a, AGENT_HSRL_CRITIC) + agent_hsrl_net_of(a)->cl.level_w;
  for (int j = 0; j <= f.L; j++) lw[j] = 0.3f * (float)j - 0.4f;
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 2);
  batch_buf bb;
  batch_make(&bb, &f, 6, &r);
  float y[6];
  for (int i = 0; i < 6; i++) y[i] = (float)(hsrl_rng_normal(&r) * 0.5);
  double worst = gradcheck_agent(a, &bb.b, y, train, seed, label, err_all);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
  return worst;
}

static void test_gradcheck_whole_loss(void) {
  static const struct { int hierarchy, mlc, options, train; const char *label; } v[4] = {
      {1, 1, 1, 0, "full+options"}, {1, 1, 0, 1, "full+dropout"}, {0, 1, 0, 0, "no-hierarchy"},
      {1, 0, 0, 0, "no-mlc"}};
  for (int i = 0; i < 4; i++) {
    double all = 0.0;
    double worst = gradcheck_variant(v[i].hierarchy, v[i].mlc, v[i].options, v[i].train, 11 + (uint64_t)i,
                                     v[i].label, &all);
    TEST_ASSERTF(worst < GC_TOL_TENSOR, "%s: worst per-tensor error %.3g", v[i].label, worst);
    TEST_ASSERTF(all < GC_TOL_ALL, "%s: all-tensors error %.3g", v[i].label, all);
  }
}

/* The checker must reject a wrong gradient: break one (scale the pg term's gradient only). */
static void test_gradcheck_rejects_wrong_gradient(void) {
  fixture f;
  fixture_small(&f, 21);
  agent_hsrl_config cfg = small_config(&f, 8, 21);
  cfg.s.dropout = 0.0, cfg.s.critic_dropout = 0.0;
  agent *a = make_agent(&cfg, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 21, 2);
  batch_buf bb;
  batch_make(&bb, &f, 6, &r);
  float y[6];
  for (int i = 0; i < 6; i++) y[i] = (float)(hsrl_rng_normal(&r) * 0.5);
  loss_ctx c;
  memset(&c, 0, sizeof c);
  c.a = a, c.b = &bb.b, c.y = y, c.key = 1;
  c.adv = hsrl_calloc(6, sizeof(float));
  for (int i = 0; i < 6; i++) c.adv[i] = 0.7f;
  gradcheck_case gc;
  memset(&gc, 0, sizeof gc);
  gc.ctx = &c, gc.forward = loss_forward, gc.backward = loss_backward;
  gc.out = c.out, gc.dout = c.dout, gc.n_out = 4;
  nn_params *p = agent_hsrl_params(a, AGENT_HSRL_ACTOR);
  gradcheck_add(&gc, "actor", nn_params_values(p), nn_params_grads(p), nn_params_size(p));
  /* the correct gradient passes: the median over three directions, as in gradcheck_variant, within
   * the per-tensor tolerance (one direction alone measured 0.002 to 0.009 here, depending on the
   * direction and on which sgemm kernel ran: ReLU kinks between x - delta and x + delta in this
   * small fixture; the wrong gradient below is off by order 1) */
  const double median = median_direction_error(&gc, 5, GC_H_ALL, NULL);
  TEST_ASSERTF(median < GC_TOL_TENSOR, "the correct gradient failed: median direction error %.3g", median);
  /* a wrong gradient: the analytic one with A = -0.7, the finite difference with A = +0.7 */
  float *adv_true = c.adv;
  float adv_wrong[6];
  for (int i = 0; i < 6; i++) adv_wrong[i] = -0.7f;
  c.adv = adv_wrong;
  loss_eval(&c, (const float[4]){0, 1, 0, 0}); /* grads of pg with the wrong A */
  float *g = nn_params_grads(p), *v = nn_params_values(p);
  const int64_t n = nn_params_size(p);
  hsrl_rng_init(&r, 77, 0);
  float *delta = hsrl_malloc((size_t)n * sizeof(float)), *keep = hsrl_malloc((size_t)n * sizeof(float));
  double ana = 0.0;
  memcpy(keep, v, (size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) delta[i] = (float)(GC_H_ALL * hsrl_rng_normal(&r)), ana += (double)g[i] * (double)delta[i];
  c.adv = adv_true;
  for (int64_t i = 0; i < n; i++) v[i] = keep[i] + delta[i];
  loss_forward(&c);
  double fp = c.out[1];
  for (int64_t i = 0; i < n; i++) v[i] = keep[i] - delta[i];
  loss_forward(&c);
  double fm = c.out[1];
  memcpy(v, keep, (size_t)n * sizeof(float));
  double num = (fp - fm) / 2.0;
  TEST_ASSERTF(fabs(num - ana) > 0.5 * fmax(fabs(num), fabs(ana)), "a wrong gradient passed: num %g ana %g", num,
               ana);
  hsrl_free(delta), hsrl_free(keep), hsrl_free(adv_true);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
}

/* ---- acting ------------------------------------------------------------------------------ */

static void random_histories(int32_t *hist, const fixture *f, int64_t B, hsrl_rng *r) {
  for (int64_t b = 0; b < B; b++) {
    int64_t len = b == 0 ? 0 : (int64_t)hsrl_rng_below(r, (uint64_t)f->H + 1);
    for (int64_t t = 0; t < f->H; t++)
      hist[b * f->H + t] = t >= f->H - len ? 1 + (int32_t)hsrl_rng_below(r, (uint64_t)f->N) : 0;
  }
}

static void test_trie_equals_catalog(void) {
  /* collisions: 300 items on 4*3*3 = 36 SIDs; about 70% live */
  const int64_t vocab[3] = {4, 3, 3};
  fixture f;
  fixture_make(&f, 300, 6, 2, 5, 9, 5, 3, vocab, 0.7, 31);
  agent_hsrl_config c1 = small_config(&f, 40, 31), c2 = c1;
  snprintf(c2.s.decoder, sizeof c2.s.decoder, "catalog");
  agent *a = make_agent(&c1, &f), *b = make_agent(&c2, &f);
  const int64_t B = 40, K = f.K, L = f.L;
  int32_t hist[40 * 9], s1[40 * 5], s2[40 * 5];
  uint16_t t1[40 * 5 * 3], t2[40 * 5 * 3];
  float l1[40 * 5 * 3], l2[40 * 5 * 3];
  hsrl_rng r;
  hsrl_rng_init(&r, 31, 3);
  int64_t n_collide_slates = 0;
  for (int rep = 0; rep < 5; rep++) {
    random_histories(hist, &f, B, &r);
    agent_act_out o1 = {s1, t1, l1}, o2 = {s2, t2, l2};
    agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o1);
    agent_act(b, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o2);
    TEST_ASSERT(memcmp(s1, s2, sizeof s1) == 0);
    TEST_ASSERT(memcmp(t1, t2, sizeof t1) == 0);
    TEST_ASSERT(memcmp(l1, l2, sizeof l1) == 0);
    /* the slate: K distinct live items, their SIDs, logp = log pi at their tokens, scores non-increasing */
    agent_hsrl_net *n = agent_hsrl_net_of(a);
    agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o1); /* refresh the net's buffers */
    for (int64_t i = 0; i < B; i++) {
      double prev = INFINITY;
      for (int64_t k = 0; k < K; k++) {
        int32_t it = s1[i * K + k];
        TEST_ASSERT(it >= 1 && it <= f.N && f.live[it]);
        for (int64_t j = 0; j < k; j++) TEST_ASSERT(s1[i * K + j] != it);
        double sc = 0.0;
        for (int l = 0; l < L; l++) {
          TEST_ASSERT(t1[(i * K + k) * L + l] == f.tokens[(int64_t)it * L + l]);
          float want = n->logp[B * n->level_off[l] + i * vocab[l] + f.tokens[(int64_t)it * L + l]];
          TEST_ASSERT(l1[(i * K + k) * L + l] == want);
          sc += (double)want;
        }
        TEST_ASSERT(sc <= prev);
        if (sc == prev) n_collide_slates++;
        prev = sc;
      }
    }
    /* the brute-force check of optimality: no live item outside the slate scores above its last */
    for (int64_t i = 0; i < B; i++) {
      double last = 0.0;
      for (int l = 0; l < L; l++) last += (double)l1[(i * K + K - 1) * L + l];
      for (int64_t j = 0; j < f.n_live; j++) {
        int32_t it = f.live_ids[j];
        int in = 0;
        for (int64_t k = 0; k < K; k++) in |= s1[i * K + k] == it;
        if (in) continue;
        double sc = 0.0;
        for (int l = 0; l < L; l++)
          sc += (double)n->logp[B * n->level_off[l] + i * vocab[l] + f.tokens[(int64_t)it * L + l]];
        TEST_ASSERTF(sc <= last, "state %lld: item %d scores %g above the slate's last %g", (long long)i, (int)it, sc,
                     last);
      }
    }
    /* next repetition: other parameters */
    hsrl_rng pr;
    hsrl_rng_init(&pr, 100 + (uint64_t)rep, 0);
    float *va = table_values(a, AGENT_HSRL_ACTOR), *vb = table_values(b, AGENT_HSRL_ACTOR);
    const int64_t np = nn_params_size(agent_hsrl_params(a, AGENT_HSRL_ACTOR));
    for (int64_t i = 0; i < np; i++) va[i] = vb[i] = va[i] * (1.0f + 0.3f * (float)hsrl_rng_normal(&pr));
  }
  printf("  slates with tied (colliding) items: %lld\n", (long long)n_collide_slates);
  TEST_ASSERT(n_collide_slates > 0);
  agent_free(a);
  agent_free(b);
  fixture_free(&f);
}

/* exclude_history: greedy (trie and catalog) and exploring slates never hold a history item, and
 * trie and catalog greedy still agree. */
static void test_exclude_history(void) {
  const int64_t vocab[3] = {4, 3, 3};
  fixture f;
  fixture_make(&f, 300, 6, 2, 5, 9, 5, 3, vocab, 0.7, 37);
  agent_hsrl_config c0 = small_config(&f, 40, 37), c1 = c0, c2 = c0;
  c1.exclude_history = c2.exclude_history = 1;
  snprintf(c2.s.decoder, sizeof c2.s.decoder, "catalog");
  agent *a = make_agent(&c1, &f), *b = make_agent(&c2, &f), *plain = make_agent(&c0, &f);
  const int64_t B = 40, K = f.K, H = f.H;
  int32_t hist[40 * 9], s1[40 * 5], s2[40 * 5];
  hsrl_rng r;
  hsrl_rng_init(&r, 37, 3);
  int64_t n_would_repeat = 0;
  for (int rep = 0; rep < 4; rep++) {
    random_histories(hist, &f, B, &r);
    agent_act_out o1 = {s1, NULL, NULL}, o2 = {s2, NULL, NULL};
    agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o1);
    agent_act(b, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o2);
    TEST_ASSERT(memcmp(s1, s2, sizeof s1) == 0);
    /* seed the next round's histories with this slate, so exclusion has something to do */
    for (int64_t i = 0; i < B; i++)
      for (int64_t k = 0; k < K && k < H; k++) hist[i * H + H - 1 - k] = s1[i * K + k];
    for (int mode = 0; mode < 3; mode++) {
      if (mode == 0) agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o1);
      if (mode == 1) agent_act(b, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o1);
      if (mode == 2) agent_act(a, B, NULL, hist, AGENT_ACT_EXPLORE, &r, &o1);
      for (int64_t i = 0; i < B * K; i++) {
        TEST_ASSERT(s1[i] >= 1 && f.live[s1[i]]);
        for (int64_t j = 0; j < H; j++) {
          TEST_ASSERTF(s1[i] != hist[(i / K) * H + j], "mode %d: item %d repeats the history", mode, s1[i]);
        }
      }
    }
    /* without exclusion the same states do get history items back (so the test has teeth) */
    agent_act(plain, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o1);
    for (int64_t i = 0; i < B * K; i++)
      for (int64_t j = 0; j < H; j++) n_would_repeat += s1[i] == hist[(i / K) * H + j];
  }
  printf("  slots that would repeat a history item without exclusion: %lld\n", (long long)n_would_repeat);
  TEST_ASSERT(n_would_repeat > 0);
  agent_free(plain);
  agent_free(a);
  agent_free(b);
  fixture_free(&f);
}

static void test_explore(void) {
  fixture f;
  fixture_small(&f, 41);
  agent_hsrl_config c = small_config(&f, 16, 41);
  c.explore_temp = 2.0;
  c.s.epsilon = 0.1;
  const char *decoders[2] = {"trie", "catalog"};
  for (int di = 0; di < 2; di++) {
    snprintf(c.s.decoder, sizeof c.s.decoder, "%s", decoders[di]);
    agent *a = make_agent(&c, &f);
    const int64_t B = 16, K = f.K, L = f.L;
    int32_t hist[16 * 7], s[16 * 3], s2[16 * 3];
    uint16_t t[16 * 3 * 3];
    float lp[16 * 3 * 3];
    hsrl_rng r;
    hsrl_rng_init(&r, 41, 4);
    random_histories(hist, &f, B, &r);
    agent_act_out o = {s, t, lp};
    hsrl_rng ar;
    hsrl_rng_init(&ar, 9, 0);
    agent_act(a, B, NULL, hist, AGENT_ACT_EXPLORE, &ar, &o);
    /* the tempered log-probs: log_softmax(logits / (tau T)) at the tokens */
    agent_hsrl_net *n = agent_hsrl_net_of(a);
    for (int64_t i = 0; i < B; i++)
      for (int64_t k = 0; k < K; k++) {
        int32_t it = s[i * K + k];
        TEST_ASSERT(it >= 1 && f.live[it]);
        for (int64_t j = 0; j < k; j++) TEST_ASSERT(s[i * K + j] != it);
        for (int l = 0; l < L; l++) {
          const int64_t V = n->cfg.vocab[l];
          const float *lg = n->logits + B * n->level_off[l] + i * V;
          double m = -INFINITY, z = 0.0;
          for (int64_t v = 0; v < V; v++) m = fmax(m, (double)lg[v] / 2.0);
          for (int64_t v = 0; v < V; v++) z += exp((double)lg[v] / 2.0 - m);
          uint16_t tok = f.tokens[(int64_t)it * L + l];
          TEST_ASSERT(t[(i * K + k) * L + l] == tok);
          TEST_NEAR(lp[(i * K + k) * L + l], (double)lg[tok] / 2.0 - m - log(z), 1e-5);
        }
      }
    /* same stream -> same slates; another stream -> (almost surely) different ones */
    hsrl_rng_init(&ar, 9, 0);
    agent_act_out o2 = {s2, NULL, NULL};
    agent_act(a, B, NULL, hist, AGENT_ACT_EXPLORE, &ar, &o2);
    TEST_ASSERT(memcmp(s, s2, sizeof s) == 0);
    hsrl_rng_init(&ar, 10, 0);
    agent_act(a, B, NULL, hist, AGENT_ACT_EXPLORE, &ar, &o2);
    TEST_ASSERT(memcmp(s, s2, sizeof s) != 0);
    /* candidate lists: only candidates are chosen */
    int32_t cand[16 * 5];
    for (int64_t i = 0; i < B; i++)
      for (int64_t m = 0; m < 5; m++) cand[i * 5 + m] = f.live_ids[(i + m * 7) % f.n_live];
    agent_hsrl_act_candidates(a, B, NULL, hist, cand, 5, AGENT_ACT_GREEDY, NULL, &o2);
    for (int64_t i = 0; i < B; i++)
      for (int64_t k = 0; k < K; k++) {
        int in = 0;
        for (int64_t m = 0; m < 5; m++) in |= cand[i * 5 + m] == s2[i * K + k];
        TEST_ASSERT(in);
      }
    agent_free(a);
  }
  fixture_free(&f);
}

/* ---- learning ---------------------------------------------------------------------------- */

static void test_td_target(void) {
  fixture f;
  fixture_small(&f, 51);
  agent_hsrl_config c = small_config(&f, 8, 51);
  c.s.gamma = 0.9;
  agent *a = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 51, 5);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  for (int i = 0; i < 8; i++) bb.done[i] = (uint8_t)(i % 3 == 0), bb.reward[i] = (float)i * 0.25f - 0.5f;
  /* the target critic's output layer: w = 0, b = 1.5, so V' = 1.5 on every state */
  agent_hsrl_net *n = agent_hsrl_net_of(a);
  nn_mlp_layer out = nn_mlp_layer_at(&n->cfg.critic, n->cfg.critic.n_hidden);
  float *ct = table_values(a, AGENT_HSRL_CRITIC_TARGET) + n->cl.mlp;
  for (int64_t i = 0; i < out.in_dim; i++) ct[out.w + i] = 0.0f;
  ct[out.b] = 1.5f;
  float *co = table_values(a, AGENT_HSRL_CRITIC) + n->cl.mlp; /* the online critic must not matter */
  for (int64_t i = 0; i < out.in_dim; i++) co[out.w + i] = 0.0f;
  co[out.b] = -7.0f;
  float y[8];
  agent_hsrl_td_target(a, &bb.b, y);
  for (int i = 0; i < 8; i++) {
    double want = (double)bb.reward[i] + (bb.done[i] ? 0.0 : 0.9 * 1.5);
    TEST_NEAR(y[i], want, 1e-6);
  }
  /* with random target networks: y = r + gamma (1 - done) V_target(s'), V' from the target nets */
  agent_free(a);
  a = make_agent(&c, &f);
  float *at = table_values(a, AGENT_HSRL_ACTOR_TARGET);
  const int64_t np = nn_params_size(agent_hsrl_params(a, AGENT_HSRL_ACTOR));
  for (int64_t i = 0; i < np; i++) at[i] *= 0.9f; /* targets differ from the online nets */
  float vt[8], vo[8];
  agent_hsrl_values(a, 8, bb.next_users, bb.next_hist, 1, vt);
  agent_hsrl_values(a, 8, bb.next_users, bb.next_hist, 0, vo);
  agent_hsrl_td_target(a, &bb.b, y);
  int differ = 0;
  for (int i = 0; i < 8; i++) {
    double want = (double)bb.reward[i] + (bb.done[i] ? 0.0 : 0.9 * (double)vt[i]);
    TEST_NEAR(y[i], want, 1e-6);
    differ |= fabsf(vt[i] - vo[i]) > 1e-4f;
  }
  TEST_ASSERT(differ);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
}

static void test_learn_mlc_and_targets(void) {
  fixture f;
  fixture_small(&f, 61);
  agent_hsrl_config c = small_config(&f, 16, 61);
  c.s.critic_lr = 1e-2;
  agent *a = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 61, 6);
  batch_buf bb;
  batch_make(&bb, &f, 16, &r);
  nn_params *ac = agent_hsrl_params(a, AGENT_HSRL_ACTOR);
  const int64_t na = nn_params_size(ac);
  float *prev_t = hsrl_malloc((size_t)na * sizeof(float));
  agent_stats st;
  double max_dev = 0.0;
  for (int it = 0; it < 20; it++) {
    memcpy(prev_t, table_values(a, AGENT_HSRL_ACTOR_TARGET), (size_t)na * sizeof(float));
    agent_learn(a, &bb.b, &st);
    TEST_ASSERT(isfinite(st.critic_loss) && isfinite(st.actor_loss) && isfinite(st.grad_norm));
    TEST_ASSERT(st.n_levels == f.L);
    double s = 0.0;
    for (int j = 0; j <= f.L; j++) s += st.level_weight[j], max_dev = fmax(max_dev, fabs(st.level_weight[j] - 0.25));
    TEST_NEAR(s, 1.0, 1e-9);
    /* soft update: target = (1 - tau) target_prev + tau online */
    const float *t = table_values(a, AGENT_HSRL_ACTOR_TARGET), *o = table_values(a, AGENT_HSRL_ACTOR);
    for (int64_t i = 0; i < na; i += 7) TEST_NEAR(t[i], 0.99 * (double)prev_t[i] + 0.01 * (double)o[i], 1e-6);
  }
  printf("  after 20 updates: softmax(w) = %.4f %.4f %.4f %.4f (max |w - 1/4| %.4f); critic loss %.4f\n",
         st.level_weight[0], st.level_weight[1], st.level_weight[2], st.level_weight[3], max_dev, st.critic_loss);
  TEST_ASSERTF(max_dev > 1e-3, "the level weights did not move: %g", max_dev);
  TEST_ASSERT(agent_hsrl_n_updates(a) == 20);
  hsrl_free(prev_t);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
}

static void test_critic_loss_decreases(void) {
  fixture f;
  fixture_small(&f, 62);
  agent_hsrl_config c = small_config(&f, 16, 62);
  c.s.dropout = 0.0, c.s.critic_dropout = 0.0;
  agent *a = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 62, 6);
  batch_buf bb;
  batch_make(&bb, &f, 16, &r);
  for (int i = 0; i < 16; i++) bb.done[i] = 1; /* y = r: a fixed regression target */
  agent_stats st;
  agent_learn(a, &bb.b, &st);
  double first = st.critic_loss;
  for (int it = 0; it < 60; it++) agent_learn(a, &bb.b, &st);
  printf("  critic loss on a fixed batch: %.4f -> %.4f\n", first, st.critic_loss);
  TEST_ASSERT(st.critic_loss < 0.5 * first);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
}

/* logits_l = W_l c_in + b_l in double, compared to the network's. */
static double head_error(agent *a, int l, const float *cin, int64_t B) {
  agent_hsrl_net *n = agent_hsrl_net_of(a);
  const float *P = table_values(a, AGENT_HSRL_ACTOR);
  const int64_t V = n->cfg.vocab[l], d = n->cfg.enc.d;
  double worst = 0.0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t v = 0; v < V; v++) {
      double s = (double)P[n->al.head_b[l] + v];
      for (int64_t j = 0; j < d; j++) s += (double)P[n->al.head_w[l] + v * d + j] * (double)cin[b * d + j];
      worst = fmax(worst, fabs(s - (double)n->logits[B * n->level_off[l] + b * V + v]));
    }
  return worst;
}

static void test_ablation_switches(void) {
  fixture f;
  fixture_small(&f, 71);
  const int64_t B = 6, d = 16;
  int32_t hist[6 * 7];
  hsrl_rng r;
  hsrl_rng_init(&r, 71, 7);
  random_histories(hist, &f, B, &r);

  /* hierarchy: level l reads c_l = LN_{l-1}(c_{l-1} - pi_{l-1} E_{l-1}) (recomputed here) */
  agent_hsrl_config c = small_config(&f, 8, 71);
  agent *a = make_agent(&c, &f);
  agent_act_out o;
  int32_t slate[6 * 3];
  o.slate = slate, o.tokens = NULL, o.logp = NULL;
  agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o);
  agent_hsrl_net *n = agent_hsrl_net_of(a);
  const float *P = table_values(a, AGENT_HSRL_ACTOR);
  float c_prev[6 * 16], c_next[6 * 16], res[6 * 16], mean[6], rstd[6];
  memcpy(c_prev, n->ctx, sizeof c_prev);
  TEST_ASSERT(head_error(a, 0, c_prev, B) < 1e-5);
  for (int l = 1; l < f.L; l++) {
    const int64_t V = n->cfg.vocab[l - 1];
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < d; j++) {
        double e = 0.0;
        for (int64_t v = 0; v < V; v++)
          e += (double)n->pi[B * n->level_off[l - 1] + b * V + v] * (double)P[n->al.tok_emb[l - 1] + v * d + j];
        res[b * d + j] = (float)((double)c_prev[b * d + j] - e);
      }
    nn_layernorm_forward(c_next, mean, rstd, res, P + n->al.res_g[l - 1], P + n->al.res_b[l - 1], B, d);
    TEST_ASSERT(test_max_scaled_diff(c_next, n->ctx + l * B * d, B * d, 1e-5, 1e-4) <= 1.0);
    TEST_ASSERT(head_error(a, l, c_next, B) < 1e-4);
    /* and not c_0 */
    TEST_ASSERT(head_error(a, l, n->ctx, B) > 1e-3);
    memcpy(c_prev, c_next, sizeof c_prev);
  }
  /* MLC: V = sum_j softmax(w)_j v(c_j), with w set away from uniform */
  float *lw = table_values(a, AGENT_HSRL_CRITIC) + n->cl.level_w;
  lw[0] = 0.5f, lw[1] = -0.3f, lw[2] = 0.1f, lw[3] = 0.9f;
  float V[6], v[4 * 6];
  agent_hsrl_values(a, B, NULL, hist, 0, V);
  float *mcache = hsrl_malloc((size_t)nn_mlp_cache_floats(&n->cfg.critic, 4 * B) * sizeof(float));
  nn_mlp_forward(v, mcache, table_values(a, AGENT_HSRL_CRITIC) + n->cl.mlp, n->ctx, 4 * B, &n->cfg.critic, 0, 0, 0);
  double z = exp(0.5) + exp(-0.3) + exp(0.1) + exp(0.9), w[4] = {exp(0.5) / z, exp(-0.3) / z, exp(0.1) / z, exp(0.9) / z};
  for (int64_t b = 0; b < B; b++) {
    double want = 0.0;
    for (int j = 0; j < 4; j++) want += w[j] * (double)v[j * B + b];
    TEST_NEAR(V[b], want, 1e-5);
  }
  agent_free(a);

  /* no hierarchy: every head reads c_0; the critic sees c_0 only */
  c.s.hierarchy = false;
  a = make_agent(&c, &f);
  agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &o);
  n = agent_hsrl_net_of(a);
  TEST_ASSERT(n->n_ctx == 1);
  for (int l = 0; l < f.L; l++) TEST_ASSERT(head_error(a, l, n->ctx, B) < 1e-5);
  agent_hsrl_values(a, B, NULL, hist, 0, V);
  nn_mlp_forward(v, mcache, table_values(a, AGENT_HSRL_CRITIC) + n->cl.mlp, n->ctx, B, &n->cfg.critic, 0, 0, 0);
  for (int64_t b = 0; b < B; b++) TEST_NEAR(V[b], v[b], 1e-6);
  agent_free(a);

  /* no MLC: V = v(c_0), whatever w; the heads keep the hierarchy; level_w gets no gradient */
  c.s.hierarchy = true, c.s.mlc = false;
  a = make_agent(&c, &f);
  n = agent_hsrl_net_of(a);
  lw = table_values(a, AGENT_HSRL_CRITIC) + n->cl.level_w;
  lw[0] = 2.0f, lw[3] = -1.0f;
  agent_hsrl_values(a, B, NULL, hist, 0, V);
  TEST_ASSERT(n->n_ctx == 1);
  nn_mlp_forward(v, mcache, table_values(a, AGENT_HSRL_CRITIC) + n->cl.mlp, n->ctx, B, &n->cfg.critic, 0, 0, 0);
  for (int64_t b = 0; b < B; b++) TEST_NEAR(V[b], v[b], 1e-6);
  TEST_ASSERT(head_error(a, 1, n->ctx + B * d, B) < 1e-4);
  batch_buf bb;
  batch_make(&bb, &f, 6, &r);
  agent_stats st;
  agent_learn(a, &bb.b, &st);
  const float *glw = nn_params_grads(agent_hsrl_params(a, AGENT_HSRL_CRITIC)) + n->cl.level_w;
  for (int j = 0; j <= f.L; j++) TEST_ASSERT(glw[j] == 0.0f);
  agent_free(a);
  hsrl_free(mcache);

  /* no entropy / no BC: the gradients equal the full agent's with that term's scale 0, and
   * differ from the full agent's */
  const char *which[2] = {"entropy", "bc"};
  for (int wi = 0; wi < 2; wi++) {
    agent_hsrl_config cf = small_config(&f, 8, 72), ca = cf;
    cf.s.dropout = ca.s.dropout = 0.0;
    if (wi == 0) ca.s.entropy = false;
    else ca.s.bc = false;
    agent *full = make_agent(&cf, &f), *abl = make_agent(&ca, &f);
    TEST_ASSERT(wi == 0 ? agent_hsrl_loss_config_of(abl)->lambda_h == 0.0f
                        : agent_hsrl_loss_config_of(abl)->lambda_bc == 0.0f);
    float y[6] = {0.3f, -0.2f, 0.5f, 0.1f, 0.0f, -0.4f};
    agent_hsrl_loss_config lf = *agent_hsrl_loss_config_of(full), la = *agent_hsrl_loss_config_of(abl);
    agent_hsrl_terms tf, ta;
    agent_hsrl_net_loss(agent_hsrl_net_of(abl), agent_hsrl_params(abl, AGENT_HSRL_ACTOR),
                        agent_hsrl_params(abl, AGENT_HSRL_CRITIC), &bb.b, y, NULL, NULL,
                        &la, 1, 3, &ta);
    agent_hsrl_net_loss(agent_hsrl_net_of(full), agent_hsrl_params(full, AGENT_HSRL_ACTOR),
                        agent_hsrl_params(full, AGENT_HSRL_CRITIC), &bb.b, y, NULL, NULL,
                        &lf, 1, 3, &tf);
    nn_params *ga = agent_hsrl_params(abl, AGENT_HSRL_ACTOR), *gf = agent_hsrl_params(full, AGENT_HSRL_ACTOR);
    const int64_t np = nn_params_size(ga);
    TEST_ASSERT(memcmp(nn_params_grads(ga), nn_params_grads(gf), (size_t)np * sizeof(float)) != 0);
    lf.scale[wi == 0 ? 2 : 3] = 0.0f;
    agent_hsrl_net_loss(agent_hsrl_net_of(full), agent_hsrl_params(full, AGENT_HSRL_ACTOR),
                        agent_hsrl_params(full, AGENT_HSRL_CRITIC), &bb.b, y, NULL, NULL,
                        &lf, 1, 3, &tf);
    TEST_ASSERTF(memcmp(nn_params_grads(ga), nn_params_grads(gf), (size_t)np * sizeof(float)) == 0,
                 "no-%s: the gradient differs from the full model's without that term", which[wi]);
    agent_free(full);
    agent_free(abl);
  }
  batch_free(&bb);
  fixture_free(&f);
}

/* critic_to_actor = 0: the actor's gradient is the actor terms' only; the critic's is unchanged. */
static void test_critic_detach(void) {
  fixture f;
  fixture_small(&f, 81);
  agent_hsrl_config cj = small_config(&f, 8, 81), cd = cj;
  cd.critic_to_actor = 0;
  agent *aj = make_agent(&cj, &f), *ad = make_agent(&cd, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 81, 8);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  float y[8];
  for (int i = 0; i < 8; i++) y[i] = (float)hsrl_rng_normal(&r);
  agent_hsrl_loss_config lj = *agent_hsrl_loss_config_of(aj), ld = *agent_hsrl_loss_config_of(ad);
  nn_params *paj = agent_hsrl_params(aj, AGENT_HSRL_ACTOR), *pad = agent_hsrl_params(ad, AGENT_HSRL_ACTOR);
  nn_params *pcj = agent_hsrl_params(aj, AGENT_HSRL_CRITIC), *pcd = agent_hsrl_params(ad, AGENT_HSRL_CRITIC);
  const int64_t na = nn_params_size(paj), nc = nn_params_size(pcj);
  agent_hsrl_net_loss(agent_hsrl_net_of(ad), pad, pcd, &bb.b, y, NULL, NULL, &ld, 1, 5, NULL);
  agent_hsrl_net_loss(agent_hsrl_net_of(aj), paj, pcj, &bb.b, y, NULL, NULL, &lj, 1, 5, NULL);
  TEST_ASSERT(memcmp(nn_params_grads(pcj), nn_params_grads(pcd), (size_t)nc * sizeof(float)) == 0);
  TEST_ASSERT(memcmp(nn_params_grads(paj), nn_params_grads(pad), (size_t)na * sizeof(float)) != 0);
  lj.scale[0] = 0.0f;
  agent_hsrl_net_loss(agent_hsrl_net_of(aj), paj, pcj, &bb.b, y, NULL, NULL, &lj, 1, 5, NULL);
  TEST_ASSERT(memcmp(nn_params_grads(paj), nn_params_grads(pad), (size_t)na * sizeof(float)) == 0);
  batch_free(&bb);
  agent_free(aj);
  agent_free(ad);
  fixture_free(&f);
}

/* Off-policy correction: behaviour log-probs log 2 above the current ones give rho = 1/2. */
static void test_off_policy_weights(void) {
  fixture f;
  fixture_small(&f, 91);
  agent_hsrl_config c = small_config(&f, 8, 91);
  c.s.dropout = 0.0, c.s.critic_dropout = 0.0;
  c.s.off_policy_correction = 1;
  agent *a = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 91, 9);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  float y[8];
  for (int i = 0; i < 8; i++) y[i] = (float)hsrl_rng_normal(&r);
  agent_hsrl_loss_config lc = *agent_hsrl_loss_config_of(a);
  nn_params *pa = agent_hsrl_params(a, AGENT_HSRL_ACTOR), *pc = agent_hsrl_params(a, AGENT_HSRL_CRITIC);
  agent_hsrl_terms t1, t2, t3;
  agent_hsrl_net_loss(agent_hsrl_net_of(a), pa, pc, &bb.b, y, NULL, NULL, &lc, 0, 0, &t1);
  agent_hsrl_net *n = agent_hsrl_net_of(a);
  const int64_t K = f.K;
  const int L = f.L;
  for (int64_t b = 0; b < 8; b++)
    for (int64_t k = 0; k < K; k++)
      for (int l = 0; l < L; l++) {
        uint16_t z = bb.tokens[(b * K + k) * L + l];
        float lp = n->logp[8 * n->level_off[l] + b * n->cfg.vocab[l] + z];
        bb.beh[(b * K + k) * L + l] = lp + (l == 0 ? (float)log(2.0) : 0.0f);
      }
  bb.b.behaviour_logp = bb.beh;
  agent_hsrl_net_loss(agent_hsrl_net_of(a), pa, pc, &bb.b, y, NULL, NULL, &lc, 0, 0, &t2);
  TEST_NEAR(t2.pg, 0.5 * t1.pg, 1e-5 * fabs(t1.pg) + 1e-7);
  for (int64_t i = 0; i < 8 * K * L; i += L) bb.beh[i] -= 2.0f * (float)log(2.0); /* rho would be 2: clipped to 1 */
  agent_hsrl_net_loss(agent_hsrl_net_of(a), pa, pc, &bb.b, y, NULL, NULL, &lc, 0, 0, &t3);
  TEST_NEAR(t3.pg, t1.pg, 1e-5 * fabs(t1.pg) + 1e-7);
  TEST_NEAR(t2.bc, t1.bc, 1e-9);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
}

/* |gradient|^2 of a table */
static double grad_sq(nn_params *p) {
  const float *g = nn_params_grads(p);
  double s = 0.0;
  for (int64_t i = 0; i < nn_params_size(p); i++) s += (double)g[i] * (double)g[i];
  return s;
}

/* agent.explore = greedy: EXPLORE acts like GREEDY (no random stream read); agent.advantage =
 * normalise: A = (y - V - mean) / std over the batch; agent.pg = false: no gradient from the pg term. */
static void test_training_options(void) {
  fixture f;
  fixture_small(&f, 95);
  agent_hsrl_config c = small_config(&f, 8, 95);
  c.s.dropout = 0.0, c.s.critic_dropout = 0.0;
  snprintf(c.s.explore, sizeof c.s.explore, "greedy");
  snprintf(c.s.advantage, sizeof c.s.advantage, "normalise");
  agent *a = make_agent(&c, &f);
  const int64_t B = 8;
  int32_t hist[8 * 7], sg[8 * 3], se[8 * 3];
  hsrl_rng r, ar;
  hsrl_rng_init(&r, 95, 1);
  random_histories(hist, &f, B, &r);
  agent_act_out og = {sg, NULL, NULL}, oe = {se, NULL, NULL};
  agent_act(a, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &og);
  hsrl_rng_init(&ar, 3, 0);
  const hsrl_rng before = ar;
  agent_act(a, B, NULL, hist, AGENT_ACT_EXPLORE, &ar, &oe);
  TEST_ASSERT(memcmp(sg, se, sizeof sg) == 0);
  TEST_ASSERT(memcmp(&before, &ar, sizeof ar) == 0);

  /* agent.prefix_cap = 1: the greedy slates' level-1 tokens are distinct (the fixture has
   * vocab[0] >= K), and EXPLORE with explore = greedy uses it too */
  agent_hsrl_config cc = c;
  cc.s.prefix_cap = 1;
  agent *ac = make_agent(&cc, &f);
  agent_act(ac, B, NULL, hist, AGENT_ACT_GREEDY, NULL, &og);
  agent_act(ac, B, NULL, hist, AGENT_ACT_EXPLORE, &ar, &oe);
  TEST_ASSERT(memcmp(sg, se, sizeof sg) == 0);
  TEST_ASSERT(f.idx.vocab[0] >= f.K);
  for (int64_t i = 0; i < B; i++)
    for (int64_t k = 0; k < f.K; k++)
      for (int64_t j = 0; j < k; j++)
        TEST_ASSERT(f.tokens[sg[i * f.K + k] * f.L] != f.tokens[sg[i * f.K + j] * f.L]);
  agent_free(ac);

  batch_buf bb;
  batch_make(&bb, &f, B, &r);
  float y[8], A[8];
  for (int i = 0; i < 8; i++) y[i] = (float)(3.0 * hsrl_rng_normal(&r));
  agent_hsrl_loss_config lc = *agent_hsrl_loss_config_of(a);
  TEST_ASSERT(lc.normalise_advantage == 1);
  nn_params *pa = agent_hsrl_params(a, AGENT_HSRL_ACTOR), *pc = agent_hsrl_params(a, AGENT_HSRL_CRITIC);
  agent_hsrl_net_loss(agent_hsrl_net_of(a), pa, pc, &bb.b, y, NULL, A, &lc, 0, 0, NULL);
  const float *V = agent_hsrl_net_of(a)->value;
  double m = 0.0, ss = 0.0, s1 = 0.0, s2 = 0.0;
  for (int i = 0; i < 8; i++) m += (double)y[i] - (double)V[i];
  m /= 8.0;
  for (int i = 0; i < 8; i++) ss += ((double)y[i] - (double)V[i] - m) * ((double)y[i] - (double)V[i] - m);
  const double sd = sqrt(ss / 8.0);
  int outside_clip = 0;
  for (int i = 0; i < 8; i++) {
    TEST_NEAR(A[i], ((double)y[i] - (double)V[i] - m) / sd, 1e-5);
    s1 += (double)A[i], s2 += (double)A[i] * (double)A[i];
    outside_clip |= fabs((double)A[i]) > 1.0;
  }
  TEST_NEAR(s1 / 8.0, 0.0, 1e-6);
  TEST_NEAR(s2 / 8.0, 1.0, 1e-5);
  TEST_ASSERT(outside_clip); /* not clipped to [-1, 1] */

  /* credit = click: with A_b = 0 given, pg = mean_b mean_k (y_bk - mean_k y_bk) sum_l -log pi_l[z_l] */
  agent_hsrl_loss_config lk = lc;
  lk.click_credit = 1;
  float zero[8] = {0};
  agent_hsrl_terms tk;
  agent_hsrl_net_loss(agent_hsrl_net_of(a), pa, pc, &bb.b, y, zero, NULL, &lk, 0, 0, &tk);
  {
    const agent_hsrl_net *n = agent_hsrl_net_of(a);
    const int64_t K = f.K;
    double want = 0.0;
    for (int64_t b = 0; b < B; b++) {
      double yb = 0.0, nv = 0.0, acc = 0.0;
      for (int64_t k = 0; k < K; k++)
        if (bb.b.slate[b * K + k]) yb += bb.b.clicks[b * K + k], nv += 1.0;
      yb /= nv;
      for (int64_t k = 0; k < K; k++) {
        if (!bb.b.slate[b * K + k]) continue;
        double lp = 0.0;
        for (int l = 0; l < f.L; l++)
          lp += (double)n->logp[B * n->level_off[l] + b * n->cfg.vocab[l] + bb.b.tokens[(b * K + k) * f.L + l]];
        acc += ((double)bb.b.clicks[b * K + k] - yb) * -lp;
      }
      want += acc / nv;
    }
    want /= (double)B;
    TEST_NEAR(tk.pg, want, 1e-5 * fabs(want) + 1e-7);
    TEST_ASSERT(fabs(want) > 1e-3);
  }

  /* pg = false with bc, entropy and the critic's path into the actor off: no actor gradient */
  agent_hsrl_config c0 = c;
  c0.s.pg = 0, c0.s.bc = 0, c0.s.entropy = 0;
  c0.critic_to_actor = 0;
  agent *a0 = make_agent(&c0, &f);
  agent_hsrl_loss_config l0 = *agent_hsrl_loss_config_of(a0);
  nn_params *p0 = agent_hsrl_params(a0, AGENT_HSRL_ACTOR), *q0 = agent_hsrl_params(a0, AGENT_HSRL_CRITIC);
  agent_hsrl_terms t0;
  agent_hsrl_net_loss(agent_hsrl_net_of(a0), p0, q0, &bb.b, y, NULL, NULL, &l0, 0, 0, &t0);
  double g2 = grad_sq(p0);
  TEST_ASSERTF(g2 == 0.0, "actor gradient norm^2 %g with every actor term off", g2);
  TEST_ASSERT(t0.pg != 0.0); /* the term is still measured */
  l0.scale[1] = 1.0f;        /* and it is the only thing that was switched off */
  agent_hsrl_net_loss(agent_hsrl_net_of(a0), p0, q0, &bb.b, y, NULL, NULL, &l0, 0, 0, NULL);
  TEST_ASSERT(grad_sq(p0) > 0.0);
  batch_free(&bb);
  agent_free(a0);
  agent_free(a);
  fixture_free(&f);
}

static void test_no_allocation_after_init(void) {
  fixture f;
  fixture_small(&f, 101);
  agent_hsrl_config c = small_config(&f, 16, 101);
  c.s.sid_embedding = true, c.s.user_state = true, c.explore_temp = 1.5, c.grad_clip = 1.0;
  c.s.off_policy_correction = 1;
  agent *a = make_agent(&c, &f);
  snprintf(c.s.decoder, sizeof c.s.decoder, "catalog");
  agent *b = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 101, 10);
  batch_buf bb;
  batch_make(&bb, &f, 16, &r);
  bb.b.behaviour_logp = bb.beh;
  int32_t slate[16 * 3];
  uint16_t tok[16 * 3 * 3];
  float lp[16 * 3 * 3];
  agent_act_out o = {slate, tok, lp};
  agent_stats st;
  int64_t before = hsrl_alloc_count();
  for (int it = 0; it < 3; it++) {
    agent_act(a, 16, bb.users, bb.hist, AGENT_ACT_GREEDY, NULL, &o);
    agent_act(a, 5, bb.users, bb.hist, AGENT_ACT_EXPLORE, &r, &o);
    agent_act(b, 16, bb.users, bb.hist, AGENT_ACT_GREEDY, NULL, &o);
    agent_act(b, 16, bb.users, bb.hist, AGENT_ACT_EXPLORE, &r, &o);
    agent_learn(a, &bb.b, &st);
    bb.b.B = 9;
    agent_learn(a, &bb.b, &st);
    bb.b.B = 16;
  }
  TEST_ASSERTF(hsrl_alloc_count() == before, "%lld allocations in act/learn",
               (long long)(hsrl_alloc_count() - before));
  batch_free(&bb);
  agent_free(a);
  agent_free(b);
  fixture_free(&f);
}

static void run_updates(agent *a, const fixture *f, uint64_t seed, double *losses /* (3 * 4) */) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 11);
  for (int it = 0; it < 3; it++) {
    batch_buf bb;
    batch_make(&bb, f, 12, &r);
    agent_stats st;
    agent_learn(a, &bb.b, &st);
    losses[it * 4 + 0] = st.critic_loss, losses[it * 4 + 1] = st.actor_loss;
    losses[it * 4 + 2] = st.entropy, losses[it * 4 + 3] = st.bc_loss;
    batch_free(&bb);
  }
}

static void test_same_seed_same_losses(void) {
  fixture f;
  fixture_small(&f, 111);
  agent_hsrl_config c = small_config(&f, 16, 111), c2 = small_config(&f, 16, 112);
  agent *a = make_agent(&c, &f), *b = make_agent(&c, &f), *d = make_agent(&c2, &f);
  double la[12], lb[12], ld[12];
  run_updates(a, &f, 5, la);
  run_updates(b, &f, 5, lb);
  run_updates(d, &f, 5, ld);
  TEST_ASSERT(memcmp(la, lb, sizeof la) == 0);
  TEST_ASSERT(memcmp(la, ld, sizeof la) != 0);
  nn_params *pa = agent_hsrl_params(a, AGENT_HSRL_CRITIC_TARGET), *pb = agent_hsrl_params(b, AGENT_HSRL_CRITIC_TARGET);
  TEST_ASSERT(memcmp(nn_params_values(pa), nn_params_values(pb), (size_t)nn_params_size(pa) * sizeof(float)) == 0);
  agent_free(a);
  agent_free(b);
  agent_free(d);
  fixture_free(&f);
}

static void test_nonfinite_skips_step(void) {
  fixture f;
  fixture_small(&f, 121);
  agent_hsrl_config c = small_config(&f, 8, 121);
  agent *a = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 121, 12);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  nn_params *pa = agent_hsrl_params(a, AGENT_HSRL_ACTOR);
  const int64_t n = nn_params_size(pa);
  float *keep = hsrl_malloc((size_t)n * sizeof(float));
  memcpy(keep, nn_params_values(pa), (size_t)n * sizeof(float));
  bb.reward[3] = NAN;
  bb.done[3] = 1;
  agent_stats st;
  agent_learn(a, &bb.b, &st);
  TEST_ASSERT(!isfinite(st.grad_norm));
  TEST_ASSERT(memcmp(keep, nn_params_values(pa), (size_t)n * sizeof(float)) == 0);
  TEST_ASSERT(agent_hsrl_n_updates(a) == 0);
  bb.reward[3] = 0.5f;
  agent_learn(a, &bb.b, &st);
  TEST_ASSERT(isfinite(st.grad_norm) && agent_hsrl_n_updates(a) == 1);
  hsrl_free(keep);
  batch_free(&bb);
  agent_free(a);
  fixture_free(&f);
}

/* train.lr_decay: the same agent with a linear decay to 0 over 3 updates and with a constant rate take
 * the same first step; the second step of the decaying one is half the constant one's (Adam's step is
 * proportional to lr, both have the same moments), and its third step (lr 0) moves nothing. */
static void test_lr_decay(void) {
  fixture f;
  fixture_small(&f, 131);
  agent_hsrl_config c = small_config(&f, 8, 131), d = c;
  d.lr_schedule = (nn_lr_schedule){NN_LR_LINEAR, 0.0, 3};
  agent *a = make_agent(&c, &f), *b = make_agent(&d, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 131, 13);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  agent_stats st;
  const int64_t na = nn_params_size(agent_hsrl_params(a, AGENT_HSRL_ACTOR));
  const int64_t nc = nn_params_size(agent_hsrl_params(a, AGENT_HSRL_CRITIC));
  float *a0 = hsrl_malloc((size_t)na * sizeof(float)), *b0 = hsrl_malloc((size_t)na * sizeof(float));
  float *c0 = hsrl_malloc((size_t)nc * sizeof(float));
  agent_learn(a, &bb.b, &st);
  agent_learn(b, &bb.b, &st);
  TEST_ASSERT(memcmp(table_values(a, AGENT_HSRL_ACTOR), table_values(b, AGENT_HSRL_ACTOR), (size_t)na * sizeof(float)) == 0);
  memcpy(a0, table_values(a, AGENT_HSRL_ACTOR), (size_t)na * sizeof(float));
  memcpy(b0, table_values(b, AGENT_HSRL_ACTOR), (size_t)na * sizeof(float));
  agent_learn(a, &bb.b, &st);
  agent_learn(b, &bb.b, &st);
  const float *a1 = table_values(a, AGENT_HSRL_ACTOR), *b1 = table_values(b, AGENT_HSRL_ACTOR);
  double worst = 0.0, moved = 0.0;
  for (int64_t i = 0; i < na; i++) {
    const double da = (double)a1[i] - (double)a0[i], db = (double)b1[i] - (double)b0[i];
    moved = fmax(moved, fabs(da));
    worst = fmax(worst, fabs(db - 0.5 * da));
  }
  printf("  step 2: constant lr moved up to %.3g; |half-lr step - half of it| <= %.3g\n", moved, worst);
  TEST_ASSERTF(moved > 1e-4 && worst < 1e-3 * moved, "moved %g, worst %g", moved, worst);
  memcpy(b0, b1, (size_t)na * sizeof(float));
  memcpy(c0, table_values(b, AGENT_HSRL_CRITIC), (size_t)nc * sizeof(float));
  agent_learn(b, &bb.b, &st);
  TEST_ASSERT(isfinite(st.grad_norm) && st.grad_norm > 0.0 && agent_hsrl_n_updates(b) == 3);
  TEST_ASSERT(memcmp(b0, table_values(b, AGENT_HSRL_ACTOR), (size_t)na * sizeof(float)) == 0);
  TEST_ASSERT(memcmp(c0, table_values(b, AGENT_HSRL_CRITIC), (size_t)nc * sizeof(float)) == 0);
  hsrl_free(a0);
  hsrl_free(b0);
  hsrl_free(c0);
  batch_free(&bb);
  agent_free(a);
  agent_free(b);
  fixture_free(&f);
}

/* Saves `from` as a checkpoint at path and loads it into `to` (asserting every step). */
static void checkpoint_copy(agent *from, agent *to, const char *path) {
  io_h5 *h = NULL;
  TEST_ASSERT(io_h5_create(&h, path) == HSRL_OK);
  TEST_ASSERT(from->vt->save(from, h) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(h) == HSRL_OK);
  TEST_ASSERT(io_h5_open(&h, path) == HSRL_OK);
  TEST_ASSERT(to->vt->load(to, h) == HSRL_OK);
  io_h5_close(h);
}

/* agent.bc_final: lambda_BC goes linearly to bc_final x bc_weight at update `horizon`. With
 * bc_weight 5 and bc_final 0 over 2 updates: the first update equals the constant weight's, and
 * from the same state (a checkpoint after it) the second equals an agent without BC and differs
 * from the constant weight's. */
static void test_bc_decay(void) {
  fixture f;
  fixture_small(&f, 137);
  agent_hsrl_config c = small_config(&f, 8, 137);
  c.s.bc_weight = 5.0;
  agent_hsrl_config d = c, nobc = c;
  d.bc_schedule = (nn_lr_schedule){NN_LR_LINEAR, 0.0, 2};
  nobc.s.bc = 0;
  agent *a = make_agent(&c, &f), *b = make_agent(&d, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 137, 13);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  agent_stats st;
  const int64_t na = nn_params_size(agent_hsrl_params(a, AGENT_HSRL_ACTOR));
  const size_t nb = (size_t)na * sizeof(float);
  agent_learn(a, &bb.b, &st);
  agent_learn(b, &bb.b, &st);
  TEST_ASSERT(memcmp(table_values(a, AGENT_HSRL_ACTOR), table_values(b, AGENT_HSRL_ACTOR), nb) == 0);
  char path[512];
  snprintf(path, sizeof path, "%s/hsrl_bc_decay.h5", test_tmpdir());
  agent *e = make_agent(&nobc, &f);
  checkpoint_copy(b, e, path);
  agent_learn(a, &bb.b, &st);
  agent_learn(b, &bb.b, &st);
  agent_learn(e, &bb.b, &st);
  TEST_ASSERT(memcmp(table_values(b, AGENT_HSRL_ACTOR), table_values(e, AGENT_HSRL_ACTOR), nb) == 0);
  TEST_ASSERT(memcmp(table_values(b, AGENT_HSRL_ACTOR), table_values(a, AGENT_HSRL_ACTOR), nb) != 0);
  remove(path);
  batch_free(&bb);
  agent_free(a);
  agent_free(b);
  agent_free(e);
  fixture_free(&f);
}

static void test_save_load(void) {
  fixture f;
  fixture_small(&f, 131);
  agent_hsrl_config c = small_config(&f, 8, 131), c2 = small_config(&f, 8, 132);
  agent *a = make_agent(&c, &f), *b = make_agent(&c2, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 131, 13);
  batch_buf bb;
  batch_make(&bb, &f, 8, &r);
  agent_stats st;
  for (int i = 0; i < 3; i++) agent_learn(a, &bb.b, &st);
  char path[512];
  snprintf(path, sizeof path, "%s/hsrl_ckpt.h5", test_tmpdir());
  checkpoint_copy(a, b, path);
  io_h5 *h = NULL;
  for (int t = 0; t < 4; t++) {
    nn_params *pa = agent_hsrl_params(a, (agent_hsrl_table)t), *pb = agent_hsrl_params(b, (agent_hsrl_table)t);
    const size_t nb = (size_t)nn_params_size(pa) * sizeof(float);
    TEST_ASSERT(memcmp(nn_params_values(pa), nn_params_values(pb), nb) == 0);
    if (t < 2) {
      TEST_ASSERT(memcmp(nn_params_adam_m(pa), nn_params_adam_m(pb), nb) == 0);
      TEST_ASSERT(nn_params_adam_step(pa) == nn_params_adam_step(pb));
    }
  }
  TEST_ASSERT(agent_hsrl_n_updates(b) == 3);
  agent_stats sa, sb;
  agent_learn(a, &bb.b, &sa);
  agent_learn(b, &bb.b, &sb);
  TEST_ASSERT(sa.critic_loss == sb.critic_loss && sa.actor_loss == sb.actor_loss);
  /* an act-only copy loads the actor and acts like the learner */
  agent_hsrl_config co = c;
  co.act_only = 1;
  agent *ao = make_agent(&co, &f);
  TEST_ASSERT(ao->vt->n_policy_params(ao) == a->vt->n_policy_params(a));
  memcpy(ao->vt->policy_params(ao), a->vt->policy_params(a), (size_t)a->vt->n_policy_params(a) * sizeof(float));
  int32_t s1[8 * 3], s2[8 * 3];
  agent_act_out o1 = {s1, NULL, NULL}, o2 = {s2, NULL, NULL};
  agent_act(a, 8, NULL, bb.hist, AGENT_ACT_GREEDY, NULL, &o1);
  agent_act(ao, 8, NULL, bb.hist, AGENT_ACT_GREEDY, NULL, &o2);
  TEST_ASSERT(memcmp(s1, s2, sizeof s1) == 0);
  /* a checkpoint of another shape is refused and changes nothing */
  agent_hsrl_config c3 = c;
  c3.s.ffn = 32;
  agent *d = make_agent(&c3, &f);
  nn_params *pd = agent_hsrl_params(d, AGENT_HSRL_ACTOR);
  float first = nn_params_values(pd)[0];
  TEST_ASSERT(io_h5_open(&h, path) == HSRL_OK);
  hsrl_status st_load = d->vt->load(d, h);
  io_h5_close(h);
  TEST_ASSERT(st_load != HSRL_OK);
  printf("  expected error: %s\n", hsrl_err_message());
  TEST_ASSERT(nn_params_values(agent_hsrl_params(d, AGENT_HSRL_ACTOR))[0] == first);
  remove(path);
  agent_free(a);
  agent_free(b);
  agent_free(d);
  agent_free(ao);
  batch_free(&bb);
  fixture_free(&f);
}

/* After catalog churn (agent_hsrl_set_world: a grown feature table and new SIDs, read by the
 * encoder with the SID-embedding and user-state options) the agent computes exactly what an agent
 * built on the new world computes with the same parameters, on histories holding the new items. */
static void test_set_world(void) {
  const int64_t vocab[3] = {5, 4, 3};
  fixture f1, f2;
  fixture_make(&f1, 60, 5, 3, 9, 7, 3, 3, vocab, 0.75, 151);
  fixture_make(&f2, 75, 5, 3, 9, 7, 3, 3, vocab, 0.75, 152);
  agent_hsrl_config c = small_config(&f1, 8, 151);
  c.s.sid_embedding = true, c.s.user_state = true;
  agent *a = make_agent(&c, &f1), *b = make_agent(&c, &f2);
  agent_hsrl_world w2 = agent_hsrl_world_of(&f2.data, &f2.idx, &f2.trie);
  agent_hsrl_set_world(a, &w2);
  for (int t = 0; t < 2; t++) {
    nn_params *pa = agent_hsrl_params(a, (agent_hsrl_table)t), *pb = agent_hsrl_params(b, (agent_hsrl_table)t);
    memcpy(nn_params_values(pb), nn_params_values(pa), (size_t)nn_params_size(pa) * sizeof(float));
  }
  hsrl_rng r;
  hsrl_rng_init(&r, 151, 15);
  batch_buf bb;
  batch_make(&bb, &f2, 8, &r);
  int new_items = 0;
  for (int64_t i = 0; i < 8 * f2.H; i++) new_items += bb.hist[i] > 60;
  TEST_ASSERT(new_items > 0);
  float va[8], vb[8];
  agent_hsrl_values(a, 8, bb.users, bb.hist, 0, va);
  agent_hsrl_values(b, 8, bb.users, bb.hist, 0, vb);
  TEST_ASSERT(memcmp(va, vb, sizeof va) == 0);
  int32_t s1[8 * 3], s2[8 * 3];
  agent_act_out o1 = {s1, NULL, NULL}, o2 = {s2, NULL, NULL};
  agent_act(a, 8, bb.users, bb.hist, AGENT_ACT_GREEDY, NULL, &o1);
  agent_act(b, 8, bb.users, bb.hist, AGENT_ACT_GREEDY, NULL, &o2);
  TEST_ASSERT(memcmp(s1, s2, sizeof s1) == 0);
  batch_free(&bb);
  agent_free(a), agent_free(b);
  fixture_free(&f1), fixture_free(&f2);
}

static void test_bad_config(void) {
  fixture f;
  fixture_small(&f, 141);
  agent_hsrl_world w = agent_hsrl_world_of(&f.data, &f.idx, &f.trie);
  agent *a = NULL;
  agent_hsrl_config c = small_config(&f, 8, 141);
  c.s.heads = 3;
  TEST_ASSERT(agent_hsrl_init(&a, &c, &w) == HSRL_E_USAGE && a == NULL);
  TEST_ASSERT(strstr(hsrl_err_message(), "agent.heads") != NULL);
  c = small_config(&f, 8, 141);
  snprintf(c.s.critic_hidden, sizeof c.s.critic_hidden, "64,x");
  TEST_ASSERT(agent_hsrl_init(&a, &c, &w) == HSRL_E_USAGE);
  TEST_ASSERT(strstr(hsrl_err_message(), "agent.critic_hidden") != NULL);
  c = small_config(&f, 8, 141);
  c.s.user_state = true;
  w.user_features = NULL;
  TEST_ASSERT(agent_hsrl_init(&a, &c, &w) == HSRL_E_USAGE);
  fixture_free(&f);
}

/* ---- benchmark (not under ctest) ---------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static int bench(void) {
  const int64_t vocab[3] = {64, 64, 64};
  fixture f;
  fixture_make(&f, 3600, 20, 8, 500, 50, 10, 3, vocab, 1.0, 7);
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  s.data.history_len = 50, s.data.slate_size = 10;
  agent_hsrl_config c;
  agent_hsrl_config_defaults(&c, &s, 64);
  if (getenv("BENCH_P")) c.s.dropout = atof(getenv("BENCH_P")), c.s.critic_dropout = c.s.dropout;
  agent *a = make_agent(&c, &f);
  hsrl_rng r;
  hsrl_rng_init(&r, 7, 0);
  batch_buf bb;
  batch_make(&bb, &f, 64, &r);
  for (int64_t b = 0; b < 64; b++) /* full histories, as in a running system */
    for (int64_t t = 0; t < 50; t++) {
      if (bb.hist[b * 50 + t] == 0) bb.hist[b * 50 + t] = 1 + (int32_t)hsrl_rng_below(&r, 3600);
      if (bb.next_hist[b * 50 + t] == 0) bb.next_hist[b * 50 + t] = 1 + (int32_t)hsrl_rng_below(&r, 3600);
    }
  agent_stats st;
  double times[20];
  for (int i = 0; i < 3; i++) agent_learn(a, &bb.b, &st);
  for (int i = 0; i < 20; i++) {
    double t0 = hsrl_time_now();
    agent_learn(a, &bb.b, &st);
    times[i] = hsrl_time_now() - t0;
  }
  qsort(times, 20, sizeof times[0], cmp_double);
  printf("learn(): B 64, H 50, d 32, 2 layers, 4 heads, FFN 128, L 3, V 64, K 10: median %.2f ms (min %.2f)\n",
         1e3 * times[10], 1e3 * times[0]);
  /* the parts of learn(): TD target (target nets, inference), loss forward + backward (train) */
  float y[64];
  double tt[20], tl[20], tf[20];
  agent_hsrl_loss_config lc = *agent_hsrl_loss_config_of(a);
  nn_params *pa = agent_hsrl_params(a, AGENT_HSRL_ACTOR), *pc = agent_hsrl_params(a, AGENT_HSRL_CRITIC);
  for (int i = 0; i < 20; i++) {
    double t0 = hsrl_time_now();
    agent_hsrl_td_target(a, &bb.b, y);
    double t1 = hsrl_time_now();
    agent_hsrl_net_loss(agent_hsrl_net_of(a), pa, pc, &bb.b, y, NULL, NULL, &lc, 1, 1, NULL);
    double t2 = hsrl_time_now();
    agent_hsrl_net_actor_forward(agent_hsrl_net_of(a), nn_params_values(pa), 64, NULL,
                                 bb.hist, 1, 1);
    tt[i] = t1 - t0, tl[i] = t2 - t1, tf[i] = hsrl_time_now() - t2;
  }
  qsort(tt, 20, sizeof tt[0], cmp_double);
  qsort(tl, 20, sizeof tl[0], cmp_double);
  qsort(tf, 20, sizeof tf[0], cmp_double);
  printf("  of which: TD target %.2f ms, loss forward+backward %.2f ms (actor forward alone, train: %.2f ms)\n",
         1e3 * tt[10], 1e3 * tl[10], 1e3 * tf[10]);
  int32_t slate[32 * 10];
  uint16_t tok[32 * 10 * 3];
  float lp[32 * 10 * 3];
  agent_act_out o = {slate, tok, lp};
  const char *modes[2] = {"greedy", "explore"};
  for (int m = 0; m < 2; m++) {
    for (int i = 0; i < 20; i++) {
      double t0 = hsrl_time_now();
      agent_act(a, 32, bb.users, bb.hist, (agent_act_mode)m, &r, &o);
      times[i] = hsrl_time_now() - t0;
    }
    qsort(times, 20, sizeof times[0], cmp_double);
    printf("act() %s, 32 users, trie: median %.3f ms (min %.3f)\n", modes[m], 1e3 * times[10], 1e3 * times[0]);
  }
  agent_free(a);
  snprintf(c.s.decoder, sizeof c.s.decoder, "catalog");
  a = make_agent(&c, &f);
  for (int i = 0; i < 20; i++) {
    double t0 = hsrl_time_now();
    agent_act(a, 32, bb.users, bb.hist, AGENT_ACT_GREEDY, &r, &o);
    times[i] = hsrl_time_now() - t0;
  }
  qsort(times, 20, sizeof times[0], cmp_double);
  printf("act() greedy, 32 users, catalog (N 3600): median %.3f ms (min %.3f)\n", 1e3 * times[10], 1e3 * times[0]);
  for (int i = 0; i < 20; i++) {
    double t0 = hsrl_time_now();
    agent_act(a, 32, bb.users, bb.hist, AGENT_ACT_EXPLORE, &r, &o);
    times[i] = hsrl_time_now() - t0;
  }
  qsort(times, 20, sizeof times[0], cmp_double);
  printf("act() explore, 32 users, catalog (N 3600): median %.3f ms (min %.3f)\n", 1e3 * times[10], 1e3 * times[0]);
  for (int i = 0; i < 20; i++) {
    double t0 = hsrl_time_now();
    agent_hsrl_net_actor_forward(agent_hsrl_net_of(a), a->vt->policy_params(a), 32, NULL,
                                 bb.hist, 0, 0);
    times[i] = hsrl_time_now() - t0;
  }
  qsort(times, 20, sizeof times[0], cmp_double);
  printf("  of which the actor forward (inference, 32 users): %.3f ms\n", 1e3 * times[10]);
  agent_free(a);
  batch_free(&bb);
  fixture_free(&f);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
  TEST_RUN(test_gradcheck_whole_loss);
  TEST_RUN(test_gradcheck_rejects_wrong_gradient);
  TEST_RUN(test_trie_equals_catalog);
  TEST_RUN(test_exclude_history);
  TEST_RUN(test_explore);
  TEST_RUN(test_td_target);
  TEST_RUN(test_learn_mlc_and_targets);
  TEST_RUN(test_critic_loss_decreases);
  TEST_RUN(test_ablation_switches);
  TEST_RUN(test_critic_detach);
  TEST_RUN(test_off_policy_weights);
  TEST_RUN(test_training_options);
  TEST_RUN(test_no_allocation_after_init);
  TEST_RUN(test_same_seed_same_losses);
  TEST_RUN(test_nonfinite_skips_step);
  TEST_RUN(test_lr_decay);
  TEST_RUN(test_bc_decay);
  TEST_RUN(test_save_load);
  TEST_RUN(test_set_world);
  TEST_RUN(test_bad_config);
  return test_summary();
}
