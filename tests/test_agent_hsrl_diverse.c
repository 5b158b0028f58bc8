/* test_agent_hsrl_diverse.c: greedy slates with at most `cap` items per level-1 SID token
 * (learner/agents/agent_hsrl_diverse.h): equal to an independent brute force (every live item
 * scored, sorted, accepted best first under the cap, then the skipped ones) on random indexes and
 * states with random exclusions; cap >= K gives the exact top-K of the catalog decoder; the cap
 * holds whenever enough tokens exist; too few tokens fill the slate; excluded and dead items are
 * never chosen; token log-probs are the items'; no allocation per call. Sampled slates under the
 * cap follow the header's sequential rule exactly (pair frequencies, with and without eps). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "learner/agents/agent_hsrl_diverse.h"
#include "tests/test_harness.h"

typedef struct fixture {
  sim_sid_index idx;
  int64_t vocab[2];
  int64_t n;
} fixture;

/* n items on L = 2 levels with vocab (v0, v1); a few dead items and a few collisions. */
static void fixture_make(fixture *f, int64_t n, int64_t v0, int64_t v1, hsrl_rng *r) {
  f->n = n, f->vocab[0] = v0, f->vocab[1] = v1;
  uint16_t *tok = hsrl_calloc((size_t)(n + 1) * 2, sizeof(uint16_t));
  uint8_t *live = hsrl_calloc((size_t)n + 1, 1);
  for (int64_t i = 1; i <= n; i++) {
    tok[i * 2] = (uint16_t)hsrl_rng_below(r, (uint64_t)v0);
    tok[i * 2 + 1] = (uint16_t)hsrl_rng_below(r, (uint64_t)v1);
    live[i] = hsrl_rng_uniform(r) > 0.1f;
  }
  HSRL_CHECK(sim_sid_index_init(&f->idx, 2, f->vocab, n, tok, live, 0) == HSRL_OK);
  hsrl_free(tok);
  hsrl_free(live);
}

typedef struct ranked {
  double s;
  int32_t order, item;
} ranked;

static int ranked_cmp(const void *x, const void *y) {
  const ranked *a = x, *b = y;
  if (a->s != b->s) return a->s > b->s ? -1 : 1;
  return a->order - b->order;
}

/* The brute force, written from the header's definition. */
static void brute(int32_t *out, const fixture *f, const float *lp0, const float *lp1, const int32_t *ex, int64_t n_ex,
                  int64_t K, int64_t cap) {
  const sim_sid_index *x = &f->idx;
  ranked *all = hsrl_malloc((size_t)x->n_live * sizeof *all);
  int64_t n = 0;
  for (int64_t j = 0; j < x->n_live; j++) {
    int32_t it = x->bucket_items[j];
    int excluded = 0;
    for (int64_t e = 0; e < n_ex; e++) excluded |= ex[e] == it;
    if (excluded) continue;
    all[n].s = (double)lp0[x->tokens[it * 2]] + (double)lp1[x->tokens[it * 2 + 1]];
    all[n].order = (int32_t)j, all[n].item = it;
    n++;
  }
  qsort(all, (size_t)n, sizeof *all, ranked_cmp);
  int taken[4096] = {0}, count[64] = {0};
  int64_t k = 0;
  for (int64_t j = 0; j < n && k < K; j++)
    if (count[x->tokens[all[j].item * 2]] < cap) out[k++] = all[j].item, taken[j] = 1, count[x->tokens[all[j].item * 2]]++;
  for (int64_t j = 0; j < n && k < K; j++)
    if (!taken[j]) out[k++] = all[j].item;
  for (; k < K; k++) out[k] = 0;
  hsrl_free(all);
}

