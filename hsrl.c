/* hsrl.c: the `hsrl` command. Parses the subcommand (git style) and calls one folder's entry
 * point. Every command has --help and exits 0 on success, 2 on a usage or input error (the
 * message names the file, line and field), 1 on an internal failure (architecture.md). */
#include <stdio.h>
#include <string.h>

#include "common/comm/comm_abort.h"
#include "common/hsrl_config_cmd.h"
#include "common/hsrl_status.h"
#include "actor/actor_loop.h"
#include "learner/learner_cmd.h"
#include "learner/learner_plot.h"
#include "learner/learner_run.h"
#include "replay/replay_cmd.h"
#include "sim/sim_data_cmd.h"
#include "sim/sim_sid_cmd.h"
#include "sim/sim_urm_train.h"

typedef struct hsrl_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv); /* argv[0] is the command name; returns an exit status */
} hsrl_command;

static const hsrl_command commands[] = {
    {"data", "prepare a dataset (ML-1M, ML-100K, RL4RS) or make a synthetic world", sim_data_command},
    {"sim", "train the user-response model (the simulator) on a prepared dataset", sim_train_command},
    {"sid", "build Semantic IDs (RQ-k-means), show their statistics, assign new items", sim_sid_command},
    {"train", "train an agent (HSRL or SL) in a simulator; --resume continues a run", learner_train_command},
    {"eval", "evaluate a checkpoint or simple policies (mean +- std over seeds)", learner_eval_command},
    {"run", "the whole pipeline of a config: data, simulators, SIDs, training, one results table", learner_run_command},
    {"plot", "PNG plots of a run directory: training curves and the results table (gnuplot)", learner_plot_command},
    {"replay", "inspect a replay shard snapshot (counts, limiter, fields, decoded rows)", replay_command},
    {"config", "show, check or hash the effective config (INI + --set overrides)", hsrl_config_command},
    {NULL, NULL, NULL},
};

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl [--version] [--help] <command> [<args>]\n\n"
          "Hierarchical Semantic RL for slate recommendation.\n\ncommands:\n");
  for (const hsrl_command *c = commands; c->name; c++) fprintf(f, "  %-14s %s\n", c->name, c->summary);
  fprintf(f, "\n'hsrl <command> --help' describes a command.\n");
}

int main(int argc, char **argv) {
  comm_abort_install();
  learner_cmd_set_actor_role(actor_loop_run);
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    print_usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("hsrl %s\n", HSRL_VERSION);
    return 0;
  }
  for (const hsrl_command *c = commands; c->name; c++)
    if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
  fprintf(stderr, "hsrl: '%s' is not a command; see 'hsrl --help'\n", argv[1]);
  return 2;
}
