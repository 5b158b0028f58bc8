/* test_sim_urm.c: the user-response model and its trainer (sim/sim_urm.h, sim/sim_urm_train.h;
 * method.md section 3).
 *
 *  - whole-model random-direction gradient check of the loss (BCE on logits + l2 terms) w.r.t.
 *    every parameter tensor, with and without the id embedding's own l2 term (id_l2), with
 *    dropout off and with a fixed dropout mask; a backward with a 5% wrong scale must be rejected;
 *  - padding is masked: changing the padding item's features and id-embedding row changes no
 *    probability; an empty history gives c0 = b_o (the attention weights do not matter);
 *  - the user context c (sim_urm_user_context) dotted with phi(i) gives the click logits;
 *  - inference and the steady-state training step allocate nothing;
 *  - a tiny synthetic run (records made in memory: clicks depend on a per-item effect) whose test
 *    AUC rises well above 0.5 (and toward the AUC of the true click probabilities);
 *  - save -> load -> bit-identical probabilities; the loader rejects a data file of other sizes
 *    and a file that is not a simulator; `hsrl sim train` end to end on a written data file. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "common/nn/nn_params.h"
#include "sim/sim_data.h"
#include "sim/sim_metrics.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

/* ---------------------------------------------------------------- a synthetic world in memory */

typedef struct world_sizes {
  int64_t N, D, U, P, K, H, R;
} world_sizes;

/* Items with random features and a hidden quality q_i; click p = sigmoid(1.6 q_i + 0.4 a_u - 0.3)
 * with a user offset a_u. Histories: random length 0..H of earlier "liked" items, left-padded.
 * Split: records in order, the first 80% train. true_p (R, K) gets the click probabilities. */
static void world_make(sim_dataset *d, float *true_p, const world_sizes *z, uint64_t seed) {
  sim_dataset_alloc(d, z->N, z->D, z->U, z->P, z->R, z->K, z->H);
  snprintf(d->name, sizeof d->name, "test-world");
  snprintf(d->source_format, sizeof d->source_format, "synth");
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 1);
  float *q = hsrl_malloc((size_t)(z->N + 1) * sizeof(float));
  float *a = hsrl_malloc((size_t)(z->U + 1) * sizeof(float));
  for (int64_t i = 1; i <= z->N; i++) {
    d->item_raw_id[i] = 100 + i;
    q[i] = (float)hsrl_rng_normal(&r);
    for (int64_t j = 0; j < z->D; j++) d->item_features[i * z->D + j] = (float)hsrl_rng_normal(&r);
  }
  for (int64_t u = 1; u <= z->U; u++) {
    d->user_raw_id[u] = u;
    a[u] = (float)hsrl_rng_normal(&r);
    for (int64_t j = 0; j < z->P; j++)
      d->user_features[u * z->P + j] = (j == 0 ? a[u] : 0.0f) + 0.5f * (float)hsrl_rng_normal(&r);
  }
  for (int64_t rec = 0; rec < z->R; rec++) {
    int32_t u = 1 + (int32_t)hsrl_rng_below(&r, (uint64_t)z->U);
    d->rec_user[rec] = u;
    d->rec_time[rec] = rec;
    int64_t len = (int64_t)hsrl_rng_below(&r, (uint64_t)z->H + 1);
    if (rec % 7 == 0) len = 0; /* plenty of empty histories */
    for (int64_t j = z->H - len; j < z->H; j++)
      d->rec_history[rec * z->H + j] = 1 + (int32_t)hsrl_rng_below(&r, (uint64_t)z->N);
    for (int64_t k = 0; k < z->K; k++) {
      int32_t i = 1 + (int32_t)hsrl_rng_below(&r, (uint64_t)z->N);
      d->rec_slate[rec * z->K + k] = i;
      float logit = 1.6f * q[i] + 0.4f * a[u] - 0.3f;
      float p = 1.0f / (1.0f + expf(-logit));
      if (true_p) true_p[rec * z->K + k] = p;
      d->rec_clicks[rec * z->K + k] = hsrl_rng_uniform(&r) < p;
    }
  }
  d->n_train = z->R * 8 / 10;
  d->n_test = z->R - d->n_train;
  for (int64_t i = 0; i < d->n_train; i++) d->train_idx[i] = i;
  for (int64_t i = 0; i < d->n_test; i++) d->test_idx[i] = d->n_train + i;
  hsrl_free(q);
  hsrl_free(a);
}