static void test_equals_brute_force(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 5, 1);
  int64_t n_cases = 0, n_full_cap_slates = 0;
  for (int w = 0; w < 60; w++) {
    fixture f;
    const int64_t n = 20 + (int64_t)hsrl_rng_below(&r, 300), v0 = 2 + (int64_t)hsrl_rng_below(&r, 12);
    fixture_make(&f, n, v0, 2 + (int64_t)hsrl_rng_below(&r, 8), &r);
    agent_hsrl_diverse_ws ws;
    memset(&ws, 0, sizeof ws);
    agent_hsrl_diverse_reserve(&ws, &f.idx);
    enum { B = 4, KMAX = 12, H = 6 };
    const int64_t K = 1 + (int64_t)hsrl_rng_below(&r, KMAX), cap = 1 + (int64_t)hsrl_rng_below(&r, 4);
    float lp0[B * 16], lp1[B * 16], tlp[B * KMAX * 2];
    int32_t ex[B * H], got[B * KMAX], want[KMAX];
    for (int i = 0; i < B * 16; i++) {
      /* coarse values make ties between different SIDs common */
      lp0[i] = -(float)hsrl_rng_below(&r, 4), lp1[i] = -(float)hsrl_rng_below(&r, 3) * 0.5f;
    }
    for (int i = 0; i < B * H; i++) ex[i] = (int32_t)hsrl_rng_below(&r, (uint64_t)n + 1);
    sim_sid_logp lp;
    memset(&lp, 0, sizeof lp);
    lp.level[0] = lp0, lp.level[1] = lp1, lp.stride[0] = 16, lp.stride[1] = 16;
    lp.exclude = ex, lp.exclude_n = H;
    const int64_t before = hsrl_alloc_count();
    agent_hsrl_diverse_topk(got, tlp, &f.idx, &lp, B, K, cap, &ws);
    TEST_ASSERT(hsrl_alloc_count() == before);
    for (int64_t b = 0; b < B; b++) {
      brute(want, &f, lp0 + b * 16, lp1 + b * 16, ex + b * H, H, K, cap);
      TEST_ASSERTF(memcmp(got + b * K, want, (size_t)K * sizeof(int32_t)) == 0, "world %d state %lld: slates differ",
                   w, (long long)b);
      int count[16] = {0}, distinct_tokens = 0;
      for (int64_t k = 0; k < K; k++) {
        const int32_t it = got[b * K + k];
        if (it == 0) continue;
        TEST_ASSERT(f.idx.live[it]);
        for (int e = 0; e < H; e++) TEST_ASSERT(ex[b * H + e] != it);
        for (int l = 0; l < 2; l++)
          TEST_ASSERT(tlp[(b * K + k) * 2 + l] == (l ? lp1 : lp0)[b * 16 + f.idx.tokens[it * 2 + l]]);
        distinct_tokens += count[f.idx.tokens[it * 2]]++ == 0;
      }
      /* the cap holds when the slate did not need the fill pass */
      if (distinct_tokens * cap >= K) {
        for (int t = 0; t < 16; t++) TEST_ASSERT(count[t] <= cap);
        n_full_cap_slates++;
      }
      n_cases++;
    }
    agent_hsrl_diverse_free(&ws);
    sim_sid_index_free(&f.idx);
  }
  printf("  %lld states equal to the brute force; %lld slates checked against the cap\n", (long long)n_cases,
         (long long)n_full_cap_slates);
  TEST_ASSERT(n_full_cap_slates > n_cases / 4);
}

/* cap >= K: the exact top-K (the catalog decoder of sim_sid_decode.h); cap 1 with 3 tokens and
 * K 5: one item of each token first, then the two best of the rest. */
static void test_cap_limits(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 6, 1);
  fixture f;
  fixture_make(&f, 200, 3, 6, &r);
  agent_hsrl_diverse_ws ws;
  memset(&ws, 0, sizeof ws);
  agent_hsrl_diverse_reserve(&ws, &f.idx);
  sim_sid_decode_ws dws;
  sim_sid_decode_ws_init(&dws, 8, 2, 6, 0);
  float lp0[3], lp1[6];
  for (int i = 0; i < 3; i++) lp0[i] = (float)hsrl_rng_normal(&r);
  for (int i = 0; i < 6; i++) lp1[i] = (float)hsrl_rng_normal(&r);
  sim_sid_logp lp;
  memset(&lp, 0, sizeof lp);
  lp.level[0] = lp0, lp.level[1] = lp1;
  int32_t a[8], b[8];
  agent_hsrl_diverse_topk(a, NULL, &f.idx, &lp, 1, 8, 8, &ws);
  sim_sid_decode_topk_list(b, NULL, NULL, &f.idx, &lp, NULL, 0, 1, 8, &dws);
  for (int k = 0; k < 8; k++) /* equal up to ties: the same scores in the same order */
    TEST_NEAR((double)lp0[f.idx.tokens[a[k] * 2]] + (double)lp1[f.idx.tokens[a[k] * 2 + 1]],
              (double)lp0[f.idx.tokens[b[k] * 2]] + (double)lp1[f.idx.tokens[b[k] * 2 + 1]], 0.0);
  agent_hsrl_diverse_topk(a, NULL, &f.idx, &lp, 1, 5, 1, &ws);
  int seen[3] = {0};
  for (int k = 0; k < 3; k++) seen[f.idx.tokens[a[k] * 2]]++;
  TEST_ASSERT(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
  for (int k = 0; k < 5; k++) TEST_ASSERT(a[k] > 0);
  sim_sid_decode_ws_free(&dws);
  agent_hsrl_diverse_free(&ws);
  sim_sid_index_free(&f.idx);
}

/* Sampling under the cap (agent_hsrl_diverse_sample): 5 live items on 3 level-1 tokens, K = 2,
 * cap 1, one item excluded. Every ordered pair (i, j) has the probability of the header's
 * sequential rule, P(i) P(j | i) with w over the allowed items and the second draw restricted to
 * the other tokens; 200,000 slates match it within 5 standard errors, with eps = 0 and 0.3.
 * Sampled slates also keep the structural rules (distinct, live, not excluded, token log-probs). */
