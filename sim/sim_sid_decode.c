/* sim_sid_decode.c: slates from per-level token distributions; see sim_sid_decode.h (method.md §6,
 * reference-hsrl.md §5.4).
 *
 * Why the bounds are safe in floating point: IEEE addition is monotone in each argument, so a sum
 * taken left to right with every term replaced by a larger or equal one is larger or equal. Scores
 * are ((0 + lp_0) + lp_1) + ...; a bound replaces the remaining levels' terms by their maxima in
 * the same order, so bound >= score holds exactly, not just up to rounding, and the best-first
 * order (and the tie handling that depends on equal keys) is exact. */
#include "sim/sim_sid_decode.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

struct sim_sid_decode_heap_entry {
  double key;   /* streams: an upper bound of every score below; cursors: the exact score */
  double logp;  /* the prefix log-prob (cursors: the score) */
  int64_t node; /* node number at `depth` (depth L: the SID number) */
  uint64_t tie; /* cursors: tie key of the next item to emit; streams: arena offset */
  int32_t depth;
  int32_t aux;  /* streams: children left in the arena; cursors: position within the bucket */
};

struct sim_sid_decode_child {
  float lp;      /* log pi_d of the child's token */
  int32_t child; /* node number at depth d + 1 (< n_live < 2^31) */
};

struct sim_sid_decode_best {
  double score; /* the ranking key (a score, or a perturbed key when sampling) */
  uint64_t tie;
  int64_t item;
};

struct sim_sid_decode_taken {
  int64_t leaf;
  int64_t item;
};

static int64_t round64(int64_t n) { return (n + 63) / 64 * 64; }

int64_t sim_sid_decode_capacity_default(int64_t k, int n_levels, int64_t vocab_max) {
  return 8 * (k * n_levels + 1) * vocab_max + k;
}

/* The heap holds at most one entry per arena child (streams and cursors both come from opened
 * nodes' children), in practice far fewer: a quarter of the arena, then the fallback. */
static int64_t ws_heap_cap(int64_t capacity, int64_t k) { return capacity / 4 + k + 2; }

int64_t sim_sid_decode_ws_bytes(int64_t k, int n_levels, int64_t vocab_max, int64_t capacity) {
  if (capacity <= 0) capacity = sim_sid_decode_capacity_default(k, n_levels, vocab_max);
  return round64(ws_heap_cap(capacity, k) * (int64_t)sizeof(sim_sid_decode_heap_entry)) +
         round64(capacity * (int64_t)sizeof(sim_sid_decode_child)) +
         round64(k * (int64_t)sizeof(sim_sid_decode_best)) +
         2 * round64(n_levels * vocab_max * (int64_t)sizeof(double)) + /* CDFs and weights */
         round64(k * (int64_t)sizeof(sim_sid_decode_taken));
}

void sim_sid_decode_ws_init(sim_sid_decode_ws *ws, int64_t k, int n_levels, int64_t vocab_max, int64_t capacity) {
  memset(ws, 0, sizeof *ws);
  HSRL_CHECKF(k >= 1 && n_levels >= 1 && n_levels <= SIM_SID_MAX_LEVELS && vocab_max >= 1 && vocab_max <= 65536,
              "k %lld, L %d, V %lld", (long long)k, n_levels, (long long)vocab_max);
  if (capacity <= 0) capacity = sim_sid_decode_capacity_default(k, n_levels, vocab_max);
  HSRL_CHECKF(capacity >= vocab_max + k + 1, "capacity %lld < V + K + 1", (long long)capacity);
  ws->k_max = k, ws->n_levels_max = n_levels, ws->vocab_max = vocab_max;
  ws->arena_cap = capacity, ws->heap_cap = ws_heap_cap(capacity, k);
  char *p = hsrl_alloc_aligned((size_t)sim_sid_decode_ws_bytes(k, n_levels, vocab_max, capacity));
  ws->mem = p;
  ws->heap = (sim_sid_decode_heap_entry *)p;
  p += round64(ws->heap_cap * (int64_t)sizeof(sim_sid_decode_heap_entry));
  ws->arena = (sim_sid_decode_child *)p;
  p += round64(capacity * (int64_t)sizeof(sim_sid_decode_child));
  ws->best = (sim_sid_decode_best *)p;
  p += round64(k * (int64_t)sizeof(sim_sid_decode_best));
  ws->cdf = (double *)p;
  p += round64(n_levels * vocab_max * (int64_t)sizeof(double));
  ws->weight = (double *)p;
  p += round64(n_levels * vocab_max * (int64_t)sizeof(double));
  ws->taken = (sim_sid_decode_taken *)p;
}

void sim_sid_decode_ws_reserve_exclude(sim_sid_decode_ws *ws, int64_t n) {
  HSRL_CHECKF(n >= 0, "n = %lld", (long long)n);
  if (n <= ws->excl_cap) return;
  hsrl_free(ws->excl_mem);
  char *p = hsrl_alloc_aligned((size_t)(round64((ws->k_max + n) * (int64_t)sizeof(sim_sid_decode_taken)) +
                                        round64(n * (int64_t)sizeof(int32_t))));
  ws->excl_mem = p;
  ws->taken = (sim_sid_decode_taken *)p;
  ws->excl = (int32_t *)(p + round64((ws->k_max + n) * (int64_t)sizeof(sim_sid_decode_taken)));
  ws->excl_cap = n;
}

void sim_sid_decode_ws_free(sim_sid_decode_ws *ws) {
  if (!ws) return;
  hsrl_free(ws->excl_mem);
  hsrl_free(ws->mem);
  memset(ws, 0, sizeof *ws);
}

/* ---- one state ---------------------------------------------------------------------------- */

typedef struct decode_ctx {
  const sim_sid_index *idx;
  const sim_sid_trie *trie; /* NULL for the list functions */
  sim_sid_decode_ws *ws;
  int L;
  int64_t k;
  const float *lp[SIM_SID_MAX_LEVELS]; /* this state's log pi_l, (V_l) each */
  double lmax[SIM_SID_MAX_LEVELS];     /* max_v lp[l][v] */
  int64_t n_excl;                      /* this state's excluded live items (ws->excl, sorted) */
  int32_t *items;                      /* this state's output rows */
  double *item_logp;
  float *tok_logp;
} decode_ctx;

