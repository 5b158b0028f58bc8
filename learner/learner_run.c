/* learner_run.c: `hsrl run CONFIG`, the pipeline with stage records (see learner_run.h;
 * method.md sections 2-9). Each stage calls the same library entry points as its command (data
 * readers and sim_synth, sim_urm_train, sim_sid_build_run, learner_train_run, sim_eval_seeds), in
 * this process. */
#include "learner/learner_run.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_config.h"
#include "common/hsrl_log.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "common/hsrl_timer.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_threads.h"
#include "learner/learner_train.h"
#include "sim/sim_click_adapters.h"
#include "sim/sim_data.h"
#include "sim/sim_eval.h"
#include "sim/sim_policy_simple.h"
#include "sim/sim_reader_movielens.h"
#include "sim/sim_reader_rl4rs.h"
#include "sim/sim_sid_cmd.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_synth.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"

#define RUN_PATH_MAX 1024
#define RUN_MAX_AGENTS 8    /* agent.kind and its baselines */
#define RUN_MAX_COMPARE 12  /* reference policies of run.compare */
#define RUN_MAX_POLICIES (RUN_MAX_AGENTS + RUN_MAX_COMPARE) /* rows of one table */
#define RUN_WORD_MAX 24     /* a word of run.baselines or run.compare */
#define RUN_REASON_MAX 1024
#define RUN_RECORD_VERSION 1

enum { ST_DATA, ST_SIM_TRAIN, ST_SIM_ALL, ST_SID, ST_TRAIN, ST_BASELINES, ST_EVAL, ST_N };
static const char *const run_stage_names[ST_N] = {"data",  "sim-train", "sim-all", "sid",
                                                  "train", "baselines", "eval"};

/* ---------------------------------------------------------------- growing text */

typedef struct run_text {
  char *buf;
  size_t len, cap;
  /* dry run: the inputs that would be rebuilt first; unknown: one of them has no output yet */
  char rebuilt[256];
  int unknown;
} run_text;

static void run_text_add(run_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_text_add(run_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  HSRL_CHECK(n >= 0);
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + (size_t)n + 1) cap *= 2;
    t->buf = hsrl_realloc(t->buf, cap);
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

/* snprintf for messages that may be cut at cap. */
static void run_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void run_fmt(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
}

static void run_text_free(run_text *t) {
  hsrl_free(t->buf);
  memset(t, 0, sizeof *t);
}

static const char *run_text_str(const run_text *t) { return t->buf ? t->buf : ""; }

/* ---------------------------------------------------------------- files and checksums */

static uint64_t run_fnv_bytes(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* FNV-1a 64 of the bytes of a file; HSRL_E_INPUT naming it when it cannot be read. */
static hsrl_status run_file_checksum(const char *path, uint64_t *sum) {
  FILE *f = fopen(path, "rb");
  if (!f) return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "cannot open: %s", strerror(errno));
  unsigned char *buf = hsrl_malloc(1 << 20);
  uint64_t h = 1469598103934665603ull;
  size_t n;
  while ((n = fread(buf, 1, 1 << 20, f)) > 0) h = run_fnv_bytes(h, buf, n);
  int bad = ferror(f);
  fclose(f);
  hsrl_free(buf);
  if (bad) return hsrl_err(HSRL_E_IO, path, 0, NULL, "read error");
  *sum = h;
  return HSRL_OK;
}

static int run_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static int run_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* mkdir -p of dir. */
static hsrl_status run_mkdirs(const char *dir) {
  char p[RUN_PATH_MAX];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return hsrl_err(HSRL_E_USAGE, dir, 0, NULL, "path too long");
  for (char *q = p + 1;; q++) {
    if (*q == '/' || *q == '\0') {
      char c = *q;
      *q = '\0';
      if (p[0] && mkdir(p, 0777) != 0 && errno != EEXIST)
        return hsrl_err(HSRL_E_IO, p, 0, NULL, "cannot make the directory: %s", strerror(errno));
      *q = c;
      if (c == '\0') break;
    }
  }
  if (!run_is_dir(p)) return hsrl_err(HSRL_E_IO, p, 0, NULL, "not a directory");
  return HSRL_OK;
}

/* mkdir -p of the directory part of a file path. */
static hsrl_status run_mkdirs_parent(const char *file) {
  char p[RUN_PATH_MAX];
  if (snprintf(p, sizeof p, "%s", file) >= (int)sizeof p)
    return hsrl_err(HSRL_E_USAGE, file, 0, NULL, "path too long");
  char *slash = strrchr(p, '/');
  if (!slash || slash == p) return HSRL_OK;
  *slash = '\0';
  return run_mkdirs(p);
}

/* rm -r of a directory made by hsrl run (symbolic links are removed, never followed). */
static hsrl_status run_rmtree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0)
    return errno == ENOENT ? HSRL_OK : hsrl_err(HSRL_E_IO, path, 0, NULL, "%s", strerror(errno));
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (!d) return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot read the directory: %s", strerror(errno));
    struct dirent *e;
    hsrl_status st = HSRL_OK;
    char child[RUN_PATH_MAX];
    while (st == HSRL_OK && (e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child)
        st = hsrl_err(HSRL_E_IO, path, 0, NULL, "path too long");
      else
        st = run_rmtree(child);
    }
    closedir(d);
    if (st != HSRL_OK) return st;
    if (rmdir(path) != 0) return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot remove: %s", strerror(errno));
    return HSRL_OK;
  }
  if (unlink(path) != 0) return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot remove: %s", strerror(errno));
  return HSRL_OK;
}

/* Writes text to path atomically (path.tmp-<pid>, then rename). */
static hsrl_status run_write_file(const char *path, const char *text) {
  char tmp[RUN_PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return hsrl_err(HSRL_E_IO, tmp, 0, NULL, "cannot write: %s", strerror(errno));
  size_t n = strlen(text);
  int bad = fwrite(text, 1, n, f) != n;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    remove(tmp);
    return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot write");
  }
  return HSRL_OK;
}

/* The whole of a small text file (hsrl_malloc'd, NUL-terminated) or NULL. */
static char *run_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0, n;
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

/* ---------------------------------------------------------------- the pipeline's state */

typedef struct run_agent {
  char kind[HSRL_SETTINGS_ENUM_MAX]; /* its name in run.baselines and the table: sl, hsrl-no-bc, ... */
  const char *base;                  /* the agent.kind it trains (sl, hsrl) */
  const char *const *set;            /* the switches it applies ({"agent.bc=false"}), or NULL */
  int n_set;
  char dir[RUN_PATH_MAX];  /* out_dir/name or out_dir/name-<kind> */
  char ckpt[RUN_PATH_MAX]; /* its final checkpoint */
  uint64_t sum;            /* checksum of the final checkpoint */
  int pending;             /* dry run: RUN_DRY_* */
} run_agent;

typedef struct run_ctx {
  hsrl_settings s;    /* the effective config */
  const char *config; /* CONFIG as given */
  int quiet, dry_run;
  int force[ST_N];
  int used[ST_N];               /* the stage is part of this pipeline */
  char out[ST_N][RUN_PATH_MAX]; /* the file each file stage makes */
  uint64_t sum[ST_N];           /* checksum of that file once current */
  int pending[ST_N];            /* dry run: RUN_DRY_* */
  int64_t n_agents;
  run_agent agents[RUN_MAX_AGENTS]; /* [0]: agent.kind (train); then the baselines */
  int64_t n_compare;
  char compare[RUN_MAX_COMPARE][RUN_WORD_MAX];      /* as written: the row's name */
  char compare_base[RUN_MAX_COMPARE][RUN_WORD_MAX]; /* random, popular, greedy or oracle */
  int64_t compare_cap[RUN_MAX_COMPARE];             /* NAME-capC: C items per level-1 SID token; 0: none */
  int64_t n_capped;                                  /* compare entries with a cap (they read run.sid) */
  int eval_in_world; /* run.sim_all empty: the synthetic world's ground truth */
  char cwd[RUN_PATH_MAX];
  int n_ran, n_skipped;
} run_ctx;

/* path as the user would type it: relative to the working directory when below it. */
static const char *run_show(const run_ctx *c, const char *path) {
  size_t n = strlen(c->cwd);
  if (n > 1 && !strncmp(path, c->cwd, n) && path[n] == '/') return path + n + 1;
  return path;
}

/* ---------------------------------------------------------------- stage texts */

/* 1 if the field is named by one of the patterns: "section" or "section.key". */
static int run_field_matches(const hsrl_config_field *f, const char *const *patterns) {
  for (const char *const *p = patterns; *p; p++) {
    const char *dot = strchr(*p, '.');
    if (!dot) {
      if (!strcmp(*p, f->section)) return 1;
    } else if ((size_t)(dot - *p) == strlen(f->section) && !strncmp(*p, f->section, (size_t)(dot - *p)) &&
               !strcmp(dot + 1, f->key)) {
      return 1;
    }
  }
  return 0;
}

/* "key section.key = value" for every non-path field of s the patterns name, except `skip`. */
static void run_text_keys(run_text *t, const hsrl_settings *s, const char *const *patterns,
                          const char *skip) {
  const hsrl_config_schema *sc = hsrl_settings_schema();
  char v[HSRL_SETTINGS_STR_MAX + 8], name[128];
  for (int64_t i = 0; i < sc->n_fields; i++) {
    const hsrl_config_field *f = &sc->fields[i];
    if (hsrl_settings_field_is_path(f) || !run_field_matches(f, patterns)) continue;
    snprintf(name, sizeof name, "%s.%s", f->section, f->key);
    if (skip && !strcmp(name, skip)) continue;
    hsrl_config_field_format(f, s, v, sizeof v);
    run_text_add(t, "key %s = %s\n", name, v);
  }
}

/* A dry run does not rebuild anything; a stage it would run has, for the stages after it:
 * RUN_DRY_NONE   no rebuild (its output is current, sum is its checksum);
 * RUN_DRY_SAME   a rebuild, taken to give the present output again (sum is the present one's), so
 *                the later stages are checked as if it did, and said to rerun "if it differs";
 * RUN_DRY_NEW    a rebuild of an output that is not there yet: unknown bytes. */
