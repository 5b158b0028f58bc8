/* test_comm_abort.c: a failed check on one rank ends the whole MPI job (no hang).
 *
 * Run alone it checks the hook is harmless without MPI. Under `mpirun -np 2` (tests/cli_mpi_abort.sh)
 * rank 1 fails a check while rank 0 waits in a barrier that can never complete: only MPI_Abort
 * from the hook ends the job, so the script's timeout is the failure this test exists to catch. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/comm/comm_abort.h"
#include "common/hsrl_check.h"
#include "common/hsrl_log.h"
#include "tests/test_harness.h"

int main(int argc, char **argv) {
  comm_abort_install();
  if (argc < 2) { /* ctest: nothing to do without mpirun, but the hook must install cleanly */
    test_begin("test_hook_installs");
    test_end();
    return test_summary();
  }
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  hsrl_log_set_identity(rank, rank == 0 ? "learner" : "actor");
  if (rank == 1) HSRL_CHECKF(rank != 1, "deliberate failure on rank %d", rank);
  MPI_Barrier(MPI_COMM_WORLD); /* rank 0 waits here forever unless the job is aborted */
  MPI_Finalize();
  printf("rank %d: barrier passed, which should be impossible\n", rank);
  return 0;
}
