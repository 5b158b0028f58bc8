/* learner_dist.h: the learner role of the distributed job and the launcher of all roles
 * (architecture.md "The distributed job"; issue 6 items 2, 5, 6).
 *
 * Ranks: 0 learner, 1..R replay shards (dist.replay_shards, R >= 1 here), the rest actors.
 * learner_dist_run opens the transport (MPI under mpirun, else in-process with one thread per
 * role) and runs on each local endpoint its role: the learner (below), replay_server_run, or the
 * actor function the caller passes (actor/ sits above learner/, so it is handed in).
 *
 * Learner: broadcasts version 0 (its initial policy) to the actors, then for update k = 1..N
 * (train.iterations): requests batches from every shard one update ahead (shard r serves rows
 * [r*B/R, (r+1)*B/R) of the batch of B = train.batch), receives them in shard order, turns them
 * into an agent_batch (pointer copies), agent_learn, and every dist.broadcast_every updates
 * broadcasts the actor's flat parameter vector (version k) from a copy (comm_bcast_*). Async: a
 * broadcast still in flight at a boundary is skipped (the next one carries newer parameters) and
 * a PING announces version k to the actors (for dist.max_lag); sync: the learner waits for it.
 * metrics.tsv every train.report_every updates, checkpoints (the agent and, from every shard,
 * RUN_DIR/replay/shard-<r>.h5, same iteration: a consistent cut) every train.checkpoint_every
 * updates and at the end; then STOP to every peer. A non-finite loss stops like learner_train.
 *
 * Sync schedule (dist.sync = true): n_prefill = learner_dist_prefill_steps actor steps, then actor
 * step j = n_prefill + k - 1 feeds update k and acts with version learner_dist_sync_version(j):
 * the newest broadcast version <= k - 1 (0 during prefill). Shards insert step by step, actors in
 * rank order, and serve batch k only after step n_prefill + k - 1; every stream is keyed by
 * (seed, purpose, role index). So the result does not depend on timing or transport (tested:
 * in-process threads and mpirun give bit-identical checkpoints).
 *
 * metrics.tsv columns: iteration seconds updates_per_s actor_steps_per_s user_steps_per_s
 * replay_inserts_per_s replay_samples_per_s critic_loss actor_loss entropy bc_loss advantage value
 * td_target grad_norm [mlc_w0..] episodes total_reward depth lag_min lag_mean lag_max
 * replay_size sample_waits insert_waits queue_full (episodes and user steps from the actors'
 * STATS; lag = k - behaviour policy version of the sampled rows; replay counters summed over
 * shards). Checkpoints use the single-process format's kind and version (hsrl eval reads them);
 * they hold the agent's tables, iteration and config, not a ring (the shards' snapshots do):
 * --resume of a distributed run is not implemented yet. */
#ifndef LEARNER_DIST_H
#define LEARNER_DIST_H

#include <stdint.h>

#include "common/comm/comm.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "learner/learner_train.h"
#include "replay/replay_rows.h"

/* Purposes of derived seeds, shared with learner_train.c (the same initial agent). */
#define LEARNER_DIST_PURPOSE_AGENT 0x4a01
#define LEARNER_DIST_PURPOSE_ENV 0x4a02
#define LEARNER_DIST_PURPOSE_ACT 0x4a03
#define LEARNER_DIST_DEADLINE_S 60.0

/* payload of an actor's STATS message to the learner (totals since the actor started) */
typedef struct learner_dist_actor_stats {
  double steps, user_steps, episodes, episode_reward, episode_depth, version, seconds;
} learner_dist_actor_stats;

typedef hsrl_status (*learner_dist_actor_fn)(comm *ep, const learner_train_options *opt);

/* Ranks in this job when launched by mpirun/srun (0 when not). */
int learner_dist_launched_size(void);

/* transport INPROC with n_ranks endpoints (threads), or MPI (n_ranks ignored). */
hsrl_status learner_dist_run(const learner_train_options *opt, comm_transport transport, int n_ranks,
                             learner_dist_actor_fn actor_fn);

/* Sync schedule: actor steps before update 1: ceil(learning_starts / (n_actors * env.batch)), >= 1. */
int64_t learner_dist_prefill_steps(const hsrl_settings *s, int64_t n_actors);
/* Sync schedule: the policy version actor step j acts with. */
int64_t learner_dist_sync_version(const hsrl_settings *s, int64_t n_prefill, int64_t j);

/* The replay row shape and largest SID vocabulary of the world (the agent's tokens). */
void learner_dist_shape(const learner_world *w, const hsrl_settings *s, replay_rows_shape *shape,
                        int64_t *max_vocab);
/* The click model path learner_train_open uses (env.model = world: the data file's world). */
const char *learner_dist_sim_path(const hsrl_settings *s);

#endif
