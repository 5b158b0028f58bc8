/* replay_server.h: the replay-shard ROLE of the distributed job (architecture.md "The distributed
 * job": replay shard; issue 6 items 2 and 4): the loop that receives actors' transition blocks,
 * inserts them into a replay_shard (ring, rate limiter, bounded queue), serves the learner's
 * sample requests, writes a snapshot on a checkpoint request and stops on STOP.
 *
 * Protocol (payloads; every message is a comm frame carrying the run's config hash):
 *   actor -> shard   TRANSITIONS   a replay_block (framed zstd) of <= dist.block_rows rows;
 *                                  header policy_version = the actor's
 *   actor -> shard   PING          sync mode only: int64 step index, "my step is complete"
 *   actor -> shard   STOP          "I send nothing more" (after the learner's STOP)
 *   learner -> shard SAMPLE_REQUEST int64[2] {update k (1-based), rows n}
 *   shard -> learner SAMPLE_BATCH  int64[REPLAY_SERVER_N_COUNTERS] counters, then a replay_block
 *                                  of the n sampled rows (policy versions included)
 *   learner -> shard CHECKPOINT_REQUEST int64 iteration; the shard writes
 *                                  RUN_DIR/replay/shard-<r>.h5 (replay_snapshot_write, atomic)
 *                                  and answers CHECKPOINT_DONE {int64 iteration}
 *   learner -> shard STOP          after it, the shard drains its actors until each sent STOP.
 * Served requests are answered in order. Async mode: blocks are taken while the input queue has
 * room (a full queue leaves them in the transport: push back on the actor's send), rows go in
 * while the limiter allows, a pending request is served as soon as the limiter allows.
 * Sync mode (dist.sync): the shard touches nothing until request k arrives, then ingests actor
 * steps in a fixed order (step by step; per step, its actors in rank order, each up to its PING)
 * until steps 0 .. n_prefill_steps + k - 1 are in, then samples: the limiter is configured never
 * to refuse (min size 1, error buffer 1e15), so the result depends on the seed only.
 *
 * Memory: the shard and the message buffers are allocated at start; the loop allocates nothing. */
#ifndef REPLAY_SERVER_H
#define REPLAY_SERVER_H

#include <stdint.h>

#include "common/comm/comm.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "replay/replay_rows.h"

/* counters in front of every SAMPLE_BATCH payload */
enum {
  REPLAY_SERVER_C_INSERTED, REPLAY_SERVER_C_SAMPLED, REPLAY_SERVER_C_SAMPLE_WAITS,
  REPLAY_SERVER_C_INSERT_WAITS, REPLAY_SERVER_C_QUEUE_FULL, REPLAY_SERVER_C_BLOCKS,
  REPLAY_SERVER_C_SIZE, REPLAY_SERVER_C_QUEUED, REPLAY_SERVER_N_COUNTERS
};

typedef struct replay_server_config {
  const hsrl_settings *settings;
  replay_rows_shape shape;
  int64_t max_vocab;       /* largest SID vocabulary (0: unknown) */
  uint64_t config_hash;
  const char *run_dir;     /* snapshots go to run_dir/replay/ */
  int64_t n_prefill_steps; /* sync mode: actor steps before update 1 (learner_dist.h) */
  double deadline_s;       /* longest wait for any peer */
} replay_server_config;

/* Runs the shard role on ep (its role must be COMM_ROLE_REPLAY) until STOP. */
hsrl_status replay_server_run(comm *ep, const replay_server_config *cfg);

/* The actor ranks that send to shard `shard` (0-based): actor index i (rank 1 + R + i) goes to
 * shard i % R. Writes up to cap ranks into out, returns how many there are. */
int replay_server_actors_of(int size, int n_shards, int shard, int *out, int cap);

#endif
