/* replay_shard.h: one replay shard of the distributed job (architecture.md "The distributed job":
 * "keeps a ring of transitions (capacity / R each), serves uniform samples, enforces a
 * samples-per-insert ratio with a tolerance ... writes HDF5 snapshots on request"; method.md
 * section 8 "Replay of transitions"). It replaces learner/learner_ring.c and stores the same
 * fields, plus each row's policy version.
 *
 * Data path. Actors' compressed blocks (replay_block.h) arrive through replay_shard_offer into a
 * bounded queue of dist.queue_blocks blocks; a full queue refuses the block (push back: the
 * sender keeps it and retries). replay_shard_pump decodes queued blocks in order and inserts
 * their rows one at a time while the rate limiter (replay_limiter.h, Reverb's semantics) allows;
 * a block whose rows are not all in yet stays at the front, with the count of rows already
 * inserted. replay_shard_insert takes rows directly (the in-process path). replay_shard_sample
 * serves B transitions when the limiter allows.
 *
 * Ring. Transition t (0-based count of all inserts) goes to slot t % capacity; once full each
 * insert overwrites the oldest (a delete for the limiter). Storage is narrow (architecture.md):
 * ids int32, SID tokens uint8 when the largest vocabulary is <= 256 (else uint16), clicks as K
 * bits per slot, done as a byte, reward and behaviour log-probs float32, policy version int32,
 * next user int32, and the next history only with store_next_history: otherwise it is derived
 * (replay_rows_next_history) when sampled, and rows whose next history is not derivable are
 * refused at insert (HSRL_E_INPUT naming the row). The environment always gives derivable ones
 * (sim_env.h), so the default halves the history storage.
 *
 * Sampling: B slots uniformly WITH replacement from [0, size), each by hsrl_rng_below from the
 * shard's own stream (seed, stream), decoded into the shard's batch buffer (max_batch rows); the
 * replay_rows view stays valid until the next sample or get.
 *
 * Memory: everything (ring, batch, staging rows of one block, queue slots, zstd contexts) is
 * allocated by replay_shard_init; offer, pump, insert and sample allocate nothing (tested).
 * Not thread-safe: one thread drives a shard. */
#ifndef REPLAY_SHARD_H
#define REPLAY_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "replay/replay_limiter.h"
#include "replay/replay_queue.h"
#include "replay/replay_rows.h"

typedef struct replay_shard_config {
  replay_rows_shape shape;
  int64_t capacity;         /* transitions held */
  int64_t max_vocab;        /* largest SID vocabulary V: tokens stored as uint8 when <= 256
                               (0: unknown, uint16); tokens >= V are refused */
  int store_next_history;   /* 1: store next histories; 0: derive them (see above) */
  int64_t max_batch;        /* largest sample */
  int64_t block_rows;       /* rows of the largest block accepted */
  int64_t queue_blocks;     /* blocks the input queue holds */
  replay_limiter_config limiter;
  uint64_t seed, stream;    /* the sampling stream */
  uint64_t config_hash;     /* the run's: blocks must carry it (0: not checked); snapshots' stamp */
} replay_shard_config;

/* The config of shard `shard` (0..n_shards-1; n_shards 0 means the one replay inside the learner)
 * from the settings: capacity = ceil(train.buffer / R), min_size_to_sample = max(1,
 * ceil(train.learning_starts / R)) (below capacity), samples_per_insert = dist.samples_per_insert,
 * error_buffer = max(dist.spi_tolerance * samples_per_insert * min_size_to_sample,
 * replay_limiter_min_error_buffer(spi, 1, max_batch)) (Acme's samples_per_insert_tolerance_rate
 * convention), max_batch = train.batch, block_rows = dist.block_rows, queue_blocks =
 * dist.queue_blocks, seed = hsrl_rng_derive(hsrl_settings_train_seed(s), purpose "replay"),
 * stream = shard.
 * shape and max_vocab are the caller's (from the data and the SID file). */
void replay_shard_config_from_settings(replay_shard_config *c, const hsrl_settings *s,
                                       int64_t n_shards, int64_t shard, const replay_rows_shape *shape,
                                       int64_t max_vocab, uint64_t config_hash);

typedef struct replay_shard_counters {
  int64_t inserted;        /* transitions inserted since init (the ring position) */
  int64_t sampled;         /* transitions served */
  int64_t sample_calls;    /* samples served (of B transitions each) */
  int64_t sample_waits;    /* sample calls refused by the limiter (the learner waits) */
  int64_t insert_waits;    /* pump calls stopped by the limiter with rows ready (actors wait) */
  int64_t queue_full;      /* blocks refused because the queue was full (push back) */
  int64_t blocks_received; /* blocks accepted into the queue */
  int64_t blocks_rejected; /* blocks dropped: too large, corrupt or invalid */
} replay_shard_counters;

