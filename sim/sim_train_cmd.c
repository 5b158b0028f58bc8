/* sim_train_cmd.c: `hsrl sim train`, training the user-response model on a prepared-data file
 * (method.md section 3; architecture.md "Commands"). Declared in sim_urm_train.h.
 *
 * The effective config is the defaults, then --config FILE, then each --set in order, then the
 * command's own overrides (--epochs E is sim.max_epochs = E, --no-item-id is
 * sim.item_id_embedding = false), so the stored config says what was run. Exit status: 0 ok,
 * 2 usage or input error (the message names the file and field), 1 internal failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "sim/sim_data.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"

static void train_cmd_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl sim train --data FILE.data.h5 --split train|all --out FILE.sim-SPLIT.h5\n"
          "                      [--epochs E] [--config CONFIG] [--set section.key=value]...\n"
          "                      [--no-item-id] [--quiet]\n"
          "\n"
          "Trains the user-response model (the simulator, method.md section 3) on a prepared-data\n"
          "file and writes it, its [sim] config and its validation metrics per epoch to --out.\n"
          "\n"
          "  --data FILE      prepared-data file ('hsrl data prepare' or 'hsrl data synth')\n"
          "  --split S        train: fit the train split (the simulator agents learn in);\n"
          "                   all: fit every record (the simulator agents are evaluated in; its\n"
          "                   test metrics are then in-sample)\n"
          "  --out FILE       model file, written atomically\n"
          "  --epochs E       at most E epochs (sets sim.max_epochs)\n"
          "  --config CONFIG  INI config file ([sim] and run.seed are used)\n"
          "  --set s.k=v      override one config field (repeatable)\n"
          "  --no-item-id     no learned item-id embedding (sets sim.item_id_embedding = false:\n"
          "                   features only, as the reference model)\n"
          "  --quiet          no progress display or per-epoch lines\n"
          "  -h, --help       this text\n"
          "\n"
          "Each epoch reports, on the test split: pooled AUC, macro AUC (mean of the per-position\n"
          "AUCs), log-loss and ECE (%d bins). Early stopping: sim.patience epochs without a better\n"
          "AUC on the sim.val_fraction of fitting records held out (sim.val_fraction = 0: the test\n"
          "split's AUC); the best epoch's parameters are kept.\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or input (the message names the file and field), 1 internal.\n",
          SIM_URM_ECE_BINS);
}

static int train_cmd_fail(hsrl_status st) {
  fprintf(stderr, "hsrl sim train: %s\n", hsrl_err_message());
  return hsrl_status_exit_code(st);
}

/* The value of option argv[*i] (its next word); NULL and a message when missing. */
static const char *train_cmd_value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
    fprintf(stderr, "hsrl sim train: %s needs a value; see 'hsrl sim train --help'\n", argv[*i]);
    return NULL;
  }
  return argv[++*i];
}