static sim_urm_config small_config(const sim_dataset *d, int id_emb, float dropout, float l2) {
  hsrl_settings s;
  hsrl_settings_defaults(&s);
  sim_urm_config c = sim_urm_config_make(&s.sim, d);
  c.f = 8;
  c.hidden = 16;
  c.heads = 2;
  c.dropout = dropout;
  c.l2 = l2;
  c.item_id_embedding = id_emb;
  c.id_l2 = 0.0f; /* the id term is switched on where a test says so */
  return c;
}

/* ---------------------------------------------------------------- gradient check */

typedef struct grad_ctx {
  sim_urm *m;
  sim_urm_work *w;
  int64_t B;
  const int32_t *user, *hist, *slate;
  const float *target;
  float out[1], dout[1];
  float wrong_scale; /* 1: correct backward */
} grad_ctx;

static void grad_forward(void *p) {
  grad_ctx *g = p;
  g->out[0] = (float)sim_urm_forward(g->m, g->w, g->B, g->user, g->hist, g->slate, g->target, 1, 77);
}

static void grad_backward(void *p) {
  grad_ctx *g = p;
  sim_urm_backward(g->m, g->w, g->dout[0] * g->wrong_scale);
}

/* Batch of B records from d (records 0..B-1) in contiguous arrays. */
typedef struct test_batch {
  int64_t B;
  int32_t *user, *hist, *slate;
  float *target;
} test_batch;

static void batch_make(test_batch *b, const sim_dataset *d, int64_t first, int64_t B) {
  const int64_t H = d->history_len, K = d->slate_size;
  b->B = B;
  b->user = hsrl_malloc((size_t)B * sizeof(int32_t));
  b->hist = hsrl_malloc((size_t)(B * H) * sizeof(int32_t));
  b->slate = hsrl_malloc((size_t)(B * K) * sizeof(int32_t));
  b->target = hsrl_malloc((size_t)(B * K) * sizeof(float));
  for (int64_t i = 0; i < B; i++) {
    b->user[i] = d->rec_user[first + i];
    memcpy(b->hist + i * H, d->rec_history + (first + i) * H, (size_t)H * sizeof(int32_t));
    memcpy(b->slate + i * K, d->rec_slate + (first + i) * K, (size_t)K * sizeof(int32_t));
    for (int64_t k = 0; k < K; k++) b->target[i * K + k] = d->rec_clicks[(first + i) * K + k];
  }
}

static void batch_free(test_batch *b) {
  hsrl_free(b->user);
  hsrl_free(b->hist);
  hsrl_free(b->slate);
  hsrl_free(b->target);
}

static int run_direction_check(const sim_urm_config *c, const sim_dataset *d, float wrong_scale,
                               gradcheck_result *res) {
  sim_urm *m = sim_urm_init(c, d, 3);
  sim_urm_work *w = sim_urm_work_init(m, 8, 1);
  test_batch b;
  batch_make(&b, d, 0, 7); /* record 0 has an empty history (rec % 7 == 0) */
  grad_ctx g = {m, w, b.B, b.user, b.hist, b.slate, b.target, {0}, {0}, wrong_scale};
  gradcheck_case gc;
  memset(&gc, 0, sizeof gc);
  gc.ctx = &g;
  gc.forward = grad_forward;
  gc.backward = grad_backward;
  gc.out = g.out;
  gc.dout = g.dout;
  gc.n_out = 1;
  nn_params *p = sim_urm_params(m);
  for (int64_t t = 0; t < nn_params_count(p); t++) {
    const nn_param_entry *e = nn_params_entry(p, t);
    gradcheck_add(&gc, e->name, nn_params_values(p) + e->offset, nn_params_grads(p) + e->offset, e->n);
  }
  int ok = gradcheck_direction(&gc, 11, 2e-3, 2e-3, res);
  batch_free(&b);
  sim_urm_work_free(w);
  sim_urm_free(m);
  return ok;
}