static void ctx_begin(decode_ctx *c, const sim_sid_index *idx, const sim_sid_trie *trie, sim_sid_decode_ws *ws,
                      int64_t k) {
  memset(c, 0, sizeof *c);
  c->idx = idx, c->trie = trie, c->ws = ws, c->L = idx->n_levels, c->k = k;
  HSRL_CHECKF(k >= 1 && k <= ws->k_max, "k = %lld, workspace made for K <= %lld", (long long)k, (long long)ws->k_max);
  HSRL_CHECKF(idx->n_levels <= ws->n_levels_max, "L = %d, workspace made for L <= %d", idx->n_levels, ws->n_levels_max);
  for (int l = 0; l < c->L; l++)
    HSRL_CHECKF(idx->vocab[l] <= ws->vocab_max, "V_%d = %lld, workspace made for V <= %lld", l,
                (long long)idx->vocab[l], (long long)ws->vocab_max);
  if (trie)
    HSRL_CHECKF(trie->generation == idx->generation && trie->n_levels == idx->n_levels &&
                    trie->leaf_start == idx->bucket_start,
                "the trie was built from another version of the index (rebuild it after every update)");
}

/* Points the context at state b's log-probs and computes the level maxima (checks for NaN and
 * +inf, which are bugs upstream). */
static void ctx_levels(decode_ctx *c, const sim_sid_logp *logp, int64_t b) {
  for (int l = 0; l < c->L; l++) {
    int64_t v_l = c->idx->vocab[l];
    int64_t stride = logp->stride[l] ? logp->stride[l] : v_l;
    HSRL_CHECKF(logp->level[l] != NULL, "log-probs of level %d missing", l);
    const float *x = logp->level[l] + b * stride;
    float m = -INFINITY;
    int bad = 0;
    for (int64_t v = 0; v < v_l; v++) {
      m = x[v] > m ? x[v] : m;
      bad |= x[v] != x[v] || x[v] == INFINITY;
    }
    HSRL_CHECKF(!bad, "state %lld, level %d: a log-probability is NaN or +inf", (long long)b, l);
    c->lp[l] = x;
    c->lmax[l] = (double)m;
  }
}

/* Loads state b's excluded items: the live ones, sorted, without duplicates. */
static void ctx_exclusions(decode_ctx *c, const sim_sid_logp *logp, int64_t b) {
  c->n_excl = 0;
  if (!logp->exclude || logp->exclude_n == 0) return;
  HSRL_CHECKF(logp->exclude_n <= c->ws->excl_cap,
              "%lld exclusions per state, workspace reserved for %lld (sim_sid_decode_ws_reserve_exclude)",
              (long long)logp->exclude_n, (long long)c->ws->excl_cap);
  const int32_t *x = logp->exclude + b * (logp->exclude_stride ? logp->exclude_stride : logp->exclude_n);
  int32_t *e = c->ws->excl;
  int64_t n = 0;
  for (int64_t j = 0; j < logp->exclude_n; j++) {
    int32_t item = x[j];
    if (item <= 0 || item > c->idx->n_items || !c->idx->live[item]) continue;
    int64_t p = n; /* insertion sort: a history is short */
    while (p > 0 && e[p - 1] > item) p--;
    if (p > 0 && e[p - 1] == item) continue;
    memmove(e + p + 1, e + p, (size_t)(n - p) * sizeof *e);
    e[p] = item;
    n++;
  }
  c->n_excl = n;
}

static int is_excluded(const decode_ctx *c, int64_t item) {
  int64_t lo = 0, hi = c->n_excl;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (c->ws->excl[mid] < item) lo = mid + 1;
    else hi = mid;
  }
  return lo < c->n_excl && c->ws->excl[lo] == item;
}

/* Points the context at state b: log-probs, exclusions and output rows. */
static void ctx_state(decode_ctx *c, const sim_sid_logp *logp, int64_t b, int32_t *items, double *item_logp,
                      float *tok_logp) {
  ctx_levels(c, logp, b);
  ctx_exclusions(c, logp, b);
  c->ws->stats.n_states++;
  c->items = items + b * c->k;
  c->item_logp = item_logp ? item_logp + b * c->k : NULL;
  c->tok_logp = tok_logp ? tok_logp + b * c->k * c->L : NULL;
}

static double item_score(const decode_ctx *c, int64_t item) {
  const uint16_t *z = c->idx->tokens + item * c->L;
  double s = 0.0;
  for (int l = 0; l < c->L; l++) s += (double)c->lp[l][z[l]];
  return s;
}

static void emit(const decode_ctx *c, int64_t slot, int64_t item, double score) {
  c->items[slot] = (int32_t)item;
  if (c->item_logp) c->item_logp[slot] = score;
  if (c->tok_logp) {
    const uint16_t *z = c->idx->tokens + item * c->L;
    for (int l = 0; l < c->L; l++) c->tok_logp[slot * c->L + l] = c->lp[l][z[l]];
  }
}

static void pad_from(const decode_ctx *c, int64_t slot) {
  for (; slot < c->k; slot++) {
    c->items[slot] = 0;
    if (c->item_logp) c->item_logp[slot] = -HUGE_VAL;
    if (c->tok_logp)
      for (int l = 0; l < c->L; l++) c->tok_logp[slot * c->L + l] = 0.0f;
  }
}

/* Upper bound of every score below a depth-d prefix with log-prob logp. */
static double bound_loose(const decode_ctx *c, double logp, int depth) {
  double key = logp;
  for (int l = depth; l < c->L; l++) key += c->lmax[l];
  return key;
}

/* The same, knowing the largest log-prob mc among the tokens continuing the prefix. */
static double bound_tight(const decode_ctx *c, double logp, double mc, int depth) {
  double key = logp + mc;
  for (int l = depth + 1; l < c->L; l++) key += c->lmax[l];
  return key;
}

/* ---- the K-best buffer: a min-heap in the total order (the worst kept candidate on top) ---- */

static int before(double sa, uint64_t ta, double sb, uint64_t tb) { return sa > sb || (sa == sb && ta < tb); }

static void best_sift_down(sim_sid_decode_best *h, int64_t n, int64_t i) {
  for (;;) {
    int64_t w = i, a = 2 * i + 1, b = a + 1;
    if (a < n && before(h[w].score, h[w].tie, h[a].score, h[a].tie)) w = a;
    if (b < n && before(h[w].score, h[w].tie, h[b].score, h[b].tie)) w = b;
    if (w == i) return;
    sim_sid_decode_best t = h[i];
    h[i] = h[w], h[w] = t, i = w;
  }
}

/* Offers a candidate; returns 0 when it is not kept (it comes after all kept ones, K of them). */
static int best_offer(sim_sid_decode_best *h, int64_t *n, int64_t cap, double score, uint64_t tie, int64_t item) {
  if (*n < cap) {
    int64_t i = (*n)++;
    h[i] = (sim_sid_decode_best){score, tie, item};
    while (i > 0) {
      int64_t p = (i - 1) / 2;
      if (!before(h[p].score, h[p].tie, h[i].score, h[i].tie)) break;
      sim_sid_decode_best t = h[i];
      h[i] = h[p], h[p] = t, i = p;
    }
    return 1;
  }
  if (!before(score, tie, h[0].score, h[0].tie)) return 0;
  h[0] = (sim_sid_decode_best){score, tie, item};
  best_sift_down(h, *n, 0);
  return 1;
}