enum { RUN_DRY_NONE, RUN_DRY_SAME, RUN_DRY_NEW };

/* "input NAME = PATH fnv1a64:XXXX"; dry: the input's RUN_DRY_* state. */
static void run_text_input(run_text *t, const char *name, const char *path, uint64_t sum, int dry) {
  if (dry != RUN_DRY_NONE) {
    size_t o = strlen(t->rebuilt);
    snprintf(t->rebuilt + o, sizeof t->rebuilt - o, "%s%s", o ? ", " : "", name);
    t->unknown |= dry == RUN_DRY_NEW;
  }
  if (dry == RUN_DRY_NEW)
    run_text_add(t, "input %s = (not made yet) %s\n", name, path);
  else
    run_text_add(t, "input %s = fnv1a64:%016llx %s\n", name, (unsigned long long)sum, path);
}

/* The identifying part of a stage-text line: all of a key line; of an input line, up to its
 * checksum (the path after it is for the reader: a moved file with the same bytes is the same
 * input). Returns its length. */
static size_t run_line_id(const char *line) {
  const char *nl = strchr(line, '\n');
  size_t len = nl ? (size_t)(nl - line) : strlen(line);
  if (strncmp(line, "input ", 6)) return len;
  const char *eq = strstr(line, " = ");
  if (!eq || (size_t)(eq - line) >= len) return len;
  const char *sp = strchr(eq + 3, ' ');
  if (!strncmp(eq + 3, "(not made yet)", 14)) sp = eq + 3 + 14;
  return sp && (size_t)(sp - line) < len ? (size_t)(sp - line) : len;
}

/* The stage hash: FNV-1a 64 of the identifying part of every line of the stage text. */
static uint64_t run_text_hash(const char *text) {
  uint64_t h = 1469598103934665603ull;
  for (const char *l = text; *l;) {
    const char *nl = strchr(l, '\n');
    h = run_fnv_bytes(h, (const unsigned char *)l, run_line_id(l));
    h = run_fnv_bytes(h, (const unsigned char *)"\n", 1);
    if (!nl) break;
    l = nl + 1;
  }
  return h;
}

/* The dry-run state a stage that would run leaves: its present output's checksum, or none. */
static int run_dry_state(const char *out, uint64_t *sum) {
  if (run_exists(out) && run_file_checksum(out, sum) == HSRL_OK) return RUN_DRY_SAME;
  hsrl_err_clear();
  return RUN_DRY_NEW;
}

/* ---------------------------------------------------------------- stage records */

typedef struct run_record {
  int present;
  char stage[32];
  uint64_t hash, resume_hash, output_sum;
  int complete;
  int64_t iteration;
  char *body; /* the "key ..." and "input ..." lines (hsrl_malloc) */
} run_record;

static void run_record_free(run_record *r) {
  hsrl_free(r->body);
  memset(r, 0, sizeof *r);
}

static int run_parse_hex(const char *v, uint64_t *out) {
  char *end = NULL;
  unsigned long long x = strtoull(v, &end, 16);
  if (end == v || (*end && *end != '\n')) return 0;
  *out = x;
  return 1;
}

/* Reads a stage record; r->present = 0 when there is none. A record that does not parse is
 * treated as absent (the stage reruns and rewrites it) and said so in *why. */
