/* learner_plot.c: `hsrl plot RUN_DIR` (see learner_plot.h). Reads the run's tables, checks them,
 * writes a gnuplot script that names the columns it found by their positions, and runs gnuplot. */
#include "learner/learner_plot.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_status.h"

#define PLOT_PATH_MAX 1024
#define PLOT_MAX_COLS 256
#define PLOT_MAX_BARS 64

extern char **environ;

/* ---------------------------------------------------------------- small helpers */

static char *plot_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0, n;
  char *buf = hsrl_malloc(cap);
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len - 1 == 0) {
      cap *= 2;
      buf = hsrl_realloc(buf, cap);
    }
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

static int plot_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* gnuplot single-quoted string: a ' is written twice. */
static void plot_quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputc('\'', f);
    fputc(*s, f);
  }
  fputc('\'', f);
}

/* The first executable called `name` on PATH into out; 0 if none. */
static int plot_find_program(const char *name, char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (!path || !*path) return 0;
  for (const char *p = path; *p;) {
    const char *e = strchr(p, ':');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n > 0 && snprintf(out, cap, "%.*s/%s", (int)n, p, name) < (int)cap && access(out, X_OK) == 0)
      return 1;
    p = e ? e + 1 : p + n;
  }
  return 0;
}

/* path made absolute against cwd (without a trailing '/'); nonzero when it does not fit. */
static int plot_absolute(char *out, size_t cap, const char *cwd, const char *path) {
  int n = path[0] == '/' ? snprintf(out, cap, "%s", path) : snprintf(out, cap, "%s/%s", cwd, path);
  if (n < 0 || n >= (int)cap) return 1;
  while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
  return 0;
}

/* ---------------------------------------------------------------- metrics.tsv */

typedef struct plot_metrics {
  int n_cols;
  char *names[PLOT_MAX_COLS]; /* point into text */
  int nonzero[PLOT_MAX_COLS]; /* 1 if some value of the column is finite and not 0 */
  int64_t n_rows;
  char *text;
} plot_metrics;

/* Reads and checks metrics.tsv: a header row of names, then rows of numbers ("nan" allowed). */
static hsrl_status plot_metrics_read(plot_metrics *m, const char *path) {
  memset(m, 0, sizeof *m);
  m->text = plot_read_file(path);
  if (!m->text) return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "cannot open: %s", strerror(errno));
  char *copy = hsrl_strdup(m->text);
  hsrl_status st = HSRL_OK;
  long lineno = 0;
  char *line = m->text;
  /* header */
  char *nl = strchr(line, '\n');
  if (!nl) {
    st = hsrl_err(HSRL_E_INPUT, path, 1, NULL,
                  "no header row (expected tab-separated column names, then rows)");
    goto done;
  }
  *nl = '\0';
  lineno = 1;
  for (char *p = line;;) {
    char *tab = strchr(p, '\t');
    if (tab) *tab = '\0';
    if (!*p || m->n_cols == PLOT_MAX_COLS) {
      st = hsrl_err(HSRL_E_INPUT, path, 1, NULL,
                    "the header row has an empty column name or more than %d columns", PLOT_MAX_COLS);
      goto done;
    }
    m->names[m->n_cols++] = p;
    if (!tab) break;
    p = tab + 1;
  }
  int has_iteration = 0;
  for (int j = 0; j < m->n_cols; j++) has_iteration |= !strcmp(m->names[j], "iteration");
  if (!has_iteration) {
    st = hsrl_err(HSRL_E_INPUT, path, 1, "iteration",
                  "no 'iteration' column in the header row (is this a metrics.tsv?)");
    goto done;
  }
  /* rows: checked on the copy, so that the names stay intact */
  line = copy + (nl - m->text) + 1;
  while (*line) {
    lineno++;
    char *e = strchr(line, '\n');
    if (e) *e = '\0';
    if (*line) {
      int n = 0;
      for (char *p = line;;) {
        char *tab = strchr(p, '\t');
        if (tab) *tab = '\0';
        if (n < m->n_cols) {
          char *end = NULL;
          double v = strtod(p, &end);
          if (v != 0.0 && v - v == 0.0) m->nonzero[n] = 1; /* finite and not 0 */
          if (end == p || *end) {
            st = hsrl_err(HSRL_E_INPUT, path, lineno, m->names[n], "'%s' is not a number", p);
            goto done;
          }
        }
        n++;
        if (!tab) break;
        p = tab + 1;
      }
      if (n != m->n_cols) {
        st = hsrl_err(HSRL_E_INPUT, path, lineno, NULL, "%d fields, the header names %d", n, m->n_cols);
        goto done;
      }
      m->n_rows++;
    }
    if (!e) break;
    line = e + 1;
  }
  if (m->n_rows == 0) st = hsrl_err(HSRL_E_INPUT, path, 0, NULL, "no rows below the header (no report yet)");
