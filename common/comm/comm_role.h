/* comm_role.h: which role a rank plays in the distributed job (architecture.md, "The distributed
 * job"): rank 0 is the learner, ranks 1..R are the replay shards (R = dist.replay_shards), the
 * rest are actors. With one rank, rank 0 (the learner) runs every role in one process. Messages
 * and errors name ranks by role: "rank 2 (actor)". */
#ifndef COMM_ROLE_H
#define COMM_ROLE_H

typedef enum comm_role {
  COMM_ROLE_LEARNER = 0,
  COMM_ROLE_REPLAY = 1,
  COMM_ROLE_ACTOR = 2,
} comm_role;

/* The role of `rank` in a job of `size` ranks with n_replay shards. Checks 0 <= rank < size and
 * 0 <= n_replay < size (a bug otherwise). */
comm_role comm_role_of(int rank, int size, int n_replay);

/* "learner", "replay", "actor". */
const char *comm_role_name(comm_role role);

#endif
