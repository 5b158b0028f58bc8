/* sim_sid_index.c: item -> SID and SID -> items; see sim_sid_index.h (method.md §5).
 *
 * Building the buckets: the live items are listed in tie order (id order, or sorted by seeded tie
 * key), then stably sorted by SID with one counting-sort pass per level, last level first (LSD
 * radix sort, O(L (n_live + V))). Stability keeps each bucket in tie order. An update rebuilds the
 * buckets from the token table the same way, so an updated index equals one built from scratch. */
#include "sim/sim_sid_index.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"

/* Generations are unique in the process (not just per index), so a trie built from one index is
 * never mistaken for one of another. */
static _Atomic uint64_t index_generation_counter;

uint64_t sim_sid_index_tie_key(const sim_sid_index *idx, int64_t item) {
  if (idx->tie_seed == 0) return (uint64_t)item;
  const uint32_t ctr[4] = {(uint32_t)item, (uint32_t)((uint64_t)item >> 32), 0x74696521u, 0};
  const uint32_t key[2] = {(uint32_t)idx->tie_seed, (uint32_t)(idx->tie_seed >> 32)};
  uint32_t out[4];
  hsrl_philox4x32(out, ctr, key);
  return ((uint64_t)out[0] << 32) | (uint32_t)item;
}

uint64_t sim_sid_index_pack(const sim_sid_index *idx, const uint16_t *sid) {
  uint64_t key = 0;
  for (int l = 0; l < idx->n_levels; l++) key = (key << 16) | sid[l];
  return key;
}

void sim_sid_index_sid(const sim_sid_index *idx, int64_t j, uint16_t *sid) {
  HSRL_CHECK(j >= 0 && j < idx->n_sids);
  uint64_t key = idx->sid_key[j];
  for (int l = idx->n_levels - 1; l >= 0; l--, key >>= 16) sid[l] = (uint16_t)(key & 0xffffu);
}

