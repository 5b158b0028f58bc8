/* comm_mpi.c: the MPI transport of comm.h: one endpoint per process, rank = MPI rank.
 *
 * Two private duplicates of MPI_COMM_WORLD, both with MPI_ERRORS_RETURN so that every failure
 * comes back as a status (every return code is checked): `p2p` carries messages (MPI tag =
 * message kind, so MPI itself filters by source and kind and keeps each sender's order) and the
 * barrier (MPI_Ibarrier); `bcast` carries the broadcast groups (tag = group id), so a receive
 * for any kind never matches a broadcast.
 * Send: the frame is built in one of n_slots preallocated buffers and sent with MPI_Isend; a
 * send reuses a slot whose request completed and waits (MPI_Testany) up to its deadline when
 * all are in flight. Receive: MPI_Iprobe until a matching message shows up or the deadline
 * passes (nothing is posted, so a timeout leaves nothing behind), then MPI_Irecv of exactly that
 * message into the one receive buffer, tested until it completes. Broadcast: Isend fan-out of
 * header and payload from the root; members post two Irecv (cancelled if the broadcast is freed
 * unfinished). Waiting loops spin ~50 times, yield ~50 times, then sleep 20 us .. 0.5 ms per round.
 *
 * A sender that dies mid-transfer. MPI_Iprobe matches a large message on its first fragment
 * (shared memory: a rendezvous header; the receiver then copies the rest out of the sender's
 * memory, which fails once the sender is gone: Open MPI prints "Read -1, expected N, errno = 3").
 * A receive matched that way never completes and cannot be cancelled, so no wait on it may be
 * unbounded: MPI_Recv or MPI_Wait there spun forever (an actor whose learner was killed with
 * kill -9 in the middle of a broadcast never exited: tests/cli_dist_fault.sh). Such a receive
 * (a message being taken, or a member's broadcast receive being freed) gets until its deadline,
 * then it is abandoned (MPI_Request_free) and the transport becomes unusable: `abandoned` names
 * the sender, ep->broken is set, and from then on no call of this transport calls MPI (each
 * returns an error), so MPI never writes into a buffer that was given back to its owner, and
 * comm_world_free skips MPI_Finalize. */
#include <inttypes.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/comm/comm.h"
#include "common/comm/comm_abort.h"
#include "common/comm/comm_impl.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_log.h"
#include "common/hsrl_timer.h"

typedef struct mpi_state {
  MPI_Comm p2p, bcast;
  int n_slots;
  int64_t slot_cap;          /* bytes per frame buffer: 40 + max_payload */
  uint8_t *send_frames;      /* (n_slots * slot_cap) */
  MPI_Request *send_req;     /* (n_slots) MPI_REQUEST_NULL when the slot is free */
  int *send_dest;            /* (n_slots) */
  uint64_t *send_seq;        /* (n_slots) to name the oldest send in flight */
  uint64_t n_sent;
  uint8_t *recv_frame;       /* (slot_cap) */
  int we_initialized;        /* MPI_Init was ours: finalize it */
  int abandoned;             /* -1, or the sender of a receive that was abandoned: no MPI calls */
} mpi_state;

typedef struct mpi_bcast {
  MPI_Request *req; /* (2 * n_members) at the root, (2) at a member */
  int n_req;
} mpi_bcast;

static mpi_state *state_of(const comm *ep) { return ep->world->impl; }

static hsrl_status mpi_fail(const comm *ep, int rc, const char *what) {
  char text[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, text, &len);
  char me[48];
  return hsrl_err(HSRL_E_IO, NULL, 0, NULL, "%s: %s failed: %s",
                  ep ? comm_peer_name(ep, ep->rank, me, sizeof me) : "MPI", what, text);
}

#define MPI_TRY(ep, call)                                        \
  do {                                                           \
    int mpi_rc_ = (call);                                        \
    if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(ep, mpi_rc_, #call); \
  } while (0)

/* Every operation starts with this: after an abandoned receive the transport calls no MPI. */
static hsrl_status mpi_usable(const comm *ep) {
  const mpi_state *s = state_of(ep);
  if (s->abandoned < 0) return HSRL_OK;
  char me[48], peer[48];
  return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL,
                  "%s: the transport is unusable: a message from %s began to arrive and never "
                  "finished (that rank died mid-transfer?)",
                  comm_peer_name(ep, ep->rank, me, sizeof me),
                  comm_peer_name(ep, s->abandoned, peer, sizeof peer));
}

