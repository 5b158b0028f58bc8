/* test_sim_sid_decode.c: slate decoding from per-level token distributions (sim_sid_decode.h;
 * method.md §6). Checks: top-K by best-first trie search equals brute-force scoring of every item
 * (and an independent sort in this file) on 1,000 random cases with ties, collisions, -inf and
 * K > catalog, also when the heap is forced to overflow; the numbers it reads do not grow with N;
 * candidate-list scoring and top-K; trie sampling matches the restricted product distribution
 * (chi-square with a fixed seed, for K = 1, for ordered pairs with K = 2 through proposals only,
 * the leaf table only and the automatic choice, with eps-mixing and on the exact-sweep path),
 * while the same test rejects the per-level-renormalised descent; the automatic choice takes the
 * table at once where proposals miss and never where they hit; list
 * sampling matches the reference's (1 - eps) q + eps / M; no allocation per call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "sim/sim_sid_decode.h"
#include "tests/test_harness.h"

typedef struct world {
  int L;
  int64_t vocab[SIM_SID_MAX_LEVELS];
  int64_t n;
  uint16_t *tokens; /* (n+1, L) */
  uint8_t *live;    /* (n+1) */
  sim_sid_index idx;
  sim_sid_trie trie;
} world;

static void world_make(world *w, int L, const int64_t *vocab, const int64_t *used, int64_t n, double p_live,
                       uint64_t tie_seed, hsrl_rng *r) {
  memset(w, 0, sizeof *w);
  w->L = L, w->n = n;
  for (int l = 0; l < L; l++) w->vocab[l] = vocab[l];
  w->tokens = hsrl_calloc((size_t)(n + 1) * (size_t)L, sizeof(uint16_t));
  w->live = hsrl_calloc((size_t)(n + 1), 1);
  for (int64_t i = 1; i <= n; i++) {
    for (int l = 0; l < L; l++) w->tokens[i * L + l] = (uint16_t)hsrl_rng_below(r, (uint64_t)used[l]);
    w->live[i] = hsrl_rng_uniform_double(r) < p_live;
  }
  HSRL_CHECK(sim_sid_index_init(&w->idx, L, vocab, n, w->tokens, w->live, tie_seed) == HSRL_OK);
  sim_sid_trie_build(&w->trie, &w->idx);
}

static void world_free(world *w) {
  sim_sid_trie_free(&w->trie);
  sim_sid_index_free(&w->idx);
  hsrl_free(w->tokens);
  hsrl_free(w->live);
}

/* log-softmax of Gaussian logits (scale s) into x (V). */
static void fill_log_softmax(float *x, int64_t v, double s, hsrl_rng *r) {
  double m = -HUGE_VAL, z = 0.0;
  double *t = hsrl_malloc((size_t)v * sizeof(double));
  for (int64_t j = 0; j < v; j++) t[j] = s * hsrl_rng_normal(r), m = t[j] > m ? t[j] : m;
  for (int64_t j = 0; j < v; j++) z += exp(t[j] - m);
  for (int64_t j = 0; j < v; j++) x[j] = (float)(t[j] - m - log(z));
  hsrl_free(t);
}

/* ---- an independent reference for top-K: score every live item, sort ------------------- */

typedef struct ref_item {
  double score;
  uint64_t tie;
  int32_t item;
} ref_item;

static int ref_cmp(const void *a, const void *b) {
  const ref_item *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->tie < y->tie ? -1 : x->tie > y->tie;
}

static int64_t reference_topk(ref_item *out, const world *w, const float *const *lp, int64_t k) {
  int64_t n = 0;
  for (int64_t i = 1; i <= w->n; i++) {
    if (!w->live[i]) continue;
    double s = 0.0;
    for (int l = 0; l < w->L; l++) s += (double)lp[l][w->tokens[i * w->L + l]];
    out[n++] = (ref_item){s, sim_sid_index_tie_key(&w->idx, i), (int32_t)i};
  }
  qsort(out, (size_t)n, sizeof *out, ref_cmp);
  return n < k ? n : k;
}

