/* comm_impl.h: private to common/comm: the structs behind the opaque handles of comm.h and the
 * table of operations that each transport (comm_mpi.c, comm_inproc.c) implements.
 *
 * Split of work: comm.c and comm_bcast.c check arguments, turn relative deadlines into absolute
 * ones (hsrl_time_now() seconds), validate frames and write the timeout messages; a transport
 * only moves bytes and waits. Transport operations get absolute deadlines; a deadline already
 * past means "test once". They return HSRL_E_TIMEOUT WITHOUT setting a message where noted (the
 * caller words it), and set a message for every other error. */
#ifndef COMM_IMPL_H
#define COMM_IMPL_H

#include <stdint.h>

#include "common/comm/comm.h"

typedef struct comm_ops {
  /* Copies the frame (header + payload) into transport memory and hands it to dest. Writes its
   * own timeout message (it knows what is full). */
  hsrl_status (*send)(comm *ep, int dest, const comm_header *hdr, const void *payload,
                      double deadline);
  /* Finds the oldest message matching (src, kind) and leaves it queued; *info gets its source,
   * kind and payload bytes (frame bytes - 40, may be negative for garbage). Silent timeout. */
  hsrl_status (*probe)(comm *ep, int src, int kind, double deadline, comm_probe *info);
  /* Dequeues the message found by the last probe; *frame stays valid until release(). On an
   * error the message is consumed and nothing needs releasing. MPI: the probe may have seen only
   * the first part of a large message, so this waits for the rest until `deadline`; then it
   * gives HSRL_E_TIMEOUT with its own message and the transport is unusable (a receive that has
   * begun cannot be withdrawn; see comm_mpi.c). */
  hsrl_status (*take)(comm *ep, const comm_probe *info, double deadline, const uint8_t **frame,
                      int64_t *n_frame);
  void (*release)(comm *ep);
  /* Silent timeout. */
  hsrl_status (*barrier)(comm *ep, double deadline);
  hsrl_status (*bcast_open)(comm_bcast *bc);
  /* Root: sends bc->header and bc->buf. Member: posts the receive into bc->header, bc->buf. */
  hsrl_status (*bcast_start)(comm_bcast *bc);
  /* Waits until the started broadcast completes or the deadline passes (silent timeout). */
  hsrl_status (*bcast_progress)(comm_bcast *bc, double deadline, int *done);
  /* Cancels/abandons a started broadcast that has not completed (bc->active), frees impl.
   * Waits at most the world's close_deadline_s (MPI: for a member's receive that has begun). */
  void (*bcast_free)(comm_bcast *bc);
  void (*world_free)(comm_world *w);
} comm_ops;

struct comm {
  const comm_ops *ops;
  comm_world *world;
  int rank, size, n_replay;
  uint64_t config_hash;
  int64_t max_payload;
  int broken; /* MPI: a collective could not be withdrawn after a timeout */
  int64_t tamper_offset; /* test hook, < 0 when off */
  uint8_t tamper_xor;
  int tamper_reseal;
  void *impl;
};

struct comm_world {
  const comm_ops *ops;
  int size, n_local, is_mpi;
  comm *local; /* (n_local) */
  comm_config cfg;
  void *impl;
};

struct comm_bcast {
  comm *ep;
  int group_id, is_root;
  int *members; /* (n_members) */
  int n_members;
  int active, broken;
  void *buf;
  int64_t bytes;
  uint8_t header[COMM_FRAME_HEADER_BYTES]; /* root: encoded at start; member: as received */
  comm_header sent; /* root: the header of the started broadcast */
  void *impl;
};

/* Fills the common fields of an endpoint. */
void comm_endpoint_init(comm *ep, comm_world *w, int rank);

/* Applies and clears the test hook on a frame just built by a transport. */
void comm_tamper_apply(comm *ep, uint8_t *frame, int64_t n_frame);

/* The transports. cfg is validated; size > 0. */
hsrl_status comm_inproc_world_open(comm_world **out, const comm_config *cfg);
hsrl_status comm_mpi_world_open(comm_world **out, const comm_config *cfg);

#endif