/* A receive from src that began and will never finish was given up: no MPI calls from now on. */
static void mpi_abandon(comm *ep, int src) {
  state_of(ep)->abandoned = src;
  ep->broken = 1;
}

#define MPI_USABLE(ep)                                 \
  do {                                                 \
    hsrl_status usable_st_ = mpi_usable(ep);           \
    if (usable_st_ != HSRL_OK) return usable_st_;      \
  } while (0)

/* One round of waiting: spin first (lowest latency), then yield, then sleep, so a rank waiting a
 * long time does not take a core from a busy one (ranks may be oversubscribed). */
static void idle(int *n_idle) {
  int n = (*n_idle)++;
  if (n < 50) return;
  if (n < 100) {
    sched_yield();
    return;
  }
  struct timespec ts = {0, n < 200 ? 20000L : n < 400 ? 100000L : 500000L};
  nanosleep(&ts, NULL);
}

static hsrl_status mpi_send(comm *ep, int dest, const comm_header *hdr, const void *payload,
                            double deadline) {
  mpi_state *s = state_of(ep);
  MPI_USABLE(ep);
  int slot = -1, n_idle = 0;
  for (int i = 0; i < s->n_slots && slot < 0; i++)
    if (s->send_req[i] == MPI_REQUEST_NULL) slot = i;
  while (slot < 0) {
    int idx = MPI_UNDEFINED, flag = 0;
    MPI_TRY(ep, MPI_Testany(s->n_slots, s->send_req, &idx, &flag, MPI_STATUS_IGNORE));
    if (flag && idx != MPI_UNDEFINED) {
      slot = idx;
    } else if (hsrl_time_now() >= deadline) {
      int oldest = 0;
      for (int i = 1; i < s->n_slots; i++)
        if (s->send_seq[i] < s->send_seq[oldest]) oldest = i;
      char me[48], peer[48], old[48];
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                      "%s could not send a %s message to %s before its deadline: all %d send "
                      "buffers still in flight, the oldest to %s -- is it receiving?",
                      comm_peer_name(ep, ep->rank, me, sizeof me), comm_kind_name(hdr->kind),
                      comm_peer_name(ep, dest, peer, sizeof peer), s->n_slots,
                      comm_peer_name(ep, s->send_dest[oldest], old, sizeof old));
    } else {
      idle(&n_idle);
    }
  }
  uint8_t *frame = s->send_frames + (size_t)slot * (size_t)s->slot_cap;
  int64_t n_frame = COMM_FRAME_HEADER_BYTES + hdr->bytes;
  hsrl_status st = comm_frame_write(frame, s->slot_cap, hdr, payload);
  HSRL_CHECK(st == HSRL_OK); /* comm_send checked bytes <= max_payload */
  comm_tamper_apply(ep, frame, n_frame);
  s->send_dest[slot] = dest;
  s->send_seq[slot] = s->n_sent++;
  MPI_TRY(ep, MPI_Isend(frame, (int)n_frame, MPI_BYTE, dest, hdr->kind, s->p2p, &s->send_req[slot]));
  return HSRL_OK;
}

static hsrl_status mpi_probe(comm *ep, int src, int kind, double deadline, comm_probe *info) {
  mpi_state *s = state_of(ep);
  MPI_USABLE(ep);
  int n_idle = 0;
  for (;;) {
    int flag = 0;
    MPI_Status status;
    MPI_TRY(ep, MPI_Iprobe(src == COMM_ANY ? MPI_ANY_SOURCE : src, kind == COMM_ANY ? MPI_ANY_TAG : kind,
                           s->p2p, &flag, &status));
    if (flag) {
      int count = 0;
      MPI_TRY(ep, MPI_Get_count(&status, MPI_BYTE, &count));
      info->src = status.MPI_SOURCE;
      info->kind = status.MPI_TAG;
      info->bytes = (int64_t)count - COMM_FRAME_HEADER_BYTES;
      return HSRL_OK;
    }
    if (hsrl_time_now() >= deadline) return HSRL_E_TIMEOUT;
    idle(&n_idle);
  }
}

