/* test_learner_ring.c: the replay ring of the learner (learner/learner_ring.h): uniform sampling
 * with replacement (chi-square over slots, never beyond the filled part), wrap-around (slot
 * t % capacity holds the newest transitions, every field intact, keep masks honoured),
 * checkpoint round trip (same samples after reading back; mismatched shapes refused), and no
 * allocation in push / sample. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/io/io_h5.h"
#include "learner/learner_ring.h"
#include "tests/test_harness.h"

enum { H = 5, K = 3, L = 2, MAXB = 64 };

/* A block of n transitions whose every field encodes (t = first + i, field). */
typedef struct rows {
  int32_t users[MAXB], next_users[MAXB], history[MAXB * H], next_history[MAXB * H], slate[MAXB * K];
  uint16_t tokens[MAXB * K * L];
  uint8_t clicks[MAXB * K], done[MAXB];
  float reward[MAXB], logp[MAXB * K * L];
  agent_batch b;
} rows;

static void rows_fill(rows *r, int64_t first, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    int32_t t = (int32_t)(first + i);
    r->users[i] = t, r->next_users[i] = t + 100000;
    for (int j = 0; j < H; j++) r->history[i * H + j] = t * 10 + j, r->next_history[i * H + j] = -t * 10 - j;
    for (int k = 0; k < K; k++) {
      r->slate[i * K + k] = t * 7 + k;
      r->clicks[i * K + k] = (uint8_t)((t + k) % 2);
      for (int l = 0; l < L; l++) {
        r->tokens[(i * K + k) * L + l] = (uint16_t)((t * 3 + k * L + l) % 65536);
        r->logp[(i * K + k) * L + l] = -0.5f * (float)(t + k + l);
      }
    }
    r->reward[i] = 0.25f * (float)t;
    r->done[i] = (uint8_t)(t % 3 == 0);
  }
  agent_batch *b = &r->b;
  memset(b, 0, sizeof *b);
  b->B = n;
  b->users = r->users, b->history = r->history, b->slate = r->slate, b->tokens = r->tokens;
  b->clicks = r->clicks, b->reward = r->reward, b->done = r->done, b->next_users = r->next_users;
  b->next_history = r->next_history, b->behaviour_logp = r->logp;
}

/* 1 when row j of b is transition t in every field. */
static int row_is(const agent_batch *b, int64_t j, int32_t t) {
  if (b->users[j] != t || b->next_users[j] != t + 100000) return 0;
  for (int i = 0; i < H; i++)
    if (b->history[j * H + i] != t * 10 + i || b->next_history[j * H + i] != -t * 10 - i) return 0;
  for (int k = 0; k < K; k++) {
    if (b->slate[j * K + k] != t * 7 + k || b->clicks[j * K + k] != (uint8_t)((t + k) % 2)) return 0;
    for (int l = 0; l < L; l++) {
      if (b->tokens[(j * K + k) * L + l] != (uint16_t)((t * 3 + k * L + l) % 65536)) return 0;
      if (b->behaviour_logp[(j * K + k) * L + l] != -0.5f * (float)(t + k + l)) return 0;
    }
  }
  return b->reward[j] == 0.25f * (float)t && b->done[j] == (uint8_t)(t % 3 == 0);
}

static learner_ring *ring_make(int64_t capacity) {
  learner_ring_config c = {capacity, H, K, L, 1, MAXB};
  return learner_ring_init(&c);
}

static void test_uniform_sampling(void) {
  enum { CAP = 100, DRAWS = 200000 };
  learner_ring *r = ring_make(CAP);
  static rows rw;
  /* partly filled: 37 transitions; samples must stay inside them */
  rows_fill(&rw, 0, 37);
  learner_ring_push(r, &rw.b, NULL);
  TEST_ASSERT(learner_ring_size(r) == 37 && learner_ring_pushed(r) == 37);
  hsrl_rng rng;
  hsrl_rng_init(&rng, 5, 0);
  for (int it = 0; it < 200; it++) {
    const agent_batch *b = learner_ring_sample(r, MAXB, &rng);
    const int64_t *slots = learner_ring_last_slots(r);
    for (int64_t j = 0; j < b->B; j++) {
      TEST_ASSERT(slots[j] >= 0 && slots[j] < 37);
      TEST_ASSERT(row_is(b, j, (int32_t)slots[j]));
    }
  }
  /* full: chi-square of the slot counts over DRAWS draws, 99 degrees of freedom */
  rows_fill(&rw, 37, 63);
  learner_ring_push(r, &rw.b, NULL);
  TEST_ASSERT(learner_ring_size(r) == CAP);
  static int64_t count[CAP];
  memset(count, 0, sizeof count);
  int64_t n = 0, repeats = 0;
  while (n < DRAWS) {
    const agent_batch *b = learner_ring_sample(r, 50, &rng);
    const int64_t *slots = learner_ring_last_slots(r);
    for (int64_t j = 0; j < b->B; j++) count[slots[j]]++;
    for (int64_t j = 1; j < b->B; j++)
      for (int64_t i = 0; i < j; i++) repeats += slots[i] == slots[j];
    n += b->B;
  }
  double e = (double)DRAWS / CAP, chi2 = 0;
  for (int i = 0; i < CAP; i++) chi2 += ((double)count[i] - e) * ((double)count[i] - e) / e;
  /* the 99.9% quantile of chi2(99) is 148.2; a ring sampling only half of its slots gives ~DRAWS */
  printf("  chi2 = %.1f over %d slots (99.9%% quantile 148.2)\n", chi2, CAP);
  TEST_ASSERTF(chi2 < 148.2 && chi2 > 50.0, "chi2 %.1f", chi2);
  /* with replacement: in batches of 50 from 100 slots, about 12 repeated pairs per batch */
  double pairs_per_batch = (double)repeats / (double)(DRAWS / 50);
  TEST_ASSERTF(fabs(pairs_per_batch - 50.0 * 49.0 / 2.0 / CAP) < 1.0, "repeated pairs %.2f per batch",
               pairs_per_batch);
  learner_ring_free(r);
}

