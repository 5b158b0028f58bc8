/* sim_policy_simple.c: random, most-popular, greedy-by-simulator and the synthetic world's myopic
 * oracle (contracts in sim_policy_simple.h; method.md section 9). */
#include "sim/sim_policy_simple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "sim/sim_click_adapters.h"
#include "sim/sim_policy_hpn.h"

typedef enum policy_kind {
  POLICY_RANDOM,
  POLICY_POPULAR,
  POLICY_GREEDY,
  POLICY_ORACLE
} policy_kind;

struct sim_policy_simple {
  policy_kind kind;
  int64_t N, K, H;
  /* random */
  hsrl_rng rng;
  int32_t *perm; /* (N) a permutation of 1..N, shuffled in place */
  /* popular */
  int32_t *top;      /* (N) every item, most clicked first (the slate is the first K allowed) */
  int64_t *clicks;   /* (N + 1) item i's clicks in the records (popular) */
  /* exclusion of history items (sim_policy_simple_exclude_history) */
  int64_t excl_h;  /* 0: off; else the history length whose items are never shown */
  uint8_t *banned; /* (N + 1) the current user's history items, cleared after each user */
  /* greedy / oracle */
  sim_click_model model;
  int64_t max_batch, block;
  int32_t *items;        /* (block) candidate ids of the current block */
  float *scores;         /* (max_batch, block) */
  float *heap_s;         /* (max_batch, K) per-user min-heaps of the best K so far */
  int32_t *heap_id;      /* (max_batch, K) */
  int64_t *heap_n;       /* (max_batch) */
  int64_t rows_per_user; /* fallback through probs: ceil(block / K) slates per user */
  int32_t *row_users;    /* (max_batch * rows_per_user) */
  int32_t *row_hist;     /* (max_batch * rows_per_user, H) */
  int32_t *row_slates;   /* (max_batch * rows_per_user, K) */
  float *row_probs;      /* (max_batch * rows_per_user, K) */
  /* the group cap (sim_policy_simple_cap); cap 0 = off */
  int64_t cap, n_groups, gcap; /* gcap = min(cap, K): the size of one group's heap */
  int32_t *group;              /* (N + 1) */
  int32_t *gcount;             /* (n_groups) items of each group in the slate being built (popular) */
  float *gheap_s;              /* (max_batch, n_groups, gcap) per-user, per-group min-heaps */
  int32_t *gheap_id;           /* (max_batch, n_groups, gcap) */
  int64_t *gheap_n;            /* (max_batch, n_groups) */
  float *pick_s;               /* (K) the accepted items of one user */
  int32_t *pick_id;            /* (K) */
  sim_policy_hpn *hpn;         /* NAME-hpn: the scores re-ranked in the HPN's form (cap 1), or NULL */
};

static sim_policy_simple *policy_new(policy_kind kind, int64_t N, int64_t K) {
  HSRL_CHECKF(N >= 1 && K >= 1 && K <= N, "policy: slate of %lld from %lld items", (long long)K,
              (long long)N);
  sim_policy_simple *p = hsrl_calloc(1, sizeof *p);
  p->kind = kind;
  p->N = N;
  p->K = K;
  return p;
}

sim_policy_simple *sim_policy_simple_random(int64_t n_items, int64_t slate_size, uint64_t seed) {
  sim_policy_simple *p = policy_new(POLICY_RANDOM, n_items, slate_size);
  p->perm = hsrl_malloc((size_t)n_items * sizeof(int32_t));
  sim_policy_simple_reset(p, seed);
  return p;
}

typedef struct ranked_item {
  double score; /* a click count (exact in a double) or a searched score */
  int32_t id;
} ranked_item;