/* Sorts the kept candidates best first (insertion sort: K is small). */
static void best_sort(sim_sid_decode_best *h, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    sim_sid_decode_best x = h[i];
    int64_t j = i - 1;
    while (j >= 0 && before(x.score, x.tie, h[j].score, h[j].tie)) h[j + 1] = h[j], j--;
    h[j + 1] = x;
  }
}

/* ---- (a) best-first search ------------------------------------------------------------------ */

static int entry_better(const sim_sid_decode_heap_entry *a, const sim_sid_decode_heap_entry *b, int L) {
  if (a->key != b->key) return a->key > b->key;
  int a_leaf = a->depth == L, b_leaf = b->depth == L;
  if (a_leaf != b_leaf) return b_leaf; /* a prefix may hide an item of equal score and smaller tie key */
  if (!a_leaf) return a->depth != b->depth ? a->depth > b->depth : a->node < b->node;
  return a->tie < b->tie;
}

static void heap_push(sim_sid_decode_heap_entry *h, int64_t *n, const sim_sid_decode_heap_entry *e, int L) {
  int64_t i = (*n)++;
  while (i > 0) {
    int64_t p = (i - 1) / 2;
    if (!entry_better(e, &h[p], L)) break;
    h[i] = h[p], i = p;
  }
  h[i] = *e;
}

static sim_sid_decode_heap_entry heap_pop(sim_sid_decode_heap_entry *h, int64_t *n, int L) {
  sim_sid_decode_heap_entry top = h[0], last = h[--(*n)];
  int64_t i = 0, m = *n;
  for (;;) {
    int64_t a = 2 * i + 1, b = a + 1, w = a;
    if (a >= m) break;
    if (b < m && entry_better(&h[b], &h[a], L)) w = b;
    if (!entry_better(&h[w], &last, L)) break;
    h[i] = h[w], i = w;
  }
  if (m > 0) h[i] = last;
  return top;
}

/* ---- children streams: a node's children as a max-heap by log-prob in the arena ---- */

static int child_better(const sim_sid_decode_child *a, const sim_sid_decode_child *b) {
  return a->lp > b->lp || (a->lp == b->lp && a->child < b->child);
}

static void children_sift(sim_sid_decode_child *h, int64_t n, int64_t i) {
  sim_sid_decode_child x = h[i];
  for (;;) {
    int64_t a = 2 * i + 1, w = a;
    if (a >= n) break;
    if (a + 1 < n && child_better(&h[a + 1], &h[a])) w = a + 1;
    if (!child_better(&h[w], &x)) break;
    h[i] = h[w], i = w;
  }
  h[i] = x;
}

/* The key of a stream whose best remaining child has log-prob lp_best: an upper bound of every
 * score below the stream's remaining children (the exact score when they are full SIDs). */
static double stream_key(const decode_ctx *c, double logp, double lp_best, int depth) {
  return bound_tight(c, logp, lp_best, depth);
}

/* Opens node u at depth d (prefix log-prob logp): its children go to the arena as a heap and *e
 * becomes its stream entry. Returns 0 when the arena is full. */
static int open_node(decode_ctx *c, int d, int64_t u, double logp, int64_t *used, sim_sid_decode_heap_entry *e) {
  const sim_sid_trie *t = c->trie;
  const int64_t c0 = t->child_start[d][u], c1 = t->child_start[d][u + 1];
  if (*used + (c1 - c0) > c->ws->arena_cap) return 0;
  sim_sid_decode_child *seg = c->ws->arena + *used;
  const uint16_t *tok = t->token[d];
  const float *lpd = c->lp[d];
  for (int64_t ch = c0; ch < c1; ch++) seg[ch - c0] = (sim_sid_decode_child){lpd[tok[ch]], (int32_t)ch};
  const int64_t m = c1 - c0;
  for (int64_t i = m / 2 - 1; i >= 0; i--) children_sift(seg, m, i);
  c->ws->stats.n_touched += m;
  *e = (sim_sid_decode_heap_entry){m > 0 ? stream_key(c, logp, (double)seg[0].lp, d) : -HUGE_VAL, logp, u, (uint64_t)*used,
                                   d, (int32_t)m};
  *used += m;
  if (*used > c->ws->stats.arena_high) c->ws->stats.arena_high = *used;
  return 1;
}

/* The first position >= pos of the leaf's bucket whose item is not excluded, or -1. */
static int64_t bucket_next_allowed(const decode_ctx *c, int64_t leaf, int64_t pos) {
  const int64_t end = c->trie->leaf_start[leaf + 1];
  if (c->n_excl == 0) return pos < end ? pos : -1;
  for (; pos < end; pos++)
    if (!is_excluded(c, c->idx->bucket_items[pos])) return pos;
  return -1;
}

/* Items of the leaf's bucket that are not excluded. */
static int64_t bucket_allowed(const decode_ctx *c, int64_t leaf) {
  const int64_t start = c->trie->leaf_start[leaf], end = c->trie->leaf_start[leaf + 1];
  int64_t m = end - start;
  if (c->n_excl == 0) return m;
  for (int64_t pos = start; pos < end; pos++) m -= is_excluded(c, c->idx->bucket_items[pos]);
  return m;
}

/* Returns the number of items emitted, or -1 when the heap or the arena would overflow.
 * Entries: a stream of an opened node (depth < L; its key bounds the scores below its remaining
 * children) or a cursor into a full SID's bucket (depth L; key = its exact score). Popping a
 * stream takes its best child: the stream goes back keyed by the next child, and the child is
 * opened (its children heaped in the arena) and enters as a stream of its own, or, at the last
 * level, as a cursor. So a pop pushes at most two entries and reads only the children of the node
 * it opens.
 * Pruning: the K-best buffer (unused until a fallback) keeps the K largest scores of the items
 * whose full SIDs have entered the heap (a bucket of m counts m times). Once K are known, the K-th
 * of them, lb, is a lower bound of the final K-th score, so an entry whose key is below lb
 * (strictly: ties may still matter) can never be popped before K items are out and is dropped. */
