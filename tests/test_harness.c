/* test_harness.c: see test_harness.h. */
#include "tests/test_harness.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_rng.h"

static const char *current_name;
static int current_failed, current_skipped;
static int n_passed, n_failed, n_skipped;

void test_begin(const char *name) {
  current_name = name;
  current_failed = 0;
  current_skipped = 0;
}

void test_end(void) {
  if (current_failed) n_failed++;
  else if (current_skipped) n_skipped++;
  else {
    n_passed++;
    printf("ok   %s\n", current_name);
  }
  fflush(stdout);
}

void test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  printf("FAIL %s (%s:%d): ", current_name, file, line);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  current_failed = 1;
}

void test_skip(const char *reason) {
  printf("skip %s: %s\n", current_name, reason);
  current_skipped = 1;
}

int test_failed_now(void) { return current_failed; }

int test_summary(void) {
  printf("%d passed, %d failed, %d skipped\n", n_passed, n_failed, n_skipped);
  return n_failed ? 1 : 0;
}

static char tmp_dir[256];
static pid_t tmp_owner;

/* Removes path and, for a directory, everything under it (symbolic links are removed, not
 * followed). Returns 0, or -1 if something could not be removed. */
static int remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return -1;
  int rc = 0;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char child[1024];
      if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) {
        rc = -1;
        continue;
      }
      if (remove_tree(child) != 0) rc = -1;
    }
    closedir(d);
  }
  if (remove(path) != 0) rc = -1;
  return rc;
}

/* At exit of the process that made it: the directory goes unless a test failed (kept for a
 * look, and said so) or HSRL_TEST_KEEP_TMP is set. Forked children that call exit() leave it. */
static void tmpdir_cleanup(void) {
  if (!tmp_dir[0] || getpid() != tmp_owner) return;
  const char *keep = getenv("HSRL_TEST_KEEP_TMP");
  if (n_failed > 0 || (keep && keep[0] && strcmp(keep, "0") != 0)) {
    printf("kept the test files in %s\n", tmp_dir);
    return;
  }
  if (remove_tree(tmp_dir) != 0) fprintf(stderr, "could not remove all of %s\n", tmp_dir);
}

const char *test_tmpdir(void) {
  if (!tmp_dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/hsrl-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmp_dir)) {
      perror("mkdtemp");
      exit(1);
    }
    tmp_owner = getpid();
    atexit(tmpdir_cleanup);
  }
  return tmp_dir;
}

double test_max_scaled_diff(const float *a, const float *b, int64_t n, double atol, double rtol) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
    if (isnan(d)) return NAN; /* a NaN anywhere is a failure, whatever follows it */
    if (d > worst) worst = d;
  }
  return worst;
}

void test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * hsrl_rng_uniform(&r);
}
