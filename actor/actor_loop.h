/* actor_loop.h: the actor role of the distributed job (architecture.md "The distributed job":
 * Actor; issue 6 item 3; method.md section 8 "Replay of transitions").
 *
 * An actor holds B_env = env.batch simulated users (sim_env) and an act-only copy of the agent
 * with a policy version. Each step: agent_act (EXPLORE: sampled slates and the behaviour
 * log-probs of their tokens), sim_env_step, and the transitions of the users who acted appended
 * to a block of dist.block_rows rows (replay_block: narrow, zstd); a full block goes to its replay
 * (actor index i = rank - 1 - R sends to shard rank 1 + i % R; R = 0: to the learner, rank 0).
 * Flow control by credits (replay_server.h): at most replay_server_window messages not yet taken
 * by the replay; a send beyond waits (push back), meanwhile the actor keeps taking broadcasts
 * (async), credits and STOP.
 *
 * Parameters arrive by the learner's non-blocking broadcast (group 0: every actor); the first
 * one (version 0, or on resume the checkpoint's last broadcast) is taken before the first step.
 * Async mode: between steps a finished broadcast is swapped in; the actor waits only when the
 * learner's version (announced by PING messages from the learner) is ahead of its own by more
 * than dist.max_lag (0: never). Sync mode (dist.sync): step j uses exactly version
 * learner_dist_sync_version(s, j) (waiting for it, never swapping earlier), flushes its partial
 * block at the end of every step and marks the step's end with a PING {int64 j} to its replay, so
 * the replay ingests whole steps in a fixed order.
 *
 * Random streams and restarts: the environment (seed hsrl_rng_derive(hsrl_rng_derive(train seed,
 * env purpose), key), stream 1 + i) and the acting stream (act purpose, same keying) are created
 * with key = opt->start_iteration (0 for a new run; the checkpoint's iteration on resume: the run
 * then starts with step n_prefill + key), and in sync mode re-created with key c before step
 * n_prefill + c for every checkpoint boundary c = m * train.checkpoint_every > key, exactly as a
 * run resumed from checkpoint c starts: so a resumed sync run is bit-identical to an
 * uninterrupted one (learner_dist.h). Independent of timing and of the number of actors.
 *
 * Every 16 steps a STATS message (learner_dist_actor_stats) goes to the learner (try once:
 * metrics only). On STOP from the learner: sends STOP to its replay and returns. A silent learner
 * is an error after opt->deadline_s (default 60 s): waiting for a policy version (sync, max_lag),
 * a replay that takes nothing, or in async mode no broadcast and no PING for that long (a dead
 * learner: MPI buffers an actor's sends, so they do not block). Progress marks for the rank's
 * watchdog (learner_dist.h): every step and every message sent to the replay.
 *
 * Memory: everything is allocated before the first step; a step allocates nothing (tested:
 * tests/test_dist_alloc.c), except the environment re-created at a sync checkpoint boundary. */
#ifndef ACTOR_LOOP_H
#define ACTOR_LOOP_H

#include <stdint.h>

#include "common/comm/comm.h"
#include "common/hsrl_status.h"
#include "learner/learner_dist.h"
#include "learner/learner_train.h"

/* Runs the actor role on ep (role COMM_ROLE_ACTOR) with the run's options until STOP. */
hsrl_status actor_loop_run(comm *ep, const learner_train_options *opt);

#endif