static void test_gradient_direction(void) {
  world_sizes z = {12, 5, 6, 7, 3, 5, 20};
  sim_dataset d;
  world_make(&d, NULL, &z, 9);
  TEST_ASSERTF(sim_dataset_validate(&d, "world") == HSRL_OK, "%s", hsrl_err_message());
  gradcheck_result res;
  sim_urm_config c = small_config(&d, 1, 0.0f, 0.05f);
  int ok1 = run_direction_check(&c, &d, 1.0f, &res);
  double err1 = res.max_err;
  c.id_l2 = 0.5f; /* the id embedding's own l2 term */
  int ok2 = run_direction_check(&c, &d, 1.0f, &res);
  double err2 = res.max_err;
  c = small_config(&d, 1, 0.3f, 0.05f); /* dropout on: the mask is fixed by the key */
  int ok3 = run_direction_check(&c, &d, 1.0f, &res);
  double err3 = res.max_err;
  c = small_config(&d, 0, 0.0f, 0.05f); /* features only */
  int ok4 = run_direction_check(&c, &d, 1.0f, &res);
  double err4 = res.max_err;
  c = small_config(&d, 1, 0.0f, 0.05f);
  printf("  (the next check runs a deliberately 5%% wrong backward: it must FAIL)\n");
  int broken = run_direction_check(&c, &d, 1.05f, &res);
  double err_broken = res.max_err;
  sim_dataset_free(&d);
  printf("  direction errors: %.2e %.2e %.2e %.2e; broken backward %.2e\n", err1, err2, err3, err4,
         err_broken);
  TEST_ASSERT(ok1 && ok2 && ok3 && ok4);
  TEST_ASSERTF(!broken, "a 5%% wrong backward passed the direction check (err %g)", err_broken);
}

/* ---------------------------------------------------------------- masking */