static void run_record_read(run_record *r, const char *path, char *why, size_t why_cap) {
  memset(r, 0, sizeof *r);
  why[0] = '\0';
  char *text = run_read_file(path);
  if (!text) return;
  run_text body = {0};
  int ok_hash = 0, ok_sum = 0, version = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (!strncmp(line, "key ", 4) || !strncmp(line, "input ", 6)) {
      run_text_add(&body, "%s\n", line);
    } else if (line[0] != '#' && line[0] != '\0') {
      char *eq = strstr(line, " = ");
      if (eq) {
        *eq = '\0';
        const char *v = eq + 3;
        if (!strcmp(line, "stage"))
          snprintf(r->stage, sizeof r->stage, "%s", v);
        else if (!strcmp(line, "format_version"))
          version = atoi(v);
        else if (!strcmp(line, "stage_hash"))
          ok_hash = run_parse_hex(v, &r->hash);
        else if (!strcmp(line, "resume_hash"))
          run_parse_hex(v, &r->resume_hash);
        else if (!strcmp(line, "output_fnv1a64"))
          ok_sum = run_parse_hex(v, &r->output_sum);
        else if (!strcmp(line, "complete"))
          r->complete = atoi(v);
        else if (!strcmp(line, "iteration"))
          r->iteration = atoll(v);
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  hsrl_free(text);
  if (version != RUN_RECORD_VERSION || !ok_hash || !ok_sum) {
    snprintf(why, why_cap, "its stage record %s does not parse", path);
    run_text_free(&body);
    return;
  }
  r->present = 1;
  r->body = body.buf ? body.buf : hsrl_strdup("");
}

/* The stage record text: header, then the stage text. */
static hsrl_status run_record_write(const char *path, const char *stage, const char *output, const char *body,
                                    uint64_t hash, uint64_t output_sum, int complete, uint64_t resume_hash,
                                    int64_t iteration) {
  run_text t = {0};
  run_text_add(&t,
               "# hsrl run: stage record. The stage '%s' is current while its output has the\n"
               "# checksum below and the keys and inputs below (the stage text, whose FNV-1a 64 is\n"
               "# stage_hash) are what the config and the input files give now.\n",
               stage);
  run_text_add(&t, "format_version = %d\nstage = %s\noutput = %s\n", RUN_RECORD_VERSION, stage, output);
  run_text_add(&t, "stage_hash = %016llx\noutput_fnv1a64 = %016llx\ncomplete = %d\n",
               (unsigned long long)hash, (unsigned long long)output_sum, complete);
  if (iteration >= 0)
    run_text_add(&t, "resume_hash = %016llx\niteration = %lld\n", (unsigned long long)resume_hash,
                 (long long)iteration);
  run_text_add(&t, "%s", body);
  hsrl_status st = run_write_file(path, run_text_str(&t));
  run_text_free(&t);
  return st;
}

/* The left side of a body line ("key sid.vocab" / "input data"); returns its length. */
static size_t run_line_lhs(const char *line) {
  const char *eq = strstr(line, " = ");
  const char *nl = strchr(line, '\n');
  if (eq && (!nl || eq < nl)) return (size_t)(eq - line);
  return nl ? (size_t)(nl - line) : strlen(line);
}

/* Finds the line of `body` whose left side is lhs[0..n); NULL if none. */
static const char *run_body_find(const char *body, const char *lhs, size_t n) {
  for (const char *l = body; l && *l;) {
    if (run_line_lhs(l) == n && !strncmp(l, lhs, n)) return l;
    const char *nl = strchr(l, '\n');
    l = nl ? nl + 1 : NULL;
  }
  return NULL;
}

/* Why the stage text `now` differs from the recorded `old`: "sid.vocab changed (16 -> 8); input
 * data changed", at most 3 reasons and a count of the rest. */
static void run_diff(char *out, size_t cap, const char *old, const char *now) {
  int n = 0, more = 0;
  size_t o = 0;
  out[0] = '\0';
#define RUN_REASON(...)                                                  \
  do {                                                                   \
    if (n < 3 && o < cap) {                                              \
      o += (size_t)snprintf(out + o, cap - o, "%s", n ? "; " : "");      \
      if (o < cap) o += (size_t)snprintf(out + o, cap - o, __VA_ARGS__); \
    } else {                                                             \
      more++;                                                            \
    }                                                                    \
    n++;                                                                 \
  } while (0)
  for (const char *l = now; l && *l;) {
    const char *nl = strchr(l, '\n');
    if (strncmp(l, "key ", 4) && strncmp(l, "input ", 6)) { /* the "stage NAME" line */
      l = nl ? nl + 1 : NULL;
      continue;
    }
    size_t len = nl ? (size_t)(nl - l) : strlen(l), lhs = run_line_lhs(l);
    const char *ol = run_body_find(old, l, lhs);
    int is_key = !strncmp(l, "key ", 4);
    const char *name = l + (is_key ? 4 : 6);
    int name_len = (int)(lhs - (size_t)(name - l));
    if (!ol) {
      RUN_REASON("%s%.*s is new", is_key ? "" : "input ", name_len, name);
    } else {
      const char *onl = strchr(ol, '\n');
      size_t olen = onl ? (size_t)(onl - ol) : strlen(ol), oid = run_line_id(ol), nid = run_line_id(l);
      if (oid != nid || strncmp(ol, l, nid)) {
        if (is_key) {
          const char *ov = ol + lhs + 3, *nv = l + lhs + 3;
          RUN_REASON("%.*s changed (%.*s -> %.*s)", name_len, name, (int)(olen - lhs - 3), ov,
                     (int)(len - lhs - 3), nv);
        } else {
          RUN_REASON("input %.*s changed", name_len, name);
        }
      }
    }
    l = nl ? nl + 1 : NULL;
  }
  for (const char *l = old; l && *l;) {
    size_t lhs = run_line_lhs(l);
    if (!run_body_find(now, l, lhs)) {
      int is_key = !strncmp(l, "key ", 4);
      const char *name = l + (is_key ? 4 : 6);
      RUN_REASON("%s%.*s no longer read", is_key ? "" : "input ", (int)(lhs - (size_t)(name - l)), name);
    }
    const char *nl = strchr(l, '\n');
    l = nl ? nl + 1 : NULL;
  }
#undef RUN_REASON
  if (more && o < cap) snprintf(out + o, cap - o, "; and %d more", more);
  if (n == 0) snprintf(out, cap, "the stage text changed");
}

/* Dry run: the inputs that are not made yet (RUN_DRY_NEW) take the line the stage's record holds
 * for them, as if the rebuild gave the same bytes as before (its line then says "if the rebuilt
 * ... differs"); an input the record does not know stays unknown. */
static void run_text_assume(run_text *t, const char *record_path) {
  if (!t->unknown) return;
  run_record r;
  char bad[RUN_REASON_MAX];
  run_record_read(&r, record_path, bad, sizeof bad);
  if (!r.present) return;
  run_text out = {0};
  memcpy(out.rebuilt, t->rebuilt, sizeof out.rebuilt);
  for (const char *l = run_text_str(t); *l;) {
    const char *nl = strchr(l, '\n');
    int len = (int)(nl ? nl - l : (long)strlen(l));
    const char *old = NULL;
    if (strstr(l, " (not made yet)") && strstr(l, " (not made yet)") < l + len)
      old = run_body_find(r.body, l, run_line_lhs(l));
    if (old) {
      const char *onl = strchr(old, '\n');
      run_text_add(&out, "%.*s\n", (int)(onl ? onl - old : (long)strlen(old)), old);
    } else {
      run_text_add(&out, "%.*s\n", len, l);
      if (strstr(l, " (not made yet)") && strstr(l, " (not made yet)") < l + len) out.unknown = 1;
    }
    l = nl ? nl + 1 : l + len;
  }
  run_record_free(&r);
  run_text_free(t);
  *t = out;
}

/* The dry-run line of a stage: "would run X: why" when it runs in any case (why != NULL), else
 * (it is current as far as can be told) "would run X if the rebuilt data differs". Returns the
 * stage's RUN_DRY_* state for the stages after it. */
static int run_say_dry(const run_ctx *c, const char *label, const char *out, const run_text *t,
                       const char *why, uint64_t *sum) {
  if (why)
    printf("would run %s: %s\n", label, why);
  else
    printf("would run %s if the rebuilt %s differs (else it stays current)\n", label, t->rebuilt);
  (void)c;
  return run_dry_state(out, sum);
}

/* ---------------------------------------------------------------- output checks */

typedef enum run_kind { RUN_KIND_DATA, RUN_KIND_SIM, RUN_KIND_SID } run_kind;

/* Opens an output as the hsrl file it must be; the message says why not. */
static hsrl_status run_output_opens(const char *path, run_kind kind) {
  static const char *const kinds[] = {"data", "sim", "sid"};
  static const int64_t versions[] = {SIM_DATA_FORMAT_VERSION, SIM_URM_FORMAT_VERSION, SIM_SID_FORMAT_VERSION};
  io_h5 *f = NULL;
  hsrl_status st = io_h5_open(&f, path);
  if (st == HSRL_OK) st = io_h5_check_stamp(f, kinds[kind], versions[kind], versions[kind], NULL, NULL);
  io_h5_close(f);
  return st;
}

/* Decides whether a file stage is current. Returns 1 (current; *sum = the output's checksum) or 0
 * with the reason in why. */
static int run_file_current(const run_ctx *c, int stage, const char *path, run_kind kind, const char *text,
                            uint64_t hash, uint64_t *sum, char *why, size_t cap) {
  char rpath[RUN_PATH_MAX + 8], bad[RUN_REASON_MAX];
  snprintf(rpath, sizeof rpath, "%s.stage", path);
  if (c->force[stage]) {
    run_fmt(why, cap, "--force %s", run_stage_names[stage]);
    return 0;
  }
  if (!run_exists(path)) {
    run_fmt(why, cap, "output missing (%s)", run_show(c, path));
    return 0;
  }
  run_record r;
  run_record_read(&r, rpath, bad, sizeof bad);
  if (!r.present) {
    run_fmt(why, cap, "%s", bad[0] ? bad : "no stage record (the file was not made by hsrl run)");
    return 0;
  }
  int current = 0;
  uint64_t s = 0;
  if (r.hash != hash) {
    run_diff(why, cap, r.body, text);
  } else if (run_file_checksum(path, &s) != HSRL_OK) {
    run_fmt(why, cap, "output unreadable: %s", hsrl_err_message());
  } else if (s != r.output_sum) {
    run_fmt(why, cap, "output changed since hsrl run wrote it (checksum %016llx, recorded %016llx)",
            (unsigned long long)s, (unsigned long long)r.output_sum);
  } else if (run_output_opens(path, kind) != HSRL_OK) {
    run_fmt(why, cap, "output does not open: %s", hsrl_err_message());
  } else {
    current = 1;
    *sum = s;
  }
  run_record_free(&r);
  hsrl_err_clear();
  return current;
}

/* ---------------------------------------------------------------- stage bodies */

static hsrl_status run_do_data(run_ctx *c, uint64_t stage_hash) {
  const hsrl_settings *s = &c->s;
  const char *out = c->out[ST_DATA];
  hsrl_status st = HSRL_OK;
  sim_dataset d;
  sim_synth_world w;
  memset(&d, 0, sizeof d);
  memset(&w, 0, sizeof w);
  HSRL_TRY(run_mkdirs_parent(out));
  if (!strcmp(s->data.format, "synth")) {
    sim_synth_config cfg;
    HSRL_TRY(sim_synth_config_from_settings(&cfg, s));
    HSRL_TRY(sim_synth_generate(&w, &d, &cfg));
    HSRL_TRY(sim_synth_write(&w, &d, out));
    if (!c->quiet)
      printf("  synthetic world seed %lld: %lld items, %lld users, %lld records (train %lld, test %lld)\n",
             (long long)cfg.seed, (long long)d.n_items, (long long)d.n_users, (long long)d.n_records,
             (long long)d.n_train, (long long)d.n_test);
  } else {
    sim_provenance prov;
    if (!strcmp(s->data.format, "rl4rs"))
      HSRL_TRY(sim_reader_rl4rs_read(&d, &prov, s->data.input));
    else
      HSRL_TRY(sim_reader_movielens_read(
          &d, &prov, s->data.input,
          !strcmp(s->data.format, "ml1m") ? SIM_READER_MOVIELENS_1M : SIM_READER_MOVIELENS_100K));
    /* the file is stamped with the stage hash: its config is the stage's keys and inputs */
    HSRL_TRY(sim_dataset_write(&d, out, &prov, stage_hash));
    if (!c->quiet)
      printf("  %s from %s: %lld items, %lld users, %lld records (train %lld, test %lld)\n", s->data.format,
             run_show(c, s->data.input), (long long)d.n_items, (long long)d.n_users, (long long)d.n_records,
             (long long)d.n_train, (long long)d.n_test);
  }
done:
  sim_synth_free(&w);
  sim_dataset_free(&d);
  return st;
}

static hsrl_status run_do_sim(run_ctx *c, int split_all, const char *out) {
  const hsrl_settings *s = &c->s;
  hsrl_status st = HSRL_OK;
  sim_dataset d;
  memset(&d, 0, sizeof d);
  sim_urm *m = NULL;
  sim_urm_train_log log;
  memset(&log, 0, sizeof log);
  HSRL_TRY(run_mkdirs_parent(out));
  HSRL_TRY(sim_dataset_read(&d, s->run.data));
  if (d.n_train < 1 || d.n_test < 1) {
    st = hsrl_err(HSRL_E_INPUT, s->run.data, 0, "split",
                  "the file has %lld train and %lld test records; both must be non-empty",
                  (long long)d.n_train, (long long)d.n_test);
    goto done;
  }
  sim_urm_config cfg = sim_urm_config_make(&s->sim, &d);
  m = sim_urm_init(&cfg, &d, hsrl_rng_derive((uint64_t)s->run.seed, 0x53494d)); /* as `hsrl sim train` */
  sim_urm_train_options opt = sim_urm_train_options_make(s, split_all);
  opt.verbose = !c->quiet;
  HSRL_TRY(sim_urm_train(m, &d, &opt, &log));
  HSRL_TRY(sim_urm_save(m, out, &log, s, s->run.data, split_all));
  const sim_urm_epoch *b = sim_urm_train_log_best(&log);
  if (!c->quiet && b)
    printf("  best epoch %lld of %lld: test AUC %.4f, log-loss %.4f%s\n", (long long)log.best_epoch,
           (long long)log.n_epochs, b->test.auc, b->test.log_loss, split_all ? " (in-sample)" : "");
done:
  sim_urm_train_log_free(&log);
  sim_urm_free(m);
  sim_dataset_free(&d);
  return st;
}

static hsrl_status run_do_sid(run_ctx *c, uint64_t stage_hash) {
  hsrl_status st = HSRL_OK;
  sim_sid_build_options o;
  sim_sid_build_options_make(&o, &c->s);
  /* stamped with the stage hash rather than the whole config's: the file's bytes then depend only
   * on what the stage reads, so a rebuild after an unrelated change is bit-identical */
  o.settings_hash = stage_hash;
  o.data_path = c->s.run.data;
  o.sim_path = c->s.run.sim_train[0] ? c->s.run.sim_train : NULL;
  o.out_path = c->out[ST_SID];
  o.verbose = 0; /* its report is long; `hsrl sid stats FILE` prints it */
  sim_sid_stats stats;
  HSRL_TRY(run_mkdirs_parent(o.out_path));
  HSRL_TRY(sim_sid_build_run(&o, &stats));
  if (!c->quiet)
    printf("  %lld levels x %lld codes of %s vectors ('hsrl sid stats %s' for the statistics)\n",
           (long long)c->s.sid.levels, (long long)c->s.sid.vocab, c->s.sid.vectors, run_show(c, o.out_path));
done:
  return st;
}

/* ---------------------------------------------------------------- file stages */

/* Check and, unless current, run one file stage; then its checksum is in c->sum[stage]. */
static hsrl_status run_file_stage(run_ctx *c, int stage, run_kind kind, run_text *t) {
  hsrl_status st = HSRL_OK;
  const char *out = c->out[stage];
  const char *name = run_stage_names[stage];
  char why[RUN_REASON_MAX];
  char rec[RUN_PATH_MAX + 8];
  snprintf(rec, sizeof rec, "%s.stage", out);
  run_text_assume(t, rec);
  uint64_t hash = run_text_hash(run_text_str(t));
  int current = run_file_current(c, stage, out, kind, run_text_str(t), hash, &c->sum[stage], why, sizeof why);
  if (t->unknown && current) { /* dry run: an input is not made yet */
    current = 0;
    run_fmt(why, sizeof why, "its input %s is not made yet", t->rebuilt);
  }
  if (current && !t->rebuilt[0]) {
    printf("skip %s (current: %s)\n", name, run_show(c, out));
    c->n_skipped++;
    return HSRL_OK;
  }
  if (c->dry_run) {
    c->pending[stage] = run_say_dry(c, name, out, t, current ? NULL : why, &c->sum[stage]);
    return HSRL_OK;
  }
  printf("run %s: %s\n", name, why);
  fflush(stdout);
  double t0 = hsrl_time_now();
  char rpath[RUN_PATH_MAX + 8];
  snprintf(rpath, sizeof rpath, "%s.stage", out);
  remove(rpath); /* a failed stage leaves no record that could vouch for an old output */
  if (stage == ST_DATA)
    st = run_do_data(c, hash);
  else if (stage == ST_SIM_TRAIN)
    st = run_do_sim(c, 0, out);
  else if (stage == ST_SIM_ALL)
    st = run_do_sim(c, 1, out);
  else
    st = run_do_sid(c, hash);
  if (st != HSRL_OK) return hsrl_err_context(st, "stage %s", name);
  HSRL_TRY(run_file_checksum(out, &c->sum[stage]));
  HSRL_TRY(run_record_write(rpath, name, out, run_text_str(t), hash, c->sum[stage], 1, 0, -1));
  printf("  %s: %s (%.1f s)\n", name, run_show(c, out), hsrl_time_now() - t0);
  c->n_ran++;
done:
  return st;
}

/* The data stage's text: its keys, and for a dataset reader every file of data.input. */
static hsrl_status run_text_data(run_ctx *c, run_text *t) {
  const hsrl_settings *s = &c->s;
  run_text_add(t, "stage data\n");
  if (!strcmp(s->data.format, "synth")) {
    static const char *const keys[] = {"data.format", "data.slate_size", "data.history_len", "synth", NULL};
    run_text_keys(t, s, keys, NULL);
    return HSRL_OK;
  }
  static const char *const keys[] = {"data.format", NULL};
  run_text_keys(t, s, keys, NULL);
  DIR *d = opendir(s->data.input);
  if (!d)
    return hsrl_err(HSRL_E_USAGE, s->data.input, 0, "data.input", "cannot read the dataset directory: %s",
                    strerror(errno));
  /* sorted file names, so the text does not depend on the directory's order */
  char **names = NULL;
  int64_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    names = hsrl_realloc(names, (size_t)(n + 1) * sizeof *names);
    names[n++] = hsrl_strdup(e->d_name);
  }
  closedir(d);
  for (int64_t i = 1; i < n; i++)
    for (int64_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *x = names[j];
      names[j] = names[j - 1], names[j - 1] = x;
    }
  hsrl_status st = HSRL_OK;
  char path[RUN_PATH_MAX], label[300];
  for (int64_t i = 0; i < n && st == HSRL_OK; i++) {
    if (snprintf(path, sizeof path, "%s/%s", s->data.input, names[i]) >= (int)sizeof path) continue;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    uint64_t sum = 0;
    st = run_file_checksum(path, &sum);
    snprintf(label, sizeof label, "source/%s", names[i]);
    if (st == HSRL_OK) run_text_input(t, label, path, sum, 0);
  }
  for (int64_t i = 0; i < n; i++) hsrl_free(names[i]);
  hsrl_free(names);
  return st;
}

/* ---------------------------------------------------------------- training stages */

/* Text of a training stage for the agent settings sa; skip = "train.iterations" for the
 * resume text. */
static void run_text_train(const run_ctx *c, const hsrl_settings *sa, run_text *t, const char *skip) {
  static const char *const keys[] = {
      "run.seed", "data.slate_size", "data.history_len", "env", "agent", "train", "dist", NULL};
  run_text_add(t, "stage train\n");
  run_text_keys(t, sa, keys, skip);
  run_text_input(t, "data", c->out[ST_DATA], c->sum[ST_DATA], c->pending[ST_DATA]);
  if (strcmp(sa->env.model, "world") && c->used[ST_SIM_TRAIN])
    run_text_input(t, "sim-train", c->out[ST_SIM_TRAIN], c->sum[ST_SIM_TRAIN], c->pending[ST_SIM_TRAIN]);
  if (!strcmp(sa->agent.kind, "hsrl") && c->used[ST_SID])
    run_text_input(t, "sid", c->out[ST_SID], c->sum[ST_SID], c->pending[ST_SID]);
}

/* Removes what training wrote into a run directory of hsrl run's (checkpoints, metrics, config,
 * its eval.json and plots, the record); the results table and its record stay, so that the eval
 * stage can say which of its inputs changed. */
static hsrl_status run_clear_run(const char *dir) {
  static const char *const parts[] = {"train.stage", "ckpt",      "metrics.tsv",
                                      "config.ini",  "eval.json", "plots"};
  char p[RUN_PATH_MAX + 32];
  hsrl_status st = HSRL_OK;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0] && st == HSRL_OK; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, parts[i]);
    st = run_rmtree(p);
  }
  return st;
}