static void test_topk_equals_brute_force(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 2024, 0);
  enum { B = 3, KMAX = 14 };
  sim_sid_decode_ws ws, ws_small;
  sim_sid_decode_ws_init(&ws, KMAX, 4, 9, 0);
  sim_sid_decode_ws_init(&ws_small, KMAX, 4, 9, 9 + KMAX + 1); /* forces the branch-and-bound path */
  int64_t n_ties_checked = 0, n_short = 0;
  for (int cs = 0; cs < 1000; cs++) {
    int L = 1 + (int)hsrl_rng_below(&r, 4);
    int64_t vocab[4], used[4];
    for (int l = 0; l < L; l++) {
      vocab[l] = 1 + (int64_t)hsrl_rng_below(&r, 9);
      used[l] = hsrl_rng_below(&r, 3) == 0 ? 1 + (int64_t)hsrl_rng_below(&r, (uint64_t)vocab[l]) : vocab[l];
    }
    int64_t n = (int64_t)hsrl_rng_below(&r, 300);
    world w;
    world_make(&w, L, vocab, used, n, hsrl_rng_below(&r, 4) ? 1.0 : 0.6, hsrl_rng_below(&r, 2) ? 0 : 1 + cs, &r);
    int64_t k = 1 + (int64_t)hsrl_rng_below(&r, KMAX);
    /* 0: log-softmax; 1: a few levels (ties across SIDs); 2: all equal; 3: 1 with -inf; 4: raw
     * logits as unnormalised log-weights (positive too) */
    int mode = (int)hsrl_rng_below(&r, 5);
    float *lpbuf[4];
    for (int l = 0; l < L; l++) {
      lpbuf[l] = hsrl_malloc((size_t)(B * vocab[l]) * sizeof(float));
      for (int64_t j = 0; j < B * vocab[l]; j++) {
        if (mode == 0) continue;
        if (mode == 4) {
          lpbuf[l][j] = (float)(2.0 * hsrl_rng_normal(&r));
          continue;
        }
        static const float levels[4] = {0.0f, -1.0f, -2.0f, -0.5f};
        lpbuf[l][j] = mode == 2 ? -1.0f : levels[hsrl_rng_below(&r, 4)];
        if (mode == 3 && hsrl_rng_below(&r, 4) == 0) lpbuf[l][j] = -INFINITY;
      }
      if (mode == 0)
        for (int b = 0; b < B; b++) fill_log_softmax(lpbuf[l] + b * vocab[l], vocab[l], 1.5, &r);
    }
    sim_sid_logp view;
    memset(&view, 0, sizeof view);
    for (int l = 0; l < L; l++) view.level[l] = lpbuf[l];
    int32_t items[B * KMAX], items_bf[B * KMAX], items_bb[B * KMAX];
    double logp[B * KMAX], logp_bf[B * KMAX], logp_bb[B * KMAX];
    float tok[B * KMAX * 4], tok_bf[B * KMAX * 4];
    sim_sid_decode_topk(items, logp, tok, &w.idx, &w.trie, &view, B, k, &ws);
    sim_sid_decode_topk_list(items_bf, logp_bf, tok_bf, &w.idx, &view, NULL, 0, B, k, &ws);
    sim_sid_decode_topk(items_bb, logp_bb, NULL, &w.idx, &w.trie, &view, B, k, &ws_small);
    ref_item *ref = hsrl_malloc((size_t)(n + 1) * sizeof(ref_item));
    for (int b = 0; b < B; b++) {
      const float *lp[4];
      for (int l = 0; l < L; l++) lp[l] = lpbuf[l] + b * vocab[l];
      int64_t kk = reference_topk(ref, &w, lp, k);
      n_short += kk < k;
      for (int64_t s = 0; s < k; s++) {
        int32_t want = s < kk ? ref[s].item : 0;
        int64_t o = b * k + s;
        TEST_ASSERTF(items[o] == want && items_bf[o] == want && items_bb[o] == want,
                     "case %d (L %d, N %lld, K %lld, mode %d) state %d slot %lld: trie %d, brute %d, b&b %d, ref %d",
                     cs, L, (long long)n, (long long)k, mode, b, (long long)s, items[o], items_bf[o], items_bb[o], want);
        if (s < kk) {
          TEST_ASSERT(logp[o] == ref[s].score && logp_bf[o] == ref[s].score && logp_bb[o] == ref[s].score);
          for (int l = 0; l < L; l++) TEST_ASSERT(tok[o * L + l] == lp[l][w.tokens[want * L + l]]);
          if (s > 0 && ref[s].score == ref[s - 1].score) n_ties_checked++;
        } else {
          TEST_ASSERT(logp[o] == -HUGE_VAL && tok[o * L] == 0.0f);
        }
      }
      (void)tok_bf;
    }
    hsrl_free(ref);
    for (int l = 0; l < L; l++) hsrl_free(lpbuf[l]);
    world_free(&w);
  }
  printf("  %lld tied neighbours checked; %lld forced branch-and-bound searches\n", (long long)n_ties_checked,
         (long long)ws_small.stats.n_heap_fallbacks);
  TEST_ASSERTF(n_ties_checked > 1000, "only %lld tied neighbours checked", (long long)n_ties_checked);
  TEST_ASSERT(n_short > 0);
  TEST_ASSERT(ws.stats.n_heap_fallbacks == 0); /* the default heap never overflowed here */
  TEST_ASSERTF(ws_small.stats.n_heap_fallbacks > 100, "%lld fallbacks", (long long)ws_small.stats.n_heap_fallbacks);
  sim_sid_decode_ws_free(&ws);
  sim_sid_decode_ws_free(&ws_small);
}

/* The numbers a search reads do not grow with the catalog: N = 20,000 and 400,000, V = 64. */
static void test_topk_cost_independent_of_n(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 77, 0);
  const int64_t vocab[3] = {64, 64, 64};
  enum { B = 50, K = 10 };
  float *lp[3];
  for (int l = 0; l < 3; l++) {
    lp[l] = hsrl_malloc(B * 64 * sizeof(float));
    for (int b = 0; b < B; b++) fill_log_softmax(lp[l] + b * 64, 64, 2.0, &r);
  }
  sim_sid_logp view = {.level = {lp[0], lp[1], lp[2], NULL}};
  double per_state[2];
  int64_t sizes[2] = {20000, 400000};
  for (int t = 0; t < 2; t++) {
    world w;
    world_make(&w, 3, vocab, vocab, sizes[t], 1.0, 0, &r);
    sim_sid_decode_ws ws;
    sim_sid_decode_ws_init(&ws, K, 3, 64, 0);
    int32_t items[B * K];
    sim_sid_decode_topk(items, NULL, NULL, &w.idx, &w.trie, &view, B, K, &ws);
    per_state[t] = (double)ws.stats.n_touched / B;
    TEST_ASSERT(ws.stats.n_heap_fallbacks == 0);
    /* spot check against brute force */
    int32_t items_bf[B * K];
    sim_sid_decode_topk_list(items_bf, NULL, NULL, &w.idx, &view, NULL, 0, B, K, &ws);
    TEST_ASSERT(!memcmp(items, items_bf, sizeof items));
    sim_sid_decode_ws_free(&ws);
    world_free(&w);
  }
  printf("  numbers read per state, K = %d, L = 3, V = 64: %.0f at N = 20,000, %.0f at N = 400,000\n", K,
         per_state[0], per_state[1]);
  /* O(K L V) = 1,920 here; a scan would read 3 N numbers (60,000 and 1,200,000) */
  TEST_ASSERTF(per_state[0] < 4.0 * K * 3 * 64 && per_state[1] < 4.0 * K * 3 * 64,
               "numbers read per state: %.0f (N = 20k), %.0f (N = 400k)", per_state[0], per_state[1]);
  TEST_ASSERTF(per_state[1] < 2.0 * per_state[0], "cost grows with N: %.0f -> %.0f", per_state[0], per_state[1]);
  for (int l = 0; l < 3; l++) hsrl_free(lp[l]);
}

