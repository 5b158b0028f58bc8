/* comm_role.c: see comm_role.h. */
#include "common/comm/comm_role.h"

#include "common/hsrl_check.h"

comm_role comm_role_of(int rank, int size, int n_replay) {
  HSRL_CHECKF(rank >= 0 && rank < size, "rank %d of %d", rank, size);
  HSRL_CHECKF(n_replay >= 0 && n_replay < size, "%d replay shards need more than %d ranks", n_replay,
              size);
  if (rank == 0) return COMM_ROLE_LEARNER;
  return rank <= n_replay ? COMM_ROLE_REPLAY : COMM_ROLE_ACTOR;
}

const char *comm_role_name(comm_role role) {
  switch (role) {
    case COMM_ROLE_LEARNER: return "learner";
    case COMM_ROLE_REPLAY: return "replay";
    case COMM_ROLE_ACTOR: return "actor";
  }
  return "unknown";
}
