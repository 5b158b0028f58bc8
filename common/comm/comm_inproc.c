/* comm_inproc.c: the in-process transport of comm.h: N endpoints in one process, one role per
 * thread, with the MPI transport's semantics (framing and checksums, ordering, deadlines).
 *
 * Each endpoint owns an inbox: n_slots preallocated frame buffers of (40 + max_payload) bytes, a
 * mutex and two condition variables (CLOCK_MONOTONIC, so deadlines are hsrl_time_now() seconds).
 * A sender reserves a free slot (waiting on `freed` when the inbox is full: push back), builds
 * the frame in it without holding the lock, then queues it with the next sequence number; the
 * owner receives the queued matching slot with the smallest sequence number (the order sent, as
 * MPI's non-overtaking rule). Only the owner dequeues, so a probed slot cannot disappear before
 * it is taken. A broadcast group lives in the world: members copy straight from the root's
 * buffer and the root is done when every member has copied. Nothing allocates after open. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/comm/comm.h"
#include "common/comm/comm_impl.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_timer.h"

enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_QUEUED, SLOT_TAKEN };

typedef struct inproc_slot {
  uint8_t *frame; /* (40 + max_payload) */
  int64_t n_frame;
  int src, kind, state;
  uint64_t seq;
} inproc_slot;

typedef struct inproc_inbox {
  pthread_mutex_t mu;
  pthread_cond_t arrived; /* a message was queued (the owner waits on it) */
  pthread_cond_t freed;   /* a slot was freed (senders wait on it) */
  inproc_slot *slots;     /* (n_slots) */
  int n_used;             /* slots not FREE */
  uint64_t next_seq;
  int probed;             /* slot found by the owner's last probe */
} inproc_inbox;

typedef struct inproc_group {
  pthread_mutex_t mu;
  pthread_cond_t cv;     /* the root started one, or a member copied one */
  int n_open;
  int *members;          /* (size) the first opener's list; later openers must match it */
  int n_members;
  uint64_t seq;          /* broadcasts started by the root since the group opened */
  int n_taken;           /* members that copied broadcast `seq` */
  const uint8_t *header; /* the root's, valid while n_taken < n_members */
  const void *buf;
  int64_t bytes;
  int abandoned;         /* the root gave up (timeout or free while active) */
} inproc_group;

typedef struct inproc_world {
  inproc_inbox *inbox; /* (size) */
  int n_slots;
  int64_t slot_cap;
  uint8_t *frames;     /* (size * n_slots * slot_cap) */
  pthread_mutex_t barrier_mu;
  pthread_cond_t barrier_cv;
  int n_arrived;
  uint64_t generation;
  inproc_group groups[COMM_MAX_GROUPS];
  int *group_members;  /* (COMM_MAX_GROUPS * size) */
} inproc_world;

typedef struct inproc_member {
  uint64_t next; /* the broadcast (group seq) this member takes next */
} inproc_member;

static inproc_world *world_of(const comm *ep) { return ep->world->impl; }

static void cond_init(pthread_cond_t *cv) {
  pthread_condattr_t attr;
  HSRL_CHECK(pthread_condattr_init(&attr) == 0);
  HSRL_CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0);
  HSRL_CHECK(pthread_cond_init(cv, &attr) == 0);
  pthread_condattr_destroy(&attr);
}

/* Waits on cv until signalled or the absolute deadline. 0 when the deadline has passed. */
static int wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double deadline) {
  double now = hsrl_time_now();
  if (now >= deadline) return 0;
  if (deadline > now + 1e6) deadline = now + 1e6;
  struct timespec ts;
  ts.tv_sec = (time_t)deadline;
  ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
  int rc = pthread_cond_timedwait(cv, mu, &ts);
  HSRL_CHECKF(rc == 0 || rc == ETIMEDOUT, "pthread_cond_timedwait: %s", strerror(rc));
  return 1;
}