static void test_candidate_lists(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 8, 0);
  const int64_t vocab[3] = {5, 4, 3}, used[3] = {3, 4, 2};
  world w;
  world_make(&w, 3, vocab, used, 80, 0.8, 0, &r);
  enum { B = 4, M = 30, K = 6 };
  float lp0[B * 5], lp1[B * 4], lp2[B * 3];
  for (int b = 0; b < B; b++) {
    fill_log_softmax(lp0 + b * 5, 5, 1.0, &r);
    fill_log_softmax(lp1 + b * 4, 4, 1.0, &r);
    for (int j = 0; j < 3; j++) lp2[b * 3 + j] = b == 3 ? -1.0f : (float)-j; /* state 3: ties */
  }
  sim_sid_logp view = {.level = {lp0, lp1, lp2, NULL}};
  int32_t cand[B * M];
  for (int b = 0; b < B; b++) { /* distinct ids, with padding 0 and dead items among them */
    int64_t perm[80];
    hsrl_rng_permutation(&r, perm, 80);
    for (int j = 0; j < M; j++) cand[b * M + j] = (int32_t)perm[j];
  }
  double scores[B * M];
  sim_sid_decode_score(scores, &w.idx, &view, cand, B, M);
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, K, 3, 5, 0);
  int32_t items[B * K];
  double logp[B * K];
  sim_sid_decode_topk_list(items, logp, NULL, &w.idx, &view, cand, M, B, K, &ws);
  for (int b = 0; b < B; b++) {
    ref_item ref[M];
    int64_t n = 0;
    for (int j = 0; j < M; j++) {
      int32_t i = cand[b * M + j];
      double s = (double)lp0[b * 5 + w.tokens[i * 3]] + (double)lp1[b * 4 + w.tokens[i * 3 + 1]] +
                 (double)lp2[b * 3 + w.tokens[i * 3 + 2]];
      if (i == 0 || !w.live[i]) {
        TEST_ASSERT(scores[b * M + j] == -HUGE_VAL);
        continue;
      }
      TEST_ASSERT(scores[b * M + j] == s);
      ref[n++] = (ref_item){s, (uint64_t)i, i};
    }
    qsort(ref, (size_t)n, sizeof *ref, ref_cmp);
    for (int s = 0; s < K; s++) TEST_ASSERT(items[b * K + s] == ref[s].item && logp[b * K + s] == ref[s].score);
  }
  /* fewer valid candidates than K: padding */
  int32_t few[2] = {0, 0};
  for (int32_t i = 1; i <= 80 && !few[1]; i++)
    if (w.live[i]) few[few[0] ? 1 : 0] = i;
  sim_sid_decode_topk_list(items, logp, NULL, &w.idx, &view, few, 2, 1, K, &ws);
  TEST_ASSERT(items[2] == 0 && items[K - 1] == 0 && logp[2] == -HUGE_VAL && items[0] && items[1]);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* ---- sampling ------------------------------------------------------------------------------ */

/* Chi-square statistic over cells with expected count > 0, and the 0.1% critical value
 * (Wilson-Hilferty). Cells with expected 0 must be observed 0 (else +inf). */
static double chi_square(const int64_t *obs, const double *prob, int64_t cells, int64_t n, double *crit) {
  double x2 = 0.0;
  int64_t df = -1;
  for (int64_t c = 0; c < cells; c++) {
    double e = prob[c] * (double)n;
    if (e <= 0.0) {
      if (obs[c]) return HUGE_VAL;
      continue;
    }
    x2 += ((double)obs[c] - e) * ((double)obs[c] - e) / e;
    df++;
  }
  double h = 2.0 / (9.0 * (double)df);
  *crit = (double)df * pow(1.0 - h + 3.0902 * sqrt(h), 3.0);
  return x2;
}

/* A small catalog on a sparse, lopsided trie with collisions: L = 3, V = (3, 3, 4). */
static void small_world(world *w, int with_collisions) {
  static const uint16_t sids[][3] = {{0, 0, 0}, {0, 0, 1}, {0, 0, 2}, {0, 0, 3}, {0, 1, 0}, {0, 2, 3},
                                     {1, 0, 0}, {2, 1, 1}, {2, 1, 2}, {2, 2, 0}, {2, 0, 0}};
  const int64_t n = with_collisions ? 14 : 11;
  memset(w, 0, sizeof *w);
  w->L = 3, w->n = n;
  w->vocab[0] = 3, w->vocab[1] = 3, w->vocab[2] = 4;
  w->tokens = hsrl_calloc((size_t)(n + 1) * 3, sizeof(uint16_t));
  w->live = hsrl_calloc((size_t)(n + 1), 1);
  for (int64_t i = 1; i <= n; i++) {
    int64_t s = i <= 11 ? i - 1 : (i == 12 ? 6 : 7); /* items 12, 13 collide with 7 ((1,0,0)) and 8 */
    if (i == 14) s = 6;                           /* a bucket of 3 */
    memcpy(w->tokens + i * 3, sids[s], 6);
    w->live[i] = 1;
  }
  HSRL_CHECK(sim_sid_index_init(&w->idx, 3, w->vocab, n, w->tokens, w->live, 0) == HSRL_OK);
  sim_sid_trie_build(&w->trie, &w->idx);
}

