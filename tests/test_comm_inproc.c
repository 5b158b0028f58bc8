/* test_comm_inproc.c: the in-process transport (common/comm/comm_inproc.c) through the comm.h
 * API, with one thread per rank: ordered ring ping-pong, bursts through a small inbox, source and
 * kind filters, push back from a full inbox, deadlines that turn a dead or silent peer into a
 * timeout error (never a hang), corrupt and forged frames rejected with the endpoint still
 * usable, the parameter broadcast (and its size mismatch and timeouts), and zero allocations in
 * the steady-state message and broadcast loops.
 *
 * Threads do not use TEST_ASSERT (the harness is single-threaded): each records its first
 * failure in its rank_ctx, and the main thread asserts on them after joining. Error messages are
 * read only when no other thread can be producing one (hsrl_err keeps one message per process). */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/comm/comm.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "tests/test_harness.h"

#define MAX_RANKS 4
#define BIG_DEADLINE 20.0 /* generous: only a hang (a bug) reaches it */

typedef struct rank_ctx {
  comm *ep;
  int failed;
  char why[1024];
  int64_t n_alloc_before, n_alloc_after;
} rank_ctx;

static void rank_fail(rank_ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rank_fail(rank_ctx *c, int line, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = 1;
  int n = snprintf(c->why, sizeof c->why, "line %d: ", line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why + n, sizeof c->why - (size_t)n, fmt, ap);
  va_end(ap);
}

#define RANK_CHECK(c, cond, ...) \
  do { if (!(cond)) { rank_fail(c, __LINE__, __VA_ARGS__); return NULL; } } while (0)
#define RANK_OK(c, expr)                                                                        \
  do {                                                                                          \
    hsrl_status rank_st_ = (expr);                                                              \
    if (rank_st_ != HSRL_OK) { rank_fail(c, __LINE__, "%s: %s", #expr, hsrl_err_message()); return NULL; } \
  } while (0)

static comm_world *open_world(int n_ranks, int n_replay, int n_slots, int64_t max_payload) {
  comm_config cfg = comm_config_defaults();
  cfg.transport = COMM_TRANSPORT_INPROC;
  cfg.n_ranks = n_ranks;
  cfg.n_replay_shards = n_replay;
  cfg.n_slots = n_slots;
  cfg.max_payload_bytes = max_payload;
  cfg.config_hash = 0x1234abcd5678ef00ull;
  comm_world *w = NULL;
  HSRL_CHECKF(comm_world_open(&w, &cfg) == HSRL_OK, "%s", hsrl_err_message());
  return w;
}

/* Runs fn on one thread per rank (fns[r], or fns[0] for all when fns[1] is NULL) and joins. */
static void run_ranks(comm_world *w, void *(*const *fns)(void *), rank_ctx *ctx) {
  pthread_t t[MAX_RANKS];
  int n = comm_world_n_local(w);
  HSRL_CHECK(n <= MAX_RANKS);
  for (int r = 0; r < n; r++) {
    memset(&ctx[r], 0, sizeof ctx[r]);
    ctx[r].ep = comm_world_local(w, r);
    void *(*fn)(void *) = fns[1] ? fns[r] : fns[0];
    HSRL_CHECK(pthread_create(&t[r], NULL, fn, &ctx[r]) == 0);
  }
  for (int r = 0; r < n; r++) pthread_join(t[r], NULL);
}

#define ASSERT_RANKS_OK(ctx, n)                                                           \
  do {                                                                                    \
    for (int r_ = 0; r_ < (n); r_++) TEST_ASSERTF(!(ctx)[r_].failed, "rank %d: %s", r_, (ctx)[r_].why); \
  } while (0)

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* ---- ring ping-pong and bursts ---- */

#define N_RING 1000
#define N_BURST 200

typedef struct ring_msg {
  int64_t i;
  uint8_t fill[120];
} ring_msg;

static void *ring_rank(void *arg) {
  rank_ctx *c = arg;
  int me = comm_rank(c->ep), n = comm_size(c->ep);
  int next = (me + 1) % n, prev = (me + n - 1) % n;
  for (int64_t i = 0; i < N_RING; i++) {
    ring_msg m;
    comm_header h;
    int64_t bytes = 8 + (i % 121); /* varying sizes */
    if (me == 0) {
      memset(&m, 0, sizeof m);
      m.i = i;
      memset(m.fill, (int)(i & 0xff), sizeof m.fill);
      RANK_OK(c, comm_send(c->ep, next, COMM_KIND_PING, i, &m, bytes, BIG_DEADLINE));
      RANK_OK(c, comm_recv(c->ep, prev, COMM_KIND_PING, &m, sizeof m, BIG_DEADLINE, &h));
    } else {
      RANK_OK(c, comm_recv(c->ep, prev, COMM_KIND_PING, &m, sizeof m, BIG_DEADLINE, &h));
      RANK_OK(c, comm_send(c->ep, next, COMM_KIND_PING, h.policy_version, &m, h.bytes, BIG_DEADLINE));
    }
    RANK_CHECK(c, m.i == i, "round %" PRId64 " got message %" PRId64, i, m.i);
    RANK_CHECK(c, h.sender == prev && h.policy_version == i && h.bytes == bytes && h.kind == COMM_KIND_PING,
               "round %" PRId64 ": header sender %d version %" PRId64 " bytes %" PRId64, i, h.sender,
               h.policy_version, h.bytes);
    for (int64_t k = 0; k < bytes - 8; k++)
      RANK_CHECK(c, m.fill[k] == (uint8_t)(i & 0xff), "round %" PRId64 " byte %" PRId64, i, k);
  }
  /* A burst far larger than the inbox: rank 0 -> 1 with no reply, so the sender is pushed back
   * and must resume in order as rank 1 drains. */
  if (me == 0)
    for (int64_t i = 0; i < N_BURST; i++)
      RANK_OK(c, comm_send(c->ep, 1, COMM_KIND_TRANSITIONS, i, &i, sizeof i, BIG_DEADLINE));
  if (me == 1)
    for (int64_t i = 0; i < N_BURST; i++) {
      int64_t got = -1;
      RANK_OK(c, comm_recv(c->ep, 0, COMM_KIND_TRANSITIONS, &got, sizeof got, BIG_DEADLINE, NULL));
      RANK_CHECK(c, got == i, "burst message %" PRId64 " arrived as number %" PRId64, got, i);
    }
  return NULL;
}

static void test_ring_ping_pong_in_order(void) {
  comm_world *w = open_world(3, 1, 4, 256);
  rank_ctx ctx[MAX_RANKS];
  void *(*const fns[2])(void *) = {ring_rank, NULL};
  run_ranks(w, fns, ctx);
  comm_world_free(w);
  ASSERT_RANKS_OK(ctx, 3);
}

/* ---- filters, poll, a buffer too small (one thread drives all endpoints) ---- */

static void test_filters_poll_and_small_buffer(void) {
  comm_world *w = open_world(3, 1, 8, 64);
  comm *e0 = comm_world_local(w, 0), *e1 = comm_world_local(w, 1), *e2 = comm_world_local(w, 2);
  int found = -1;
  comm_probe info;
  TEST_ASSERT(comm_poll(e0, COMM_ANY, COMM_ANY, &found, &info) == HSRL_OK && found == 0);
  const char *a = "a1", *b = "b-stats", *cc = "c2", *d = "d1";
  TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 1, a, 3, 1.0) == HSRL_OK);
  TEST_ASSERT(comm_send(e1, 0, COMM_KIND_STATS, 2, b, 8, 1.0) == HSRL_OK);
  TEST_ASSERT(comm_send(e2, 0, COMM_KIND_PING, 3, cc, 3, 1.0) == HSRL_OK);
  TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 4, d, 3, 1.0) == HSRL_OK);
  TEST_ASSERT(comm_send(e0, 0, COMM_KIND_HELLO, 5, NULL, 0, 1.0) == HSRL_OK); /* to itself, empty */

  TEST_ASSERT(comm_poll(e0, COMM_ANY, COMM_ANY, &found, &info) == HSRL_OK && found == 1);
  TEST_ASSERT(info.src == 1 && info.kind == COMM_KIND_PING && info.bytes == 3);
  TEST_ASSERT(comm_poll(e0, 2, COMM_ANY, &found, &info) == HSRL_OK && found == 1 && info.src == 2);
  TEST_ASSERT(comm_poll(e0, COMM_ANY, COMM_KIND_STATS, &found, &info) == HSRL_OK && found == 1);
  TEST_ASSERT(info.src == 1 && info.bytes == 8);
  TEST_ASSERT(comm_poll(e0, 2, COMM_KIND_STATS, &found, &info) == HSRL_OK && found == 0);
  TEST_ASSERT(comm_poll(e1, COMM_ANY, COMM_ANY, &found, &info) == HSRL_OK && found == 0);

  char buf[64];
  comm_header h;
  /* Too small: an input error naming the sizes, and the message stays queued. */
  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_KIND_STATS, buf, 4, 1.0, &h) == HSRL_E_INPUT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "a STATS message of 8 bytes from rank 1 (replay) does not fit "
                                          "the 4-byte receive buffer") != NULL,
               "%s", hsrl_err_message());
  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_KIND_STATS, buf, sizeof buf, 1.0, &h) == HSRL_OK);
  TEST_ASSERT(strcmp(buf, "b-stats") == 0 && h.policy_version == 2 && h.sender == 1);
  TEST_ASSERT(comm_recv(e0, 2, COMM_ANY, buf, sizeof buf, 1.0, &h) == HSRL_OK);
  TEST_ASSERT(strcmp(buf, "c2") == 0 && h.sender == 2 && h.kind == COMM_KIND_PING);
  /* The rest in the order sent. */
  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_ANY, buf, sizeof buf, 1.0, &h) == HSRL_OK);
  TEST_ASSERT(strcmp(buf, "a1") == 0 && h.policy_version == 1);
  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_ANY, buf, sizeof buf, 1.0, &h) == HSRL_OK);
  TEST_ASSERT(strcmp(buf, "d1") == 0 && h.policy_version == 4);
  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_ANY, NULL, 0, 1.0, &h) == HSRL_OK);
  TEST_ASSERT(h.kind == COMM_KIND_HELLO && h.sender == 0 && h.bytes == 0);
  TEST_ASSERT(comm_poll(e0, COMM_ANY, COMM_ANY, &found, &info) == HSRL_OK && found == 0);
  TEST_ASSERT(h.config_hash == 0x1234abcd5678ef00ull);

  /* A payload over the configured maximum is refused at the sender. */
  char big[65] = {0};
  TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 0, big, 65, 1.0) == HSRL_E_USAGE);
  TEST_ASSERTF(strstr(hsrl_err_message(), "exceeds the transport's largest payload of 64 bytes") != NULL,
               "%s", hsrl_err_message());
  comm_world_free(w);
}

