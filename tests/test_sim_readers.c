/* test_sim_readers.c: the streaming line reader (sim_text), the MovieLens reader (both layouts),
 * the RL4RS reader and the `hsrl data prepare` command (datasets.md; method.md §2).
 *
 * What is checked:
 *  - sim_text: line splitting (CRLF, no final newline, lines across chunk boundaries), the line
 *    bound (exactly at it passes, one byte over fails naming the line and field), NUL bytes, the
 *    FNV-1a checksum against a direct computation, number and list parsing edge cases;
 *  - ML-100K: the hand-written fixture tests/fixtures/ml100k (README there gives the design), every
 *    field of the result against values derived by hand from datasets.md's rules;
 *  - ML-1M: a generated directory (ties in timestamps, titles with other parentheses and Latin-1
 *    bytes, users with too few ratings, histories longer than 50) against an independent naive
 *    implementation of the rules in this file;
 *  - ML-1M u2999 from ../shared/data: the exact figures of datasets.md (skipped when absent);
 *  - RL4RS: a generated directory with known values, and the shared sample (skipped when absent);
 *  - malformed input of every kind in the issue, for all three formats: HSRL_E_INPUT (exit 2) and a
 *    message naming the file, the line and the field;
 *  - the command: exit codes, and nothing left under --out (nor a temporary) after a failure. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_log.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_status.h"
#include "common/hsrl_timer.h"
#include "sim/sim_data.h"
#include "sim/sim_data_cmd.h"
#include "sim/sim_reader_movielens.h"
#include "sim/sim_reader_rl4rs.h"
#include "sim/sim_text.h"
#include "tests/test_harness.h"

#define FIXTURE_ML100K HSRL_GOLDEN_DIR "/../fixtures/ml100k"

/* ---- file helpers ---------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  if (n && fwrite(data, 1, n, f) != n) exit(1);
  fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = hsrl_malloc((size_t)size + 1);
  *n = fread(buf, 1, (size_t)size, f);
  buf[*n] = '\0';
  fclose(f);
  return buf;
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* A fresh empty directory tmpdir/name (files in an older one are removed). */
static const char *fresh_dir(const char *name) {
  static char path[4][512];
  static int k = 0;
  char *p = path[k++ % 4];
  snprintf(p, 512, "%s/%s", test_tmpdir(), name);
  DIR *d = opendir(p);
  if (d) {
    struct dirent *e;
    char f[1024];
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      snprintf(f, sizeof f, "%s/%s", p, e->d_name);
      unlink(f);
    }
    closedir(d);
  } else {
    mkdir(p, 0755);
  }
  return p;
}

static void remove_dir(const char *p) {
  DIR *d = opendir(p);
  if (!d) return;
  struct dirent *e;
  char f[1024];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(f, sizeof f, "%s/%s", p, e->d_name);
    unlink(f);
  }
  closedir(d);
  rmdir(p);
}

static int dir_count_entries(const char *p) {
  DIR *d = opendir(p);
  int n = 0;
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void copy_file(const char *src, const char *dst) {
  size_t n = 0;
  char *b = read_all(src, &n);
  if (!b) {
    perror(src);
    exit(1);
  }
  write_bytes(dst, b, n);
  hsrl_free(b);
}

static void copy_fixture(const char *dst, const char *src, const char *const *names, int n) {
  char a[1024], b[1024];
  for (int i = 0; i < n; i++) {
    snprintf(a, sizeof a, "%s/%s", src, names[i]);
    snprintf(b, sizeof b, "%s/%s", dst, names[i]);
    copy_file(a, b);
  }
}

/* Replaces line `line_no` (1-based) of the file with text (which has no '\n'). */
static void replace_line(const char *path, int line_no, const char *text) {
  size_t n = 0;
  char *b = read_all(path, &n);
  size_t tn = strlen(text);
  char *out = hsrl_malloc(n + tn + 2);
  size_t o = 0, i = 0;
  int line = 1;
  while (i < n) {
    size_t j = i;
    while (j < n && b[j] != '\n') j++;
    if (line == line_no) memcpy(out + o, text, tn), o += tn;
    else memcpy(out + o, b + i, j - i), o += j - i;
    if (j < n) out[o++] = '\n';
    i = j + 1;
    line++;
  }
  write_bytes(path, out, o);
  hsrl_free(out);
  hsrl_free(b);
}

/* "path" joined from dir and name into a static buffer (two alternating). */
static const char *join(const char *dir, const char *name) {
  static char buf[2][1024];
  static int k = 0;
  char *p = buf[k++ % 2];
  snprintf(p, 1024, "%s/%s", dir, name);
  return p;
}

/* Passes when st is an input error whose message names "<file>:<line>:" (line > 0; just the file
 * when line == 0) and "field '<field>'" (when field is not NULL). */
static int error_names(hsrl_status st, const char *file, long line, const char *field) {
  const char *m = hsrl_err_message();
  char want[600];
  if (line > 0) snprintf(want, sizeof want, "%s:%ld: ", file, line);
  else snprintf(want, sizeof want, "%s", file);
  int ok = st == HSRL_E_INPUT && hsrl_status_exit_code(st) == 2 && strstr(m, want) != NULL;
  if (ok && field) {
    snprintf(want, sizeof want, "field '%s'", field);
    ok = strstr(m, want) != NULL;
  }
  if (!ok) printf("  (status %d, message: %s)\n", (int)st, m);
  return ok;
}

/* ---- sim_text -------------------------------------------------------------------------- */

static void test_text_lines_and_checksum(void) {
  const char *dir = fresh_dir("text");
  const char bytes[] = "a\r\nbb\n\n\xe9t\xe9::x\nccc"; /* CRLF, empty line, Latin-1, no final '\n' */
  write_bytes(join(dir, "t.txt"), bytes, sizeof bytes - 1);
  sim_text *t = NULL;
  TEST_ASSERT(sim_text_open(&t, join(dir, "t.txt"), 100) == HSRL_OK);
  const char *want[] = {"a", "bb", "", "\xe9t\xe9::x", "ccc"};
  char *line;
  int64_t len;
  for (int i = 0; i < 5; i++) {
    TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK);
    TEST_ASSERTF(line && !strcmp(line, want[i]) && len == (int64_t)strlen(want[i]), "line %d: '%s'", i + 1,
                 line ? line : "(null)");
    TEST_ASSERT(sim_text_line(t) == i + 1);
  }
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && line == NULL);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && line == NULL); /* stays at the end */
  TEST_ASSERT(sim_text_bytes_read(t) == (int64_t)sizeof bytes - 1);
  TEST_ASSERT(sim_text_file_size(t) == (int64_t)sizeof bytes - 1);
  /* FNV-1a 64 computed here directly, byte by byte */
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i + 1 < sizeof bytes; i++) h = (h ^ (unsigned char)bytes[i]) * 0x100000001b3ull;
  TEST_ASSERT(sim_text_checksum(t) == h);
  char hex[24];
  sim_text_checksum_hex(h, hex);
  TEST_ASSERT(strlen(hex) == 16);
  TEST_ASSERT(sim_text_fnv1a(SIM_TEXT_FNV_OFFSET, "a", 1) == ((0xcbf29ce484222325ull ^ 'a') * 0x100000001b3ull));
  sim_text_close(t);
  sim_text_close(NULL);

  /* an empty file: end at once; a missing file and a directory: input errors naming them */
  write_bytes(join(dir, "empty.txt"), "", 0);
  TEST_ASSERT(sim_text_open(&t, join(dir, "empty.txt"), 100) == HSRL_OK);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && line == NULL && sim_text_line(t) == 0);
  sim_text_close(t);
  TEST_ASSERT(error_names(sim_text_open(&t, join(dir, "nope.txt"), 100), "nope.txt", 0, NULL));
  TEST_ASSERT(t == NULL);
  TEST_ASSERT(error_names(sim_text_open(&t, dir, 100), dir, 0, NULL));
  remove_dir(dir);
}

