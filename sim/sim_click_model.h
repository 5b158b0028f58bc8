/* sim_click_model.h: what the environment asks of a click model (method.md section 4, "p =
 * simulator(u, history, slate)").
 *
 * The environment, the greedy policy and the evaluation see a click model only through this
 * struct: a context pointer and a callback, so the learned simulator (sim_urm.h) and the synthetic
 * world's ground truth (sim_synth.h) are interchangeable, and a test can plug in a model that
 * forces clicks. Constructors for the two real models live in sim_click_adapters.h.
 *
 * probs (required): the click probability of every shown item,
 *   user_ids (b) in 1..U, histories (b, H) item ids left-padded with 0, slates (b, K) ids in 1..N
 *   -> out_p (b, K) in [0, 1]. Any b >= 0 (an adapter splits large b into its own chunks).
 *   Deterministic (inference mode: no dropout, no random draws), allocates nothing.
 * scores (optional, NULL when absent): a ranking score for n candidate items per user,
 *   items (n) in 1..N -> out (b, n), any strictly increasing function of the click probability
 *   the item would have at slate position 0 of that user's next slate (e.g. the logit). Lets the
 *   greedy policy rank a whole catalog without running the model on N/K full slates per user.
 *   Without it, sim_policy_simple scores candidates through probs, K at a time.
 * scores_logit: 1 when scores are exactly the logit of that probability (both adapters), so that a
 *   policy can turn them back into probabilities (the NAME-hpn reference policies need it).
 *
 * A model's ctx is usually mutable scratch (the simulator's activations): one sim_click_model per
 * thread. Whoever made the ctx frees it (the adapters have their own _free). */
#ifndef SIM_CLICK_MODEL_H
#define SIM_CLICK_MODEL_H

#include <stdint.h>

typedef void (*sim_click_model_probs_fn)(void *ctx, int64_t b, const int32_t *user_ids /* (b) */,
                                         const int32_t *histories /* (b, H) */,
                                         const int32_t *slates /* (b, K) */,
                                         float *out_p /* (b, K) */);

typedef void (*sim_click_model_scores_fn)(void *ctx, int64_t b, const int32_t *user_ids /* (b) */,
                                          const int32_t *histories /* (b, H) */,
                                          const int32_t *items /* (n) */, int64_t n,
                                          float *out /* (b, n) */);

typedef struct sim_click_model {
  void *ctx;
  sim_click_model_probs_fn probs;
  sim_click_model_scores_fn scores; /* NULL: rank through probs */
  int scores_logit;                 /* 1: scores = logit(p) of the item at slate position 0 */
  int64_t n_items;                  /* N: slate ids are 1..N */
  int64_t slate_size, history_len;  /* K, H of the slates and histories it accepts */
} sim_click_model;

#endif
