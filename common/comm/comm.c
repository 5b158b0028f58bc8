/* comm.c: the transport-independent half of comm.h: choosing the transport, argument checks,
 * deadlines, frame validation on receive and the wording of errors. See comm.h, comm_impl.h.
 * Every call that can wait tells the calling thread's watchdog (hsrl_watchdog.h) which call it is
 * in, and that it left it, so a rank stuck in one is named by it. */
#include "common/comm/comm.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/comm/comm_impl.h"
#include "common/hsrl_check.h"
#include "common/hsrl_timer.h"
#include "common/hsrl_watchdog.h"

comm_config comm_config_defaults(void) {
  comm_config c;
  memset(&c, 0, sizeof c);
  c.transport = COMM_TRANSPORT_AUTO;
  c.n_ranks = 1;
  c.n_replay_shards = 0;
  c.max_payload_bytes = 1 << 20;
  c.n_slots = 8;
  c.config_hash = 0;
  c.close_deadline_s = 10.0;
  return c;
}

/* The job size announced by a launcher in the environment: Open MPI's mpirun, MPICH/Hydra,
 * or srun with PMI. 0 when the process was not launched by one. */
static int launched_size(void) {
  const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v && *v) return atoi(v);
  }
  const char *tasks = getenv("SLURM_NTASKS");
  if (tasks && (getenv("PMIX_RANK") || getenv("PMI_RANK"))) return atoi(tasks);
  return 0;
}

hsrl_status comm_world_open(comm_world **out, const comm_config *cfg) {
  *out = NULL;
  if (cfg->max_payload_bytes < 0 || cfg->max_payload_bytes > INT32_MAX - 1024)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "max_payload_bytes",
                    "%" PRId64 " is outside 0..%d (MPI counts are int)", cfg->max_payload_bytes,
                    INT32_MAX - 1024);
  if (cfg->n_slots < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "n_slots", "%d, needs at least 1", cfg->n_slots);
  if (!(cfg->close_deadline_s >= 0 && isfinite(cfg->close_deadline_s)))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "close_deadline_s", "%g is not a finite time >= 0",
                    cfg->close_deadline_s);
  comm_transport t = cfg->transport;
  if (t == COMM_TRANSPORT_AUTO) t = launched_size() > 1 ? COMM_TRANSPORT_MPI : COMM_TRANSPORT_INPROC;
  if (t == COMM_TRANSPORT_INPROC) {
    if (cfg->n_ranks < 1)
      return hsrl_err(HSRL_E_USAGE, NULL, 0, "n_ranks", "%d, needs at least 1", cfg->n_ranks);
    if (cfg->n_replay_shards < 0 || cfg->n_replay_shards >= cfg->n_ranks)
      return hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards",
                      "%d replay shards need at least %d ranks, the job has %d",
                      cfg->n_replay_shards, cfg->n_replay_shards + 1, cfg->n_ranks);
    return comm_inproc_world_open(out, cfg);
  }
  return comm_mpi_world_open(out, cfg); /* it checks n_replay_shards against the MPI size */
}

void comm_world_free(comm_world *w) {
  if (!w) return;
  hsrl_watchdog_note("comm_world_free", -1);
  w->ops->world_free(w);
  hsrl_watchdog_note(NULL, -1);
}

int comm_world_is_mpi(const comm_world *w) { return w->is_mpi; }
int comm_world_size(const comm_world *w) { return w->size; }
int comm_world_n_local(const comm_world *w) { return w->n_local; }

comm *comm_world_local(comm_world *w, int i) {
  HSRL_CHECKF(i >= 0 && i < w->n_local, "local endpoint %d of %d", i, w->n_local);
  return &w->local[i];
}

void comm_endpoint_init(comm *ep, comm_world *w, int rank) {
  memset(ep, 0, sizeof *ep);
  ep->ops = w->ops;
  ep->world = w;
  ep->rank = rank;
  ep->size = w->size;
  ep->n_replay = w->cfg.n_replay_shards;
  ep->config_hash = w->cfg.config_hash;
  ep->max_payload = w->cfg.max_payload_bytes;
  ep->tamper_offset = -1;
}

int comm_rank(const comm *ep) { return ep->rank; }
int comm_size(const comm *ep) { return ep->size; }
comm_role comm_my_role(const comm *ep) { return comm_role_of(ep->rank, ep->size, ep->n_replay); }