static void test_sampling_distribution(void) {
  const int64_t n = 6, K = 2, cap = 1;
  /* item: 1 2 3 4 5 6; token (level 1): 0 0 1 1 2 2; item 6 dead; item 2 excluded */
  uint16_t tok[7 * 2] = {0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1};
  uint8_t live[7] = {0, 1, 1, 1, 1, 1, 0};
  const int64_t vocab[2] = {3, 2};
  sim_sid_index idx;
  TEST_ASSERT(sim_sid_index_init(&idx, 2, vocab, n, tok, live, 0) == HSRL_OK);
  agent_hsrl_diverse_ws ws;
  memset(&ws, 0, sizeof ws);
  agent_hsrl_diverse_reserve(&ws, &idx);
  const float lp0[3] = {logf(0.5f), logf(0.3f), logf(0.2f)}, lp1[2] = {logf(0.7f), logf(0.3f)};
  enum { B = 50 };
  float l0[B * 3], l1[B * 2];
  int32_t ex[B];
  for (int b = 0; b < B; b++) {
    memcpy(l0 + b * 3, lp0, sizeof lp0), memcpy(l1 + b * 2, lp1, sizeof lp1);
    ex[b] = 2;
  }
  sim_sid_logp lp;
  memset(&lp, 0, sizeof lp);
  lp.level[0] = l0, lp.level[1] = l1, lp.exclude = ex, lp.exclude_n = 1;
  const int32_t allowed[4] = {1, 3, 4, 5};
  for (int e = 0; e < 2; e++) {
    const double eps = e ? 0.3 : 0.0;
    double w[7] = {0}, wsum = 0.0;
    for (int a = 0; a < 4; a++) {
      const int32_t i = allowed[a];
      w[i] = exp((double)lp0[tok[i * 2]] + (double)lp1[tok[i * 2 + 1]]);
      wsum += w[i];
    }
    for (int a = 0; a < 4; a++) w[allowed[a]] = (1.0 - eps) * w[allowed[a]] / wsum + eps / 4.0;
    double want[7][7] = {{0}};
    for (int a = 0; a < 4; a++) {
      const int32_t i = allowed[a];
      double rest = 0.0;
      for (int c = 0; c < 4; c++)
        if (tok[allowed[c] * 2] != tok[i * 2]) rest += w[allowed[c]];
      for (int c = 0; c < 4; c++) {
        const int32_t j = allowed[c];
        if (tok[j * 2] != tok[i * 2]) want[i][j] = w[i] * w[j] / rest; /* sum_a w = 1 */
      }
    }
    hsrl_rng r;
    hsrl_rng_init(&r, 11 + (uint64_t)e, 0);
    static int64_t got[7][7];
    memset(got, 0, sizeof got);
    int32_t items[B * 2];
    float tlp[B * 2 * 2];
    const int64_t reps = 4000, total = reps * B;
    const int64_t before = hsrl_alloc_count();
    for (int64_t rep = 0; rep < reps; rep++) {
      agent_hsrl_diverse_sample(items, tlp, &idx, &lp, B, K, cap, (float)eps, &r, &ws);
      for (int b = 0; b < B; b++) {
        const int32_t i = items[b * 2], j = items[b * 2 + 1];
        TEST_ASSERT(i >= 1 && i <= 5 && j >= 1 && j <= 5 && i != 2 && j != 2 && i != j);
        if (rep == 0)
          for (int k = 0; k < 2; k++)
            for (int l = 0; l < 2; l++)
              TEST_ASSERT(tlp[(b * 2 + k) * 2 + l] == (l ? lp1 : lp0)[tok[items[b * 2 + k] * 2 + l]]);
        got[i][j]++;
      }
    }
    TEST_ASSERT(hsrl_alloc_count() == before);
    double worst = 0.0;
    for (int i = 1; i <= 5; i++)
      for (int j = 1; j <= 5; j++) {
        const double p = want[i][j], f = (double)got[i][j] / (double)total;
        if (p == 0.0) {
          TEST_ASSERTF(got[i][j] == 0, "eps %g: pair (%d, %d) breaks the cap or the exclusion", eps, i, j);
          continue;
        }
        const double z = fabs(f - p) / sqrt(p * (1.0 - p) / (double)total);
        worst = z > worst ? z : worst;
        TEST_ASSERTF(z < 5.0, "eps %g: pair (%d, %d) drawn %.5f, expected %.5f", eps, i, j, f, p);
      }
    printf("  eps %.1f: %lld slates, worst pair %.2f standard errors from its probability\n", eps, (long long)total,
           worst);
  }
  agent_hsrl_diverse_free(&ws);
  sim_sid_index_free(&idx);
}

int main(void) {
  TEST_RUN(test_equals_brute_force);
  TEST_RUN(test_cap_limits);
  TEST_RUN(test_sampling_distribution);
  return test_summary();
}