static int64_t topk_best_first(decode_ctx *c, int64_t kk) {
  const sim_sid_trie *t = c->trie;
  const sim_sid_index *idx = c->idx;
  sim_sid_decode_ws *ws = c->ws;
  sim_sid_decode_heap_entry *h = ws->heap;
  sim_sid_decode_best *lb = ws->best;
  const int L = c->L;
  int64_t n = 0, emitted = 0, n_lb = 0, used = 0;
  if (kk == 0) return 0;
  sim_sid_decode_heap_entry e;
  if (!open_node(c, 0, 0, 0.0, &used, &e)) return -1;
  if (e.aux > 0) heap_push(h, &n, &e, L);
  while (emitted < kk && n > 0) {
    if (n + 2 > ws->heap_cap) return -1;
    e = heap_pop(h, &n, L);
    ws->stats.n_pops++;
    if (e.depth == L) { /* a full SID: emit its next item (cursors rest on allowed items) */
      int64_t pos = t->leaf_start[e.node] + e.aux;
      emit(c, emitted++, idx->bucket_items[pos], e.logp);
      int64_t next = bucket_next_allowed(c, e.node, pos + 1);
      if (next >= 0) {
        e.aux = (int32_t)(next - t->leaf_start[e.node]);
        e.tie = sim_sid_index_tie_key(idx, idx->bucket_items[next]);
        heap_push(h, &n, &e, L);
      }
      continue;
    }
    const int d = e.depth;
    sim_sid_decode_child *seg = ws->arena + e.tie;
    int64_t m = e.aux;
    const sim_sid_decode_child best = seg[0];
    seg[0] = seg[--m];
    if (m > 0) { /* the stream goes back with its next child */
      children_sift(seg, m, 0);
      e.aux = (int32_t)m;
      e.key = stream_key(c, e.logp, (double)seg[0].lp, d);
      if (!(n_lb == kk && e.key < lb[0].score)) heap_push(h, &n, &e, L);
    }
    const double lpc = e.logp + (double)best.lp;
    sim_sid_decode_heap_entry x;
    if (d + 1 == L) {
      if (n_lb == kk && lpc < lb[0].score) continue;
      int64_t first = bucket_next_allowed(c, best.child, t->leaf_start[best.child]);
      if (first < 0) continue; /* every item of this SID is excluded */
      x = (sim_sid_decode_heap_entry){lpc, lpc, best.child, sim_sid_index_tie_key(idx, idx->bucket_items[first]),
                                      L, (int32_t)(first - t->leaf_start[best.child])};
      for (int64_t b = bucket_allowed(c, best.child); b > 0; b--)
        if (!best_offer(lb, &n_lb, kk, lpc, 0, 0)) break;
    } else {
      if (!open_node(c, d + 1, best.child, lpc, &used, &x)) return -1;
      if (n_lb == kk && x.key < lb[0].score) {
        used -= x.aux; /* nothing below can make the top K: give the arena back */
        continue;
      }
    }
    heap_push(h, &n, &x, L);
    if (n > ws->stats.heap_high) ws->stats.heap_high = n;
  }
  return emitted;
}

/* Exact depth-first branch and bound with the K-best buffer: the fallback when the heap is full. */
static void topk_bb(decode_ctx *c, int d, int64_t node, double logp, int64_t *n_best, int64_t kk) {
  const sim_sid_trie *t = c->trie;
  sim_sid_decode_best *best = c->ws->best;
  if (d == c->L) {
    for (int64_t pos = t->leaf_start[node]; pos < t->leaf_start[node + 1]; pos++) {
      int32_t item = c->idx->bucket_items[pos];
      if (is_excluded(c, item)) continue;
      /* later items of the bucket have the same score and larger tie keys: stop at the first miss */
      if (!best_offer(best, n_best, kk, logp, sim_sid_index_tie_key(c->idx, item), item)) break;
    }
    return;
  }
  if (d >= SIM_SID_MAX_LEVELS) return; /* never (d < L here); tells the optimiser d indexes level arrays */
  const int64_t c0 = t->child_start[d][node], c1 = t->child_start[d][node + 1];
  const uint16_t *tok = t->token[d];
  c->ws->stats.n_touched += c1 - c0;
  for (int64_t ch = c0; ch < c1; ch++) {
    double lpc = logp + (double)c->lp[d][tok[ch]];
    if (*n_best == kk && bound_loose(c, lpc, d + 1) < best[0].score) continue;
    topk_bb(c, d + 1, ch, lpc, n_best, kk);
  }
}

static void emit_best(decode_ctx *c, int64_t n_best, int use_score) {
  best_sort(c->ws->best, n_best);
  for (int64_t s = 0; s < n_best; s++) {
    int64_t item = c->ws->best[s].item;
    emit(c, s, item, use_score ? c->ws->best[s].score : item_score(c, item));
  }
  pad_from(c, n_best);
}

void sim_sid_decode_topk(int32_t *items, double *item_logp, float *tok_logp, const sim_sid_index *idx,
                         const sim_sid_trie *trie, const sim_sid_logp *logp, int64_t n_states, int64_t k,
                         sim_sid_decode_ws *ws) {
  decode_ctx c;
  ctx_begin(&c, idx, trie, ws, k);
  for (int64_t b = 0; b < n_states; b++) {
    ctx_state(&c, logp, b, items, item_logp, tok_logp);
    const int64_t kk = k < idx->n_live - c.n_excl ? k : idx->n_live - c.n_excl;
    for (int l = 0; l < c.L; l++) ws->stats.n_touched += idx->vocab[l];
    int64_t emitted = topk_best_first(&c, kk);
    if (emitted >= 0) {
      pad_from(&c, emitted);
      continue;
    }
    ws->stats.n_heap_fallbacks++;
    int64_t n_best = 0;
    if (kk > 0) topk_bb(&c, 0, 0, 0.0, &n_best, kk);
    HSRL_CHECK(n_best == kk);
    emit_best(&c, n_best, 1);
  }
}

/* ---- (c) explicit candidate lists ----------------------------------------------------------- */

static int candidate_valid(const sim_sid_index *idx, int32_t item) {
  HSRL_CHECKF(item >= 0 && item <= idx->n_items, "candidate item %d outside 0..%lld", (int)item,
              (long long)idx->n_items);
  return idx->live[item] != 0;
}

/* A candidate the state may get: live and not excluded. */
static int candidate_allowed(const decode_ctx *c, int32_t item) {
  return candidate_valid(c->idx, item) && !is_excluded(c, item);
}

void sim_sid_decode_score(double *scores, const sim_sid_index *idx, const sim_sid_logp *logp, const int32_t *cand,
                          int64_t n_states, int64_t m) {
  decode_ctx c;
  memset(&c, 0, sizeof c);
  c.idx = idx, c.L = idx->n_levels;
  for (int64_t b = 0; b < n_states; b++) {
    ctx_levels(&c, logp, b);
    for (int64_t j = 0; j < m; j++) {
      int32_t item = cand[b * m + j];
      scores[b * m + j] = candidate_valid(idx, item) ? item_score(&c, item) : -HUGE_VAL;
    }
  }
}