static hsrl_status inproc_send(comm *ep, int dest, const comm_header *hdr, const void *payload,
                               double deadline) {
  inproc_world *w = world_of(ep);
  inproc_inbox *box = &w->inbox[dest];
  pthread_mutex_lock(&box->mu);
  while (box->n_used == w->n_slots) {
    if (!wait_until(&box->freed, &box->mu, deadline)) {
      pthread_mutex_unlock(&box->mu);
      char me[48], peer[48];
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                      "%s could not send a %s message to %s before its deadline: the inbox of %s "
                      "stayed full (%d messages) -- is it receiving?",
                      comm_peer_name(ep, ep->rank, me, sizeof me), comm_kind_name(hdr->kind),
                      comm_peer_name(ep, dest, peer, sizeof peer), peer, w->n_slots);
    }
  }
  inproc_slot *slot = NULL;
  for (int i = 0; i < w->n_slots && !slot; i++)
    if (box->slots[i].state == SLOT_FREE) slot = &box->slots[i];
  HSRL_CHECK(slot != NULL);
  slot->state = SLOT_FILLING;
  box->n_used++;
  pthread_mutex_unlock(&box->mu);

  /* The copy happens outside the lock: the owner keeps receiving meanwhile. */
  int64_t n_frame = COMM_FRAME_HEADER_BYTES + hdr->bytes;
  hsrl_status st = comm_frame_write(slot->frame, w->slot_cap, hdr, payload);
  HSRL_CHECK(st == HSRL_OK); /* comm_send checked bytes <= max_payload */
  comm_tamper_apply(ep, slot->frame, n_frame);

  pthread_mutex_lock(&box->mu);
  slot->n_frame = n_frame;
  slot->src = ep->rank;
  slot->kind = hdr->kind;
  slot->seq = box->next_seq++;
  slot->state = SLOT_QUEUED;
  pthread_cond_signal(&box->arrived);
  pthread_mutex_unlock(&box->mu);
  return HSRL_OK;
}

static hsrl_status inproc_probe(comm *ep, int src, int kind, double deadline, comm_probe *info) {
  inproc_world *w = world_of(ep);
  inproc_inbox *box = &w->inbox[ep->rank];
  pthread_mutex_lock(&box->mu);
  for (;;) {
    int best = -1;
    for (int i = 0; i < w->n_slots; i++) {
      const inproc_slot *s = &box->slots[i];
      if (s->state != SLOT_QUEUED || (src != COMM_ANY && s->src != src) ||
          (kind != COMM_ANY && s->kind != kind))
        continue;
      if (best < 0 || s->seq < box->slots[best].seq) best = i;
    }
    if (best >= 0) {
      box->probed = best;
      info->src = box->slots[best].src;
      info->kind = box->slots[best].kind;
      info->bytes = box->slots[best].n_frame - COMM_FRAME_HEADER_BYTES;
      pthread_mutex_unlock(&box->mu);
      return HSRL_OK;
    }
    if (!wait_until(&box->arrived, &box->mu, deadline)) break;
  }
  pthread_mutex_unlock(&box->mu);
  return HSRL_E_TIMEOUT;
}

static hsrl_status inproc_take(comm *ep, const comm_probe *info, double deadline,
                               const uint8_t **frame, int64_t *n_frame) {
  (void)info, (void)deadline; /* a queued frame is whole */
  inproc_world *w = world_of(ep);
  inproc_inbox *box = &w->inbox[ep->rank];
  pthread_mutex_lock(&box->mu);
  inproc_slot *s = &box->slots[box->probed];
  HSRL_CHECK(s->state == SLOT_QUEUED);
  s->state = SLOT_TAKEN;
  *frame = s->frame;
  *n_frame = s->n_frame;
  pthread_mutex_unlock(&box->mu);
  return HSRL_OK;
}

static void inproc_release(comm *ep) {
  inproc_world *w = world_of(ep);
  inproc_inbox *box = &w->inbox[ep->rank];
  pthread_mutex_lock(&box->mu);
  inproc_slot *s = &box->slots[box->probed];
  HSRL_CHECK(s->state == SLOT_TAKEN);
  s->state = SLOT_FREE;
  box->n_used--;
  pthread_cond_broadcast(&box->freed);
  pthread_mutex_unlock(&box->mu);
}

