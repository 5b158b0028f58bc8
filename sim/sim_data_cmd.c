/* sim_data_cmd.c: `hsrl data prepare|synth|info`; see sim_data_cmd.h (datasets.md). */
#include "sim/sim_data_cmd.h"

#include <stdio.h>
#include <string.h>

#include "common/hsrl_log.h"
#include "common/hsrl_status.h"
#include "common/hsrl_timer.h"
#include "sim/sim_data.h"
#include "sim/sim_reader_movielens.h"
#include "sim/sim_reader_rl4rs.h"
#include "sim/sim_synth.h"

static void data_cmd_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl data prepare --format ml1m|ml100k|rl4rs --input DIR --out FILE [--quiet]\n"
          "       hsrl data synth --items N --users U --out FILE [--seed S] [...]\n"
          "       hsrl data info FILE\n"
          "\n"
          "Turns a dataset into the prepared-data file (HDF5, docs/data-format.md) that every later\n"
          "stage reads: item features, user features, records (user, history, slate, clicks, time)\n"
          "and the train/test split.\n"
          "\n"
          "  prepare  read a public dataset (datasets.md); see 'hsrl data prepare --help'\n"
          "  synth    generate the synthetic world and its logged sessions; see 'hsrl data synth --help'\n"
          "  info     print the summary of a prepared-data file\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or input (the message names file, line and field), 1 internal.\n");
}

static void data_cmd_prepare_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl data prepare --format ml1m|ml100k|rl4rs --input DIR --out FILE [--quiet]\n"
          "\n"
          "Reads the dataset in DIR and writes the prepared-data file FILE (conventionally\n"
          "NAME.data.h5), atomically: on any error nothing is left under FILE.\n"
          "\n"
          "formats (datasets.md gives the exact preprocessing):\n"
          "  ml1m    movies.dat, users.dat, ratings.dat ('::'-separated, Latin-1); K = 10, H = 50\n"
          "  ml100k  u.item, u.user, u.occupation, u.data (tab/pipe-separated); K = 10, H = 50\n"
          "  rl4rs   item_info.csv, rl4rs_b_train.csv, rl4rs_b_test.csv ('@'-separated slates);\n"
          "          K from the file (9), H = 50\n"
          "\n"
          "options:\n"
          "  --format F   the layout of DIR (required)\n"
          "  --input DIR  the directory holding the files (required)\n"
          "  --out FILE   the prepared-data file to write (required; replaced if it exists)\n"
          "  --quiet      no progress display\n"
          "  -h, --help   this text\n"
          "\n"
          "Prints a summary: users, items, records, split sizes, positive rates, rates.\n"
          "Exit status: 0 ok, 2 bad usage or malformed input (file, line and field named), 1 internal.\n");
}

/* The summary of d (and of its provenance when known). seconds < 0: not timed. */
static void data_cmd_summary(const sim_dataset *d, const sim_provenance *prov, double seconds) {
  printf("  users    %lld (user features %lld)\n", (long long)d->n_users, (long long)d->user_dim);
  printf("  items    %lld (item features %lld, %lld distinct feature vectors)\n", (long long)d->n_items,
         (long long)d->item_dim, (long long)sim_dataset_distinct_item_features(d));
  printf("  records  %lld (slate size K %lld, history length H %lld)\n", (long long)d->n_records,
         (long long)d->slate_size, (long long)d->history_len);
  printf("  split    train %lld, test %lld\n", (long long)d->n_train, (long long)d->n_test);
  printf("  positive rate  train %.3f, test %.3f, all %.3f\n",
         sim_dataset_click_rate(d, d->train_idx, d->n_train), sim_dataset_click_rate(d, d->test_idx, d->n_test),
         sim_dataset_click_rate(d, NULL, d->n_records));
  int is_ml = !strcmp(d->source_format, "ml1m") || !strcmp(d->source_format, "ml100k");
  int64_t n_ratings = is_ml && prov ? d->n_records * d->slate_size + prov->n_dropped : 0;
  if (prov) {
    printf("  source   %lld lines read", (long long)prov->n_lines_read);
    if (is_ml) printf(", %lld ratings, %lld dropped (a user's final partial slate)", (long long)n_ratings,
                      (long long)prov->n_dropped);
    printf("\n");
    for (int i = 0; i < prov->n_sources; i++)
      printf("           %s (%lld bytes, %s)\n", prov->source_path[i], (long long)prov->source_bytes[i],
             prov->source_checksum[i]);
  }
  if (seconds >= 0) {
    double s = seconds > 1e-9 ? seconds : 1e-9;
    printf("  time     %.3f s: %.0f records/s", seconds, (double)d->n_records / s);
    if (n_ratings) printf(", %.0f ratings/s", (double)n_ratings / s);
    printf("\n");
  }
}