/* ---- push back from a full inbox ---- */

static void *drain_late(void *arg) {
  rank_ctx *c = arg;
  sleep_s(0.3);
  for (int64_t i = 0; i < 5; i++) {
    int64_t got = -1;
    RANK_OK(c, comm_recv(c->ep, 1, COMM_KIND_PING, &got, sizeof got, BIG_DEADLINE, NULL));
    RANK_CHECK(c, got == i, "message %" PRId64 " arrived as number %" PRId64, got, i);
  }
  return NULL;
}

static void test_full_inbox_pushes_back(void) {
  comm_world *w = open_world(2, 1, 4, 16);
  comm *e1 = comm_world_local(w, 1);
  for (int64_t i = 0; i < 4; i++) TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 0, &i, sizeof i, 1.0) == HSRL_OK);
  int64_t five = 4;
  double t0 = hsrl_time_now();
  TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 0, &five, sizeof five, 0.2) == HSRL_E_TIMEOUT);
  double waited = hsrl_time_now() - t0;
  TEST_ASSERTF(waited >= 0.19 && waited < 2.0, "waited %.3f s for a 0.2 s deadline", waited);
  TEST_ASSERTF(strstr(hsrl_err_message(), "rank 1 (replay) could not send a PING message to rank 0 (learner) "
                                          "before its deadline") != NULL &&
                   strstr(hsrl_err_message(), "stayed full (4 messages)") != NULL,
               "%s", hsrl_err_message());

  /* Now a receiver that starts late: the send waits (pushed back), then goes through in order. */
  rank_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.ep = comm_world_local(w, 0);
  pthread_t t;
  TEST_ASSERT(pthread_create(&t, NULL, drain_late, &ctx) == 0);
  t0 = hsrl_time_now();
  hsrl_status st = comm_send(e1, 0, COMM_KIND_PING, 0, &five, sizeof five, 10.0);
  waited = hsrl_time_now() - t0;
  pthread_join(t, NULL);
  TEST_ASSERT(st == HSRL_OK);
  TEST_ASSERTF(waited >= 0.2, "the fifth send did not wait for space (%.3f s)", waited);
  TEST_ASSERTF(!ctx.failed, "receiver: %s", ctx.why);
  comm_world_free(w);
}