static void small_logp(float *lp0, float *lp1, float *lp2) {
  const float p0[3] = {0.2f, 0.5f, 0.3f}, p1[3] = {0.6f, 0.3f, 0.1f}, p2[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  for (int j = 0; j < 3; j++) lp0[j] = logf(p0[j]), lp1[j] = logf(p1[j]);
  for (int j = 0; j < 4; j++) lp2[j] = logf(p2[j]);
}

static double item_p(const world *w, const float *const *lp, int64_t i) {
  double s = 0.0;
  for (int l = 0; l < w->L; l++) s += (double)lp[l][w->tokens[i * w->L + l]];
  return exp(s);
}

/* What the per-level renormalised descent would sample (for K = 1): prod_l pi_l[z_l] / Z_l(prefix)
 * times 1 / bucket size. */
static double descent_p(const world *w, const float *const *lp, int64_t i) {
  double p = 1.0;
  int64_t node = 0;
  for (int l = 0; l < w->L; l++) {
    double z = 0.0;
    for (int64_t ch = w->trie.child_start[l][node]; ch < w->trie.child_start[l][node + 1]; ch++)
      z += exp((double)lp[l][w->trie.token[l][ch]]);
    p *= exp((double)lp[l][w->tokens[i * w->L + l]]) / z;
    node = sim_sid_trie_child(&w->trie, l, node, w->tokens[i * w->L + l]);
  }
  return p / (double)sim_sid_trie_items_below(&w->trie, w->L, node);
}

/* Draws n_rounds slates of k from B copies of one state; counts the first item (k = 1) or the
 * ordered pair of the first two (k = 2). */
static void sample_counts_excluding(int64_t *counts, const world *w, const float *const *lp, int64_t k, float eps,
                                    int trie, int64_t n_rounds, uint64_t seed, const int32_t *excl, int64_t n_excl,
                                    sim_sid_decode_ws *ws) {
  enum { B = 500 };
  const int64_t n1 = w->n + 1;
  float *rows[3];
  for (int l = 0; l < w->L; l++) {
    rows[l] = hsrl_malloc((size_t)(B * w->vocab[l]) * sizeof(float));
    for (int b = 0; b < B; b++) memcpy(rows[l] + b * w->vocab[l], lp[l], (size_t)w->vocab[l] * sizeof(float));
  }
  sim_sid_logp view;
  memset(&view, 0, sizeof view);
  for (int l = 0; l < w->L; l++) view.level[l] = rows[l];
  int32_t *ex_rows = NULL;
  if (excl) { /* every state excludes the same items: B copies of the list (stride 0 = n_excl) */
    ex_rows = hsrl_malloc((size_t)(B * n_excl) * sizeof(int32_t));
    for (int b = 0; b < B; b++) memcpy(ex_rows + b * n_excl, excl, (size_t)n_excl * sizeof(int32_t));
    view.exclude = ex_rows, view.exclude_n = n_excl;
  }
  int32_t *items = hsrl_malloc((size_t)(B * k) * sizeof(int32_t));
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 9);
  memset(counts, 0, (size_t)(k == 1 ? n1 : n1 * n1) * sizeof(int64_t));
  for (int64_t round = 0; round < n_rounds; round += B) {
    if (trie) sim_sid_decode_sample(items, NULL, NULL, &w->idx, &w->trie, &view, B, k, eps, &r, ws);
    else sim_sid_decode_sample_list(items, NULL, NULL, &w->idx, &view, NULL, 0, B, k, eps, &r, ws);
    for (int b = 0; b < B; b++) {
      if (k == 1) counts[items[b]]++;
      else counts[items[b * k] * n1 + items[b * k + 1]]++;
    }
  }
  hsrl_free(items);
  hsrl_free(ex_rows);
  for (int l = 0; l < w->L; l++) hsrl_free(rows[l]);
}

static void sample_counts(int64_t *counts, const world *w, const float *const *lp, int64_t k, float eps, int trie,
                          int64_t n_rounds, uint64_t seed, sim_sid_decode_ws *ws) {
  sample_counts_excluding(counts, w, lp, k, eps, trie, n_rounds, seed, NULL, 0, ws);
}

static void test_sample_k1_matches_product(void) {
  world w;
  small_world(&w, 1);
  float lp0[3], lp1[3], lp2[4];
  small_logp(lp0, lp1, lp2);
  const float *lp[3] = {lp0, lp1, lp2};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, 2, 3, 4, 0);
  const int64_t n = 200000, n1 = w.n + 1;
  int64_t counts[15];
  double target[15] = {0}, naive[15] = {0}, z = 0.0, crit;
  for (int64_t i = 1; i <= w.n; i++) z += item_p(&w, lp, i);
  for (int64_t i = 1; i <= w.n; i++) target[i] = item_p(&w, lp, i) / z, naive[i] = descent_p(&w, lp, i);
  sample_counts(counts, &w, lp, 1, 0.0f, 1, n, 1, &ws);
  double x2 = chi_square(counts, target, n1, n, &crit);
  TEST_ASSERTF(x2 < crit, "chi-square %.1f >= %.1f", x2, crit);
  printf("  K = 1: chi-square %.1f (0.1%% critical value %.1f)\n", x2, crit);
  /* power: the per-level renormalised descent is a different distribution, and the test sees it */
  double x2_naive = chi_square(counts, naive, n1, n, &crit);
  printf("  the per-level renormalised descent would give chi-square %.0f\n", x2_naive);
  TEST_ASSERTF(x2_naive > 10.0 * crit, "the descent distribution is not rejected: %.1f (crit %.1f)", x2_naive, crit);
  /* eps-mixing: (1 - eps) p / Z + eps / N_live */
  double mixed[15] = {0};
  for (int64_t i = 1; i <= w.n; i++) mixed[i] = 0.7 * target[i] + 0.3 / (double)w.n;
  sample_counts(counts, &w, lp, 1, 0.3f, 1, n, 2, &ws);
  x2 = chi_square(counts, mixed, n1, n, &crit);
  TEST_ASSERTF(x2 < crit, "eps = 0.3: chi-square %.1f >= %.1f", x2, crit);
  x2 = chi_square(counts, target, n1, n, &crit);
  TEST_ASSERTF(x2 > crit, "eps = 0.3 indistinguishable from eps = 0: %.1f", x2);
  /* acceptance is about Z / max_bucket = 0.1 here, so a sweep (after 66 rejections) is rare */
  TEST_ASSERTF(ws.stats.n_sweep_draws < n / 100 && ws.stats.n_proposals > n, "%lld sweeps, %lld proposals",
               (long long)ws.stats.n_sweep_draws, (long long)ws.stats.n_proposals);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* Ordered pairs (first, second draw) for K = 2: P(i, j) = p_i / Z * p_j / (Z - p_i). */
