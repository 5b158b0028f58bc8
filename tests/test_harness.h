/* test_harness.h: a small test runner.
 *
 *   static void test_something(void) { TEST_ASSERT(x == 1); TEST_NEAR(a, b, 1e-6); }
 *   int main(void) { TEST_RUN(test_something); return test_summary(); }
 *
 * A failed assertion prints file:line and the values, marks the current test failed and returns
 * from it. test_summary() prints "N passed, M failed" (and skipped) and returns the exit status.
 * TEST_SKIP(reason) ends a test as skipped, for tests needing data that is not present. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

#include <stdint.h>

void test_begin(const char *name);
void test_end(void);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *reason);
int test_failed_now(void);
int test_summary(void);

/* A fresh temporary directory for this test executable ($TMPDIR or /tmp, hsrl-test-XXXXXX),
 * removed with everything in it when the process that made it exits normally, unless a test
 * failed or HSRL_TEST_KEEP_TMP is set (then its path is printed). */
const char *test_tmpdir(void);

#define TEST_RUN(fn) do { test_begin(#fn); fn(); test_end(); } while (0)
#define TEST_ASSERT(cond) \
  do { if (!(cond)) { test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); return; } } while (0)
#define TEST_ASSERTF(cond, ...) \
  do { if (!(cond)) { test_fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define TEST_NEAR(a, b, tol)                                                                    \
  do {                                                                                          \
    double test_a_ = (double)(a), test_b_ = (double)(b);                                        \
    if (!(test_a_ - test_b_ <= (tol) && test_b_ - test_a_ <= (tol))) {                          \
      test_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, differ by more than %g", #a, test_a_, \
                #b, test_b_, (double)(tol));                                                    \
      return;                                                                                   \
    }                                                                                           \
  } while (0)
#define TEST_SKIP(reason) do { test_skip(reason); return; } while (0)

/* Max over i of |a_i - b_i| / (atol + rtol |b_i|); <= 1 means "close". */
double test_max_scaled_diff(const float *a, const float *b, int64_t n, double atol, double rtol);
void test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

#endif
