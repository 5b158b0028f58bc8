/* sim_sid_cmd.c: `hsrl sid build|stats` and the dispatch of `hsrl sid assign` (sim_sid_cmd.h;
 * method.md §5; docs/semantic-ids.md). */
#include "sim/sim_sid_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_config.h"
#include "common/hsrl_log.h"
#include "common/hsrl_timer.h"
#include "sim/sim_data.h"
#include "sim/sim_kmeans.h"
#include "sim/sim_sid_churn.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"

/* ---- usage --------------------------------------------------------------------------------- */

static void sid_cmd_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl sid build --data FILE [--sim FILE] --out FILE.sid.h5 [options]\n"
          "       hsrl sid stats FILE.sid.h5\n"
          "       hsrl sid assign --sid FILE.sid.h5 ... (new and deleted items; see 'hsrl sid assign --help')\n"
          "\n"
          "Semantic IDs (method.md section 5): every item gets L tokens from residual-quantisation\n"
          "k-means codebooks over item vectors (the simulator's learned item vectors by default, or\n"
          "the raw item features). The policy acts in this token space.\n"
          "\n"
          "  build   build the codebooks and the item -> SID table; see 'hsrl sid build --help'\n"
          "  stats   token usage, entropy and perplexity per level, reconstruction error per level,\n"
          "          collision rate, largest bucket, items per prefix\n"
          "  assign  give new items SIDs with the frozen codebooks, delete items\n"
          "\n"
          "docs/semantic-ids.md explains the algorithm and the numbers.\n"
          "Exit status: 0 ok, 2 bad usage or input (the message names file and field), 1 internal.\n");
}

static void sid_cmd_build_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl sid build --data FILE.data.h5 [--sim FILE.sim-train.h5] --out FILE.sid.h5\n"
          "                      [--vectors sim|features] [--levels L] [--vocab V[,V2,...]]\n"
          "                      [--balanced[=all|last]] [--dedup | --no-dedup] [--seed S]\n"
          "                      [--max-iter N] [--full-iter N] [--tol T] [--sample S]\n"
          "                      [--no-store-vectors]\n"
          "                      [--config CONFIG] [--set section.key=value]... [--quiet]\n"
          "\n"
          "Builds RQ-k-means codebooks (level 1: k-means of the item vectors; level l: k-means of\n"
          "the residuals of level l-1), gives every item its L tokens and writes FILE.sid.h5\n"
          "atomically. Seeded and deterministic: the same inputs and options give the same bytes.\n"
          "\n"
          "  --data FILE        prepared-data file ('hsrl data prepare' or 'hsrl data synth')\n"
          "  --sim FILE         simulator model file ('hsrl sim train') whose learned item vectors\n"
          "                     (feature projection + id embedding) are quantised; default: the\n"
          "                     NAME.sim-train.h5 beside NAME.data.h5\n"
          "  --vectors V        sim (default, [sid] vectors) or features (the raw item features,\n"
          "                     what the reference does; items with equal features collide)\n"
          "  --out FILE         the .sid.h5 to write (replaced atomically)\n"
          "  --levels L         SID levels, 1..%d (default [sid] levels = 3)\n"
          "  --vocab V[,V2..]   codes per level, one value for every level or one per level,\n"
          "                     at most 65536 (default [sid] vocab = 64)\n"
          "  --balanced[=M]     capacity-balanced k-means (each code at most ceil(n/V) items of\n"
          "                     its level): M = all (default; [sid] balanced) or last (last level only)\n"
          "  --dedup            (default) items that share a full SID with a closer item move to\n"
          "                     the nearest last-level code free within their prefix\n"
          "  --no-dedup         plain greedy RQ tokens (collisions stay; the reference's behaviour)\n"
          "  --seed S           seed (default run.seed)\n"
          "  --max-iter N       Lloyd passes per level at most (default [sid] max_iter)\n"
          "  --tol T            stop a level when fewer than T * n assignments change (default 1e-3)\n"
          "  --sample S         k-means++ seeding and warm-up sample (default max(65536, 64 V)); with\n"
          "                     more items than S, Lloyd runs on the sample first (up to N passes)\n"
          "  --full-iter N      then at most N passes on all items (default %d)\n"
          "  --no-store-vectors do not keep the item vectors in the file (smaller; then 'sid stats'\n"
          "                     cannot report reconstruction error)\n"
          "  --config CONFIG    INI config file ([sid] and run.seed are used)\n"
          "  --set s.k=v        override one config field (repeatable)\n"
          "  --quiet            no progress display\n"
          "  -h, --help         this text\n"
          "\n"
          "Prints the per-level k-means figures and the statistics of 'hsrl sid stats'.\n"
          "Exit status: 0 ok, 2 bad usage or input, 1 internal.\n",
          SIM_SID_MAX_LEVELS, SIM_KMEANS_DEFAULT_FULL_ITER);
}