static void test_sample_k2_sequential(void) {
  world w;
  small_world(&w, 1);
  float lp0[3], lp1[3], lp2[4];
  small_logp(lp0, lp1, lp2);
  const float *lp[3] = {lp0, lp1, lp2};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, 2, 3, 4, 0);
  const int64_t n1 = w.n + 1, n = 300000;
  int64_t *counts = hsrl_calloc((size_t)(n1 * n1), sizeof(int64_t));
  double *target = hsrl_calloc((size_t)(n1 * n1), sizeof(double)), z = 0.0, crit;
  for (int64_t i = 1; i <= w.n; i++) z += item_p(&w, lp, i);
  for (int64_t i = 1; i <= w.n; i++)
    for (int64_t j = 1; j <= w.n; j++)
      if (i != j) target[i * n1 + j] = item_p(&w, lp, i) / z * item_p(&w, lp, j) / (z - item_p(&w, lp, i));
  /* every way trie sampling can make its draws: proposals only (the acceptance m_rem / M after a
   * draw), the leaf table from the first draw, and the automatic choice */
  static const char *const path_name[3] = {"auto", "proposals", "leaf table"};
  for (int path = 0; path < 3; path++) {
    ws.sample_path = (sim_sid_sample_path)path;
    memset(&ws.stats, 0, sizeof ws.stats);
    sample_counts(counts, &w, lp, 2, 0.0f, 1, n, 3 + 10 * (uint64_t)path, &ws);
    double x2 = chi_square(counts, target, n1 * n1, n, &crit);
    printf("  K = 2, %s: %lld proposals, %lld table draws, chi-square %.1f (0.1%% critical value %.1f)\n",
           path_name[path], (long long)ws.stats.n_proposals, (long long)ws.stats.n_table_draws, x2, crit);
    TEST_ASSERTF(x2 < crit, "trie, K = 2, %s: chi-square %.1f >= %.1f", path_name[path], x2, crit);
    if (path == SIM_SID_SAMPLE_PROPOSE)
      TEST_ASSERTF(ws.stats.n_table_draws == 0 && ws.stats.n_proposals > 2 * n, "%lld table draws, %lld proposals",
                   (long long)ws.stats.n_table_draws, (long long)ws.stats.n_proposals);
    if (path == SIM_SID_SAMPLE_TABLE)
      TEST_ASSERTF(ws.stats.n_table_draws == 2 * n && ws.stats.n_proposals == 0, "%lld table draws, %lld proposals",
                   (long long)ws.stats.n_table_draws, (long long)ws.stats.n_proposals);
  }
  ws.sample_path = SIM_SID_SAMPLE_AUTO;
  /* the list sampler (Gumbel-top-K over the catalog) samples the same law when eps = 0 */
  sample_counts(counts, &w, lp, 2, 0.0f, 0, n, 4, &ws);
  double x2 = chi_square(counts, target, n1 * n1, n, &crit);
  TEST_ASSERTF(x2 < crit, "list, K = 2: chi-square %.1f >= %.1f", x2, crit);
  hsrl_free(counts);
  hsrl_free(target);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* List sampling with eps: the reference's (1 - eps) q + eps / M for K = 1. */
static void test_sample_list_eps(void) {
  world w;
  small_world(&w, 0);
  float lp0[3], lp1[3], lp2[4];
  small_logp(lp0, lp1, lp2);
  const float *lp[3] = {lp0, lp1, lp2};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, 1, 3, 4, 0);
  const int64_t n = 100000, n1 = w.n + 1;
  int64_t counts[12];
  double target[12] = {0}, z = 0.0, crit;
  for (int64_t i = 1; i <= w.n; i++) z += item_p(&w, lp, i);
  for (int64_t i = 1; i <= w.n; i++) target[i] = 0.6 * item_p(&w, lp, i) / z + 0.4 / (double)w.n;
  sample_counts(counts, &w, lp, 1, 0.4f, 0, n, 5, &ws);
  double x2 = chi_square(counts, target, n1, n, &crit);
  TEST_ASSERTF(x2 < crit, "chi-square %.1f >= %.1f", x2, crit);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* Mass mostly on SIDs that are not live: proposals keep failing, draws go through the exact
 * sweep, and the law is still the restricted product. */
static void test_sample_sweep_path(void) {
  world w;
  small_world(&w, 1);
  float lp0[3], lp1[3], lp2[4];
  small_logp(lp0, lp1, lp2);
  /* log-weights: the mass sits on (0,1,1) and (0,2,1), which no item has; the live items carry
   * about e^-7 of it ((0,2,3), item 6) and e^-9 ((0,1,0), item 5), everything else far less */
  lp0[0] = 0.0f, lp0[1] = -12.0f, lp0[2] = -12.0f;
  lp1[0] = -14.0f, lp1[1] = 0.0f, lp1[2] = -1.0f;
  lp2[0] = -9.0f, lp2[1] = 0.0f, lp2[2] = -9.0f, lp2[3] = -6.0f;
  const float *lp[3] = {lp0, lp1, lp2};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, 2, 3, 4, 0);
  const int64_t n = 20000, n1 = w.n + 1;
  int64_t counts[15];
  double target[15] = {0}, z = 0.0, crit;
  for (int64_t i = 1; i <= w.n; i++) z += item_p(&w, lp, i);
  for (int64_t i = 1; i <= w.n; i++) target[i] = item_p(&w, lp, i) / z;
  sample_counts(counts, &w, lp, 1, 0.0f, 1, n, 6, &ws);
  TEST_ASSERTF(ws.stats.n_sweep_draws > n / 2, "%lld sweeps", (long long)ws.stats.n_sweep_draws);
  int64_t obs_big[3] = {0}, tot = 0;
  double p_big[3] = {0};
  for (int64_t i = 1; i <= w.n; i++) { /* cells: item 5 (0,1,0), item 6 (0,2,3), the rest */
    int cell = i == 5 ? 0 : i == 6 ? 1 : 2;
    obs_big[cell] += counts[i], p_big[cell] += target[i], tot += counts[i];
  }
  TEST_ASSERT(tot == n);
  double x2 = chi_square(obs_big, p_big, 3, n, &crit);
  TEST_ASSERTF(x2 < crit, "chi-square %.1f >= %.1f (p = %.4f %.4f %.4f)", x2, crit, p_big[0], p_big[1], p_big[2]);
  /* every live item has probability 0: uniform */
  float ninf0[3] = {-INFINITY, -INFINITY, -INFINITY};
  const float *lpz[3] = {ninf0, lp1, lp2};
  sample_counts(counts, &w, lpz, 1, 0.0f, 1, n, 7, &ws);
  double uni[15] = {0};
  for (int64_t i = 1; i <= w.n; i++) uni[i] = 1.0 / (double)w.n;
  x2 = chi_square(counts, uni, n1, n, &crit);
  TEST_ASSERTF(x2 < crit, "uniform: chi-square %.1f >= %.1f", x2, crit);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* The leaf-table path (sim_sid_decode.h: after 32 rejected proposals a state's remaining draws come
 * from a table of its live SIDs): most of the mass on SIDs no item has, K = 2, ordered pairs
 * grouped as (item 5, item 6, any other) x (the same) against P(i, j) = p_i / Z * p_j / (Z - p_i). */