/* best first, ties to the lower id */
static int ranked_cmp(const void *a, const void *b) {
  const ranked_item *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

sim_policy_simple *sim_policy_simple_popular(const sim_dataset *d, const int64_t *records,
                                             int64_t n, int64_t slate_size) {
  sim_policy_simple *p = policy_new(POLICY_POPULAR, d->n_items, slate_size);
  HSRL_CHECK(d->slate_size >= 1);
  int64_t *count = hsrl_calloc((size_t)(d->n_items + 1), sizeof(int64_t));
  for (int64_t j = 0; j < n; j++) {
    int64_t r = records[j];
    HSRL_CHECK(r >= 0 && r < d->n_records);
    for (int64_t k = 0; k < d->slate_size; k++)
      if (d->rec_clicks[r * d->slate_size + k]) count[d->rec_slate[r * d->slate_size + k]]++;
  }
  /* the whole catalog by count, most clicked first, ties to the lower id */
  ranked_item *rank = hsrl_malloc((size_t)d->n_items * sizeof *rank);
  for (int64_t i = 0; i < d->n_items; i++) rank[i] = (ranked_item){(double)count[i + 1], (int32_t)(i + 1)};
  qsort(rank, (size_t)d->n_items, sizeof *rank, ranked_cmp);
  p->top = hsrl_malloc((size_t)d->n_items * sizeof(int32_t));
  for (int64_t i = 0; i < d->n_items; i++) p->top[i] = rank[i].id;
  hsrl_free(rank);
  p->clicks = count;
  return p;
}

sim_policy_simple *sim_policy_simple_greedy(const sim_click_model *model, int64_t max_batch) {
  HSRL_CHECK(model != NULL && model->probs != NULL && max_batch >= 1);
  sim_policy_simple *p = policy_new(POLICY_GREEDY, model->n_items, model->slate_size);
  p->H = model->history_len;
  p->model = *model;
  p->max_batch = max_batch;
  p->block = p->N < SIM_POLICY_SIMPLE_BLOCK ? p->N : SIM_POLICY_SIMPLE_BLOCK;
  p->items = hsrl_malloc((size_t)p->block * sizeof(int32_t));
  p->heap_s = hsrl_malloc((size_t)(max_batch * p->K) * sizeof(float));
  p->heap_id = hsrl_malloc((size_t)(max_batch * p->K) * sizeof(int32_t));
  p->heap_n = hsrl_malloc((size_t)max_batch * sizeof(int64_t));
  if (model->scores) {
    p->scores = hsrl_malloc((size_t)(max_batch * p->block) * sizeof(float));
  } else {
    const int64_t K = p->K, rows = max_batch * ((p->block + K - 1) / K);
    p->rows_per_user = (p->block + K - 1) / K;
    p->row_users = hsrl_malloc((size_t)rows * sizeof(int32_t));
    p->row_hist = hsrl_malloc((size_t)(rows * p->H) * sizeof(int32_t));
    p->row_slates = hsrl_malloc((size_t)(rows * K) * sizeof(int32_t));
    p->row_probs = hsrl_malloc((size_t)(rows * K) * sizeof(float));
  }
  return p;
}

sim_policy_simple *sim_policy_simple_oracle(const sim_synth_world *w, int64_t max_batch) {
  sim_click_model m = sim_click_adapters_synth(w);
  sim_policy_simple *p = sim_policy_simple_greedy(&m, max_batch);
  p->kind = POLICY_ORACLE;
  return p;
}

void sim_policy_simple_free(sim_policy_simple *p) {
  if (!p) return;
  hsrl_free(p->perm);
  hsrl_free(p->top);
  hsrl_free(p->clicks);
  hsrl_free(p->banned);
  hsrl_free(p->items);
  hsrl_free(p->scores);
  hsrl_free(p->heap_s);
  hsrl_free(p->heap_id);
  hsrl_free(p->heap_n);
  hsrl_free(p->row_users);
  hsrl_free(p->row_hist);
  hsrl_free(p->row_slates);
  hsrl_free(p->row_probs);
  hsrl_free(p->group);
  hsrl_free(p->gcount);
  hsrl_free(p->gheap_s);
  hsrl_free(p->gheap_id);
  hsrl_free(p->gheap_n);
  hsrl_free(p->pick_s);
  hsrl_free(p->pick_id);
  sim_policy_hpn_free(p->hpn);
  hsrl_free(p);
}

const char *sim_policy_simple_name(const sim_policy_simple *p) {
  static const char *const names[] = {"random", "popular", "greedy", "oracle"};
  return names[p->kind];
}

void sim_policy_simple_reset(sim_policy_simple *p, uint64_t seed) {
  if (p->kind != POLICY_RANDOM) return;
  hsrl_rng_init(&p->rng, hsrl_rng_derive(seed, 0x706f6c2d72616e64ull /* "pol-rand" */), 0);
  for (int64_t i = 0; i < p->N; i++) p->perm[i] = (int32_t)(i + 1);
}

void sim_policy_simple_exclude_history(sim_policy_simple *p, int64_t history_len) {
  HSRL_CHECKF(history_len >= 1, "history length %lld", (long long)history_len);
  HSRL_CHECKF(p->N - history_len >= p->K, "policy: %lld items cannot fill a slate of %lld after excluding a "
              "history of %lld", (long long)p->N, (long long)p->K, (long long)history_len);
  if (p->H) HSRL_CHECK(p->H == history_len);
  p->excl_h = history_len;
  if (!p->banned) p->banned = hsrl_calloc((size_t)(p->N + 1), 1);
}

void sim_policy_simple_cap(sim_policy_simple *p, const int32_t *group, int64_t n_groups, int64_t cap) {
  HSRL_CHECKF(p->kind != POLICY_RANDOM, "policy: random slates are not a ranking to cap");
  HSRL_CHECKF(cap >= 1 && n_groups >= 1 && !p->group, "policy: cap %lld over %lld groups (set once)",
              (long long)cap, (long long)n_groups);
  for (int64_t i = 1; i <= p->N; i++)
    HSRL_CHECKF(group[i] >= 0 && group[i] < n_groups, "policy: item %lld in group %d of %lld", (long long)i,
                group[i], (long long)n_groups);
  p->cap = cap;
  p->n_groups = n_groups;
  p->gcap = cap < p->K ? cap : p->K;
  p->group = hsrl_malloc((size_t)(p->N + 1) * sizeof(int32_t));
  memcpy(p->group, group, (size_t)(p->N + 1) * sizeof(int32_t));
  p->group[0] = 0;
  if (p->kind == POLICY_POPULAR) {
    p->gcount = hsrl_calloc((size_t)n_groups, sizeof(int32_t));
    return;
  }
  p->pick_s = hsrl_malloc((size_t)p->K * sizeof(float));
  p->pick_id = hsrl_malloc((size_t)p->K * sizeof(int32_t));
  const int64_t slots = p->max_batch * n_groups;
  p->gheap_s = hsrl_malloc((size_t)(slots * p->gcap) * sizeof(float));
  p->gheap_id = hsrl_malloc((size_t)(slots * p->gcap) * sizeof(int32_t));
  p->gheap_n = hsrl_malloc((size_t)slots * sizeof(int64_t));
}

/* popular-hpn: the click counts (as shares of the largest) re-ranked once by the search into the
 * slate of HSRL's form they like best; the counts do not depend on the state, so neither does the
 * ranking. p->top follows it, and the cap of one item per level-1 token makes the slate. */
static void popular_rank_hpn(sim_policy_simple *p, const sim_sid_file *sid) {
  const int64_t N = p->N;
  int64_t most = 1;
  for (int64_t i = 1; i <= N; i++) most = p->clicks[i] > most ? p->clicks[i] : most;
  float *sc = hsrl_malloc((size_t)N * sizeof(float));
  for (int64_t j = 0; j < N; j++) sc[j] = (float)((double)p->clicks[j + 1] / (double)most);
  sim_policy_hpn *h = sim_policy_hpn_new(sid, p->K);
  sim_policy_hpn_rank(h, sc, NULL);
  sim_policy_hpn_free(h);
  ranked_item *rank = hsrl_malloc((size_t)N * sizeof *rank);
  for (int64_t j = 0; j < N; j++) rank[j] = (ranked_item){(double)sc[j], (int32_t)(j + 1)};
  qsort(rank, (size_t)N, sizeof *rank, ranked_cmp);
  for (int64_t j = 0; j < N; j++) p->top[j] = rank[j].id;
  hsrl_free(rank);
  hsrl_free(sc);
}

void sim_policy_simple_cap_sid(sim_policy_simple *p, const sim_sid_file *sid, int64_t cap) {
  HSRL_CHECKF(sid->n_items == p->N, "policy: SIDs of %lld items for a catalog of %lld", (long long)sid->n_items,
              (long long)p->N);
  if (cap == SIM_POLICY_SIMPLE_HPN) {
    HSRL_CHECKF(p->kind != POLICY_RANDOM, "policy: random has no -hpn form");
    HSRL_CHECKF(p->N <= SIM_POLICY_SIMPLE_BLOCK, "policy: NAME-hpn searches the whole catalog (its cost grows with "
                "items x tokens^2): at most %d items, not %lld", SIM_POLICY_SIMPLE_BLOCK, (long long)p->N);
    if (p->kind == POLICY_POPULAR) {
      popular_rank_hpn(p, sid);
    } else {
      HSRL_CHECKF(p->model.scores != NULL && p->model.scores_logit,
                  "policy: NAME-hpn needs a click model that scores items one by one, by logit");
      p->hpn = sim_policy_hpn_new(sid, p->K);
    }
    cap = 1;
  }
  const int L = sid->cb.n_levels;
  int32_t *group = hsrl_malloc((size_t)(p->N + 1) * sizeof(int32_t));
  for (int64_t i = 0; i <= p->N; i++) group[i] = sid->tokens[i * L];
  sim_policy_simple_cap(p, group, sid->cb.vocab[0], cap);
  hsrl_free(group);
}

int sim_policy_simple_parse_name(const char *word, char *base, size_t base_size, int64_t *cap) {
  static const char *const names[] = {"random", "popular", "greedy", "oracle"};
  *cap = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const size_t n = strlen(names[i]);
    if (strncmp(word, names[i], n)) continue;
    snprintf(base, base_size, "%s", names[i]);
    if (!word[n]) return 1;
    if (i >= 1 && !strcmp(word + n, "-hpn")) {
      *cap = SIM_POLICY_SIMPLE_HPN;
      return 1;
    }
    if (i == 0 || strncmp(word + n, "-cap", 4)) return 0;
    const char *digits = word + n + 4;
    if (*digits < '1' || *digits > '9' || strlen(digits) > 6) return 0;
    for (const char *d = digits; *d; d++)
      if (*d < '0' || *d > '9') return 0;
    *cap = strtoll(digits, NULL, 10);
    return 1;
  }
  return 0;
}