/* ---- deadlines: a dead or silent peer is an error, not a hang ---- */

static void *send_one_and_exit(void *arg) {
  rank_ctx *c = arg;
  int64_t v = 42;
  if (comm_rank(c->ep) == 1) RANK_OK(c, comm_send(c->ep, 0, COMM_KIND_STATS, 7, &v, sizeof v, 1.0));
  return NULL; /* rank 2 exits at once: dead without a word */
}

static void *barrier_rank(void *arg) {
  rank_ctx *c = arg;
  for (int i = 0; i < 5; i++) RANK_OK(c, comm_barrier(c->ep, BIG_DEADLINE));
  return NULL;
}

static void test_deadline_turns_dead_peer_into_error(void) {
  comm_world *w = open_world(3, 1, 4, 64);
  rank_ctx ctx[MAX_RANKS];
  void *(*const fns[2])(void *) = {send_one_and_exit, NULL};
  run_ranks(w, fns, ctx); /* ranks 1 and 2 have finished: only rank 0 is left */
  ASSERT_RANKS_OK(ctx, 3);
  comm *e0 = comm_world_local(w, 0);
  int64_t v = 0;
  TEST_ASSERT(comm_recv(e0, 1, COMM_ANY, &v, sizeof v, 1.0, NULL) == HSRL_OK && v == 42);

  double t0 = hsrl_time_now();
  TEST_ASSERT(comm_recv(e0, 2, COMM_ANY, &v, sizeof v, 0.3, NULL) == HSRL_E_TIMEOUT);
  double waited = hsrl_time_now() - t0;
  TEST_ASSERTF(waited >= 0.29 && waited < 2.0, "waited %.3f s for a 0.3 s deadline", waited);
  TEST_ASSERTF(strcmp(hsrl_err_message(), "rank 0 (learner) got no message from rank 2 (actor) within 0.3 s") == 0,
               "%s", hsrl_err_message());

  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_KIND_SAMPLE_BATCH, &v, sizeof v, 0.1, NULL) == HSRL_E_TIMEOUT);
  TEST_ASSERTF(strcmp(hsrl_err_message(),
                      "rank 0 (learner) got no SAMPLE_BATCH message from any rank within 0.1 s") == 0,
               "%s", hsrl_err_message());
  t0 = hsrl_time_now();
  TEST_ASSERT(comm_recv(e0, COMM_ANY, COMM_ANY, &v, sizeof v, 0.0, NULL) == HSRL_E_TIMEOUT);
  TEST_ASSERT(hsrl_time_now() - t0 < 0.05); /* deadline 0: one look */

  /* A barrier the others never reach times out, and withdrawing keeps the barrier consistent: the
   * next full barriers still need all three ranks (a stale arrival would release them early and
   * leave the last rank waiting until its deadline). */
  t0 = hsrl_time_now();
  TEST_ASSERT(comm_barrier(e0, 0.2) == HSRL_E_TIMEOUT);
  TEST_ASSERT(hsrl_time_now() - t0 >= 0.19);
  TEST_ASSERTF(strstr(hsrl_err_message(), "rank 0 (learner): not every one of the 3 ranks reached the barrier "
                                          "within 0.2 s") != NULL,
               "%s", hsrl_err_message());
  void *(*const bfns[2])(void *) = {barrier_rank, NULL};
  run_ranks(w, bfns, ctx);
  ASSERT_RANKS_OK(ctx, 3);
  comm_world_free(w);
}

