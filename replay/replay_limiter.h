/* replay_limiter.h: the samples-per-insert rate limiter of a replay shard, with Reverb's
 * semantics (architecture.md "The distributed job": "inserts wait when the learner falls behind,
 * samples wait when actors fall behind"; method.md section 8 "Replay of transitions").
 *
 * Reverb's RateLimiter (reverb/cc/rate_limiter.cc) with the SampleToInsertRatio configuration
 * (reverb/rate_limiters.py). It counts inserts I, samples S and deletes D (items removed from
 * the table: in a ring, each insert into a full ring deletes the oldest item) and keeps
 *     diff = I * samples_per_insert - S
 * inside [min_diff, max_diff], where, with offset = samples_per_insert * min_size_to_sample,
 *     min_diff = offset - error_buffer,   max_diff = offset + error_buffer.
 *   can_insert(n): true while I + n - D <= min_size_to_sample (filling up to the minimum is
 *                  free), else (I + n) * samples_per_insert - S <= max_diff.
 *   can_sample(n): false while I - D < min_size_to_sample, else I * samples_per_insert - S - n
 *                  >= min_diff.
 * So the learner cannot get more than error_buffer samples ahead of the target ratio (samples
 * wait for inserts) and actors cannot get more than error_buffer ahead of it (inserts wait for
 * samples). Whatever the order of allowed calls, after the first min_size_to_sample inserts:
 *     S <= I * samples_per_insert - min_diff   and   I * samples_per_insert - S <= max_diff.
 *
 * Progress. Some operation is always allowed (no deadlock between one inserter and one sampler)
 * when 2 * error_buffer >= n_insert * samples_per_insert + n_sample for the largest insert and
 * sample counts used: replay_limiter_min_error_buffer() gives that bound. Reverb's own rule
 * (error_buffer >= max(1, samples_per_insert): single inserts and single samples) is its case
 * n_insert = n_sample = 1 (rounded up), and replay_limiter_init enforces it. The shard inserts
 * rows one at a time (n_insert = 1) and samples whole batches (n_sample = the batch).
 *
 * Plain data: copy with =; the state is the three counters (snapshots store them). */
#ifndef REPLAY_LIMITER_H
#define REPLAY_LIMITER_H

#include <stdint.h>

#include "common/hsrl_status.h"

typedef struct replay_limiter_config {
  double samples_per_insert;  /* > 0: target samples per inserted transition */
  int64_t min_size_to_sample; /* >= 1: items held before the first sample */
  double error_buffer;        /* tolerance of diff around the offset, in samples */
} replay_limiter_config;

typedef struct replay_limiter {
  replay_limiter_config cfg;
  double min_diff, max_diff;
  int64_t inserts, samples, deletes;
} replay_limiter;

/* Counters at 0. HSRL_E_USAGE naming the field when samples_per_insert <= 0 or not finite,
 * min_size_to_sample < 1, or error_buffer < max(1, samples_per_insert) (Reverb's check). */
hsrl_status replay_limiter_init(replay_limiter *l, const replay_limiter_config *cfg);

/* The smallest error_buffer with which n_insert-row inserts and n_sample-row samples can never
 * both be refused: (n_insert * samples_per_insert + n_sample) / 2, at least max(1, spi). */
double replay_limiter_min_error_buffer(double samples_per_insert, int64_t n_insert, int64_t n_sample);

int replay_limiter_can_insert(const replay_limiter *l, int64_t n); /* n >= 1 */
int replay_limiter_can_sample(const replay_limiter *l, int64_t n); /* n >= 1 */
/* Record n inserts / samples / deletes (the caller asked can_* first; not re-checked). */
void replay_limiter_insert(replay_limiter *l, int64_t n);
void replay_limiter_sample(replay_limiter *l, int64_t n);
void replay_limiter_delete(replay_limiter *l, int64_t n);

double replay_limiter_diff(const replay_limiter *l); /* I * samples_per_insert - S */
int64_t replay_limiter_size(const replay_limiter *l); /* I - D: items held */

/* Restores saved counters; HSRL_E_CORRUPT naming the field when they are negative or
 * inconsistent (D > I). */
hsrl_status replay_limiter_set_counts(replay_limiter *l, int64_t inserts, int64_t samples,
                                      int64_t deletes, const char *source);

#endif
