/* sim_policy_hpn.c: the slate the HPN's factorised form can express that a click model likes
 * best, by coordinate search (see sim_policy_hpn.h). */
#include "sim/sim_policy_hpn.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

struct sim_policy_hpn {
  int64_t N, K;
  int L;
  int64_t vocab[SIM_SID_MAX_LEVELS];
  int64_t off[SIM_SID_MAX_LEVELS]; /* level l's scores start at g + off[l] (l >= 1) */
  uint16_t *tok;                   /* (N + 1, L) */
  double *g;                       /* the deeper levels' scores g_2..g_L */
  double *g2, *cnt;                /* scratch of the same size */
  double *f;                       /* (N) each item's g_2 + ... + g_L, kept up to date */
  int64_t *first;                  /* (n_deep + 1) items_of[first[c] .. first[c + 1]): */
  int32_t *items_of;               /* the items whose token at c's level is c's token */
  int32_t *pick;                   /* (V_1) each level-1 token's item (index j = id - 1), or -1 */
  double *best;                    /* (V_1) that item's g_2 + ... + g_L */
  double *val;                     /* (V_1) scratch: the picks' probabilities */
};

sim_policy_hpn *sim_policy_hpn_new(const sim_sid_file *sid, int64_t K) {
  const int L = sid->cb.n_levels;
  HSRL_CHECKF(L >= 1 && L <= SIM_SID_MAX_LEVELS && sid->n_items >= 1 && K >= 1,
              "hpn policy: %d levels, %lld items, slate %lld", L, (long long)sid->n_items, (long long)K);
  sim_policy_hpn *h = hsrl_calloc(1, sizeof *h);
  h->N = sid->n_items;
  h->K = K;
  h->L = L;
  int64_t total = 0;
  for (int l = 0; l < L; l++) {
    h->vocab[l] = sid->cb.vocab[l];
    h->off[l] = l ? total : 0;
    if (l) total += h->vocab[l];
  }
  h->tok = hsrl_malloc((size_t)((h->N + 1) * L) * sizeof(uint16_t));
  memcpy(h->tok, sid->tokens, (size_t)((h->N + 1) * L) * sizeof(uint16_t));
  h->g = hsrl_calloc((size_t)(total + 1), sizeof(double));
  h->g2 = hsrl_calloc((size_t)(total + 1), sizeof(double));
  h->cnt = hsrl_calloc((size_t)(total + 1), sizeof(double));
  h->f = hsrl_calloc((size_t)h->N, sizeof(double));
  h->first = hsrl_calloc((size_t)(total + 1), sizeof(int64_t));
  h->items_of = hsrl_malloc((size_t)(h->N * (L > 1 ? L - 1 : 1)) * sizeof(int32_t));
  for (int64_t j = 0; j < h->N; j++)
    for (int l = 1; l < L; l++) h->first[h->off[l] + h->tok[(j + 1) * L + l] + 1]++;
  for (int64_t c = 0; c < total; c++) h->first[c + 1] += h->first[c];
  int64_t *fill = hsrl_calloc((size_t)(total + 1), sizeof(int64_t));
  for (int64_t j = 0; j < h->N; j++)
    for (int l = 1; l < L; l++) {
      const int64_t c = h->off[l] + h->tok[(j + 1) * L + l];
      h->items_of[h->first[c] + fill[c]++] = (int32_t)j;
    }
  hsrl_free(fill);
  h->pick = hsrl_malloc((size_t)h->vocab[0] * sizeof(int32_t));
  h->best = hsrl_malloc((size_t)h->vocab[0] * sizeof(double));
  h->val = hsrl_malloc((size_t)h->vocab[0] * sizeof(double));
  return h;
}

void sim_policy_hpn_free(sim_policy_hpn *h) {
  if (!h) return;
  hsrl_free(h->tok);
  hsrl_free(h->g);
  hsrl_free(h->g2);
  hsrl_free(h->cnt);
  hsrl_free(h->f);
  hsrl_free(h->first);
  hsrl_free(h->items_of);
  hsrl_free(h->pick);
  hsrl_free(h->best);
  hsrl_free(h->val);
  hsrl_free(h);
}

/* g_2 + ... + g_L of item j (id j + 1). */
static double deeper_score(const sim_policy_hpn *h, int64_t j) {
  const uint16_t *z = h->tok + (j + 1) * h->L;
  double f = 0.0;
  for (int l = 1; l < h->L; l++) f += h->g[h->off[l] + z[l]];
  return f;
}

/* g[c] = x, and the deeper scores of the items it touches recomputed (not incremented: a value
 * restored gives the same bits back). */
static void set_score(sim_policy_hpn *h, int64_t c, double x) {
  h->g[c] = x;
  for (int64_t e = h->first[c]; e < h->first[c + 1]; e++) h->f[h->items_of[e]] = deeper_score(h, h->items_of[e]);
}

static void set_all_scores(sim_policy_hpn *h) {
  for (int64_t j = 0; j < h->N; j++) h->f[j] = deeper_score(h, j);
}

/* Each level-1 token's pick under the current g (the allowed item with the largest deeper score,
 * ties to the lower id), then the expected clicks of the K best picks. */