/* ---- corrupt and forged frames ---- */

static void test_corrupt_frames_rejected(void) {
  comm_world *w = open_world(2, 1, 4, 64);
  comm *e0 = comm_world_local(w, 0), *e1 = comm_world_local(w, 1);
  struct {
    int64_t offset;
    uint8_t xor_mask;
    int reseal;
    const char *want;
  } cases[] = {
      {COMM_FRAME_HEADER_BYTES + 3, 0x04, 0, "checksum mismatch in a PING message of 16 bytes"},
      {0, 0x01, 0, "bad magic"},
      {4, 0x02, 1, "message format version 3, this build reads version 1"},
      {6, COMM_KIND_PING ^ COMM_KIND_PARAMS, 1, "the header says kind PARAMS, it was sent as PING"},
      {8, 0x01, 1, "the header claims sender rank 0"},
      {24, 0x40, 1, "written under config hash 1234abcd5678ef40, this rank runs 1234abcd5678ef00"},
      {32, 0x01, 1, "length mismatch"},
      {13, 0x10, 0, "checksum mismatch"},
  };
  const char *prefix = "rank 0 (learner): message from rank 1 (replay) rejected: ";
  char payload[16] = "fifteen chars..", buf[64];
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    comm_debug_tamper_next_send(e1, cases[k].offset, cases[k].xor_mask, cases[k].reseal);
    TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 9, payload, sizeof payload, 1.0) == HSRL_OK);
    TEST_ASSERT(comm_send(e1, 0, COMM_KIND_PING, 10, payload, sizeof payload, 1.0) == HSRL_OK); /* clean */
    hsrl_err_clear();
    TEST_ASSERTF(comm_recv(e0, 1, COMM_ANY, buf, sizeof buf, 1.0, NULL) == HSRL_E_CORRUPT, "case %zu accepted", k);
    const char *msg = hsrl_err_message();
    TEST_ASSERTF(strncmp(msg, prefix, strlen(prefix)) == 0 && strstr(msg, cases[k].want) != NULL,
                 "case %zu: wanted '%s', got: %s", k, cases[k].want, msg);
    /* The bad one was consumed; the endpoint keeps working. */
    comm_header h;
    TEST_ASSERT(comm_recv(e0, 1, COMM_ANY, buf, sizeof buf, 1.0, &h) == HSRL_OK);
    TEST_ASSERT(h.policy_version == 10 && memcmp(buf, payload, sizeof payload) == 0);
  }
  comm_world_free(w);
}