/* Marks (on = 1) or clears (on = 0) the items of one history in p->banned (no-op when off:
 * excl_h is 0 then). */
static void policy_ban(sim_policy_simple *p, const int32_t *history, uint8_t on) {
  for (int64_t j = 0; j < p->excl_h; j++)
    if (history[j] > 0 && history[j] <= p->N) p->banned[history[j]] = on;
}

/* ---------------------------------------------------------------- top-K selection */

/* a ranks before b */
static int policy_better(float sa, int32_t ia, float sb, int32_t ib) {
  return sa > sb || (sa == sb && ia < ib);
}

/* Min-heap (root = the worst kept) of at most K (score, id) pairs. */
static void policy_heap_push(float *hs, int32_t *hi, int64_t *hn, int64_t K, float s, int32_t id) {
  HSRL_CHECKF(s == s, "policy: NaN score for item %d", id);
  int64_t n = *hn, i;
  if (n < K) {
    i = n++;
    while (i > 0) { /* sift up */
      int64_t parent = (i - 1) / 2;
      if (!policy_better(hs[parent], hi[parent], s, id)) break;
      hs[i] = hs[parent];
      hi[i] = hi[parent];
      i = parent;
    }
    hs[i] = s;
    hi[i] = id;
    *hn = n;
    return;
  }
  if (!policy_better(s, id, hs[0], hi[0])) return;
  i = 0; /* replace the root, sift down */
  for (;;) {
    int64_t l = 2 * i + 1, r = l + 1, w = i;
    float ws = s;
    int32_t wi = id;
    if (l < n && policy_better(ws, wi, hs[l], hi[l])) w = l, ws = hs[l], wi = hi[l];
    if (r < n && policy_better(ws, wi, hs[r], hi[r])) w = r;
    if (w == i) break;
    hs[i] = hs[w];
    hi[i] = hi[w];
    i = w;
  }
  hs[i] = s;
  hi[i] = id;
}