static double slate_value(sim_policy_hpn *h, const float *scores, const uint8_t *banned) {
  const int64_t V1 = h->vocab[0];
  for (int64_t t = 0; t < V1; t++) h->pick[t] = -1, h->best[t] = -INFINITY;
  for (int64_t j = 0; j < h->N; j++) {
    if (banned && banned[j + 1]) continue;
    const int64_t t = h->tok[(j + 1) * h->L];
    const double f = h->f[j];
    if (h->pick[t] < 0 || f > h->best[t]) h->pick[t] = (int32_t)j, h->best[t] = f;
  }
  int64_t n = 0;
  for (int64_t t = 0; t < V1; t++)
    if (h->pick[t] >= 0) h->val[n++] = (double)scores[h->pick[t]];
  double total = 0.0;
  for (int64_t k = 0; k < h->K && k < n; k++) { /* the K largest, one at a time (K is small) */
    int64_t b = k;
    for (int64_t q = k + 1; q < n; q++)
      if (h->val[q] > h->val[b]) b = q;
    const double v = h->val[b];
    h->val[b] = h->val[k];
    h->val[k] = v;
    total += v;
  }
  return total;
}

/* Coordinate search from the current g: every token of levels 2..L tries the steps, a jump past
 * either end of its level, and a trade of places with every other token of its level, keeping a
 * strict gain; passes until one gains nothing (at most SIM_POLICY_HPN_PASSES). Returns the value
 * reached. */
static double search(sim_policy_hpn *h, const float *scores, const uint8_t *banned) {
  static const double steps[] = {-4, -2, -1, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1, 2, 4};
  const size_t n_steps = sizeof steps / sizeof steps[0];
  set_all_scores(h);
  double cur = slate_value(h, scores, banned);
  for (int pass = 0; pass < SIM_POLICY_HPN_PASSES; pass++) {
    const double before = cur;
    for (int l = 1; l < h->L; l++) {
      const int64_t o = h->off[l];
      const double *gl = h->g + o;
      for (int64_t t = 0; t < h->vocab[l]; t++) {
        double lo = gl[0], hi = gl[0]; /* the level's range: a token can also jump past either end */
        for (int64_t q = 1; q < h->vocab[l]; q++) lo = gl[q] < lo ? gl[q] : lo, hi = gl[q] > hi ? gl[q] : hi;
        const double g0 = gl[t];
        double keep = g0;
        for (size_t s = 0; s < n_steps + 2; s++) {
          set_score(h, o + t, s < n_steps ? g0 + steps[s] : s == n_steps ? hi + 0.5 : lo - 0.5);
          const double v = slate_value(h, scores, banned);
          if (v > cur) cur = v, keep = gl[t];
        }
        set_score(h, o + t, keep);
      }
      for (int64_t t = 0; t < h->vocab[l]; t++) /* swaps: two tokens trade places */
        for (int64_t u = t + 1; u < h->vocab[l]; u++) {
          const double x = gl[t], y = gl[u];
          set_score(h, o + t, y);
          set_score(h, o + u, x);
          const double v = slate_value(h, scores, banned);
          if (v > cur) {
            cur = v;
          } else {
            set_score(h, o + t, x);
            set_score(h, o + u, y);
          }
        }
    }
    if (cur == before) break; /* a pass without a gain: a local optimum */
  }
  return cur;
}

double sim_policy_hpn_rank(sim_policy_hpn *h, float *scores, const uint8_t *banned) {
  const int64_t V1 = h->vocab[0];
  const int64_t n_deep = h->L > 1 ? h->off[h->L - 1] + h->vocab[h->L - 1] : 0;
  /* two starts: no preference, and each deeper token's mean probability over its items */
  memset(h->g, 0, (size_t)(n_deep + 1) * sizeof(double));
  double cur = search(h, scores, banned);
  memcpy(h->g2, h->g, (size_t)(n_deep + 1) * sizeof(double));
  memset(h->g, 0, (size_t)(n_deep + 1) * sizeof(double));
  memset(h->cnt, 0, (size_t)(n_deep + 1) * sizeof(double));
  for (int64_t j = 0; j < h->N; j++)
    for (int l = 1; l < h->L; l++) {
      const int64_t c = h->off[l] + h->tok[(j + 1) * h->L + l];
      h->g[c] += (double)scores[j], h->cnt[c] += 1.0;
    }
  for (int64_t c = 0; c < n_deep; c++) h->g[c] = h->cnt[c] > 0.0 ? 4.0 * h->g[c] / h->cnt[c] : 0.0;
  const double second = search(h, scores, banned);
  if (second > cur) cur = second;
  else memcpy(h->g, h->g2, (size_t)(n_deep + 1) * sizeof(double));
  set_all_scores(h);
  slate_value(h, scores, banned); /* the picks of the final g */
  /* rank of each level-1 token: by its pick's probability, ties to the lower token */
  for (int64_t t = 0; t < V1; t++) h->val[t] = h->pick[t] >= 0 ? (double)scores[h->pick[t]] : -(double)INFINITY;
  double *rank = h->best; /* reused: V1 - rank, the token's place from the top */
  for (int64_t t = 0; t < V1; t++) {
    int64_t above = 0;
    for (int64_t q = 0; q < V1; q++)
      above += h->val[q] > h->val[t] || (h->val[q] == h->val[t] && q < t);
    rank[t] = (double)(V1 - above);
  }
  /* the deeper scores' range, to order the other items of a token within [0, 0.5] */
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t j = 0; j < h->N; j++) lo = h->f[j] < lo ? h->f[j] : lo, hi = h->f[j] > hi ? h->f[j] : hi;
  const double span = hi > lo ? hi - lo : 1.0;
  for (int64_t j = 0; j < h->N; j++) {
    const int64_t t = h->tok[(j + 1) * h->L];
    const double within = h->pick[t] == j ? 0.75 : 0.5 * (h->f[j] - lo) / span;
    scores[j] = (float)(rank[t] + within);
  }
  return cur;
}