static void sid_cmd_stats_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl sid stats FILE.sid.h5\n"
          "\n"
          "Prints, over the live items of a Semantic-ID file: the collision rate (items sharing\n"
          "their full SID with another item, over items), distinct SIDs, the largest bucket and,\n"
          "per level: codes used, entropy (bits) and perplexity (2^entropy) of the level's codes,\n"
          "conditional perplexity (codes effectively used per parent prefix), prefixes and items\n"
          "per prefix (mean, median, p90, p99, max), and the reconstruction error mean |r_l|^2\n"
          "after the level (absolute and relative to the vectors' total variance) when the file\n"
          "keeps the item vectors.\n"
          "Exit status: 0 ok, 2 bad usage or input, 1 internal.\n");
}

/* ---- build --------------------------------------------------------------------------------- */

void sim_sid_build_options_make(sim_sid_build_options *o, const hsrl_settings *s) {
  memset(o, 0, sizeof *o);
  sim_sid_build_config_default(&o->build);
  o->build.n_levels = (int)s->sid.levels;
  for (int l = 0; l < SIM_SID_MAX_LEVELS; l++) o->build.vocab[l] = s->sid.vocab;
  o->build.balanced = s->sid.balanced ? 1 : 0;
  o->build.max_iter = (int)s->sid.max_iter;
  o->build.seed = (uint64_t)s->run.seed;
  o->build.dedup = 1;
  /* sid.vectors is "sim" or "features" (the settings engine checks the enum); a longer word would
   * leave "" here, which sim_sid_build_run rejects */
  size_t len = strlen(s->sid.vectors);
  if (len < sizeof o->vectors) memcpy(o->vectors, s->sid.vectors, len + 1);
  o->settings_hash = hsrl_settings_hash(s);
  o->store_vectors = 1;
}

/* FNV-1a 64 of a string. */
static uint64_t sid_cmd_fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

