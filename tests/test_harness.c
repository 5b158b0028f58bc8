/* test_harness.c: see test_harness.h. */
#include "tests/test_harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

const char *test_tmpdir(void) {
  static char dir[256];
  if (!dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/hsrl-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      exit(1);
    }
  }
  return dir;
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
