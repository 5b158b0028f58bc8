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
 * random). act allocates nothing; everything is sized for max_batch users at init. */
#ifndef SIM_POLICY_SIMPLE_H
#define SIM_POLICY_SIMPLE_H

#include <stdint.h>

#include "sim/sim_click_model.h"
#include "sim/sim_data.h"
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

/* Slates (b, K) for b users (any b; greedy works through max_batch at a time). */
void sim_policy_simple_act(sim_policy_simple *p, int64_t b, const int32_t *user_ids /* (b) */,
                           const int32_t *histories /* (b, H) */, int32_t *slates /* (b, K) */);

#endif
