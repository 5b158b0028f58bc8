/* test_sim_policy_hpn.c: the slate search in the HPN's factorised form (sim/sim_policy_hpn.h) and
 * the reference-policy names that reach it (oracle-hpn, greedy-hpn, popular-hpn: sim_policy_simple.h).
 * Checks: a preference the form can express is found exactly (the oracle's own one-per-token
 * slate); two tokens that want opposite deeper tokens get the better of the two slates the form
 * allows, not the oracle's; on small two-level catalogs the search's value never exceeds the
 * exhaustive optimum over every order of the level-2 tokens and reaches it on most; banned items
 * are never picked; the rewritten scores rank each token's pick first and the tokens by their
 * picks' probabilities; popular-hpn takes the counts' best slate of the form, not popular-cap1's. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "sim/sim_policy_hpn.h"
#include "sim/sim_policy_simple.h"
#include "tests/test_harness.h"

/* A two-level SID file over n items whose tokens are given as (t1, t2) pairs (item j + 1). */
static sim_sid_file two_level_sid(int64_t n, const int *t1, const int *t2, int64_t v1, int64_t v2) {
  sim_sid_file f;
  memset(&f, 0, sizeof f);
  f.cb.n_levels = 2;
  f.cb.vocab[0] = v1;
  f.cb.vocab[1] = v2;
  f.n_items = n;
  f.tokens = hsrl_calloc((size_t)((n + 1) * 2), sizeof(uint16_t));
  for (int64_t j = 0; j < n; j++) {
    f.tokens[(j + 1) * 2] = (uint16_t)t1[j];
    f.tokens[(j + 1) * 2 + 1] = (uint16_t)t2[j];
  }
  return f;
}

/* The item each level-1 token's ranking puts first (the largest rewritten score, lower id on ties). */
static int64_t top_of_token(const sim_sid_file *f, const float *ranked, int tok) {
  int64_t best = -1;
  for (int64_t j = 0; j < f->n_items; j++)
    if (f->tokens[(j + 1) * 2] == tok && (best < 0 || ranked[j] > ranked[best])) best = j;
  return best;
}

static void test_expressible_preference_found(void) {
  /* 3 tokens x 4 deeper tokens; p = a[t1] + b[t2]: every token's best item has deeper token 2 */
  int t1[12], t2[12];
  float p[12];
  static const float a[3] = {0.1f, 0.4f, 0.2f}, b[4] = {0.1f, 0.3f, 0.5f, 0.2f};
  for (int j = 0; j < 12; j++) t1[j] = j / 4, t2[j] = j % 4, p[j] = a[t1[j]] + b[t2[j]];
  sim_sid_file f = two_level_sid(12, t1, t2, 3, 4);
  sim_policy_hpn *h = sim_policy_hpn_new(&f, 2);
  const double v = sim_policy_hpn_rank(h, p, NULL);
  TEST_NEAR(v, (double)(0.4f + 0.5f) + (double)(0.2f + 0.5f), 1e-9); /* the oracle's cap-1 slate */
  TEST_ASSERT(top_of_token(&f, p, 1) == 6 && top_of_token(&f, p, 2) == 10 && top_of_token(&f, p, 0) == 2);
  TEST_ASSERT(p[6] > p[10] && p[10] > p[2]); /* tokens by their picks' probabilities */
  sim_policy_hpn_free(h);
  hsrl_free(f.tokens);
}

static void test_conflicting_tokens_get_the_better_allowed_slate(void) {
  /* token 0 wants deeper token 0 (0.9 vs 0.1), token 1 deeper token 1 (0.8 vs 0.2): one order of
   * the deeper tokens serves both, so the form's best is max(0.9 + 0.2, 0.1 + 0.8) = 1.1, where
   * the oracle with one item per token has 1.7 */
  const int t1[4] = {0, 0, 1, 1}, t2[4] = {0, 1, 0, 1};
  float p[4] = {0.9f, 0.1f, 0.2f, 0.8f};
  sim_sid_file f = two_level_sid(4, t1, t2, 2, 2);
  sim_policy_hpn *h = sim_policy_hpn_new(&f, 2);
  const double v = sim_policy_hpn_rank(h, p, NULL);
  TEST_NEAR(v, (double)0.9f + (double)0.2f, 1e-9);
  TEST_ASSERT(top_of_token(&f, p, 0) == 0 && top_of_token(&f, p, 1) == 2);
  sim_policy_hpn_free(h);
  hsrl_free(f.tokens);
}

/* The best value over every strict order of the V2 deeper tokens (each level-1 token takes its
 * allowed item whose deeper token comes first; then the K best picks). */
