/* sim_policy_hpn.h: what the HSRL policy's form can do with perfect knowledge: the reference
 * policies NAME-hpn (oracle-hpn, greedy-hpn; sim_policy_simple.h).
 *
 * The Hierarchical Policy Network's item likelihood is a product of per-level distributions that
 * depend on the state only (method.md section 6: e_l = pi_l E_l, the expected token embedding, so
 * level l + 1 does not see which token level l chose):
 *   log p(i | s) = sum_l g_l(s, z_l(i)),   g_l = log pi_l.
 * With one item per level-1 token (agent.prefix_cap = 1, the demo's decoding) a slate is: for every
 * level-1 token, its item with the largest g_2 + ... + g_L, then the K tokens whose items rank
 * first. Every level-1 token thus picks its item by one and the same preference over the deeper
 * tokens, whatever the items under it are like.
 *
 * sim_policy_hpn_rank searches, for one state, the deeper levels' scores g_2..g_L that maximise a
 * click model's expected clicks of that slate (the sum of its items' click probabilities: the
 * myopic oracle's objective), and ranks the level-1 tokens by their picks' probabilities (the best
 * g_1 for those picks). The search is deterministic: from two starts (no preference; each deeper
 * token's mean probability over its items), passes over every token of levels 2..L, each trying
 * fixed steps, a jump past either end of its level and a trade of places with every other token of
 * its level, keeping strict gains, until a pass gains nothing (at most SIM_POLICY_HPN_PASSES); the
 * better start wins. It finds a local optimum, so its value is a lower bound on what the form can
 * reach, not a ceiling: on small two-level catalogs it reaches the exhaustive optimum over every
 * order of the level-2 tokens in 295 of 300 random cases, and at least 0.97 of it in the others
 * (tests/test_sim_policy_hpn.c). Cost per state: a few passes x (sum of V_l + V_l^2 / 2) x 14 slate
 * evaluations of O(N + V_1 K) (the demo world, 500 items, 3 x 16 tokens: about 6 ms). */
#ifndef SIM_POLICY_HPN_H
#define SIM_POLICY_HPN_H

#include <stdint.h>

#include "sim/sim_sid_file.h"

#define SIM_POLICY_HPN_PASSES 8 /* at most; the search stops at a pass without a gain */

typedef struct sim_policy_hpn sim_policy_hpn;

/* For sid's catalog (N items, L >= 1 levels) and slates of K. sid's tokens are copied. */
sim_policy_hpn *sim_policy_hpn_new(const sim_sid_file *sid, int64_t K);
void sim_policy_hpn_free(sim_policy_hpn *h); /* NULL is a no-op */

/* scores (N): item j + 1's click probability for one state. Rewritten in place into a ranking
 * that, taken best first with at most one item per level-1 token (then the best of the rest),
 * gives the slate found: each level-1 token's items ordered by the searched g_2 + ... + g_L, the
 * tokens ordered by their picks' probabilities (token rank first, then that order, in the float).
 * Items with banned[j + 1] != 0 (banned (N + 1) or NULL) are never picked; their rewritten score
 * is meaningless (the caller skips them). Returns the slate's expected clicks. */
double sim_policy_hpn_rank(sim_policy_hpn *h, float *scores, const uint8_t *banned);

#endif