/* Sorts a heap's n pairs in place, best first. */
static void policy_heap_sort(float *hs, int32_t *hi, int64_t n) {
  for (int64_t a = 1; a < n; a++) { /* insertion sort, best first: K is small */
    float s = hs[a];
    int32_t id = hi[a];
    int64_t b = a;
    while (b > 0 && policy_better(s, id, hs[b - 1], hi[b - 1])) {
      hs[b] = hs[b - 1];
      hi[b] = hi[b - 1];
      b--;
    }
    hs[b] = s;
    hi[b] = id;
  }
}

/* Writes the heap's items best first into slate (K). */
static void policy_heap_emit(float *hs, int32_t *hi, int64_t n, int32_t *slate) {
  HSRL_CHECK(n >= 1);
  policy_heap_sort(hs, hi, n);
  memcpy(slate, hi, (size_t)n * sizeof(int32_t));
}

/* Offers item id with score sc to user i's heaps: the best K overall and, with a cap, the best
 * gcap of the item's group. */
static void policy_keep(sim_policy_simple *p, int64_t i, float sc, int32_t id) {
  const int64_t K = p->K;
  policy_heap_push(p->heap_s + i * K, p->heap_id + i * K, p->heap_n + i, K, sc, id);
  if (!p->cap) return;
  const int64_t g = i * p->n_groups + p->group[id];
  policy_heap_push(p->gheap_s + g * p->gcap, p->gheap_id + g * p->gcap, p->gheap_n + g, p->gcap, sc, id);
}

