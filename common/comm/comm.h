/* comm.h: the message transport between the roles of the distributed job: the ONE API that the
 * learner, replay shards and actors use to talk (architecture.md, "The distributed job"; issue 6).
 *
 * Two implementations behind it, with the same semantics (deadlines, ordering, framing and
 * checksums, error messages):
 *   - MPI (comm_mpi.c): one endpoint per process, rank = MPI rank.
 *   - in-process (comm_inproc.c): N endpoints in one process, each role on its own thread.
 * comm_world_open() picks MPI when the process was launched by mpirun/srun with more than one
 * rank, the in-process transport otherwise (comm_config.transport can force either).
 *
 *   comm_config cfg = comm_config_defaults();
 *   cfg.n_ranks = 3; cfg.n_replay_shards = 1; cfg.config_hash = hsrl_settings_hash(&s);
 *   comm_world *w; HSRL_TRY(comm_world_open(&w, &cfg));
 *   for (int i = 0; i < comm_world_n_local(w); i++)   (in-process: one thread per endpoint)
 *     run_role(comm_world_local(w, i));                (MPI: the one local endpoint)
 *   comm_world_free(w);                                 (after every role has returned)
 *
 * Messages. Every message is a frame (comm_frame.h): magic, format version, kind, sender rank,
 * policy version, config hash, byte count, checksum. A receiver rejects a bad frame with
 * HSRL_E_CORRUPT naming both ranks and what is wrong; the bad message is consumed and the
 * endpoint stays usable. Messages from one sender are received in the order sent (among those
 * matching the receive's filters), as with MPI.
 *
 * Deadlines. Every call that can wait takes deadline_s: seconds from the call (finite, >= 0;
 * 0 = try once). A wait that passes it returns HSRL_E_TIMEOUT with a message naming both peers,
 * e.g. "rank 0 (learner) got no SAMPLE_BATCH message from rank 2 (actor) within 30 s", so a dead
 * or stuck peer is an error, never a hang. Point-to-point timeouts leave the endpoint usable.
 * Under MPI a timed-out barrier cannot be withdrawn: the endpoint is then "broken", further
 * barriers fail, and comm_world_free() skips MPI_Finalize (which could wait forever on the peer)
 * so the process exits and mpirun ends the job. A message that has begun to arrive when its
 * sender dies (MPI: a large message whose first part came, or a member's broadcast receive) can
 * neither finish nor be withdrawn: the receive gets until its deadline (comm_recv: at least
 * close_deadline_s after the message showed up; comm_bcast_free: close_deadline_s), is then
 * abandoned, and the endpoint becomes unusable: every later call fails at once without touching
 * MPI, and comm_world_free() skips MPI_Finalize (comm_mpi.c).
 *
 * Memory. All buffers are allocated at open: no call allocates per message (tests count).
 * In-process: every endpoint has an inbox of n_slots frames of max_payload_bytes + 40 bytes;
 * a send into a full inbox waits (push back) until the deadline. MPI: every endpoint has n_slots
 * send buffers (a send copies the frame into one and returns; when all are still in flight it
 * waits until the deadline) and one receive buffer. Flow control between roles beyond that
 * (credits, requests) is the roles' protocol: MPI buffers eager messages in the receiver.
 *
 * Progress. Nothing happens in the background: messages and broadcasts advance inside comm
 * calls, so a role tests its outstanding broadcast between steps. MPI waits spin briefly, then
 * yield, then sleep up to 0.5 ms, so an idle rank does not steal a core from a busy one.
 *
 * Threads. An endpoint is used by one thread at a time (MPI is initialised with
 * MPI_THREAD_SERIALIZED). Different endpoints of one in-process world are used concurrently. */
#ifndef COMM_H
#define COMM_H

#include <stdint.h>

#include "common/comm/comm_frame.h"
#include "common/comm/comm_role.h"
#include "common/hsrl_status.h"

