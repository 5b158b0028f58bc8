/* sim_sid_trie.c: the prefix tree over live SIDs; see sim_sid_trie.h (method.md §5-6).
 *
 * Built in two passes over the index's sorted SID keys: a node at depth d starts wherever the top
 * d tokens of a key differ from the previous key's, so counting those changes sizes every array
 * and the second pass fills them in order. */
#include "sim/sim_sid_trie.h"

#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

void sim_sid_trie_free(sim_sid_trie *t) {
  if (!t) return;
  for (int d = 0; d < SIM_SID_MAX_LEVELS; d++) {
    hsrl_free(t->child_start[d]);
    hsrl_free(t->token[d]);
    hsrl_free(t->n_below[d]);
  }
  memset(t, 0, sizeof *t);
}

/* The prefix of length d of a packed key of L tokens (d = 0: the empty prefix). */
static uint64_t trie_prefix(uint64_t key, int L, int d) {
  return d == 0 ? 0 : key >> (16 * (L - d));
}

void sim_sid_trie_build(sim_sid_trie *t, const sim_sid_index *idx) {
  sim_sid_trie_free(t);
  const int L = idx->n_levels;
  t->n_levels = L;
  for (int l = 0; l < L; l++) t->vocab[l] = idx->vocab[l];
  t->generation = idx->generation;
  const int64_t n = idx->n_sids;
  t->n_nodes[0] = 1;
  for (int d = 1; d <= L; d++) {
    int64_t c = 0;
    for (int64_t j = 0; j < n; j++)
      c += j == 0 || trie_prefix(idx->sid_key[j], L, d) != trie_prefix(idx->sid_key[j - 1], L, d);
    t->n_nodes[d] = c;
  }
  HSRL_CHECK(t->n_nodes[L] == n);
  for (int d = 0; d < L; d++) {
    t->child_start[d] = hsrl_malloc((size_t)(t->n_nodes[d] + 1) * sizeof(int64_t));
    t->token[d] = hsrl_malloc((size_t)(t->n_nodes[d + 1] > 0 ? t->n_nodes[d + 1] : 1) * sizeof(uint16_t));
    t->n_below[d] = hsrl_calloc((size_t)t->n_nodes[d], sizeof(int64_t));
  }
  t->leaf_start = idx->bucket_start;
  /* node[d]: the current node at depth d while walking the sorted keys */
  int64_t node[SIM_SID_MAX_LEVELS + 1] = {0};
  for (int d = 1; d <= L; d++) node[d] = -1;
  for (int64_t j = 0; j < n; j++) {
    uint64_t key = idx->sid_key[j];
    int first_new = L + 1; /* the shallowest depth at which key starts a new node */
    for (int d = 1; d <= L; d++)
      if (j == 0 || trie_prefix(key, L, d) != trie_prefix(idx->sid_key[j - 1], L, d)) {
        first_new = d;
        break;
      }
    HSRL_CHECKF(first_new <= L, "duplicate SID key at %lld", (long long)j);
    for (int d = first_new; d <= L; d++) {
      node[d]++;
      t->token[d - 1][node[d]] = (uint16_t)(trie_prefix(key, L, d) & 0xffffu);
    }
    int64_t m = idx->bucket_start[j + 1] - idx->bucket_start[j];
    for (int d = 0; d < L; d++) t->n_below[d][node[d]] += m;
  }
  /* child_start from the parents of consecutive nodes: node v at depth d+1 has the parent whose
   * prefix is v's prefix without its last token; children of one parent are contiguous. */
  for (int d = 0; d < L; d++) {
    int64_t parent = -1, v = -1;
    for (int64_t j = 0; j < n; j++) {
      uint64_t key = idx->sid_key[j];
      int new_child = j == 0 || trie_prefix(key, L, d + 1) != trie_prefix(idx->sid_key[j - 1], L, d + 1);
      int new_parent = j == 0 || trie_prefix(key, L, d) != trie_prefix(idx->sid_key[j - 1], L, d);
      if (new_child) v++;
      if (new_parent) {
        parent++;
        t->child_start[d][parent] = v;
      }
    }
    HSRL_CHECK(parent + 1 == (n > 0 ? t->n_nodes[d] : 0));
    if (n == 0) t->child_start[d][0] = 0; /* the empty root */
    t->child_start[d][t->n_nodes[d]] = t->n_nodes[d + 1];
  }
  for (int d = 0; d < L; d++) {
    int64_t mc = 0;
    for (int64_t u = 0; u < t->n_nodes[d]; u++) {
      int64_t c = t->child_start[d][u + 1] - t->child_start[d][u];
      mc = c > mc ? c : mc;
    }
    t->max_children[d] = mc;
  }
}

int64_t sim_sid_trie_child(const sim_sid_trie *t, int depth, int64_t node, uint16_t z) {
  HSRL_CHECK(depth >= 0 && depth < t->n_levels && node >= 0 && node < t->n_nodes[depth]);
  const int64_t lo = t->child_start[depth][node], hi = t->child_start[depth][node + 1];
  if (hi - lo == t->vocab[depth]) return z < t->vocab[depth] ? lo + z : -1; /* every token continues */
  if (hi == lo) return -1;
  /* the first child with token >= z (or the last child), by halving without a data-dependent
   * branch: trie sampling looks up many prefixes that are not there, at unpredictable places */
  const uint16_t *base = t->token[depth] + lo;
  for (int64_t len = hi - lo; len > 1;) {
    const int64_t half = len / 2;
    base = base[half - 1] < z ? base + half : base;
    len -= half;
  }
  return *base == z ? lo + (base - (t->token[depth] + lo)) : -1;
}

int64_t sim_sid_trie_find(const sim_sid_trie *t, const uint16_t *prefix, int len) {
  HSRL_CHECK(len >= 0 && len <= t->n_levels);
  int64_t u = 0;
  if (len > 0 && t->n_nodes[1] == 0) return -1;
  for (int d = 0; d < len && u >= 0; d++) u = sim_sid_trie_child(t, d, u, prefix[d]);
  return u;
}

int64_t sim_sid_trie_continuations(const sim_sid_trie *t, const uint16_t *prefix, int len, const uint16_t **tokens) {
  HSRL_CHECK(len >= 0 && len < t->n_levels);
  int64_t u = sim_sid_trie_find(t, prefix, len);
  int64_t n = u < 0 ? 0 : t->child_start[len][u + 1] - t->child_start[len][u];
  *tokens = n > 0 ? t->token[len] + t->child_start[len][u] : NULL;
  return n;
}

int64_t sim_sid_trie_mask(const sim_sid_trie *t, const uint16_t *prefix, int len, uint8_t *mask) {
  const uint16_t *tok;
  int64_t n = sim_sid_trie_continuations(t, prefix, len, &tok);
  memset(mask, 0, (size_t)t->vocab[len]);
  for (int64_t c = 0; c < n; c++) mask[tok[c]] = 1;
  return n;
}

int64_t sim_sid_trie_items_below(const sim_sid_trie *t, int depth, int64_t node) {
  HSRL_CHECK(depth >= 0 && depth <= t->n_levels && node >= 0 && node < t->n_nodes[depth]);
  if (depth == t->n_levels) return t->leaf_start[node + 1] - t->leaf_start[node];
  return t->n_below[depth][node];
}