static void test_sample_table_path_k2(void) {
  world w;
  small_world(&w, 1);
  /* the mass sits on (0,1,1), which no item has; live items get a few per cent of it */
  float lp0[3] = {0.0f, -4.5f, -4.5f}, lp1[3] = {-6.0f, 0.0f, -1.5f}, lp2[4] = {-4.5f, 0.0f, -4.5f, -3.0f};
  const float *lp[3] = {lp0, lp1, lp2};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, 2, 3, 4, 0);
  const int64_t n1 = w.n + 1, n = 200000;
  int64_t *counts = hsrl_calloc((size_t)(n1 * n1), sizeof(int64_t));
  double z = 0.0, crit, p[15] = {0};
  for (int64_t i = 1; i <= w.n; i++) z += (p[i] = item_p(&w, lp, i));
  sample_counts(counts, &w, lp, 2, 0.0f, 1, n, 8, &ws);
  TEST_ASSERTF(ws.stats.n_table_draws > n / 10, "%lld table draws in %lld slates: the path is not exercised",
               (long long)ws.stats.n_table_draws, (long long)n);
  int64_t obs[9] = {0};
  double want[9] = {0};
  for (int64_t i = 1; i <= w.n; i++)
    for (int64_t j = 1; j <= w.n; j++) {
      if (i == j) continue;
      const int ci = i == 5 ? 0 : i == 6 ? 1 : 2, cj = j == 5 ? 0 : j == 6 ? 1 : 2;
      obs[ci * 3 + cj] += counts[i * n1 + j];
      want[ci * 3 + cj] += p[i] / z * p[j] / (z - p[i]);
    }
  double x2 = chi_square(obs, want, 9, n, &crit);
  printf("  K = 2 through the leaf table (%lld table draws): chi-square %.1f (0.1%% critical value %.1f)\n",
         (long long)ws.stats.n_table_draws, x2, crit);
  TEST_ASSERTF(x2 < crit, "chi-square %.1f >= %.1f", x2, crit);
  hsrl_free(counts);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* The automatic choice between proposals and the leaf table (sim_sid_decode.c, "When"): with
 * little mass on live SIDs, only the first state of a call proposes (32 proposals) and every later
 * state draws from its table at once; with every SID live (each proposal accepted) no table is
 * ever built. Both asserted on the stats, for calls of B states. */
static void test_sample_path_choice(void) {
  enum { B = 32, K = 5, CALLS = 4 };
  hsrl_rng r;
  hsrl_rng_init(&r, 404, 0);
  /* 400 items on random SIDs of 64^3: about 0.15% of a diffuse distribution's mass is live */
  const int64_t vocab[3] = {64, 64, 64};
  world w;
  world_make(&w, 3, vocab, vocab, 400, 1.0, 0, &r);
  float *lp = hsrl_malloc((size_t)(3 * B * 64) * sizeof(float));
  for (int64_t row = 0; row < 3 * B; row++) fill_log_softmax(lp + row * 64, 64, 0.5, &r);
  sim_sid_logp view = {.level = {lp, lp + B * 64, lp + 2 * B * 64, NULL}};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, K, 3, 64, 0);
  int32_t items[B * K];
  hsrl_rng rs;
  hsrl_rng_init(&rs, 405, 0);
  for (int call = 0; call < CALLS; call++)
    sim_sid_decode_sample(items, NULL, NULL, &w.idx, &w.trie, &view, B, K, 0.0f, &rs, &ws);
  printf("  diffuse, %d calls of %d states, K = %d: %lld proposals, %lld table draws\n", CALLS, B, K,
         (long long)ws.stats.n_proposals, (long long)ws.stats.n_table_draws);
  TEST_ASSERTF(ws.stats.n_proposals <= CALLS * 32 && ws.stats.n_table_draws >= CALLS * (B - 1) * K,
               "%lld proposals, %lld table draws", (long long)ws.stats.n_proposals,
               (long long)ws.stats.n_table_draws);
  /* the same with proposals only: the thousands of proposals the table saves */
  memset(&ws.stats, 0, sizeof ws.stats);
  ws.sample_path = SIM_SID_SAMPLE_PROPOSE;
  sim_sid_decode_sample(items, NULL, NULL, &w.idx, &w.trie, &view, B, K, 0.0f, &rs, &ws);
  TEST_ASSERTF(ws.stats.n_proposals > 100 * B && ws.stats.n_table_draws == 0, "%lld proposals, %lld table draws",
               (long long)ws.stats.n_proposals, (long long)ws.stats.n_table_draws);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
  hsrl_free(lp);

  /* every SID of 16^3 is one live item's: every proposal is accepted, the table never pays */
  const int64_t v16[3] = {16, 16, 16};
  memset(&w, 0, sizeof w);
  w.L = 3, w.n = 4096;
  for (int l = 0; l < 3; l++) w.vocab[l] = 16;
  w.tokens = hsrl_calloc((size_t)(w.n + 1) * 3, sizeof(uint16_t));
  w.live = hsrl_calloc((size_t)(w.n + 1), 1);
  for (int64_t i = 1; i <= w.n; i++) {
    for (int l = 0; l < 3; l++) w.tokens[i * 3 + l] = (uint16_t)(((i - 1) >> (4 * (2 - l))) & 15);
    w.live[i] = 1;
  }
  HSRL_CHECK(sim_sid_index_init(&w.idx, 3, v16, w.n, w.tokens, w.live, 0) == HSRL_OK);
  sim_sid_trie_build(&w.trie, &w.idx);
  lp = hsrl_malloc((size_t)(3 * B * 16) * sizeof(float));
  for (int64_t row = 0; row < 3 * B; row++) fill_log_softmax(lp + row * 16, 16, 0.5, &r);
  sim_sid_logp view16 = {.level = {lp, lp + B * 16, lp + 2 * B * 16, NULL}};
  sim_sid_decode_ws_init(&ws, K, 3, 16, 8192); /* room for the table of 4,096 SIDs */
  for (int call = 0; call < CALLS; call++)
    sim_sid_decode_sample(items, NULL, NULL, &w.idx, &w.trie, &view16, B, K, 0.0f, &rs, &ws);
  printf("  every SID live: %lld proposals, %lld table draws\n", (long long)ws.stats.n_proposals,
         (long long)ws.stats.n_table_draws);
  TEST_ASSERTF(ws.stats.n_proposals == CALLS * B * K && ws.stats.n_table_draws == 0,
               "%lld proposals, %lld table draws", (long long)ws.stats.n_proposals,
               (long long)ws.stats.n_table_draws);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
  hsrl_free(lp);
}

