/* learner_train.h: the single-process training loop of `hsrl train` (method.md section 8
 * "Defaults from the reference training"; reference-hsrl.md sections 7.3-7.6 and 8, OfflineSLAgent;
 * architecture.md "Files a user sees": runs/<name>/ckpt/step-<n>.h5, metrics.tsv).
 *
 * Inputs, all named by the effective config: the prepared-data file (run.data), the click model
 * the agent learns in (run.sim_train: the simulator trained on the TRAIN split; empty: the
 * synthetic world's ground truth stored in a synthetic data file), and for the HSRL agent the SID
 * file (run.sid). agent.kind chooses the agent (hsrl | sl; for sl, agent.item_id_embedding and
 * agent.sl_source). Users start from the train split's records.
 *
 * Schedule, replay agents (HSRL; SL with agent.sl_source = replay):
 *   prefill   exploratory env steps of B_env users (agent_act EXPLORE) until train.learning_starts
 *             transitions are in the ring (no updates; not counted as iterations);
 *   iteration one env step of B_env users (EXPLORE), its transitions pushed (s, a, tokens, logp,
 *             clicks, r, done, s' of the users who acted), then one update on a batch of
 *             train.batch transitions sampled uniformly with replacement.
 * SL from logged data (agent.sl_source = records, the paper's SL row): each iteration draws train.batch
 * records of the train split (epochs in a shuffled order, reshuffled per epoch) and updates on
 * their logged slates and clicks; the environment is still stepped once per iteration with GREEDY
 * slates, only for the training curve (no ring). Early stopping (agent.sl_val_fraction > 0): each
 * train user's latest share of train records (sim_holdout.h, the simulator's rule) is held out and
 * never fitted; every agent.sl_val_every updates their mean BCE is computed (inference mode) and
 * offered to the agent, which keeps the parameters of the lowest (agent_sl_offer_heldout); the
 * checkpoints carry that copy, and learner_train_load_policy (hsrl eval, hsrl run) acts with it.
 * metrics.tsv then ends with a column heldout_loss (the latest such loss; nan before the first).
 * Replay agents with train.val_every > 0 validate their greedy policy in the training environment
 * every val_every updates and after the last (learner_select.h: train-split users, the same
 * episodes each time, nothing drawn from the training streams); the checkpoints carry the
 * parameters of the best validation and learner_train_load_policy acts with them; metrics.tsv
 * then ends with a column val_reward (the latest validation's mean Total Reward; nan before the
 * first).
 * Every train.report_every iterations a row of metrics.tsv; every train.checkpoint_every
 * iterations and after the last one a checkpoint. A non-finite loss or gradient norm stops the
 * run (HSRL_E_INTERNAL naming the iteration) without writing a checkpoint, so the last good one
 * stays the newest.
 *
 * metrics.tsv (tab-separated, a header row, one row per report; means over the interval):
 *   iteration  seconds  user_steps  user_steps_per_s  updates_per_s  critic_loss  actor_loss
 *   entropy  bc_loss  advantage  value  td_target  grad_norm  [mlc_w0 .. mlc_wL]  episodes
 *   total_reward  depth  replay_size  [heldout_loss]  [val_reward]
 * (episodes: training episodes finished in the interval; total_reward / depth: their means, nan
 * when none finished; mlc_w columns only for agents with a multi-level critic.)
 *
 * Checkpoints (HDF5, written to a temporary name and renamed: a file under its final name is
 * complete): stamp kind "checkpoint" (LEARNER_TRAIN_CKPT_VERSION, the config hash); root attributes
 * iteration and config (the effective INI text: it names the inputs and the agent); the agent's
 * tables with optimiser state (agent save); learner/ring
 * (the replay ring, all of it), learner/rng/{act,sample} (Philox stream states),
 * learner/records (epoch, position of the SL record order, the latest held-out loss), learner/metrics (the open report
 * interval's sums), learner/env (the iteration the environment was started at), learner/selected
 * (train.val_every: the best-validated policy parameters, learner_select.h).
 *
 * Exact resume. Every random stream is restored, but the environment (its users, tempers and
 * click stream) is not saved: instead the loop restarts the environment at every
 * checkpoint_every boundary, with seed hsrl_rng_derive(env seed, iteration), in an
 * uninterrupted run as in a resumed one. So a run resumed from a checkpoint at a boundary gives
 * bit-identical updates, losses and metrics to the uninterrupted run (tested). The price: the
 * episodes in progress at a boundary (B_env of them every checkpoint_every iterations) are cut
 * off; their transitions stay in the ring with done = 0 (their s' is valid, so the TD target
 * bootstraps correctly), and they are not counted as finished episodes.
 *
 * Memory: everything is allocated by learner_train_open; learner_train_step allocates nothing
 * (tested with hsrl_alloc_count) except when it writes a checkpoint or validates (train.val_every).
 *
 * Stopping on a signal. learner_train_stop_on_signals (called by `hsrl train`) makes SIGTERM and
 * SIGINT a stop request: learner_train_run finishes the update in progress, writes a checkpoint
 * of that iteration (unless it just wrote one), logs "stopped by SIGTERM at iteration N ..." and
 * returns HSRL_OK with learner_train_stop_signal() = the signal; `hsrl train` then exits with
 * 128 + signal (143 for SIGTERM, 130 for SIGINT), so a script can tell "stopped, resumable" from
 * "done" (0). A second signal kills at once (the handler is one-shot). Resuming from a checkpoint
 * written this way is valid but exact only when it lies on a train.checkpoint_every boundary
 * (the environment restarts at the resumed iteration, see "Exact resume"). The progress line of a
 * resumed run counts only the iterations done by this process (its rate is this process's).
 *
 * Checkpoints of a distributed run (learner_dist.h: group learner/dist, no learner/ring) are
 * refused by the single-process resume with a message saying so, and vice versa. */