void sim_sid_decode_topk_list(int32_t *items, double *item_logp, float *tok_logp, const sim_sid_index *idx,
                              const sim_sid_logp *logp, const int32_t *cand, int64_t m, int64_t n_states, int64_t k,
                              sim_sid_decode_ws *ws) {
  decode_ctx c;
  ctx_begin(&c, idx, NULL, ws, k);
  const int L = c.L;
  for (int64_t b = 0; b < n_states; b++) {
    ctx_state(&c, logp, b, items, item_logp, tok_logp);
    int64_t n_best = 0;
    sim_sid_decode_best *best = ws->best;
    if (!cand) {
      const uint16_t *z = idx->tokens;
      for (int64_t i = 1; i <= idx->n_items; i++) {
        if (!idx->live[i] || (c.n_excl && is_excluded(&c, i))) continue;
        double s = 0.0;
        for (int l = 0; l < L; l++) s += (double)c.lp[l][z[i * L + l]];
        if (n_best == k && s < best[0].score) continue; /* the common case: no tie key needed */
        best_offer(best, &n_best, k, s, sim_sid_index_tie_key(idx, i), i);
      }
    } else {
      for (int64_t j = 0; j < m; j++) {
        int32_t i = cand[b * m + j];
        if (!candidate_allowed(&c, i)) continue;
        double s = item_score(&c, i);
        if (n_best == k && s < best[0].score) continue;
        best_offer(best, &n_best, k, s, sim_sid_index_tie_key(idx, i), i);
      }
    }
    emit_best(&c, n_best, 1);
  }
}

void sim_sid_decode_sample_list(int32_t *items, double *item_logp, float *tok_logp, const sim_sid_index *idx,
                                const sim_sid_logp *logp, const int32_t *cand, int64_t m, int64_t n_states, int64_t k,
                                float epsilon, hsrl_rng *rng, sim_sid_decode_ws *ws) {
  HSRL_CHECKF(epsilon >= 0.0f && epsilon <= 1.0f, "epsilon = %g", (double)epsilon);
  decode_ctx c;
  ctx_begin(&c, idx, NULL, ws, k);
  const double eps = (double)epsilon;
  const int64_t n_cand = cand ? m : idx->n_items;
  for (int64_t b = 0; b < n_states; b++) {
    ctx_state(&c, logp, b, items, item_logp, tok_logp);
    /* candidate j of this state: cand[b, j], or item j + 1 of the catalog */
#define CAND_ITEM(j) (cand ? cand[b * m + (j)] : (int32_t)((j) + 1))
    double smax = -HUGE_VAL, q_sum = 0.0;
    int64_t n_valid = 0;
    if (eps > 0.0) { /* the normaliser of q and the count M of valid candidates */
      for (int64_t j = 0; j < n_cand; j++) {
        int32_t i = CAND_ITEM(j);
        if (!candidate_allowed(&c, i)) continue;
        double s = item_score(&c, i);
        smax = s > smax ? s : smax;
        n_valid++;
      }
      for (int64_t j = 0; j < n_cand && smax > -HUGE_VAL; j++) {
        int32_t i = CAND_ITEM(j);
        if (candidate_allowed(&c, i)) q_sum += exp(item_score(&c, i) - smax);
      }
    }
    int64_t n_best = 0;
    for (int64_t j = 0; j < n_cand; j++) {
      int32_t i = CAND_ITEM(j);
      if (!candidate_allowed(&c, i)) continue;
      double s = item_score(&c, i), key;
      if (eps > 0.0) {
        /* q as the reference computes it: all zero when every candidate has probability 0 */
        double q = q_sum > 0.0 ? exp(s - smax) / q_sum : 0.0;
        key = log((1.0 - eps) * q + eps / (double)n_valid);
      } else {
        key = s;
      }
      key += hsrl_rng_gumbel(rng);
      best_offer(ws->best, &n_best, k, key, sim_sid_index_tie_key(idx, i), i);
    }
#undef CAND_ITEM
    emit_best(&c, n_best, 0);
  }
}

/* ---- (b) sampling along the trie ------------------------------------------------------------ */

typedef struct sample_ctx {
  decode_ctx *c;
  hsrl_rng *rng;
  int64_t n_taken;
  double total[SIM_SID_MAX_LEVELS]; /* sum of level l's weights exp(lp - lmax) */
  double mass_scale;                /* max_bucket * prod_l total[l]: a proposal is accepted with
                                       probability (undrawn live weight) / mass_scale */
  int64_t n_state_proposals;        /* proposals made for this state so far */
  int64_t draws_left;               /* draws of this state still to make, the current one included */
  double table_proposals;           /* proposals this state's table draws would have needed on average */
  int zero_mass;                    /* some level has no weight: no proposal can succeed */
  int table;                        /* 1: this state's leaf table is built (draws use it) */
  double *cum;                      /* (n_sids) the table: cumulative leaf weights within each
                                       quarter of the leaves (ws->arena); see table_cum */
  double quarter_off[4];            /* the total of the quarters before each quarter */
  int64_t quarter;                  /* n_sids / 4: quarters 0-2 hold this many leaves, 3 the rest */
  const double *weight;             /* (L, V_max) exp(lp - lmax) per level (ws->weight) */
} sample_ctx;

static int is_taken(const sample_ctx *s, int64_t item) {
  for (int64_t t = 0; t < s->n_taken; t++)
    if (s->c->ws->taken[t].item == item) return 1;
  return 0;
}

static int64_t taken_in_leaf(const sample_ctx *s, int64_t leaf) {
  int64_t n = 0;
  for (int64_t t = 0; t < s->n_taken; t++) n += s->c->ws->taken[t].leaf == leaf;
  return n;
}

/* Records a drawn item, keeping the list sorted by (leaf, item) for the sweeps. */
static void take(sample_ctx *s, int64_t leaf, int64_t item) {
  sim_sid_decode_taken *tk = s->c->ws->taken;
  int64_t j = s->n_taken++;
  while (j > 0 && (tk[j - 1].leaf > leaf || (tk[j - 1].leaf == leaf && tk[j - 1].item > item))) tk[j] = tk[j - 1], j--;
  tk[j] = (sim_sid_decode_taken){leaf, item};
}

/* The r-th (0-based) undrawn item of a leaf's bucket. */
static int64_t undrawn_item(const sample_ctx *s, int64_t leaf, int64_t r) {
  const sim_sid_index *idx = s->c->idx;
  for (int64_t pos = idx->bucket_start[leaf]; pos < idx->bucket_start[leaf + 1]; pos++) {
    int32_t item = idx->bucket_items[pos];
    if (is_taken(s, item)) continue;
    if (r-- == 0) return item;
  }
  HSRL_CHECKF(0, "SID %lld has fewer undrawn items than counted", (long long)leaf);
  return -1;
}

