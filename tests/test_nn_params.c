/* test_nn_params.c: parameter tables (nn_params): layout and lookup, name rules (check failures
 * seen from a forked child), Adam over a table, and HDF5 checkpoints: bit-exact round trips, two
 * tables in one file, and clear errors that leave the table untouched. */
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_params.h"
#include "tests/test_harness.h"

/* A small model-like table: odd sizes so that padding occurs between most tensors. */
static nn_params *make_table(int64_t w_cols) {
  nn_params *p = nn_params_init(2); /* smaller than needed: the table must grow */
  nn_params_add2(p, "actor/enc/layer0/attn/w_in", 48, 16);
  nn_params_add1(p, "actor/enc/layer0/attn/b_in", 48);
  nn_params_add3(p, "actor/odd", 3, 5, 7);
  nn_params_add2(p, "critic/w", 4, w_cols);
  nn_params_add1(p, "critic/v", 17);
  nn_params_finalize(p);
  return p;
}

/* Fills every tensor of every buffer with values from the seed, leaving the padding zero. */
static void fill_table(nn_params *p, uint64_t seed) {
  float *bufs[4] = {nn_params_values(p), nn_params_grads(p), nn_params_adam_m(p),
                    nn_params_adam_v(p)};
  for (int b = 0; b < 4; b++)
    for (int64_t i = 0; i < nn_params_count(p); i++) {
      const nn_param_entry *e = nn_params_entry(p, i);
      test_fill_uniform(bufs[b] + e->offset, e->n, b == 3 ? 0.0f : -2.0f, 2.0f,
                        seed * 100 + (uint64_t)(b * 10 + i));
    }
}

/* A copy of all four buffers, for "untouched" checks. */
static float *snapshot(const nn_params *p) {
  int64_t n = nn_params_size(p);
  float *s = hsrl_malloc((size_t)(4 * n) * sizeof *s);
  memcpy(s, nn_params_values(p), (size_t)n * sizeof *s);
  memcpy(s + n, nn_params_grads(p), (size_t)n * sizeof *s);
  memcpy(s + 2 * n, nn_params_adam_m(p), (size_t)n * sizeof *s);
  memcpy(s + 3 * n, nn_params_adam_v(p), (size_t)n * sizeof *s);
  return s;
}

static int same_as_snapshot(const nn_params *p, const float *s) {
  size_t bytes = (size_t)nn_params_size(p) * sizeof(float);
  int64_t n = nn_params_size(p);
  return memcmp(s, nn_params_values(p), bytes) == 0 &&
         memcmp(s + n, nn_params_grads(p), bytes) == 0 &&
         memcmp(s + 2 * n, nn_params_adam_m(p), bytes) == 0 &&
         memcmp(s + 3 * n, nn_params_adam_v(p), bytes) == 0;
}