#ifndef LEARNER_TRAIN_H
#define LEARNER_TRAIN_H

#include <stdint.h>

#include "common/hsrl_config.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "learner/agents/agent.h"
#include "sim/sim_click_adapters.h"
#include "sim/sim_click_model.h"
#include "sim/sim_data.h"
#include "sim/sim_eval.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_sid_index.h"
#include "sim/sim_sid_trie.h"
#include "sim/sim_synth.h"
#include "sim/sim_urm.h"

#define LEARNER_TRAIN_CKPT_KIND "checkpoint"
/* 2: the inputs and the agent's kind are config keys ([run] data, sim_train, sim_all, sid;
 * [agent] kind, item_id_embedding, sl_source), no longer root attributes of their own. */
#define LEARNER_TRAIN_CKPT_VERSION 2
#define LEARNER_PATH_MAX 512

/* Called after every update with the 1-based iteration and the update's figures. */
typedef void (*learner_train_update_fn)(void *ctx, int64_t iteration, const agent_stats *st);

typedef struct learner_train_options {
  hsrl_settings settings;           /* the effective config (it names the inputs) */
  char run_dir[LEARNER_PATH_MAX];   /* "" = run.out_dir/run.name */
  int resume;                       /* 1: continue from run_dir's newest complete checkpoint,
                                       whose config must equal settings except for the fields
                                       learner_train_resume_may_change accepts */
  int quiet;                        /* 1: no progress display */
  learner_train_update_fn on_update;
  void *on_update_ctx;
  double deadline_s;                /* distributed job: longest wait for a peer, seconds
                                       (0: LEARNER_DIST_DEADLINE_S); `hsrl train --deadline` */
  int64_t start_iteration;          /* distributed job: filled by learner_dist_run for its roles,
                                       the checkpoint resumed from (0: a new run) */
} learner_train_options;

typedef struct learner learner;

/* Loads the inputs, builds the environment, agent and ring, creates the run directory (writes
 * config.ini and the metrics.tsv header) or, with opt->resume, restores the newest complete
 * checkpoint and truncates metrics.tsv to its iteration. Errors name the file and field.
 * Process setup (OpenBLAS threads, nn_threads.h) is the caller's. */
hsrl_status learner_train_open(learner **out, const learner_train_options *opt);
void learner_train_close(learner *L); /* NULL ok */

/* Prefill (replay agents): exploratory steps until learning_starts transitions; a no-op otherwise
 * or when the ring already holds them. */
hsrl_status learner_train_prefill(learner *L);
/* One iteration (env step + update), then the report row and checkpoint when due. */
hsrl_status learner_train_step(learner *L);
/* Iterations done so far (the next step is iteration + 1) and the target (train.iterations). */
int64_t learner_train_iteration(const learner *L);
int64_t learner_train_iterations(const learner *L);
agent *learner_train_agent(learner *L);
const char *learner_train_run_dir(const learner *L);
/* Writes runs/<name>/ckpt/step-<iteration>.h5 now. */
hsrl_status learner_train_checkpoint(learner *L);

/* open, prefill, steps until train.iterations (checkpointing as configured, and at the end),
 * close. */
hsrl_status learner_train_run(const learner_train_options *opt);

/* The newest complete checkpoint of run_dir (runs/<name>/ckpt/step-<n>.h5 with the largest n)
 * into path (cap bytes) and its iteration; HSRL_E_INPUT when there is none. */
hsrl_status learner_train_latest_checkpoint(const char *run_dir, char *path, size_t cap,
                                            int64_t *iteration);
/* The effective config stored in a checkpoint file, and its iteration. */
hsrl_status learner_train_checkpoint_info(const char *path, hsrl_settings *s, int64_t *iteration);

/* ---- shared with the distributed learner (learner_dist.c) ---- */