const char *comm_peer_name(const comm *ep, int rank, char *buf, int cap) {
  if (rank == COMM_ANY) snprintf(buf, (size_t)cap, "any rank");
  else if (rank < 0 || rank >= ep->size) snprintf(buf, (size_t)cap, "rank %d (not in the job)", rank);
  else snprintf(buf, (size_t)cap, "rank %d (%s)", rank, comm_role_name(comm_role_of(rank, ep->size, ep->n_replay)));
  return buf;
}

void comm_debug_tamper_next_send(comm *ep, int64_t offset, uint8_t xor_mask, int reseal) {
  ep->tamper_offset = offset;
  ep->tamper_xor = xor_mask;
  ep->tamper_reseal = reseal;
}

void comm_tamper_apply(comm *ep, uint8_t *frame, int64_t n_frame) {
  if (ep->tamper_offset < 0) return;
  if (ep->tamper_offset < n_frame) {
    frame[ep->tamper_offset] ^= ep->tamper_xor;
    if (ep->tamper_reseal && n_frame >= COMM_FRAME_HEADER_BYTES)
      comm_frame_seal(frame, frame + COMM_FRAME_HEADER_BYTES, n_frame - COMM_FRAME_HEADER_BYTES);
  }
  ep->tamper_offset = -1;
}

static double deadline_from(double deadline_s) {
  HSRL_CHECKF(deadline_s >= 0 && isfinite(deadline_s), "deadline %g s: every wait needs a finite deadline",
              deadline_s);
  return hsrl_time_now() + deadline_s;
}

static void check_kind_filter(int kind) {
  HSRL_CHECKF(kind == COMM_ANY || (kind > 0 && kind < COMM_KIND_COUNT), "message kind %d", kind);
}

hsrl_status comm_send(comm *ep, int dest, int kind, int64_t policy_version, const void *payload,
                      int64_t bytes, double deadline_s) {
  HSRL_CHECKF(dest >= 0 && dest < ep->size, "send to rank %d of %d", dest, ep->size);
  HSRL_CHECKF(kind > 0 && kind < COMM_KIND_COUNT, "message kind %d", kind);
  HSRL_CHECKF(bytes >= 0 && (payload != NULL || bytes == 0), "payload of %" PRId64 " bytes", bytes);
  double deadline = deadline_from(deadline_s);
  if (bytes > ep->max_payload) {
    char me[48], peer[48];
    return hsrl_err(HSRL_E_USAGE, NULL, 0, NULL,
                    "%s: a %s message of %" PRId64 " bytes to %s exceeds the transport's largest "
                    "payload of %" PRId64 " bytes (raise max_payload_bytes)",
                    comm_peer_name(ep, ep->rank, me, sizeof me), comm_kind_name(kind), bytes,
                    comm_peer_name(ep, dest, peer, sizeof peer), ep->max_payload);
  }
  comm_header hdr = {.kind = kind, .sender = ep->rank, .policy_version = policy_version,
                     .config_hash = ep->config_hash, .bytes = bytes};
  hsrl_watchdog_note("comm_send", dest);
  hsrl_status st = ep->ops->send(ep, dest, &hdr, payload, deadline);
  hsrl_watchdog_note(NULL, -1);
  return st;
}

/* The header fields the frame format cannot check alone: who sent it (against the transport's
 * own idea of the source), its kind against the probe's, and the writer's config. */
static hsrl_status check_envelope(const comm *ep, const comm_probe *info, const comm_header *h) {
  if (h->sender != info->src)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "the header claims sender rank %d", h->sender);
  if (h->kind != info->kind)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "the header says kind %s, it was sent as %s",
                    comm_kind_name(h->kind), comm_kind_name(info->kind));
  if (h->config_hash != ep->config_hash)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                    "written under config hash %016" PRIx64 ", this rank runs %016" PRIx64
                    " (ranks started with different configs?)",
                    h->config_hash, ep->config_hash);
  return HSRL_OK;
}