done:
  hsrl_free(copy);
  return st;
}

/* 1-based gnuplot column of `name`, 0 if absent. */
static int plot_col(const plot_metrics *m, const char *name) {
  for (int j = 0; j < m->n_cols; j++)
    if (!strcmp(m->names[j], name)) return j + 1;
  return 0;
}

/* ---------------------------------------------------------------- the results table */

typedef struct plot_bar {
  char policy[64];
  double mean, std;
} plot_bar;

/* results.tsv of `hsrl run`: '#' lines, a header with policy, total_reward_mean, total_reward_std. */
static hsrl_status plot_results_tsv(const char *path, plot_bar *bars, int *n) {
  char *text = plot_read_file(path);
  if (!text) return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "cannot open");
  hsrl_status st = HSRL_OK;
  int c_pol = -1, c_mean = -1, c_std = -1, header = 0;
  long lineno = 0;
  *n = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    lineno++;
    if (line[0] != '#' && line[0]) {
      char *f[64];
      int nf = 0;
      for (char *p = line; nf < 64;) {
        char *tab = strchr(p, '\t');
        if (tab) *tab = '\0';
        f[nf++] = p;
        if (!tab) break;
        p = tab + 1;
      }
      if (!header) {
        for (int j = 0; j < nf; j++) {
          if (!strcmp(f[j], "policy")) c_pol = j;
          if (!strcmp(f[j], "total_reward_mean")) c_mean = j;
          if (!strcmp(f[j], "total_reward_std")) c_std = j;
        }
        if (c_pol < 0 || c_mean < 0 || c_std < 0) {
          st = hsrl_err(HSRL_E_INPUT, path, lineno, NULL,
                        "the header row lacks policy, total_reward_mean or total_reward_std");
          goto done;
        }
        header = 1;
      } else {
        char *e1 = NULL, *e2 = NULL;
        if (nf <= c_pol || nf <= c_mean || nf <= c_std) {
          st = hsrl_err(HSRL_E_INPUT, path, lineno, NULL, "%d fields, fewer than the header's", nf);
          goto done;
        }
        if (*n == PLOT_MAX_BARS) break;
        plot_bar *b = &bars[*n];
        snprintf(b->policy, sizeof b->policy, "%s", f[c_pol]);
        b->mean = strtod(f[c_mean], &e1);
        b->std = strtod(f[c_std], &e2);
        if (e1 == f[c_mean] || *e1 || e2 == f[c_std] || *e2) {
          st = hsrl_err(HSRL_E_INPUT, path, lineno, "total_reward_mean", "not a number");
          goto done;
        }
        (*n)++;
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  if (*n == 0) st = hsrl_err(HSRL_E_INPUT, path, 0, NULL, "no rows");
done:
  hsrl_free(text);
  return st;
}

/* The number after "key": at or after p (NULL when absent). */
static const char *plot_json_number(const char *p, const char *key, double *v) {
  const char *k = strstr(p, key);
  if (!k) return NULL;
  k += strlen(key);
  char *end = NULL;
  *v = strtod(k, &end);
  return end == k ? NULL : end;
}

/* eval.json of `hsrl eval` (sim_eval_write_json): per policy "policy", then "mean": {...
 * "total_reward_mean": X ...}, "std": {... "total_reward_mean": Y ...}. */
static hsrl_status plot_results_json(const char *path, plot_bar *bars, int *n) {
  char *text = plot_read_file(path);
  if (!text) return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "cannot open");
  hsrl_status st = HSRL_OK;
  *n = 0;
  for (const char *p = strstr(text, "\"policy\": \""); p && *n < PLOT_MAX_BARS;
       p = strstr(p, "\"policy\": \"")) {
    p += 11;
    const char *q = strchr(p, '"');
    const char *mean = strstr(p, "\"mean\": {"), *std = strstr(p, "\"std\": {");
    plot_bar *b = &bars[*n];
    if (!q || !mean || !std || !plot_json_number(mean, "\"total_reward_mean\": ", &b->mean) ||
        !plot_json_number(std, "\"total_reward_mean\": ", &b->std)) {
      st = hsrl_err(HSRL_E_INPUT, path, 0, "policies", "not an hsrl eval file (policy %d has no mean/std)",
                    *n + 1);
      goto done;
    }
    snprintf(b->policy, sizeof b->policy, "%.*s", (int)(q - p), p);
    (*n)++;
    p = q;
  }
  if (*n == 0) st = hsrl_err(HSRL_E_INPUT, path, 0, "policies", "no policies");
done:
  hsrl_free(text);
  return st;
}