static void test_text_long_lines(void) {
  const char *dir = fresh_dir("text_long");
  /* lines of 300 KB and 700 KB cross the 256 KB read chunks; the bound (1 MiB) is not reached */
  const size_t n1 = 300000, n2 = 700000;
  char *b = hsrl_malloc(n1 + n2 + 16);
  size_t o = 0;
  for (size_t i = 0; i < n1; i++) b[o++] = (char)('a' + i % 26);
  b[o++] = '\n';
  for (size_t i = 0; i < n2; i++) b[o++] = (char)('0' + i % 10);
  b[o++] = '\r', b[o++] = '\n';
  b[o++] = 'z';
  write_bytes(join(dir, "long.txt"), b, o);
  sim_text *t = NULL;
  char *line;
  int64_t len;
  TEST_ASSERT(sim_text_open(&t, join(dir, "long.txt"), (int64_t)1 << 20) == HSRL_OK);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && len == (int64_t)n1 && !memcmp(line, b, n1));
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && len == (int64_t)n2 && !memcmp(line, b + n1 + 1, n2));
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && len == 1 && line[0] == 'z');
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && line == NULL);
  sim_text_close(t);
  hsrl_free(b);

  /* the bound: a line of exactly max_line bytes passes (also with CRLF), one more fails, naming
   * the line and the field the bound falls in */
  static const char *const names[] = {"first", "second", "third"};
  char text[4000];
  memset(text, 'x', sizeof text);
  memcpy(text, "1@2@", 4);
  size_t off = 0;
  memcpy(text + off + 1000, "\r\n", 2); /* line 1: 1000 bytes + CRLF */
  off = 1002;
  text[off + 1000] = '\n'; /* line 2: 1000 bytes */
  off += 1001;
  memcpy(text + off, "1@2@", 4);
  text[off + 1001] = '\n'; /* line 3: 1001 bytes */
  write_bytes(join(dir, "bound.txt"), text, off + 1002);
  TEST_ASSERT(sim_text_open(&t, join(dir, "bound.txt"), 1000) == HSRL_OK);
  sim_text_set_fields(t, "@", names, 3);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && len == 1000);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK && len == 1000);
  hsrl_status st = sim_text_next(t, &line, &len);
  TEST_ASSERT(error_names(st, "bound.txt", 3, "third"));
  TEST_ASSERT(strstr(hsrl_err_message(), "longer than 1000 bytes") != NULL);
  sim_text_close(t);

  /* a NUL byte inside a line */
  write_bytes(join(dir, "nul.txt"), "ok\nab@c\0d\n", 10);
  TEST_ASSERT(sim_text_open(&t, join(dir, "nul.txt"), 1000) == HSRL_OK);
  sim_text_set_fields(t, "@", names, 3);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK);
  TEST_ASSERT(error_names(sim_text_next(t, &line, &len), "nul.txt", 2, "second"));
  sim_text_close(t);
  remove_dir(dir);
}

static void test_text_split_and_parse(void) {
  const char *dir = fresh_dir("text_parse");
  write_text(join(dir, "p.txt"), "1::2::3\n1::2\n1::2::3::4\n");
  static const char *const names[] = {"A", "B", "C"};
  sim_text *t = NULL;
  char *line, *f[3];
  int64_t len, v;
  TEST_ASSERT(sim_text_open(&t, join(dir, "p.txt"), 100) == HSRL_OK);
  sim_text_set_fields(t, "::", names, 3);
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK);
  TEST_ASSERT(sim_text_split(t, line, f) == HSRL_OK);
  TEST_ASSERT(!strcmp(f[0], "1") && !strcmp(f[1], "2") && !strcmp(f[2], "3"));
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK);
  TEST_ASSERT(error_names(sim_text_split(t, line, f), "p.txt", 2, "C"));
  TEST_ASSERT(sim_text_next(t, &line, &len) == HSRL_OK);
  TEST_ASSERT(error_names(sim_text_split(t, line, f), "p.txt", 3, "C"));
  TEST_ASSERT(strstr(hsrl_err_message(), "extra text") != NULL);

  /* integers: whole field, optional sign, range, overflow */
  TEST_ASSERT(sim_text_parse_i64(t, "A", "42", 0, 100, &v) == HSRL_OK && v == 42);
  TEST_ASSERT(sim_text_parse_i64(t, "A", "-7", -10, 0, &v) == HSRL_OK && v == -7);
  TEST_ASSERT(sim_text_parse_i64(t, "A", "-9223372036854775808", INT64_MIN, INT64_MAX, &v) == HSRL_OK &&
              v == INT64_MIN);
  const char *bad_ints[] = {"", "-", "1a", " 1", "1 ", "0x10", "9223372036854775808", "101", "1.0"};
  for (int i = 0; i < 9; i++)
    TEST_ASSERTF(error_names(sim_text_parse_i64(t, "A", bad_ints[i], 0, 100, &v), "p.txt", 3, "A"),
                 "'%s' was accepted", bad_ints[i]);
  double x;
  TEST_ASSERT(sim_text_parse_f64(t, "B", "-1.25e2", &x) == HSRL_OK && x == -125.0);
  TEST_ASSERT(sim_text_parse_f64(t, "B", ".5", &x) == HSRL_OK && x == 0.5);
  const char *bad_reals[] = {"", "nan", "inf", "-inf", "1e999", "1.5x", " 1", "1,2", "--1"};
  for (int i = 0; i < 9; i++)
    TEST_ASSERTF(error_names(sim_text_parse_f64(t, "B", bad_reals[i], &x), "p.txt", 3, "B"),
                 "'%s' was accepted", bad_reals[i]);

  /* integer lists keep the last cap items in order */
  int32_t out[10];
  int64_t n;
  TEST_ASSERT(sim_text_parse_i32_list(t, "C", "1,2,3,4,5,6,7", ',', 1, 9, out, 3, &n) == HSRL_OK);
  TEST_ASSERT(n == 7 && out[0] == 5 && out[1] == 6 && out[2] == 7);
  TEST_ASSERT(sim_text_parse_i32_list(t, "C", "1,2,3,4,5,6", ',', 1, 9, out, 3, &n) == HSRL_OK);
  TEST_ASSERT(n == 6 && out[0] == 4 && out[1] == 5 && out[2] == 6);
  TEST_ASSERT(sim_text_parse_i32_list(t, "C", "9,8", ',', 1, 9, out, 10, &n) == HSRL_OK);
  TEST_ASSERT(n == 2 && out[0] == 9 && out[1] == 8);
  TEST_ASSERT(sim_text_parse_i32_list(t, "C", "", ',', 1, 9, out, 10, &n) == HSRL_OK && n == 0);
  TEST_ASSERT(sim_text_parse_i32_list(t, "C", "1,2,3", ',', 1, 9, out, 0, &n) == HSRL_OK && n == 3);
  TEST_ASSERT(error_names(sim_text_parse_i32_list(t, "C", "1,2,x", ',', 1, 9, out, 10, &n), "p.txt", 3, "C"));
  TEST_ASSERT(strstr(hsrl_err_message(), "item 3") != NULL);
  TEST_ASSERT(error_names(sim_text_parse_i32_list(t, "C", "1,,2", ',', 1, 9, out, 10, &n), "p.txt", 3, "C"));
  TEST_ASSERT(error_names(sim_text_parse_i32_list(t, "C", "1,2,", ',', 1, 9, out, 10, &n), "p.txt", 3, "C"));
  TEST_ASSERT(error_names(sim_text_parse_i32_list(t, "C", "1,10", ',', 1, 9, out, 10, &n), "p.txt", 3, "C"));
  float fo[4];
  double d[3];
  TEST_ASSERT(sim_text_parse_f32_list(t, "C", "0.5,-2,1e3", ',', fo, 3) == HSRL_OK);
  TEST_ASSERT(fo[0] == 0.5f && fo[1] == -2.0f && fo[2] == 1000.0f);
  TEST_ASSERT(sim_text_parse_f64_list(t, "C", "0.1;0.2;0.3", ';', d, 3) == HSRL_OK && d[1] == 0.2);
  TEST_ASSERT(error_names(sim_text_parse_f32_list(t, "C", "0.5,-2", ',', fo, 3), "p.txt", 3, "C"));
  TEST_ASSERT(error_names(sim_text_parse_f32_list(t, "C", "0.5,-2,1e39", ',', fo, 3), "p.txt", 3, "C"));
  TEST_ASSERT(error_names(sim_text_parse_f32_list(t, "C", "0.5,abc,1", ',', fo, 3), "p.txt", 3, "C"));
  TEST_ASSERT(sim_text_count_items("", ',') == 0 && sim_text_count_items("a,b,,c", ',') == 4);
  sim_text_close(t);

  char base[64];
  sim_text_basename(base, sizeof base, "/x/y/ml-1m-u2999/");
  TEST_ASSERT(!strcmp(base, "ml-1m-u2999"));
  sim_text_basename(base, sizeof base, "data");
  TEST_ASSERT(!strcmp(base, "data"));
  remove_dir(dir);
}