static hsrl_status recv_noted(comm *ep, int src, int kind, void *buf, int64_t cap, double deadline_s,
                              comm_header *hdr) {
  HSRL_CHECKF(src == COMM_ANY || (src >= 0 && src < ep->size), "receive from rank %d of %d", src,
              ep->size);
  check_kind_filter(kind);
  HSRL_CHECKF(cap >= 0 && (buf != NULL || cap == 0), "buffer of %" PRId64 " bytes", cap);
  double deadline = deadline_from(deadline_s);
  char me[48], peer[48];
  comm_probe info;
  hsrl_status st = ep->ops->probe(ep, src, kind, deadline, &info);
  if (st == HSRL_E_TIMEOUT)
    return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL, "%s got no %s%smessage from %s within %g s",
                    comm_peer_name(ep, ep->rank, me, sizeof me), kind == COMM_ANY ? "" : comm_kind_name(kind),
                    kind == COMM_ANY ? "" : " ", comm_peer_name(ep, src, peer, sizeof peer), deadline_s);
  if (st != HSRL_OK) return st;
  if (info.bytes > cap && info.bytes <= ep->max_payload)
    return hsrl_err(HSRL_E_INPUT, NULL, 0, NULL,
                    "%s: a %s message of %" PRId64 " bytes from %s does not fit the %" PRId64
                    "-byte receive buffer (it stays queued)",
                    comm_peer_name(ep, ep->rank, me, sizeof me), comm_kind_name(info.kind), info.bytes,
                    comm_peer_name(ep, info.src, peer, sizeof peer), cap);
  const uint8_t *frame = NULL;
  int64_t n_frame = 0;
  /* a message that has begun to arrive gets at least close_deadline_s to finish (comm.h) */
  double take_deadline = hsrl_time_now() + ep->world->cfg.close_deadline_s;
  st = ep->ops->take(ep, &info, take_deadline > deadline ? take_deadline : deadline, &frame, &n_frame);
  if (st == HSRL_E_TIMEOUT) return st; /* the transport wrote the message */
  if (st == HSRL_OK) {
    comm_header h;
    const void *payload = NULL;
    st = comm_frame_read(frame, n_frame, &h, &payload);
    if (st == HSRL_OK) st = check_envelope(ep, &info, &h);
    if (st == HSRL_OK && h.bytes > cap) /* only after a lying probe; frame_read checked the length */
      st = hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "%" PRId64 " bytes arrived, %" PRId64 " announced",
                    h.bytes, info.bytes);
    if (st == HSRL_OK) {
      if (h.bytes > 0) memcpy(buf, payload, (size_t)h.bytes);
      if (hdr) *hdr = h;
    }
    ep->ops->release(ep);
  }
  if (st != HSRL_OK)
    hsrl_err_context(st, "%s: message from %s rejected", comm_peer_name(ep, ep->rank, me, sizeof me),
                     comm_peer_name(ep, info.src, peer, sizeof peer));
  return st;
}

hsrl_status comm_recv(comm *ep, int src, int kind, void *buf, int64_t cap, double deadline_s,
                      comm_header *hdr) {
  hsrl_watchdog_note("comm_recv", src);
  hsrl_status st = recv_noted(ep, src, kind, buf, cap, deadline_s, hdr);
  hsrl_watchdog_note(NULL, -1);
  return st;
}

hsrl_status comm_poll(comm *ep, int src, int kind, int *found, comm_probe *info) {
  HSRL_CHECKF(src == COMM_ANY || (src >= 0 && src < ep->size), "poll for rank %d of %d", src, ep->size);
  check_kind_filter(kind);
  comm_probe p;
  *found = 0;
  hsrl_status st = ep->ops->probe(ep, src, kind, -INFINITY, &p);
  if (st == HSRL_E_TIMEOUT) return HSRL_OK;
  if (st != HSRL_OK) return st;
  *found = 1;
  if (info) *info = p;
  return HSRL_OK;
}

hsrl_status comm_barrier(comm *ep, double deadline_s) {
  double deadline = deadline_from(deadline_s);
  char me[48];
  if (ep->broken)
    return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL,
                    "%s: the transport is unusable after an earlier collective timed out",
                    comm_peer_name(ep, ep->rank, me, sizeof me));
  hsrl_watchdog_note("comm_barrier", -1);
  hsrl_status st = ep->ops->barrier(ep, deadline);
  hsrl_watchdog_note(NULL, -1);
  if (st == HSRL_E_TIMEOUT)
    return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                    "%s: not every one of the %d ranks reached the barrier within %g s",
                    comm_peer_name(ep, ep->rank, me, sizeof me), ep->size, deadline_s);
  return st;
}
