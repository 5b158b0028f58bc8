/* nn_threads.h: how many threads OpenBLAS runs (architecture.md "Numerical core": OpenBLAS one
 * thread per rank unless configured; the [run] blas_threads key of the config).
 *
 * OpenBLAS's thread count is process-wide state of the library, read from OPENBLAS_NUM_THREADS
 * (or, by OpenBLAS, GOTO_NUM_THREADS / OMP_NUM_THREADS) when it loads; these functions change it
 * afterwards. The commands call nn_threads_configure(run.blas_threads) right after loading the
 * effective config, before any matrix product. A single-threaded (sequential) OpenBLAS build
 * ignores the setting and always runs one thread. */
#ifndef NN_THREADS_H
#define NN_THREADS_H

#include <stdint.h>

/* Makes OpenBLAS run n threads (n >= 1; values above OpenBLAS's compiled maximum are capped by
 * OpenBLAS). Not thread-safe: call it while no matrix product runs. */
void nn_threads_set(int n);

/* The number of threads OpenBLAS runs now. */
int nn_threads_get(void);

/* Applies the config's run.blas_threads: OpenBLAS runs `configured` threads, unless the
 * environment variable OPENBLAS_NUM_THREADS is set (non-empty), which then wins and is left as
 * OpenBLAS read it. Returns the number of threads in effect. `configured` < 1 is a bug (checked). */
int nn_threads_configure(int64_t configured);

#endif