/* Matches argv[*i] as "--name VALUE" or "--name=VALUE": 1 (value set, *i advanced past it),
 * 0 (another argument), -1 (the value is missing). */
static int data_cmd_option(int argc, char **argv, int *i, const char *name, const char **value) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n)) return 0;
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (a[n] != '\0') return 0;
  if (*i + 1 >= argc) return -1;
  *value = argv[++*i];
  return 1;
}

static int data_cmd_prepare(int argc, char **argv) {
  const char *format = NULL, *input = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int m = 0;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      data_cmd_prepare_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--quiet")) {
      hsrl_log_set_level(HSRL_LOG_WARN);
      continue;
    }
    if (!m) m = data_cmd_option(argc, argv, &i, "--format", &format);
    if (!m) m = data_cmd_option(argc, argv, &i, "--input", &input);
    if (!m) m = data_cmd_option(argc, argv, &i, "--out", &out);
    if (m < 0) {
      fprintf(stderr, "hsrl data prepare: %s needs a value; see 'hsrl data prepare --help'\n", a);
      return 2;
    }
    if (m == 0) {
      fprintf(stderr, "hsrl data prepare: unknown argument '%s'; see 'hsrl data prepare --help'\n", a);
      return 2;
    }
  }
  if (!format || !input || !out) {
    fprintf(stderr, "hsrl data prepare: --%s is required; see 'hsrl data prepare --help'\n",
            !format ? "format" : !input ? "input" : "out");
    return 2;
  }
  int layout = -1;
  if (!strcmp(format, "ml1m")) layout = SIM_READER_MOVIELENS_1M;
  else if (!strcmp(format, "ml100k")) layout = SIM_READER_MOVIELENS_100K;
  else if (strcmp(format, "rl4rs")) {
    fprintf(stderr, "hsrl data prepare: --format '%s' is not one of ml1m, ml100k, rl4rs\n", format);
    return 2;
  }
  sim_dataset d;
  sim_provenance prov;
  memset(&d, 0, sizeof d);
  double t0 = hsrl_time_now();
  hsrl_status st = layout >= 0 ? sim_reader_movielens_read(&d, &prov, input, (sim_reader_movielens_layout)layout)
                               : sim_reader_rl4rs_read(&d, &prov, input);
  if (st == HSRL_OK) st = sim_dataset_write(&d, out, &prov, 0);
  double seconds = hsrl_time_now() - t0;
  if (st != HSRL_OK) {
    fprintf(stderr, "hsrl data prepare: %s\n", hsrl_err_message());
    sim_dataset_free(&d);
    return hsrl_status_exit_code(st);
  }
  printf("hsrl data prepare: %s from %s -> %s\n", format, input, out);
  data_cmd_summary(&d, &prov, seconds);
  sim_dataset_free(&d);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsrl data prepare: cannot write to stdout\n");
    return 1;
  }
  return 0;
}

static int data_cmd_info(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    printf("usage: hsrl data info FILE\n\nPrints the summary of a prepared-data file.\n");
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: hsrl data info FILE\n");
    return 2;
  }
  sim_dataset d;
  sim_provenance prov;
  hsrl_status st = sim_dataset_read(&d, argv[1]);
  if (st != HSRL_OK) {
    fprintf(stderr, "hsrl data info: %s\n", hsrl_err_message());
    return hsrl_status_exit_code(st);
  }
  int have_prov = sim_dataset_read_provenance(&prov, argv[1]) == HSRL_OK; /* synth files have none */
  printf("%s: %s data '%s'\n", argv[1], d.source_format, d.name);
  data_cmd_summary(&d, have_prov ? &prov : NULL, -1.0);
  if (have_prov) printf("  protocol %s\n", prov.protocol);
  sim_dataset_free(&d);
  return 0;
}

int sim_data_command(int argc, char **argv) {
  if (argc < 2) {
    data_cmd_usage(stderr);
    return 2;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
    data_cmd_usage(stdout);
    return 0;
  }
  if (!strcmp(sub, "prepare")) return data_cmd_prepare(argc - 1, argv + 1);
  if (!strcmp(sub, "info")) return data_cmd_info(argc - 1, argv + 1);
  if (!strcmp(sub, "synth")) return sim_synth_command(argc - 1, argv + 1);
  fprintf(stderr, "hsrl data: '%s' is not a subcommand (prepare, synth, info); see 'hsrl data --help'\n", sub);
  return 2;
}
