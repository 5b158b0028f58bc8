/* sim_click_adapters.h: sim_click_model constructors for the two real click models (method.md
 * section 4): the synthetic world's ground truth (sim_synth.h) and the learned simulator in
 * inference mode (sim_urm.h). They live here rather than next to their models so that neither
 * model's files depend on the environment's interface.
 *
 * Synthetic world: ctx is the world itself (borrowed, read-only); nothing is allocated.
 *   probs  = sim_synth_click_probs_batch
 *   scores = sim_synth_item_logits (the logit at slate position 0; the position effect is the same
 *            for every item, so this ranks items exactly as their click probability does).
 *
 * Learned simulator: an adapter owns one sim_urm_work (max_batch rows; larger calls are split)
 * and the item vectors phi (N+1, f). One adapter per thread.
 *   probs  = sim_urm_click_probs (no dropout).
 *   scores = the exact logit <phi(i), c> of every candidate, c from sim_urm_user_context: one
 *            model row per user instead of N/K slates. */
#ifndef SIM_CLICK_ADAPTERS_H
#define SIM_CLICK_ADAPTERS_H

#include <stdint.h>

#include "sim/sim_click_model.h"
#include "sim/sim_synth.h"
#include "sim/sim_urm.h"

/* A click model over the world w (borrowed; must outlive the model). */
sim_click_model sim_click_adapters_synth(const sim_synth_world *w);

typedef struct sim_click_adapters_urm sim_click_adapters_urm;

/* An adapter over the learned simulator m (borrowed, with its dataset; both must outlive it).
 * max_batch >= 1 rows per model call. Allocates once. */
sim_click_adapters_urm *sim_click_adapters_urm_init(const sim_urm *m, int64_t max_batch);
void sim_click_adapters_urm_free(sim_click_adapters_urm *a); /* NULL is a no-op */
/* The click model view of a (ctx = a). */
sim_click_model sim_click_adapters_urm_model(sim_click_adapters_urm *a);

#endif