/* ---- broadcast ---- */

#define N_PARAMS 10007
#define N_BCAST_ROUNDS 6

static void fill_params(float *p, int64_t n, uint64_t round) {
  hsrl_rng r;
  hsrl_rng_init(&r, 77, round);
  for (int64_t i = 0; i < n; i++) p[i] = (float)hsrl_rng_normal(&r);
}

static void *bcast_rank(void *arg) {
  rank_ctx *c = arg;
  const int members[2] = {1, 2};
  comm_bcast *bc = NULL;
  RANK_OK(c, comm_bcast_open(&bc, c->ep, 0, members, 2));
  float *params = hsrl_malloc(N_PARAMS * sizeof *params), *want = hsrl_malloc(N_PARAMS * sizeof *want);
  for (int round = 0; round < N_BCAST_ROUNDS && !c->failed; round++) {
    comm_header h;
    int done = 0;
    double give_up = hsrl_time_now() + BIG_DEADLINE;
    if (comm_rank(c->ep) == 0) {
      fill_params(params, N_PARAMS, (uint64_t)round);
      if (comm_bcast_start(bc, params, N_PARAMS * sizeof *params, 100 + round) != HSRL_OK) {
        rank_fail(c, __LINE__, "start: %s", hsrl_err_message());
        break;
      }
      while (!done && !c->failed) { /* the learner keeps updating; it only tests */
        if (comm_bcast_test(bc, &done, &h) != HSRL_OK) rank_fail(c, __LINE__, "test: %s", hsrl_err_message());
        if (hsrl_time_now() > give_up) rank_fail(c, __LINE__, "root round %d never completed", round);
        sleep_s(1e-4);
      }
      if (!c->failed && (h.policy_version != 100 + round || h.kind != COMM_KIND_PARAMS))
        rank_fail(c, __LINE__, "root header version %" PRId64, h.policy_version);
    } else {
      memset(params, 0, N_PARAMS * sizeof *params);
      if (comm_bcast_start(bc, params, N_PARAMS * sizeof *params, 0) != HSRL_OK) {
        rank_fail(c, __LINE__, "start: %s", hsrl_err_message());
        break;
      }
      if (round == 2) { /* one round with a blocking wait */
        if (comm_bcast_wait(bc, BIG_DEADLINE, &h) != HSRL_OK) rank_fail(c, __LINE__, "wait: %s", hsrl_err_message());
      } else {
        while (!done && !c->failed) { /* an actor tests between environment steps */
          if (comm_bcast_test(bc, &done, &h) != HSRL_OK) rank_fail(c, __LINE__, "test: %s", hsrl_err_message());
          if (hsrl_time_now() > give_up) rank_fail(c, __LINE__, "member round %d never arrived", round);
          sleep_s(2e-4);
        }
      }
      fill_params(want, N_PARAMS, (uint64_t)round);
      if (!c->failed && memcmp(params, want, N_PARAMS * sizeof *params) != 0)
        rank_fail(c, __LINE__, "round %d: parameters differ from the root's", round);
      if (!c->failed && (h.policy_version != 100 + round || h.sender != 0 ||
                         h.bytes != (int64_t)(N_PARAMS * sizeof *params)))
        rank_fail(c, __LINE__, "round %d: header version %" PRId64 " sender %d bytes %" PRId64, round,
                  h.policy_version, h.sender, h.bytes);
    }
  }
  hsrl_free(params);
  hsrl_free(want);
  comm_bcast_free(bc);
  return NULL;
}