/* Moves a run directory not made by hsrl run to <dir>.old-<n>; says where in moved. */
static hsrl_status run_move_aside(const char *dir, char *moved, size_t cap) {
  for (int n = 1; n < 10000; n++) {
    if (snprintf(moved, cap, "%s.old-%d", dir, n) >= (int)cap)
      return hsrl_err(HSRL_E_USAGE, dir, 0, NULL, "path too long");
    if (!run_exists(moved)) {
      if (rename(dir, moved) != 0)
        return hsrl_err(HSRL_E_IO, dir, 0, NULL, "cannot move to %s: %s", moved, strerror(errno));
      return HSRL_OK;
    }
  }
  return hsrl_err(HSRL_E_IO, dir, 0, NULL, "too many old copies beside it");
}

/* 1 if the directory holds anything. */
static int run_dir_nonempty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int any = 0;
  while (!any && (e = readdir(d)) != NULL) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return any;
}

enum { RUN_TRAIN_CURRENT, RUN_TRAIN_FRESH, RUN_TRAIN_RESUME };

/* One training run (the agent of sa in a->dir): check, then train fresh or resume. */
static hsrl_status run_train_stage(run_ctx *c, int stage, run_agent *a, const hsrl_settings *sa) {
  hsrl_status st = HSRL_OK;
  char label[64], why[RUN_REASON_MAX], rpath[RUN_PATH_MAX + 16], latest[RUN_PATH_MAX + 64];
  char bad[RUN_REASON_MAX];
  if (stage == ST_TRAIN)
    snprintf(label, sizeof label, "train");
  else
    snprintf(label, sizeof label, "baselines (%s)", a->kind);
  run_text full = {0}, resume = {0};
  run_record r;
  memset(&r, 0, sizeof r);
  learner_train_options *opt = NULL;
  hsrl_settings *stored = NULL;
  run_text_train(c, sa, &full, NULL);
  run_text_train(c, sa, &resume, "train.iterations");
  snprintf(rpath, sizeof rpath, "%s/train.stage", a->dir);
  run_text_assume(&full, rpath);
  run_text_assume(&resume, rpath);
  uint64_t hash = run_text_hash(run_text_str(&full)), rhash = run_text_hash(run_text_str(&resume));
  const int64_t target = sa->train.iterations;
  if (snprintf(a->ckpt, sizeof a->ckpt, "%s/ckpt/step-%lld.h5", a->dir, (long long)target) >=
      (int)sizeof a->ckpt) {
    st = hsrl_err(HSRL_E_USAGE, a->dir, 0, "run.out_dir", "path too long");
    goto done;
  }
  a->pending = RUN_DRY_NONE;

  int action = RUN_TRAIN_FRESH, foreign = 0;
  int64_t it = -1;
  run_record_read(&r, rpath, bad, sizeof bad);
  const int ours = r.present || bad[0]; /* the directory holds hsrl run's train.stage */
  if (c->force[stage]) {
    run_fmt(why, sizeof why, "--force %s", run_stage_names[stage]);
  } else if (!r.present) {
    foreign = !ours && run_dir_nonempty(a->dir);
    if (bad[0])
      run_fmt(why, sizeof why, "%s", bad);
    else if (foreign)
      run_fmt(why, sizeof why, "%s holds a run not made by hsrl run (no train.stage)", run_show(c, a->dir));
    else
      run_fmt(why, sizeof why, "no run yet (%s)", run_show(c, a->dir));
  } else if (r.resume_hash != rhash) {
    run_diff(why, sizeof why, r.body, run_text_str(&full));
  } else if (learner_train_latest_checkpoint(a->dir, latest, sizeof latest, &it) != HSRL_OK) {
    run_fmt(why, sizeof why, "no complete checkpoint in %s (interrupted before the first)",
            run_show(c, a->dir));
  } else if (it > target) {
    run_fmt(why, sizeof why, "train.iterations lowered (%lld -> %lld)", (long long)it, (long long)target);
  } else if (it < target) {
    action = RUN_TRAIN_RESUME;
    if (r.complete && r.iteration < target)
      run_fmt(why, sizeof why, "train.iterations raised (%lld -> %lld): resuming from %s",
              (long long)r.iteration, (long long)target, run_show(c, latest));
    else
      run_fmt(why, sizeof why, "an interrupted run: resuming from %s (iteration %lld of %lld)",
              run_show(c, latest), (long long)it, (long long)target);
  } else {
    /* the final checkpoint is there: current when hsrl run recorded it with this checksum (a run
     * interrupted after its last checkpoint but before the record is taken once it opens) */
    uint64_t s = 0;
    hsrl_settings *probe = hsrl_malloc(sizeof *probe);
    int64_t pit = 0;
    if (run_file_checksum(latest, &s) != HSRL_OK)
      run_fmt(why, sizeof why, "checkpoint unreadable: %s", hsrl_err_message());
    else if (r.complete && s != r.output_sum)
      run_fmt(why, sizeof why, "checkpoint %s changed since hsrl run wrote it", run_show(c, latest));
    else if (learner_train_checkpoint_info(latest, probe, &pit) != HSRL_OK)
      run_fmt(why, sizeof why, "checkpoint does not open: %s", hsrl_err_message());
    else
      action = RUN_TRAIN_CURRENT, a->sum = s;
    hsrl_free(probe);
    if (action == RUN_TRAIN_CURRENT && !c->dry_run && (!r.complete || r.hash != hash))
      HSRL_TRY(run_record_write(rpath, "train", a->ckpt, run_text_str(&full), hash, s, 1, rhash, target));
  }
  hsrl_err_clear();
  if (full.unknown && action == RUN_TRAIN_CURRENT) { /* dry run: an input is not made yet */
    action = RUN_TRAIN_FRESH;
    run_fmt(why, sizeof why, "its input %s is not made yet", full.rebuilt);
  }
  if (action == RUN_TRAIN_CURRENT && !full.rebuilt[0]) {
    printf("skip %s (current: %s)\n", label, run_show(c, a->dir));
    c->n_skipped++;
    goto done;
  }
  if (c->dry_run) {
    a->pending = run_say_dry(c, label, a->ckpt, &full, action == RUN_TRAIN_CURRENT ? NULL : why, &a->sum);
    goto done;
  }
  printf("run %s: %s\n", label, why);
  fflush(stdout);
  double t0 = hsrl_time_now();
  opt = hsrl_calloc(1, sizeof *opt);
  if (snprintf(opt->run_dir, sizeof opt->run_dir, "%s", a->dir) >= (int)sizeof opt->run_dir) {
    st = hsrl_err(HSRL_E_USAGE, a->dir, 0, "run.out_dir", "path too long");
    goto done;
  }
  opt->quiet = c->quiet;
  if (action == RUN_TRAIN_RESUME) {
    /* the checkpoint's config, with what may change on resume (train.iterations, the paths) from
     * now: the stage texts agree, and keys the stage does not read (eval.*, sim.*) may have changed
     * since, which learner_train would refuse */
    stored = hsrl_malloc(sizeof *stored);
    int64_t cit = 0;
    HSRL_TRY(learner_train_checkpoint_info(latest, stored, &cit));
    opt->settings = *stored;
    const hsrl_config_schema *sc = hsrl_settings_schema();
    for (int64_t i = 0; i < sc->n_fields; i++)
      if (learner_train_resume_may_change(&sc->fields[i]))
        memcpy((char *)&opt->settings + sc->fields[i].offset, (const char *)sa + sc->fields[i].offset,
               sc->fields[i].size);
    opt->resume = 1;
  } else {
    if (ours) {
      HSRL_TRY(run_clear_run(a->dir)); /* a stale run of hsrl run's own */
    } else if (foreign) {
      char moved[RUN_PATH_MAX + 32];
      HSRL_TRY(run_move_aside(a->dir, moved, sizeof moved));
      printf("  moved %s to %s\n", run_show(c, a->dir), run_show(c, moved));
    }
    opt->settings = *sa;
  }
  HSRL_TRY(run_mkdirs(a->dir));
  HSRL_TRY(run_record_write(rpath, "train", a->ckpt, run_text_str(&full), hash, 0, 0, rhash, target));
  if ((st = learner_train_run(opt)) != HSRL_OK) {
    hsrl_err_context(st, "stage %s (the same command resumes from the newest checkpoint; --force %s retrains)",
                     label, run_stage_names[stage]);
    goto done;
  }
  HSRL_TRY(run_file_checksum(a->ckpt, &a->sum));
  HSRL_TRY(run_record_write(rpath, "train", a->ckpt, run_text_str(&full), hash, a->sum, 1, rhash, target));
  printf("  %s: %s, %lld iterations (%.1f s)\n", label, run_show(c, a->dir), (long long)target,
         hsrl_time_now() - t0);
  c->n_ran++;
done:
  hsrl_free(opt);
  hsrl_free(stored);
  run_record_free(&r);
  run_text_free(&full);
  run_text_free(&resume);
  return st;
}

