/* sim_sid_decode.h: turning per-level token distributions into slates of K distinct items
 * (method.md §6 "Item likelihood" and "Turning it into a slate"; reference-hsrl.md §5.4).
 *
 * Input, for a batch of B states: L per-level log-probability vectors, log pi_l (V_l numbers each;
 * any finite values or -inf, so unnormalised log-weights work too; NaN and +inf are bugs and fail
 * a check). The item likelihood is the product over levels (method.md eq. 14), used in logs:
 *   score(i) = log p(i|s) = sum_l log pi_l[z_l(i)],   summed in double, l = 0, 1, ..., L-1.
 * Every decoder computes scores by this one expression, so equal SIDs give bit-equal scores and a
 * trie search and a brute-force scan agree bit for bit.
 *
 * Total order (greedy top-K and every tie): score descending, then tie key ascending
 * (sim_sid_index_tie_key: the item id with the default tie seed 0, i.e. lowest id first, as the
 * reference prescribes). Colliding items (one SID) have equal scores and are separate candidates,
 * entering the slate in tie order.
 *
 * Three families, all over the live catalog of the index:
 *  (a) sim_sid_decode_topk: the exact top-K by best-first search over the trie. A max-heap holds
 *      "streams": an opened prefix whose children wait in a small heap of their own, ordered by
 *      log-prob, keyed by an upper bound of every score below its remaining children (prefix
 *      log-prob + best remaining child's log-prob + the largest log-prob of each deeper level);
 *      and cursors into full SIDs, keyed by their exact score, which emit their bucket's items
 *      one by one in tie order. Popping a stream takes its best child, puts the stream back with
 *      the next child and opens the child (reads its children), so a pop pushes at most two
 *      entries. On equal keys streams come before cursors and cursors come in tie-key order, so
 *      the output follows the total order exactly. Bounds are summed left to right like scores,
 *      so floating-point rounding cannot make a bound smaller than a score below it. Once K items
 *      have entered as cursors, the K-th best of them bounds the answer from below and anything
 *      keyed lower is dropped. Cost: O(L V) per state for the level maxima, plus the children of
 *      the opened prefixes, in typical cases O(K L V) numbers and not growing with N
 *      (stats.n_touched; scripts/bench/sid_decode.sh measures it). The search holds at most
 *      `capacity` children (the workspace); a search that would need more (adversarial
 *      distributions) restarts as an exact depth-first branch and bound with O(K) memory, so the
 *      result is always exact; stats.n_heap_fallbacks counts those.
 *  (b) sim_sid_decode_sample: K distinct items by sequential sampling without replacement from
 *      the product distribution restricted to the live catalog: draw k picks item i among the
 *      live items not drawn yet (R_k) with probability
 *          P(i) = (1 - eps) p(i|s) / sum_{j in R_k} p(j|s)  +  eps / |R_k|
 *      (for K = 1 and eps = 0 exactly p(i|s) / sum over live items of p). A draw descends the trie
 *      level by level: z_l ~ pi_l (the CDF of level l), stopping as soon as the prefix leaves the
 *      trie; a complete SID with m_rem undrawn items out of the largest bucket M is accepted with
 *      probability m_rem / M and gives one of its undrawn items uniformly (rejection sampling,
 *      so the accepted item has exactly the distribution above). Renormalising each level over
 *      the valid continuations instead would be cheaper but would sample a different
 *      distribution (it favours items on sparse branches), so it is not done. When proposals
 *      miss a lot (little mass on live SIDs, e.g. an untrained policy), a state's draws come
 *      exactly from a table of the live SIDs' cumulative weights (O(n_sids L) once per state, then
 *      O(log n_sids + K) per draw; in the workspace's arena, so only when n_sids <= capacity):
 *      from its first draw when the previous state of the same call needed more proposals than
 *      the table costs (a fixed cost ratio; the first state of a call proposes), else after 32
 *      proposals with at least two draws of the state to go (ws->sample_path can force either
 *      way, for tests and benchmarks). After 64 + n_sids / 4 rejected proposals of one draw the
 *      draw is made exactly by a sweep over the trie (O(n_sids L)); stats count proposals, table
 *      draws and sweeps. Which way a draw is made depends only on earlier random numbers, so
 *      every draw has the distribution above whichever way it is made. A state whose live
 *      items all have probability 0 draws uniformly. eps-mixing is per draw (for K = 1 it equals
 *      the reference's q <- (1 - eps) q + eps / M).
 *  (c) sim_sid_decode_score / _topk_list / _sample_list: scoring an explicit candidate list per
 *      state (the reference's catalog scoring and the paper's production ranker), or the whole
 *      live catalog when the list is NULL (brute force). _topk_list follows the same total order
 *      as (a); _sample_list samples without replacement from (1 - eps) q + eps / M over the valid
 *      candidates, q = p / sum p (the reference's rule, §5.4 step 6-7), by Gumbel-top-K (exactly
 *      sequential sampling without replacement), M = number of valid candidates. Candidates must
 *      be distinct; id 0 (padding) and items that are not live are skipped (never chosen); with
 *      eps = 0, candidates of probability 0 fill the slate last, in tie order.
 *
 * Outputs (row b of each):
 *   items     (B, K) int32: the slate in order (top-K: best first; sampling: draw order)
 *   item_logp (B, K) double or NULL: score(i) = log p(i|s) (the unrestricted product, what the
 *             learner's loss uses)
 *   tok_logp  (B, K, L) float or NULL: log pi_l[z_l(i)], the behaviour log-probs of the tokens
 * When fewer than K items are available (live catalog or valid candidates) the remaining slots get
 * item 0, item_logp -INFINITY and tok_logp 0.
 *
 * Memory: nothing is allocated per call. A workspace (sim_sid_decode_ws_init, once) holds the
 * search's arena (capacity children of 8 bytes; default sim_sid_decode_capacity_default(K, L, V)
 * = 8 (K L + 1) V + K), which trie sampling reuses for its leaf table (n_sids doubles), and heap
 * (capacity / 4 + K + 2 entries of 40 bytes), the K-best buffer, the per-level weights and CDFs
 * of trie sampling (2 L V_max doubles) and the drawn set (K entries):
 * sim_sid_decode_ws_bytes(K, L, V_max, capacity) bytes in all (1.1 MB for K = 10, L = 3,
 * V = 256). Its size depends on (K, L, V) only: buckets of any size are walked in place. It serves
 * any index and trie with at most L levels and V_max tokens per level, and any k up to its K. One
 * workspace per thread. */