static void test_broadcast_equal_on_every_member(void) {
  comm_world *w = open_world(3, 0, 4, 64);
  rank_ctx ctx[MAX_RANKS];
  void *(*const fns[2])(void *) = {bcast_rank, NULL};
  run_ranks(w, fns, ctx);
  comm_world_free(w);
  ASSERT_RANKS_OK(ctx, 3);
}

static void *bcast_size_mismatch_rank(void *arg) {
  rank_ctx *c = arg;
  const int members[1] = {1};
  comm_bcast *bc = NULL;
  RANK_OK(c, comm_bcast_open(&bc, c->ep, 3, members, 1));
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int me = comm_rank(c->ep);
  RANK_OK(c, comm_bcast_start(bc, v, me == 0 ? sizeof v : sizeof v - 4, 5));
  hsrl_status st = comm_bcast_wait(bc, BIG_DEADLINE, NULL);
  if (me == 0) RANK_CHECK(c, st == HSRL_OK, "root: %s", hsrl_err_message());
  else
    RANK_CHECK(c, st == HSRL_E_CORRUPT && strstr(hsrl_err_message(), "length mismatch") != NULL &&
                      strstr(hsrl_err_message(), "rank 1 (actor): broadcast (group 3) from rank 0 (learner) rejected") != NULL,
               "member: status %d: %s", (int)st, hsrl_err_message());
  comm_bcast_free(bc);
  return NULL;
}

