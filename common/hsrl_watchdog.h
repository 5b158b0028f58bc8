/* hsrl_watchdog.h: the per-rank watchdog of the distributed job, the safety net behind the
 * deadlines (docs/cluster.md "Faults"; learner_dist.h).
 *
 * Every wait for a peer has a deadline (comm.h), so a role whose loop has not advanced for much
 * longer than one deadline is stuck in a call that never returns (an MPI call on a dead peer) or
 * in a loop that does not look at the clock: a bug that would otherwise hang the job. A watchdog
 * is a thread of its own that ends the process then, with one line on stderr and the status of a
 * deadline error (hsrl_status_exit_code(HSRL_E_TIMEOUT) = 1):
 *
 *   [hsrl 2/actor] error: rank 2 (actor): watchdog: no progress for 6.12 s (limit 6 s); last
 *   progress: actor: step; since then in comm_bcast_free (peer rank 0); exiting
 *
 * Use: learner_dist_run starts one per role (limit 2 x the deadline) and the role's thread binds
 * it; the role's loops then mark progress without knowing about it, and the transport (comm.c)
 * notes which call it is in:
 *
 *   hsrl_watchdog *wd = hsrl_watchdog_start("rank 2 (actor)", 2 * deadline_s);
 *   hsrl_watchdog_bind(wd);                        (in the thread that runs the role)
 *   for (...) { hsrl_watchdog_mark("actor: step"); ... }
 *   hsrl_watchdog_disarm("actor: done");            (a finished role is not watched)
 *   hsrl_watchdog_stop(wd);
 *
 * A watchdog starts disarmed: the first mark arms it (setup before the main loop is not watched),
 * hsrl_watchdog_disarm() stops the clock until the next mark (long local work that waits for no
 * peer, e.g. writing a checkpoint file). The contract for callers: between two marks, every wait
 * for a peer is bounded by one deadline, so in a healthy run the gap stays well below the limit.
 *
 * Cost: a mark is one clock read and two relaxed atomic stores; a note two stores; both read a
 * thread-local pointer and do nothing in a thread that has no watchdog bound (single-process
 * training, tools, tests). Nothing allocates after start. Stage and call names must be string
 * literals (they are kept as pointers). The watchdog thread reads them without a lock: a note
 * racing with the firing may pair a call with the peer of the previous one; a stuck thread
 * changes neither. */
#ifndef HSRL_WATCHDOG_H
#define HSRL_WATCHDOG_H

typedef struct hsrl_watchdog hsrl_watchdog;

/* Starts the watchdog's thread, disarmed. who names the rank in the message ("rank 2 (actor)";
 * copied); limit_s > 0. Checks every limit_s / 8 (at most every 0.25 s). A failure to create the
 * thread is a bug (checked). */
hsrl_watchdog *hsrl_watchdog_start(const char *who, double limit_s);
/* Stops and joins the thread, frees wd, and unbinds the calling thread if it was bound to wd.
 * Threads bound to wd must not mark it afterwards. NULL is a no-op. */
void hsrl_watchdog_stop(hsrl_watchdog *wd);

/* The calling thread's marks and notes go to wd from now on (NULL: nowhere). */
void hsrl_watchdog_bind(hsrl_watchdog *wd);

/* Progress of the calling thread's watchdog: restarts its clock and arms it. stage: what the
 * role does from here ("learner: update"). No-op without a bound watchdog. */
void hsrl_watchdog_mark(const char *stage);
/* Disarms the calling thread's watchdog until the next mark; stage says why. */
void hsrl_watchdog_disarm(const char *stage);
/* The transport call the calling thread is in (call = NULL: none) and its peer rank (-1: none).
 * Not progress. */
void hsrl_watchdog_note(const char *call, int peer);

#endif