#ifndef SIM_SID_DECODE_H
#define SIM_SID_DECODE_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "sim/sim_sid_index.h"
#include "sim/sim_sid_trie.h"

/* The per-state inputs of B states.
 * Log-probabilities: state b's log pi_l is level[l] + b * stride[l] (V_l floats); stride[l] = 0
 * means V_l (one (B, V_l) array per level).
 * Exclusions (optional; exclude = NULL: none): state b never gets the items
 * exclude[b * exclude_stride + j], j < exclude_n (exclude_stride 0 means exclude_n; id 0 and items
 * that are not live are ignored, duplicates are fine), e.g. the user's history, so a policy does not
 * re-recommend what the user already consumed. Every decoder treats an excluded item exactly as an
 * item outside the live catalog for that state: top-K is the exact top-K of the rest, sampling
 * samples the restricted distribution, fewer than K remaining items pad with 0. The workspace must
 * have room: sim_sid_decode_ws_reserve_exclude(ws, n) once, n >= exclude_n. */
typedef struct sim_sid_logp {
  const float *level[SIM_SID_MAX_LEVELS]; /* [l]: (B, V_l) */
  int64_t stride[SIM_SID_MAX_LEVELS];
  const int32_t *exclude; /* (B, exclude_stride) or NULL */
  int64_t exclude_n, exclude_stride;
} sim_sid_logp;

typedef struct sim_sid_decode_stats {
  int64_t n_states;         /* states decoded */
  int64_t n_touched;        /* log-probabilities read (top-K search, including the level maxima) */
  int64_t n_pops;           /* best-first heap pops */
  int64_t heap_high;        /* the largest heap size reached */
  int64_t arena_high;       /* the most children held in the arena */
  int64_t n_heap_fallbacks; /* top-K searches finished by branch and bound after a full heap */
  int64_t n_proposals;      /* trie-sampling proposals (accepted + rejected) */
  int64_t n_sweep_draws;    /* trie-sampling draws made by an exact sweep */
  int64_t n_table_draws;    /* trie-sampling draws made from a state's leaf table */
} sim_sid_decode_stats;

/* How trie sampling makes its draws (sim_sid_decode_ws.sample_path). */
typedef enum sim_sid_sample_path {
  SIM_SID_SAMPLE_AUTO = 0, /* proposals or the leaf table, by cost (see (b) above); ws_init's choice */
  SIM_SID_SAMPLE_PROPOSE,  /* never the leaf table: proposals, then sweeps */
  SIM_SID_SAMPLE_TABLE     /* the leaf table from the first draw of every state with >= 2 draws */
} sim_sid_sample_path;

typedef struct sim_sid_decode_heap_entry sim_sid_decode_heap_entry;
typedef struct sim_sid_decode_child sim_sid_decode_child;
typedef struct sim_sid_decode_best sim_sid_decode_best;
typedef struct sim_sid_decode_taken sim_sid_decode_taken;