static hsrl_status inproc_barrier(comm *ep, double deadline) {
  inproc_world *w = world_of(ep);
  hsrl_status st = HSRL_OK;
  pthread_mutex_lock(&w->barrier_mu);
  uint64_t gen = w->generation;
  if (++w->n_arrived == ep->size) {
    w->n_arrived = 0;
    w->generation++;
    pthread_cond_broadcast(&w->barrier_cv);
  } else {
    while (w->generation == gen) {
      if (!wait_until(&w->barrier_cv, &w->barrier_mu, deadline)) {
        w->n_arrived--; /* withdraw, so the barrier stays consistent for the others */
        st = HSRL_E_TIMEOUT;
        break;
      }
    }
  }
  pthread_mutex_unlock(&w->barrier_mu);
  return st;
}

static hsrl_status inproc_bcast_open(comm_bcast *bc) {
  inproc_world *w = world_of(bc->ep);
  inproc_group *g = &w->groups[bc->group_id];
  hsrl_status st = HSRL_OK;
  pthread_mutex_lock(&g->mu);
  if (g->n_open == 0) {
    memcpy(g->members, bc->members, (size_t)bc->n_members * sizeof *g->members);
    g->n_members = bc->n_members;
    g->seq = 0;
    g->n_taken = 0;
    g->header = NULL;
    g->buf = NULL;
    g->abandoned = 0;
  } else if (g->n_members != bc->n_members ||
             memcmp(g->members, bc->members, (size_t)bc->n_members * sizeof *g->members) != 0) {
    char me[48];
    st = hsrl_err(HSRL_E_USAGE, NULL, 0, NULL,
                  "%s opens broadcast group %d with a member list other than the one it was opened with",
                  comm_peer_name(bc->ep, bc->ep->rank, me, sizeof me), bc->group_id);
  }
  if (st == HSRL_OK) g->n_open++;
  pthread_mutex_unlock(&g->mu);
  if (st == HSRL_OK && !bc->is_root) {
    inproc_member *m = hsrl_calloc(1, sizeof *m);
    m->next = 1;
    bc->impl = m;
  }
  return st;
}

static hsrl_status inproc_bcast_start(comm_bcast *bc) {
  if (!bc->is_root) return HSRL_OK; /* a member only waits for the root's next one */
  inproc_group *g = &world_of(bc->ep)->groups[bc->group_id];
  pthread_mutex_lock(&g->mu);
  g->seq++;
  g->n_taken = 0;
  g->header = bc->header;
  g->buf = bc->buf;
  g->bytes = bc->bytes;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  return HSRL_OK;
}

static hsrl_status inproc_bcast_progress(comm_bcast *bc, double deadline, int *done) {
  inproc_group *g = &world_of(bc->ep)->groups[bc->group_id];
  inproc_member *m = bc->impl;
  hsrl_status st = HSRL_E_TIMEOUT;
  pthread_mutex_lock(&g->mu);
  for (;;) {
    if (bc->is_root && g->n_taken >= g->n_members) {
      g->header = NULL;
      g->buf = NULL;
      st = HSRL_OK;
      break;
    }
    if (!bc->is_root && g->abandoned) {
      char me[48], root[48];
      st = hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL, "%s: %s abandoned broadcast group %d",
                    comm_peer_name(bc->ep, bc->ep->rank, me, sizeof me),
                    comm_peer_name(bc->ep, 0, root, sizeof root), bc->group_id);
      break;
    }
    if (!bc->is_root && g->seq == m->next) {
      HSRL_CHECK(g->header != NULL);
      memcpy(bc->header, g->header, COMM_FRAME_HEADER_BYTES);
      int64_t n = g->bytes < bc->bytes ? g->bytes : bc->bytes; /* a mismatch fails verification */
      if (n > 0) memcpy(bc->buf, g->buf, (size_t)n);
      m->next++;
      g->n_taken++;
      pthread_cond_broadcast(&g->cv);
      st = HSRL_OK;
      break;
    }
    HSRL_CHECKF(bc->is_root || g->seq < m->next, "member skipped broadcast %" PRIu64, m->next);
    if (!wait_until(&g->cv, &g->mu, deadline)) break;
  }
  pthread_mutex_unlock(&g->mu);
  *done = st == HSRL_OK;
  return st;
}

