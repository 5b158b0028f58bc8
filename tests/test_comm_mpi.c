/* test_comm_mpi.c: one three-rank scenario through comm.h, run over MPI by tests/cli_comm_mpi.sh
 * (`mpirun -np 3 test_comm_mpi mpi`) and over the in-process transport with three threads when
 * ctest runs it alone, so both transports are held to the same semantics:
 *   1. every rank sends to every rank (itself included) in rounds, sizes from 12 bytes to 200 KB
 *      (MPI eager and rendezvous); contents, headers and per-sender order checked;
 *   2. zero allocations over 200 more rounds after warm-up (between barriers);
 *   3. a broadcast of a 50000-float vector, three times: equal on every member, with the root's
 *      policy version; members test between "steps", the root waits;
 *   4. a frame corrupted in flight is rejected naming both ranks, and the next one is received;
 *   5. a barrier;
 *   6. rank 2 exits early without sending (MPI: frees the transport and sits in MPI_Finalize);
 *      rank 0 waits for it with a 1.5 s deadline and must get the timeout error in time.
 * Ranks: 0 learner, 1 replay (R = 1), 2 actor.
 *
 * MPI only, `mpirun --mca orte_enable_recovery 1 -np 2 test_comm_mpi mpi-dead recv|bcast`: a
 * sender killed in the middle of a large message (tests/cli_comm_mpi.sh). Rank 0 sends 200 KB to
 * rank 1 (recv: a message; bcast: a broadcast, whose receive rank 1 posted before) and kills
 * itself with SIGKILL before rank 1 has copied it; rank 1 then finds the first part of the
 * message and must not wait forever for the rest: comm_recv gives HSRL_E_TIMEOUT naming rank 0
 * (recv), comm_bcast_free returns after close_deadline_s (bcast), every later call fails as
 * "unusable", and comm_world_free returns (no MPI_Finalize). Before the fix MPI_Recv and
 * MPI_Wait spun forever there. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/comm/comm.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "tests/test_harness.h"

#define N_RANKS 3
#define DL 20.0             /* deadline of normal operations: only a bug reaches it */
#define DEAD_PEER_DL 1.5
#define MAX_PAYLOAD (256 * 1024)
#define BIG_MESSAGE (200 * 1000)
#define N_PARAMS 50000

typedef struct rank_ctx {
  comm *ep;
  int failed;
  char why[1024];
  char timeout_msg[512];
  int64_t n_alloc_change;
  uint8_t send_buf[MAX_PAYLOAD], recv_buf[MAX_PAYLOAD];
  float params[N_PARAMS], want[N_PARAMS];
} rank_ctx;

