/* sim_sid_index.h: the item index of the Semantic IDs (method.md §5): item -> SID and SID -> items.
 *
 * Items are ids 1..N (0 = padding). Every item row holds its SID, L tokens z_0..z_{L-1} stored as
 * uint16 (V_l <= 65536), and a live flag: only live items (the current catalog) are indexed.
 * Tokens of deleted items stay in the table (so an id keeps its row) but no lookup returns them.
 *
 * SID -> items: the distinct SIDs of the live items, numbered 0..n_sids-1 in lexicographic order
 * of their tokens (z_0 most significant), each with its bucket of items. A bucket with several
 * items is a collision: collisions are kept (every colliding item stays a separate candidate),
 * counted (n_colliding_sids, n_colliding_items, max_bucket) and reported (sim_sid_index_report).
 *
 * Tie rule (documented and seeded): every item has a tie key, unique among items,
 *   tie_seed == 0:  tie(i) = i                                  (lowest id first: the reference's
 *                                                                rule, reference-hsrl.md §5.4)
 *   tie_seed != 0:  tie(i) = philox32(tie_seed, i) * 2^32 + i    (a fixed pseudo-random order of
 *                                                                the items, the same for every
 *                                                                state and every run with that seed)
 * Items inside a bucket are stored in ascending tie key. Decoders (sim_sid_decode.h) rank items by
 * (log p(i|s) descending, tie key ascending), a total order; colliding items have equal scores and
 * so enter a slate in bucket order. Brute-force scoring uses the same order.
 *
 * Every build and change gives the index a new `generation` (unique in the process); a trie
 * remembers the generation it was built from and decoders check that the two agree.
 *
 * The struct is plain so that decoders can read it; callers treat every field as read-only and
 * change the index only through these functions. Memory: about 2 L + 1 bytes per item row plus
 * 20 bytes per live item. */
#ifndef SIM_SID_INDEX_H
#define SIM_SID_INDEX_H

#include <stdint.h>
#include <stdio.h>

#include "common/hsrl_status.h"
#include "sim/sim_sid_codebook.h"

typedef struct sim_sid_index {
  int n_levels;                      /* L, 1..SIM_SID_MAX_LEVELS */
  int64_t vocab[SIM_SID_MAX_LEVELS]; /* V_l, 1..65536 */
  int64_t n_items;                   /* N: ids 1..N */
  uint64_t tie_seed;                 /* 0: lowest id first; else a seeded order (see above) */
  uint64_t generation;               /* new (process-unique) after every build or change */
  uint16_t *tokens;                  /* (N+1, L): SID of every item row (row 0 unused) */
  uint8_t *live;                     /* (N+1): 1 = in the live catalog (row 0 is always 0) */
  int64_t n_live;                    /* live items */
  int64_t n_sids;                    /* distinct SIDs among the live items */
  uint64_t *sid_key;                 /* (n_sids): packed SIDs (sim_sid_index_pack), ascending */
  int64_t *bucket_start;             /* (n_sids + 1): SID j's items are bucket_items[start[j]..start[j+1]) */
  int32_t *bucket_items;             /* (n_live): items grouped by SID, each bucket in tie order */
  int64_t n_colliding_sids;          /* SIDs shared by >= 2 live items */
  int64_t n_colliding_items;         /* live items whose SID is shared with another live item */
  int64_t max_bucket;                /* the largest bucket (0 when nothing is live) */
} sim_sid_index;

/* Builds the index from tokens (N+1, L) (row 0 ignored) and live (N+1) (NULL: items 1..N all live;
 * row 0 is ignored: the padding item is never live). The index copies both. A token z_l >= V_l of
 * a live item is bad input: HSRL_E_INPUT naming the item and level (nothing is left allocated). */
hsrl_status sim_sid_index_init(sim_sid_index *idx, int n_levels, const int64_t *vocab, int64_t n_items,
                               const uint16_t *tokens, const uint8_t *live, uint64_t tie_seed);
void sim_sid_index_free(sim_sid_index *idx); /* NULL or a zeroed struct: no-op; leaves it zeroed */

/* Churn: item ids in add_ids get the SIDs add_tokens (n_add, L) and become live (ids > N grow the
 * table to N = max id; rows in between are not live); ids in del_ids stop being live. An id may
 * not be both added and deleted, added twice, or added while live (delete it first to change its
 * SID); deleting an id that is not live is an error too. On error (HSRL_E_INPUT naming the id)
 * the index is unchanged. The vocabulary never changes. */
hsrl_status sim_sid_index_update(sim_sid_index *idx, const int32_t *add_ids, const uint16_t *add_tokens,
                                 int64_t n_add, const int32_t *del_ids, int64_t n_del);

/* The item's tie key (see above); smaller enters a slate first among equal scores. */
uint64_t sim_sid_index_tie_key(const sim_sid_index *idx, int64_t item);

/* Packs L tokens into one integer, z_0 in the most significant 16 bits used; lexicographic order of
 * SIDs equals numeric order of keys. */
uint64_t sim_sid_index_pack(const sim_sid_index *idx, const uint16_t *sid /* (L) */);

/* SID number j (0..n_sids-1) of a SID, or -1 when no live item has it. O(log n_sids). */
int64_t sim_sid_index_find(const sim_sid_index *idx, const uint16_t *sid /* (L) */);

/* The live items with this SID, in tie order: *items points into the index (valid until the next
 * change). Returns their count (0 and *items = NULL when none). */
int64_t sim_sid_index_items(const sim_sid_index *idx, const uint16_t *sid /* (L) */, const int32_t **items);

/* The tokens of SID number j (unpacks sid_key[j]). */
void sim_sid_index_sid(const sim_sid_index *idx, int64_t j, uint16_t *sid /* (L) */);

/* One line of statistics and the largest collisions (at most max_lines buckets, largest first, each
 * with up to 8 of its items), e.g. for `hsrl sid stats|assign`. */
void sim_sid_index_report(const sim_sid_index *idx, FILE *f, int max_lines);

#endif