/* ---------------------------------------------------------------- the results table */

enum {
  RES_REWARD,
  RES_REWARD_STD,
  RES_DEPTH,
  RES_DEPTH_STD,
  RES_CLICK,
  RES_CLICK_STD,
  RES_COVER,
  RES_COVER_STD,
  RES_N
};
static const char *const res_columns[RES_N] = {"total_reward_mean", "total_reward_std", "depth_mean",
                                               "depth_std",         "click_rate_mean",  "click_rate_std",
                                               "coverage_mean",     "coverage_std"};

typedef struct run_row {
  char policy[32];
  int64_t seeds, episodes;
  double v[RES_N];
  char source[RUN_PATH_MAX];
} run_row;

static void run_table_print(FILE *f, const run_row *rows, int64_t n) {
  int w = 10; /* the policy column: as wide as the longest name */
  for (int64_t i = 0; i < n; i++)
    if ((int)strlen(rows[i].policy) > w) w = (int)strlen(rows[i].policy);
  fprintf(f, "%-*s %5s %8s  %-19s %-17s %-17s %-17s\n", w, "policy", "seeds", "episodes", "total reward",
          "depth", "click rate", "coverage");
  for (int64_t i = 0; i < n; i++) {
    const double *v = rows[i].v;
    fprintf(f, "%-*s %5lld %8lld  %8.3f +- %-7.3f %7.3f +- %-6.3f %7.4f +- %-6.4f %7.4f +- %-6.4f\n", w,
            rows[i].policy, (long long)rows[i].seeds, (long long)rows[i].episodes, v[RES_REWARD],
            v[RES_REWARD_STD], v[RES_DEPTH], v[RES_DEPTH_STD], v[RES_CLICK], v[RES_CLICK_STD], v[RES_COVER],
            v[RES_COVER_STD]);
  }
  fprintf(f, "(mean +- std across seeds of each seed's mean over its episodes)\n");
}

static void run_table_tsv(run_text *t, const char *about, const run_row *rows, int64_t n) {
  run_text_add(t, "# %s\npolicy\tseeds\tepisodes", about);
  for (int j = 0; j < RES_N; j++) run_text_add(t, "\t%s", res_columns[j]);
  run_text_add(t, "\tsource\n");
  for (int64_t i = 0; i < n; i++) {
    run_text_add(t, "%s\t%lld\t%lld", rows[i].policy, (long long)rows[i].seeds, (long long)rows[i].episodes);
    for (int j = 0; j < RES_N; j++) run_text_add(t, "\t%.6f", rows[i].v[j]);
    run_text_add(t, "\t%s\n", rows[i].source);
  }
}

/* Reads results.tsv as written by run_table_tsv (about: the comment line). 0 if it does not parse. */
static int run_table_read(const char *path, run_row *rows, int64_t cap, int64_t *n, char *about,
                          size_t about_cap) {
  char *text = run_read_file(path);
  if (!text) return 0;
  int ok = 1, header = 0;
  *n = 0;
  about[0] = '\0';
  for (char *line = text; ok && line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (line[0] == '#') {
      const char *a = line + 1;
      while (*a == ' ') a++;
      snprintf(about, about_cap, "%s", a);
    } else if (!header) {
      header = !strncmp(line, "policy\tseeds\tepisodes\t", 22);
      ok = header;
    } else if (*n < cap) {
      run_row *r = &rows[*n];
      memset(r, 0, sizeof *r);
      char *save = line, *tab;
      int field = 0;
      while (save) {
        tab = strchr(save, '\t');
        if (tab) *tab = '\0';
        if (field == 0)
          snprintf(r->policy, sizeof r->policy, "%s", save);
        else if (field == 1)
          r->seeds = atoll(save);
        else if (field == 2)
          r->episodes = atoll(save);
        else if (field < 3 + RES_N)
          r->v[field - 3] = strtod(save, NULL);
        else
          snprintf(r->source, sizeof r->source, "%s", save);
        field++;
        save = tab ? tab + 1 : NULL;
      }
      ok = field == 4 + RES_N;
      (*n)++;
    } else {
      ok = 0;
    }
    line = nl ? nl + 1 : NULL;
  }
  hsrl_free(text);
  return ok && header && *n > 0;
}

/* ---------------------------------------------------------------- evaluation */

static void run_eval_simple_act(void *ctx, int64_t b, const int32_t *users, const int32_t *histories,
                                const uint8_t *active, int32_t *slates) {
  (void)active;
  sim_policy_simple_act(ctx, b, users, histories, slates);
}

static void run_eval_simple_reset(void *ctx, uint64_t seed) { sim_policy_simple_reset(ctx, seed); }


static void run_row_from(run_row *r, const sim_eval_summary *sum, const char *source) {
  memset(r, 0, sizeof *r);
  snprintf(r->policy, sizeof r->policy, "%s", sum->policy);
  r->seeds = sum->n_seeds;
  r->episodes = sum->n_seeds > 0 ? sum->seed[0].n_episodes : 0;
  r->v[RES_REWARD] = sum->mean.reward_mean, r->v[RES_REWARD_STD] = sum->std.reward_mean;
  r->v[RES_DEPTH] = sum->mean.depth_mean, r->v[RES_DEPTH_STD] = sum->std.depth_mean;
  r->v[RES_CLICK] = sum->mean.click_rate, r->v[RES_CLICK_STD] = sum->std.click_rate;
  r->v[RES_COVER] = sum->mean.coverage, r->v[RES_COVER_STD] = sum->std.coverage;
  snprintf(r->source, sizeof r->source, "%s", source);
}

static void run_about(const run_ctx *c, char *about, size_t cap) {
  const hsrl_settings *s = &c->s;
  snprintf(about, cap,
           "hsrl run %s: click model %s, test split, %lld episodes x %lld seeds from seed %lld, B %lld, "
           "reward %s%s",
           c->config, c->eval_in_world ? "world (ground truth)" : run_show(c, s->run.sim_all),
           (long long)s->eval.episodes, (long long)s->eval.seeds, (long long)s->run.seed,
           (long long)s->env.batch, s->env.reward, s->env.sweet_point ? " + sweet point" : "");
}

