/* agent_hsrl_diverse.h: greedy slates with a diversity cap (agent.prefix_cap), an option of the
 * HSRL agent beside method.md §6's exact top-K.
 *
 * Why: the item likelihood p(i|s) = prod_l pi_l[z_l(i)] ranks every item under the best level-1
 * token above the items of the next one unless the lower levels differ by more than the level-1
 * gap, so the exact greedy top-K of a policy that is confident about the level-1 token (the topic)
 * puts the whole slate under one token. Where users tire of one topic (the synthetic world's
 * satiation and fatigue) that slate is the myopic binge. With prefix_cap = c, the greedy slate is
 * the K best items by p(i|s) taken in descending order, skipping an item when c items of its
 * level-1 token are already in the slate; when fewer than K items qualify (few tokens, small c),
 * the skipped ones fill the rest, best first, so the slate is always full (min(K, allowed items)).
 * c >= K is the exact top-K. The slate stays sorted by the order of acceptance (best first).
 *
 * Cost: it scores every live item (O(n_live L) per state plus a sort), like the catalog decoder;
 * the trie's N-independent top-K does not apply. Ties: higher score first, then the index's
 * bucket order (sim_sid_index.h: ascending SID, each bucket in tie order), as the decoders do.
 * Excluded items (sim_sid_logp.exclude) are never chosen. Nothing is allocated per call: the
 * workspace is sized by agent_hsrl_diverse_reserve for an index (again after a catalog change). */
#ifndef AGENT_HSRL_DIVERSE_H
#define AGENT_HSRL_DIVERSE_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "sim/sim_sid_decode.h"
#include "sim/sim_sid_index.h"

typedef struct agent_hsrl_diverse_scored {
  double score; /* sum_l log pi_l[z_l(item)] (sampling: the item's Gumbel key) */
  int32_t item;
  int32_t order; /* position in the index's bucket order: the tie-break */
} agent_hsrl_diverse_scored;

typedef struct agent_hsrl_diverse_ws {
  agent_hsrl_diverse_scored *scored; /* (cap_live) */
  int64_t cap_live;
  uint8_t *mark; /* (cap_items + 1): 1 = excluded or taken in the current state */
  int64_t cap_items;
  int32_t *count; /* (cap_vocab): items per level-1 token in the current slate */
  int64_t cap_vocab;
} agent_hsrl_diverse_ws;

/* Sizes the workspace for idx (grows it when idx is larger; never shrinks). */
void agent_hsrl_diverse_reserve(agent_hsrl_diverse_ws *ws, const sim_sid_index *idx);
void agent_hsrl_diverse_free(agent_hsrl_diverse_ws *ws);

/* items (B, K) and, when tok_logp is not NULL, the tokens' log-probs (B, K, L); cap >= 1.
 * Slots beyond the allowed items are 0 (tok_logp 0). */
void agent_hsrl_diverse_topk(int32_t *items, float *tok_logp, const sim_sid_index *idx, const sim_sid_logp *lp,
                             int64_t B, int64_t K, int64_t cap, agent_hsrl_diverse_ws *ws);

/* Exploring slates under the same cap (agent.explore_cap): sequential sampling without
 * replacement where draw k picks item i among A_k (the state's items that are live, not excluded,
 * not drawn yet and of a level-1 token with fewer than cap items in the slate; when A_k is empty,
 * every undrawn one, as the greedy fill) with probability w_i / sum_{j in A_k} w_j, where
 *     w_i = (1 - eps) p(i|s) / sum_j p(j|s) + eps / M      (j over the state's M allowed items:
 * the mixture of sim_sid_decode_sample_list, the reference's rule). It is made by Gumbel-top-K:
 * every allowed item gets key log w_i + G_i (G_i standard Gumbel) and the slate takes keys in
 * descending order under the cap, then the skipped ones; the cap only narrows the race of the
 * keys left, so each draw has the distribution above. The
 * slate is in draw order; tok_logp holds the unrestricted log pi_l[z_l] (what the learner's
 * off-policy correction compares with, as for the trie sampler). Draws from rng; eps in [0, 1]. */
void agent_hsrl_diverse_sample(int32_t *items, float *tok_logp, const sim_sid_index *idx, const sim_sid_logp *lp,
                               int64_t B, int64_t K, int64_t cap, float eps, hsrl_rng *rng,
                               agent_hsrl_diverse_ws *ws);

#endif