static int policy_in(const int32_t *ids, int64_t n, int32_t id) {
  for (int64_t j = 0; j < n; j++)
    if (ids[j] == id) return 1;
  return 0;
}

/* User i's slate (K) from its heaps. With a cap: the accepted items (the best gcap of each group,
 * then the best K of those) best first, then the best of the others while the slate has room. */
static void policy_emit_user(sim_policy_simple *p, int64_t i, int32_t *slate) {
  const int64_t K = p->K;
  float *hs = p->heap_s + i * K;
  int32_t *hi = p->heap_id + i * K;
  if (!p->cap) {
    policy_heap_emit(hs, hi, p->heap_n[i], slate);
    return;
  }
  int64_t n = 0;
  for (int64_t g = i * p->n_groups; g < (i + 1) * p->n_groups; g++)
    for (int64_t j = 0; j < p->gheap_n[g]; j++)
      policy_heap_push(p->pick_s, p->pick_id, &n, K, p->gheap_s[g * p->gcap + j], p->gheap_id[g * p->gcap + j]);
  policy_heap_emit(p->pick_s, p->pick_id, n, slate);
  if (n == K) return;
  policy_heap_sort(hs, hi, p->heap_n[i]);
  for (int64_t j = 0; j < p->heap_n[i] && n < K; j++)
    if (!policy_in(slate, n, hi[j])) slate[n++] = hi[j];
}

/* slates (b, K) = the K best items of the catalog for b <= max_batch users. The catalog is
 * scored block by block (p->block items): through the model's scores callback into p->scores
 * (b, nb), or through probs on the block's items packed K to a slate (row i * R + r of user i holds
 * items r*K .. r*K+K-1; the last slate is padded with a real item whose extra score is ignored). */
static void policy_greedy_chunk(sim_policy_simple *p, int64_t b, const int32_t *users,
                                const int32_t *hist, int32_t *slates) {
  const int64_t K = p->K, H = p->H, N = p->N;
  for (int64_t i = 0; i < b; i++) p->heap_n[i] = 0;
  if (p->cap) memset(p->gheap_n, 0, (size_t)(b * p->n_groups) * sizeof(int64_t));
  for (int64_t i0 = 1; i0 <= N; i0 += p->block) {
    int64_t nb = N - i0 + 1 < p->block ? N - i0 + 1 : p->block;
    for (int64_t j = 0; j < nb; j++) p->items[j] = (int32_t)(i0 + j);
    if (p->model.scores) {
      p->model.scores(p->model.ctx, b, users, hist, p->items, nb, p->scores);
      for (int64_t i = 0; i < b; i++) {
        policy_ban(p, hist + i * H, 1);
        if (p->hpn) { /* logits -> click probabilities, then the search's ranking */
          float *sc = p->scores + i * nb;
          for (int64_t j = 0; j < nb; j++) sc[j] = (float)(1.0 / (1.0 + exp(-(double)sc[j])));
          sim_policy_hpn_rank(p->hpn, sc, p->excl_h ? p->banned : NULL);
        }
        for (int64_t j = 0; j < nb; j++)
          if (!p->excl_h || !p->banned[p->items[j]]) policy_keep(p, i, p->scores[i * nb + j], p->items[j]);
        policy_ban(p, hist + i * H, 0);
      }
    } else {
      const int64_t R = (nb + K - 1) / K; /* slates per user */
      for (int64_t i = 0; i < b; i++)
        for (int64_t r = 0; r < R; r++) {
          int64_t row = i * R + r;
          p->row_users[row] = users[i];
          memcpy(p->row_hist + row * H, hist + i * H, (size_t)H * sizeof(int32_t));
          for (int64_t k = 0; k < K; k++) {
            int64_t j = r * K + k;
            p->row_slates[row * K + k] = p->items[j < nb ? j : 0]; /* pad with a real item */
          }
        }
      p->model.probs(p->model.ctx, b * R, p->row_users, p->row_hist, p->row_slates, p->row_probs);
      for (int64_t i = 0; i < b; i++) {
        policy_ban(p, hist + i * H, 1);
        for (int64_t j = 0; j < nb; j++)
          if (!p->excl_h || !p->banned[p->items[j]]) policy_keep(p, i, p->row_probs[i * R * K + j], p->items[j]);
        policy_ban(p, hist + i * H, 0);
      }
    }
  }
  for (int64_t i = 0; i < b; i++) policy_emit_user(p, i, slates + i * K);
}

