/* learner_ring.h: the in-process replay of `hsrl train` (architecture.md "Replay shard", with
 * dist.replay_shards = 0: the replay inside the learner; method.md section 8 "Replay of
 * transitions"; reference-hsrl.md section 7.2).
 *
 * A ring of `capacity` transitions (train.buffer) stored narrow, as ids (architecture.md): user
 * (int32), history (H int32), slate (K int32), SID tokens (K x L uint16, when n_levels > 0),
 * clicks (K uint8), reward (float32), done (uint8), next user (int32), next history (H int32),
 * behaviour log-probabilities (K x L float32, when with_logp). Transition t (0-based count of all
 * pushes) goes to slot t % capacity, so once full each push overwrites the oldest.
 * Sampling: B slots drawn uniformly WITH replacement from [0, size) (size = min(pushed,
 * capacity)), each by hsrl_rng_below from the caller's stream; the rows are copied into the
 * ring's batch buffer, whose agent_batch view is returned (valid until the next sample).
 *
 * Memory: everything (storage and the batch buffer for max_batch rows) is allocated by
 * learner_ring_init; push and sample allocate nothing.
 * Checkpoints: learner_ring_write stores slots 0..size-1 of every array and the push count under
 * a group, learner_ring_read restores them exactly (so sampling after a resume picks the same
 * transitions as an uninterrupted run). */
#ifndef LEARNER_RING_H
#define LEARNER_RING_H

#include <stdint.h>

#include "common/hsrl_rng.h"
#include "common/hsrl_status.h"
#include "common/io/io_h5.h"
#include "learner/agents/agent.h"

#define LEARNER_RING_FORMAT_VERSION 1

typedef struct learner_ring_config {
  int64_t capacity;              /* transitions */
  int64_t history_len, slate_size; /* H, K */
  int64_t n_levels;              /* L: SID tokens per item (0: no tokens) */
  int with_logp;                 /* 1: store behaviour log-probs (K x L floats; needs n_levels) */
  int64_t max_batch;             /* largest sample */
} learner_ring_config;

typedef struct learner_ring learner_ring;

learner_ring *learner_ring_init(const learner_ring_config *cfg);
void learner_ring_free(learner_ring *r); /* NULL is a no-op */

const learner_ring_config *learner_ring_get_config(const learner_ring *r);
int64_t learner_ring_size(const learner_ring *r);   /* transitions held: min(pushed, capacity) */
int64_t learner_ring_pushed(const learner_ring *r); /* transitions pushed since init */

/* Appends the rows i of `rows` (rows->B of them) with keep == NULL or keep[i] != 0, in row
 * order. Fields: users, history, slate, clicks, reward, done, next_users, next_history are
 * required; tokens when n_levels > 0; behaviour_logp when with_logp. */
void learner_ring_push(learner_ring *r, const agent_batch *rows, const uint8_t *keep /* (B) */);

/* B (1..max_batch) transitions uniformly with replacement; the ring must not be empty. */
const agent_batch *learner_ring_sample(learner_ring *r, int64_t B, hsrl_rng *rng);
/* The slots of the last sample (B), for tests. */
const int64_t *learner_ring_last_slots(const learner_ring *r);

/* Copies slot `slot` (< size) into row 0 of a one-row view (for tests and tools). */
const agent_batch *learner_ring_get(learner_ring *r, int64_t slot);

/* Checkpoint I/O under `group` ("learner/ring"). read requires the same capacity, H, K, L and
 * with_logp (HSRL_E_INPUT naming the field otherwise). */
hsrl_status learner_ring_write(const learner_ring *r, io_h5 *f, const char *group);
hsrl_status learner_ring_read(learner_ring *r, io_h5 *f, const char *group);

#endif
