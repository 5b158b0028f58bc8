/* comm_abort.h: makes a failed check end the whole MPI job.
 *
 * common/hsrl_check.c knows nothing of MPI; it calls an abort hook. comm_abort_install() sets a
 * hook that calls MPI_Abort(MPI_COMM_WORLD) when MPI is initialised and not yet finalised (so no
 * other rank is left waiting for a dead peer), and abort() otherwise. hsrl.c installs it at start;
 * tests that run under mpirun install it themselves. */
#ifndef COMM_ABORT_H
#define COMM_ABORT_H

void comm_abort_install(void);

#endif