/* The popular slate with the group cap for one user: the most clicked allowed items, at most cap
 * per group, then the most clicked of the skipped ones while the slate has room. */
static void policy_popular_capped(sim_policy_simple *p, const int32_t *history, int32_t *slate) {
  const int64_t K = p->K;
  policy_ban(p, history, 1);
  int64_t n = 0;
  for (int64_t r = 0; r < p->N && n < K; r++) {
    const int32_t id = p->top[r];
    if (p->excl_h && p->banned[id]) continue;
    if (p->gcount[p->group[id]] >= p->cap) continue;
    p->gcount[p->group[id]]++;
    slate[n++] = id;
  }
  for (int64_t k = 0; k < n; k++) p->gcount[p->group[slate[k]]] = 0;
  for (int64_t r = 0; r < p->N && n < K; r++) {
    const int32_t id = p->top[r];
    if ((!p->excl_h || !p->banned[id]) && !policy_in(slate, n, id)) slate[n++] = id;
  }
  policy_ban(p, history, 0);
}

void sim_policy_simple_act(sim_policy_simple *p, int64_t b, const int32_t *user_ids,
                           const int32_t *histories, int32_t *slates) {
  const int64_t K = p->K;
  switch (p->kind) {
    case POLICY_RANDOM:
      for (int64_t i = 0; i < b; i++) {
        policy_ban(p, histories + i * p->excl_h, 1);
        for (int64_t k = 0; k < K; k++) {
          int64_t j; /* uniform over the undrawn allowed items: redraw a banned one */
          do j = k + (int64_t)hsrl_rng_below(&p->rng, (uint64_t)(p->N - k));
          while (p->excl_h && p->banned[p->perm[j]]);
          int32_t t = p->perm[k];
          p->perm[k] = p->perm[j];
          p->perm[j] = t;
          slates[i * K + k] = p->perm[k];
        }
        policy_ban(p, histories + i * p->excl_h, 0);
      }
      break;
    case POLICY_POPULAR:
      for (int64_t i = 0; i < b; i++) {
        if (p->cap) {
          policy_popular_capped(p, histories + i * p->excl_h, slates + i * K);
          continue;
        }
        if (!p->excl_h) {
          memcpy(slates + i * K, p->top, (size_t)K * sizeof(int32_t));
          continue;
        }
        policy_ban(p, histories + i * p->excl_h, 1);
        for (int64_t r = 0, k = 0; k < K; r++)
          if (!p->banned[p->top[r]]) slates[i * K + k++] = p->top[r];
        policy_ban(p, histories + i * p->excl_h, 0);
      }
      break;
    case POLICY_GREEDY:
    case POLICY_ORACLE:
      for (int64_t i0 = 0; i0 < b; i0 += p->max_batch) {
        int64_t n = b - i0 < p->max_batch ? b - i0 : p->max_batch;
        policy_greedy_chunk(p, n, user_ids + i0, histories + i0 * p->H, slates + i0 * K);
      }
      break;
  }
}
