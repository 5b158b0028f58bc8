/* actor_loop.h: the actor role of the distributed job (architecture.md "The distributed job":
 * Actor; issue 6 item 3; method.md section 8 "Replay of transitions").
 *
 * An actor holds B_env = env.batch simulated users (sim_env) and an act-only copy of the agent
 * with a policy version. Each step: agent_act (EXPLORE: sampled slates and the behaviour
 * log-probs of their tokens), sim_env_step, and the transitions of the users who acted appended
 * to a block of dist.block_rows rows (replay_block: narrow, zstd); a full block goes to its replay
 * shard (actor index i = rank - 1 - R sends to rank 1 + i % R; R = 0: to the learner) with push
 * back (a full shard makes the send wait; meanwhile the actor keeps taking broadcasts and STOP).
 *
 * Parameters arrive by the learner's non-blocking broadcast (group 0: every actor); version 0 is
 * the learner's initial policy, taken before the first step. Async mode: between steps a finished
 * broadcast is swapped in; the actor waits only when the learner's version (announced by PING
 * messages from the learner) is ahead of its own by more than dist.max_lag (0: never).
 * Sync mode (dist.sync): step j uses exactly version learner_dist_sync_version(s, j) (waiting for
 * it, never swapping earlier), flushes its partial block at the end of every step and marks the
 * step's end with a PING {int64 j} to its shard, so the shard ingests whole steps in a fixed
 * order. Random streams: environment seed hsrl_rng_derive(run.seed, env purpose), stream 1 + i;
 * acting stream (act purpose, 1 + i): independent of timing and of the number of actors.
 * Every 16 steps a STATS message (learner_dist_actor_stats) goes to the learner (try once: metrics only).
 * On STOP from the learner: sends STOP to its shard and returns.
 *
 * Memory: everything is allocated before the first step; a step allocates nothing. */
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