/* The canonical text of everything that determines the codebooks (paths excluded). */
static void sid_cmd_config_text(char *buf, size_t cap, const sim_sid_build_options *o) {
  const sim_sid_build_config *c = &o->build;
  size_t n = (size_t)snprintf(buf, cap, "vectors=%s levels=%d vocab=", o->vectors, c->n_levels);
  for (int l = 0; l < c->n_levels && n < cap; l++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", l ? "," : "", (long long)c->vocab[l]);
  if (n < cap)
    snprintf(buf + n, cap - n, " balanced=%s dedup=%s seed=%llu max_iter=%d full_iter=%d tol=%g sample=%lld settings=%016llx",
             c->balanced == 0 ? "none" : c->balanced == 1 ? "all" : "last", c->dedup ? "on" : "off",
             (unsigned long long)c->seed, c->max_iter, c->full_iter, c->tol, (long long)c->sample,
             (unsigned long long)o->settings_hash);
}

/* NAME.data.h5 -> NAME.sim-train.h5 (hsrl_malloc). */
static char *sid_cmd_default_sim_path(const char *data_path) {
  size_t n = strlen(data_path), suf = strlen(".data.h5");
  char *p = hsrl_malloc(n + 32);
  if (n > suf && !strcmp(data_path + n - suf, ".data.h5")) {
    memcpy(p, data_path, n - suf);
    strcpy(p + n - suf, ".sim-train.h5");
  } else {
    snprintf(p, n + 32, "%s.sim-train.h5", data_path);
  }
  return p;
}

static double sid_cmd_peak_rss_mb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
  return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

hsrl_status sim_sid_build_run(const sim_sid_build_options *o, sim_sid_stats *stats_out) {
  hsrl_status st = HSRL_OK;
  sim_dataset d;
  memset(&d, 0, sizeof d);
  sim_urm *m = NULL;
  char *sim_path = NULL;
  float *learned = NULL;
  sim_sid_file f;
  memset(&f, 0, sizeof f);
  double t0 = hsrl_time_now();
  const sim_sid_build_config *c = &o->build;
  int use_sim = !strcmp(o->vectors, "sim");
  if (!use_sim && strcmp(o->vectors, "features"))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "sid.vectors", "'%s'; must be 'sim' or 'features'", o->vectors);
  if (c->n_levels < 1 || c->n_levels > SIM_SID_MAX_LEVELS)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "sid.levels", "%d; this build supports 1..%d levels",
                    c->n_levels, SIM_SID_MAX_LEVELS);

  HSRL_TRY(sim_dataset_read(&d, o->data_path));
  const float *vec = d.item_features; /* (N+1, dim) */
  int64_t dim = d.item_dim;
  if (use_sim) {
    sim_path = o->sim_path ? hsrl_strdup(o->sim_path) : sid_cmd_default_sim_path(o->data_path);
    FILE *probe = fopen(sim_path, "rb");
    if (!probe) {
      st = hsrl_err(HSRL_E_USAGE, sim_path, 0, "sim",
                    "no simulator model file here: train one ('hsrl sim train --data %s --split train "
                    "--out %s'), give --sim FILE, or quantise the raw features (--vectors features)",
                    o->data_path, sim_path);
      goto done;
    }
    fclose(probe);
    HSRL_TRY(sim_urm_load(&m, sim_path, &d));
    dim = sim_urm_get_config(m)->f;
    learned = hsrl_malloc((size_t)((d.n_items + 1) * dim) * sizeof *learned);
    sim_urm_item_vectors(m, learned);
    vec = learned;
  }
  if (d.n_items < 1) {
    st = hsrl_err(HSRL_E_INPUT, o->data_path, 0, "n_items", "the catalog is empty");
    goto done;
  }
  double t_load = hsrl_time_now() - t0;
  if (o->verbose)
    fprintf(stderr, "%s sid build: %lld items, %s vectors of width %lld%s%s\n", hsrl_log_prefix(),
            (long long)d.n_items, use_sim ? "learned (simulator)" : "raw feature", (long long)dim,
            use_sim ? " from " : "", use_sim ? sim_path : "");

  int L = c->n_levels;
  sim_sid_build_config bc = *c;
  bc.progress = o->verbose;
  sim_sid_build_report rep;
  f.n_items = d.n_items;
  f.tokens = hsrl_calloc((size_t)((d.n_items + 1) * L), sizeof *f.tokens);
  f.live = hsrl_calloc((size_t)(d.n_items + 1), sizeof *f.live);
  for (int64_t i = 1; i <= d.n_items; i++) f.live[i] = 1;
  snprintf(f.vectors, sizeof f.vectors, "%s", o->vectors);
  HSRL_TRY(sim_sid_codebook_build(&f.cb, f.tokens + L, vec + dim, d.n_items, dim, &bc, &rep));

  char cfg[512], note[2048];
  sid_cmd_config_text(cfg, sizeof cfg, o);
  f.config_hash = sid_cmd_fnv(cfg);
  snprintf(note, sizeof note, "hsrl sid build: data=%s%s%s %s", o->data_path, use_sim ? " sim=" : "",
           use_sim ? sim_path : "", cfg);
  double t_w = hsrl_time_now();
  HSRL_TRY(sim_sid_file_write_ex(&f, o->store_vectors ? vec : NULL, note, o->out_path));
  double t_write = hsrl_time_now() - t_w;

  sim_sid_stats s;
  sim_sid_stats_compute(&s, &f.cb, f.tokens, f.live, d.n_items + 1, vec);
  if (stats_out) *stats_out = s;
  if (o->verbose) {
    printf("sid build: %s -> %s\n", o->data_path, o->out_path);
    printf("  vectors  %s, %lld items x %lld%s%s\n", o->vectors, (long long)d.n_items, (long long)dim,
           use_sim ? ", simulator " : " (raw features)", use_sim ? sim_path : "");
    printf("  config   %s (hash %016llx)\n", cfg, (unsigned long long)f.config_hash);
    for (int l = 0; l < L; l++)
      printf("  level %d  V %lld: %d sample + %d full Lloyd passes%s, %lld re-seeded, largest cluster "
             "%lld, mse after %.5g, %.2f s\n",
             l + 1, (long long)c->vocab[l], rep.warm_iters[l], rep.iters[l],
             rep.converged[l] ? " (converged)" : " (max-iter)", (long long)rep.n_reseeded[l],
             (long long)rep.max_size[l], rep.mse_after[l], rep.seconds[l]);
    if (c->dedup)
      printf("  dedup    %lld items moved to a free last-level code, %lld unresolved (prefix full)\n",
             (long long)rep.n_dedup_moved, (long long)rep.n_dedup_unresolved);
    printf("  time     load %.2f s, build %.2f s, write %.2f s; peak RSS %.0f MB\n", t_load,
           rep.seconds_total, t_write, sid_cmd_peak_rss_mb());
    sim_sid_stats_print(&s, stdout);
  }