static void inproc_bcast_free(comm_bcast *bc) {
  inproc_group *g = &world_of(bc->ep)->groups[bc->group_id];
  pthread_mutex_lock(&g->mu);
  if (bc->is_root && (bc->active || bc->broken) && g->n_taken < g->n_members) {
    g->abandoned = 1; /* members must not copy from a buffer the root takes back */
    g->header = NULL;
    g->buf = NULL;
    pthread_cond_broadcast(&g->cv);
  }
  g->n_open--;
  pthread_mutex_unlock(&g->mu);
  hsrl_free(bc->impl);
  bc->impl = NULL;
}

static void inproc_world_free(comm_world *cw) {
  inproc_world *w = cw->impl;
  for (int r = 0; r < cw->size; r++) {
    pthread_mutex_destroy(&w->inbox[r].mu);
    pthread_cond_destroy(&w->inbox[r].arrived);
    pthread_cond_destroy(&w->inbox[r].freed);
    hsrl_free(w->inbox[r].slots);
  }
  for (int g = 0; g < COMM_MAX_GROUPS; g++) {
    pthread_mutex_destroy(&w->groups[g].mu);
    pthread_cond_destroy(&w->groups[g].cv);
  }
  pthread_mutex_destroy(&w->barrier_mu);
  pthread_cond_destroy(&w->barrier_cv);
  hsrl_free(w->group_members);
  hsrl_free(w->frames);
  hsrl_free(w->inbox);
  hsrl_free(w);
  hsrl_free(cw->local);
  hsrl_free(cw);
}

static const comm_ops inproc_ops = {
    .send = inproc_send,
    .probe = inproc_probe,
    .take = inproc_take,
    .release = inproc_release,
    .barrier = inproc_barrier,
    .bcast_open = inproc_bcast_open,
    .bcast_start = inproc_bcast_start,
    .bcast_progress = inproc_bcast_progress,
    .bcast_free = inproc_bcast_free,
    .world_free = inproc_world_free,
};

hsrl_status comm_inproc_world_open(comm_world **out, const comm_config *cfg) {
  int size = cfg->n_ranks;
  comm_world *cw = hsrl_calloc(1, sizeof *cw);
  cw->ops = &inproc_ops;
  cw->size = size;
  cw->n_local = size;
  cw->is_mpi = 0;
  cw->cfg = *cfg;
  cw->cfg.transport = COMM_TRANSPORT_INPROC;

  inproc_world *w = hsrl_calloc(1, sizeof *w);
  cw->impl = w;
  w->n_slots = cfg->n_slots;
  w->slot_cap = (COMM_FRAME_HEADER_BYTES + cfg->max_payload_bytes + 63) / 64 * 64;
  size_t n_frames = (size_t)size * (size_t)cfg->n_slots;
  HSRL_CHECKF((size_t)w->slot_cap <= SIZE_MAX / n_frames, "inbox memory overflows size_t");
  w->frames = hsrl_malloc(n_frames * (size_t)w->slot_cap); /* touched only as messages arrive */
  w->inbox = hsrl_calloc((size_t)size, sizeof *w->inbox);
  for (int r = 0; r < size; r++) {
    inproc_inbox *box = &w->inbox[r];
    HSRL_CHECK(pthread_mutex_init(&box->mu, NULL) == 0);
    cond_init(&box->arrived);
    cond_init(&box->freed);
    box->slots = hsrl_calloc((size_t)cfg->n_slots, sizeof *box->slots);
    for (int i = 0; i < cfg->n_slots; i++)
      box->slots[i].frame = w->frames + ((size_t)r * (size_t)cfg->n_slots + (size_t)i) * (size_t)w->slot_cap;
  }
  HSRL_CHECK(pthread_mutex_init(&w->barrier_mu, NULL) == 0);
  cond_init(&w->barrier_cv);
  w->group_members = hsrl_calloc((size_t)COMM_MAX_GROUPS * (size_t)size, sizeof *w->group_members);
  for (int g = 0; g < COMM_MAX_GROUPS; g++) {
    HSRL_CHECK(pthread_mutex_init(&w->groups[g].mu, NULL) == 0);
    cond_init(&w->groups[g].cv);
    w->groups[g].members = w->group_members + (size_t)g * (size_t)size;
  }

  cw->local = hsrl_calloc((size_t)size, sizeof *cw->local);
  for (int r = 0; r < size; r++) comm_endpoint_init(&cw->local[r], cw, r);
  *out = cw;
  return HSRL_OK;
}