typedef struct sim_sid_decode_ws {
  int64_t k_max, vocab_max, arena_cap, heap_cap;
  int n_levels_max;
  void *mem;                         /* the one allocation */
  sim_sid_decode_heap_entry *heap;   /* (heap_cap = arena_cap / 4 + K + 2) */
  sim_sid_decode_child *arena;       /* (arena_cap): children of the opened nodes */
  sim_sid_decode_best *best;         /* (K) */
  double *cdf;                       /* (L, V_max) */
  double *weight;                    /* (L, V_max) */
  sim_sid_decode_taken *taken;       /* (K + excl_cap): drawn and excluded items */
  int64_t excl_cap;                  /* exclusions per state the workspace has room for */
  int32_t *excl;                     /* (excl_cap): this state's excluded live items, sorted */
  void *excl_mem;                    /* the allocation behind taken/excl once reserved */
  sim_sid_decode_stats stats;        /* accumulated by every call; reset it freely */
  sim_sid_sample_path sample_path;   /* AUTO; tests and benchmarks may force a path (any is exact) */
} sim_sid_decode_ws;

/* capacity: children the top-K search may hold (the arena); <= 0: the default
 * sim_sid_decode_capacity_default(K, L, V) = 8 (K L + 1) V + K; the minimum is V + K + 1. */
int64_t sim_sid_decode_capacity_default(int64_t k, int n_levels, int64_t vocab_max);
int64_t sim_sid_decode_ws_bytes(int64_t k, int n_levels, int64_t vocab_max, int64_t capacity);
void sim_sid_decode_ws_init(sim_sid_decode_ws *ws, int64_t k, int n_levels, int64_t vocab_max, int64_t capacity);
void sim_sid_decode_ws_free(sim_sid_decode_ws *ws); /* NULL or zeroed: no-op */
/* Room for up to n excluded items per state (sim_sid_logp.exclude); allocates once (call it at
 * init, never per decode); a smaller n than already reserved is a no-op. */
void sim_sid_decode_ws_reserve_exclude(sim_sid_decode_ws *ws, int64_t n);

/* (a) exact top-K over the trie (see above). */
void sim_sid_decode_topk(int32_t *items /* (B, K) */, double *item_logp /* (B, K) or NULL */,
                         float *tok_logp /* (B, K, L) or NULL */, const sim_sid_index *idx,
                         const sim_sid_trie *trie, const sim_sid_logp *logp, int64_t n_states, int64_t k,
                         sim_sid_decode_ws *ws);

/* (b) K distinct items sampled along the trie (see above); eps in [0, 1]. Draws from rng. */
void sim_sid_decode_sample(int32_t *items /* (B, K) */, double *item_logp /* (B, K) or NULL */,
                           float *tok_logp /* (B, K, L) or NULL */, const sim_sid_index *idx,
                           const sim_sid_trie *trie, const sim_sid_logp *logp, int64_t n_states, int64_t k,
                           float epsilon, hsrl_rng *rng, sim_sid_decode_ws *ws);

/* (c) scores of candidate lists: scores[b, m] = score(cand[b, m]) (-INFINITY for id 0 and items
 * that are not live). */
void sim_sid_decode_score(double *scores /* (B, M) */, const sim_sid_index *idx, const sim_sid_logp *logp,
                          const int32_t *cand /* (B, M) */, int64_t n_states, int64_t m);

/* (c) exact top-K of each state's candidates (cand (B, M)), or of the whole live catalog when cand
 * is NULL (brute force; m is then ignored). Same total order as sim_sid_decode_topk. */
void sim_sid_decode_topk_list(int32_t *items /* (B, K) */, double *item_logp /* (B, K) or NULL */,
                              float *tok_logp /* (B, K, L) or NULL */, const sim_sid_index *idx,
                              const sim_sid_logp *logp, const int32_t *cand /* (B, M) or NULL */, int64_t m,
                              int64_t n_states, int64_t k, sim_sid_decode_ws *ws);

/* (c) K distinct candidates sampled without replacement from (1 - eps) q + eps / M (see above),
 * cand NULL = the whole live catalog. Draws M random numbers per state from rng. */
void sim_sid_decode_sample_list(int32_t *items /* (B, K) */, double *item_logp /* (B, K) or NULL */,
                                float *tok_logp /* (B, K, L) or NULL */, const sim_sid_index *idx,
                                const sim_sid_logp *logp, const int32_t *cand /* (B, M) or NULL */, int64_t m,
                                int64_t n_states, int64_t k, float epsilon, hsrl_rng *rng,
                                sim_sid_decode_ws *ws);

#endif