static void test_padding_is_masked_and_empty_history(void) {
  world_sizes z = {15, 4, 5, 6, 4, 6, 21};
  sim_dataset d;
  world_make(&d, NULL, &z, 4);
  sim_urm_config c = small_config(&d, 1, 0.2f, 3e-4f);
  sim_urm *m = sim_urm_init(&c, &d, 5);
  sim_urm_work *w = sim_urm_work_init(m, 21, 0);
  test_batch b;
  batch_make(&b, &d, 0, 21);
  int64_t n_pad = 0;
  for (int64_t i = 0; i < 21 * z.H; i++) n_pad += b.hist[i] == 0;
  TEST_ASSERT(n_pad > 21);
  float p0[21 * 4], p1[21 * 4];
  sim_urm_click_probs(m, w, 21, b.user, b.hist, b.slate, p0);
  for (int i = 0; i < 21 * 4; i++) TEST_ASSERT(p0[i] > 0.0f && p0[i] < 1.0f);
  /* the padding item: features and id row made large; no probability may move */
  for (int64_t j = 0; j < z.D; j++) d.item_features[j] = 3.0f + (float)j;
  float *emb = nn_params_value_of(sim_urm_params(m), "sim/item/id_emb");
  for (int64_t j = 0; j < c.f; j++) emb[j] = -2.0f + 0.5f * (float)j;
  sim_urm_click_probs(m, w, 21, b.user, b.hist, b.slate, p1);
  float worst = 0.0f;
  for (int i = 0; i < 21 * 4; i++) worst = fmaxf(worst, fabsf(p1[i] - p0[i]));
  TEST_ASSERTF(worst <= 1e-6f, "padding changed a probability by %g", (double)worst);

  /* empty history: every key masked -> c0 = b_o of the cross-attention, whatever the attention
   * weights; the user with history == all zeros must not see the self/cross w_in at all */
  int32_t hist0[6] = {0}, user = 2, slate[4] = {1, 5, 9, 15};
  float q0[4], q1[4];
  sim_urm_click_probs(m, w, 1, &user, hist0, slate, q0);
  float *w_in = nn_params_value_of(sim_urm_params(m), "sim/cross_attn/w_in");
  float *w_in_s = nn_params_value_of(sim_urm_params(m), "sim/self_attn/w_in");
  for (int64_t i = 0; i < 3 * c.f * c.f; i++) {
    w_in[i] *= -1.7f;
    w_in_s[i] += 0.3f;
  }
  sim_urm_click_probs(m, w, 1, &user, hist0, slate, q1);
  for (int k = 0; k < 4; k++) TEST_ASSERT(isfinite(q0[k]) && q0[k] == q1[k]);
  /* ... while b_o does matter */
  float *b_o = nn_params_value_of(sim_urm_params(m), "sim/cross_attn/b_o");
  for (int64_t j = 0; j < c.f; j++) b_o[j] += 0.5f;
  sim_urm_click_probs(m, w, 1, &user, hist0, slate, q1);
  int moved = 0;
  for (int k = 0; k < 4; k++) moved += q0[k] != q1[k];
  TEST_ASSERT(moved > 0);
  batch_free(&b);
  sim_urm_work_free(w);
  sim_urm_free(m);
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- item vectors */

static void test_item_vectors(void) {
  world_sizes z = {9, 3, 4, 5, 2, 3, 10};
  sim_dataset d;
  world_make(&d, NULL, &z, 2);
  sim_urm_config c = small_config(&d, 1, 0.0f, 0.0f);
  sim_urm *m = sim_urm_init(&c, &d, 4);
  float out[10 * 8];
  sim_urm_item_vectors(m, out);
  nn_params *p = sim_urm_params(m);
  const float *w = nn_params_value_of(p, "sim/item/proj/w"), *b = nn_params_value_of(p, "sim/item/proj/b");
  const float *e = nn_params_value_of(p, "sim/item/id_emb");
  for (int64_t i = 0; i <= z.N; i++)
    for (int64_t j = 0; j < c.f; j++) {
      double want = (double)b[j] + (double)e[i * c.f + j];
      for (int64_t k = 0; k < z.D; k++) want += (double)w[j * z.D + k] * (double)d.item_features[i * z.D + k];
      TEST_NEAR(out[i * c.f + j], want, 1e-5);
    }
  for (int64_t j = 0; j < c.f; j++) TEST_ASSERT(e[j] == 0.0f); /* padding row of the id embedding */
  sim_urm_free(m);
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- user context */

/* <c, phi(i)> from sim_urm_user_context and sim_urm_item_vectors is the logit behind
 * sim_urm_click_probs (dropout configured but off at inference, id embedding on and off), the
 * _features variant gives the same c, and neither call allocates. */
static void test_user_context(void) {
  world_sizes z = {17, 4, 6, 5, 4, 6, 40};
  sim_dataset d;
  world_make(&d, NULL, &z, 23);
  const int64_t B = 28, K = z.K;
  for (int id_emb = 0; id_emb <= 1; id_emb++) {
    sim_urm_config c = small_config(&d, id_emb, 0.3f, 3e-4f);
    sim_urm *m = sim_urm_init(&c, &d, 31 + (uint64_t)id_emb);
    sim_urm_work *w = sim_urm_work_init(m, B, 0);
    test_batch b;
    batch_make(&b, &d, 0, B); /* records 0, 7, 14, 21: empty histories */
    const int64_t f = c.f;
    float *phi = hsrl_malloc((size_t)((z.N + 1) * f) * sizeof(float));
    float *ctx = hsrl_malloc((size_t)(B * f) * sizeof(float));
    float *ctx2 = hsrl_malloc((size_t)(B * f) * sizeof(float));
    float *uf = hsrl_malloc((size_t)(B * z.P) * sizeof(float));
    float *p = hsrl_malloc((size_t)(B * K) * sizeof(float));
    float *logits = hsrl_malloc((size_t)(B * K) * sizeof(float));
    for (int64_t i = 0; i < B; i++)
      memcpy(uf + i * z.P, d.user_features + (int64_t)b.user[i] * z.P, (size_t)z.P * sizeof(float));
    sim_urm_item_vectors(m, phi);
    sim_urm_click_probs(m, w, B, b.user, b.hist, b.slate, p);
    memcpy(logits, sim_urm_work_logits(w), (size_t)(B * K) * sizeof(float));
    int64_t before = hsrl_alloc_count();
    sim_urm_user_context(m, w, B, b.user, b.hist, ctx);
    sim_urm_user_context_features(m, w, B, uf, b.hist, ctx2);
    int64_t n_alloc = hsrl_alloc_count() - before;
    double worst_logit = 0.0, worst_p = 0.0, max_logit = 0.0;
    for (int64_t i = 0; i < B; i++)
      for (int64_t k = 0; k < K; k++) {
        const float *y = phi + (int64_t)b.slate[i * K + k] * f;
        double dot = 0.0;
        for (int64_t j = 0; j < f; j++) dot += (double)y[j] * (double)ctx[i * f + j];
        double l = (double)logits[i * K + k];
        worst_logit = fmax(worst_logit, fabs(dot - l));
        worst_p = fmax(worst_p, fabs(1.0 / (1.0 + exp(-dot)) - (double)p[i * K + k]));
        max_logit = fmax(max_logit, fabs(l));
      }
    /* histories matter: two records of one user with different histories get different c */
    int64_t pair = -1;
    for (int64_t i = 1; i < B && pair < 0; i++)
      if (b.user[i] == b.user[0] && memcmp(b.hist, b.hist + i * z.H, (size_t)z.H * 4) != 0)
        pair = i;
    printf("  id_emb %d: max |<c, phi> - logit| %.2e (max |logit| %.2f), max |p diff| %.2e\n",
           id_emb, worst_logit, max_logit, worst_p);
    TEST_ASSERT(max_logit > 0.05 && pair > 0 &&
                memcmp(ctx, ctx + pair * f, (size_t)f * sizeof(float)) != 0);
    TEST_ASSERTF(worst_logit <= 1e-5 && worst_p <= 1e-5, "logit %g p %g", worst_logit, worst_p);
    TEST_ASSERT(memcmp(ctx, ctx2, (size_t)(B * f) * sizeof(float)) == 0);
    TEST_ASSERTF(n_alloc == 0, "%lld allocations in the context calls", (long long)n_alloc);
    hsrl_free(phi);
    hsrl_free(ctx);
    hsrl_free(ctx2);
    hsrl_free(uf);
    hsrl_free(p);
    hsrl_free(logits);
    batch_free(&b);
    sim_urm_work_free(w);
    sim_urm_free(m);
  }
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- allocation */

static void test_no_allocation_in_steady_state(void) {
  world_sizes z = {30, 4, 8, 5, 5, 7, 64};
  sim_dataset d;
  world_make(&d, NULL, &z, 6);
  sim_urm_config c = small_config(&d, 1, 0.2f, 3e-4f);
  sim_urm *m = sim_urm_init(&c, &d, 1);
  sim_urm_work *inf = sim_urm_work_init(m, 32, 0);
  sim_urm_work *tr = sim_urm_work_init(m, 32, 1);
  test_batch b;
  batch_make(&b, &d, 0, 32);
  float p[32 * 5];
  nn_adam_config adam = nn_adam_defaults(1e-3f);
  int64_t before = hsrl_alloc_count();
  for (int it = 0; it < 5; it++) {
    sim_urm_click_probs(m, inf, 32 - it, b.user, b.hist, b.slate, p);
    sim_urm_click_probs_features(m, inf, 3, d.user_features + d.user_dim, b.hist, b.slate, p);
    nn_params_zero_grads(sim_urm_params(m));
    sim_urm_forward(m, tr, 32, b.user, b.hist, b.slate, b.target, 1, (uint64_t)it);
    sim_urm_backward(m, tr, 1.0f);
    nn_params_adam_update(sim_urm_params(m), &adam);
  }
  int64_t after = hsrl_alloc_count();
  batch_free(&b);
  sim_urm_work_free(inf);
  sim_urm_work_free(tr);
  sim_urm_free(m);
  sim_dataset_free(&d);
  TEST_ASSERTF(after == before, "%lld allocations in inference/training steps",
               (long long)(after - before));
}

/* id_l2 (the id embedding's own l2 term) is what moves the row of an item the records never
 * show: without it such a row keeps its initial value, with it the row shrinks toward 0 (an
 * item the data says nothing about is scored by its features alone). */
static double unseen_row_norm_after_steps(const sim_dataset *d, float id_l2, int32_t unseen,
                                          double *before) {
  sim_urm_config c = small_config(d, 1, 0.0f, 3e-4f);
  c.id_l2 = id_l2;
  sim_urm *m = sim_urm_init(&c, d, 5);
  sim_urm_work *tr = sim_urm_work_init(m, 16, 1);
  test_batch b;
  batch_make(&b, d, 0, 16);
  const float *row = nn_params_value_of(sim_urm_params(m), "sim/item/id_emb") + (int64_t)unseen * c.f;
  double n0 = 0.0, n1 = 0.0;
  for (int64_t j = 0; j < c.f; j++) n0 += (double)row[j] * (double)row[j];
  nn_adam_config adam = nn_adam_defaults(1e-2f);
  for (int it = 0; it < 50; it++) {
    nn_params_zero_grads(sim_urm_params(m));
    sim_urm_forward(m, tr, 16, b.user, b.hist, b.slate, b.target, 1, (uint64_t)it);
    sim_urm_backward(m, tr, 1.0f);
    nn_params_adam_update(sim_urm_params(m), &adam);
  }
  for (int64_t j = 0; j < c.f; j++) n1 += (double)row[j] * (double)row[j];
  batch_free(&b);
  sim_urm_work_free(tr);
  sim_urm_free(m);
  *before = sqrt(n0);
  return sqrt(n1);
}

static void test_id_l2_shrinks_unseen_items(void) {
  world_sizes z = {40, 4, 8, 5, 5, 7, 64};
  sim_dataset d;
  world_make(&d, NULL, &z, 6);
  /* the items of the first 16 records (histories and slates); the first item they never show */
  test_batch b;
  batch_make(&b, &d, 0, 16);
  uint8_t shown[41] = {0};
  for (int64_t i = 0; i < 16 * z.H; i++) shown[b.hist[i]] = 1;
  for (int64_t i = 0; i < 16 * z.K; i++) shown[b.slate[i]] = 1;
  batch_free(&b);
  int32_t unseen = 0;
  for (int32_t i = 1; i <= 40 && !unseen; i++)
    if (!shown[i]) unseen = i;
  TEST_ASSERTF(unseen > 0, "every item is in the first 16 records: make the catalog larger");
  double init0, init1;
  double off = unseen_row_norm_after_steps(&d, 0.0f, unseen, &init0);
  double on = unseen_row_norm_after_steps(&d, 0.05f, unseen, &init1);
  printf("  item %d never shown: id row norm %.4f at init; after 50 steps %.4f (id_l2 0), %.4f (0.05)\n",
         unseen, init0, off, on);
  TEST_ASSERT(init0 > 0.0 && init0 == init1);
  TEST_ASSERTF(off == init0, "without id_l2 an unseen item's row moved: %g -> %g", init0, off);
  TEST_ASSERTF(on < 0.5 * init0, "id_l2 0.05 left an unseen item's row at %g of %g", on, init0);
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- training */

static void tiny_settings(hsrl_settings *s) {
  hsrl_settings_defaults(s);
  s->sim.f = 8;
  s->sim.hidden = 32;
  s->sim.heads = 2;
  s->sim.dropout = 0.1;
  s->sim.lr = 1e-2;
  s->sim.batch = 64;
  s->sim.max_epochs = 8;
  s->sim.patience = 3;
  s->sim.val_fraction = 0.1;
  s->run.seed = 3;
}

static void test_training_learns_item_effect(void) {
  world_sizes z = {60, 4, 40, 6, 5, 8, 2500};
  sim_dataset d;
  float *true_p = hsrl_malloc((size_t)(z.R * z.K) * sizeof(float));
  world_make(&d, true_p, &z, 21);
  TEST_ASSERTF(sim_dataset_validate(&d, "world") == HSRL_OK, "%s", hsrl_err_message());
  /* the AUC of the true probabilities on the test records: the best any model can expect */
  float *tp = hsrl_malloc((size_t)(d.n_test * z.K) * sizeof(float));
  uint8_t *ty = hsrl_malloc((size_t)(d.n_test * z.K));
  for (int64_t i = 0; i < d.n_test; i++)
    for (int64_t k = 0; k < z.K; k++) {
      tp[i * z.K + k] = true_p[d.test_idx[i] * z.K + k];
      ty[i * z.K + k] = d.rec_clicks[d.test_idx[i] * z.K + k];
    }
  double oracle = sim_metrics_auc(tp, ty, d.n_test * z.K);
  hsrl_settings s;
  tiny_settings(&s);
  sim_urm_config c = sim_urm_config_make(&s.sim, &d);
  sim_urm *m = sim_urm_init(&c, &d, 8);
  sim_urm_train_options opt = sim_urm_train_options_make(&s, 0);
  opt.verbose = 0;
  sim_urm_train_log log;
  hsrl_status st = sim_urm_train(m, &d, &opt, &log);
  const sim_urm_epoch *best = sim_urm_train_log_best(&log);
  printf("  oracle AUC %.4f; epoch 1 test AUC %.4f; best epoch %lld of %lld: test AUC %.4f macro "
         "%.4f logloss %.4f ECE %.4f held-out %.4f\n",
         oracle, log.epochs[0].test.auc, (long long)log.best_epoch, (long long)log.n_epochs,
         best ? best->test.auc : 0.0, best ? best->test.macro_auc : 0.0,
         best ? best->test.log_loss : 0.0, best ? best->test.ece : 0.0, best ? best->val_auc : 0.0);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  int64_t want = (int64_t)floor(0.1 * (double)d.n_train + 0.5);
  TEST_ASSERT(best != NULL && 2 * log.n_val >= want && log.n_val <= want && !log.held_out_random);
  TEST_ASSERT(log.n_fit + log.n_val == d.n_train && !log.stop_on_test);
  TEST_ASSERT(oracle > 0.7);
  TEST_ASSERTF(best->test.auc > 0.5 + 0.6 * (oracle - 0.5), "test AUC %g, oracle %g",
               best->test.auc, oracle);
  TEST_ASSERT(best->test.macro_auc > 0.5 + 0.5 * (oracle - 0.5));
  TEST_ASSERT(best->test.ece < 0.1 && best->test.log_loss < 0.6931472);
  /* the model keeps the best epoch: re-evaluating it gives that epoch's test AUC */
  sim_urm_work *w = sim_urm_work_init(m, d.n_test, 0);
  test_batch b;
  batch_make(&b, &d, d.n_train, d.n_test);
  float *p = hsrl_malloc((size_t)(d.n_test * z.K) * sizeof(float));
  sim_urm_click_probs(m, w, d.n_test, b.user, b.hist, b.slate, p);
  TEST_NEAR(sim_metrics_auc(p, ty, d.n_test * z.K), best->test.auc, 1e-6);
  hsrl_free(p);
  batch_free(&b);
  sim_urm_work_free(w);
  sim_urm_train_log_free(&log);
  sim_urm_free(m);
  hsrl_free(tp);
  hsrl_free(ty);
  hsrl_free(true_p);
  sim_dataset_free(&d);
}

/* ---------------------------------------------------------------- model file */

static void test_save_load_identical(void) {
  world_sizes z = {25, 3, 10, 4, 4, 5, 300};
  sim_dataset d;
  world_make(&d, NULL, &z, 13);
  hsrl_settings s;
  tiny_settings(&s);
  s.sim.max_epochs = 2;
  sim_urm_config c = sim_urm_config_make(&s.sim, &d);
  sim_urm *m = sim_urm_init(&c, &d, 2);
  sim_urm_train_options opt = sim_urm_train_options_make(&s, 1);
  opt.verbose = 0;
  sim_urm_train_log log;
  TEST_ASSERTF(sim_urm_train(m, &d, &opt, &log) == HSRL_OK, "%s", hsrl_err_message());
  char path[1024];
  snprintf(path, sizeof path, "%s/urm.sim-all.h5", test_tmpdir());
  TEST_ASSERTF(sim_urm_save(m, path, &log, &s, "world.data.h5", 1) == HSRL_OK, "%s",
               hsrl_err_message());

  sim_urm *m2 = NULL;
  TEST_ASSERTF(sim_urm_load(&m2, path, &d) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(sim_urm_get_config(m2)->item_id_embedding == c.item_id_embedding);
  TEST_ASSERT(sim_urm_get_config(m2)->id_l2 == c.id_l2 && c.id_l2 > 0.0f);
  TEST_ASSERT(nn_params_same_layout(sim_urm_params(m), sim_urm_params(m2)));
  sim_urm_work *w = sim_urm_work_init(m, 64, 0);
  test_batch b;
  batch_make(&b, &d, 0, 64);
  float p1[64 * 4], p2[64 * 4];
  sim_urm_click_probs(m, w, 64, b.user, b.hist, b.slate, p1);
  sim_urm_click_probs(m2, w, 64, b.user, b.hist, b.slate, p2);
  TEST_ASSERT(memcmp(p1, p2, sizeof p1) == 0);

  /* a data file of other sizes is refused with a message naming the size */
  sim_dataset other;
  world_sizes z2 = z;
  z2.N = 26;
  world_make(&other, NULL, &z2, 13);
  sim_urm *m3 = NULL;
  hsrl_status st = sim_urm_load(&m3, path, &other);
  TEST_ASSERT(st == HSRL_E_INPUT && m3 == NULL);
  TEST_ASSERTF(strstr(hsrl_err_message(), "n_items") != NULL, "message: %s", hsrl_err_message());
  /* a data file is not a simulator file */
  char dpath[1024];
  snprintf(dpath, sizeof dpath, "%s/world.data.h5", test_tmpdir());
  TEST_ASSERTF(sim_dataset_write(&d, dpath, NULL, 0) == HSRL_OK, "%s", hsrl_err_message());
  st = sim_urm_load(&m3, dpath, &d);
  TEST_ASSERT(st != HSRL_OK && m3 == NULL);
  /* a truncated model file is an error, not a crash */
  char tpath[1024];
  snprintf(tpath, sizeof tpath, "%s/truncated.sim.h5", test_tmpdir());
  FILE *in = fopen(path, "rb"), *out = fopen(tpath, "wb");
  TEST_ASSERT(in && out);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, in);
  fwrite(buf, 1, n / 2, out);
  fclose(in);
  fclose(out);
  st = sim_urm_load(&m3, tpath, &d);
  TEST_ASSERT(st != HSRL_OK && m3 == NULL);

  batch_free(&b);
  sim_urm_work_free(w);
  sim_urm_free(m2);
  sim_urm_free(m);
  sim_urm_train_log_free(&log);
  sim_dataset_free(&other);
  sim_dataset_free(&d);
}

static void test_train_command(void) {
  world_sizes z = {20, 3, 8, 4, 4, 5, 250};
  sim_dataset d;
  world_make(&d, NULL, &z, 17);
  char dpath[1024], opath[1024];
  snprintf(dpath, sizeof dpath, "%s/cmd.data.h5", test_tmpdir());
  snprintf(opath, sizeof opath, "%s/cmd.sim-train.h5", test_tmpdir());
  TEST_ASSERTF(sim_dataset_write(&d, dpath, NULL, 0) == HSRL_OK, "%s", hsrl_err_message());
  char *argv[] = {"sim", "train", "--data", dpath, "--split", "train", "--out", opath,
                  "--epochs", "2", "--set", "sim.hidden=16", "--no-item-id", "--quiet", NULL};
  int rc = sim_train_command(14, argv);
  TEST_ASSERT(rc == 0);
  sim_urm *m = NULL;
  TEST_ASSERTF(sim_urm_load(&m, opath, &d) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(sim_urm_get_config(m)->item_id_embedding == 0 && sim_urm_get_config(m)->hidden == 16);
  sim_urm_free(m);
  char *bad_split[] = {"sim", "train", "--data", dpath, "--split", "test", "--out", opath, NULL};
  TEST_ASSERT(sim_train_command(8, bad_split) == 2);
  char *missing[] = {"sim", "train", "--data", dpath, NULL};
  TEST_ASSERT(sim_train_command(4, missing) == 2);
  char *bad_key[] = {"sim", "train", "--data", dpath, "--split", "all", "--out", opath,
                     "--set", "sim.nope=1", "--quiet", NULL};
  TEST_ASSERT(sim_train_command(11, bad_key) == 2);
  char nopath[1024];
  snprintf(nopath, sizeof nopath, "%s/missing.data.h5", test_tmpdir());
  char *no_file[] = {"sim", "train", "--data", nopath, "--split", "all", "--out", opath, "--quiet", NULL};
  TEST_ASSERT(sim_train_command(9, no_file) == 2);
  sim_dataset_free(&d);
}

int main(void) {
  TEST_RUN(test_gradient_direction);
  TEST_RUN(test_padding_is_masked_and_empty_history);
  TEST_RUN(test_item_vectors);
  TEST_RUN(test_user_context);
  TEST_RUN(test_no_allocation_in_steady_state);
  TEST_RUN(test_id_l2_shrinks_unseen_items);
  TEST_RUN(test_training_learns_item_effect);
  TEST_RUN(test_save_load_identical);
  TEST_RUN(test_train_command);
  return test_summary();
}
