/* learner_cmd.h: the `hsrl train` and `hsrl eval CONFIG --checkpoint FILE` commands
 * (architecture.md "Commands" and "Config"; method.md sections 8-9).
 *
 *   hsrl train CONFIG [--set s.k=v]... [--data F] [--sim-train F] [--sim-all F] [--sid F]
 *              [--agent hsrl|sl] [--item-id-embedding] [--replay] [--quiet] [--deadline S]
 *   hsrl train [CONFIG] --resume RUN_DIR [--set s.k=v]... [input flags] [--deadline S]
 *   hsrl eval  [CONFIG] --checkpoint FILE [--episodes E] [--seeds S] [--batch B] [--seed N]
 *              [--data F] [--sim-all F | --world] [--sid F] [--json OUT] [--set s.k=v]...
 *
 * Runs are driven by the effective config (hsrl_settings_load: defaults < CONFIG < --set). Its
 * [run] data, sim_train, sim_all, sid name the inputs and [agent] kind, item_id_embedding,
 * sl_source the agent. The input flags are shorthands for overrides, applied in command-line
 * order among the --set arguments: --data F = --set run.data=F, --sim-train F = run.sim_train,
 * --sim-all F = run.sim_all, --sid F = run.sid, --agent A = agent.kind=A, --item-id-embedding =
 * agent.item_id_embedding=true, --replay = agent.sl_source=replay; so the stored config says what
 * was run. Relative paths: in CONFIG relative to CONFIG's directory, on the command line to the
 * working directory; the effective config holds them absolute (hsrl_settings.h "Paths").
 * Both commands apply run.blas_threads (nn_threads_configure: OPENBLAS_NUM_THREADS, when set,
 * wins) right after loading the config.
 *
 * train: learner_train.h's loop in run.out_dir/run.name/, or under mpirun/srun with >= 2 ranks
 * the distributed job (learner_dist.h; --deadline S: how long a rank waits for a peer, default
 * 60 s). SIGTERM/SIGINT stop it after a checkpoint (learner_train.h "Stopping on a signal"): exit
 * status 128 + signal (143, 130). The effective config is stored in
 * config.ini and every checkpoint, so --resume needs nothing else: the config is the
 * checkpoint's (or CONFIG's) plus --set, and may differ from the checkpoint's only where
 * learner_train_resume_may_change allows (train.iterations, run.blas_threads, file paths).
 * eval: the agent of the checkpoint (built from the checkpoint's own config) acts greedily in the
 * environment of the simulator trained on ALL records, users from the TEST split, E episodes per
 * seed, S seeds (sim_eval.h, method.md section 9). Environment and evaluation settings ([env],
 * [eval], run.seed) come from CONFIG (+ --set), or from the checkpoint's config (+ --set) when
 * CONFIG is absent; so do run.data, run.sid and run.sim_all, each falling back to the
 * checkpoint's when empty; run.sim_all empty in both, or --world: the synthetic world's ground
 * truth. E may be smaller than the env batch (rows without a user idle; sim_env.h). Prints the
 * table and writes eval.json into the run directory (the parent of the checkpoint's ckpt/
 * directory) or to --json OUT.
 *
 * Both return an exit status: 0 ok, 2 usage or input error (the message names the file and
 * field), 1 internal failure; train also 128 + signal when a signal stopped it. */
#ifndef LEARNER_CMD_H
#define LEARNER_CMD_H

#include "learner/learner_dist.h"

/* `hsrl train ...`; argv[0] is "train". */
int learner_train_command(int argc, char **argv);
/* The actor role for `hsrl train` under mpirun (actor_loop_run; set by hsrl.c, which sits above
 * actor/ and learner/). Without it a multi-rank train is an internal error. */
void learner_cmd_set_actor_role(learner_dist_actor_fn fn);

/* `hsrl eval ...`; argv[0] is "eval". Without --checkpoint it forwards to sim_eval_command (the
 * reference policies). */
int learner_eval_command(int argc, char **argv);

#endif
