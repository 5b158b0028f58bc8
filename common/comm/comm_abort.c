/* comm_abort.c: see comm_abort.h. */
#include "common/comm/comm_abort.h"

#include <mpi.h>
#include <stdlib.h>

#include "common/hsrl_check.h"

static void abort_job(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  abort();
}

void comm_abort_install(void) { hsrl_check_set_abort_hook(abort_job); }