static const char *tmp_path(const char *name) {
  static char path[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", test_tmpdir(), name);
  return path[k];
}

/* ---------------------------------------------------------------------------------------------
 * layout */

static void test_add_finalize_lookup(void) {
  nn_params *p = make_table(3);
  TEST_ASSERT(nn_params_count(p) == 5);
  const int64_t want_n[5] = {48 * 16, 48, 3 * 5 * 7, 4 * 3, 17};
  int64_t sum = 0, end = 0;
  for (int64_t i = 0; i < 5; i++) {
    const nn_param_entry *e = nn_params_entry(p, i);
    TEST_ASSERTF(e->n == want_n[i], "entry %lld: n %lld", (long long)i, (long long)e->n);
    TEST_ASSERTF(e->offset % NN_PARAMS_ALIGN == 0, "offset %lld", (long long)e->offset);
    TEST_ASSERTF(e->offset >= end, "entry %lld overlaps the one before", (long long)i);
    end = e->offset + e->n;
    sum += e->n;
    TEST_ASSERT(nn_params_find(p, e->name) == e);
    float *bufs[4] = {nn_params_values(p), nn_params_grads(p), nn_params_adam_m(p),
                      nn_params_adam_v(p)};
    for (int b = 0; b < 4; b++) TEST_ASSERT((uintptr_t)(bufs[b] + e->offset) % 64 == 0);
  }
  TEST_ASSERT(nn_params_n_elements(p) == sum);
  TEST_ASSERT(nn_params_size(p) >= end && nn_params_size(p) % NN_PARAMS_ALIGN == 0);
  TEST_ASSERT(nn_params_size(p) < end + NN_PARAMS_ALIGN);

  const nn_param_entry *e = nn_params_find(p, "actor/odd");
  TEST_ASSERT(e != NULL && e->ndim == 3 && e->dims[0] == 3 && e->dims[1] == 5 && e->dims[2] == 7);
  TEST_ASSERT(e->dims[3] == 0);
  TEST_ASSERT(nn_params_find(p, "actor") == NULL); /* a group, not a tensor */
  TEST_ASSERT(nn_params_find(p, "actor/odd/x") == NULL);
  TEST_ASSERT(nn_params_find(p, "critic/W") == NULL); /* names are case-sensitive */
  int64_t off_v = nn_params_find(p, "critic/v")->offset;
  TEST_ASSERT(nn_params_value_of(p, "critic/v") == nn_params_values(p) + off_v);
  TEST_ASSERT(nn_params_grad_of(p, "critic/v") == nn_params_grads(p) + off_v);

  /* zeroed; then each tensor gets its own value and reads it back everywhere (no overlap) */
  float *val = nn_params_values(p);
  for (int64_t j = 0; j < nn_params_size(p); j++) TEST_ASSERT(val[j] == 0.0f);
  for (int64_t i = 0; i < 5; i++) {
    e = nn_params_entry(p, i);
    for (int64_t j = 0; j < e->n; j++) val[e->offset + j] = (float)(i + 1);
  }
  int64_t n_nonzero = 0;
  for (int64_t j = 0; j < nn_params_size(p); j++) n_nonzero += val[j] != 0.0f;
  TEST_ASSERT(n_nonzero == sum);
  for (int64_t i = 0; i < 5; i++) {
    e = nn_params_entry(p, i);
    for (int64_t j = 0; j < e->n; j++) TEST_ASSERT(val[e->offset + j] == (float)(i + 1));
  }
  nn_params_free(p);
  nn_params_free(NULL);
}

static void test_same_layout(void) {
  nn_params *a = make_table(3), *b = make_table(3), *c = make_table(4);
  nn_params *d = nn_params_init(4);
  nn_params_add2(d, "actor/enc/layer0/attn/w_in", 48, 16);
  nn_params_finalize(d);
  TEST_ASSERT(nn_params_same_layout(a, b));
  TEST_ASSERT(!nn_params_same_layout(a, c));
  TEST_ASSERT(!nn_params_same_layout(a, d));
  nn_params_free(a), nn_params_free(b), nn_params_free(c), nn_params_free(d);
}

/* A 127-character name is the longest allowed. */
static void test_long_name_and_empty_table(void) {
  char name[NN_PARAMS_NAME_MAX];
  memset(name, 'x', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  name[20] = '/';
  nn_params *p = nn_params_init(0);
  int64_t off = nn_params_add1(p, name, 3);
  TEST_ASSERT(off == 0);
  nn_params_finalize(p);
  TEST_ASSERT(nn_params_find(p, name) != NULL);
  nn_params_free(p);
  nn_params *q = nn_params_init(0);
  nn_params_finalize(q);
  TEST_ASSERT(nn_params_count(q) == 0 && nn_params_size(q) == 0);
  nn_params_free(q);
}

/* A bad name or shape is a bug: the check fires (abort). Run each case in a child process. */
typedef enum bad_case {
  BAD_EMPTY, BAD_LEADING, BAD_TRAILING, BAD_DOUBLE, BAD_DOT, BAD_DOTDOT, BAD_OPTIM, BAD_GRAD,
  BAD_SPACE, BAD_TOO_LONG, BAD_DUPLICATE, BAD_AFTER_FINALIZE, BAD_NDIM0, BAD_NDIM9, BAD_NEG_DIM,
  BAD_UNKNOWN_LOOKUP, BAD_N_CASES
} bad_case;

static void bad_case_run(bad_case c) {
  nn_params *p = nn_params_init(4);
  int64_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  char long_name[NN_PARAMS_NAME_MAX + 1];
  memset(long_name, 'y', NN_PARAMS_NAME_MAX);
  long_name[NN_PARAMS_NAME_MAX] = '\0';
  nn_params_add1(p, "ok/first", 2);
  switch (c) {
    case BAD_EMPTY: nn_params_add1(p, "", 1); break;
    case BAD_LEADING: nn_params_add1(p, "/a", 1); break;
    case BAD_TRAILING: nn_params_add1(p, "a/", 1); break;
    case BAD_DOUBLE: nn_params_add1(p, "a//b", 1); break;
    case BAD_DOT: nn_params_add1(p, "a/./b", 1); break;
    case BAD_DOTDOT: nn_params_add1(p, "a/..", 1); break;
    case BAD_OPTIM: nn_params_add1(p, "optim/m/a", 1); break;
    case BAD_GRAD: nn_params_add1(p, "grad/a", 1); break;
    case BAD_SPACE: nn_params_add1(p, "a b", 1); break;
    case BAD_TOO_LONG: nn_params_add1(p, long_name, 1); break;
    case BAD_DUPLICATE: nn_params_add1(p, "ok/first", 2); break;
    case BAD_AFTER_FINALIZE: nn_params_finalize(p); nn_params_add1(p, "ok/second", 1); break;
    case BAD_NDIM0: nn_params_add(p, "a", 0, dims); break;
    case BAD_NDIM9: nn_params_add(p, "a", 9, dims); break;
    case BAD_NEG_DIM: nn_params_add2(p, "a", 3, -1); break;
    case BAD_UNKNOWN_LOOKUP: nn_params_finalize(p); (void)nn_params_value_of(p, "ok/none"); break;
    case BAD_N_CASES: break;
  }
  nn_params_free(p);
}

static void test_bad_names_and_shapes_are_bugs(void) {
  for (int c = 0; c <= BAD_N_CASES; c++) {
    fflush(NULL);
    pid_t pid = fork();
    TEST_ASSERT(pid >= 0);
    if (pid == 0) {
      if (!freopen("/dev/null", "w", stderr)) _exit(3);
      bad_case_run((bad_case)c);
      _exit(0);
    }
    int status = 0;
    TEST_ASSERT(waitpid(pid, &status, 0) == pid);
    int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    if (c == BAD_N_CASES) /* the control case, only valid calls: must survive */
      TEST_ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "control case: status %d",
                   status);
    else
      TEST_ASSERTF(aborted, "bad case %d was accepted (status %d)", c, status);
  }
}

static void test_adam_update_and_zero_grads(void) {
  nn_params *p = make_table(3);
  fill_table(p, 1);
  float *before = snapshot(p);
  nn_adam_config cfg = nn_adam_defaults(0.01f);
  TEST_ASSERT(nn_params_adam_step(p) == 0);
  nn_params_adam_update(p, &cfg);
  nn_params_adam_update(p, &cfg);
  TEST_ASSERT(nn_params_adam_step(p) == 2);
  /* the same two steps by hand on a copy give the same numbers, padding included */
  int64_t n = nn_params_size(p);
  float *v0 = before, *g0 = before + n, *m0 = before + 2 * n, *s0 = before + 3 * n;
  nn_adam_step(v0, g0, m0, s0, n, 1, &cfg);
  nn_adam_step(v0, g0, m0, s0, n, 2, &cfg);
  TEST_ASSERT(same_as_snapshot(p, before));
  for (int64_t i = 0; i < nn_params_count(p); i++) {
    const nn_param_entry *e = nn_params_entry(p, i);
    int64_t pad_end = i + 1 < nn_params_count(p) ? nn_params_entry(p, i + 1)->offset : n;
    for (int64_t j = e->offset + e->n; j < pad_end; j++)
      TEST_ASSERT(nn_params_values(p)[j] == 0.0f);
  }
  nn_params_zero_grads(p);
  for (int64_t j = 0; j < n; j++) TEST_ASSERT(nn_params_grads(p)[j] == 0.0f);
  hsrl_free(before);
  nn_params_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * checkpoints */

static void test_save_load_round_trip_bit_exact(void) {
  nn_params *a = make_table(3);
  fill_table(a, 2);
  nn_adam_config cfg = nn_adam_defaults(0.001f);
  for (int t = 0; t < 3; t++) nn_params_adam_update(a, &cfg);
  /* values whose bits a sloppy copy would change */
  float *w = nn_params_value_of(a, "critic/v");
  w[0] = -0.0f, w[1] = FLT_MIN / 8.0f, w[2] = FLT_MAX, w[3] = -FLT_MAX, w[4] = NAN, w[5] = INFINITY;
  const char *path = tmp_path("roundtrip.h5");
  hsrl_status st = nn_params_save(a, path, NN_PARAMS_OPTIM | NN_PARAMS_GRADS);
  TEST_ASSERTF(st == HSRL_OK, "save: %s", hsrl_err_message());

  nn_params *b = make_table(3);
  st = nn_params_load(b, path, NN_PARAMS_OPTIM | NN_PARAMS_GRADS);
  TEST_ASSERTF(st == HSRL_OK, "load: %s", hsrl_err_message());
  float *snap = snapshot(a);
  TEST_ASSERT(same_as_snapshot(b, snap));
  TEST_ASSERT(nn_params_adam_step(b) == 3);

  /* values only: the moments, gradients and step of the destination stay as they were */
  nn_params *c = make_table(3);
  st = nn_params_load(c, path, 0);
  TEST_ASSERTF(st == HSRL_OK, "load: %s", hsrl_err_message());
  int64_t n = nn_params_size(c);
  TEST_ASSERT(memcmp(nn_params_values(c), nn_params_values(a), (size_t)n * sizeof(float)) == 0);
  for (int64_t j = 0; j < n; j++)
    TEST_ASSERT(nn_params_adam_m(c)[j] == 0.0f && nn_params_adam_v(c)[j] == 0.0f &&
                nn_params_grads(c)[j] == 0.0f);
  TEST_ASSERT(nn_params_adam_step(c) == 0);

  /* the commit left no temporary behind; a second save replaces the file */
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  TEST_ASSERT(access(tmp, F_OK) != 0);
  w[6] = 42.0f;
  TEST_ASSERT(nn_params_save(a, path, 0) == HSRL_OK);
  TEST_ASSERT(nn_params_load(c, path, 0) == HSRL_OK);
  TEST_ASSERT(nn_params_value_of(c, "critic/v")[6] == 42.0f);
  hsrl_free(snap);
  nn_params_free(a), nn_params_free(b), nn_params_free(c);
}

/* Two tables in one file (the learner's actor and critic), each with its own step. */
static void test_two_tables_one_file(void) {
  nn_params *actor = nn_params_init(2), *critic = nn_params_init(2);
  nn_params_add2(actor, "actor/w", 5, 3);
  nn_params_add2(critic, "critic/w", 2, 7);
  nn_params_finalize(actor), nn_params_finalize(critic);
  fill_table(actor, 3), fill_table(critic, 4);
  nn_adam_config cfg = nn_adam_defaults(0.01f);
  nn_params_adam_update(actor, &cfg);
  for (int t = 0; t < 4; t++) nn_params_adam_update(critic, &cfg);

  const char *path = tmp_path("two.h5");
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(nn_params_write(actor, f, NN_PARAMS_OPTIM) == HSRL_OK);
  TEST_ASSERT(nn_params_write(critic, f, NN_PARAMS_OPTIM) == HSRL_OK);
  TEST_ASSERTF(io_h5_commit(f) == HSRL_OK, "%s", hsrl_err_message());

  nn_params *a2 = nn_params_init(2), *c2 = nn_params_init(2);
  nn_params_add2(a2, "actor/w", 5, 3);
  nn_params_add2(c2, "critic/w", 2, 7);
  nn_params_finalize(a2), nn_params_finalize(c2);
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  hsrl_status st1 = nn_params_read(a2, f, NULL, NN_PARAMS_OPTIM);
  hsrl_status st2 = nn_params_read(c2, f, "label.h5", NN_PARAMS_OPTIM);
  /* a table the file does not hold; the caller's label names the file */
  nn_params *x = nn_params_init(1);
  nn_params_add1(x, "critic/extra", 2);
  nn_params_finalize(x);
  hsrl_status st3 = nn_params_read(x, f, "label.h5", 0);
  nn_params_free(x);
  io_h5_close(f);
  TEST_ASSERT(st3 == HSRL_E_INPUT);
  TEST_ASSERTF(strcmp(hsrl_err_message(), "label.h5: tensor 'critic/extra' is missing") == 0, "%s",
               hsrl_err_message());
  TEST_ASSERTF(st1 == HSRL_OK && st2 == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(nn_params_adam_step(a2) == 1 && nn_params_adam_step(c2) == 4);
  size_t bytes = (size_t)nn_params_size(actor) * sizeof(float);
  TEST_ASSERT(memcmp(nn_params_values(a2), nn_params_values(actor), bytes) == 0);
  TEST_ASSERT(memcmp(nn_params_adam_v(a2), nn_params_adam_v(actor), bytes) == 0);
  bytes = (size_t)nn_params_size(critic) * sizeof(float);
  TEST_ASSERT(memcmp(nn_params_adam_m(c2), nn_params_adam_m(critic), bytes) == 0);
  nn_params_free(actor), nn_params_free(critic), nn_params_free(a2), nn_params_free(c2);
}

/* Loads `path` into a fresh make_table(3) filled with a pattern; expects failure with `code`
 * and every substring of `want`, and the table unchanged. */
static void expect_load_error(const char *path, int flags, hsrl_status code,
                              const char *const *want, int n_want) {
  nn_params *p = make_table(3);
  fill_table(p, 9);
  float *snap = snapshot(p);
  int64_t step = nn_params_adam_step(p);
  hsrl_err_clear();
  hsrl_status st = nn_params_load(p, path, flags);
  const char *msg = hsrl_err_message();
  TEST_ASSERTF(st == code, "status %s, want %s (%s)", hsrl_status_name(st), hsrl_status_name(code),
               msg);
  for (int i = 0; i < n_want; i++)
    TEST_ASSERTF(strstr(msg, want[i]) != NULL, "message '%s' lacks '%s'", msg, want[i]);
  TEST_ASSERT(same_as_snapshot(p, snap));
  TEST_ASSERT(nn_params_adam_step(p) == step);
  hsrl_free(snap);
  nn_params_free(p);
}

static void test_load_missing_tensor(void) {
  nn_params *q = nn_params_init(4); /* make_table(3) without critic/v */
  nn_params_add2(q, "actor/enc/layer0/attn/w_in", 48, 16);
  nn_params_add1(q, "actor/enc/layer0/attn/b_in", 48);
  nn_params_add3(q, "actor/odd", 3, 5, 7);
  nn_params_add2(q, "critic/w", 4, 3);
  nn_params_finalize(q);
  fill_table(q, 5);
  const char *path = tmp_path("missing.h5");
  TEST_ASSERT(nn_params_save(q, path, 0) == HSRL_OK);
  const char *want[] = {path, "tensor 'critic/v' is missing"};
  expect_load_error(path, 0, HSRL_E_INPUT, want, 2);
  /* the moments were not saved: asking for them names the first missing one */
  const char *want_m[] = {path, "tensor 'optim/m/actor/enc/layer0/attn/w_in' is missing"};
  nn_params *full = make_table(3);
  TEST_ASSERT(nn_params_save(full, path, 0) == HSRL_OK);
  expect_load_error(path, NN_PARAMS_OPTIM, HSRL_E_INPUT, want_m, 2);
  const char *want_g[] = {path, "tensor 'grad/actor/enc/layer0/attn/w_in' is missing"};
  expect_load_error(path, NN_PARAMS_GRADS, HSRL_E_INPUT, want_g, 2);
  nn_params_free(q), nn_params_free(full);
}

static void test_load_wrong_shape(void) {
  nn_params *q = make_table(4); /* critic/w is (4,4) in the file, (4,3) in the table */
  fill_table(q, 6);
  const char *path = tmp_path("shape.h5");
  TEST_ASSERT(nn_params_save(q, path, 0) == HSRL_OK);
  const char *want[] = {path, "tensor 'critic/w' has shape (4,4), expected (4,3)"};
  expect_load_error(path, 0, HSRL_E_INPUT, want, 2);
  nn_params_free(q);

  nn_params *r = nn_params_init(4); /* same element count, other rank */
  nn_params_add2(r, "actor/enc/layer0/attn/w_in", 48, 16);
  nn_params_add1(r, "actor/enc/layer0/attn/b_in", 48);
  nn_params_add1(r, "actor/odd", 105);
  nn_params_finalize(r);
  TEST_ASSERT(nn_params_save(r, path, 0) == HSRL_OK);
  const char *want_r[] = {"tensor 'actor/odd' has shape (105), expected (3,5,7)"};
  expect_load_error(path, 0, HSRL_E_INPUT, want_r, 1);
  nn_params_free(r);
}

/* A failure while reading data (after every shape matched) must not leave a half-loaded table:
 * the last tensor is stored as int32, which io_h5 refuses to read as float. */
static void test_load_failure_midway_leaves_table_untouched(void) {
  nn_params *q = make_table(3);
  fill_table(q, 7);
  const char *path = tmp_path("midway.h5");
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_stamp(f, NN_PARAMS_KIND, NN_PARAMS_VERSION, 0) == HSRL_OK);
  for (int64_t i = 0; i + 1 < nn_params_count(q); i++) {
    const nn_param_entry *e = nn_params_entry(q, i);
    const float *x = nn_params_values(q) + e->offset;
    TEST_ASSERT(io_h5_write_f32(f, e->name, x, e->ndim, e->dims, 0) == HSRL_OK);
  }
  int32_t ints[17] = {0};
  int64_t dims[1] = {17};
  TEST_ASSERT(io_h5_write_i32(f, "critic/v", ints, 1, dims, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  const char *want[] = {path, "critic/v"};
  expect_load_error(path, 0, HSRL_E_INPUT, want, 2);
  nn_params_free(q);
}

static void test_load_bad_files(void) {
  const char *want_none[] = {"nothere.h5"};
  expect_load_error(tmp_path("nothere.h5"), 0, HSRL_E_INPUT, want_none, 1);

  const char *path = tmp_path("text.h5");
  FILE *fp = fopen(path, "w");
  TEST_ASSERT(fp != NULL);
  fputs("this is not an HDF5 file\n", fp);
  fclose(fp);
  const char *want_text[] = {path};
  expect_load_error(path, 0, HSRL_E_INPUT, want_text, 1);

  /* an HDF5 file of another kind */
  const char *other = tmp_path("other.h5");
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, other) == HSRL_OK);
  TEST_ASSERT(io_h5_stamp(f, "replay-shard", 1, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  const char *want_other[] = {other};
  expect_load_error(other, 0, HSRL_E_INPUT, want_other, 1);

  /* a truncated checkpoint */
  nn_params *q = make_table(3);
  fill_table(q, 8);
  const char *good = tmp_path("trunc.h5");
  TEST_ASSERT(nn_params_save(q, good, NN_PARAMS_OPTIM) == HSRL_OK);
  fp = fopen(good, "r+b");
  TEST_ASSERT(fp != NULL);
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fclose(fp);
  TEST_ASSERT(size > 1000 && truncate(good, size / 2) == 0);
  nn_params *p = make_table(3);
  fill_table(p, 9);
  float *snap = snapshot(p);
  hsrl_status st = nn_params_load(p, good, NN_PARAMS_OPTIM);
  TEST_ASSERT(st != HSRL_OK);
  TEST_ASSERTF(strstr(hsrl_err_message(), good) != NULL, "message '%s'", hsrl_err_message());
  TEST_ASSERT(same_as_snapshot(p, snap));
  hsrl_free(snap);
  nn_params_free(p), nn_params_free(q);
}

/* A damaged checkpoint either fails to load with a message naming the file or loads exactly the
 * saved numbers: never silently different ones. Flips one byte at a time across the whole file.
 * Runs in a child that leaves by _exit: libhdf5 (1.10) leaks internal metadata-cache entries
 * when it rejects a damaged object header, and LeakSanitizer would report them at exit. Returns
 * 0 on success, else 1 (wrong numbers loaded), 2 (nothing rejected), 3 (message lacks the path),
 * 4 (set-up failed). */
static int damaged_loads_child(void) {
  nn_params *q = make_table(3);
  fill_table(q, 10);
  const char *path = tmp_path("damaged.h5"), *copy = tmp_path("damaged-copy.h5");
  if (nn_params_save(q, path, NN_PARAMS_OPTIM) != HSRL_OK) return 4;
  FILE *fp = fopen(path, "rb");
  if (!fp) return 4;
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *bytes = hsrl_malloc((size_t)size);
  size_t n_read = fread(bytes, 1, (size_t)size, fp);
  fclose(fp);
  if (n_read != (size_t)size) return 4;
  float *want = snapshot(q);
  nn_params *p = make_table(3);
  int64_t n = nn_params_size(p);
  size_t nb = (size_t)n * sizeof(float);
  int n_failed = 0;
  for (long pos = 0; pos < size; pos += 61) {
    bytes[pos] ^= 0x5a;
    fp = fopen(copy, "wb");
    if (!fp || fwrite(bytes, 1, (size_t)size, fp) != (size_t)size) return 4;
    fclose(fp);
    bytes[pos] ^= 0x5a;
    fill_table(p, 11);
    if (nn_params_load(p, copy, NN_PARAMS_OPTIM) != HSRL_OK) {
      n_failed++;
      if (!strstr(hsrl_err_message(), copy)) {
        fprintf(stderr, "byte %ld: message '%s'\n", pos, hsrl_err_message());
        return 3;
      }
    } else if (memcmp(nn_params_values(p), want, nb) != 0 ||
               memcmp(nn_params_adam_m(p), want + 2 * n, nb) != 0 ||
               memcmp(nn_params_adam_v(p), want + 3 * n, nb) != 0) {
      fprintf(stderr, "byte %ld of %ld flipped: loaded with different numbers\n", pos, size);
      return 1;
    }
  }
  return n_failed > 0 ? 0 : 2;
}

static void test_damaged_file_never_loads_wrong_numbers(void) {
  (void)test_tmpdir(); /* made here, so that the child writes where the parent cleans up */
  fflush(NULL);
  pid_t pid = fork();
  TEST_ASSERT(pid >= 0);
  if (pid == 0) _exit(damaged_loads_child());
  int status = 0;
  TEST_ASSERT(waitpid(pid, &status, 0) == pid);
  TEST_ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "child: %s %d (1 wrong numbers, 2 nothing rejected, 3 message, 4 set-up)",
               WIFEXITED(status) ? "exit" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int main(void) {
  TEST_RUN(test_add_finalize_lookup);
  TEST_RUN(test_same_layout);
  TEST_RUN(test_long_name_and_empty_table);
  TEST_RUN(test_bad_names_and_shapes_are_bugs);
  TEST_RUN(test_adam_update_and_zero_grads);
  TEST_RUN(test_save_load_round_trip_bit_exact);
  TEST_RUN(test_two_tables_one_file);
  TEST_RUN(test_load_missing_tensor);
  TEST_RUN(test_load_wrong_shape);
  TEST_RUN(test_load_failure_midway_leaves_table_untouched);
  TEST_RUN(test_load_bad_files);
  TEST_RUN(test_damaged_file_never_loads_wrong_numbers);
  return test_summary();
}