/* ---------------------------------------------------------------- the script */

/* One PNG with one line per column (cols 1-based, n of them), x = iteration. */
static void plot_lines(FILE *f, const char *out_dir, const char *png, const char *title, const char *ylabel,
                       const char *metrics, int x, const int *cols, const char *const *labels, int n) {
  fprintf(f, "\nset output ");
  char path[2 * PLOT_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", out_dir, png);
  plot_quote(f, path);
  fprintf(f, "\nset title ");
  plot_quote(f, title);
  fprintf(f, "\nset xlabel 'iteration'\nset ylabel ");
  plot_quote(f, ylabel);
  fprintf(f, "\nplot ");
  for (int i = 0; i < n; i++) {
    fprintf(f, "%s", i ? ", \\\n     " : "");
    plot_quote(f, metrics);
    fprintf(f, " using %d:%d skip 1 with linespoints pt 7 ps 0.5 title ", x, cols[i]);
    plot_quote(f, labels[i]);
  }
  fprintf(f, "\n");
}

/* The PNG terminal, 800 x height: pngcairo when this gnuplot has it, else png. */
static void plot_terminal(FILE *f, int height) {
  fprintf(f,
          "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
          "  set terminal pngcairo size 800,%d noenhanced font ',10'\n"
          "} else {\n"
          "  set terminal png size 800,%d noenhanced\n"
          "}\n",
          height, height);
}

static int plot_usage(FILE *f, int rc) {
  fprintf(f,
          "usage: hsrl plot RUN_DIR [--out DIR]\n"
          "\n"
          "Draws PNG plots of a training run with gnuplot: total_reward.png and depth.png (the\n"
          "training episodes' Total Reward and Depth; with train.val_every, the validations' Total\n"
          "Reward too), losses.png, mlc_weights.png (the multi-level\n"
          "critic's level weights), each from RUN_DIR/metrics.tsv, and eval.png (Total Reward per\n"
          "policy with +- std across seeds) from RUN_DIR/results.tsv (hsrl run) or RUN_DIR/eval.json\n"
          "(hsrl eval). Also writes plot.gp, the gnuplot script, to restyle by hand.\n"
          "\n"
          "options:\n"
          "  --out DIR   where to write (default RUN_DIR/plots)\n"
          "  -h, --help  this text\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage, run directory or table (the message names the file,\n"
          "line and column), 1 gnuplot missing or failed.\n");
  return rc;
}

int learner_plot_command(int argc, char **argv) {
  const char *run_dir = NULL, *out_opt = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return plot_usage(stdout, 0);
    if (!strcmp(a, "--out")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hsrl plot: --out needs a value; see 'hsrl plot --help'\n");
        return 2;
      }
      out_opt = argv[++i];
    } else if (!strncmp(a, "--out=", 6)) {
      out_opt = a + 6;
    } else if (a[0] == '-') {
      fprintf(stderr, "hsrl plot: unknown argument '%s'; see 'hsrl plot --help'\n", a);
      return 2;
    } else if (run_dir) {
      fprintf(stderr, "hsrl plot: one RUN_DIR only (got '%s' and '%s')\n", run_dir, a);
      return 2;
    } else {
      run_dir = a;
    }
  }
  if (!run_dir) {
    fprintf(stderr, "hsrl plot: RUN_DIR is required; see 'hsrl plot --help'\n");
    return 2;
  }
  if (!plot_is_dir(run_dir)) {
    fprintf(stderr, "hsrl plot: %s: %s\n", run_dir,
            access(run_dir, F_OK) == 0 ? "not a directory" : "no such run directory");
    return 2;
  }
  int rc = 2;
  hsrl_status st = HSRL_OK;
  plot_metrics m;
  memset(&m, 0, sizeof m);
  plot_bar *bars = hsrl_calloc(PLOT_MAX_BARS, sizeof *bars);
  int n_bars = 0;
  FILE *f = NULL;
  char metrics[PLOT_PATH_MAX + 16], out_dir[PLOT_PATH_MAX + 16], results[PLOT_PATH_MAX + 16],
      script[PLOT_PATH_MAX + 32];
  char dat[PLOT_PATH_MAX + 32], gnuplot[PLOT_PATH_MAX], png[PLOT_PATH_MAX + 32];
  /* absolute paths, so that plot.gp runs from any directory */
  char cwd[PLOT_PATH_MAX], abs_run[PLOT_PATH_MAX], abs_out[PLOT_PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
  if (plot_absolute(abs_run, sizeof abs_run, cwd, run_dir) ||
      (out_opt && plot_absolute(abs_out, sizeof abs_out, cwd, out_opt)) ||
      snprintf(metrics, sizeof metrics, "%s/metrics.tsv", abs_run) >= (int)sizeof metrics ||
      snprintf(out_dir, sizeof out_dir, "%s%s", out_opt ? abs_out : abs_run, out_opt ? "" : "/plots") >=
          (int)sizeof out_dir) {
    fprintf(stderr, "hsrl plot: path too long\n");
    goto done;
  }
  if ((st = plot_metrics_read(&m, metrics)) != HSRL_OK) {
    fprintf(stderr, "hsrl plot: %s\n", hsrl_err_message());
    goto done;
  }
  /* the results table: hsrl run's, else hsrl eval's */
  snprintf(results, sizeof results, "%s/results.tsv", abs_run);
  if (access(results, R_OK) == 0) {
    st = plot_results_tsv(results, bars, &n_bars);
  } else {
    snprintf(results, sizeof results, "%s/eval.json", abs_run);
    if (access(results, R_OK) == 0) st = plot_results_json(results, bars, &n_bars);
  }
  if (st != HSRL_OK) {
    fprintf(stderr, "hsrl plot: %s\n", hsrl_err_message());
    goto done;
  }
  if (!plot_find_program("gnuplot", gnuplot, sizeof gnuplot)) {
    fprintf(stderr,
            "hsrl plot: gnuplot is not installed (not on PATH); install it with "
            "'apt-get install gnuplot-nox' (scripts/install-deps.sh does)\n");
    rc = 1;
    goto done;
  }
  {
    /* mkdir -p out_dir */
    char p[PLOT_PATH_MAX + 16];
    snprintf(p, sizeof p, "%s", out_dir);
    for (char *q = p + 1;; q++) {
      if (*q == '/' || *q == '\0') {
        char ch = *q;
        *q = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
          fprintf(stderr, "hsrl plot: %s: cannot make the directory: %s\n", p, strerror(errno));
          rc = 1;
          goto done;
        }
        *q = ch;
        if (!ch) break;
      }
    }
  }
  snprintf(script, sizeof script, "%s/plot.gp", out_dir);
  snprintf(dat, sizeof dat, "%s/eval.dat", out_dir);
  f = fopen(script, "w");
  if (!f) {
    fprintf(stderr, "hsrl plot: %s: cannot write: %s\n", script, strerror(errno));
    rc = 1;
    goto done;
  }
  const char *run_name = strrchr(abs_run, '/');
  run_name = run_name && run_name[1] ? run_name + 1 : abs_run;
  fprintf(f, "# plot.gp: written by `hsrl plot %s`; run again with `gnuplot plot.gp`.\n", run_dir);
  plot_terminal(f, 480);
  fprintf(f, "set datafile separator '\\t'\nset grid\nset key top left\n");
  const char *made[8];
  int n_made = 0;
  int x = plot_col(&m, "iteration");
  char title[PLOT_PATH_MAX + 256];
  {
    static const char *const one[][3] = {{"total_reward", "total_reward.png", "Total Reward"},
                                         {"depth", "depth.png", "Depth"}};
    for (int k = 0; k < 2; k++) {
      int col = plot_col(&m, one[k][0]);
      if (!col) continue;
      snprintf(title, sizeof title, "%s: %s of the training episodes (mean per report)", run_name, one[k][2]);
      const char *lab[2] = {one[k][2], "greedy, validation (train.val_every)"};
      int cols[2] = {col, k == 0 ? plot_col(&m, "val_reward") : 0};
      if (cols[1]) lab[0] = "training episodes";
      plot_lines(f, out_dir, one[k][1], title, one[k][2], metrics, x, cols, lab, cols[1] ? 2 : 1);
      made[n_made++] = one[k][1];
    }
  }
  {
    /* losses: every *_loss column, and entropy: one panel each (their scales differ) */
    int cols[PLOT_MAX_COLS], n = 0;
    for (int j = 0; j < m.n_cols; j++) {
      size_t len = strlen(m.names[j]);
      /* a column that is 0 throughout is one this agent does not report (SL has no critic) */
      if (((len > 5 && !strcmp(m.names[j] + len - 5, "_loss")) || !strcmp(m.names[j], "entropy")) &&
          m.nonzero[j])
        cols[n++] = j + 1;
    }
    if (n > 0) {
      snprintf(png, sizeof png, "%s/losses.png", out_dir);
      fprintf(f, "\n");
      plot_terminal(f, 200 * n + 80);
      fprintf(f, "set output ");
      plot_quote(f, png);
      snprintf(title, sizeof title, "%s: losses (mean per report)", run_name);
      fprintf(f, "\nset multiplot layout %d,1 title ", n);
      plot_quote(f, title);
      fprintf(f, "\nset title\nset xlabel 'iteration'\n");
      for (int i = 0; i < n; i++) {
        fprintf(f, "set ylabel ");
        plot_quote(f, m.names[cols[i] - 1]);
        fprintf(f, "\nplot ");
        plot_quote(f, metrics);
        fprintf(f, " using %d:%d skip 1 with lines notitle\n", x, cols[i]);
      }
      fprintf(f, "unset multiplot\n");
      plot_terminal(f, 480);
      made[n_made++] = "losses.png";
    }
  }
  {
    int cols[PLOT_MAX_COLS], n = 0;
    const char *labels[PLOT_MAX_COLS];
    for (int j = 0; j < m.n_cols; j++)
      if (!strncmp(m.names[j], "mlc_w", 5) && m.nonzero[j]) cols[n] = j + 1, labels[n++] = m.names[j];
    if (n > 0) {
      snprintf(title, sizeof title, "%s: multi-level critic weights (level 0 = c_0)", run_name);
      plot_lines(f, out_dir, "mlc_weights.png", title, "weight", metrics, x, cols, labels, n);
      made[n_made++] = "mlc_weights.png";
    }
  }
  if (n_bars > 0) {
    FILE *d = fopen(dat, "w");
    if (!d) {
      fprintf(stderr, "hsrl plot: %s: cannot write: %s\n", dat, strerror(errno));
      rc = 1;
      goto done;
    }
    fprintf(d, "# policy\ttotal_reward_mean\ttotal_reward_std (from %s)\n", results);
    for (int i = 0; i < n_bars; i++)
      fprintf(d, "%s\t%.6f\t%.6f\n", bars[i].policy, bars[i].mean, bars[i].std);
    if (fclose(d) != 0) {
      fprintf(stderr, "hsrl plot: %s: cannot write\n", dat);
      rc = 1;
      goto done;
    }
    snprintf(png, sizeof png, "%s/eval.png", out_dir);
    fprintf(f, "\nset output ");
    plot_quote(f, png);
    snprintf(title, sizeof title, "%s: Total Reward per policy (mean +- std across seeds)", run_name);
    fprintf(f, "\nset title ");
    plot_quote(f, title);
    fprintf(f,
            "\nset xlabel ''\nset ylabel 'Total Reward'\nset key off\nset style data histogram\n"
            "set style histogram errorbars gap 1 lw 1\nset style fill solid 0.6 border -1\n"
            "set boxwidth 0.8\nset xtics nomirror\nset xzeroaxis lt -1\n");
    int negative = 0;
    for (int i = 0; i < n_bars; i++) negative |= bars[i].mean - bars[i].std < 0.0;
    fprintf(f, "set yrange [%s:*]\nplot ", negative ? "*" : "0");
    plot_quote(f, dat);
    fprintf(f, " using 2:3:xtic(1) lc rgb '#4a7ebb'\n");
    made[n_made++] = "eval.png";
  }
  if (fclose(f) != 0) {
    f = NULL;
    fprintf(stderr, "hsrl plot: %s: cannot write\n", script);
    rc = 1;
    goto done;
  }
  f = NULL;
  {
    /* run gnuplot on the script; its messages go to our stderr */
    for (int i = 0; i < n_made; i++) {
      snprintf(png, sizeof png, "%s/%s", out_dir, made[i]);
      remove(png);
    }
    char *args[] = {gnuplot, script, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, gnuplot, NULL, NULL, args, environ);
    int status = 0;
    if (err != 0) {
      fprintf(stderr, "hsrl plot: cannot run %s: %s\n", gnuplot, strerror(err));
      rc = 1;
      goto done;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "hsrl plot: gnuplot failed on %s (exit %d)\n", script,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      rc = 1;
      goto done;
    }
    for (int i = 0; i < n_made; i++) {
      snprintf(png, sizeof png, "%s/%s", out_dir, made[i]);
      struct stat sb;
      if (stat(png, &sb) != 0 || sb.st_size == 0) {
        fprintf(stderr, "hsrl plot: gnuplot wrote no %s\n", png);
        rc = 1;
        goto done;
      }
      size_t nc = strlen(cwd);
      printf("%s\n", !strncmp(png, cwd, nc) && png[nc] == '/' ? png + nc + 1 : png);
    }
  }
  if (n_bars == 0) fprintf(stderr, "hsrl plot: no results.tsv or eval.json in %s: no eval.png\n", run_dir);
  rc = 0;
done:
  if (f) fclose(f);
  hsrl_free(m.text);
  hsrl_free(bars);
  return rc;
}