int64_t sim_sid_index_find(const sim_sid_index *idx, const uint16_t *sid) {
  uint64_t key = sim_sid_index_pack(idx, sid);
  int64_t lo = 0, hi = idx->n_sids; /* first position with sid_key >= key */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (idx->sid_key[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo < idx->n_sids && idx->sid_key[lo] == key ? lo : -1;
}

int64_t sim_sid_index_items(const sim_sid_index *idx, const uint16_t *sid, const int32_t **items) {
  int64_t j = sim_sid_index_find(idx, sid);
  if (j < 0) {
    *items = NULL;
    return 0;
  }
  *items = idx->bucket_items + idx->bucket_start[j];
  return idx->bucket_start[j + 1] - idx->bucket_start[j];
}

typedef struct tie_pair {
  uint64_t tie;
  int32_t item;
} tie_pair;

static int tie_pair_cmp(const void *a, const void *b) {
  uint64_t x = ((const tie_pair *)a)->tie, y = ((const tie_pair *)b)->tie;
  return (x > y) - (x < y);
}

/* (Re)builds sid_key, bucket_start, bucket_items and the collision counts from tokens and live. */
static void index_rebuild_buckets(sim_sid_index *idx) {
  const int L = idx->n_levels;
  hsrl_free(idx->sid_key);
  hsrl_free(idx->bucket_start);
  hsrl_free(idx->bucket_items);
  int64_t n_live = 0;
  for (int64_t i = 1; i <= idx->n_items; i++) n_live += idx->live[i] != 0;
  idx->n_live = n_live;
  int32_t *order = hsrl_malloc((size_t)(n_live > 0 ? n_live : 1) * sizeof(int32_t));
  int32_t *tmp = hsrl_malloc((size_t)(n_live > 0 ? n_live : 1) * sizeof(int32_t));
  int64_t n = 0;
  if (idx->tie_seed == 0) {
    for (int64_t i = 1; i <= idx->n_items; i++)
      if (idx->live[i]) order[n++] = (int32_t)i;
  } else {
    tie_pair *pairs = hsrl_malloc((size_t)(n_live > 0 ? n_live : 1) * sizeof(tie_pair));
    for (int64_t i = 1; i <= idx->n_items; i++)
      if (idx->live[i]) pairs[n++] = (tie_pair){sim_sid_index_tie_key(idx, i), (int32_t)i};
    qsort(pairs, (size_t)n, sizeof(tie_pair), tie_pair_cmp);
    for (int64_t t = 0; t < n; t++) order[t] = pairs[t].item;
    hsrl_free(pairs);
  }
  int64_t vmax = 1;
  for (int l = 0; l < L; l++) vmax = idx->vocab[l] > vmax ? idx->vocab[l] : vmax;
  int64_t *count = hsrl_malloc((size_t)(vmax + 1) * sizeof(int64_t));
  for (int l = L - 1; l >= 0; l--) { /* stable counting sort by z_l */
    memset(count, 0, (size_t)(idx->vocab[l] + 1) * sizeof(int64_t));
    for (int64_t t = 0; t < n; t++) count[idx->tokens[(int64_t)order[t] * L + l] + 1]++;
    for (int64_t v = 0; v < idx->vocab[l]; v++) count[v + 1] += count[v];
    for (int64_t t = 0; t < n; t++) tmp[count[idx->tokens[(int64_t)order[t] * L + l]]++] = order[t];
    int32_t *swap = order;
    order = tmp;
    tmp = swap;
  }
  hsrl_free(count);
  hsrl_free(tmp);
  /* distinct SIDs and buckets */
  int64_t n_sids = 0;
  uint64_t prev = 0;
  for (int64_t t = 0; t < n; t++) {
    uint64_t key = sim_sid_index_pack(idx, idx->tokens + (int64_t)order[t] * L);
    if (t == 0 || key != prev) n_sids++;
    prev = key;
  }
  idx->n_sids = n_sids;
  idx->sid_key = hsrl_malloc((size_t)(n_sids > 0 ? n_sids : 1) * sizeof(uint64_t));
  idx->bucket_start = hsrl_malloc((size_t)(n_sids + 1) * sizeof(int64_t));
  idx->bucket_items = order;
  int64_t j = -1;
  for (int64_t t = 0; t < n; t++) {
    uint64_t key = sim_sid_index_pack(idx, idx->tokens + (int64_t)order[t] * L);
    if (j < 0 || key != idx->sid_key[j]) {
      j++;
      idx->sid_key[j] = key;
      idx->bucket_start[j] = t;
    }
  }
  idx->bucket_start[n_sids] = n;
  idx->n_colliding_sids = idx->n_colliding_items = idx->max_bucket = 0;
  for (j = 0; j < n_sids; j++) {
    int64_t m = idx->bucket_start[j + 1] - idx->bucket_start[j];
    if (m > idx->max_bucket) idx->max_bucket = m;
    if (m > 1) {
      idx->n_colliding_sids++;
      idx->n_colliding_items += m;
    }
  }
  idx->generation = atomic_fetch_add(&index_generation_counter, 1) + 1;
}

static hsrl_status index_check_tokens(const int64_t *vocab, int L, const uint16_t *sid, int64_t item) {
  for (int l = 0; l < L; l++)
    if (sid[l] >= vocab[l])
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "tokens", "item %lld: token %u at level %d is outside the vocabulary (V = %lld)",
                      (long long)item, (unsigned)sid[l], l, (long long)vocab[l]);
  return HSRL_OK;
}

hsrl_status sim_sid_index_init(sim_sid_index *idx, int n_levels, const int64_t *vocab, int64_t n_items,
                               const uint16_t *tokens, const uint8_t *live, uint64_t tie_seed) {
  memset(idx, 0, sizeof *idx);
  HSRL_CHECKF(n_levels >= 1 && n_levels <= SIM_SID_MAX_LEVELS, "n_levels = %d", n_levels);
  HSRL_CHECKF(n_items >= 0 && n_items < INT32_MAX, "n_items = %lld", (long long)n_items);
  for (int l = 0; l < n_levels; l++) HSRL_CHECKF(vocab[l] >= 1 && vocab[l] <= 65536, "vocab[%d] = %lld", l, (long long)vocab[l]);
  for (int64_t i = 1; i <= n_items; i++) {
    if (live && !live[i]) continue;
    hsrl_status st = index_check_tokens(vocab, n_levels, tokens + i * n_levels, i);
    if (st != HSRL_OK) return st;
  }
  idx->n_levels = n_levels;
  for (int l = 0; l < n_levels; l++) idx->vocab[l] = vocab[l];
  idx->n_items = n_items;
  idx->tie_seed = tie_seed;
  idx->tokens = hsrl_malloc((size_t)(n_items + 1) * (size_t)n_levels * sizeof(uint16_t));
  memcpy(idx->tokens, tokens, (size_t)(n_items + 1) * (size_t)n_levels * sizeof(uint16_t));
  idx->live = hsrl_malloc((size_t)(n_items + 1));
  if (live) memcpy(idx->live, live, (size_t)(n_items + 1));
  else memset(idx->live, 1, (size_t)(n_items + 1));
  idx->live[0] = 0;
  index_rebuild_buckets(idx);
  return HSRL_OK;
}

void sim_sid_index_free(sim_sid_index *idx) {
  if (!idx) return;
  hsrl_free(idx->tokens);
  hsrl_free(idx->live);
  hsrl_free(idx->sid_key);
  hsrl_free(idx->bucket_start);
  hsrl_free(idx->bucket_items);
  memset(idx, 0, sizeof *idx);
}

hsrl_status sim_sid_index_update(sim_sid_index *idx, const int32_t *add_ids, const uint16_t *add_tokens,
                                 int64_t n_add, const int32_t *del_ids, int64_t n_del) {
  const int L = idx->n_levels;
  int64_t n_new = idx->n_items;
  for (int64_t t = 0; t < n_add; t++) {
    if (add_ids[t] < 1)
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item id %d: ids start at 1", (int)add_ids[t]);
    if (add_ids[t] > n_new) n_new = add_ids[t];
    hsrl_status st = index_check_tokens(idx->vocab, L, add_tokens + t * L, add_ids[t]);
    if (st != HSRL_OK) return st;
  }
  /* mark[i]: 1 added, 2 deleted, to find duplicates and conflicts without touching the index */
  uint8_t *mark = hsrl_calloc((size_t)(n_new + 1), 1);
  hsrl_status st = HSRL_OK;
  for (int64_t t = 0; t < n_add && st == HSRL_OK; t++) {
    int32_t i = add_ids[t];
    if (mark[i]) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item %d is listed twice", (int)i);
    else if (i <= idx->n_items && idx->live[i])
      st = hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item %d is already live (delete it first to give it a new SID)", (int)i);
    mark[i] = 1;
  }
  for (int64_t t = 0; t < n_del && st == HSRL_OK; t++) {
    int32_t i = del_ids[t];
    if (i < 1 || i > idx->n_items || !idx->live[i])
      st = hsrl_err(HSRL_E_INPUT, NULL, 0, "delete", "item %d is not live", (int)i);
    else if (mark[i] == 1) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "delete", "item %d is both added and deleted", (int)i);
    else if (mark[i] == 2) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "delete", "item %d is listed twice", (int)i);
    mark[i] = 2;
  }
  hsrl_free(mark);
  if (st != HSRL_OK) return st;
  if (n_new > idx->n_items) {
    HSRL_CHECKF(n_new < INT32_MAX, "n_items = %lld", (long long)n_new);
    idx->tokens = hsrl_realloc(idx->tokens, (size_t)(n_new + 1) * (size_t)L * sizeof(uint16_t));
    idx->live = hsrl_realloc(idx->live, (size_t)(n_new + 1));
    memset(idx->tokens + (idx->n_items + 1) * L, 0, (size_t)(n_new - idx->n_items) * (size_t)L * sizeof(uint16_t));
    memset(idx->live + idx->n_items + 1, 0, (size_t)(n_new - idx->n_items));
    idx->n_items = n_new;
  }
  for (int64_t t = 0; t < n_del; t++) idx->live[del_ids[t]] = 0;
  for (int64_t t = 0; t < n_add; t++) {
    memcpy(idx->tokens + (int64_t)add_ids[t] * L, add_tokens + t * L, (size_t)L * sizeof(uint16_t));
    idx->live[add_ids[t]] = 1;
  }
  index_rebuild_buckets(idx);
  return HSRL_OK;
}