#define COMM_ANY (-1)        /* any source / any kind in comm_recv and comm_poll */
#define COMM_MAX_GROUPS 8    /* broadcast groups 0..COMM_MAX_GROUPS-1 */

typedef struct comm comm;             /* one rank's endpoint */
typedef struct comm_world comm_world; /* every endpoint of this process, and the transport */
typedef struct comm_bcast comm_bcast; /* one participant of a broadcast group */

typedef enum comm_transport {
  COMM_TRANSPORT_AUTO = 0, /* MPI when launched with > 1 rank, else in-process */
  COMM_TRANSPORT_INPROC = 1,
  COMM_TRANSPORT_MPI = 2,
} comm_transport;

typedef struct comm_config {
  comm_transport transport;
  int n_ranks;               /* in-process: endpoints in this process (MPI: from mpirun) */
  int n_replay_shards;       /* R: ranks 1..R are replay shards (role names in messages) */
  int64_t max_payload_bytes; /* largest payload of comm_send / comm_recv (< 2 GiB) */
  int n_slots;               /* in-process: inbox depth per endpoint; MPI: sends in flight */
  uint64_t config_hash;      /* stamped on every message; a receiver rejects any other hash */
  double close_deadline_s;   /* MPI: how long comm_world_free waits for sends to drain, and a
                              * receive that has begun gets to finish (see Deadlines) */
} comm_config;

/* transport AUTO, 1 rank, 0 replay shards, 1 MiB payloads, 8 slots, hash 0, 10 s. */
comm_config comm_config_defaults(void);

/* Opens the transport. MPI: calls MPI_Init_thread unless MPI is already initialised (only an
 * init done here is finalized by comm_world_free), installs the MPI_Abort check hook
 * (comm_abort.h) and sets the log identity to "rank/role". *out is NULL on failure. Errors:
 * HSRL_E_USAGE for a bad config (sizes, replay shards >= ranks), HSRL_E_IO when MPI fails. */
hsrl_status comm_world_open(comm_world **out, const comm_config *cfg);
/* Frees every endpoint (the roles must have returned; broadcasts must be freed first). MPI:
 * waits up to close_deadline_s for sends to drain, then finalizes MPI if open initialised it and
 * no endpoint is broken. NULL is a no-op. */
void comm_world_free(comm_world *w);
int comm_world_is_mpi(const comm_world *w);
int comm_world_size(const comm_world *w);          /* ranks in the job */
int comm_world_n_local(const comm_world *w);       /* endpoints in this process: 1 (MPI) or size */
comm *comm_world_local(comm_world *w, int i);      /* 0 <= i < n_local; rank = comm_rank() */

int comm_rank(const comm *ep);
int comm_size(const comm *ep);
comm_role comm_my_role(const comm *ep);
/* "rank 2 (actor)" into buf (cap >= 32 is always enough); returns buf. */
const char *comm_peer_name(const comm *ep, int rank, char *buf, int cap);

/* Sends bytes of payload (<= max_payload_bytes, else HSRL_E_USAGE) to dest (may be the sender
 * itself) as a message of `kind`. Returns when payload may be reused. Waits at most deadline_s
 * for buffer space (push back), then HSRL_E_TIMEOUT naming dest. */
hsrl_status comm_send(comm *ep, int dest, int kind, int64_t policy_version, const void *payload,
                      int64_t bytes, double deadline_s);

/* Receives the oldest message matching src (a rank or COMM_ANY) and kind (or COMM_ANY) into buf
 * (cap bytes) and its header into *hdr (may be NULL; hdr->bytes = payload bytes). Waits at most
 * deadline_s for it to show up, and for the rest of a message that has shown up at most until
 * then or close_deadline_s, whichever is later (then HSRL_E_TIMEOUT and, under MPI, the endpoint
 * is unusable: see Deadlines). A message larger than cap gives HSRL_E_INPUT and stays queued
 * (receive it with a larger buffer); a corrupt one gives HSRL_E_CORRUPT and is consumed. */
