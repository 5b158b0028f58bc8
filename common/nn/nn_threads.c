/* nn_threads.c: OpenBLAS's thread count (see nn_threads.h). Kept apart from nn_gemm.c, the only
 * caller of cblas_sgemm, because this is process setup, not arithmetic. */
#include "common/nn/nn_threads.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>

#include "common/hsrl_check.h"

void nn_threads_set(int n) {
  HSRL_CHECKF(n >= 1, "OpenBLAS threads: %d < 1", n);
  openblas_set_num_threads(n);
}

int nn_threads_get(void) { return openblas_get_num_threads(); }

int nn_threads_configure(int64_t configured) {
  HSRL_CHECKF(configured >= 1, "run.blas_threads = %lld < 1", (long long)configured);
  const char *env = getenv("OPENBLAS_NUM_THREADS");
  if (env && env[0]) return nn_threads_get();
  nn_threads_set(configured > INT_MAX ? INT_MAX : (int)configured);
  return nn_threads_get();
}