static void test_broadcast_errors(void) {
  /* Sizes that differ between root and member: the member rejects it (only it reports an error). */
  comm_world *w = open_world(2, 0, 4, 64);
  rank_ctx ctx[MAX_RANKS];
  void *(*const fns[2])(void *) = {bcast_size_mismatch_rank, NULL};
  run_ranks(w, fns, ctx);
  ASSERT_RANKS_OK(ctx, 2);
  comm_world_free(w);

  /* A member that never shows up: the root's wait times out; a root that never sends: so does the
   * member's. Different member lists for one group are refused. */
  w = open_world(3, 0, 4, 64);
  comm *e0 = comm_world_local(w, 0), *e1 = comm_world_local(w, 1);
  const int members[2] = {1, 2};
  comm_bcast *root = NULL, *member = NULL;
  float v[4] = {0};
  TEST_ASSERT(comm_bcast_open(&root, e0, 1, members, 2) == HSRL_OK);
  TEST_ASSERT(comm_bcast_start(root, v, sizeof v, 1) == HSRL_OK);
  double t0 = hsrl_time_now();
  TEST_ASSERT(comm_bcast_wait(root, 0.2, NULL) == HSRL_E_TIMEOUT);
  TEST_ASSERT(hsrl_time_now() - t0 >= 0.19);
  TEST_ASSERTF(strcmp(hsrl_err_message(),
                      "rank 0 (learner): broadcast (group 1) not taken by all of its 2 members within 0.2 s") == 0,
               "%s", hsrl_err_message());
  int done = 0;
  TEST_ASSERT(comm_bcast_test(root, &done, NULL) == HSRL_E_INTERNAL); /* broken after a timeout */
  TEST_ASSERT(strstr(hsrl_err_message(), "unusable") != NULL);
  comm_bcast_free(root);

  TEST_ASSERT(comm_bcast_open(&member, e1, 2, members, 2) == HSRL_OK);
  const int other[1] = {2};
  comm_bcast *wrong = NULL;
  TEST_ASSERT(comm_bcast_open(&wrong, e0, 2, other, 1) == HSRL_E_USAGE);
  TEST_ASSERT(wrong == NULL && strstr(hsrl_err_message(), "member list") != NULL);
  TEST_ASSERT(comm_bcast_start(member, v, sizeof v, 0) == HSRL_OK);
  TEST_ASSERT(comm_bcast_test(member, &done, NULL) == HSRL_OK && done == 0);
  TEST_ASSERT(comm_bcast_wait(member, 0.2, NULL) == HSRL_E_TIMEOUT);
  TEST_ASSERTF(strcmp(hsrl_err_message(), "rank 1 (actor) got no broadcast (group 2) from rank 0 (learner) within 0.2 s") == 0,
               "%s", hsrl_err_message());
  comm_bcast_free(member);
  comm_world_free(w);
}

/* ---- zero allocations in the steady state ---- */

#define N_STEADY 1000

static void *steady_rank(void *arg) {
  rank_ctx *c = arg;
  int me = comm_rank(c->ep), n = comm_size(c->ep);
  int next = (me + 1) % n, prev = (me + n - 1) % n;
  const int members[2] = {1, 2};
  comm_bcast *bc = NULL;
  int64_t before = hsrl_alloc_count();
  RANK_OK(c, comm_bcast_open(&bc, c->ep, 0, members, 2));
  RANK_CHECK(c, hsrl_alloc_count() > before, "the counter did not see comm_bcast_open allocate");
  float params[256];
  for (int phase = 0; phase < 2; phase++) { /* 0: warm-up, 1: measured */
    RANK_OK(c, comm_barrier(c->ep, BIG_DEADLINE));
    if (phase == 1) c->n_alloc_before = hsrl_alloc_count();
    RANK_OK(c, comm_barrier(c->ep, BIG_DEADLINE)); /* between here and the next barrier: only the loop */
    int n_rounds = phase == 0 ? 50 : N_STEADY;
    for (int64_t i = 0; i < n_rounds; i++) {
      uint64_t m[8] = {(uint64_t)i};
      comm_header h;
      if (me == 0) RANK_OK(c, comm_send(c->ep, next, COMM_KIND_PING, i, m, sizeof m, BIG_DEADLINE));
      RANK_OK(c, comm_recv(c->ep, prev, COMM_KIND_PING, m, sizeof m, BIG_DEADLINE, &h));
      RANK_CHECK(c, m[0] == (uint64_t)i, "round %" PRId64, i);
      if (me != 0) RANK_OK(c, comm_send(c->ep, next, COMM_KIND_PING, i, m, sizeof m, BIG_DEADLINE));
      if (i % 100 == 0) {
        int done = 0;
        params[0] = (float)i;
        RANK_OK(c, comm_bcast_start(bc, params, sizeof params, i));
        if (me == 0) RANK_OK(c, comm_bcast_wait(bc, BIG_DEADLINE, &h));
        while (me != 0 && !done) RANK_OK(c, comm_bcast_test(bc, &done, &h));
        RANK_CHECK(c, params[0] == (float)i && h.policy_version == i, "broadcast round %" PRId64, i);
      }
    }
    RANK_OK(c, comm_barrier(c->ep, BIG_DEADLINE));
    if (phase == 1) c->n_alloc_after = hsrl_alloc_count();
    RANK_OK(c, comm_barrier(c->ep, BIG_DEADLINE)); /* the counter is shared: read it before anyone allocates */
  }
  comm_bcast_free(bc);
  return NULL;
}

