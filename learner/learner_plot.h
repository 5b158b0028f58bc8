/* learner_plot.h: `hsrl plot RUN_DIR`, PNG plots of a training run and of its results table,
 * drawn by gnuplot (architecture.md "Files a user sees"; the metrics of learner_train.h, the
 * evaluation protocol of method.md section 9).
 *
 *   hsrl plot RUN_DIR [--out DIR]
 *
 * Reads RUN_DIR/metrics.tsv (learner_train.h: tab-separated, a header row naming the columns;
 * columns are found by name, never by position) and, when there, the results table of the run:
 * RUN_DIR/results.tsv (`hsrl run`), else RUN_DIR/eval.json (`hsrl eval --checkpoint`). Writes into
 * DIR (default RUN_DIR/plots/), each only when its columns exist:
 *   total_reward.png   Total Reward of the training episodes against the iteration
 *   depth.png          their Depth
 *   losses.png         one panel per loss column (every *_loss column, and entropy)
 *   mlc_weights.png    the multi-level critic's level weights mlc_w0..mlc_wL
 *   eval.png           the results table: Total Reward per policy, bars with +- std across seeds
 * plus plot.gp (the gnuplot script, to restyle and rerun by hand: `gnuplot plot.gp`) and eval.dat
 * (the bars' numbers). The terminal is pngcairo when the installed gnuplot has it, else png.
 * "nan" values (a report interval in which no training episode finished) are gaps in the lines.
 *
 * Exit status: 0 ok; 2 when RUN_DIR is not a directory or metrics.tsv is missing or malformed (no
 * header, no iteration column, a row with another number of fields or a value that is not a
 * number; the message names the file, line and column), or the results table does not parse;
 * 1 when gnuplot is not installed (the message says which package provides it) or fails. */
#ifndef LEARNER_PLOT_H
#define LEARNER_PLOT_H

/* `hsrl plot ...`; argv[0] is "plot". Returns an exit status. */
int learner_plot_command(int argc, char **argv);

#endif