static hsrl_status mpi_take(comm *ep, const comm_probe *info, double deadline, const uint8_t **frame,
                            int64_t *n_frame) {
  mpi_state *s = state_of(ep);
  MPI_USABLE(ep);
  MPI_Request req;
  MPI_Status status;
  /* One thread per endpoint: the first message from (src, tag) is the one just probed. */
  MPI_TRY(ep, MPI_Irecv(s->recv_frame, (int)s->slot_cap, MPI_BYTE, info->src, info->kind, s->p2p, &req));
  int flag = 0, n_idle = 0, rc = MPI_SUCCESS;
  for (;;) {
    rc = MPI_Test(&req, &flag, &status);
    if (rc != MPI_SUCCESS || flag) break;
    if (hsrl_time_now() >= deadline) {
      /* matched (the probe saw it), so the cancel does nothing and the receive is abandoned */
      MPI_Cancel(&req);
      MPI_Request_free(&req);
      mpi_abandon(ep, info->src);
      char me[48], peer[48];
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                      "%s: a %s message of %" PRId64 " bytes from %s began to arrive but did not "
                      "finish before its deadline (that rank died mid-transfer?); the transport is "
                      "unusable now",
                      comm_peer_name(ep, ep->rank, me, sizeof me), comm_kind_name(info->kind),
                      info->bytes, comm_peer_name(ep, info->src, peer, sizeof peer));
    }
    idle(&n_idle);
  }
  if (rc != MPI_SUCCESS) {
    int cls = 0;
    MPI_Error_class(rc, &cls);
    if (cls == MPI_ERR_TRUNCATE)
      return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                      "a frame of %" PRId64 " bytes exceeds the largest frame of %" PRId64
                      " (the sender runs a larger max_payload_bytes?)",
                      info->bytes + COMM_FRAME_HEADER_BYTES, s->slot_cap);
    return mpi_fail(ep, rc, "MPI_Irecv/MPI_Test");
  }
  int count = 0;
  MPI_TRY(ep, MPI_Get_count(&status, MPI_BYTE, &count));
  *frame = s->recv_frame;
  *n_frame = count;
  return HSRL_OK;
}

static void mpi_release(comm *ep) { (void)ep; }

static hsrl_status mpi_barrier(comm *ep, double deadline) {
  mpi_state *s = state_of(ep);
  MPI_USABLE(ep);
  MPI_Request req;
  MPI_TRY(ep, MPI_Ibarrier(s->p2p, &req));
  int n_idle = 0;
  for (;;) {
    int flag = 0;
    MPI_TRY(ep, MPI_Test(&req, &flag, MPI_STATUS_IGNORE));
    if (flag) return HSRL_OK;
    if (hsrl_time_now() >= deadline) {
      ep->broken = 1; /* a started collective cannot be withdrawn */
      return HSRL_E_TIMEOUT;
    }
    idle(&n_idle);
  }
}

static hsrl_status mpi_bcast_open(comm_bcast *bc) {
  mpi_bcast *b = hsrl_calloc(1, sizeof *b);
  b->n_req = bc->is_root ? 2 * bc->n_members : 2;
  b->req = hsrl_calloc((size_t)(b->n_req > 0 ? b->n_req : 1), sizeof *b->req);
  for (int i = 0; i < b->n_req; i++) b->req[i] = MPI_REQUEST_NULL;
  bc->impl = b;
  return HSRL_OK;
}

static hsrl_status mpi_bcast_start(comm_bcast *bc) {
  mpi_state *s = state_of(bc->ep);
  mpi_bcast *b = bc->impl;
  MPI_USABLE(bc->ep);
  if (bc->is_root) {
    for (int i = 0; i < bc->n_members; i++) {
      MPI_TRY(bc->ep, MPI_Isend(bc->header, COMM_FRAME_HEADER_BYTES, MPI_BYTE, bc->members[i],
                                bc->group_id, s->bcast, &b->req[2 * i]));
      MPI_TRY(bc->ep, MPI_Isend(bc->buf, (int)bc->bytes, MPI_BYTE, bc->members[i], bc->group_id,
                                s->bcast, &b->req[2 * i + 1]));
    }
  } else {
    MPI_TRY(bc->ep, MPI_Irecv(bc->header, COMM_FRAME_HEADER_BYTES, MPI_BYTE, 0, bc->group_id,
                              s->bcast, &b->req[0]));
    MPI_TRY(bc->ep, MPI_Irecv(bc->buf, (int)bc->bytes, MPI_BYTE, 0, bc->group_id, s->bcast, &b->req[1]));
  }
  return HSRL_OK;
}

