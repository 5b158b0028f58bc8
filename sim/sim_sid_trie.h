/* sim_sid_trie.h: the prefix tree over the live catalog's Semantic IDs (method.md §5, §6 "trie
 * decoding").
 *
 * Answers "which tokens at level l continue this prefix to at least one live item". Nodes at depth
 * d are the distinct prefixes (z_0..z_{d-1}) of live SIDs, numbered 0..n_nodes[d]-1 in
 * lexicographic order; depth 0 is the root (one node), depth L are the leaves, and leaf j is SID
 * number j of the index (sim_sid_index.h), whose bucket holds its items. Storage is one compressed
 * row per depth (CSR), no pointers:
 *   child_start[d] (n_nodes[d] + 1): the children of node u at depth d are the depth-(d+1) nodes
 *                                    child_start[d][u] .. child_start[d][u+1]-1
 *   token[d]       (n_nodes[d+1]):   the token z_d of each depth-(d+1) node; so token[d] over that
 *                                    range is the ascending list of tokens continuing node u
 *   n_below[d]     (n_nodes[d]):     live items under each node (n_below[L] = bucket sizes)
 * Memory: 2 bytes per node (its token) and 16 bytes per inner node (child offset, item count);
 * leaves' item counts are the index's bucket offsets, not copied (16 MB for 10 million random
 * SIDs with L = 3, V = 256).
 *
 * The trie refers to the index it was built from (SID numbering, buckets): rebuild it after every
 * change of the index (sim_sid_trie_build again); `generation` records the index generation and
 * decoders check it. */
#ifndef SIM_SID_TRIE_H
#define SIM_SID_TRIE_H

#include <stdint.h>

#include "sim/sim_sid_index.h"

typedef struct sim_sid_trie {
  int n_levels;                                 /* L */
  int64_t vocab[SIM_SID_MAX_LEVELS];            /* V_l */
  uint64_t generation;                          /* the index generation it was built from */
  int64_t n_nodes[SIM_SID_MAX_LEVELS + 1];      /* nodes per depth: n_nodes[0] = 1 (also when empty), n_nodes[L] = n_sids */
  int64_t max_children[SIM_SID_MAX_LEVELS];     /* the most children of a node at depth d */
  int64_t *child_start[SIM_SID_MAX_LEVELS];     /* [d]: (n_nodes[d] + 1) */
  uint16_t *token[SIM_SID_MAX_LEVELS];          /* [d]: (n_nodes[d+1]) */
  int64_t *n_below[SIM_SID_MAX_LEVELS];         /* [d]: (n_nodes[d]) live items under each inner node */
  const int64_t *leaf_start;                    /* the index's bucket_start: (n_nodes[L] + 1), borrowed */
} sim_sid_trie;

/* Builds (or rebuilds: frees the old arrays first) the trie of idx's live SIDs. O(n_sids L). A
 * trie of an empty catalog has only the root, with no children. */
void sim_sid_trie_build(sim_sid_trie *t, const sim_sid_index *idx);
void sim_sid_trie_free(sim_sid_trie *t); /* NULL or zeroed: no-op; leaves it zeroed */

/* The child of node u (depth d) with token z, or -1. Binary search: O(log children). */
int64_t sim_sid_trie_child(const sim_sid_trie *t, int depth, int64_t node, uint16_t z);

/* The node reached by prefix (len tokens, 0 <= len <= L), or -1 when no live item has it. */
int64_t sim_sid_trie_find(const sim_sid_trie *t, const uint16_t *prefix, int len);

/* The tokens at level len that continue the prefix (len < L tokens) to at least one live item:
 * *tokens points into the trie (ascending, valid until the next build); returns their count, 0
 * (and *tokens = NULL) when the prefix leads nowhere. */
int64_t sim_sid_trie_continuations(const sim_sid_trie *t, const uint16_t *prefix, int len, const uint16_t **tokens);

/* The same as a mask over the level's vocabulary: mask[v] = 1 iff v continues the prefix.
 * Returns the count. */
int64_t sim_sid_trie_mask(const sim_sid_trie *t, const uint16_t *prefix, int len, uint8_t *mask /* (V_len) */);

/* Live items under a node (depth L: the bucket size). */
int64_t sim_sid_trie_items_below(const sim_sid_trie *t, int depth, int64_t node);

#endif
