/* agent_hsrl_diverse.c: see agent_hsrl_diverse.h (greedy and sampled slates with at most `cap`
 * items per level-1 SID token). */
#include "learner/agents/agent_hsrl_diverse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

void agent_hsrl_diverse_reserve(agent_hsrl_diverse_ws *ws, const sim_sid_index *idx) {
  if (idx->n_live > ws->cap_live) {
    hsrl_free(ws->scored);
    ws->scored = hsrl_malloc((size_t)idx->n_live * sizeof *ws->scored);
    ws->cap_live = idx->n_live;
  }
  if (idx->n_items > ws->cap_items) {
    hsrl_free(ws->mark);
    ws->mark = hsrl_calloc((size_t)idx->n_items + 1, 1);
    ws->cap_items = idx->n_items;
  }
  if (idx->vocab[0] > ws->cap_vocab) {
    hsrl_free(ws->count);
    ws->count = hsrl_calloc((size_t)idx->vocab[0], sizeof(int32_t));
    ws->cap_vocab = idx->vocab[0];
  }
}

void agent_hsrl_diverse_free(agent_hsrl_diverse_ws *ws) {
  hsrl_free(ws->scored);
  hsrl_free(ws->mark);
  hsrl_free(ws->count);
  memset(ws, 0, sizeof *ws);
}

static int by_score_desc(const void *x, const void *y) {
  const agent_hsrl_diverse_scored *a = x, *b = y;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->order > b->order) - (a->order < b->order);
}

static const float *level_row(const sim_sid_logp *lp, const sim_sid_index *idx, int l, int64_t b) {
  const int64_t stride = lp->stride[l] ? lp->stride[l] : idx->vocab[l];
  return lp->level[l] + b * stride;
}

/* Takes scored[j] into slot k of state b. */
static void take(int32_t *items, float *tok_logp, const sim_sid_index *idx, const sim_sid_logp *lp, int64_t b,
                 int64_t K, int64_t k, int32_t item, agent_hsrl_diverse_ws *ws) {
  const int L = idx->n_levels;
  items[b * K + k] = item;
  ws->mark[item] = 1;
  ws->count[idx->tokens[(int64_t)item * L]]++;
  if (!tok_logp) return;
  for (int l = 0; l < L; l++)
    tok_logp[(b * K + k) * L + l] = level_row(lp, idx, l, b)[idx->tokens[(int64_t)item * L + l]];
}

/* Scores state b's allowed items into ws->scored (returns how many): log p(i|s), or with rng its
 * Gumbel key log q_i + G_i (q: p mixed with eps / M over the M allowed items). */
static int64_t score_state(const sim_sid_index *idx, const float *const *row, double eps, hsrl_rng *rng,
                           agent_hsrl_diverse_ws *ws) {
  const int L = idx->n_levels;
  int64_t n = 0;
  double smax = -HUGE_VAL;
  for (int64_t j = 0; j < idx->n_live; j++) {
    const int32_t item = idx->bucket_items[j];
    if (ws->mark[item]) continue;
    const uint16_t *z = idx->tokens + (int64_t)item * L;
    double s = 0.0;
    for (int l = 0; l < L; l++) s += (double)row[l][z[l]];
    ws->scored[n].score = s, ws->scored[n].item = item, ws->scored[n].order = (int32_t)j;
    smax = s > smax ? s : smax;
    n++;
  }
  if (!rng) return n;
  double q_sum = 0.0;
  if (eps > 0.0 && smax > -HUGE_VAL)
    for (int64_t j = 0; j < n; j++) q_sum += exp(ws->scored[j].score - smax);
  for (int64_t j = 0; j < n; j++) {
    double key = ws->scored[j].score;
    if (eps > 0.0) {
      const double q = q_sum > 0.0 ? exp(key - smax) / q_sum : 0.0;
      key = log((1.0 - eps) * q + eps / (double)n);
    }
    ws->scored[j].score = key + hsrl_rng_gumbel(rng);
  }
  return n;
}

/* The slates of B states: greedy (rng NULL) or sampled (Gumbel keys). */
static void slates(int32_t *items, float *tok_logp, const sim_sid_index *idx, const sim_sid_logp *lp, int64_t B,
                   int64_t K, int64_t cap, double eps, hsrl_rng *rng, agent_hsrl_diverse_ws *ws) {
  HSRL_CHECK(cap >= 1 && K >= 1);
  HSRL_CHECKF(eps >= 0.0 && eps <= 1.0, "epsilon = %g", eps);
  HSRL_CHECKF(ws->cap_live >= idx->n_live && ws->cap_items >= idx->n_items && ws->cap_vocab >= idx->vocab[0],
              "agent_hsrl_diverse_reserve was not called for this index");
  const int L = idx->n_levels;
  for (int64_t b = 0; b < B; b++) {
    const int32_t *ex = NULL;
    if (lp->exclude) ex = lp->exclude + b * (lp->exclude_stride ? lp->exclude_stride : lp->exclude_n);
    for (int64_t j = 0; ex && j < lp->exclude_n; j++)
      if (ex[j] > 0 && ex[j] <= idx->n_items) ws->mark[ex[j]] = 1;
    const float *row[SIM_SID_MAX_LEVELS];
    for (int l = 0; l < L; l++) row[l] = level_row(lp, idx, l, b);
    const int64_t n = score_state(idx, row, eps, rng, ws);
    qsort(ws->scored, (size_t)n, sizeof *ws->scored, by_score_desc);
    int64_t k = 0;
    for (int64_t j = 0; j < n && k < K; j++) /* best first, at most cap per level-1 token */
      if (ws->count[idx->tokens[(int64_t)ws->scored[j].item * L]] < cap)
        take(items, tok_logp, idx, lp, b, K, k++, ws->scored[j].item, ws);
    for (int64_t j = 0; j < n && k < K; j++) /* too few tokens: the skipped ones, best first */
      if (!ws->mark[ws->scored[j].item]) take(items, tok_logp, idx, lp, b, K, k++, ws->scored[j].item, ws);
    for (; k < K; k++) {
      items[b * K + k] = 0;
      for (int l = 0; tok_logp && l < L; l++) tok_logp[(b * K + k) * L + l] = 0.0f;
    }
    /* clear the marks and counts this state set */
    for (int64_t j = 0; ex && j < lp->exclude_n; j++)
      if (ex[j] > 0 && ex[j] <= idx->n_items) ws->mark[ex[j]] = 0;
    for (int64_t s = 0; s < K; s++) {
      const int32_t item = items[b * K + s];
      if (item <= 0) continue;
      ws->mark[item] = 0;
      ws->count[idx->tokens[(int64_t)item * L]] = 0;
    }
  }
}

void agent_hsrl_diverse_topk(int32_t *items, float *tok_logp, const sim_sid_index *idx, const sim_sid_logp *lp,
                             int64_t B, int64_t K, int64_t cap, agent_hsrl_diverse_ws *ws) {
  slates(items, tok_logp, idx, lp, B, K, cap, 0.0, NULL, ws);
}

void agent_hsrl_diverse_sample(int32_t *items, float *tok_logp, const sim_sid_index *idx, const sim_sid_logp *lp,
                               int64_t B, int64_t K, int64_t cap, float eps, hsrl_rng *rng,
                               agent_hsrl_diverse_ws *ws) {
  HSRL_CHECK(rng != NULL);
  slates(items, tok_logp, idx, lp, B, K, cap, (double)eps, rng, ws);
}
