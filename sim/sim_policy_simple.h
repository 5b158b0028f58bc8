/* sim_policy_simple.h: reference policies without learning, the floor every agent must beat
 * (method.md section 9: same environment, same protocol).
 *
 *  random    K distinct items drawn uniformly from 1..N for each user (partial Fisher-Yates on a
 *            kept permutation; own hsrl_rng stream, re-seeded by sim_policy_simple_reset).
 *  popular   the K items with the most clicks in the given records (the train split), most clicked
 *            first, ties to the lower id; the same slate for every user (unless history items are
 *            excluded: then the K most clicked items outside the user's history).
 *  greedy    the top K of the click model's own scores over the whole catalog, per user, best at
 *            position 0 (greedy-by-simulator: in the environment's model it maximises the expected
 *            clicks of the next slate). The catalog is scored in blocks of at most
 *            SIM_POLICY_SIMPLE_BLOCK items, through the model's scores callback when it has one,
 *            else through probs with candidates packed K to a slate (that assumes an item's
 *            probability does not depend on its position or neighbours, true of sim_urm).
 *  oracle    (synthetic world only) greedy over the world's true click model: the myopic oracle.
 *            It knows the satiation state, so it is the best one-step policy there.
 * Ties in scores go to the lower item id; results depend only on the inputs (and the seed for
 * random). act allocates nothing; everything is sized for max_batch users at init (and for the
 * groups at sim_policy_simple_cap). */
#ifndef SIM_POLICY_SIMPLE_H
#define SIM_POLICY_SIMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "sim/sim_click_model.h"
#include "sim/sim_data.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_synth.h"

#define SIM_POLICY_SIMPLE_BLOCK 4096 /* catalog items scored per model call and user */

typedef struct sim_policy_simple sim_policy_simple;

sim_policy_simple *sim_policy_simple_random(int64_t n_items, int64_t slate_size, uint64_t seed);
/* Click counts over the records `records` (n) of d. */
sim_policy_simple *sim_policy_simple_popular(const sim_dataset *d, const int64_t *records,
                                             int64_t n, int64_t slate_size);
/* model is copied (its ctx borrowed: it must outlive the policy and is used from act). */
sim_policy_simple *sim_policy_simple_greedy(const sim_click_model *model, int64_t max_batch);
sim_policy_simple *sim_policy_simple_oracle(const sim_synth_world *w, int64_t max_batch);
void sim_policy_simple_free(sim_policy_simple *p); /* NULL is a no-op */

const char *sim_policy_simple_name(const sim_policy_simple *p); /* "random", "popular", ... */
/* Re-seeds the random policy's stream (the others have no state). */
void sim_policy_simple_reset(sim_policy_simple *p, uint64_t seed);

/* From now on no slate holds an item of the user's history (its history_len columns, 0 =
 * padding): random draws uniformly from the other items, popular and greedy/oracle take the best
 * K of the others (env.exclude_history, applied to every policy alike). */
void sim_policy_simple_exclude_history(sim_policy_simple *p, int64_t history_len);

/* From now on popular, greedy and oracle take at most `cap` items of one group into a slate: the
 * K best by their ranking in descending order, skipping an item when cap items of its group are
 * already in; when fewer than K items qualify, the best skipped ones fill the rest (the slate is
 * always full). The slate stays in the order of acceptance, best first. This is the HSRL agent's
 * greedy decoding with agent.prefix_cap (agent_hsrl_diverse.h) when group[i] is item i's level-1
 * SID token, so a reference policy can be compared with the agent under the same diversity rule
 * (the rows "oracle-cap1" ... of `hsrl run`). group (N+1) is copied: group[i] in [0, n_groups)
 * for i = 1..N (group[0] unused); cap >= 1. Memory: max_batch * n_groups * min(cap, K) (score,
 * id) pairs for greedy and oracle. Not for random (its slates are not a ranking). */
void sim_policy_simple_cap(sim_policy_simple *p, const int32_t *group, int64_t n_groups, int64_t cap);
/* The same with the groups of a SID file: item i's level-1 token (sid->n_items must be N). cap =
 * SIM_POLICY_SIMPLE_HPN (not random): cap 1 over the scores re-ranked into the slate the HSRL
 * policy's factorised form can express that they like best (sim_policy_hpn.h); N <=
 * SIM_POLICY_SIMPLE_BLOCK (the search's cost grows with N x tokens^2). Greedy and oracle search
 * per state (a click model with a scores callback); popular searches once, over the click counts as shares of the largest (its slate does not depend on the
 * state; with history exclusion, a user's history items are skipped in that one ranking). */
#define SIM_POLICY_SIMPLE_HPN (-1)
void sim_policy_simple_cap_sid(sim_policy_simple *p, const sim_sid_file *sid, int64_t cap);

/* A reference policy's name as users write it (hsrl run's run.compare, hsrl eval --policies):
 * random, popular, greedy or oracle; the last three also as NAME-capC, C >= 1 (at most C items
 * per level-1 SID token: sim_policy_simple_cap_sid) and as NAME-hpn (cap SIM_POLICY_SIMPLE_HPN).
 * Writes the base name (base_size >= 8) and the cap (0: none); returns 0 when word is not such a
 * name. */
int sim_policy_simple_parse_name(const char *word, char *base, size_t base_size, int64_t *cap);
#define SIM_POLICY_SIMPLE_NAMES \
  "random, popular, greedy, oracle; popular, greedy and oracle also as NAME-capC, C >= 1: at most C " \
  "items per level-1 SID token, and as NAME-hpn: the best slate of one item per level-1 token that " \
  "HSRL's factorised policy can express"

/* Slates (b, K) for b users (any b; greedy works through max_batch at a time). */
void sim_policy_simple_act(sim_policy_simple *p, int64_t b, const int32_t *user_ids /* (b) */,
                           const int32_t *histories /* (b, H) */, int32_t *slates /* (b, K) */);

#endif