/* Slates are distinct, log-probs are the items' token log-probs, K > catalog pads, and the calls
 * allocate nothing. */
static void test_sample_slates_and_no_allocation(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 31, 0);
  const int64_t vocab[3] = {6, 6, 6}, used[3] = {3, 6, 2};
  world w;
  world_make(&w, 3, vocab, used, 60, 0.75, 5, &r);
  enum { B = 40, K = 12 };
  float lp0[B * 6], lp1[B * 6], lp2[B * 6];
  for (int b = 0; b < B; b++) {
    fill_log_softmax(lp0 + b * 6, 6, 1.0, &r);
    fill_log_softmax(lp1 + b * 6, 6, 3.0, &r);
    fill_log_softmax(lp2 + b * 6, 6, 1.0, &r);
  }
  sim_sid_logp view = {.level = {lp0, lp1, lp2, NULL}};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, K, 3, 6, 0);
  int32_t items[B * K];
  double logp[B * K];
  float tok[B * K * 3];
  hsrl_rng rs;
  hsrl_rng_init(&rs, 1, 1);
  int64_t before = hsrl_alloc_count();
  sim_sid_decode_sample(items, logp, tok, &w.idx, &w.trie, &view, B, K, 0.1f, &rs, &ws);
  sim_sid_decode_topk(items, logp, tok, &w.idx, &w.trie, &view, B, K, &ws);
  sim_sid_decode_topk_list(items, logp, tok, &w.idx, &view, NULL, 0, B, K, &ws);
  sim_sid_decode_sample_list(items, logp, tok, &w.idx, &view, NULL, 0, B, K, 0.1f, &rs, &ws);
  sim_sid_decode_sample(items, logp, tok, &w.idx, &w.trie, &view, B, K, 0.0f, &rs, &ws);
  TEST_ASSERT(hsrl_alloc_count() == before);
  for (int b = 0; b < B; b++)
    for (int s = 0; s < K; s++) {
      int32_t i = items[b * K + s];
      TEST_ASSERT(i >= 1 && i <= w.n && w.live[i]);
      for (int t = 0; t < s; t++) TEST_ASSERT(items[b * K + t] != i);
      double sum = 0.0;
      const float *lps[3] = {lp0 + b * 6, lp1 + b * 6, lp2 + b * 6};
      for (int l = 0; l < 3; l++) {
        TEST_ASSERT(tok[(b * K + s) * 3 + l] == lps[l][w.tokens[i * 3 + l]]);
        sum += (double)lps[l][w.tokens[i * 3 + l]];
      }
      TEST_ASSERT(logp[b * K + s] == sum);
    }
  /* K above the live catalog: every live item once, then padding */
  sim_sid_decode_ws big;
  sim_sid_decode_ws_init(&big, 70, 3, 6, 0);
  int32_t all[70];
  double all_logp[70];
  sim_sid_decode_sample(all, all_logp, NULL, &w.idx, &w.trie, &view, 1, 70, 0.0f, &rs, &big);
  uint8_t seen[61] = {0};
  for (int s = 0; s < 70; s++) {
    if (s < w.idx.n_live) {
      TEST_ASSERT(all[s] >= 1 && w.live[all[s]] && !seen[all[s]]);
      seen[all[s]] = 1;
    } else {
      TEST_ASSERT(all[s] == 0 && all_logp[s] == -HUGE_VAL);
    }
  }
  sim_sid_decode_ws_free(&big);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

/* Exclusions (sim_sid_logp.exclude, e.g. the user's history): on random worlds and random
 * exclusion lists (zeros, dead items, duplicates), trie top-K (best-first and branch-and-bound)
 * and brute-force top-K equal the independent reference over the allowed items; trie and list
 * sampling never return an excluded item or a duplicate and fill min(K, allowed) slots; K = 1
 * trie sampling matches the product distribution restricted to the allowed items. */