/* Evaluates the reference policies and the agents into results.tsv / results.json. */
static hsrl_status run_do_eval(run_ctx *c, const char *tsv, const char *json) {
  const hsrl_settings *s = &c->s;
  hsrl_status st = HSRL_OK;
  const int64_t batch = s->env.batch, episodes = s->eval.episodes, seeds = s->eval.seeds;
  learner_world w;
  memset(&w, 0, sizeof w);
  sim_urm *urm = NULL;
  sim_click_adapters_urm *adapter = NULL;
  sim_policy_simple *simple[RUN_MAX_POLICIES] = {0};
  agent *agents[RUN_MAX_AGENTS] = {0};
  sim_eval_summary *sum = hsrl_calloc(RUN_MAX_POLICIES, sizeof *sum);
  run_row *rows = hsrl_calloc(RUN_MAX_POLICIES, sizeof *rows);
  hsrl_settings *ws = hsrl_malloc(sizeof *ws), *ck = hsrl_malloc(sizeof *ck);
  run_text t = {0};
  int64_t n = 0;

  /* one world for every policy: the data, the evaluation click model and (for HSRL) the SIDs */
  *ws = *s;
  for (int64_t i = 0; i < c->n_agents; i++)
    if (!strcmp(c->agents[i].base, "hsrl")) snprintf(ws->agent.kind, sizeof ws->agent.kind, "hsrl");
  if (c->n_capped) snprintf(ws->agent.kind, sizeof ws->agent.kind, "hsrl"); /* the SIDs give the groups */
  HSRL_TRY(learner_train_world_load(&w, ws, c->eval_in_world ? "" : s->run.sim_all, batch));
  if (w.data.n_test < 1) {
    st = hsrl_err(HSRL_E_INPUT, s->run.data, 0, "split/test", "the test split is empty");
    goto done;
  }
  sim_env_config cfg;
  HSRL_TRY(sim_env_config_make(&cfg, &s->env, w.data.slate_size, w.data.history_len, 0, 0));
  sim_click_model train_model;
  memset(&train_model, 0, sizeof train_model);

  /* rows in the order of the table: reference policies (but the oracle), agents, oracle */
  sim_eval_policy pol[RUN_MAX_POLICIES];
  const char *source[RUN_MAX_POLICIES];
  int64_t n_pol = 0;
  for (int pass = 0; pass < 3; pass++) {
    if (pass == 1) {
      for (int64_t i = c->n_agents - 1; i >= 0; i--) { /* the baselines, then agent.kind */
        const run_agent *a = &c->agents[i];
        int64_t it = 0;
        HSRL_TRY(learner_train_checkpoint_info(a->ckpt, ck, &it));
        /* the checkpoint's agent with this config's files (as `hsrl eval --checkpoint`) */
        memcpy(ck->run.data, s->run.data, sizeof ck->run.data);
        memcpy(ck->run.sid, s->run.sid, sizeof ck->run.sid);
        memcpy(ck->run.sim_all, s->run.sim_all, sizeof ck->run.sim_all);
        HSRL_TRY(learner_train_load_policy(&agents[i], ck, &w, batch, a->ckpt));
        pol[n_pol] = learner_train_greedy_policy(agents[i], a->kind);
        source[n_pol++] = a->ckpt;
      }
      continue;
    }
    for (int64_t j = 0; j < c->n_compare; j++) {
      const char *nm = c->compare_base[j];
      if ((pass == 2) != !strcmp(nm, "oracle")) continue;
      sim_policy_simple *sp = NULL;
      const char *src = "";
      if (!strcmp(nm, "random")) {
        sp = sim_policy_simple_random(w.data.n_items, w.data.slate_size, (uint64_t)s->run.seed);
      } else if (!strcmp(nm, "popular")) {
        sp = sim_policy_simple_popular(&w.data, w.data.train_idx, w.data.n_train, w.data.slate_size);
        src = "clicks of the train split";
      } else if (!strcmp(nm, "greedy")) {
        if (!urm) { /* once for greedy and greedy-capC */
          HSRL_TRY(sim_urm_load(&urm, s->run.sim_train, &w.data));
          adapter = sim_click_adapters_urm_init(urm, batch);
          train_model = sim_click_adapters_urm_model(adapter);
        }
        sp = sim_policy_simple_greedy(&train_model, batch);
        src = s->run.sim_train;
      } else if (w.has_synth) {
        sp = sim_policy_simple_oracle(&w.synth, batch);
        src = "the world's true click model";
      } else { /* greedy by the evaluation's own click model (run.sim_all): its one-step oracle */
        sp = sim_policy_simple_greedy(&w.model, batch);
        src = s->run.sim_all;
      }
      if (s->env.exclude_history) sim_policy_simple_exclude_history(sp, w.data.history_len);
      if (c->compare_cap[j] == SIM_POLICY_SIMPLE_HPN && w.data.n_items > SIM_POLICY_SIMPLE_BLOCK) {
        sim_policy_simple_free(sp);
        st = hsrl_err(HSRL_E_USAGE, c->config, 0, "run.compare",
                      "'%s' searches the whole catalog: at most %d items, the data has %lld", c->compare[j],
                      SIM_POLICY_SIMPLE_BLOCK, (long long)w.data.n_items);
        goto done;
      }
      if (c->compare_cap[j]) sim_policy_simple_cap_sid(sp, &w.sid, c->compare_cap[j]);
      simple[n_pol] = sp;
      sim_eval_policy *p = &pol[n_pol];
      memset(p, 0, sizeof *p);
      snprintf(p->name, sizeof p->name, "%s", c->compare[j]);
      p->ctx = sp;
      p->act = run_eval_simple_act;
      p->reset = run_eval_simple_reset;
      source[n_pol++] = src;
    }
  }
  for (n = 0; n < n_pol; n++) {
    st = sim_eval_seeds(&sum[n], &cfg, &w.data, &w.model, &pol[n], episodes, seeds, (uint64_t)s->run.seed);
    if (st != HSRL_OK) {
      hsrl_err_context(st, "evaluating %s", pol[n].name);
      goto done;
    }
    run_row_from(&rows[n], &sum[n], source[n]);
  }
  char about[2 * RUN_PATH_MAX];
  run_about(c, about, sizeof about);
  run_table_tsv(&t, about, rows, n);
  HSRL_TRY(run_write_file(tsv, run_text_str(&t)));
  {
    char jc[RUN_PATH_MAX + 64], jm[RUN_PATH_MAX + 64], jd[RUN_PATH_MAX + 64], ab[4 * RUN_PATH_MAX];
    snprintf(
        ab, sizeof ab,
        "{\"config\": \"%s\", \"config_hash\": \"%016llx\", \"data\": \"%s\", \"click_model\": \"%s\", "
        "\"split\": \"test\", \"episodes\": %lld, \"seeds\": %lld, \"batch\": %lld, \"base_seed\": %lld, "
        "\"reward\": \"%s\", \"sweet_point\": %s, \"temper\": %g, \"std\": \"sample (n-1)\"}",
        sim_eval_json_str(jc, sizeof jc, c->config), (unsigned long long)hsrl_settings_hash(s),
        sim_eval_json_str(jd, sizeof jd, s->run.data),
        sim_eval_json_str(jm, sizeof jm, c->eval_in_world ? "world (ground truth)" : s->run.sim_all),
        (long long)episodes, (long long)seeds, (long long)batch, (long long)s->run.seed, s->env.reward,
        s->env.sweet_point ? "true" : "false", s->env.temper);
    char tmp[RUN_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", json, (long)getpid());
    FILE *jf = fopen(tmp, "w");
    if (!jf) {
      st = hsrl_err(HSRL_E_IO, tmp, 0, NULL, "cannot write: %s", strerror(errno));
      goto done;
    }
    sim_eval_write_json(jf, sum, n, ab);
    if (fclose(jf) != 0 || rename(tmp, json) != 0) {
      remove(tmp);
      st = hsrl_err(HSRL_E_IO, json, 0, NULL, "cannot write");
      goto done;
    }
  }
done:
  for (int64_t j = 0; j < RUN_MAX_POLICIES; j++) sim_policy_simple_free(simple[j]);
  for (int64_t i = 0; i < RUN_MAX_AGENTS; i++) agent_free(agents[i]);
  sim_click_adapters_urm_free(adapter);
  sim_urm_free(urm);
  learner_train_world_free(&w);
  run_text_free(&t);
  hsrl_free(sum), hsrl_free(rows), hsrl_free(ws), hsrl_free(ck);
  return st;
}

static hsrl_status run_eval_stage(run_ctx *c) {
  static const char *const keys[] = {"run.seed", "run.compare", "run.baselines", "agent.kind", "env",
                                     "eval",     NULL};
  const hsrl_settings *s = &c->s;
  hsrl_status st = HSRL_OK;
  const char *dir = c->agents[0].dir;
  char tsv[RUN_PATH_MAX + 16], json[RUN_PATH_MAX + 16], rpath[RUN_PATH_MAX + 16], why[RUN_REASON_MAX];
  char bad[RUN_REASON_MAX];
  snprintf(tsv, sizeof tsv, "%s/results.tsv", dir);
  snprintf(json, sizeof json, "%s/results.json", dir);
  snprintf(rpath, sizeof rpath, "%s/results.stage", dir);
  run_text t = {0};
  run_record r;
  memset(&r, 0, sizeof r);
  run_row *rows = hsrl_calloc(RUN_MAX_POLICIES, sizeof *rows);
  run_text_add(&t, "stage eval\n");
  run_text_keys(&t, s, keys, NULL);
  run_text_input(&t, "data", c->out[ST_DATA], c->sum[ST_DATA], c->pending[ST_DATA]);
  if (!c->eval_in_world)
    run_text_input(&t, "sim-all", c->out[ST_SIM_ALL], c->sum[ST_SIM_ALL], c->pending[ST_SIM_ALL]);
  for (int64_t j = 0; j < c->n_compare; j++)
    if (!strcmp(c->compare_base[j], "greedy")) {
      run_text_input(&t, "sim-train", c->out[ST_SIM_TRAIN], c->sum[ST_SIM_TRAIN], c->pending[ST_SIM_TRAIN]);
      break;
    }
  if (c->n_capped) run_text_input(&t, "sid", c->out[ST_SID], c->sum[ST_SID], c->pending[ST_SID]);
  for (int64_t i = 0; i < c->n_agents; i++) {
    char label[64];
    snprintf(label, sizeof label, "agent/%s", c->agents[i].kind);
    run_text_input(&t, label, c->agents[i].ckpt, c->agents[i].sum, c->agents[i].pending);
  }
  run_text_assume(&t, rpath);
  uint64_t hash = run_text_hash(run_text_str(&t));
  int current = 0;
  int64_t n = 0;
  char about[2 * RUN_PATH_MAX];
  run_record_read(&r, rpath, bad, sizeof bad);
  uint64_t sum = 0;
  if (c->force[ST_EVAL]) {
    run_fmt(why, sizeof why, "--force eval");
  } else if (!r.present) {
    run_fmt(why, sizeof why, "%s", bad[0] ? bad : "no results yet");
  } else if (r.hash != hash) {
    run_diff(why, sizeof why, r.body, run_text_str(&t));
  } else if (run_file_checksum(tsv, &sum) != HSRL_OK || sum != r.output_sum) {
    run_fmt(why, sizeof why, "%s missing or changed since hsrl run wrote it", run_show(c, tsv));
  } else if (!run_exists(json)) {
    run_fmt(why, sizeof why, "%s missing", run_show(c, json));
  } else if (!run_table_read(tsv, rows, RUN_MAX_POLICIES, &n, about, sizeof about)) {
    run_fmt(why, sizeof why, "%s does not parse", run_show(c, tsv));
  } else {
    current = 1;
  }
  hsrl_err_clear();
  if (t.unknown && current) { /* dry run: an input is not made yet */
    current = 0;
    run_fmt(why, sizeof why, "its input %s is not made yet", t.rebuilt);
  }
  if (c->dry_run && (!current || t.rebuilt[0])) {
    uint64_t ignored = 0;
    run_say_dry(c, "eval", tsv, &t, current ? NULL : why, &ignored);
    goto done;
  }
  if (current) {
    printf("skip eval (current: %s)\n", run_show(c, tsv));
    c->n_skipped++;
  } else {
    printf("run eval: %s\n", why);
    fflush(stdout);
    double t0 = hsrl_time_now();
    remove(rpath);
    HSRL_TRY(run_mkdirs(dir));
    st = run_do_eval(c, tsv, json);
    if (st != HSRL_OK) {
      hsrl_err_context(st, "stage eval");
      goto done;
    }
    HSRL_TRY(run_file_checksum(tsv, &sum));
    HSRL_TRY(run_record_write(rpath, "eval", tsv, run_text_str(&t), hash, sum, 1, 0, -1));
    if (!run_table_read(tsv, rows, RUN_MAX_POLICIES, &n, about, sizeof about)) {
      st = hsrl_err(HSRL_E_INTERNAL, tsv, 0, NULL, "the table just written does not read back");
      goto done;
    }
    printf("  eval: %s, %s (%.1f s)\n", run_show(c, tsv), run_show(c, json), hsrl_time_now() - t0);
    c->n_ran++;
  }
  printf("\n# %s\n", about);
  run_table_print(stdout, rows, n);
done:
  run_record_free(&r);
  run_text_free(&t);
  hsrl_free(rows);
  return st;
}

/* ---------------------------------------------------------------- the command */

static void run_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl run CONFIG [--set section.key=value]... [--force STAGE|all]... [--dry-run]\n"
          "                [--quiet]\n"
          "\n"
          "Runs the whole pipeline of CONFIG and prints one results table. Stages, in order:\n"
          "  data       run.data: the synthetic world of [synth] (data.format = synth) or the\n"
          "             dataset in data.input prepared by its reader\n"
          "  sim-train  run.sim_train: the simulator fitted on the train split ([sim])\n"
          "  sim-all    run.sim_all: the simulator fitted on every record (evaluation)\n"
          "  sid        run.sid: Semantic IDs ([sid])\n"
          "  train      run.out_dir/run.name: agent.kind trained in env.model's click model\n"
          "  baselines  run.out_dir/run.name-<agent> for each agent of run.baselines (sl, hsrl-no-bc, ...)\n"
          "  eval       run.out_dir/run.name/results.{tsv,json}: the agents (greedy) and the\n"
          "             policies of run.compare, eval.episodes x eval.seeds, in run.sim_all's\n"
          "             click model (empty: the synthetic world's ground truth)\n"
          "A stage with an empty file key is left out. A stage is skipped when its output is\n"
          "current: its stage record (<output>.stage, <run dir>/train.stage, results.stage) holds\n"
          "the same config keys and input-file checksums as now and the output's checksum. Each\n"
          "line says why a stage runs. An interrupted or extended training run resumes from its\n"
          "newest checkpoint; run the same command again to continue after a failure.\n"
          "\n"
          "options:\n"
          "  --set s.k=v     override one config field (repeatable)\n"
          "  --force STAGE   rerun STAGE (data, sim-train, sim-all, sid, train, baselines, eval)\n"
          "                  or all; repeatable. Later stages rerun when its output changes.\n"
          "  --dry-run       say what would run and why; run nothing\n"
          "  --quiet         only one line per stage and the table\n"
          "  -h, --help      this text\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage, config or input, 1 internal failure.\n");
}