static void rank_fail(rank_ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rank_fail(rank_ctx *c, int line, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = 1;
  int n = snprintf(c->why, sizeof c->why, "rank %d, line %d: ", comm_rank(c->ep), line);
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

static int64_t message_bytes(int64_t round, int src, int dst, int big) {
  if (big && round == 5) return BIG_MESSAGE;
  return 12 + (round * 997 + src * 131 + dst * 17) % 3000;
}

static uint8_t pattern(int64_t round, int src, int dst, int64_t k) {
  return (uint8_t)(round * 7 + src * 31 + dst * 13 + k);
}

/* Rounds of all-to-all: send one message to every rank, then receive one from every rank. */
static void *exchange(rank_ctx *c, int64_t first, int64_t n_rounds, int big) {
  int me = comm_rank(c->ep), n = comm_size(c->ep);
  for (int64_t i = first; i < first + n_rounds; i++) {
    for (int dst = 0; dst < n; dst++) {
      int64_t bytes = message_bytes(i, me, dst, big);
      int32_t tag[3] = {me, dst, (int32_t)i};
      memcpy(c->send_buf, tag, sizeof tag);
      for (int64_t k = (int64_t)sizeof tag; k < bytes; k++) c->send_buf[k] = pattern(i, me, dst, k);
      RANK_OK(c, comm_send(c->ep, dst, COMM_KIND_PING, i, c->send_buf, bytes, DL));
    }
    for (int src = 0; src < n; src++) {
      comm_header h;
      RANK_OK(c, comm_recv(c->ep, src, COMM_KIND_PING, c->recv_buf, MAX_PAYLOAD, DL, &h));
      int64_t bytes = message_bytes(i, src, me, big);
      int32_t tag[3];
      memcpy(tag, c->recv_buf, sizeof tag);
      RANK_CHECK(c, h.sender == src && h.policy_version == i && h.bytes == bytes,
                 "round %" PRId64 " from %d: header sender %d version %" PRId64 " bytes %" PRId64, i, src,
                 h.sender, h.policy_version, h.bytes);
      RANK_CHECK(c, tag[0] == src && tag[1] == me && tag[2] == (int32_t)i,
                 "round %" PRId64 " from %d: got the message (%d -> %d, round %d)", i, src, tag[0], tag[1], tag[2]);
      for (int64_t k = (int64_t)sizeof tag; k < bytes; k++)
        RANK_CHECK(c, c->recv_buf[k] == pattern(i, src, me, k), "round %" PRId64 " from %d: byte %" PRId64, i,
                   src, k);
    }
  }
  return NULL;
}

static void fill_params(float *p, uint64_t round) {
  hsrl_rng r;
  hsrl_rng_init(&r, 2024, round);
  for (int64_t i = 0; i < N_PARAMS; i++) p[i] = (float)hsrl_rng_normal(&r);
}

static void *broadcast(rank_ctx *c) {
  const int members[2] = {1, 2};
  comm_bcast *bc = NULL;
  RANK_OK(c, comm_bcast_open(&bc, c->ep, 0, members, 2));
  for (int round = 0; round < 3 && !c->failed; round++) {
    comm_header h;
    if (comm_rank(c->ep) == 0) {
      fill_params(c->params, (uint64_t)round);
      if (comm_bcast_start(bc, c->params, sizeof c->params, 100 + round) != HSRL_OK ||
          comm_bcast_wait(bc, DL, &h) != HSRL_OK)
        rank_fail(c, __LINE__, "root round %d: %s", round, hsrl_err_message());
      continue;
    }
    memset(c->params, 0, sizeof c->params);
    if (comm_bcast_start(bc, c->params, sizeof c->params, 0) != HSRL_OK) {
      rank_fail(c, __LINE__, "member start: %s", hsrl_err_message());
      break;
    }
    double give_up = hsrl_time_now() + DL;
    int done = 0;
    while (!done && !c->failed) { /* an actor tests between environment steps */
      if (comm_bcast_test(bc, &done, &h) != HSRL_OK) rank_fail(c, __LINE__, "member test: %s", hsrl_err_message());
      if (hsrl_time_now() > give_up) rank_fail(c, __LINE__, "broadcast round %d never arrived", round);
      struct timespec step = {0, 100000};
      nanosleep(&step, NULL);
    }
    if (c->failed) break;
    fill_params(c->want, (uint64_t)round);
    if (memcmp(c->params, c->want, sizeof c->params) != 0)
      rank_fail(c, __LINE__, "round %d: the parameters differ from the root's", round);
    else if (h.policy_version != 100 + round || h.sender != 0 || h.kind != COMM_KIND_PARAMS)
      rank_fail(c, __LINE__, "round %d: header version %" PRId64 " sender %d", round, h.policy_version, h.sender);
  }
  comm_bcast_free(bc);
  return NULL;
}

static void *scenario(void *arg) {
  rank_ctx *c = arg;
  int me = comm_rank(c->ep);
  RANK_CHECK(c, comm_size(c->ep) == N_RANKS, "run with %d ranks, needs %d", comm_size(c->ep), N_RANKS);

  /* 1. all-to-all */
  exchange(c, 0, 12, 1);
  if (c->failed) return NULL;

  /* 2. zero allocations after warm-up */
  RANK_OK(c, comm_barrier(c->ep, DL));
  int64_t before = hsrl_alloc_count();
  RANK_OK(c, comm_barrier(c->ep, DL));
  exchange(c, 100, 200, 0);
  if (c->failed) return NULL;
  RANK_OK(c, comm_barrier(c->ep, DL));
  c->n_alloc_change = hsrl_alloc_count() - before;
  RANK_OK(c, comm_barrier(c->ep, DL)); /* in-process the counter is shared: read before anyone allocates */
  RANK_CHECK(c, c->n_alloc_change == 0, "%" PRId64 " allocations in 200 steady-state rounds", c->n_alloc_change);

  /* 3. broadcast */
  broadcast(c);
  if (c->failed) return NULL;

  /* 4. a frame corrupted in flight */
  if (me == 1) {
    uint8_t v[16] = "0123456789abcde";
    comm_debug_tamper_next_send(c->ep, COMM_FRAME_HEADER_BYTES + 5, 0x20, 0);
    RANK_OK(c, comm_send(c->ep, 0, COMM_KIND_PING, 1, v, sizeof v, DL));
    RANK_OK(c, comm_send(c->ep, 0, COMM_KIND_PING, 2, v, sizeof v, DL));
  }
  if (me == 0) {
    comm_header h;
    hsrl_status st = comm_recv(c->ep, 1, COMM_ANY, c->recv_buf, MAX_PAYLOAD, DL, &h);
    RANK_CHECK(c, st == HSRL_E_CORRUPT && strstr(hsrl_err_message(), "rank 0 (learner): message from rank 1 "
                                                                     "(replay) rejected: checksum mismatch") != NULL,
               "status %d: %s", (int)st, hsrl_err_message());
    RANK_OK(c, comm_recv(c->ep, 1, COMM_ANY, c->recv_buf, MAX_PAYLOAD, DL, &h));
    RANK_CHECK(c, h.policy_version == 2 && memcmp(c->recv_buf, "0123456789abcde", 16) == 0,
               "the message after the corrupt one is wrong");
  }

  /* 5. */
  RANK_OK(c, comm_barrier(c->ep, DL));

  /* 6. rank 2 leaves without a word; rank 0 must not hang waiting for it */
  if (me != 0) return NULL;
  double t0 = hsrl_time_now();
  hsrl_status st = comm_recv(c->ep, 2, COMM_ANY, c->recv_buf, MAX_PAYLOAD, DEAD_PEER_DL, NULL);
  double waited = hsrl_time_now() - t0;
  snprintf(c->timeout_msg, sizeof c->timeout_msg, "%s", hsrl_err_message());
  RANK_CHECK(c, st == HSRL_E_TIMEOUT, "status %d after %.2f s", (int)st, waited);
  RANK_CHECK(c, waited >= DEAD_PEER_DL - 0.01 && waited < DEAD_PEER_DL + 3.0, "timed out after %.2f s", waited);
  RANK_CHECK(c, strcmp(c->timeout_msg, "rank 0 (learner) got no message from rank 2 (actor) within 1.5 s") == 0,
             "message: %s", c->timeout_msg);
  int found = 1;
  RANK_OK(c, comm_poll(c->ep, COMM_ANY, COMM_ANY, &found, NULL));
  RANK_CHECK(c, found == 0, "a message is left over");
  return NULL;
}

static comm_config scenario_config(comm_transport t) {
  comm_config cfg = comm_config_defaults();
  cfg.transport = t;
  cfg.n_ranks = N_RANKS;
  cfg.n_replay_shards = 1;
  cfg.max_payload_bytes = MAX_PAYLOAD;
  cfg.n_slots = 8;
  cfg.config_hash = 0x00c0ffee00c0ffeeull;
  return cfg;
}

/* ctest: the same scenario over the in-process transport, one thread per rank. */
static void test_scenario_inproc_threads(void) {
  comm_config cfg = scenario_config(COMM_TRANSPORT_INPROC);
  comm_world *w = NULL;
  TEST_ASSERTF(comm_world_open(&w, &cfg) == HSRL_OK, "%s", hsrl_err_message());
  rank_ctx *ctx = hsrl_calloc(N_RANKS, sizeof *ctx);
  pthread_t t[N_RANKS];
  for (int r = 0; r < N_RANKS; r++) {
    ctx[r].ep = comm_world_local(w, r);
    HSRL_CHECK(pthread_create(&t[r], NULL, scenario, &ctx[r]) == 0);
  }
  for (int r = 0; r < N_RANKS; r++) pthread_join(t[r], NULL);
  comm_world_free(w);
  int n_failed = 0;
  char why[1024] = "";
  for (int r = 0; r < N_RANKS; r++)
    if (ctx[r].failed) {
      printf("  %s\n", ctx[r].why);
      if (!n_failed++) snprintf(why, sizeof why, "%s", ctx[r].why);
    }
  hsrl_free(ctx);
  TEST_ASSERTF(n_failed == 0, "%d ranks failed, first: %s", n_failed, why);
}

static rank_ctx mpi_ctx;

/* ---- a sender killed mid-transfer (MPI only) ---- */
#define DEAD_CLOSE_DL 1.0 /* close_deadline_s of the mpi-dead runs */
#define DEAD_RECV_DL 0.5

static const char *dead_case;

static void test_dead_sender(void) {
  comm_config cfg = comm_config_defaults();
  cfg.transport = COMM_TRANSPORT_MPI;
  cfg.max_payload_bytes = MAX_PAYLOAD;
  cfg.close_deadline_s = DEAD_CLOSE_DL;
  comm_world *w = NULL;
  TEST_ASSERTF(comm_world_open(&w, &cfg) == HSRL_OK, "%s", hsrl_err_message());
  comm *ep = comm_world_local(w, 0);
  TEST_ASSERTF(comm_size(ep) == 2, "run with %d ranks, needs 2", comm_size(ep));
  const int bcast = !strcmp(dead_case, "bcast"), me = comm_rank(ep), member = 1;
  static float big[BIG_MESSAGE / 4];
  comm_bcast *bc = NULL;
  if (bcast) {
    TEST_ASSERTF(comm_bcast_open(&bc, ep, 0, &member, 1) == HSRL_OK, "%s", hsrl_err_message());
    if (me == 1)
      TEST_ASSERTF(comm_bcast_start(bc, big, sizeof big, 0) == HSRL_OK, "%s", hsrl_err_message());
  }
  TEST_ASSERTF(comm_barrier(ep, DL) == HSRL_OK, "%s", hsrl_err_message());
  if (me == 0) {
    /* hand the first part over and die before rank 1 copies the rest */
    if (bcast) TEST_ASSERTF(comm_bcast_start(bc, big, sizeof big, 7) == HSRL_OK, "%s", hsrl_err_message());
    else TEST_ASSERTF(comm_send(ep, 1, COMM_KIND_PING, 7, big, sizeof big, DL) == HSRL_OK, "%s", hsrl_err_message());
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    raise(SIGKILL);
  }
  struct timespec ts = {1, 0}; /* rank 0 is dead by now */
  nanosleep(&ts, NULL);
  double t0 = hsrl_time_now();
  if (bcast) {
    int done = 0;
    while (hsrl_time_now() - t0 < 0.5) {
      TEST_ASSERTF(comm_bcast_test(bc, &done, NULL) == HSRL_OK, "%s", hsrl_err_message());
      TEST_ASSERTF(!done, "a broadcast from a dead root completed");
    }
    t0 = hsrl_time_now();
    comm_bcast_free(bc);
    double waited = hsrl_time_now() - t0;
    printf("rank 1: comm_bcast_free returned after %.2f s\n", waited);
    TEST_ASSERTF(waited >= DEAD_CLOSE_DL - 0.01 && waited < DEAD_CLOSE_DL + 2.0, "comm_bcast_free took %.2f s", waited);
  } else {
    int found = 0;
    comm_probe pr;
    while (!found && hsrl_time_now() - t0 < 1.0) /* a poll progresses MPI one step */
      TEST_ASSERTF(comm_poll(ep, 0, COMM_ANY, &found, &pr) == HSRL_OK, "%s", hsrl_err_message());
    TEST_ASSERTF(found && pr.bytes == sizeof big, "the first part of the message is not here (found %d)", found);
    t0 = hsrl_time_now();
    hsrl_status st = comm_recv(ep, 0, COMM_ANY, big, sizeof big, DEAD_RECV_DL, NULL);
    double waited = hsrl_time_now() - t0;
    printf("rank 1 saw after %.2f s: %s\n", waited, hsrl_err_message());
    TEST_ASSERTF(st == HSRL_E_TIMEOUT, "status %d", (int)st);
    /* the message showed up at once, so the rest gets close_deadline_s (> DEAD_RECV_DL) */
    TEST_ASSERTF(waited >= DEAD_CLOSE_DL - 0.01 && waited < DEAD_CLOSE_DL + 2.0, "comm_recv took %.2f s", waited);
    TEST_ASSERTF(strstr(hsrl_err_message(), "rank 1 (actor): a PING message of 200000 bytes from rank 0 "
                                            "(learner) began to arrive but did not finish") != NULL,
                 "message: %s", hsrl_err_message());
  }
  int found = 0;
  TEST_ASSERT(comm_poll(ep, COMM_ANY, COMM_ANY, &found, NULL) == HSRL_E_INTERNAL);
  printf("rank 1 then: %s\n", hsrl_err_message());
  TEST_ASSERTF(strstr(hsrl_err_message(), "the transport is unusable: a message from rank 0 (learner) began "
                                          "to arrive and never finished") != NULL,
               "message: %s", hsrl_err_message());
  TEST_ASSERT(comm_barrier(ep, DL) != HSRL_OK);
  t0 = hsrl_time_now();
  comm_world_free(w); /* no MPI_Finalize: it would wait for the dead rank */
  TEST_ASSERTF(hsrl_time_now() - t0 < 1.0, "comm_world_free took %.2f s", hsrl_time_now() - t0);
}

static void test_scenario_mpi_rank(void) {
  TEST_ASSERTF(!mpi_ctx.failed, "%s", mpi_ctx.why);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "mpi-dead") && (!strcmp(argv[2], "recv") || !strcmp(argv[2], "bcast"))) {
    dead_case = argv[2];
    TEST_RUN(test_dead_sender);
    return test_summary();
  }
  if (argc < 2 || strcmp(argv[1], "mpi") != 0) {
    TEST_RUN(test_scenario_inproc_threads);
    return test_summary();
  }
  comm_config cfg = scenario_config(COMM_TRANSPORT_MPI);
  comm_world *w = NULL;
  if (comm_world_open(&w, &cfg) != HSRL_OK) {
    printf("FAIL: %s\n", hsrl_err_message());
    return 1;
  }
  mpi_ctx.ep = comm_world_local(w, 0);
  scenario(&mpi_ctx);
  if (comm_rank(mpi_ctx.ep) == 0) printf("rank 0 saw: %s\n", mpi_ctx.timeout_msg);
  TEST_RUN(test_scenario_mpi_rank);
  int rc = test_summary();
  comm_world_free(w); /* rank 2 waits here in MPI_Finalize while rank 0 times out on it */
  return rc;
}