static void test_exclusions(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 77, 0);
  enum { B = 3, KMAX = 12, E = 20 };
  sim_sid_decode_ws ws, ws_small;
  sim_sid_decode_ws_init(&ws, KMAX, 3, 8, 0);
  sim_sid_decode_ws_init(&ws_small, KMAX, 3, 8, 8 + KMAX + 1);
  sim_sid_decode_ws_reserve_exclude(&ws, E);
  sim_sid_decode_ws_reserve_exclude(&ws_small, E);
  int64_t n_excluded_seen = 0;
  for (int cs = 0; cs < 400; cs++) {
    int L = 1 + (int)hsrl_rng_below(&r, 3);
    int64_t vocab[3], used[3];
    for (int l = 0; l < L; l++) vocab[l] = used[l] = 1 + (int64_t)hsrl_rng_below(&r, 8);
    int64_t n = 1 + (int64_t)hsrl_rng_below(&r, 60);
    world w;
    world_make(&w, L, vocab, used, n, 0.8, 0, &r);
    int64_t k = 1 + (int64_t)hsrl_rng_below(&r, KMAX);
    float *lpbuf[3];
    for (int l = 0; l < L; l++) {
      lpbuf[l] = hsrl_malloc((size_t)(B * vocab[l]) * sizeof(float));
      for (int b = 0; b < B; b++) fill_log_softmax(lpbuf[l] + b * vocab[l], vocab[l], 1.0, &r);
    }
    int32_t excl[B * E];
    for (int j = 0; j < B * E; j++) excl[j] = (int32_t)hsrl_rng_below(&r, (uint64_t)n + 1); /* 0..n, dups */
    sim_sid_logp view;
    memset(&view, 0, sizeof view);
    for (int l = 0; l < L; l++) view.level[l] = lpbuf[l];
    view.exclude = excl, view.exclude_n = E, view.exclude_stride = E;
    int32_t items[B * KMAX], items_bf[B * KMAX], items_bb[B * KMAX], smp[B * KMAX], smp_list[B * KMAX];
    sim_sid_decode_topk(items, NULL, NULL, &w.idx, &w.trie, &view, B, k, &ws);
    sim_sid_decode_topk_list(items_bf, NULL, NULL, &w.idx, &view, NULL, 0, B, k, &ws);
    sim_sid_decode_topk(items_bb, NULL, NULL, &w.idx, &w.trie, &view, B, k, &ws_small);
    sim_sid_decode_sample(smp, NULL, NULL, &w.idx, &w.trie, &view, B, k, cs % 2 ? 0.3f : 0.0f, &r, &ws);
    sim_sid_decode_sample_list(smp_list, NULL, NULL, &w.idx, &view, NULL, 0, B, k, 0.0f, &r, &ws);
    ref_item *ref = hsrl_malloc((size_t)(n + 1) * sizeof(ref_item));
    for (int b = 0; b < B; b++) {
      uint8_t *banned = hsrl_calloc((size_t)n + 1, 1);
      for (int j = 0; j < E; j++) banned[excl[b * E + j]] = 1;
      const float *lp[3];
      for (int l = 0; l < L; l++) lp[l] = lpbuf[l] + b * vocab[l];
      int64_t n_ref = reference_topk(ref, &w, lp, n + 1), kk = 0;
      for (int64_t j = 0; j < n_ref; j++) /* keep the allowed items, in order */
        if (!banned[ref[j].item]) ref[kk++] = ref[j];
      n_excluded_seen += n_ref - kk;
      if (kk > k) kk = k;
      for (int64_t s = 0; s < k; s++) {
        int64_t o = b * k + s;
        int32_t want = s < kk ? ref[s].item : 0;
        TEST_ASSERTF(items[o] == want && items_bf[o] == want && items_bb[o] == want,
                     "case %d state %d slot %lld: trie %d, brute %d, b&b %d, ref %d", cs, b, (long long)s,
                     items[o], items_bf[o], items_bb[o], want);
        for (int which = 0; which < 2; which++) {
          int32_t it = which ? smp_list[o] : smp[o];
          TEST_ASSERTF((s < kk) == (it != 0), "case %d: sampled slot %lld holds %d with %lld allowed", cs,
                       (long long)s, it, (long long)kk);
          TEST_ASSERTF(it == 0 || (!banned[it] && w.live[it]), "case %d: sampled excluded/dead item %d", cs, it);
          for (int64_t t = 0; t < s; t++)
            TEST_ASSERT(it == 0 || it != (which ? smp_list[b * k + t] : smp[b * k + t]));
        }
      }
      hsrl_free(banned);
    }
    hsrl_free(ref);
    for (int l = 0; l < L; l++) hsrl_free(lpbuf[l]);
    world_free(&w);
  }
  TEST_ASSERTF(n_excluded_seen > 1000, "only %lld excluded live items met", (long long)n_excluded_seen);
  TEST_ASSERT(ws_small.stats.n_heap_fallbacks > 0);
  sim_sid_decode_ws_free(&ws_small);

  /* K = 1 sampling with items 1 and 4 excluded: the restricted product distribution */
  world w;
  small_world(&w, 1);
  float lp0[3], lp1[3], lp2[4];
  small_logp(lp0, lp1, lp2);
  const float *lp[3] = {lp0, lp1, lp2};
  const int32_t excluded[2] = {1, 4};
  const int64_t n = 200000, n1 = w.n + 1;
  int64_t counts[15] = {0};
  double target[15] = {0}, z = 0.0, crit;
  for (int64_t i = 1; i <= w.n; i++)
    if (i != 1 && i != 4 && w.live[i]) z += item_p(&w, lp, i);
  for (int64_t i = 1; i <= w.n; i++)
    if (i != 1 && i != 4 && w.live[i]) target[i] = item_p(&w, lp, i) / z;
  sample_counts_excluding(counts, &w, lp, 1, 0.0f, 1, n, 5, excluded, 2, &ws);
  TEST_ASSERT(counts[1] == 0 && counts[4] == 0);
  double x2 = chi_square(counts, target, n1, n, &crit);
  printf("  K = 1 with 2 items excluded: chi-square %.1f (0.1%% critical value %.1f)\n", x2, crit);
  TEST_ASSERTF(x2 < crit, "chi-square %.1f >= %.1f", x2, crit);
  sim_sid_decode_ws_free(&ws);
  world_free(&w);
}

int main(void) {
  TEST_RUN(test_topk_equals_brute_force);
  TEST_RUN(test_topk_cost_independent_of_n);
  TEST_RUN(test_candidate_lists);
  TEST_RUN(test_sample_k1_matches_product);
  TEST_RUN(test_sample_k2_sequential);
  TEST_RUN(test_sample_list_eps);
  TEST_RUN(test_sample_sweep_path);
  TEST_RUN(test_sample_table_path_k2);
  TEST_RUN(test_sample_path_choice);
  TEST_RUN(test_sample_slates_and_no_allocation);
  TEST_RUN(test_exclusions);
  return test_summary();
}
