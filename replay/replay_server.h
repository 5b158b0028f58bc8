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
 *   shard -> actor   PING          int64 n: "I have taken your first n TRANSITIONS/PING messages"
 *                                  (a credit: an actor keeps at most replay_server_window
 *                                  messages un-taken, so no queue between the roles is unbounded
 *                                  -- MPI would buffer any number -- and a full in-process inbox
 *                                  never keeps the learner's requests out)
 *   learner -> shard SAMPLE_REQUEST int64[2] {update k (1-based), rows n}
 *   shard -> learner SAMPLE_BATCH  int64[REPLAY_SERVER_N_COUNTERS] counters, then a replay_block
 *                                  of the n sampled rows (policy versions included)
 *   learner -> shard CHECKPOINT_REQUEST int64 iteration k; the shard writes
 *                                  RUN_DIR/replay/shard-<r>-step-<k>.h5 (replay_snapshot_write,
 *                                  atomic) and answers CHECKPOINT_DONE {int64 k}. Every cut has
 *                                  its own files, so the newest complete checkpoint (the
 *                                  learner's step-<k>.h5 is written last) always has its shards'.
 *   learner -> shard STOP          after it, the shard drains its actors until each sent STOP.
 * Served requests are answered in order. Async mode: blocks are taken while the input queue has
 * room (a full queue leaves them in the transport: push back on the actor's send), rows go in
 * while the limiter allows, a pending request is served as soon as the limiter allows.
 * Sync mode (dist.sync): the shard touches nothing until request k arrives, then ingests actor
 * steps in a fixed order (step by step; per step, its actors in rank order, each up to its PING)
 * until steps 0 .. n_prefill_steps + k - 1 are in, then samples: the limiter is configured never
 * to refuse (min size 1, error buffer 1e15), so the result depends on the seed only.
 *
 * The learner sends CHECKPOINT_REQUEST k only when it has no sample request outstanding, so a
 * snapshot holds exactly the actor steps and samples of updates 1..k (sync: steps
 * 0 .. n_prefill_steps + k - 1). Resume (start_iteration k > 0): the shard first restores its
 * snapshot of checkpoint k (replay_snapshot_restore: the same samples and limiter decisions as
 * the shard that wrote it) and, in sync mode, counts n_prefill_steps + k steps as ingested.
 *
 * R = 0 (dist.replay_shards = 0): there is no shard rank; the learner keeps the shard and feeds
 * it with the same functions (replay_server_ingest_steps / _ingest_waiting), so the sync-mode
 * result is the same as with one shard rank.
 *
 * Progress marks for the rank's watchdog (learner_dist.h): every turn of the loop and every
 * message ingested or drained; a snapshot write is not watched (the learner's deadline bounds it).
 *
 * Memory: the shard and the message buffers are allocated at start; the loop allocates nothing
 * (tested: tests/test_dist_alloc.c). */
#ifndef REPLAY_SERVER_H
#define REPLAY_SERVER_H

#include <stdint.h>

#include "common/comm/comm.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "replay/replay_rows.h"
#include "replay/replay_shard.h"

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
  int64_t start_iteration; /* > 0: resume from the snapshot of that checkpoint */
} replay_server_config;

/* Runs the shard role on ep (its role must be COMM_ROLE_REPLAY) until STOP. */
hsrl_status replay_server_run(comm *ep, const replay_server_config *cfg);

/* The actor ranks that send to shard `shard` (0-based): actor index i (rank 1 + R + i) goes to
 * shard i % R (R = 0: every actor, to the learner). Writes up to cap ranks into out, returns how
 * many there are. */
int replay_server_actors_of(int size, int n_shards, int shard, int *out, int cap);

/* The config of shard `shard` of n_shards (0: the one inside the learner) of a run:
 * replay_shard_config_from_settings, and in sync mode a limiter that never refuses (min size 1,
 * error buffer 1e15: the schedule paces inserts and samples). */
void replay_server_shard_config(replay_shard_config *c, const hsrl_settings *s, int n_shards,
                                int shard, const replay_rows_shape *shape, int64_t max_vocab,
                                uint64_t config_hash);

/* RUN_DIR/replay/shard-<shard>-step-<iteration>.h5 into out (cap bytes). */
hsrl_status replay_server_snapshot_path(char *out, size_t cap, const char *run_dir, int shard,
                                        int64_t iteration);
/* Writes sh as the snapshot of checkpoint `iteration` (creates RUN_DIR/replay; atomic). */
hsrl_status replay_server_snapshot(replay_shard *sh, const char *run_dir, int shard, int64_t iteration);

/* The credit window: messages (TRANSITIONS and sync PINGs) an actor may have sent to its replay
 * and not yet seen taken: max(dist.queue_blocks, one actor step's worth + 1). */
int64_t replay_server_window(const hsrl_settings *s);

/* Messages other than those an ingest function expects: handed to this (NULL: an error naming
 * the kind). payload holds h->bytes bytes. */
typedef hsrl_status (*replay_server_other_fn)(void *ctx, const comm_header *h, const void *payload);

/* Sync mode: ingests whole actor steps until *steps_in == upto: per step, from each of
 * actors[0..n_actors) in that order, its TRANSITIONS blocks up to its PING (the end of its step),
 * each inserted at once (the limiter must not refuse). buf (cap bytes) receives. Every message
 * taken from actor rank a is credited back (taken[a] += 1, PING {taken[a]} to a; taken has
 * comm_size entries). A missing message is HSRL_E_TIMEOUT after deadline_s naming the actor. */
hsrl_status replay_server_ingest_steps(comm *ep, replay_shard *sh, const int *actors, int n_actors,
                                       uint8_t *buf, int64_t cap, double deadline_s,
                                       int64_t *steps_in, int64_t upto, int64_t *taken,
                                       replay_server_other_fn other, void *ctx);
/* Async mode: receives the TRANSITIONS waiting from any rank while the shard's input queue has
 * room (crediting each as above), then pumps the queue into the ring as far as the limiter
 * allows; *progress |= 1 when a block came in or rows went in. Never waits for a message. */
hsrl_status replay_server_ingest_waiting(comm *ep, replay_shard *sh, uint8_t *buf, int64_t cap,
                                         double deadline_s, int64_t *taken, int *progress);
/* After STOP: receives (and drops) everything until each of n_actors actors sent its STOP. */
hsrl_status replay_server_drain_actors(comm *ep, uint8_t *buf, int64_t cap, int n_actors,
                                       double deadline_s, replay_server_other_fn other, void *ctx);

#endif