void sim_sid_index_report(const sim_sid_index *idx, FILE *f, int max_lines) {
  double rate = idx->n_live > 0 ? (double)idx->n_colliding_items / (double)idx->n_live : 0.0;
  fprintf(f, "index: %lld live items of %lld, %lld distinct SIDs; collisions: %lld SIDs shared by %lld items "
             "(%.2f%% of live items), largest bucket %lld; tie rule: %s",
          (long long)idx->n_live, (long long)idx->n_items, (long long)idx->n_sids, (long long)idx->n_colliding_sids,
          (long long)idx->n_colliding_items, 100.0 * rate, (long long)idx->max_bucket,
          idx->tie_seed ? "seeded" : "lowest id first");
  if (idx->tie_seed) fprintf(f, " (seed %llu)", (unsigned long long)idx->tie_seed);
  fprintf(f, "\n");
  /* the largest buckets: repeated selection (max_lines is small) */
  int64_t last_size = INT64_MAX, last_j = -1;
  for (int line = 0; line < max_lines; line++) {
    int64_t best = -1, best_size = 1;
    for (int64_t j = 0; j < idx->n_sids; j++) {
      int64_t m = idx->bucket_start[j + 1] - idx->bucket_start[j];
      /* strictly after (last_size, last_j) in the order (size desc, j asc) */
      int after = m < last_size || (m == last_size && j > last_j);
      if (after && m > best_size) best = j, best_size = m;
    }
    if (best < 0) break;
    uint16_t sid[SIM_SID_MAX_LEVELS];
    sim_sid_index_sid(idx, best, sid);
    fprintf(f, "  SID (");
    for (int l = 0; l < idx->n_levels; l++) fprintf(f, "%s%u", l ? "," : "", (unsigned)sid[l]);
    fprintf(f, "): %lld items:", (long long)best_size);
    for (int64_t t = 0; t < best_size && t < 8; t++)
      fprintf(f, " %d", (int)idx->bucket_items[idx->bucket_start[best] + t]);
    fprintf(f, "%s\n", best_size > 8 ? " ..." : "");
    last_size = best_size, last_j = best;
  }
}