done:
  sim_sid_file_free(&f);
  hsrl_free(learned);
  hsrl_free(sim_path);
  sim_urm_free(m);
  sim_dataset_free(&d);
  return st;
}

/* Matches argv[*i] as "--name VALUE" or "--name=VALUE": 1 (value set, *i advanced past it),
 * 0 (another argument), -1 (the value is missing). */
static int sid_cmd_option(int argc, char **argv, int *i, const char *name, const char **value) {
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

static int sid_cmd_parse_i64(const char *text, int64_t lo, int64_t hi, int64_t *out) {
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (!*text || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Appends "FMT % value" (a --set of the command's own option) to sets. */
static void sid_cmd_add_set(const char **sets, int64_t *n_sets, char *buf, const char *fmt, const char *value) {
  snprintf(buf, 96, fmt, value);
  sets[(*n_sets)++] = buf;
}

static int sid_cmd_build(int argc, char **argv) {
  int rc = 0, quiet = 0, dedup = 1, no_store = 0;
  const char *data_path = NULL, *sim_path = NULL, *out_path = NULL, *config_path = NULL;
  const char *vectors = NULL, *levels = NULL, *vocab = NULL, *balanced = NULL, *seed = NULL;
  const char *max_iter = NULL, *tol = NULL, *sample = NULL, *full_iter = NULL;
  int64_t n_sets = 0, vocab_list[SIM_SID_MAX_LEVELS + 1], n_vocab = 0, sample_v = 0, full_v = 0;
  double tol_v = 0.0;
  const char **sets = hsrl_malloc((size_t)(argc + 8) * sizeof *sets);
  char set_buf[8][96];
  hsrl_settings *s = hsrl_malloc(sizeof *s);
  hsrl_status st = HSRL_OK;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int m = 0;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      sid_cmd_build_usage(stdout);
      goto done;
    }
    if (!strcmp(a, "--quiet")) {
      quiet = 1;
      continue;
    }
    if (!strcmp(a, "--dedup") || !strcmp(a, "--no-dedup")) {
      dedup = !strcmp(a, "--dedup");
      continue;
    }
    if (!strcmp(a, "--no-store-vectors")) {
      no_store = 1;
      continue;
    }
    if (!strcmp(a, "--balanced")) {
      balanced = "all";
      continue;
    }
    const char *set = NULL;
    if (!m) m = sid_cmd_option(argc, argv, &i, "--data", &data_path);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--sim", &sim_path);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--out", &out_path);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--config", &config_path);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--vectors", &vectors);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--levels", &levels);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--vocab", &vocab);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--seed", &seed);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--max-iter", &max_iter);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--tol", &tol);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--sample", &sample);
    if (!m) m = sid_cmd_option(argc, argv, &i, "--full-iter", &full_iter);
    if (!m && !strncmp(a, "--balanced=", 11)) {
      balanced = a + 11;
      m = 1;
    }
    if (!m) {
      m = sid_cmd_option(argc, argv, &i, "--set", &set);
      if (m > 0) sets[n_sets++] = set;
    }
    if (m < 0) {
      fprintf(stderr, "hsrl sid build: %s needs a value; see 'hsrl sid build --help'\n", a);
      goto usage;
    }
    if (!m) {
      fprintf(stderr, "hsrl sid build: unknown argument '%s'; see 'hsrl sid build --help'\n", a);
      goto usage;
    }
  }
  if (!data_path || !out_path) {
    fprintf(stderr, "hsrl sid build: --data and --out are required; see 'hsrl sid build --help'\n");
    goto usage;
  }
  if (balanced && strcmp(balanced, "all") && strcmp(balanced, "last")) {
    fprintf(stderr, "hsrl sid build: --balanced takes 'all' or 'last', not '%s'\n", balanced);
    goto usage;
  }
  if (vocab) {
    n_vocab = hsrl_settings_parse_int_list(vocab, vocab_list, SIM_SID_MAX_LEVELS + 1);
    if (n_vocab < 1) {
      fprintf(stderr, "hsrl sid build: --vocab must be positive integers separated by commas, not '%s'\n", vocab);
      goto usage;
    }
  }
  if (sample && sid_cmd_parse_i64(sample, 1, INT64_MAX, &sample_v)) {
    fprintf(stderr, "hsrl sid build: --sample must be a positive integer, not '%s'\n", sample);
    goto usage;
  }
  if (full_iter && sid_cmd_parse_i64(full_iter, 1, 1000000, &full_v)) {
    fprintf(stderr, "hsrl sid build: --full-iter must be a positive integer, not '%s'\n", full_iter);
    goto usage;
  }
  if (tol) {
    char *end = NULL;
    tol_v = strtod(tol, &end);
    if (!*tol || *end != '\0' || !(tol_v >= 0.0 && tol_v < 1.0)) {
      fprintf(stderr, "hsrl sid build: --tol must be a number in [0, 1), not '%s'\n", tol);
      goto usage;
    }
  }
  /* the command's own options become settings, validated by the settings engine */
  int nb = 0;
  if (levels) sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "sid.levels=%s", levels);
  if (n_vocab > 0) {
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)vocab_list[0]);
    sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "sid.vocab=%s", v);
  }
  if (vectors) sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "sid.vectors=%s", vectors);
  else if (sim_path) sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "sid.vectors=%s", "sim");
  if (balanced) sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "sid.balanced=%s", "true");
  if (seed) sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "run.seed=%s", seed);
  if (max_iter) sid_cmd_add_set(sets, &n_sets, set_buf[nb++], "sid.max_iter=%s", max_iter);
  HSRL_TRY(hsrl_settings_load(s, config_path, n_sets, sets));
  if (sim_path && strcmp(s->sid.vectors, "sim")) {
    fprintf(stderr, "hsrl sid build: --sim given but the vectors are '%s'; drop one of them\n", s->sid.vectors);
    goto usage;
  }

  sim_sid_build_options o;
  sim_sid_build_options_make(&o, s);
  o.data_path = data_path;
  o.sim_path = sim_path;
  o.out_path = out_path;
  o.verbose = !quiet;
  o.store_vectors = !no_store;
  o.build.dedup = dedup;
  if (balanced) o.build.balanced = !strcmp(balanced, "last") ? 2 : 1;
  if (tol) o.build.tol = tol_v;
  o.build.sample = sample_v;
  o.build.full_iter = (int)full_v;
  if (n_vocab > 1) {
    if (n_vocab != o.build.n_levels) {
      fprintf(stderr, "hsrl sid build: --vocab gives %lld values for %d levels; give one or one per level\n",
              (long long)n_vocab, o.build.n_levels);
      goto usage;
    }
    for (int l = 0; l < o.build.n_levels; l++) o.build.vocab[l] = vocab_list[l];
  }
  if (quiet) hsrl_log_set_level(HSRL_LOG_WARN);
  HSRL_TRY(sim_sid_build_run(&o, NULL));
  if (quiet) printf("sid build: %s -> %s\n", data_path, out_path);
  goto done;