static double exhaustive(const int *t1, const int *t2, const float *p, const uint8_t *ban, int64_t n,
                         int v1, int v2, int64_t K) {
  int perm[8];
  for (int i = 0; i < v2; i++) perm[i] = i;
  double best = -1.0;
  for (;;) {
    int prio[8];
    for (int i = 0; i < v2; i++) prio[perm[i]] = i; /* lower = preferred */
    double val[8];
    int n_val = 0;
    for (int t = 0; t < v1; t++) {
      int64_t pick = -1;
      for (int64_t j = 0; j < n; j++)
        if (t1[j] == t && !(ban && ban[j + 1]) && (pick < 0 || prio[t2[j]] < prio[t2[pick]])) pick = j;
      if (pick >= 0) val[n_val++] = (double)p[pick];
    }
    double total = 0.0;
    for (int64_t k = 0; k < K && k < n_val; k++) {
      int b = (int)k;
      for (int q = (int)k + 1; q < n_val; q++)
        if (val[q] > val[b]) b = q;
      const double x = val[b];
      val[b] = val[k];
      val[k] = x;
      total += x;
    }
    if (total > best) best = total;
    int i = v2 - 2; /* next permutation */
    while (i >= 0 && perm[i] > perm[i + 1]) i--;
    if (i < 0) break;
    int j = v2 - 1;
    while (perm[j] < perm[i]) j--;
    int x = perm[i];
    perm[i] = perm[j], perm[j] = x;
    for (int a = i + 1, b = v2 - 1; a < b; a++, b--) x = perm[a], perm[a] = perm[b], perm[b] = x;
  }
  return best;
}

static void test_search_against_exhaustive(void) {
  enum { V1 = 5, V2 = 5, N = 18, K = 3, CASES = 300 };
  hsrl_rng rng;
  hsrl_rng_init(&rng, 77, 0);
  int hits = 0;
  double worst = 1.0;
  for (int c = 0; c < CASES; c++) {
    int t1[N], t2[N];
    float p[N], q[N];
    uint8_t ban[N + 1] = {0};
    for (int j = 0; j < N; j++) { /* ids ordered by deeper token within a level-1 token */
      t1[j] = (int)hsrl_rng_below(&rng, V1);
      t2[j] = (int)hsrl_rng_below(&rng, V2);
      p[j] = (float)hsrl_rng_below(&rng, 1000) / 1000.0f;
      ban[j + 1] = hsrl_rng_below(&rng, 8) == 0;
    }
    for (int a = 1; a < N; a++) /* sort by (t1, t2) so ties of g go the way of some strict order */
      for (int b = a; b > 0 && (t1[b - 1] > t1[b] || (t1[b - 1] == t1[b] && t2[b - 1] > t2[b])); b--) {
        int x = t1[b], y = t2[b];
        float z = p[b];
        t1[b] = t1[b - 1], t2[b] = t2[b - 1], p[b] = p[b - 1];
        t1[b - 1] = x, t2[b - 1] = y, p[b - 1] = z;
      }
    sim_sid_file f = two_level_sid(N, t1, t2, V1, V2);
    sim_policy_hpn *h = sim_policy_hpn_new(&f, K);
    memcpy(q, p, sizeof q);
    const double v = sim_policy_hpn_rank(h, q, ban);
    const double opt = exhaustive(t1, t2, p, ban, N, V1, V2, K);
    TEST_ASSERTF(v <= opt + 1e-9, "case %d: the search's %.6f above the exhaustive %.6f", c, v, opt);
    hits += v >= opt - 1e-9;
    worst = fmin(worst, v / opt);
    for (int t = 0; t < V1; t++) { /* the rewritten ranking puts the picks first, never a banned one */
      int64_t top = -1;
      for (int64_t j = 0; j < N; j++)
        if (t1[j] == t && !ban[j + 1] && (top < 0 || q[j] > q[top])) top = j;
      TEST_ASSERT(top < 0 || !ban[top + 1]);
    }
    sim_policy_hpn_free(h);
    hsrl_free(f.tokens);
  }
  printf("  the coordinate search reached the exhaustive optimum in %d of %d catalogs (the worst: %.3f of it)\n",
         hits, CASES, worst);
  TEST_ASSERTF(hits >= CASES * 95 / 100 && worst >= 0.95, "the optimum in only %d of %d, the worst %.3f of it", hits,
               CASES, worst);
}

static void test_banned_best_item_is_skipped(void) {
  const int t1[4] = {0, 0, 1, 1}, t2[4] = {0, 1, 0, 1};
  float p[4] = {0.9f, 0.3f, 0.2f, 0.1f};
  uint8_t ban[5] = {0, 1, 0, 0, 0}; /* item 1 (j = 0) */
  sim_sid_file f = two_level_sid(4, t1, t2, 2, 2);
  sim_policy_hpn *h = sim_policy_hpn_new(&f, 2);
  const double v = sim_policy_hpn_rank(h, p, ban);
  TEST_NEAR(v, (double)0.3f + (double)0.2f, 1e-9); /* token 0 must take item 2, token 1 takes item 3 */
  TEST_ASSERT(p[1] > p[2] && p[2] > p[3]);
  sim_policy_hpn_free(h);
  hsrl_free(f.tokens);
}

