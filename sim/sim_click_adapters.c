/* sim_click_adapters.c: the synthetic world and the learned simulator as sim_click_model's
 * (contracts in sim_click_adapters.h; method.md section 4). */
#include "sim/sim_click_adapters.h"

#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

/* ---------------------------------------------------------------- synthetic world */

static void adapters_synth_probs(void *ctx, int64_t b, const int32_t *user_ids,
                                 const int32_t *histories, const int32_t *slates, float *out_p) {
  sim_synth_click_probs_batch((const sim_synth_world *)ctx, b, user_ids, histories, slates, out_p);
}

static void adapters_synth_scores(void *ctx, int64_t b, const int32_t *user_ids,
                                  const int32_t *histories, const int32_t *items, int64_t n,
                                  float *out) {
  const sim_synth_world *w = ctx;
  const int64_t H = w->cfg.history_len;
  for (int64_t i = 0; i < b; i++)
    sim_synth_item_logits(w, user_ids[i], histories + i * H, items, n, out + i * n);
}

sim_click_model sim_click_adapters_synth(const sim_synth_world *w) {
  HSRL_CHECK(w != NULL && w->n_items >= 1);
  sim_click_model m;
  memset(&m, 0, sizeof m);
  m.ctx = (void *)w; /* read-only: the callbacks take it back as const */
  m.probs = adapters_synth_probs;
  m.scores = adapters_synth_scores;
  m.scores_logit = 1;
  m.n_items = w->n_items;
  m.slate_size = w->cfg.slate_size;
  m.history_len = w->cfg.history_len;
  return m;
}

/* ---------------------------------------------------------------- learned simulator */

struct sim_click_adapters_urm {
  const sim_urm *m;
  sim_urm_work *work;
  int64_t max_batch; /* rows per model call */
  int64_t N, K, H, f;
  float *phi;   /* (N+1, f) item vectors */
  float *ctx_c; /* (max_batch, f) user contexts */
};

static void adapters_urm_probs(void *ctx, int64_t b, const int32_t *user_ids,
                               const int32_t *histories, const int32_t *slates, float *out_p) {
  sim_click_adapters_urm *a = ctx;
  for (int64_t i0 = 0; i0 < b; i0 += a->max_batch) {
    int64_t n = b - i0 < a->max_batch ? b - i0 : a->max_batch;
    sim_urm_click_probs(a->m, a->work, n, user_ids + i0, histories + i0 * a->H, slates + i0 * a->K,
                        out_p + i0 * a->K);
  }
}

static void adapters_urm_scores(void *ctx, int64_t b, const int32_t *user_ids,
                                const int32_t *histories, const int32_t *items, int64_t n,
                                float *out) {
  sim_click_adapters_urm *a = ctx;
  const int64_t f = a->f;
  for (int64_t j = 0; j < n; j++)
    HSRL_CHECKF(items[j] >= 1 && items[j] <= a->N, "urm scores: item %d not in [1, %lld]", items[j],
                (long long)a->N);
  for (int64_t i0 = 0; i0 < b; i0 += a->max_batch) {
    int64_t nb = b - i0 < a->max_batch ? b - i0 : a->max_batch;
    sim_urm_user_context(a->m, a->work, nb, user_ids + i0, histories + i0 * a->H, a->ctx_c);
    for (int64_t i = 0; i < nb; i++) {
      const float *c = a->ctx_c + i * f;
      float *o = out + (i0 + i) * n;
      for (int64_t j = 0; j < n; j++) {
        const float *y = a->phi + (int64_t)items[j] * f;
        float dot = 0.0f; /* the model's own order of summation */
        for (int64_t t = 0; t < f; t++) dot += y[t] * c[t];
        o[j] = dot;
      }
    }
  }
}

sim_click_adapters_urm *sim_click_adapters_urm_init(const sim_urm *m, int64_t max_batch) {
  HSRL_CHECK(m != NULL && max_batch >= 1);
  const sim_urm_config *c = sim_urm_get_config(m);
  sim_click_adapters_urm *a = hsrl_calloc(1, sizeof *a);
  a->m = m;
  a->max_batch = max_batch;
  a->N = c->n_items;
  a->K = c->slate_size;
  a->H = c->history_len;
  a->f = c->f;
  a->work = sim_urm_work_init(m, max_batch, 0);
  a->phi = hsrl_malloc((size_t)((a->N + 1) * a->f) * sizeof(float));
  sim_urm_item_vectors(m, a->phi);
  a->ctx_c = hsrl_malloc((size_t)(max_batch * a->f) * sizeof(float));
  return a;
}

void sim_click_adapters_urm_free(sim_click_adapters_urm *a) {
  if (!a) return;
  sim_urm_work_free(a->work);
  hsrl_free(a->phi);
  hsrl_free(a->ctx_c);
  hsrl_free(a);
}

sim_click_model sim_click_adapters_urm_model(sim_click_adapters_urm *a) {
  sim_click_model m;
  memset(&m, 0, sizeof m);
  m.ctx = a;
  m.probs = adapters_urm_probs;
  m.scores = adapters_urm_scores;
  m.scores_logit = 1;
  m.n_items = a->N;
  m.slate_size = a->K;
  m.history_len = a->H;
  return m;
}