/* Installs the one-shot SIGTERM/SIGINT handlers that request a stop (see above). */
void learner_train_stop_on_signals(void);
/* What the handler does (tests call it): records signo (> 0) as the stop request; 0 clears it. */
void learner_train_request_stop(int signo);
/* 0, or the signal that requested a stop. */
int learner_train_stop_signal(void);
/* 0, or the signal that ended a run before train.iterations (after its checkpoint was written):
 * set by learner_train_run and the distributed learner, read by `hsrl train` for its status. */
int learner_train_stopped(void);
void learner_train_set_stopped(int signo); /* 0 clears */
/* "SIGTERM", "SIGINT" or "signal N". */
const char *learner_train_signal_name(int signo);

/* HSRL_E_USAGE naming the first differing field when s differs from the config stored in the
 * open checkpoint f (path for messages) in anything learner_train_resume_may_change does not
 * allow. */
hsrl_status learner_train_check_resume_config(io_h5 *f, const char *path, const hsrl_settings *s);
/* Keeps the header and the rows of iterations <= upto of metrics.tsv at path (absent: nothing to
 * do); *last_seconds (may be NULL) = the seconds column of the last row kept (0 if none). */
hsrl_status learner_train_metrics_truncate(const char *path, int64_t upto, double *last_seconds);
/* Writes run_dir/config.ini (the effective config with help comments), atomically. */
hsrl_status learner_train_write_config(const char *run_dir, const hsrl_settings *s);
/* Creates a directory and its parents. */
hsrl_status learner_train_mkdirs(const char *path);

/* 1 if a config field may differ between a checkpoint and the run that resumes it:
 * train.iterations (a run may be extended), run.blas_threads, and the paths (PATH fields: files
 * may have moved; what they hold is the user's responsibility). Everything else must be equal. */
int learner_train_resume_may_change(const hsrl_config_field *f);

/* The config hash with every field learner_train_resume_may_change allows to change set to its
 * default: what files that must survive a resume (replay blocks and snapshots) are stamped with. */
uint64_t learner_train_resume_hash(const hsrl_settings *s);

/* What a run reads: the dataset, the click model (the learned simulator of a given file through
 * an adapter, or the synthetic world's ground truth stored in the data file) and, for the HSRL
 * agent, the SID file with its index and trie. */
typedef struct learner_world {
  sim_dataset data;
  sim_synth_world synth;
  int has_synth;
  sim_urm *urm;
  sim_click_adapters_urm *adapter;
  sim_click_model model;
  sim_sid_file sid;
  sim_sid_index index;
  sim_sid_trie trie;
  int has_sid;
} learner_world;

/* Loads s->run.data, the click model from sim_path (s->run.sim_train for training,
 * s->run.sim_all for evaluation; "": the world stored in the data file; max_batch rows per
 * simulator call) and, when s->agent.kind is hsrl, s->run.sid. On error w is left empty. */
hsrl_status learner_train_world_load(learner_world *w, const hsrl_settings *s, const char *sim_path,
                                     int64_t max_batch);
void learner_train_world_free(learner_world *w); /* NULL ok; leaves it zeroed */

/* Builds the agent of s->agent.kind for the world and settings (max_batch rows per call,
 * parameters from seed; act_only: an HSRL copy for acting only). w must outlive the agent.
 * HSRL: agent_hsrl_config_defaults, then explore_temp, critic_to_actor and grad_clip from the
 * [agent] keys. A config the agent cannot be built from is HSRL_E_USAGE naming the field. */
hsrl_status learner_train_make_agent(agent **out, const hsrl_settings *s, const learner_world *w,
                                     int64_t max_batch, uint64_t seed, int act_only);

/* The policy of a checkpoint, for evaluation: the agent of s (an act-only copy) with the tables of
 * the checkpoint at path, acting with the parameters it kept for evaluation when it kept any (those
 * of the best validation, learner_select.h; SL's of its best held-out loss, agent_use_best). On
 * failure *out is NULL. */
hsrl_status learner_train_load_policy(agent **out, const hsrl_settings *s, const learner_world *w,
                                      int64_t max_batch, const char *path);
/* The same, or (LEARNER_POLICY_LAST, hsrl eval --last) acting with the last parameters. */
typedef enum learner_policy_which { LEARNER_POLICY_KEPT = 0, LEARNER_POLICY_LAST = 1 } learner_policy_which;
hsrl_status learner_train_load_policy_as(agent **out, const hsrl_settings *s, const learner_world *w,
                                         int64_t max_batch, const char *path, learner_policy_which which);

/* a as a policy of sim_eval.h (hsrl eval, hsrl run, validation): greedy slates (agent_act
 * GREEDY: no random draws); ctx is a, whose max_batch must cover the env's batch. */
sim_eval_policy learner_train_greedy_policy(agent *a, const char *name);

#endif