static void test_wrap_around_and_keep(void) {
  enum { CAP = 10 };
  learner_ring *r = ring_make(CAP);
  static rows rw;
  uint8_t keep[7];
  int32_t kept[64];
  int64_t n_kept = 0;
  /* blocks of 7 with every third row dropped (an inactive env row) */
  for (int64_t blk = 0; blk < 5; blk++) {
    rows_fill(&rw, blk * 7, 7);
    for (int i = 0; i < 7; i++) {
      keep[i] = (uint8_t)((blk * 7 + i) % 3 != 1);
      if (keep[i]) kept[n_kept++] = (int32_t)(blk * 7 + i);
    }
    learner_ring_push(r, &rw.b, keep);
  }
  TEST_ASSERT(learner_ring_pushed(r) == n_kept && n_kept > CAP);
  TEST_ASSERT(learner_ring_size(r) == CAP);
  /* push number p (0-based over kept rows) lives in slot p % CAP, only the last CAP survive */
  for (int64_t p = n_kept - CAP; p < n_kept; p++) {
    const agent_batch *b = learner_ring_get(r, p % CAP);
    TEST_ASSERTF(row_is(b, 0, kept[p]), "slot %lld does not hold transition %d",
                 (long long)(p % CAP), (int)kept[p]);
  }
  learner_ring_free(r);
}

static void test_checkpoint_round_trip(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/ring.h5", test_tmpdir());
  learner_ring *r = ring_make(16);
  static rows rw;
  rows_fill(&rw, 0, 23); /* wrapped */
  learner_ring_push(r, &rw.b, NULL);
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(learner_ring_write(r, f, "learner/ring") == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);

  learner_ring *r2 = ring_make(16), *r3 = ring_make(17);
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  TEST_ASSERT(learner_ring_read(r2, f, "learner/ring") == HSRL_OK);
  hsrl_status st = learner_ring_read(r3, f, "learner/ring");
  io_h5_close(f);
  TEST_ASSERTF(st == HSRL_E_INPUT && strstr(hsrl_err_message(), "capacity"), "%s", hsrl_err_message());
  TEST_ASSERT(learner_ring_pushed(r2) == 23 && learner_ring_size(r2) == 16);
  hsrl_rng a, b;
  hsrl_rng_init(&a, 9, 1);
  hsrl_rng_init(&b, 9, 1);
  for (int it = 0; it < 10; it++) {
    const agent_batch *x = learner_ring_sample(r, 8, &a);
    int32_t want[8];
    for (int j = 0; j < 8; j++) want[j] = x->users[j];
    const agent_batch *y = learner_ring_sample(r2, 8, &b);
    for (int j = 0; j < 8; j++) TEST_ASSERT(row_is(y, j, want[j]));
  }
  /* an empty ring round-trips too */
  learner_ring *e1 = ring_make(4), *e2 = ring_make(4);
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(learner_ring_write(e1, f, "r") == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  TEST_ASSERT(learner_ring_read(e2, f, "r") == HSRL_OK && learner_ring_size(e2) == 0);
  io_h5_close(f);
  learner_ring_free(e1), learner_ring_free(e2);
  learner_ring_free(r), learner_ring_free(r2), learner_ring_free(r3);
}

static void test_no_allocation(void) {
  learner_ring *r = ring_make(50);
  static rows rw;
  rows_fill(&rw, 0, 40);
  hsrl_rng rng;
  hsrl_rng_init(&rng, 1, 0);
  learner_ring_push(r, &rw.b, NULL);
  int64_t before = hsrl_alloc_count();
  for (int i = 0; i < 100; i++) {
    learner_ring_push(r, &rw.b, NULL);
    learner_ring_sample(r, MAXB, &rng);
  }
  TEST_ASSERT(hsrl_alloc_count() == before);
  learner_ring_free(r);
}

int main(void) {
  TEST_RUN(test_uniform_sampling);
  TEST_RUN(test_wrap_around_and_keep);
  TEST_RUN(test_checkpoint_round_trip);
  TEST_RUN(test_no_allocation);
  return test_summary();
}