static int64_t leaf_of_position(const sim_sid_index *idx, int64_t pos) {
  int64_t lo = 0, hi = idx->n_sids - 1; /* the last leaf with bucket_start <= pos */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (idx->bucket_start[mid] <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/* The leaf (SID number) of a live item. */
static int64_t leaf_of_item(const sim_sid_index *idx, int64_t item) {
  const uint64_t key = sim_sid_index_pack(idx, idx->tokens + item * idx->n_levels);
  int64_t lo = 0, hi = idx->n_sids;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (idx->sid_key[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  HSRL_CHECKF(lo < idx->n_sids && idx->sid_key[lo] == key, "item %lld's SID is not in the index", (long long)item);
  return lo;
}

/* A uniformly drawn undrawn live item (rejection; at least one is left). */
static int64_t draw_uniform(sample_ctx *s, int64_t *leaf) {
  const sim_sid_index *idx = s->c->idx;
  for (;;) {
    int64_t pos = (int64_t)hsrl_rng_below(s->rng, (uint64_t)idx->n_live);
    int64_t item = idx->bucket_items[pos];
    if (is_taken(s, item)) continue;
    *leaf = leaf_of_position(idx, pos);
    return item;
  }
}

/* The first v < n with cdf[v] > target (n when there is none), cdf non-decreasing, n >= 1. The
 * halving has no data-dependent branch (the comparison selects the half), so the many proposals of
 * a spread-out distribution do not pay a mispredicted branch per step; the answer is the binary
 * search's. */
static int64_t first_above(const double *cdf, int64_t n, double target) {
  const double *base = cdf;
  for (int64_t len = n; len > 1;) {
    const int64_t half = len / 2;
    base = base[half - 1] <= target ? base + half : base;
    len -= half;
  }
  return (base - cdf) + (*base <= target);
}

/* Token of level l drawn from the weights exp(lp - lmax) (their CDF is ws->cdf row l). */
static uint16_t draw_token(sample_ctx *s, int l) {
  const double *cdf = s->c->ws->cdf + (int64_t)l * s->c->ws->vocab_max;
  const int64_t v_l = s->c->idx->vocab[l];
  double target = hsrl_rng_uniform_double(s->rng) * s->total[l];
  int64_t lo = first_above(cdf, v_l, target), hi;
  if (lo == v_l) { /* target rounded up to the total: the last token with weight */
    lo = 0, hi = v_l - 1;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] >= s->total[l]) hi = mid;
      else lo = mid + 1;
    }
  }
  return (uint16_t)lo;
}

/* Exact sweep over the trie: MAX finds the largest score of a leaf with undrawn items, SUM adds
 * m_rem exp(score - smax) over leaves, FIND walks the same sum until it passes the target. */
typedef struct sweep_ctx {
  int mode;
  int64_t tp;          /* position in the sorted drawn list (leaves come in ascending order) */
  double smax, sum, target;
  int64_t found, last; /* the chosen leaf; the last leaf with weight (rounding guard) */
} sweep_ctx;

enum { SWEEP_MAX, SWEEP_SUM, SWEEP_FIND };

static void sweep(const sample_ctx *s, sweep_ctx *w, int d, int64_t node, double logp) {
  const decode_ctx *c = s->c;
  const sim_sid_trie *t = c->trie;
  if (d == c->L) {
    const sim_sid_decode_taken *tk = c->ws->taken;
    while (w->tp < s->n_taken && tk[w->tp].leaf < node) w->tp++;
    int64_t n_drawn = 0;
    while (w->tp + n_drawn < s->n_taken && tk[w->tp + n_drawn].leaf == node) n_drawn++;
    int64_t m_rem = t->leaf_start[node + 1] - t->leaf_start[node] - n_drawn;
    if (m_rem == 0) return;
    if (w->mode == SWEEP_MAX) {
      w->smax = logp > w->smax ? logp : w->smax;
    } else {
      double weight = (double)m_rem * exp(logp - w->smax);
      if (weight <= 0.0) return;
      w->sum += weight;
      w->last = node;
      if (w->mode == SWEEP_FIND && w->found < 0 && w->target < w->sum) w->found = node;
    }
    return;
  }
  if (d >= SIM_SID_MAX_LEVELS) return; /* never (d < L here); tells the optimiser d indexes level arrays */
  for (int64_t ch = t->child_start[d][node]; ch < t->child_start[d][node + 1]; ch++) {
    if (w->mode == SWEEP_FIND && w->found >= 0) return;
    sweep(s, w, d + 1, ch, logp + (double)c->lp[d][t->token[d][ch]]);
  }
}

static int64_t draw_by_sweep(sample_ctx *s, int64_t *leaf) {
  sweep_ctx w = {SWEEP_MAX, 0, -HUGE_VAL, 0.0, 0.0, -1, -1};
  sweep(s, &w, 0, 0, 0.0);
  if (w.smax == -HUGE_VAL) return draw_uniform(s, leaf); /* every undrawn item has probability 0 */
  w.mode = SWEEP_SUM, w.tp = 0, w.sum = 0.0;
  sweep(s, &w, 0, 0, 0.0);
  double z = w.sum;
  w.mode = SWEEP_FIND, w.tp = 0, w.sum = 0.0, w.found = -1, w.last = -1;
  w.target = hsrl_rng_uniform_double(s->rng) * z;
  sweep(s, &w, 0, 0, 0.0);
  *leaf = w.found >= 0 ? w.found : w.last;
  HSRL_CHECK(*leaf >= 0);
  int64_t m_rem = s->c->trie->leaf_start[*leaf + 1] - s->c->trie->leaf_start[*leaf] - taken_in_leaf(s, *leaf);
  return undrawn_item(s, *leaf, (int64_t)hsrl_rng_below(s->rng, (uint64_t)m_rem));
}

/* ---- the leaf table: exact draws when proposals keep missing ----
 * A distribution spread over many SIDs that no live item has (an untrained policy: about 60
 * proposals per accepted draw at the ML-1M shapes) makes rejection slow. The state's remaining
 * draws then come from a table of the live SIDs' weights instead: leaf j weighs m_j w_j with m_j
 * its bucket size and w_j = prod_l exp(lp_l[z_l] - lmax_l) (the product in level order), cumulated
 * over the leaves in the workspace's arena (free while sampling; needs n_sids <= its capacity,
 * else the proposals go on as before). A draw subtracts w of every drawn or excluded item (the
 * sorted taken list) and picks the leaf whose cumulative weight passes u Z: leaf j with
 * probability m_rem(j) w_j / sum_i m_rem(i) w_i, then one of its undrawn items uniformly -- the
 * distribution the rejection samples (an accepted proposal does not depend on how many were
 * rejected before it, and which method makes a draw depends only on earlier random numbers, so
 * switching at any point leaves every draw exact). Building costs O(n_sids L) once per state, a
 * draw O(log n_sids + drawn). Where rounding could pick a leaf without undrawn items, or the total
 * is 0 (all live weights underflow), the draw is made by the exact sweep.
 * When (ws->sample_path AUTO): a state builds its table before its first draw when the previous
 * state of the same call needed more proposals than TABLE_COST_PER_SID n_sids (the table's cost
 * in proposals: scripts/bench/bench_sid_decode --sid measures both, at the ML-1M shapes about
 * 1 ns per SID against 150 ns per proposal), counting for its table draws the proposals they
 * would have needed on average (mass_scale / Z per draw, from the table's own totals); otherwise
 * it proposes, and after SAMPLE_TABLE_AFTER proposals with at least two draws of the state to go
 * it builds the table (a single draw goes on proposing, then sweeps). The states of one call come
 * from one policy and are alike (an untrained policy's all miss), so such a call pays for the
 * proposals of its first state only; the rule looks at nothing outside the call, so a call's
 * slates depend only on its inputs and random stream. */
#define SAMPLE_TABLE_AFTER 32
#define TABLE_COST_PER_SID 0.01

/* w of a live item's SID: its level weights multiplied in level order (as in table_fill). */
static double item_weight(const sample_ctx *s, int64_t item) {
  const decode_ctx *c = s->c;
  const uint16_t *z = c->idx->tokens + item * c->L;
  double w = 1.0;
  for (int l = 0; l < c->L; l++) w *= s->weight[(int64_t)l * c->ws->vocab_max + z[l]];
  return w;
}

/* Level l's weight of a packed SID key (sim_sid_index_pack: 16 bits per level, level 0 highest). */
static inline double key_weight(const double *const *w, uint64_t key, int L, int l) {
  return w[l][(key >> (16 * (L - 1 - l))) & 0xffffu];
}

_Static_assert(SIM_SID_MAX_LEVELS == 4, "leaf_weight multiplies at most four levels");

/* m_j w_j of leaf j (packed SID key, bucket bounds bs[j], bs[j + 1]; w[l]: level l's weights);
 * the product in level order, written out so that a constant L leaves no loop (w_0 = 1.0 w_0
 * exactly). */
static inline double leaf_weight(const double *const *w, uint64_t key, const int64_t *bs, int64_t j, const int L,
                                 const int unit) {
  double p = key_weight(w, key, L, 0);
  if (L > 1) p *= key_weight(w, key, L, 1);
  if (L > 2) p *= key_weight(w, key, L, 2);
  if (L > 3) p *= key_weight(w, key, L, 3);
  return unit ? p : (double)(bs[j + 1] - bs[j]) * p;
}

#if defined(__GNUC__)
#define TABLE_FILL_INLINE __attribute__((always_inline)) inline /* one copy per (L, unit) constant pair */
#else
#define TABLE_FILL_INLINE inline
#endif

/* The leaf table, with L and "every bucket holds one item" (m_i = 1, so m_i w_i = w_i exactly) as
 * constants of each inlined copy. The cumulative sum runs as four chains over four quarters of
 * the leaves (four additions in flight instead of one): cum[j] holds the sum over its quarter up
 * to j, quarter_off[r] the total of the quarters before quarter r, and table_cum(j) =
 * quarter_off[r] + cum[j] is leaf j's cumulative weight. It rounds differently from a single
 * left-to-right sum only in the last bits and is non-decreasing in j (IEEE addition is monotone,
 * and a quarter's first value is the total before it plus a weight >= 0), which is what the draws
 * need; the last one is the total. */
static TABLE_FILL_INLINE void table_fill(sample_ctx *s, const sim_sid_index *idx, int64_t vmax, const int L,
                                         const int unit) {
  const int64_t n = idx->n_sids, q = n / 4;
  const uint64_t *key = idx->sid_key;
  const int64_t *bs = idx->bucket_start;
  const double *w[SIM_SID_MAX_LEVELS];
  for (int l = 0; l < SIM_SID_MAX_LEVELS; l++) w[l] = s->weight + (l < L ? l : 0) * vmax;
  double *cum = s->cum;
  double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
  for (int64_t i = 0; i < q; i++) {
    a0 += leaf_weight(w, key[i], bs, i, L, unit), cum[i] = a0;
    a1 += leaf_weight(w, key[q + i], bs, q + i, L, unit), cum[q + i] = a1;
    a2 += leaf_weight(w, key[2 * q + i], bs, 2 * q + i, L, unit), cum[2 * q + i] = a2;
    a3 += leaf_weight(w, key[3 * q + i], bs, 3 * q + i, L, unit), cum[3 * q + i] = a3;
  }
  for (int64_t j = 4 * q; j < n; j++) a3 += leaf_weight(w, key[j], bs, j, L, unit), cum[j] = a3;
  s->quarter = q;
  s->quarter_off[0] = 0.0;
  s->quarter_off[1] = a0;
  s->quarter_off[2] = s->quarter_off[1] + a1;
  s->quarter_off[3] = s->quarter_off[2] + a2;
}

/* Leaf j's cumulative weight in the table (see table_fill). */
static double table_cum(const sample_ctx *s, int64_t j) {
  const int64_t q = s->quarter;
  return s->quarter_off[(j >= q) + (j >= 2 * q) + (j >= 3 * q)] + s->cum[j];
}

/* The first leaf j in [lo, lo + n) with table_cum(j) > target (lo + n when there is none), n >= 1:
 * first_above's branch-free halving over table_cum. */
static int64_t table_first_above(const sample_ctx *s, int64_t lo, int64_t n, double target) {
  int64_t base = lo;
  for (int64_t len = n; len > 1;) {
    const int64_t half = len / 2;
    base = table_cum(s, base + half - 1) <= target ? base + half : base;
    len -= half;
  }
  return base + (table_cum(s, base) <= target);
}

/* Builds this state's table; 0 when the workspace has no room for it. */
static int table_build(sample_ctx *s) {
  const decode_ctx *c = s->c;
  const sim_sid_index *idx = c->idx;
  sim_sid_decode_ws *ws = c->ws;
  const int64_t n = idx->n_sids;
  if (n < 1 || n > ws->arena_cap) return 0;
  s->cum = (double *)(void *)ws->arena;
  const int unit = idx->max_bucket == 1;
  switch (c->L * 2 + unit) { /* constant L and unit in each copy: the level loop unrolls */
  case 2: table_fill(s, idx, ws->vocab_max, 1, 0); break;
  case 3: table_fill(s, idx, ws->vocab_max, 1, 1); break;
  case 4: table_fill(s, idx, ws->vocab_max, 2, 0); break;
  case 5: table_fill(s, idx, ws->vocab_max, 2, 1); break;
  case 6: table_fill(s, idx, ws->vocab_max, 3, 0); break;
  case 7: table_fill(s, idx, ws->vocab_max, 3, 1); break;
  default: table_fill(s, idx, ws->vocab_max, c->L, unit); break;
  }
  s->table = 1;
  return 1;
}

static int64_t draw_by_table(sample_ctx *s, int64_t *leaf) {
  const sim_sid_decode_taken *tk = s->c->ws->taken;
  const int64_t n = s->c->idx->n_sids;
  double z = table_cum(s, n - 1);
  for (int64_t t = 0; t < s->n_taken; t++) z -= item_weight(s, tk[t].item);
  if (!(z > 0.0)) return draw_by_sweep(s, leaf);
  s->table_proposals += s->mass_scale / z;
  const double target = hsrl_rng_uniform_double(s->rng) * z;
  /* leaves [start, end) lie between drawn leaves: their cumulative weight is table_cum minus `a`,
   * the weight of the items drawn from earlier leaves */
  double a = 0.0;
  int64_t j = -1;
  for (int64_t start = 0, t = 0;;) {
    const int64_t end = t < s->n_taken ? tk[t].leaf : n;
    if (end > start && table_cum(s, end - 1) > target + a) {
      j = table_first_above(s, start, end - start, target + a);
      break;
    }
    if (end == n) break;
    for (; t < s->n_taken && tk[t].leaf == end; t++) a += item_weight(s, tk[t].item);
    start = end;
  }
  const int64_t m_rem = j < 0 ? 0 : s->c->trie->leaf_start[j + 1] - s->c->trie->leaf_start[j] - taken_in_leaf(s, j);
  if (m_rem <= 0) return draw_by_sweep(s, leaf); /* rounding at a drawn-out leaf or at the end */
  *leaf = j;
  return undrawn_item(s, j, (int64_t)hsrl_rng_below(s->rng, (uint64_t)m_rem));
}

/* One draw from the restricted product distribution, by rejection from the unrestricted one (or
 * from the leaf table, see above). */
static int64_t draw_product(sample_ctx *s, int64_t *leaf) {
  decode_ctx *c = s->c;
  const sim_sid_trie *t = c->trie;
  const int64_t max_bucket = c->idx->max_bucket;
  const int64_t max_proposals = s->zero_mass ? 0 : 64 + c->idx->n_sids / 4;
  for (int64_t attempt = 0; attempt < max_proposals; attempt++) {
    if (s->table || (s->n_state_proposals >= SAMPLE_TABLE_AFTER && s->draws_left >= 2 &&
                     c->ws->sample_path != SIM_SID_SAMPLE_PROPOSE && table_build(s))) {
      c->ws->stats.n_table_draws++;
      return draw_by_table(s, leaf);
    }
    s->n_state_proposals++;
    c->ws->stats.n_proposals++;
    int64_t node = 0;
    for (int l = 0; l < c->L && node >= 0; l++) node = sim_sid_trie_child(t, l, node, draw_token(s, l));
    if (node < 0) continue; /* not a live SID */
    int64_t m = t->leaf_start[node + 1] - t->leaf_start[node];
    int64_t m_rem = m - taken_in_leaf(s, node);
    if (m_rem == 0) continue;
    if (m_rem < max_bucket && hsrl_rng_uniform_double(s->rng) * (double)max_bucket >= (double)m_rem) continue;
    *leaf = node;
    return undrawn_item(s, node, (int64_t)hsrl_rng_below(s->rng, (uint64_t)m_rem));
  }
  c->ws->stats.n_sweep_draws++;
  return draw_by_sweep(s, leaf);
}

void sim_sid_decode_sample(int32_t *items, double *item_logp, float *tok_logp, const sim_sid_index *idx,
                           const sim_sid_trie *trie, const sim_sid_logp *logp, int64_t n_states, int64_t k,
                           float epsilon, hsrl_rng *rng, sim_sid_decode_ws *ws) {
  HSRL_CHECKF(epsilon >= 0.0f && epsilon <= 1.0f, "epsilon = %g", (double)epsilon);
  decode_ctx c;
  ctx_begin(&c, idx, trie, ws, k);
  sample_ctx s;
  memset(&s, 0, sizeof s);
  s.c = &c, s.rng = rng, s.weight = ws->weight;
  double last_need = 0.0; /* proposals the previous state of this call needed (see the leaf table) */
  for (int64_t b = 0; b < n_states; b++) {
    ctx_state(&c, logp, b, items, item_logp, tok_logp);
    s.mass_scale = (double)idx->max_bucket, s.zero_mass = 0;
    for (int l = 0; l < c.L; l++) { /* weights exp(lp - lmax), 1 at the maximum, and their CDF */
      double *w = ws->weight + (int64_t)l * ws->vocab_max, *cdf = ws->cdf + (int64_t)l * ws->vocab_max, acc = 0.0;
      for (int64_t v = 0; v < idx->vocab[l]; v++) {
        w[v] = c.lmax[l] == -HUGE_VAL ? 0.0 : exp((double)c.lp[l][v] - c.lmax[l]);
        acc += w[v];
        cdf[v] = acc;
      }
      s.total[l] = acc;
      s.mass_scale *= acc;
      s.zero_mass |= !(acc > 0.0);
    }
    s.n_taken = 0, s.n_state_proposals = 0, s.table = 0, s.table_proposals = 0.0;
    for (int64_t j = 0; j < c.n_excl; j++) take(&s, leaf_of_item(idx, ws->excl[j]), ws->excl[j]);
    const int64_t kk = k < idx->n_live - c.n_excl ? k : idx->n_live - c.n_excl;
    const int at_once =
        ws->sample_path == SIM_SID_SAMPLE_TABLE ||
        (ws->sample_path == SIM_SID_SAMPLE_AUTO && last_need > TABLE_COST_PER_SID * (double)idx->n_sids);
    if (!s.zero_mass && kk >= 2 && at_once) table_build(&s);
    for (int64_t slot = 0; slot < kk; slot++) {
      int64_t leaf = -1, item;
      s.draws_left = kk - slot;
      if (epsilon > 0.0f && hsrl_rng_uniform_double(rng) < (double)epsilon) item = draw_uniform(&s, &leaf);
      else item = draw_product(&s, &leaf);
      take(&s, leaf, item);
      emit(&c, slot, item, item_score(&c, item));
    }
    last_need = (double)s.n_state_proposals + s.table_proposals;
    pad_from(&c, kk);
  }
}
