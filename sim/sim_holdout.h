/* sim_holdout.h: the held-out share of a set of logged records for early stopping (the simulator's
 * sim.val_fraction, the SL baseline's agent.sl_val_fraction).
 *
 * sim_holdout_latest reorders idx[0..n) (record indices of d) so that its first n_val entries are
 * the held-out records, and returns n_val. Held out: each user's latest floor(vf * n_u) records
 * (by time, then record index), mirroring the test split (each user's latest records), so the
 * held-out loss measures prediction of a user's future as the test metrics do (a uniform random
 * share of records, interleaved in time with the fitted ones, kept improving long after the test
 * AUC had peaked on ML-1M). When that holds out less than half of round(vf * n) (users with one or
 * few records each, as in RL4RS), a uniform random share is held out instead, drawn from the
 * hsrl_rng stream (seed, stream), and *random = 1. vf = 0 holds out nothing; at least one record
 * is always fitted. */
#ifndef SIM_HOLDOUT_H
#define SIM_HOLDOUT_H

#include <stdint.h>

#include "sim/sim_data.h"

int64_t sim_holdout_latest(const sim_dataset *d, int64_t *idx, int64_t n, double vf, uint64_t seed,
                           uint64_t stream, int *random);

#endif