/* Splits a comma list into words (trimmed); returns the count or -1 (too many / too long). */
static int64_t run_split_list(const char *text, char words[][RUN_WORD_MAX], int64_t cap) {
  int64_t n = 0;
  for (const char *p = text; *p;) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *end = e;
    while (end > p && end[-1] == ' ') end--;
    if (n == cap || end - p >= RUN_WORD_MAX) return -1;
    memcpy(words[n], p, (size_t)(end - p));
    words[n][end - p] = '\0';
    n++;
    p = e;
  }
  return n;
}

/* The agents run.baselines can name: the agent kinds, SL with the item-id embedding, the paper's
 * ablations of HSRL (method.md §8: no entropy, no hierarchy, no BC, no MLC), each the run's HSRL
 * config with one switch off, and hsrl-paper: the run's HSRL config with the paper's policy-gradient
 * weights (slate advantage, clipped, no importance weights) where the config chose others
 * (agent.credit, agent.advantage, agent.off_policy_correction). */
#define RUN_VARIANT_MAX_SETS 3
typedef struct run_variant {
  const char *name, *base;
  const char *set[RUN_VARIANT_MAX_SETS];
  int n_set;
} run_variant;
static const run_variant run_variants[] = {
    {"sl", "sl", {NULL}, 0},
    {"sl-id", "sl", {"agent.item_id_embedding=true"}, 1},
    {"hsrl", "hsrl", {NULL}, 0},
    {"hsrl-paper", "hsrl", {"agent.credit=slate", "agent.advantage=clip", "agent.off_policy_correction=false"}, 3},
    {"hsrl-no-bc", "hsrl", {"agent.bc=false"}, 1},
    {"hsrl-no-mlc", "hsrl", {"agent.mlc=false"}, 1},
    {"hsrl-no-hierarchy", "hsrl", {"agent.hierarchy=false"}, 1},
    {"hsrl-no-entropy", "hsrl", {"agent.entropy=false"}, 1},
};
#define RUN_N_VARIANTS ((int)(sizeof run_variants / sizeof run_variants[0]))

static const run_variant *run_variant_find(const char *name) {
  for (int i = 0; i < RUN_N_VARIANTS; i++)
    if (!strcmp(run_variants[i].name, name)) return &run_variants[i];
  return NULL;
}