/* ---- ML-100K fixture ------------------------------------------------------------------- */

static const char *const ml100k_files[] = {"u.data", "u.item", "u.user", "u.occupation"};

static uint64_t file_fnv(const char *path, int64_t *size) {
  size_t n = 0;
  char *b = read_all(path, &n);
  uint64_t h = sim_text_fnv1a(SIM_TEXT_FNV_OFFSET, b, (int64_t)n);
  *size = (int64_t)n;
  hsrl_free(b);
  return h;
}

/* Expected values: tests/fixtures/ml100k/README.md explains each from datasets.md's rules. */
static void test_ml100k_fixture(void) {
  sim_dataset d;
  sim_provenance p;
  hsrl_status st = sim_reader_movielens_read(&d, &p, FIXTURE_ML100K, SIM_READER_MOVIELENS_100K);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(sim_dataset_validate(&d, "fixture") == HSRL_OK);
  TEST_ASSERT(!strcmp(d.source_format, "ml100k") && !strcmp(d.name, "ml100k"));
  /* items: the 22 rated movies (raw 1..21 and 40; 50 is never rated) */
  TEST_ASSERT(d.n_items == 22 && d.item_dim == 19 + 9);
  for (int i = 1; i <= 21; i++) TEST_ASSERT(d.item_raw_id[i] == i);
  TEST_ASSERT(d.item_raw_id[0] == 0 && d.item_raw_id[22] == 40);
  const float *it = d.item_features;
  const int64_t D = d.item_dim;
  /* item 1: Animation (3), Children's (4), Comedy (5); 1995 -> bucket 1995-97 (index 7) */
  for (int j = 0; j < D; j++) {
    int want = j == 3 || j == 4 || j == 5 || j == 19 + 7;
    TEST_ASSERTF(it[1 * D + j] == (float)want, "item 1 column %d", j);
  }
  /* item 2: empty release date -> all-zero year buckets */
  for (int j = 19; j < D; j++) TEST_ASSERT(it[2 * D + j] == 0.0f);
  TEST_ASSERT(it[2 * D + 1] == 1.0f && it[2 * D + 16] == 1.0f); /* Action, Thriller */
  TEST_ASSERT(it[3 * D + 19 + 0] == 1.0f);                       /* 1939 -> <=1939 */
  TEST_ASSERT(it[4 * D + 19 + 1] == 1.0f);                       /* 1940 -> 1940-49 */
  TEST_ASSERT(it[5 * D + 19 + 8] == 1.0f);                       /* 1998 -> 1998-2000 */
  TEST_ASSERT(it[6 * D + 19 + 6] == 1.0f);                       /* 1994 -> 1990-94 */
  TEST_ASSERT(it[22 * D + 0] == 1.0f && it[22 * D + 19 + 4] == 1.0f); /* raw 40: unknown, 1970 */
  for (int j = 0; j < D; j++) TEST_ASSERT(it[j] == 0.0f);            /* padding row */
  for (int i = 1; i <= 22; i++) {
    float s = 0;
    for (int j = 19; j < D; j++) s += it[i * D + j];
    TEST_ASSERT(s == (i == 2 ? 0.0f : 1.0f)); /* one bucket, or none without a date */
  }
  /* users: raw 1, 2, 7 have slates (3 has 9 ratings, 9 has none) */
  TEST_ASSERT(d.n_users == 3 && d.user_dim == 2 + 7 + 5);
  TEST_ASSERT(d.user_raw_id[1] == 1 && d.user_raw_id[2] == 2 && d.user_raw_id[3] == 7);
  const int hot[3][3] = {{1, 2 + 1, 9 + 4}, {0, 2 + 5, 9 + 1}, {0, 2 + 0, 9 + 3}};
  for (int u = 0; u < 3; u++)
    for (int j = 0; j < d.user_dim; j++) {
      int want = j == hot[u][0] || j == hot[u][1] || j == hot[u][2];
      TEST_ASSERTF(d.user_features[(u + 1) * d.user_dim + j] == (float)want, "user %d column %d", u + 1, j);
    }
  /* records */
  TEST_ASSERT(d.n_records == 5 && d.slate_size == 10 && d.history_len == 50);
  const int32_t slates[5][10] = {{22, 1, 2, 3, 4, 5, 6, 7, 8, 9},
                                 {10, 11, 12, 13, 14, 15, 16, 17, 18, 19},
                                 {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
                                 {20, 19, 18, 17, 16, 15, 14, 13, 12, 11},
                                 {10, 9, 8, 7, 6, 5, 4, 3, 2, 1}};
  const uint8_t clicks[5][10] = {{1, 1, 0, 1, 0, 1, 0, 1, 0, 1},
                                 {0, 1, 0, 1, 0, 1, 0, 1, 0, 1},
                                 {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                 {1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                                 {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
  const int32_t users[5] = {1, 1, 2, 3, 3};
  const int64_t times[5] = {1005, 1100, 2001, 3001, 3011};
  for (int r = 0; r < 5; r++) {
    TEST_ASSERT(d.rec_user[r] == users[r] && d.rec_time[r] == times[r]);
    for (int k = 0; k < 10; k++) {
      TEST_ASSERTF(d.rec_slate[r * 10 + k] == slates[r][k], "record %d slot %d: %d", r, k, d.rec_slate[r * 10 + k]);
      TEST_ASSERT(d.rec_clicks[r * 10 + k] == clicks[r][k]);
    }
  }
  /* histories: empty for first slates; record 1: 22,1,3,5,7,9; record 4: 20..11 */
  const int32_t h1[6] = {22, 1, 3, 5, 7, 9};
  for (int j = 0; j < 50; j++) {
    TEST_ASSERT(d.rec_history[0 * 50 + j] == 0 && d.rec_history[2 * 50 + j] == 0 && d.rec_history[3 * 50 + j] == 0);
    TEST_ASSERT(d.rec_history[1 * 50 + j] == (j < 44 ? 0 : h1[j - 44]));
    TEST_ASSERT(d.rec_history[4 * 50 + j] == (j < 40 ? 0 : 20 - (j - 40)));
  }
  /* split: floor(0.8 n) per user: 1 of 2, 0 of 1, 1 of 2 */
  TEST_ASSERT(d.n_train == 2 && d.n_test == 3);
  TEST_ASSERT(d.train_idx[0] == 0 && d.train_idx[1] == 3);
  TEST_ASSERT(d.test_idx[0] == 1 && d.test_idx[1] == 2 && d.test_idx[2] == 4);
  /* provenance */
  TEST_ASSERT(p.n_dropped == 2 + 2 + 9 + 0);
  TEST_ASSERT(p.n_sources == 4);
  TEST_ASSERT(p.n_lines_read == 23 + 5 + 5 + 63);
  for (int i = 0; i < p.n_sources; i++) {
    int64_t size;
    uint64_t h = file_fnv(p.source_path[i], &size);
    char hex[24];
    sim_text_checksum_hex(h, hex);
    TEST_ASSERTF(p.source_bytes[i] == size && !strcmp(p.source_checksum[i], hex), "source %s", p.source_path[i]);
  }
  TEST_ASSERT(strstr(p.source_path[3], "u.data") != NULL);
  TEST_ASSERT(strstr(p.protocol, "datasets.md") != NULL);
  sim_dataset_free(&d);
}

/* ---- ML-1M: generated data against a naive implementation of the rules ------------------- */

static const char *const genres_1m[18] = {
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"};

static int ref_bucket(int y) {
  if (y <= 1939) return 0;
  if (y <= 1949) return 1;
  if (y <= 1959) return 2;
  if (y <= 1969) return 3;
  if (y <= 1979) return 4;
  if (y <= 1989) return 5;
  if (y <= 1994) return 6;
  if (y <= 1997) return 7;
  return 8;
}

#define GEN_MOVIES 300
#define GEN_USERS 40
typedef struct gen_rating {
  int user, movie, rating;
  int64_t ts;
} gen_rating;

typedef struct gen_ml1m {
  int movie_raw[GEN_MOVIES], movie_year[GEN_MOVIES], movie_genres[GEN_MOVIES]; /* genre bit mask */
  int user_raw[GEN_USERS], user_gender[GEN_USERS], user_age[GEN_USERS], user_occ[GEN_USERS];
  gen_rating *r;
  int n;
} gen_ml1m;

/* Writes an ML-1M directory from a seeded generator; g keeps the truth. */
static void gen_ml1m_write(gen_ml1m *g, const char *dir, uint64_t seed) {
  static const int ages[7] = {1, 18, 25, 35, 45, 50, 56};
  hsrl_rng rng;
  hsrl_rng_init(&rng, seed, 0);
  char *buf = hsrl_malloc(1 << 20);
  size_t o = 0;
  for (int m = 0; m < GEN_MOVIES; m++) {
    g->movie_raw[m] = 1 + 3 * m + m % 2;
    g->movie_year[m] = 1915 + (int)hsrl_rng_below(&rng, 86);
    g->movie_genres[m] = 0;
    int ng = 1 + (int)hsrl_rng_below(&rng, 3);
    for (int k = 0; k < ng; k++) g->movie_genres[m] |= 1 << hsrl_rng_below(&rng, 18);
    /* titles with other parentheses and Latin-1 bytes before the year */
    o += (size_t)snprintf(buf + o, 4096, "%d::Movie %d (a.k.a. \xc9t\xe9 (%d)) (%d)::", g->movie_raw[m], m,
                          1900 + m % 99, g->movie_year[m]);
    int first = 1;
    for (int k = 0; k < 18; k++)
      if (g->movie_genres[m] >> k & 1) o += (size_t)snprintf(buf + o, 4096, "%s%s", first ? "" : "|", genres_1m[k]), first = 0;
    buf[o++] = '\n';
  }
  write_bytes(join(dir, "movies.dat"), buf, o);
  o = 0;
  for (int u = 0; u < GEN_USERS; u++) {
    g->user_raw[u] = 5 + 2 * u;
    g->user_gender[u] = (int)hsrl_rng_below(&rng, 2);
    g->user_age[u] = (int)hsrl_rng_below(&rng, 7);
    g->user_occ[u] = (int)hsrl_rng_below(&rng, 21);
    o += (size_t)snprintf(buf + o, 4096, "%d::%c::%d::%d::%05d\n", g->user_raw[u], g->user_gender[u] ? 'M' : 'F',
                          ages[g->user_age[u]], g->user_occ[u], (int)hsrl_rng_below(&rng, 99999));
  }
  write_bytes(join(dir, "users.dat"), buf, o);
  /* ratings: some users none or < 10; many timestamp ties; mostly positive so histories pass 50 */
  g->r = hsrl_malloc((size_t)GEN_USERS * GEN_MOVIES * sizeof *g->r);
  g->n = 0;
  int perm[GEN_MOVIES];
  for (int u = 0; u < GEN_USERS; u++) {
    int n = u % 7 == 0 ? (int)hsrl_rng_below(&rng, 10) : (int)hsrl_rng_below(&rng, 200);
    for (int m = 0; m < GEN_MOVIES; m++) perm[m] = m;
    for (int m = GEN_MOVIES - 1; m > 0; m--) {
      int j = (int)hsrl_rng_below(&rng, (uint64_t)m + 1), x = perm[m];
      perm[m] = perm[j], perm[j] = x;
    }
    for (int i = 0; i < n; i++) {
      gen_rating *x = g->r + g->n++;
      x->user = u;
      x->movie = perm[i];
      x->rating = hsrl_rng_uniform(&rng) < 0.75f ? 4 + (int)hsrl_rng_below(&rng, 2) : 1 + (int)hsrl_rng_below(&rng, 3);
      x->ts = 978300000 + (int64_t)hsrl_rng_below(&rng, 40);
    }
  }
  for (int i = g->n - 1; i > 0; i--) { /* file order: shuffled */
    int j = (int)hsrl_rng_below(&rng, (uint64_t)i + 1);
    gen_rating x = g->r[i];
    g->r[i] = g->r[j], g->r[j] = x;
  }
  char *big = hsrl_malloc((size_t)g->n * 48 + 1);
  o = 0;
  for (int i = 0; i < g->n; i++)
    o += (size_t)snprintf(big + o, 48, "%d::%d::%d::%lld\n", g->user_raw[g->r[i].user], g->movie_raw[g->r[i].movie],
                          g->r[i].rating, (long long)g->r[i].ts);
  write_bytes(join(dir, "ratings.dat"), big, o);
  hsrl_free(big);
  hsrl_free(buf);
}

static void test_ml1m_generated_matches_naive(void) {
  const char *dir = fresh_dir("ml1m_gen");
  gen_ml1m *g = hsrl_calloc(1, sizeof *g);
  gen_ml1m_write(g, dir, 20240601);
  sim_dataset d;
  sim_provenance p;
  hsrl_status st = sim_reader_movielens_read(&d, &p, dir, SIM_READER_MOVIELENS_1M);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());

  /* items: rated movies in raw order (the generator's raw ids ascend with the movie index) */
  int item_of[GEN_MOVIES], n_items = 0;
  for (int m = 0; m < GEN_MOVIES; m++) {
    int rated = 0;
    for (int i = 0; i < g->n && !rated; i++) rated = g->r[i].movie == m;
    item_of[m] = rated ? ++n_items : 0;
  }
  TEST_ASSERT(d.n_items == n_items && d.item_dim == 27);
  for (int m = 0; m < GEN_MOVIES; m++) {
    if (!item_of[m]) continue;
    const float *x = d.item_features + item_of[m] * 27;
    TEST_ASSERT(d.item_raw_id[item_of[m]] == g->movie_raw[m]);
    for (int k = 0; k < 18; k++) TEST_ASSERT(x[k] == (float)(g->movie_genres[m] >> k & 1));
    for (int b = 0; b < 9; b++) TEST_ASSERTF(x[18 + b] == (float)(b == ref_bucket(g->movie_year[m])), "movie %d year %d", m, g->movie_year[m]);
  }
  /* per user: naive selection sort by (ts, movie raw), slates, histories, split */
  int64_t rec = 0, n_users = 0, n_train = 0, n_test = 0, dropped = 0, max_hist = 0;
  gen_rating *mine = hsrl_malloc((size_t)GEN_MOVIES * sizeof *mine);
  int32_t *positives = hsrl_malloc((size_t)GEN_MOVIES * sizeof *positives);
  for (int u = 0; u < GEN_USERS; u++) {
    int n = 0;
    for (int i = 0; i < g->n; i++)
      if (g->r[i].user == u) mine[n++] = g->r[i];
    for (int a = 0; a < n; a++)
      for (int b = a + 1; b < n; b++)
        if (mine[b].ts < mine[a].ts || (mine[b].ts == mine[a].ts && g->movie_raw[mine[b].movie] < g->movie_raw[mine[a].movie])) {
          gen_rating x = mine[a];
          mine[a] = mine[b], mine[b] = x;
        }
    int s = n / 10, n_pos = 0;
    dropped += n - 10 * s;
    if (s == 0) continue;
    n_users++;
    TEST_ASSERT(d.user_raw_id[n_users] == g->user_raw[u]);
    const float *uf = d.user_features + n_users * 30;
    for (int j = 0; j < 30; j++) {
      int want = j == g->user_gender[u] || j == 2 + g->user_age[u] || j == 9 + g->user_occ[u];
      TEST_ASSERT(uf[j] == (float)want);
    }
    for (int j = 0; j < s; j++, rec++) {
      TEST_ASSERT(rec < d.n_records);
      TEST_ASSERT(d.rec_user[rec] == n_users && d.rec_time[rec] == mine[10 * j].ts);
      int h = n_pos < 50 ? n_pos : 50;
      if (n_pos > max_hist) max_hist = n_pos;
      for (int k = 0; k < 50; k++) {
        int32_t want = k < 50 - h ? 0 : positives[n_pos - h + (k - (50 - h))];
        TEST_ASSERTF(d.rec_history[rec * 50 + k] == want, "record %lld history %d", (long long)rec, k);
      }
      for (int k = 0; k < 10; k++) {
        const gen_rating *x = mine + 10 * j + k;
        TEST_ASSERT(d.rec_slate[rec * 10 + k] == item_of[x->movie]);
        TEST_ASSERT(d.rec_clicks[rec * 10 + k] == (x->rating > 3));
        if (x->rating > 3) positives[n_pos++] = item_of[x->movie];
      }
      int is_train = j < (int)floor(0.8 * s);
      if (is_train) TEST_ASSERT(d.train_idx[n_train++] == rec);
      else TEST_ASSERT(d.test_idx[n_test++] == rec);
    }
  }
  TEST_ASSERT(max_hist > 50); /* the truncation to the last 50 was exercised */
  TEST_ASSERT(d.n_users == n_users && d.n_records == rec && d.n_train == n_train && d.n_test == n_test);
  TEST_ASSERT(p.n_dropped == dropped && dropped > 0);
  TEST_ASSERT(p.n_lines_read == GEN_MOVIES + GEN_USERS + g->n);
  hsrl_free(mine);
  hsrl_free(positives);
  hsrl_free(g->r);
  hsrl_free(g);
  sim_dataset_free(&d);
  remove_dir(dir);
}

/* ---- ML-1M u2999: the figures of datasets.md -------------------------------------------- */

static void test_ml1m_u2999_figures(void) {
  const char *dir = HSRL_SHARED_DATA "/ml-1m-u2999";
  if (!file_exists(dir)) TEST_SKIP("needs " HSRL_SHARED_DATA "/ml-1m-u2999 (MovieLens-1M, users 1..2999)");
  sim_dataset d;
  sim_provenance p;
  double t0 = hsrl_time_now();
  hsrl_status st = sim_reader_movielens_read(&d, &p, dir, SIM_READER_MOVIELENS_1M);
  double seconds = hsrl_time_now() - t0;
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  printf("  ml-1m-u2999: read in %.2f s\n", seconds);
  TEST_ASSERT(d.n_items == 3615 && d.item_dim == 27);
  TEST_ASSERT(d.n_users == 2999 && d.user_dim == 30);
  TEST_ASSERT(d.n_train == 36734 && d.n_test == 10692 && d.n_records == 36734 + 10692);
  TEST_ASSERT(p.n_dropped == 13390);
  TEST_ASSERT(d.n_records * 10 + p.n_dropped == 487650);
  TEST_NEAR(sim_dataset_click_rate(&d, d.train_idx, d.n_train), 0.584, 0.0005);
  TEST_NEAR(sim_dataset_click_rate(&d, d.test_idx, d.n_test), 0.532, 0.0005);
  TEST_ASSERT(sim_dataset_distinct_item_features(&d) == 795);
  TEST_ASSERT(sim_dataset_validate(&d, dir) == HSRL_OK);
  /* user 1's first rating by (timestamp, movie) is movie 3186 at 978300019 (ratings.dat) */
  TEST_ASSERT(d.user_raw_id[1] == 1 && d.rec_user[0] == 1 && d.rec_time[0] == 978300019);
  TEST_ASSERT(d.item_raw_id[d.rec_slate[0]] == 3186);
  TEST_ASSERT(p.n_sources == 3 && p.source_bytes[2] > 10000000);
  TEST_ASSERT(seconds < 30.0); /* "prepares in seconds" (generous for sanitizer builds) */
  sim_dataset_free(&d);
}

/* ---- RL4RS ------------------------------------------------------------------------------ */

static const char *rl_header_line =
    "timestamp@session_id@sequence_id@exposed_items@user_feedback@user_seqfeature@user_protrait@"
    "item_feature@behavior_policy_id";

/* A small RL4RS directory: 5 items of dim 3, K = 3, P = 2, 3 train and 2 test rows. */
static void gen_rl4rs_write(const char *dir) {
  write_text(join(dir, "item_info.csv"),
             "item_id item_vec price location special_item\n"
             "1 0.5,-1,2 7.0 1 0\n"
             "2 1,2,3 13.1 1 0\n"
             "3 0,0,0 1 2 0\n"
             "4 -0.25,0.125,8 2 1 1\n"
             "5 1e-3,2.5,-3 3 3 0"); /* no final newline, like the real file */
  char hist60[400];
  size_t o = 0;
  for (int i = 0; i < 60; i++) o += (size_t)snprintf(hist60 + o, 8, "%s%d", i ? "," : "", 1 + i % 5);
  char train[2000];
  snprintf(train, sizeof train,
           "%s\n"
           "100@1@1@1,2,3@1,0,1@0@0,1.5@0.1,0.2;0.3,0.4;0.5,0.6@1\n"
           "101@1@2@4,5,1@0,0,1@1,3@3,0.25@x@1\n"
           "102@2@1@2,3,4@1,1,1@%s@0,0@@1",
           rl_header_line, hist60);
  write_text(join(dir, "rl4rs_b_train.csv"), train);
  char test[1000];
  snprintf(test, sizeof test,
           "%s\r\n"
           "200@3@1@5,4,3@0,1,0@@2,2@@1\r\n"
           "201@3@2@1,2,3@1,1,0@5,4@7,0@@1\r\n",
           rl_header_line);
  write_text(join(dir, "rl4rs_b_test.csv"), test);
}

static void test_rl4rs_generated(void) {
  const char *dir = fresh_dir("rl4rs_gen");
  gen_rl4rs_write(dir);
  sim_dataset d;
  sim_provenance p;
  hsrl_status st = sim_reader_rl4rs_read(&d, &p, dir);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(sim_dataset_validate(&d, dir) == HSRL_OK);
  TEST_ASSERT(!strcmp(d.source_format, "rl4rs"));
  TEST_ASSERT(d.n_items == 5 && d.item_dim == 3 && d.slate_size == 3 && d.history_len == 50);
  TEST_ASSERT(d.n_records == 5 && d.n_users == 5 && d.user_dim == 2);
  const float items[6][3] = {{0, 0, 0}, {0.5f, -1, 2}, {1, 2, 3}, {0, 0, 0}, {-0.25f, 0.125f, 8}, {1e-3f, 2.5f, -3}};
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 3; j++) TEST_ASSERT(d.item_features[i * 3 + j] == items[i][j]);
  for (int i = 0; i <= 5; i++) TEST_ASSERT(d.item_raw_id[i] == i);
  const int32_t slates[5][3] = {{1, 2, 3}, {4, 5, 1}, {2, 3, 4}, {5, 4, 3}, {1, 2, 3}};
  const uint8_t clicks[5][3] = {{1, 0, 1}, {0, 0, 1}, {1, 1, 1}, {0, 1, 0}, {1, 1, 0}};
  const int64_t times[5] = {100, 101, 102, 200, 201}, sessions[5] = {1, 1, 2, 3, 3};
  const double portrait[5][2] = {{0, 1.5}, {3, 0.25}, {0, 0}, {2, 2}, {7, 0}};
  for (int r = 0; r < 5; r++) {
    TEST_ASSERT(d.rec_user[r] == r + 1 && d.rec_time[r] == times[r] && d.user_raw_id[r + 1] == sessions[r]);
    for (int k = 0; k < 3; k++)
      TEST_ASSERT(d.rec_slate[r * 3 + k] == slates[r][k] && d.rec_clicks[r * 3 + k] == clicks[r][k]);
    for (int j = 0; j < 2; j++)
      TEST_NEAR(d.user_features[(r + 1) * 2 + j], log(1.0 + portrait[r][j]), 1e-6);
  }
  TEST_ASSERT(d.user_features[0] == 0.0f && d.user_features[1] == 0.0f && d.user_raw_id[0] == 0);
  const int32_t *h = d.rec_history;
  for (int j = 0; j < 50; j++) {
    TEST_ASSERT(h[0 * 50 + j] == 0);                                  /* "0": empty */
    TEST_ASSERT(h[1 * 50 + j] == (j < 48 ? 0 : (j == 48 ? 1 : 3)));   /* "1,3" */
    TEST_ASSERT(h[2 * 50 + j] == 1 + (10 + j) % 5);                   /* the last 50 of 60 */
    TEST_ASSERT(h[3 * 50 + j] == 0);                                  /* empty field */
    TEST_ASSERT(h[4 * 50 + j] == (j < 48 ? 0 : (j == 48 ? 5 : 4)));
  }
  TEST_ASSERT(d.n_train == 3 && d.n_test == 2);
  for (int i = 0; i < 3; i++) TEST_ASSERT(d.train_idx[i] == i);
  for (int i = 0; i < 2; i++) TEST_ASSERT(d.test_idx[i] == 3 + i);
  TEST_ASSERT(p.n_sources == 3 && p.n_lines_read == 6 + 4 + 3 && p.n_dropped == 0);
  for (int i = 0; i < 3; i++) {
    int64_t size;
    uint64_t hh = file_fnv(p.source_path[i], &size);
    char hex[24];
    sim_text_checksum_hex(hh, hex);
    TEST_ASSERT(p.source_bytes[i] == size && !strcmp(p.source_checksum[i], hex));
  }
  sim_dataset_free(&d);
  remove_dir(dir);
}

static void test_rl4rs_shared_sample(void) {
  const char *dir = HSRL_SHARED_DATA "/rl4rs";
  if (!file_exists(dir)) TEST_SKIP("needs " HSRL_SHARED_DATA "/rl4rs (item_info.csv and the slate sample)");
  sim_dataset d;
  sim_provenance p;
  hsrl_status st = sim_reader_rl4rs_read(&d, &p, dir);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(d.slate_size == 9 && d.n_items == 283 && d.item_dim == 40);
  TEST_ASSERT(d.user_dim == 42 && d.n_train == 46 && d.n_test == 17 && d.n_records == 63 && d.n_users == 63);
  /* item_info.csv: item 1 starts -0.2137,-0.0489; item 283 starts -1.1033,-0.7579 */
  TEST_ASSERT(d.item_features[40 + 0] == -0.2137f && d.item_features[40 + 1] == -0.0489f);
  TEST_ASSERT(d.item_features[283 * 40 + 0] == -1.1033f && d.item_features[283 * 40 + 1] == -0.7579f);
  /* first train row: 530551@1@1@28,32,5,77,130,76,196,199,172@1,...@0@64054,2901,... */
  TEST_ASSERT(d.rec_time[0] == 530551 && d.user_raw_id[1] == 1);
  const int32_t s0[9] = {28, 32, 5, 77, 130, 76, 196, 199, 172};
  for (int k = 0; k < 9; k++) TEST_ASSERT(d.rec_slate[k] == s0[k] && d.rec_clicks[k] == 1);
  for (int j = 0; j < 50; j++) TEST_ASSERT(d.rec_history[j] == 0);
  TEST_NEAR(d.user_features[42 + 0], log(64055.0), 1e-5);
  TEST_NEAR(d.user_features[42 + 10], log(1.0 + 3.054), 1e-6);
  /* third train row: a history of 27 ids 28,32,...,199 */
  const int32_t *h2 = d.rec_history + 2 * 50;
  TEST_ASSERT(h2[22] == 0 && h2[23] == 28 && h2[24] == 32 && h2[49] == 199);
  int longest = 0;
  for (int64_t r = 0; r < d.n_records; r++) longest += d.rec_history[r * 50] != 0;
  TEST_ASSERT(longest > 0); /* some rows have more than 50 history ids (58, 59): kept the last 50 */
  TEST_ASSERT(sim_dataset_validate(&d, dir) == HSRL_OK);
  sim_dataset_free(&d);
}

/* ---- malformed input ------------------------------------------------------------------- */

typedef struct bad_case {
  const char *file; /* the file changed */
  int line;         /* the line replaced (1-based); 0: the file's whole content becomes text */
  const char *text; /* NULL with line 0: the file is removed */
  long want_line;   /* in the message: "<file>:<want_line>:"; 0: just the file */
  const char *want_field;
} bad_case;

/* Applies c to a fresh copy of a valid directory and runs the reader: must be an input error
 * naming the file, line and field. */
static int run_bad_case(const bad_case *c, const char *dir, int format) {
  const char *path = join(dir, c->file);
  if (c->line == 0 && !c->text) unlink(path);
  else if (c->line == 0) write_text(path, c->text);
  else replace_line(path, c->line, c->text);
  sim_dataset d;
  sim_provenance p;
  hsrl_status st = format == 2 ? sim_reader_rl4rs_read(&d, &p, dir)
                               : sim_reader_movielens_read(&d, &p, dir, (sim_reader_movielens_layout)format);
  int ok = error_names(st, c->file, c->want_line, c->want_field);
  if (!ok) printf("  case: %s line %d '%.60s'\n", c->file, c->line, c->text ? c->text : "(removed)");
  ok = ok && d.n_records == 0 && d.item_features == NULL; /* left empty */
  if (st == HSRL_OK) sim_dataset_free(&d);
  return ok;
}

/* A line of n bytes: prefix, then digits. */
static char *long_line(const char *prefix, size_t n) {
  char *s = hsrl_malloc(n + 1);
  size_t k = strlen(prefix);
  memcpy(s, prefix, k);
  for (size_t i = k; i < n; i++) s[i] = (char)('0' + i % 10);
  s[n] = '\0';
  return s;
}

static void test_ml100k_malformed(void) {
  char *ten_mb = long_line("196\t242\t3\t", (size_t)10 << 20);
  const bad_case cases[] = {
      {"u.data", 3, "1\t5", 3, "rating"},                 /* a short line */
      {"u.data", 3, "1\t5\tx\t881250949", 3, "rating"},  /* a non-number */
      {"u.data", 3, "1\t99\t3\t881250949", 3, "item id"}, /* an unknown item id */
      {"u.data", 3, "1\t5\t3\t881250949\t7", 3, "timestamp"}, /* a wrong field count */
      {"u.data", 3, "1\t5\t3\t", 3, "timestamp"},        /* an empty field */
      {"u.data", 3, "1\t5\t6\t881250949", 3, "rating"},  /* rating outside 1..5 */
      {"u.data", 5, "42\t5\t3\t881250949", 5, "user id"}, /* an unknown user id */
      {"u.data", 4, "", 4, "user id"},                   /* an empty line */
      {"u.data", 0, "", 1, "user id"},                   /* an empty file */
      {"u.user", 0, NULL, 0, NULL},                      /* a missing file */
      {"u.data", 2, ten_mb, 2, "timestamp"},             /* a 10 MB line */
      {"u.item", 4, "4|Movie 4 (1995)|01-Jan-1940||url|0|2|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 4, "Action"},
      {"u.item", 4, "4|Movie 4 (1995)|01-Jan-1940||url|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 4, "Western"},
      {"u.item", 1, "1|Movie 1 (1995)|1995||url|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", 1, "release date"},
      {"u.item", 1, "1|Movie 1 (2003)|01-Jan-2003||url|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", 1, "release date"},
      {"u.item", 3, "1|Again (1995)|01-Jan-1995||url|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", 3, "movie id"},
      {"u.user", 2, "2|53|F|astronaut|94043", 2, "occupation"},
      {"u.user", 2, "2|53|X|artist|94043", 2, "gender"},
      {"u.user", 2, "2|fifty|F|artist|94043", 2, "age"},
      {"u.occupation", 0, "", 1, "occupation"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *dir = fresh_dir("ml100k_bad");
    copy_fixture(dir, FIXTURE_ML100K, ml100k_files, 4);
    TEST_ASSERTF(run_bad_case(cases + i, dir, SIM_READER_MOVIELENS_100K), "ML-100K case %zu", i);
    if (cases[i].line == 0 && !cases[i].text) TEST_ASSERT(strstr(hsrl_err_message(), "cannot open") != NULL);
    if (cases[i].text == ten_mb) TEST_ASSERT(strstr(hsrl_err_message(), "longer than 1048576 bytes") != NULL);
    remove_dir(dir);
  }
  hsrl_free(ten_mb);
}

static void test_ml1m_malformed(void) {
  char *ten_mb = long_line("1::", (size_t)10 << 20);
  const bad_case cases[] = {
      {"ratings.dat", 2, "5::1", 2, "Rating"},
      {"ratings.dat", 2, "5::1::five::978300000", 2, "Rating"},
      {"ratings.dat", 2, "5::2::3::978300000", 2, "MovieID"}, /* raw 2 is not a movie id here */
      {"ratings.dat", 2, "5::1::3::978300000::1", 2, "Timestamp"},
      {"ratings.dat", 2, "5:1:3:978300000", 2, "MovieID"},
      {"ratings.dat", 0, "", 1, "UserID"},
      {"ratings.dat", 2, ten_mb, 2, "MovieID"},
      {"movies.dat", 2, "5::Movie without a year::Drama", 2, "Title"},
      {"movies.dat", 2, "5::Movie (1995) (extra)::Drama", 2, "Title"},
      {"movies.dat", 2, "5::Movie (1995)::Drama|Cartoon", 2, "Genres"},
      {"movies.dat", 2, "5::Movie (1995)::", 2, "Genres"},
      {"movies.dat", 0, NULL, 0, NULL},
      {"users.dat", 3, "9::M::17::3::55117", 3, "Age"},
      {"users.dat", 3, "9::M::18::21::55117", 3, "Occupation"},
      {"users.dat", 3, "5::M::18::1::55117", 3, "UserID"}, /* a repeated id */
  };
  gen_ml1m *g = hsrl_calloc(1, sizeof *g);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *dir = fresh_dir("ml1m_bad");
    gen_ml1m_write(g, dir, 7);
    hsrl_free(g->r);
    TEST_ASSERTF(run_bad_case(cases + i, dir, SIM_READER_MOVIELENS_1M), "ML-1M case %zu", i);
    remove_dir(dir);
  }
  hsrl_free(g);
  hsrl_free(ten_mb);
}

static void test_rl4rs_malformed(void) {
  char *ten_mb = long_line("xx", (size_t)10 << 20);
  char *too_long = long_line("100@1@1@1,2,3@1,0,1@0@", (size_t)17 << 20); /* over the 16 MiB bound */
  const bad_case cases[] = {
      {"rl4rs_b_train.csv", 3, "101@1@2@4,6,1@0,0,1@1,3@3,0.25@x@1", 3, "exposed_items"}, /* unknown id */
      {"rl4rs_b_train.csv", 3, "101@1@2@4,0,1@0,0,1@1,3@3,0.25@x@1", 3, "exposed_items"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,0,1@1,0@3,0.25@x@1", 3, "user_seqfeature"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,0,1@1,3@3,0.25@x@1@9", 3, "behavior_policy_id"},
      {"rl4rs_b_train.csv", 3, "101@1@2", 3, "exposed_items"}, /* a short line */
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,0,1@1,3@a,0.25@x@1", 3, "user_protrait"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,0,1@1,3@3@x@1", 3, "user_protrait"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,0,1@1,3@-1,0.25@x@1", 3, "user_protrait"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,1@1,3@3,0.25@x@1", 3, "user_feedback"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1@0,2,1@1,3@3,0.25@x@1", 3, "user_feedback"},
      {"rl4rs_b_train.csv", 3, "101@1@2@4,5,1,2@0,0,1,1@1,3@3,0.25@x@1", 3, "exposed_items"},
      {"rl4rs_b_train.csv", 3, "1.5e3@1@2@4,5,1@0,0,1@1,3@3,0.25@x@1", 3, "timestamp"},
      {"rl4rs_b_train.csv", 1, "timestamp@session@sequence_id@exposed_items@user_feedback@user_seqfeature@"
                               "user_protrait@item_feature@behavior_policy_id", 1, "session_id"},
      {"rl4rs_b_train.csv", 0, "", 1, "timestamp"},                    /* an empty file */
      {"rl4rs_b_test.csv", 2, "200@3@1@5,4,3,2@0,1,0,0@@2,2@@1", 2, "exposed_items"}, /* K differs */
      {"rl4rs_b_test.csv", 0, NULL, 0, NULL},                          /* a missing file */
      {"rl4rs_b_train.csv", 3, ten_mb, 3, "session_id"},               /* a 10 MB line */
      {"rl4rs_b_train.csv", 3, too_long, 3, "user_protrait"},          /* over the bound */
      {"item_info.csv", 0, NULL, 0, NULL},
      {"item_info.csv", 4, "4 0,0,0 1 2 0", 4, "item_id"},             /* ids 1, 2, 4 */
      {"item_info.csv", 4, "3 0,0 1 2 0", 4, "item_vec"},
      {"item_info.csv", 4, "3 0,0,zero 1 2 0", 4, "item_vec"},
      {"item_info.csv", 4, "3 0,0,0 1 2", 4, "special_item"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *dir = fresh_dir("rl4rs_bad");
    gen_rl4rs_write(dir);
    TEST_ASSERTF(run_bad_case(cases + i, dir, 2), "RL4RS case %zu", i);
    if (cases[i].text == too_long) TEST_ASSERT(strstr(hsrl_err_message(), "longer than") != NULL);
    remove_dir(dir);
  }
  hsrl_free(ten_mb);
  hsrl_free(too_long);
}

/* ---- the command ----------------------------------------------------------------------- */

static int run_cmd(int argc, const char **args) {
  char *argv[16];
  for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
  argv[argc] = NULL;
  return sim_data_command(argc, argv);
}

static void test_command_prepare(void) {
  hsrl_log_set_level(HSRL_LOG_WARN); /* no progress lines in the test log */
  const char *out_dir = fresh_dir("cmd_out");
  char out[600];
  snprintf(out, sizeof out, "%s/fixture.data.h5", out_dir);
  const char *ok_args[] = {"data", "prepare", "--format", "ml100k", "--input", FIXTURE_ML100K, "--out", out};
  TEST_ASSERT(run_cmd(8, ok_args) == 0);
  TEST_ASSERT(file_exists(out) && dir_count_entries(out_dir) == 1);
  sim_dataset a, b;
  sim_provenance p;
  TEST_ASSERT(sim_reader_movielens_read(&a, &p, FIXTURE_ML100K, SIM_READER_MOVIELENS_100K) == HSRL_OK);
  TEST_ASSERTF(sim_dataset_read(&b, out) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(a.n_records == b.n_records && a.n_items == b.n_items && a.n_users == b.n_users);
  TEST_ASSERT(!memcmp(a.rec_slate, b.rec_slate, (size_t)(a.n_records * a.slate_size) * sizeof(int32_t)));
  TEST_ASSERT(!memcmp(a.rec_history, b.rec_history, (size_t)(a.n_records * a.history_len) * sizeof(int32_t)));
  sim_dataset_free(&a);
  sim_dataset_free(&b);
  const char *info_args[] = {"data", "info", out};
  TEST_ASSERT(run_cmd(3, info_args) == 0);

  /* a malformed input: exit 2, nothing under --out, no temporary left */
  const char *bad_dir = fresh_dir("cmd_bad");
  copy_fixture(bad_dir, FIXTURE_ML100K, ml100k_files, 4);
  replace_line(join(bad_dir, "u.data"), 7, "1\t5\tfive\t881250949");
  snprintf(out, sizeof out, "%s/bad.data.h5", out_dir);
  const char *bad_args[] = {"data", "prepare", "--format=ml100k", "--input", bad_dir, "--out", out};
  TEST_ASSERT(run_cmd(7, bad_args) == 2);
  TEST_ASSERT(strstr(hsrl_err_message(), "u.data:7:") && strstr(hsrl_err_message(), "field 'rating'"));
  TEST_ASSERT(!file_exists(out) && dir_count_entries(out_dir) == 1);
  /* the same for the RL4RS reader */
  const char *rl_dir = fresh_dir("cmd_rl_bad");
  gen_rl4rs_write(rl_dir);
  replace_line(join(rl_dir, "rl4rs_b_test.csv"), 3, "201@3@2@1,2,9@1,1,0@5,4@7,0@@1");
  const char *rl_args[] = {"data", "prepare", "--format", "rl4rs", "--input", rl_dir, "--out", out};
  TEST_ASSERT(run_cmd(8, rl_args) == 2);
  TEST_ASSERT(!file_exists(out) && dir_count_entries(out_dir) == 1);
  /* a directory that cannot be written: a failure, nothing created */
  const char *nowhere_args[] = {"data", "prepare", "--format", "ml100k", "--input", FIXTURE_ML100K,
                                "--out", "/nonexistent-hsrl-dir/x.data.h5"};
  TEST_ASSERT(run_cmd(8, nowhere_args) != 0);
  TEST_ASSERT(!file_exists("/nonexistent-hsrl-dir"));
  /* usage */
  const char *help[] = {"data", "--help"}, *phelp[] = {"data", "prepare", "--help"};
  TEST_ASSERT(run_cmd(2, help) == 0 && run_cmd(3, phelp) == 0);
  const char *no_out[] = {"data", "prepare", "--format", "ml1m", "--input", FIXTURE_ML100K};
  const char *bad_fmt[] = {"data", "prepare", "--format", "ml20m", "--input", FIXTURE_ML100K, "--out", out};
  const char *unknown[] = {"data", "prepare", "--frmat", "ml1m"};
  const char *dangling[] = {"data", "prepare", "--input"};
  const char *nosub[] = {"data", "explode"};
  TEST_ASSERT(run_cmd(6, no_out) == 2 && run_cmd(8, bad_fmt) == 2 && run_cmd(4, unknown) == 2);
  TEST_ASSERT(run_cmd(3, dangling) == 2 && run_cmd(2, nosub) == 2 && run_cmd(1, nosub) == 2);
  TEST_ASSERT(!file_exists(out));
  /* `hsrl data synth` is forwarded to sim_synth_command; `data info` reads its file too */
  const char *synth_help[] = {"data", "synth", "--help"};
  TEST_ASSERT(run_cmd(3, synth_help) == 0);
  snprintf(out, sizeof out, "%s/synth.data.h5", out_dir);
  const char *synth[] = {"data", "synth", "--items", "60", "--users", "12", "--out", out, "--quiet"};
  TEST_ASSERTF(run_cmd(9, synth) == 0, "%s", hsrl_err_message());
  const char *synth_info[] = {"data", "info", out};
  TEST_ASSERT(run_cmd(3, synth_info) == 0);
  unlink(out);
  snprintf(out, sizeof out, "%s/bad.data.h5", out_dir);
  /* the wrong layout for a directory: a missing file, exit 2 */
  const char *wrong[] = {"data", "prepare", "--format", "ml1m", "--input", FIXTURE_ML100K, "--out", out};
  TEST_ASSERT(run_cmd(8, wrong) == 2 && strstr(hsrl_err_message(), "movies.dat"));
  remove_dir(bad_dir);
  remove_dir(rl_dir);
  remove_dir(out_dir);
  hsrl_log_set_level(HSRL_LOG_INFO);
}

int main(void) {
  TEST_RUN(test_text_lines_and_checksum);
  TEST_RUN(test_text_long_lines);
  TEST_RUN(test_text_split_and_parse);
  TEST_RUN(test_ml100k_fixture);
  TEST_RUN(test_ml1m_generated_matches_naive);
  TEST_RUN(test_ml1m_u2999_figures);
  TEST_RUN(test_rl4rs_generated);
  TEST_RUN(test_rl4rs_shared_sample);
  TEST_RUN(test_ml100k_malformed);
  TEST_RUN(test_ml1m_malformed);
  TEST_RUN(test_rl4rs_malformed);
  TEST_RUN(test_command_prepare);
  return test_summary();
}