static void test_zero_allocations_in_steady_state(void) {
  comm_world *w = open_world(3, 1, 8, 128);
  rank_ctx ctx[MAX_RANKS];
  void *(*const fns[2])(void *) = {steady_rank, NULL};
  run_ranks(w, fns, ctx);
  comm_world_free(w);
  ASSERT_RANKS_OK(ctx, 3);
  TEST_ASSERTF(ctx[0].n_alloc_after == ctx[0].n_alloc_before,
               "%" PRId64 " allocations during %d ring messages and %d broadcasts",
               ctx[0].n_alloc_after - ctx[0].n_alloc_before, 3 * N_STEADY, N_STEADY / 100);
}

/* ---- opening, roles ---- */

static void test_open_config_and_roles(void) {
  comm_config cfg = comm_config_defaults();
  static char not_a_world;
  comm_world *w = (comm_world *)(void *)&not_a_world; /* open must reset it to NULL on failure */
  cfg.n_ranks = 2;
  cfg.n_replay_shards = 2;
  TEST_ASSERT(comm_world_open(&w, &cfg) == HSRL_E_USAGE && w == NULL);
  TEST_ASSERTF(strstr(hsrl_err_message(), "2 replay shards need at least 3 ranks, the job has 2") != NULL, "%s",
               hsrl_err_message());
  cfg.n_replay_shards = 0;
  cfg.n_slots = 0;
  TEST_ASSERT(comm_world_open(&w, &cfg) == HSRL_E_USAGE);
  cfg.n_slots = 2;
  cfg.max_payload_bytes = -1;
  TEST_ASSERT(comm_world_open(&w, &cfg) == HSRL_E_USAGE);
  cfg.max_payload_bytes = 100;

  /* Not launched by mpirun: AUTO picks the in-process transport. */
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMI_SIZE");
  unsetenv("PMIX_SIZE");
  cfg.n_ranks = 4;
  cfg.n_replay_shards = 2;
  TEST_ASSERT(comm_world_open(&w, &cfg) == HSRL_OK);
  TEST_ASSERT(!comm_world_is_mpi(w) && comm_world_size(w) == 4 && comm_world_n_local(w) == 4);
  const comm_role want[4] = {COMM_ROLE_LEARNER, COMM_ROLE_REPLAY, COMM_ROLE_REPLAY, COMM_ROLE_ACTOR};
  for (int r = 0; r < 4; r++) {
    comm *ep = comm_world_local(w, r);
    TEST_ASSERT(comm_rank(ep) == r && comm_size(ep) == 4 && comm_my_role(ep) == want[r]);
  }
  char name[48];
  TEST_ASSERT(strcmp(comm_peer_name(comm_world_local(w, 0), 3, name, sizeof name), "rank 3 (actor)") == 0);
  TEST_ASSERT(strcmp(comm_peer_name(comm_world_local(w, 0), 2, name, sizeof name), "rank 2 (replay)") == 0);
  TEST_ASSERT(strcmp(comm_peer_name(comm_world_local(w, 0), COMM_ANY, name, sizeof name), "any rank") == 0);
  comm_world_free(w);
  TEST_ASSERT(comm_role_of(0, 1, 0) == COMM_ROLE_LEARNER);
  TEST_ASSERT(comm_role_of(1, 2, 0) == COMM_ROLE_ACTOR);
  TEST_ASSERT(strcmp(comm_role_name(COMM_ROLE_REPLAY), "replay") == 0);
  comm_world_free(NULL);
}

int main(void) {
  TEST_RUN(test_ring_ping_pong_in_order);
  TEST_RUN(test_filters_poll_and_small_buffer);
  TEST_RUN(test_full_inbox_pushes_back);
  TEST_RUN(test_deadline_turns_dead_peer_into_error);
  TEST_RUN(test_corrupt_frames_rejected);
  TEST_RUN(test_broadcast_equal_on_every_member);
  TEST_RUN(test_broadcast_errors);
  TEST_RUN(test_zero_allocations_in_steady_state);
  TEST_RUN(test_open_config_and_roles);
  return test_summary();
}
