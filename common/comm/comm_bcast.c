/* comm_bcast.c: the transport-independent half of the parameter broadcast (comm.h): group and
 * state checks, the PARAMS frame header (root: encode; member: verify) and the wording of
 * timeouts. The transports move the bytes (comm_impl.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/comm/comm.h"
#include "common/comm/comm_impl.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_timer.h"
#include "common/hsrl_watchdog.h"

hsrl_status comm_bcast_open(comm_bcast **out, comm *ep, int group_id, const int *members,
                            int n_members) {
  HSRL_CHECKF(group_id >= 0 && group_id < COMM_MAX_GROUPS, "broadcast group %d", group_id);
  HSRL_CHECKF(n_members >= 0 && n_members < ep->size, "%d members in a job of %d ranks", n_members,
              ep->size);
  int is_member = 0;
  for (int i = 0; i < n_members; i++) {
    HSRL_CHECKF(members[i] > 0 && members[i] < ep->size, "member rank %d of %d (rank 0 is the root)",
                members[i], ep->size);
    for (int j = 0; j < i; j++) HSRL_CHECKF(members[j] != members[i], "rank %d listed twice", members[i]);
    is_member |= members[i] == ep->rank;
  }
  HSRL_CHECKF(ep->rank == 0 || is_member, "rank %d opens broadcast group %d without being in it",
              ep->rank, group_id);
  comm_bcast *bc = hsrl_calloc(1, sizeof *bc);
  bc->ep = ep;
  bc->group_id = group_id;
  bc->is_root = ep->rank == 0;
  bc->n_members = n_members;
  bc->members = hsrl_calloc((size_t)(n_members > 0 ? n_members : 1), sizeof *bc->members);
  if (n_members > 0) memcpy(bc->members, members, (size_t)n_members * sizeof *members);
  hsrl_status st = ep->ops->bcast_open(bc);
  if (st != HSRL_OK) {
    hsrl_free(bc->members);
    hsrl_free(bc);
    return st;
  }
  *out = bc;
  return HSRL_OK;
}

void comm_bcast_free(comm_bcast *bc) {
  if (!bc) return;
  hsrl_watchdog_note("comm_bcast_free", bc->is_root ? -1 : 0);
  bc->ep->ops->bcast_free(bc);
  hsrl_watchdog_note(NULL, -1);
  hsrl_free(bc->members);
  hsrl_free(bc);
}

static hsrl_status unusable(const comm_bcast *bc) {
  char me[48];
  return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL,
                  "%s: broadcast group %d is unusable after an earlier error or timeout",
                  comm_peer_name(bc->ep, bc->ep->rank, me, sizeof me), bc->group_id);
}

hsrl_status comm_bcast_start(comm_bcast *bc, void *buf, int64_t bytes, int64_t policy_version) {
  HSRL_CHECKF(!bc->active, "broadcast group %d: start while the previous one is in flight", bc->group_id);
  HSRL_CHECKF(bytes >= 0 && (buf != NULL || bytes == 0), "broadcast of %" PRId64 " bytes", bytes);
  if (bc->broken) return unusable(bc);
  if (bytes > INT32_MAX) {
    char me[48];
    return hsrl_err(HSRL_E_USAGE, NULL, 0, NULL, "%s: a broadcast of %" PRId64 " bytes exceeds 2 GiB",
                    comm_peer_name(bc->ep, bc->ep->rank, me, sizeof me), bytes);
  }
  bc->buf = buf;
  bc->bytes = bytes;
  if (bc->is_root) {
    comm_header h = {.kind = COMM_KIND_PARAMS, .sender = 0, .policy_version = policy_version,
                     .config_hash = bc->ep->config_hash, .bytes = bytes};
    comm_frame_encode_header(bc->header, &h, buf);
    bc->sent = h;
    bc->sent.version = COMM_FRAME_VERSION;
    bc->sent.checksum = (uint32_t)bc->header[COMM_FRAME_CHECKSUM_OFFSET] |
                        (uint32_t)bc->header[COMM_FRAME_CHECKSUM_OFFSET + 1] << 8 |
                        (uint32_t)bc->header[COMM_FRAME_CHECKSUM_OFFSET + 2] << 16 |
                        (uint32_t)bc->header[COMM_FRAME_CHECKSUM_OFFSET + 3] << 24;
  } else {
    memset(bc->header, 0, sizeof bc->header);
  }
  hsrl_status st = bc->ep->ops->bcast_start(bc);
  if (st != HSRL_OK) {
    bc->broken = 1;
    return st;
  }
  bc->active = 1;
  return HSRL_OK;
}

/* A member checks what arrived: a PARAMS frame from rank 0 under our config. */
static hsrl_status verify_member(comm_bcast *bc, comm_header *hdr) {
  comm_header h;
  hsrl_status st = comm_frame_decode_header(&h, bc->header, bc->buf, bc->bytes);
  if (st == HSRL_OK && (h.kind != COMM_KIND_PARAMS || h.sender != 0))
    st = hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "a %s message claiming sender %d",
                  comm_kind_name(h.kind), h.sender);
  if (st == HSRL_OK && h.config_hash != bc->ep->config_hash)
    st = hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                  "written under config hash %016" PRIx64 ", this rank runs %016" PRIx64,
                  h.config_hash, bc->ep->config_hash);
  if (st != HSRL_OK) {
    char me[48], root[48];
    return hsrl_err_context(st, "%s: broadcast (group %d) from %s rejected",
                            comm_peer_name(bc->ep, bc->ep->rank, me, sizeof me), bc->group_id,
                            comm_peer_name(bc->ep, 0, root, sizeof root));
  }
  if (hdr) *hdr = h;
  return HSRL_OK;
}