/* The plan: which stages exist, their outputs, the agents and the compared policies. */
static hsrl_status run_plan(run_ctx *c) {
  const hsrl_settings *s = &c->s;
  const char *src = c->config;
  if (!s->run.data[0])
    return hsrl_err(HSRL_E_USAGE, src, 0, "run.data",
                    "empty: name the prepared-data file the data stage makes");
  if (strcmp(s->data.format, "synth") && !s->data.input[0])
    return hsrl_err(HSRL_E_USAGE, src, 0, "data.input", "empty: name the %s dataset directory",
                    s->data.format);
  c->used[ST_DATA] = 1;
  snprintf(c->out[ST_DATA], RUN_PATH_MAX, "%s", s->run.data);
  c->used[ST_SIM_TRAIN] = s->run.sim_train[0] != '\0';
  snprintf(c->out[ST_SIM_TRAIN], RUN_PATH_MAX, "%s", s->run.sim_train);
  c->used[ST_SIM_ALL] = s->run.sim_all[0] != '\0';
  snprintf(c->out[ST_SIM_ALL], RUN_PATH_MAX, "%s", s->run.sim_all);
  c->used[ST_SID] = s->run.sid[0] != '\0';
  snprintf(c->out[ST_SID], RUN_PATH_MAX, "%s", s->run.sid);
  if (c->used[ST_SID] && !strcmp(s->sid.vectors, "sim") && !c->used[ST_SIM_TRAIN])
    return hsrl_err(HSRL_E_USAGE, src, 0, "sid.vectors",
                    "'sim' quantises the sim-train model's item vectors, but run.sim_train is empty "
                    "(name it, or set sid.vectors = features)");
  if (!strcmp(s->env.model, "sim") && !c->used[ST_SIM_TRAIN] && strcmp(s->data.format, "synth"))
    return hsrl_err(HSRL_E_USAGE, src, 0, "run.sim_train",
                    "empty, and env.model = sim: a %s dataset has no ground truth to train in",
                    s->data.format);
  c->eval_in_world = !c->used[ST_SIM_ALL];
  if (c->eval_in_world && strcmp(s->data.format, "synth"))
    return hsrl_err(HSRL_E_USAGE, src, 0, "run.sim_all",
                    "empty: a %s dataset has no ground truth, so evaluation needs the simulator fitted "
                    "on all records",
                    s->data.format);
  /* agents: agent.kind, then each baseline of another kind */
  char words[RUN_MAX_POLICIES][RUN_WORD_MAX];
  int64_t nb = run_split_list(s->run.baselines, words, RUN_MAX_POLICIES);
  if (nb < 0)
    return hsrl_err(HSRL_E_USAGE, src, 0, "run.baselines", "'%s' is not a short list of agent kinds",
                    s->run.baselines);
  c->n_agents = 0;
  const run_variant *main_agent = run_variant_find(s->agent.kind);
  c->agents[0].base = main_agent->base;
  c->agents[0].set = NULL;
  c->agents[0].n_set = 0;
  snprintf(c->agents[c->n_agents++].kind, HSRL_SETTINGS_ENUM_MAX, "%s", s->agent.kind);
  for (int64_t i = 0; i < nb; i++) {
    const run_variant *v = run_variant_find(words[i]);
    if (!v) {
      char known[256] = "";
      for (int j = 0; j < RUN_N_VARIANTS; j++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "", run_variants[j].name);
      return hsrl_err(HSRL_E_USAGE, src, 0, "run.baselines", "unknown agent '%s' (%s)", words[i], known);
    }
    int dup = 0;
    for (int64_t j = 0; j < c->n_agents; j++) dup |= !strcmp(c->agents[j].kind, words[i]);
    if (dup) continue;
    if (c->n_agents == RUN_MAX_AGENTS)
      return hsrl_err(HSRL_E_USAGE, src, 0, "run.baselines", "too many agents (at most %d)", RUN_MAX_AGENTS - 1);
    if (v->n_set && !strcmp(s->agent.kind, v->base)) { /* a variant that changes nothing is worth a note */
      hsrl_settings *t = hsrl_malloc(sizeof *t);
      *t = *s;
      hsrl_status ast = hsrl_settings_apply_sets(t, v->n_set, v->set);
      const int same = ast == HSRL_OK && memcmp(&t->agent, &s->agent, sizeof t->agent) == 0;
      hsrl_free(t);
      if (ast != HSRL_OK) return ast;
      if (same)
        printf("note: run.baselines: %s is the run's own %s config (%s%s%s already): its row repeats %s's\n",
               v->name, v->base, v->set[0], v->n_set > 1 ? ", " : "", v->n_set > 1 ? v->set[1] : "", v->base);
    }
    c->agents[c->n_agents].base = v->base;
    c->agents[c->n_agents].set = v->n_set ? v->set : NULL;
    c->agents[c->n_agents].n_set = v->n_set;
    snprintf(c->agents[c->n_agents++].kind, HSRL_SETTINGS_ENUM_MAX, "%.*s", RUN_WORD_MAX - 1, words[i]);
  }
  for (int64_t i = 0; i < c->n_agents; i++) {
    run_agent *a = &c->agents[i];
    int n = i == 0 ? snprintf(a->dir, sizeof a->dir, "%s/%s", s->run.out_dir, s->run.name)
                   : snprintf(a->dir, sizeof a->dir, "%s/%s-%s", s->run.out_dir, s->run.name,
                              strncmp(a->kind, "hsrl-", 5) ? a->kind : a->kind + 5); /* name-sl, name-no-bc */
    if (n >= (int)sizeof a->dir) return hsrl_err(HSRL_E_USAGE, src, 0, "run.out_dir", "path too long");
  }
  if (c->n_agents > 1) c->used[ST_BASELINES] = 1;
  c->used[ST_TRAIN] = c->used[ST_EVAL] = 1;
  if (!strcmp(s->agent.kind, "hsrl") && !c->used[ST_SID])
    return hsrl_err(HSRL_E_USAGE, src, 0, "run.sid", "empty: the HSRL agent acts in Semantic IDs");
  for (int64_t i = 1; i < c->n_agents; i++)
    if (!strcmp(c->agents[i].base, "hsrl") && !c->used[ST_SID])
      return hsrl_err(HSRL_E_USAGE, src, 0, "run.sid", "empty: the HSRL baseline acts in Semantic IDs");
  /* the reference policies that apply */
  char cw[RUN_MAX_COMPARE][RUN_WORD_MAX];
  int64_t nc = run_split_list(s->run.compare, cw, RUN_MAX_COMPARE);
  if (nc < 0)
    return hsrl_err(HSRL_E_USAGE, src, 0, "run.compare",
                    "'%s' is not a short list of policies (at most %d, each under %d characters)", s->run.compare,
                    RUN_MAX_COMPARE, RUN_WORD_MAX);
  c->n_compare = 0;
  c->n_capped = 0;
  for (int64_t j = 0; j < nc; j++) {
    const char *p = cw[j];
    char base[RUN_WORD_MAX];
    int64_t cap = 0;
    if (!sim_policy_simple_parse_name(p, base, sizeof base, &cap))
      return hsrl_err(HSRL_E_USAGE, src, 0, "run.compare", "unknown policy '%s' (" SIM_POLICY_SIMPLE_NAMES ")", p);
    if (!strcmp(base, "greedy") && !c->used[ST_SIM_TRAIN]) {
      printf("note: run.compare: %s left out (it ranks by the sim-train model; run.sim_train is empty)\n", p);
      continue;
    }
    if (cap && !c->used[ST_SID])
      return hsrl_err(HSRL_E_USAGE, src, 0, "run.compare",
                      "'%s' caps the items per level-1 SID token, but run.sid is empty", p);
    int dup = 0;
    for (int64_t k = 0; k < c->n_compare; k++) dup |= !strcmp(c->compare[k], p);
    if (dup) continue;
    snprintf(c->compare[c->n_compare], sizeof c->compare[0], "%.*s", RUN_WORD_MAX - 1, p);
    snprintf(c->compare_base[c->n_compare], sizeof c->compare_base[0], "%.*s", RUN_WORD_MAX - 1, base);
    c->compare_cap[c->n_compare++] = cap;
    c->n_capped += cap != 0;
  }
  return HSRL_OK;
}

int learner_run_command(int argc, char **argv) {
  int rc = 2;
  hsrl_status st = HSRL_OK;
  run_ctx *c = hsrl_calloc(1, sizeof *c);
  const char **sets = hsrl_calloc((size_t)argc + 1, sizeof *sets);
  int64_t n_sets = 0;
  hsrl_settings *sa = hsrl_malloc(sizeof *sa);
  run_text t = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      run_usage(stdout);
      rc = 0;
      goto out;
    } else if (!strcmp(a, "--quiet")) {
      c->quiet = 1;
    } else if (!strcmp(a, "--dry-run")) {
      c->dry_run = 1;
    } else if (!strcmp(a, "--set") || !strcmp(a, "--force")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hsrl run: %s needs a value; see 'hsrl run --help'\n", a);
        goto out;
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--set")) {
        sets[n_sets++] = v;
        continue;
      }
      int found = 0;
      for (int k = 0; k < ST_N; k++)
        if (!strcmp(v, "all") || !strcmp(v, run_stage_names[k])) c->force[k] = found = 1;
      if (!found) {
        fprintf(stderr,
                "hsrl run: --force: unknown stage '%s' (data, sim-train, sim-all, sid, train, baselines, "
                "eval, all)\n",
                v);
        goto out;
      }
    } else if (!strncmp(a, "--set=", 6)) {
      sets[n_sets++] = a + 6;
    } else if (a[0] == '-') {
      fprintf(stderr, "hsrl run: unknown argument '%s'; see 'hsrl run --help'\n", a);
      goto out;
    } else if (c->config) {
      fprintf(stderr, "hsrl run: one CONFIG only (got '%s' and '%s')\n", c->config, a);
      goto out;
    } else {
      c->config = a;
    }
  }
  if (!c->config) {
    fprintf(stderr, "hsrl run: CONFIG is required; see 'hsrl run --help'\n");
    goto out;
  }
  if (!getcwd(c->cwd, sizeof c->cwd)) c->cwd[0] = '\0';
  HSRL_TRY(hsrl_settings_load(&c->s, c->config, n_sets, sets));
  if (c->quiet) hsrl_log_set_level(HSRL_LOG_WARN);
  double t0 = hsrl_time_now();
  char cfg_hash[17];
  hsrl_config_hash_hex(hsrl_settings_hash(&c->s), cfg_hash);
  printf("hsrl run %s (config hash %s)%s\n", c->config, cfg_hash, c->dry_run ? ": dry run" : "");
  HSRL_TRY(run_plan(c));
  nn_threads_configure(c->s.run.blas_threads);

  /* data */
  HSRL_TRY(run_text_data(c, &t));
  HSRL_TRY(run_file_stage(c, ST_DATA, RUN_KIND_DATA, &t));
  /* the simulators */
  static const char *const sim_keys[] = {"sim", "run.seed", NULL};
  for (int stage = ST_SIM_TRAIN; stage <= ST_SIM_ALL; stage++) {
    if (!c->used[stage]) continue;
    run_text_free(&t);
    run_text_add(&t, "stage %s\n", run_stage_names[stage]);
    run_text_keys(&t, &c->s, sim_keys, NULL);
    run_text_input(&t, "data", c->out[ST_DATA], c->sum[ST_DATA], c->pending[ST_DATA]);
    HSRL_TRY(run_file_stage(c, stage, RUN_KIND_SIM, &t));
  }
  /* Semantic IDs */
  if (c->used[ST_SID]) {
    static const char *const sid_keys[] = {"sid", "run.seed", NULL};
    run_text_free(&t);
    run_text_add(&t, "stage sid\n");
    run_text_keys(&t, &c->s, sid_keys, NULL);
    run_text_input(&t, "data", c->out[ST_DATA], c->sum[ST_DATA], c->pending[ST_DATA]);
    if (!strcmp(c->s.sid.vectors, "sim"))
      run_text_input(&t, "sim-train", c->out[ST_SIM_TRAIN], c->sum[ST_SIM_TRAIN], c->pending[ST_SIM_TRAIN]);
    HSRL_TRY(run_file_stage(c, ST_SID, RUN_KIND_SID, &t));
  }
  /* the agent, then its baselines */
  for (int64_t i = 0; i < c->n_agents; i++) {
    *sa = c->s;
    if (i > 0) {
      snprintf(sa->agent.kind, sizeof sa->agent.kind, "%s", c->agents[i].base);
      if (c->agents[i].n_set) HSRL_TRY(hsrl_settings_apply_sets(sa, c->agents[i].n_set, c->agents[i].set));
      const char *slash = strrchr(c->agents[i].dir, '/');
      snprintf(sa->run.name, sizeof sa->run.name, "%s", slash ? slash + 1 : c->agents[i].dir);
    }
    HSRL_TRY(run_train_stage(c, i == 0 ? ST_TRAIN : ST_BASELINES, &c->agents[i], sa));
  }
  HSRL_TRY(run_eval_stage(c));
  if (!c->dry_run)
    printf("hsrl run: %d stage(s) ran, %d current, %.1f s\n", c->n_ran, c->n_skipped, hsrl_time_now() - t0);
  rc = 0;
done:
  if (st != HSRL_OK) {
    fflush(stdout);
    fprintf(stderr, "hsrl run: %s\n", hsrl_err_message());
    rc = hsrl_status_exit_code(st);
  }
out:
  if (fflush(stdout) != 0 && rc == 0) rc = 1;
  run_text_free(&t);
  hsrl_free(sa);
  hsrl_free(sets);
  hsrl_free(c);
  return rc;
}