usage:
  rc = 2;
done:
  if (st != HSRL_OK) {
    fprintf(stderr, "hsrl sid build: %s\n", hsrl_err_message());
    rc = hsrl_status_exit_code(st);
  }
  hsrl_free(s);
  hsrl_free(sets);
  return rc;
}

/* ---- stats --------------------------------------------------------------------------------- */

static int sid_cmd_stats(int argc, char **argv) {
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      sid_cmd_stats_usage(stdout);
      return 0;
    }
    if (argv[i][0] == '-' || path) {
      fprintf(stderr, "hsrl sid stats: unexpected argument '%s'; see 'hsrl sid stats --help'\n", argv[i]);
      return 2;
    }
    path = argv[i];
  }
  if (!path) {
    fprintf(stderr, "hsrl sid stats: which file? see 'hsrl sid stats --help'\n");
    return 2;
  }
  sim_sid_file f;
  float *vec = NULL;
  int64_t rows = 0, dim = 0;
  hsrl_status st = sim_sid_file_read(&f, path);
  if (st == HSRL_OK) st = sim_sid_file_read_vectors(&vec, &rows, &dim, path);
  if (st == HSRL_OK && vec && (rows != f.n_items + 1 || dim != f.cb.dim))
    st = hsrl_err(HSRL_E_INPUT, path, 0, "items/vectors", "shape (%lld, %lld); expected (%lld, %lld)",
                  (long long)rows, (long long)dim, (long long)(f.n_items + 1), (long long)f.cb.dim);
  if (st != HSRL_OK) {
    fprintf(stderr, "hsrl sid stats: %s\n", hsrl_err_message());
    hsrl_free(vec);
    sim_sid_file_free(&f);
    return hsrl_status_exit_code(st);
  }
  sim_sid_stats s;
  sim_sid_stats_compute(&s, &f.cb, f.tokens, f.live, f.n_items + 1, vec);
  printf("sid stats: %s\n", path);
  printf("  %lld item rows (%lld live), %d levels, vocab", (long long)f.n_items, (long long)s.n_items,
         f.cb.n_levels);
  for (int l = 0; l < f.cb.n_levels; l++) printf("%s%lld", l ? "," : " ", (long long)f.cb.vocab[l]);
  printf(", vectors %s of width %lld%s, config hash %016llx\n", f.vectors, (long long)f.cb.dim,
         vec ? "" : " (not stored: no reconstruction error)", (unsigned long long)f.config_hash);
  sim_sid_stats_print(&s, stdout);
  hsrl_free(vec);
  sim_sid_file_free(&f);
  return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

int sim_sid_command(int argc, char **argv) {
  if (argc < 2) {
    sid_cmd_usage(stderr);
    return 2;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
    sid_cmd_usage(stdout);
    return 0;
  }
  if (!strcmp(sub, "build")) return sid_cmd_build(argc - 1, argv + 1);
  if (!strcmp(sub, "stats")) return sid_cmd_stats(argc - 1, argv + 1);
  if (!strcmp(sub, "assign")) return sim_sid_assign_command(argc - 1, argv + 1); /* argv[0] "assign" */
  fprintf(stderr, "hsrl sid: '%s' is not a subcommand (build, stats, assign); see 'hsrl sid --help'\n", sub);
  return 2;
}