static hsrl_status progress(comm_bcast *bc, double deadline, double deadline_s, int *done,
                            comm_header *hdr) {
  HSRL_CHECKF(bc->active, "broadcast group %d: test/wait without a started broadcast", bc->group_id);
  *done = 0;
  if (bc->broken) return unusable(bc);
  hsrl_watchdog_note(deadline_s < 0 ? "comm_bcast_test" : "comm_bcast_wait", bc->is_root ? -1 : 0);
  hsrl_status st = bc->ep->ops->bcast_progress(bc, deadline, done);
  hsrl_watchdog_note(NULL, -1);
  if (st == HSRL_E_TIMEOUT && deadline_s < 0) return HSRL_OK; /* a test: not done yet */
  if (st == HSRL_E_TIMEOUT) {
    char me[48], root[48];
    bc->broken = 1;
    if (bc->is_root)
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                      "%s: broadcast (group %d) not taken by all of its %d members within %g s",
                      comm_peer_name(bc->ep, 0, root, sizeof root), bc->group_id, bc->n_members, deadline_s);
    return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL, "%s got no broadcast (group %d) from %s within %g s",
                    comm_peer_name(bc->ep, bc->ep->rank, me, sizeof me), bc->group_id,
                    comm_peer_name(bc->ep, 0, root, sizeof root), deadline_s);
  }
  if (st != HSRL_OK) {
    bc->broken = 1;
    return st;
  }
  if (!*done) return HSRL_OK;
  bc->active = 0;
  if (bc->is_root) {
    if (hdr) *hdr = bc->sent;
    return HSRL_OK;
  }
  st = verify_member(bc, hdr);
  if (st != HSRL_OK) bc->broken = 1;
  return st;
}

hsrl_status comm_bcast_test(comm_bcast *bc, int *done, comm_header *hdr) {
  return progress(bc, -INFINITY, -1.0, done, hdr);
}

hsrl_status comm_bcast_wait(comm_bcast *bc, double deadline_s, comm_header *hdr) {
  HSRL_CHECKF(deadline_s >= 0 && isfinite(deadline_s), "deadline %g s", deadline_s);
  int done = 0;
  hsrl_status st = progress(bc, hsrl_time_now() + deadline_s, deadline_s, &done, hdr);
  HSRL_CHECK(st != HSRL_OK || done);
  return st;
}