/* The ring's narrow storage: slot-major arrays of `capacity` rows (for snapshots and tools). */
typedef struct replay_shard_store {
  int64_t clicks_bytes;     /* bytes of clicks per slot: ceil(K / 8) */
  int32_t *users;           /* (C) */
  int32_t *history;         /* (C, H) */
  int32_t *slate;           /* (C, K) */
  uint8_t *tokens8;         /* (C, K, L) when tokens are uint8, else NULL */
  uint16_t *tokens16;       /* (C, K, L) when tokens are uint16, else NULL */
  uint8_t *clicks;          /* (C, clicks_bytes): bit k of byte k / 8 is click k */
  uint8_t *done;            /* (C) 0/1 */
  float *reward;            /* (C) */
  float *logp;              /* (C, K, L) or NULL */
  int32_t *policy_version;  /* (C) */
  int32_t *next_users;      /* (C) */
  int32_t *next_history;    /* (C, H) with store_next_history, else NULL */
} replay_shard_store;

typedef struct replay_shard replay_shard;

/* HSRL_E_USAGE naming the field for a config that cannot work: capacity < 1, max_batch,
 * block_rows or queue_blocks < 1, max_vocab outside [0, 65536], a limiter config
 * replay_limiter_init refuses, min_size_to_sample >= capacity (inserts would never be limited),
 * error_buffer < replay_limiter_min_error_buffer(spi, 1, max_batch) (sampler and inserter could
 * block each other). Checks (bugs) on the shape. */
hsrl_status replay_shard_init(replay_shard **out, const replay_shard_config *cfg);
void replay_shard_free(replay_shard *s); /* NULL ok */

const replay_shard_config *replay_shard_get_config(const replay_shard *s);
int replay_shard_tokens_u16(const replay_shard *s);
int64_t replay_shard_size(const replay_shard *s); /* transitions held: min(inserted, capacity) */
const replay_shard_counters *replay_shard_get_counters(const replay_shard *s);
const replay_limiter *replay_shard_get_limiter(const replay_shard *s);

/* ---- blocks ---- */

/* Queues a framed block (n bytes, copied). *accepted = 1, or 0 when the queue is full (push
 * back: offer it again later). HSRL_E_INPUT when the block is larger than any valid block of
 * block_rows rows (it is counted as rejected). */
hsrl_status replay_shard_offer(replay_shard *s, const void *block, size_t n, int *accepted);
int64_t replay_shard_queued(const replay_shard *s); /* blocks in the queue */
/* Decodes queued blocks in order and inserts their rows while the limiter allows; *n_inserted
 * (may be NULL) = rows inserted by this call. A block that fails to decode or validate is
 * dropped and counted, and its error returned (message naming the field and row; the blocks
 * behind it stay queued for the next call). */
hsrl_status replay_shard_pump(replay_shard *s, int64_t *n_inserted);

/* ---- rows ---- */

/* HSRL_E_INPUT naming the field and row when rows cannot be stored in this ring: a token >=
 * max_vocab or > 255 in uint8 storage, clicks or done not 0/1, a next history that is not
 * derivable without store_next_history. `source` prefixes the message. */
hsrl_status replay_shard_check_rows(const replay_shard *s, const replay_rows *rows, const char *source);
/* Inserts rows 0, 1, ... in order while the limiter allows; returns how many went in. The rows
 * must pass replay_shard_check_rows (violations are checked as bugs). */
int64_t replay_shard_insert(replay_shard *s, const replay_rows *rows);

/* B (1..max_batch) transitions uniformly with replacement into the batch: 1 and *out set, or 0
 * when the limiter refuses (too few transitions, or the learner is ahead of the ratio). */
int replay_shard_sample(replay_shard *s, int64_t B, replay_rows *out);
const int64_t *replay_shard_last_slots(const replay_shard *s); /* slots of the last sample (B) */
/* Decodes slot (< size) into row 0 of the batch; the view has B = 1 (tests and tools). */
replay_rows replay_shard_get(replay_shard *s, int64_t slot);
/* Slot of the i-th oldest transition held (0 <= i < size). */
int64_t replay_shard_slot_of_age(const replay_shard *s, int64_t i);

/* ---- state, for snapshots (replay_snapshot.h) ---- */

replay_shard_store *replay_shard_get_store(replay_shard *s);
replay_queue *replay_shard_get_queue(replay_shard *s);
const hsrl_rng *replay_shard_get_rng(const replay_shard *s);
/* Rows of the queue's front block already inserted (0 when the front is untouched). */
int64_t replay_shard_head_rows_done(const replay_shard *s);
/* After a snapshot filled the store and the queue: sets counters, limiter counts, stream and
 * the front block's progress. HSRL_E_CORRUPT naming the field when they disagree (limiter
 * inserts/samples vs the counters, deletes vs max(0, inserted - capacity), progress with an
 * empty queue or negative). */
hsrl_status replay_shard_set_state(replay_shard *s, const replay_shard_counters *c,
                                   int64_t limiter_deletes, const hsrl_rng *rng,
                                   int64_t head_rows_done, const char *source);

#endif
