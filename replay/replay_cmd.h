/* replay_cmd.h: the `hsrl replay` command (architecture.md "Commands": hsrl replay inspect FILE).
 *
 *   hsrl replay inspect FILE [--rows N]    summary of a replay shard snapshot (replay_snapshot.h):
 *       format and config hash, layout, counts (held, inserted, sampled, samples per insert),
 *       limiter state and waits, the queue, per-field min / mean / max, click rate, done rate,
 *       reward mean, policy versions and lag (newest version held minus a row's), stored bytes
 *       per transition, and the N oldest transitions held, decoded (default 3)
 *   hsrl replay --help, hsrl replay inspect --help
 * Exit status: 0 ok, 2 usage error or a bad / corrupt / missing file (the message, prefixed
 * "hsrl replay inspect: ", names the file and the object), 1 internal failure. */
#ifndef REPLAY_CMD_H
#define REPLAY_CMD_H

/* argv[0] is "replay". Returns an exit status. */
int replay_command(int argc, char **argv);

#endif
