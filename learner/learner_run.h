/* learner_run.h: `hsrl run CONFIG`, the whole pipeline in one command (architecture.md "Commands";
 * method.md sections 2-9): prepare the data, learn the simulators, build the Semantic IDs, train
 * the agent and its baselines, evaluate them all, print one table. A stage whose output is
 * current is skipped, so running the same command again costs a few checksums.
 *
 *   hsrl run CONFIG [--set section.key=value]... [--force STAGE|all]... [--dry-run] [--quiet]
 *
 * Stages, in order (a stage whose file key is empty is left out):
 *   data       run.data. data.format = synth: the synthetic world of [synth] (with data.slate_size
 *              and data.history_len; sim_synth_config_from_settings); otherwise the files in
 *              data.input read by the data.format reader (`hsrl data prepare`).
 *   sim-train  run.sim_train: the user-response model fitted on the train split ([sim], run.seed;
 *              `hsrl sim train --split train`).
 *   sim-all    run.sim_all: the same fitted on every record, the evaluation simulator.
 *   sid        run.sid: Semantic IDs ([sid], run.seed) of the sim-train model's item vectors
 *              (sid.vectors = sim) or of the raw features (`hsrl sid build`).
 *   train      out_dir/name: agent.kind trained in env.model's click model (learner_train.h).
 *   baselines  out_dir/name-<kind> for each kind of run.baselines other than agent.kind (sl: the
 *              supervised baseline), trained the same way.
 *   eval       out_dir/name/results.{tsv,json}: every trained agent acting greedily and the
 *              reference policies of run.compare (random, popular, greedy = top K of the sim-train
 *              model's click probabilities, oracle = top K of the evaluation's own click model:
 *              the synthetic world's myopic oracle, or greedy by run.sim_all), in the
 *              click model of run.sim_all (empty: the synthetic world's ground truth), the protocol
 *              of method.md section 9 (sim_eval.h): test-split users, eval.episodes episodes per
 *              seed, eval.seeds seeds from run.seed, the same user draws for every policy. greedy
 *              is left out without run.sim_train.
 * The table (policy, Total Reward, Depth, click rate, coverage: mean +- std across seeds) is
 * printed at the end of every run, also when every stage was current.
 *
 * Currency. A stage's hash is FNV-1a 64 of its "stage text": the config keys it reads, one per
 * line in canonical form ("key sid.vocab = 16"; file paths are not keys, files are inputs), and
 * its input files by content ("input data = fnv1a64:<checksum of the file's bytes> PATH"; for
 * data prepare, every file of data.input; the PATH after the checksum is for the reader and not
 * hashed: a moved file with the same bytes is the same input). After a stage has made its
 * output, a stage record is written beside it: <file>.stage for a file, <run dir>/train.stage for
 * a training run, <run dir>/results.stage for the table. It holds the stage text, the hash and
 * the checksum of the output (a data file from a dataset reader and a SID file are stamped with
 * the stage hash as their hsrl_config_hash, so their bytes depend only on what their stage
 * reads). A stage
 * is skipped ("skip sid (current: runs/demo/demo.sid.h5)") when its record has the hash the stage
 * has now and its output exists, has the recorded checksum and opens as the right kind of hsrl
 * file. Otherwise it runs, and its line says why: "run sid: sid.vocab changed
 * (16 -> 8)", "input data changed", "output missing", "output changed since hsrl run wrote it",
 * "output does not open: ...", "no stage record" (a file made by hand is remade), "--force".
 * Every later stage then sees its
 * input's new checksum and reruns in turn, but only if the bytes changed: a deleted data file is
 * remade bit for bit from the same config (the stages are seeded and deterministic), so the
 * stages after it stay current. The records are plain text: `cat runs/demo/demo.sid.h5.stage`
 * shows what a file was made from. (Beside the output rather than inside it: HDF5 files are
 * written once by their commands' writers, and the text explains a rerun.)
 *
 * Training runs. Its record is written when training starts (complete = 0) and again at the end
 * with the final checkpoint's checksum. A run with the same stage text but for train.iterations
 * (an interrupted one, or train.iterations raised) resumes from its newest checkpoint with
 * `hsrl train --resume` semantics (bit-identical to an uninterrupted run at a checkpoint
 * boundary); any other change retrains from scratch: what training wrote into the stale run
 * directory, made by hsrl run, is deleted (ckpt/, metrics.tsv, config.ini, eval.json, plots/; the
 * results table stays until eval rewrites it). A run directory without train.stage (made by
 * `hsrl train` by hand) is never deleted: it is moved aside to <dir>.old-<n>, and the line says so.
 *
 * Options: --set as everywhere (paths relative to the working directory); --force STAGE reruns
 * that stage (repeatable; all: every stage), the later ones then rerun when its output's bytes
 * change; --dry-run prints what would run and why, and writes nothing (a stage after one that
 * would run is checked as if the rebuild gave the present bytes again: "would run sid if the
 * rebuilt sim-train differs (else it stays current)"); --quiet: no progress
 * displays or per-stage details, only the one line per stage and the table.
 * Outputs on stdout: one line per stage, the stage's summary, the table. Progress on stderr.
 * Exit status: 0 ok, 2 bad usage, config or input (the message names the file and field; a
 * failed stage is named), 1 internal failure. An interrupted run is continued by running the
 * same command again. */
#ifndef LEARNER_RUN_H
#define LEARNER_RUN_H

/* `hsrl run ...`; argv[0] is "run". Returns an exit status. */
int learner_run_command(int argc, char **argv);

#endif