static hsrl_status mpi_bcast_progress(comm_bcast *bc, double deadline, int *done) {
  mpi_bcast *b = bc->impl;
  int n_idle = 0;
  *done = 0;
  MPI_USABLE(bc->ep);
  for (;;) {
    int flag = 0;
    int rc = MPI_Testall(b->n_req, b->req, &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS)
      return mpi_fail(bc->ep, rc, bc->is_root ? "broadcast send (MPI_Testall)"
                                               : "broadcast receive (MPI_Testall; a payload larger than this "
                                                 "member's buffer?)");
    if (flag) {
      *done = 1;
      return HSRL_OK;
    }
    if (hsrl_time_now() >= deadline) return HSRL_E_TIMEOUT;
    idle(&n_idle);
  }
}

static void mpi_bcast_free(comm_bcast *bc) {
  mpi_bcast *b = bc->impl;
  mpi_state *s = state_of(bc->ep);
  int pending = 0;
  for (int i = 0; i < b->n_req; i++) pending |= b->req[i] != MPI_REQUEST_NULL;
  if (pending && s->abandoned >= 0) {
    /* no MPI calls any more (see the file comment): the requests are left as they are */
  } else if (pending && !bc->is_root) {
    /* A receive that has not matched is cancelled at once. One that has (the root's header or
     * the first part of its payload arrived) cannot be cancelled: it completes if the root is
     * alive, else never -- so wait at most close_deadline_s, then abandon it. */
    for (int i = 0; i < b->n_req; i++)
      if (b->req[i] != MPI_REQUEST_NULL) MPI_Cancel(&b->req[i]);
    double deadline = hsrl_time_now() + bc->ep->world->cfg.close_deadline_s;
    int flag = 0, n_idle = 0;
    while (MPI_Testall(b->n_req, b->req, &flag, MPI_STATUSES_IGNORE) == MPI_SUCCESS && !flag &&
           hsrl_time_now() < deadline)
      idle(&n_idle);
    if (!flag) {
      for (int i = 0; i < b->n_req; i++)
        if (b->req[i] != MPI_REQUEST_NULL) MPI_Request_free(&b->req[i]);
      mpi_abandon(bc->ep, 0); /* the root (comm.h) */
      HSRL_WARN("rank %d: a broadcast (group %d) from rank 0 began to arrive and did not finish within "
                "%g s (rank 0 died mid-transfer?): abandoned; the transport is unusable now",
                bc->ep->rank, bc->group_id, bc->ep->world->cfg.close_deadline_s);
    }
  } else if (pending) {
    /* Sends may not cancel; the data may still go out after this. Finalize could then wait on a
     * member that never receives, so the endpoint is marked broken (no MPI_Finalize). */
    for (int i = 0; i < b->n_req; i++) {
      if (b->req[i] == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&b->req[i]);
      MPI_Request_free(&b->req[i]);
    }
    bc->ep->broken = 1;
  }
  hsrl_free(b->req);
  hsrl_free(b);
  bc->impl = NULL;
}