int sim_train_command(int argc, char **argv) {
  int rc = 0, quiet = 0, no_item_id = 0, split_all = -1;
  const char *data_path = NULL, *out_path = NULL, *config_path = NULL, *epochs = NULL;
  int64_t n_sets = 0;
  const char **sets = hsrl_malloc((size_t)(argc + 2) * sizeof *sets);
  char epochs_set[64];
  hsrl_settings *s = hsrl_malloc(sizeof *s);
  sim_dataset d;
  memset(&d, 0, sizeof d);
  sim_urm *m = NULL;
  sim_urm_train_log log;
  memset(&log, 0, sizeof log);
  hsrl_status st = HSRL_OK;

  int i = 1;
  if (argc > 1 && !strcmp(argv[1], "train")) i = 2; /* called as `sim train ...` */
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      train_cmd_usage(stdout);
      goto done;
    } else if (!strcmp(a, "--data")) {
      if (!(data_path = train_cmd_value(argc, argv, &i))) goto usage;
    } else if (!strcmp(a, "--out")) {
      if (!(out_path = train_cmd_value(argc, argv, &i))) goto usage;
    } else if (!strcmp(a, "--config")) {
      if (!(config_path = train_cmd_value(argc, argv, &i))) goto usage;
    } else if (!strcmp(a, "--epochs")) {
      if (!(epochs = train_cmd_value(argc, argv, &i))) goto usage;
    } else if (!strcmp(a, "--split")) {
      const char *v = train_cmd_value(argc, argv, &i);
      if (!v) goto usage;
      if (!strcmp(v, "train")) {
        split_all = 0;
      } else if (!strcmp(v, "all")) {
        split_all = 1;
      } else {
        fprintf(stderr, "hsrl sim train: --split must be 'train' or 'all', not '%s'\n", v);
        goto usage;
      }
    } else if (!strcmp(a, "--set")) {
      const char *v = train_cmd_value(argc, argv, &i);
      if (!v) goto usage;
      sets[n_sets++] = v;
    } else if (!strncmp(a, "--set=", 6)) {
      sets[n_sets++] = a + 6;
    } else if (!strcmp(a, "--no-item-id")) {
      no_item_id = 1;
    } else if (!strcmp(a, "--quiet")) {
      quiet = 1;
    } else {
      fprintf(stderr, "hsrl sim train: unknown argument '%s'; see 'hsrl sim train --help'\n", a);
      goto usage;
    }
  }
  if (!data_path || !out_path || split_all < 0) {
    fprintf(stderr, "hsrl sim train: --data, --split and --out are required; see 'hsrl sim train --help'\n");
    goto usage;
  }
  if (epochs) {
    char *end = NULL;
    long long e = strtoll(epochs, &end, 10);
    if (*end != '\0' || e < 1) {
      fprintf(stderr, "hsrl sim train: --epochs must be a positive integer, not '%s'\n", epochs);
      goto usage;
    }
    snprintf(epochs_set, sizeof epochs_set, "sim.max_epochs=%lld", e);
    sets[n_sets++] = epochs_set;
  }
  if (no_item_id) sets[n_sets++] = "sim.item_id_embedding=false";

  HSRL_TRY(hsrl_settings_load(s, config_path, n_sets, sets));
  HSRL_TRY(sim_dataset_read(&d, data_path));
  if (d.n_train < 1 || d.n_test < 1) {
    st = hsrl_err(HSRL_E_INPUT, data_path, 0, "split",
                  "the file has %lld train and %lld test records; both must be non-empty",
                  (long long)d.n_train, (long long)d.n_test);
    goto done;
  }
  sim_urm_config cfg = sim_urm_config_make(&s->sim, &d);
  m = sim_urm_init(&cfg, &d, hsrl_rng_derive((uint64_t)s->run.seed, 0x53494d));
  if (!quiet)
    fprintf(stderr, "sim train: %s: %lld items (D %lld), %lld users (P %lld), K %lld, H %lld; "
                    "f %lld, item-id embedding %s\n",
            data_path, (long long)d.n_items, (long long)d.item_dim, (long long)d.n_users,
            (long long)d.user_dim, (long long)d.slate_size, (long long)d.history_len,
            (long long)cfg.f, cfg.item_id_embedding ? "on" : "off");
  sim_urm_train_options opt = sim_urm_train_options_make(s, split_all);
  opt.verbose = !quiet;
  HSRL_TRY(sim_urm_train(m, &d, &opt, &log));
  HSRL_TRY(sim_urm_save(m, out_path, &log, s, data_path, split_all));

  const sim_urm_epoch *b = sim_urm_train_log_best(&log);
  HSRL_CHECK(b != NULL);
  printf("sim train: %s -> %s\n", data_path, out_path);
  printf("  split %s, %lld records fitted, %lld held out, %lld tested%s\n",
         split_all ? "all" : "train", (long long)log.n_fit, (long long)log.n_val,
         (long long)log.n_test,
         split_all ? " (test metrics in-sample: the test split was fitted, but for held-out records)"
                   : "");
  printf("  best epoch %lld of %lld (early stopping on %s)\n", (long long)log.best_epoch,
         (long long)log.n_epochs, log.stop_on_test ? "the test split" : "held-out records");
  printf("  test pooled AUC %.4f  macro AUC %.4f  log-loss %.4f  ECE(%d) %.4f\n", b->test.auc,
         b->test.macro_auc, b->test.log_loss, b->test.ece_bins, b->test.ece);
  printf("  training %.0f samples/s (%.1f s of updates)\n", log.samples_per_s, log.seconds);
  goto done;
usage:
  rc = 2;
done:
  if (st != HSRL_OK) rc = train_cmd_fail(st);
  sim_urm_train_log_free(&log);
  sim_urm_free(m);
  sim_dataset_free(&d);
  hsrl_free(s);
  hsrl_free(sets);
  return rc;
}