/* popular-hpn: the click counts searched once. Token 0 (items 1, 2) and token 1 (items 3, 4) want
 * opposite deeper tokens: item 1 (deeper 0) has 9 clicks, item 2 (deeper 1) 1; item 3 (deeper 0)
 * 2, item 4 (deeper 1) 8. The form allows {1, 3} (11 clicks) or {2, 4} (9): the slate is items 1
 * and 3, token 0's first, whatever the user; popular-cap1 takes items 1 and 4, outside the form. */
static void test_popular_hpn_searches_the_counts_once(void) {
  const int t1[4] = {0, 0, 1, 1}, t2[4] = {0, 1, 0, 1};
  static const int clicks[4] = {9, 1, 2, 8};
  sim_dataset d; /* 10 records of 2 slots, every slot clicked: item j + 1 in clicks[j] of them */
  sim_dataset_alloc(&d, 4, 1, 1, 1, 10, 2, 1);
  int64_t slot = 0, rec[10];
  for (int j = 0; j < 4; j++)
    for (int c = 0; c < clicks[j]; c++, slot++) d.rec_slate[slot] = j + 1, d.rec_clicks[slot] = 1;
  for (int64_t r = 0; r < 10; r++) rec[r] = r;
  sim_sid_file f = two_level_sid(4, t1, t2, 2, 2);
  char base[16];
  int64_t cap = 0;
  TEST_ASSERT(sim_policy_simple_parse_name("popular-hpn", base, sizeof base, &cap) && !strcmp(base, "popular") &&
              cap == SIM_POLICY_SIMPLE_HPN);
  sim_policy_simple *hpn = sim_policy_simple_popular(&d, rec, 10, 2);
  sim_policy_simple *cap1 = sim_policy_simple_popular(&d, rec, 10, 2);
  sim_policy_simple_cap_sid(hpn, &f, cap);
  sim_policy_simple_cap_sid(cap1, &f, 1);
  const int32_t users[3] = {0, 0, 0}, hist[3] = {0, 1, 4};
  int32_t s_hpn[6], s_cap1[6];
  sim_policy_simple_act(hpn, 3, users, hist, s_hpn);
  sim_policy_simple_act(cap1, 3, users, hist, s_cap1);
  for (int i = 0; i < 3; i++) {
    TEST_ASSERTF(s_hpn[2 * i] == 1 && s_hpn[2 * i + 1] == 3, "popular-hpn user %d: %d %d", i, s_hpn[2 * i],
                 s_hpn[2 * i + 1]);
    TEST_ASSERTF(s_cap1[2 * i] == 1 && s_cap1[2 * i + 1] == 4, "popular-cap1 user %d: %d %d", i, s_cap1[2 * i],
                 s_cap1[2 * i + 1]);
  }
  sim_policy_simple_free(hpn);
  sim_policy_simple_free(cap1);
  hsrl_free(f.tokens);
  sim_dataset_free(&d);
}

static void test_names(void) {
  char base[16];
  int64_t cap = 0;
  TEST_ASSERT(sim_policy_simple_parse_name("oracle-hpn", base, sizeof base, &cap) && !strcmp(base, "oracle") &&
              cap == SIM_POLICY_SIMPLE_HPN);
  TEST_ASSERT(sim_policy_simple_parse_name("greedy-hpn", base, sizeof base, &cap) && cap == SIM_POLICY_SIMPLE_HPN);
  TEST_ASSERT(sim_policy_simple_parse_name("oracle-cap2", base, sizeof base, &cap) && cap == 2);
  TEST_ASSERT(!sim_policy_simple_parse_name("random-hpn", base, sizeof base, &cap));
  TEST_ASSERT(!sim_policy_simple_parse_name("oracle-hpn-cap2", base, sizeof base, &cap));
  TEST_ASSERT(!sim_policy_simple_parse_name("oracle-hpnx", base, sizeof base, &cap));
}

int main(void) {
  TEST_RUN(test_expressible_preference_found);
  TEST_RUN(test_conflicting_tokens_get_the_better_allowed_slate);
  TEST_RUN(test_search_against_exhaustive);
  TEST_RUN(test_banned_best_item_is_skipped);
  TEST_RUN(test_popular_hpn_searches_the_counts_once);
  TEST_RUN(test_names);
  return test_summary();
}