static void mpi_world_free(comm_world *cw) {
  mpi_state *s = cw->impl;
  comm *ep = &cw->local[0];
  /* Let sends in flight drain, so the receivers get everything that was sent. */
  double deadline = hsrl_time_now() + cw->cfg.close_deadline_s;
  int n_idle = 0, flag = 0;
  while (!ep->broken) {
    if (MPI_Testall(s->n_slots, s->send_req, &flag, MPI_STATUSES_IGNORE) != MPI_SUCCESS) {
      HSRL_WARN("rank %d: a send failed while closing the transport", ep->rank);
      break;
    }
    if (flag) break;
    if (hsrl_time_now() >= deadline) {
      HSRL_WARN("rank %d: sends still in flight after %g s at close", ep->rank, cw->cfg.close_deadline_s);
      ep->broken = 1;
      break;
    }
    idle(&n_idle);
  }
  if (!ep->broken && flag) {
    MPI_Comm_free(&s->p2p);
    MPI_Comm_free(&s->bcast);
  }
  if (s->we_initialized) {
    if (ep->broken)
      HSRL_WARN("rank %d: leaving without MPI_Finalize after a transport timeout (it could wait "
                "forever on the peer); mpirun ends the job",
                ep->rank);
    else
      MPI_Finalize();
  }
  hsrl_free(s->send_frames);
  hsrl_free(s->send_req);
  hsrl_free(s->send_dest);
  hsrl_free(s->send_seq);
  hsrl_free(s->recv_frame);
  hsrl_free(s);
  hsrl_free(cw->local);
  hsrl_free(cw);
}

static const comm_ops mpi_ops = {
    .send = mpi_send,
    .probe = mpi_probe,
    .take = mpi_take,
    .release = mpi_release,
    .barrier = mpi_barrier,
    .bcast_open = mpi_bcast_open,
    .bcast_start = mpi_bcast_start,
    .bcast_progress = mpi_bcast_progress,
    .bcast_free = mpi_bcast_free,
    .world_free = mpi_world_free,
};

hsrl_status comm_mpi_world_open(comm_world **out, const comm_config *cfg) {
  int initialized = 0, provided = 0, we_initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(NULL, rc, "MPI_Init_thread");
    we_initialized = 1;
  } else {
    MPI_Query_thread(&provided);
  }
  comm_abort_install(); /* a failed check now ends the whole job, not just this rank */
  if (provided < MPI_THREAD_SERIALIZED)
    HSRL_WARN("MPI provides thread level %d < MPI_THREAD_SERIALIZED: use the transport only from the "
              "thread that opened it",
              provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  hsrl_log_set_identity(rank, comm_role_name(comm_role_of(rank, size, cfg->n_replay_shards < size
                                                                           ? cfg->n_replay_shards : 0)));
  if (cfg->n_replay_shards < 0 || cfg->n_replay_shards >= size) {
    if (we_initialized) MPI_Finalize();
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards",
                    "%d replay shards need at least %d ranks, mpirun started %d", cfg->n_replay_shards,
                    cfg->n_replay_shards + 1, size);
  }

  mpi_state *s = hsrl_calloc(1, sizeof *s);
  s->we_initialized = we_initialized;
  s->abandoned = -1;
  s->n_slots = cfg->n_slots;
  s->slot_cap = COMM_FRAME_HEADER_BYTES + cfg->max_payload_bytes;
  s->send_frames = hsrl_malloc((size_t)s->n_slots * (size_t)s->slot_cap);
  s->send_req = hsrl_calloc((size_t)s->n_slots, sizeof *s->send_req);
  s->send_dest = hsrl_calloc((size_t)s->n_slots, sizeof *s->send_dest);
  s->send_seq = hsrl_calloc((size_t)s->n_slots, sizeof *s->send_seq);
  for (int i = 0; i < s->n_slots; i++) s->send_req[i] = MPI_REQUEST_NULL;
  s->recv_frame = hsrl_malloc((size_t)s->slot_cap);

  comm_world *cw = hsrl_calloc(1, sizeof *cw);
  cw->ops = &mpi_ops;
  cw->size = size;
  cw->n_local = 1;
  cw->is_mpi = 1;
  cw->cfg = *cfg;
  cw->cfg.transport = COMM_TRANSPORT_MPI;
  cw->cfg.n_ranks = size;
  cw->impl = s;
  cw->local = hsrl_calloc(1, sizeof *cw->local);
  comm_endpoint_init(&cw->local[0], cw, rank);

  hsrl_status st = HSRL_OK;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &s->p2p);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(MPI_COMM_WORLD, &s->bcast);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(s->p2p, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(s->bcast, MPI_ERRORS_RETURN);
  if (rc != MPI_SUCCESS) {
    st = mpi_fail(&cw->local[0], rc, "MPI_Comm_dup / MPI_Comm_set_errhandler");
    cw->local[0].broken = 1;
    mpi_world_free(cw);
    return st;
  }
  *out = cw;
  return HSRL_OK;
}
