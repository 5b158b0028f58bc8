/* sim_sid_cmd.h: the `hsrl sid` command (architecture.md "Commands"; method.md §5;
 * docs/semantic-ids.md).
 *
 *   hsrl sid build --data F [--sim F] [--vectors sim|features] [--levels L] [--vocab V[,V2,V3]]
 *                  --out F.sid.h5 [--balanced[=all|last]] [--dedup|--no-dedup] [--seed S] ...
 *   hsrl sid stats F.sid.h5
 *   hsrl sid assign ...            (forwarded to sim_sid_assign_command, sim_sid_churn.h, H12)
 * The effective settings are the defaults, then --config FILE, then each --set, then the
 * command's own options ([sid] levels, vocab, vectors, balanced, max_iter; run.seed), as in
 * `hsrl sim train`. Exit status: 0 ok, 2 usage or input error, 1 internal failure. */
#ifndef SIM_SID_CMD_H
#define SIM_SID_CMD_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "sim/sim_sid_codebook.h"
#include "sim/sim_sid_stats.h"

/* Everything one build needs (also for `hsrl run`, which builds without the command line). */
typedef struct sim_sid_build_options {
  const char *data_path;       /* prepared-data file */
  const char *sim_path;        /* simulator model file; NULL: <name>.sim-train.h5 beside the data */
  const char *out_path;        /* the .sid.h5 to write */
  char vectors[16];            /* "sim" (learned item vectors, the default) | "features" */
  sim_sid_build_config build;  /* levels, vocab, balanced, dedup, seed, max_iter, tol, sample */
  uint64_t settings_hash;      /* hash of the effective settings (0 outside a config) */
  int store_vectors;           /* 1: keep /items/vectors in the file (stats report mse per level) */
  int verbose;                 /* progress and per-level lines on stderr */
} sim_sid_build_options;

/* Options from the effective settings: [sid] levels, vocab (every level), vectors, balanced
 * (all levels), max_iter; run.seed; dedup on, tol 1e-3, sample auto, store_vectors 1. */
void sim_sid_build_options_make(sim_sid_build_options *o, const hsrl_settings *s);

/* Reads the data (and the simulator), builds the codebooks, writes out_path and fills stats
 * (may be NULL) with the file's statistics. */
hsrl_status sim_sid_build_run(const sim_sid_build_options *o, sim_sid_stats *stats);

/* argv[0] is "sid". Returns an exit status. */
int sim_sid_command(int argc, char **argv);

#endif
