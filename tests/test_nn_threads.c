/* test_nn_threads.c: OpenBLAS's thread count (common/nn/nn_threads.h): nn_threads_set/get, and
 * nn_threads_configure applying run.blas_threads unless OPENBLAS_NUM_THREADS is set (an empty
 * variable counts as unset). With a sequential OpenBLAS (always one thread) the checks that need
 * two threads are skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/nn/nn_threads.h"
#include "tests/test_harness.h"

static char g_saved[64];
static int g_had;

static void env_save(void) {
  const char *v = getenv("OPENBLAS_NUM_THREADS");
  g_had = v != NULL;
  if (v) snprintf(g_saved, sizeof g_saved, "%s", v);
}

static void env_restore(void) {
  if (g_had)
    setenv("OPENBLAS_NUM_THREADS", g_saved, 1);
  else
    unsetenv("OPENBLAS_NUM_THREADS");
  nn_threads_set(1);
}

static void test_set_get(void) {
  nn_threads_set(1);
  TEST_ASSERT(nn_threads_get() == 1);
  nn_threads_set(2);
  if (nn_threads_get() != 2) {
    nn_threads_set(1);
    TEST_SKIP("OpenBLAS runs one thread whatever is asked (a sequential build)");
  }
  nn_threads_set(1);
  TEST_ASSERT(nn_threads_get() == 1);
}

static void test_configure(void) {
  nn_threads_set(2);
  int threaded = nn_threads_get() == 2;
  nn_threads_set(1);
  if (!threaded) TEST_SKIP("a sequential OpenBLAS");
  /* unset: the config's value */
  unsetenv("OPENBLAS_NUM_THREADS");
  TEST_ASSERT(nn_threads_configure(2) == 2 && nn_threads_get() == 2);
  TEST_ASSERT(nn_threads_configure(1) == 1 && nn_threads_get() == 1);
  /* set: the environment wins and the count is left as it is */
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  TEST_ASSERT(nn_threads_configure(2) == 1 && nn_threads_get() == 1);
  /* set but empty: as unset */
  setenv("OPENBLAS_NUM_THREADS", "", 1);
  TEST_ASSERT(nn_threads_configure(2) == 2 && nn_threads_get() == 2);
  env_restore();
}

int main(void) {
  env_save();
  TEST_RUN(test_set_get);
  TEST_RUN(test_configure);
  env_restore();
  return test_summary();
}