hsrl_status comm_recv(comm *ep, int src, int kind, void *buf, int64_t cap, double deadline_s,
                      comm_header *hdr);

/* Is a message matching (src, kind) waiting? Never waits. *found = 1 and, if info is not NULL,
 * its sender, kind and payload bytes (as announced; checked by comm_recv). */
typedef struct comm_probe {
  int src;
  int kind;
  int64_t bytes;
} comm_probe;
hsrl_status comm_poll(comm *ep, int src, int kind, int *found, comm_probe *info);

/* Waits until every rank of the job has entered the barrier, at most deadline_s. */
hsrl_status comm_barrier(comm *ep, double deadline_s);

/* ---- Non-blocking parameter broadcast from rank 0 to a group of ranks ----
 * The group: rank 0 (the root) and members[0..n_members-1] (distinct, non-zero). Rank 0 and each
 * member open it with the same group_id (0..COMM_MAX_GROUPS-1) and the same list; other ranks do
 * not take part. Every member takes every broadcast of the group, in order (like a collective).
 * One broadcast per participant is in flight at a time:
 *   root:   comm_bcast_start(bc, params, bytes, version); ... comm_bcast_test(bc, &done, NULL)
 *           between updates; params must not change until done (then start the next one).
 *   member: comm_bcast_start(bc, recv_buf, bytes, 0); between steps comm_bcast_test(bc, &done,
 *           &hdr); when done, recv_buf holds the root's bytes (hdr.policy_version is the root's
 *           version): swap it in and start the next receive.
 * bytes must be equal on all participants. The payload travels as a PARAMS frame (header +
 * checksum verified by every member; a bad one gives HSRL_E_CORRUPT).
 * MPI: point-to-point fan-out from the root (an Isend of the header and of the payload, straight
 * from the caller's buffer, to each member, on a communicator of their own). Chosen over
 * MPI_Ibcast because a member's pending receive can be cancelled at a timeout or at shutdown, and
 * opening a group needs no collective call that could hang. The root sends n_members copies:
 * fine for tens of actors; a tree (MPI_Ibcast) is the upgrade for hundreds.
 * In-process: members copy straight from the root's buffer; the root is done once every member
 * has copied (as MPI is for large payloads, which wait for the receiver).
 * After a timeout or an error in a started broadcast the object is broken: free it. */
hsrl_status comm_bcast_open(comm_bcast **out, comm *ep, int group_id, const int *members,
                            int n_members);
/* Cancels a member's pending receive; a root's unfinished send is abandoned (MPI: the endpoint
 * is then broken, see above). MPI: a member's receive that has begun cannot be cancelled; it gets
 * close_deadline_s to finish, then it is abandoned and the endpoint is unusable (Deadlines).
 * NULL is a no-op. */
void comm_bcast_free(comm_bcast *bc);
hsrl_status comm_bcast_start(comm_bcast *bc, void *buf, int64_t bytes, int64_t policy_version);
/* Never waits. *done = 1 when the started broadcast has completed for this participant (hdr,
 * if not NULL, gets its header); 0 while in flight. Calling it when none is started is a bug. */
hsrl_status comm_bcast_test(comm_bcast *bc, int *done, comm_header *hdr);
/* Waits for the started broadcast, at most deadline_s (then HSRL_E_TIMEOUT; bc is broken). */
hsrl_status comm_bcast_wait(comm_bcast *bc, double deadline_s, comm_header *hdr);

/* ---- Test hook ----
 * The next comm_send from ep XORs frame byte `offset` (0 = first header byte) with xor_mask
 * after the frame is built; with reseal != 0 the checksum is recomputed afterwards, forging a
 * well-formed frame with a wrong field (a peer of another version or config). */
void comm_debug_tamper_next_send(comm *ep, int64_t offset, uint8_t xor_mask, int reseal);

#endif
