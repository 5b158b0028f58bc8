/* learner_dist.h: the learner role of the distributed job and the launcher of all roles
 * (architecture.md "The distributed job"; issue 6 items 2, 5, 6, 7).
 *
 * Ranks: 0 learner, 1..R replay shards (dist.replay_shards), the rest actors. R = 0: no shard
 * ranks; the learner keeps the replay (a replay_shard fed by replay_server_ingest_*) and the
 * actors send their blocks to it. learner_dist_run opens the transport (MPI under mpirun, else
 * in-process with one thread per role) and runs on each local endpoint its role: the learner
 * (below), replay_server_run, or the actor function the caller passes (actor/ sits above
 * learner/, so it is handed in). Every wait for a peer has a deadline (opt->deadline_s, default
 * LEARNER_DIST_DEADLINE_S): a dead or stuck rank becomes an error naming it, never a hang. A
 * learner that fails sends STOP to every peer (best effort) so they end at once; under MPI a
 * process whose role failed meets the others at a short barrier before closing, and leaves
 * without MPI_Finalize (which could wait forever for a dead peer) when not all of them come.
 * The safety net: every role runs under a watchdog (common/hsrl_watchdog.h) with a limit of
 * 2 x the deadline, bound to the role's thread; the roles' loops (this file, actor_loop.c,
 * replay_server.c) mark progress at every step, update phase and message, disarm it around local
 * file writes that wait for no peer (checkpoint file, replay snapshot), and under MPI it also
 * watches the close (barrier, comm_world_free); an in-process role disarms it when it returns.
 * It ends a rank whose loop stopped turning with a one-line error and status 1.
 *
 * Learner: broadcasts its policy (version 0, or on resume the last broadcast of the checkpoint)
 * to the actors, then for update k = 1..N (train.iterations): requests batches from every shard
 * one update ahead (shard r serves rows [r*B/R, (r+1)*B/R) of the batch of B = train.batch;
 * R = 0: samples its own shard), receives them in shard order, turns them into an agent_batch
 * (pointer copies, the behaviour log-probs included, so the agent can weight the policy gradient
 * with clipped importance ratios), agent_learn, and every dist.broadcast_every updates
 * broadcasts the actor's flat parameter vector (version k) from a copy (comm_bcast_*). Async: a
 * broadcast still in flight at a boundary is skipped (the next one carries newer parameters) and
 * a PING announces version k to the actors (for dist.max_lag); sync: the learner waits for it.
 * metrics.tsv every train.report_every updates; checkpoints every train.checkpoint_every updates
 * and at the end; then STOP to every peer (R = 0: and it drains its actors' STOPs). A non-finite
 * loss stops like learner_train. A stop request (SIGTERM/SIGINT, learner_train.h) ends the run
 * after the update in progress with a checkpoint of it (learner_train_stopped() = the signal).
 *
 * Checkpoint k, a consistent cut: the learner sends no sample request beyond k before it (the
 * one-ahead request waits until after the checkpoint), asks every shard for its snapshot
 * RUN_DIR/replay/shard-<r>-step-<k>.h5 (R = 0: writes its own shard-0), waits for all, then
 * writes ckpt/step-<k>.h5 atomically: so step-<k>.h5 exists only when its cut is complete. It is
 * the single-process format (kind, version, iteration, config, the agent's tables with optimiser
 * state and its update count, from which its dropout keys derive: hsrl eval reads it) plus
 * learner/dist (attributes replay_shards, actors, sync, prefill_steps, policy_version; dataset
 * policy: the parameters of the last broadcast, version policy_version) and
 * learner/metrics/interval_sums (the open report interval). No wall-clock time is stored, so two
 * sync runs write identical files. The learner role draws no random numbers of its own: the
 * sampling streams are in the shards' snapshots, the acting streams are rekeyed on restart.
 *
 * Resume (opt->resume; `hsrl train --resume RUN_DIR` under mpirun): every rank reads the newest
 * complete checkpoint first and refuses, before any rank starts its role (so all exit 2), a
 * config that differs in anything learner_train_resume_may_change does not allow (another
 * dist.replay_shards is named), a single-process checkpoint, a missing shard snapshot, and in sync
 * mode another number of actors. Then the learner restores the agent, the metrics interval and
 * the broadcast (stale temporaries of a killed writer are removed), the shards restore their
 * snapshots, the actors restart from the broadcast parameters with fresh environments and acting
 * streams keyed by (seed, purpose, actor index, resume iteration k), and metrics.tsv keeps its
 * rows up to k.
 *
 * Sync schedule (dist.sync = true): n_prefill = learner_dist_prefill_steps actor steps, then actor
 * step j = n_prefill + k - 1 feeds update k and acts with version learner_dist_sync_version(j):
 * the newest broadcast version <= k - 1 (0 during prefill). Shards insert step by step, actors in
 * rank order, and serve batch k only after step n_prefill + k - 1; every stream is keyed by
 * (seed, purpose, role index). So the result does not depend on timing or transport (tested:
 * in-process threads and mpirun give bit-identical checkpoints). At every checkpoint boundary
 * c = m * train.checkpoint_every the actors restart their environments and acting streams with
 * key c before step n_prefill + c, as a run resumed from checkpoint c does: so an interrupted and
 * resumed sync run is bit-identical to an uninterrupted one (tested with h5diff), when it resumes
 * from a boundary (a checkpoint written on a stop request elsewhere resumes validly, not exactly).
 * The price, as in learner_train.h: the episodes in progress at a boundary are cut off.
 *
 * metrics.tsv columns: iteration seconds updates_per_s actor_steps_per_s user_steps_per_s
 * replay_inserts_per_s replay_samples_per_s critic_loss actor_loss entropy bc_loss advantage value
 * td_target grad_norm [mlc_w0..] episodes total_reward depth lag_min lag_mean lag_max
 * replay_size sample_waits insert_waits queue_full (episodes and user steps from the actors'
 * STATS; lag = k - behaviour policy version of the sampled rows; replay counters summed over
 * shards; seconds continue across resumes from the last row kept).
 *
 * Memory: everything is allocated before the first update; an update (gather, learn, broadcast,
 * report) allocates nothing; checkpoints do (tested: tests/test_dist_alloc.c). */
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
#define LEARNER_DIST_DEADLINE_S 60.0 /* default of learner_train_options.deadline_s */

/* payload of an actor's STATS message to the learner (totals since the actor started) */
typedef struct learner_dist_actor_stats {
  double steps, user_steps, episodes, episode_reward, episode_depth, version, seconds;
} learner_dist_actor_stats;

typedef hsrl_status (*learner_dist_actor_fn)(comm *ep, const learner_train_options *opt);

/* opt->deadline_s, or LEARNER_DIST_DEADLINE_S when it is 0. */
double learner_dist_deadline(const learner_train_options *opt);

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
