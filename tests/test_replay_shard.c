/* test_replay_shard.c: the replay shard (replay/replay_shard.h) and its rate limiter
 * (replay/replay_limiter.h): Reverb's limiter decisions on a hand-worked case and its config
 * checks; uniform sampling (chi-square over slots, and the same statistic rejecting a sampler
 * that misses one slot); the limiter's bounds and liveness over random insert/sample schedules
 * through the block queue; ring overwrite (slot contents, ages, decoded rows); the bounded queue's
 * push back and partial inserts; bad blocks dropped and counted while later ones go in; rows the
 * narrow storage cannot hold refused; zero allocations in the steady-state
 * pack/offer/pump/sample loop. */
#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "replay/replay_block.h"
#include "replay/replay_shard.h"
#include "tests/test_harness.h"

/* Rows [0, n) of b: user ids first_user, first_user + 1, ... (so a row names its insert order),
 * derived next histories, tokens < vocab. */
static void gen_rows(replay_rows_buf *b, int64_t n, int32_t first_user, int64_t vocab, hsrl_rng *r) {
  const int64_t H = b->shape.history_len, K = b->shape.slate_size, KL = K * b->shape.n_levels;
  for (int64_t i = 0; i < n; i++) {
    b->users[i] = b->next_users[i] = first_user + (int32_t)i;
    for (int64_t h = 0; h < H; h++) b->history[i * H + h] = (int32_t)hsrl_rng_below(r, 100);
    for (int64_t k = 0; k < K; k++) {
      b->slate[i * K + k] = 1 + (int32_t)hsrl_rng_below(r, 100);
      b->clicks[i * K + k] = (uint8_t)hsrl_rng_bernoulli(r, 0.3f);
    }
    for (int64_t j = 0; j < KL; j++) b->tokens[i * KL + j] = (uint16_t)hsrl_rng_below(r, (uint64_t)vocab);
    if (b->logp)
      for (int64_t j = 0; j < KL; j++) b->logp[i * KL + j] = -hsrl_rng_uniform(r);
    b->reward[i] = hsrl_rng_uniform(r);
    b->done[i] = (uint8_t)hsrl_rng_bernoulli(r, 0.1f);
    b->policy_version[i] = first_user / 7;
    replay_rows_next_history(b->next_history + i * H, b->history + i * H, b->slate + i * K,
                             b->clicks + i * K, H, K);
  }
}

static replay_shard_config base_config(int64_t capacity, double spi, int64_t min_size, double eb) {
  replay_shard_config c;
  memset(&c, 0, sizeof c);
  c.shape = (replay_rows_shape){6, 4, 3, 1};
  c.capacity = capacity;
  c.max_vocab = 64;
  c.max_batch = 16;
  c.block_rows = 8;
  c.queue_blocks = 4;
  c.limiter = (replay_limiter_config){spi, min_size, eb};
  c.seed = 99;
  c.stream = 2;
  c.config_hash = 0xfeedull;
  return c;
}

/* ---------------------------------------------------------------- limiter */

/* spi 2, min size 3, error buffer 2: offset 6, diff kept in [4, 8] (worked by hand from
 * Reverb's CanInsert / CanSample). */
static void test_limiter_reverb_semantics(void) {
  replay_limiter l;
  replay_limiter_config c = {2.0, 3, 2.0};
  TEST_ASSERT(replay_limiter_init(&l, &c) == HSRL_OK);
  TEST_ASSERT(l.min_diff == 4.0 && l.max_diff == 8.0);
  TEST_ASSERT(!replay_limiter_can_sample(&l, 1)); /* below min size */
  TEST_ASSERT(replay_limiter_can_insert(&l, 3));  /* filling up to min size is free */
  replay_limiter_insert(&l, 3);                   /* I 3: diff 6 */
  TEST_ASSERT(replay_limiter_can_insert(&l, 1));  /* 4 * 2 - 0 = 8 <= 8 */
  TEST_ASSERT(!replay_limiter_can_insert(&l, 2)); /* 10 > 8 */
  TEST_ASSERT(replay_limiter_can_sample(&l, 2));  /* 6 - 2 = 4 >= 4 */
  TEST_ASSERT(!replay_limiter_can_sample(&l, 3)); /* 3 < 4 */
  replay_limiter_insert(&l, 1);                   /* I 4: diff 8 */
  TEST_ASSERT(!replay_limiter_can_insert(&l, 1)); /* 10 > 8: actors wait for the learner */
  TEST_ASSERT(replay_limiter_can_sample(&l, 4));  /* 8 - 4 = 4 */
  replay_limiter_sample(&l, 4);                   /* S 4: diff 4 */
  TEST_ASSERT(!replay_limiter_can_sample(&l, 1)); /* the learner waits for actors */
  TEST_ASSERT(replay_limiter_can_insert(&l, 2));  /* 12 - 4 = 8 */
  replay_limiter_delete(&l, 1);                   /* size 3: still >= min size */
  TEST_ASSERT(replay_limiter_size(&l) == 3 && replay_limiter_diff(&l) == 4.0);
  replay_limiter_delete(&l, 1);                   /* size 2: below min size */
  TEST_ASSERT(replay_limiter_can_insert(&l, 1));  /* back to free filling */
  /* config checks */
  replay_limiter_config bad[] = {{0.0, 3, 2.0}, {-1.0, 3, 2.0}, {2.0, 0, 2.0}, {2.0, 3, 1.5}, {0.5, 3, 0.9}};
  const char *field[] = {"samples_per_insert", "samples_per_insert", "min_size_to_sample", "error_buffer",
                         "error_buffer"};
  for (int i = 0; i < 5; i++) {
    TEST_ASSERT(replay_limiter_init(&l, &bad[i]) == HSRL_E_USAGE);
    TEST_ASSERTF(strstr(hsrl_err_message(), field[i]), "%d: %s", i, hsrl_err_message());
  }
  TEST_ASSERT(replay_limiter_min_error_buffer(2.0, 1, 64) == 33.0);
  TEST_ASSERT(replay_limiter_min_error_buffer(0.25, 1, 1) == 1.0);
}

static void test_shard_config_checks(void) {
  replay_shard *s = NULL;
  replay_shard_config c = base_config(100, 2.0, 100, 50.0); /* min size == capacity */
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_E_USAGE && strstr(hsrl_err_message(), "min_size_to_sample"));
  c = base_config(100, 2.0, 10, 5.0); /* (2 + 16) / 2 = 9 > 5 */
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_E_USAGE && strstr(hsrl_err_message(), "error_buffer"));
  c = base_config(100, 2.0, 10, 9.0);
  c.max_vocab = 70000;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_E_USAGE && strstr(hsrl_err_message(), "max_vocab"));
  c.max_vocab = 64;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK && s);
  TEST_ASSERT(!replay_shard_tokens_u16(s));
  replay_shard_free(s);
  /* from the settings: the defaults make a working shard (2 samples per insert, as the single
   * process loop: batch 64 per env step of 32) */
  hsrl_settings st;
  hsrl_settings_defaults(&st);
  replay_rows_shape shape = {st.data.history_len, st.data.slate_size, 3, 1};
  replay_shard_config_from_settings(&c, &st, 0, 0, &shape, 64, 5);
  TEST_ASSERT(c.capacity == st.train.buffer && c.limiter.min_size_to_sample == st.train.learning_starts);
  TEST_ASSERT(c.limiter.samples_per_insert == 2.0 && c.max_batch == st.train.batch);
  TEST_NEAR(c.limiter.error_buffer, 0.1 * 2.0 * (double)st.train.learning_starts, 1e-9);
  replay_shard_config c3;
  replay_shard_config_from_settings(&c3, &st, 3, 2, &shape, 64, 5);
  TEST_ASSERT(c3.capacity == (st.train.buffer + 2) / 3 && c3.stream == 2 && c3.seed == c.seed);
  TEST_ASSERT(c3.limiter.error_buffer >= replay_limiter_min_error_buffer(2.0, 1, c3.max_batch));
  s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c3) == HSRL_OK);
  replay_shard_free(s);
}

/* ---------------------------------------------------------------- sampling */

/* Pearson's statistic of counts against the uniform expectation. */
static double chi_square(const int64_t *count, int64_t n_bins, int64_t n_draws) {
  double e = (double)n_draws / (double)n_bins, x = 0;
  for (int64_t i = 0; i < n_bins; i++) x += ((double)count[i] - e) * ((double)count[i] - e) / e;
  return x;
}

static void test_sampling_uniform(void) {
  const int64_t C = 50, B = 16, rounds = 4000; /* 64,000 draws, 1,280 per slot */
  replay_shard_config c = base_config(C, 1.0, 1, 1e12);
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, 2 * C + 7);
  hsrl_rng r;
  hsrl_rng_init(&r, 4, 0);
  gen_rows(&rows, 2 * C + 7, 1, 64, &r);
  replay_rows v = replay_rows_buf_view(&rows, 0, 2 * C + 7);
  TEST_ASSERT(replay_shard_insert(s, &v) == 2 * C + 7); /* wrapped: every slot overwritten */
  int64_t count[50] = {0};
  for (int64_t t = 0; t < rounds; t++) {
    replay_rows out;
    TEST_ASSERT(replay_shard_sample(s, B, &out) == 1);
    const int64_t *slots = replay_shard_last_slots(s);
    for (int64_t j = 0; j < B; j++) {
      TEST_ASSERT(slots[j] >= 0 && slots[j] < C);
      count[slots[j]]++;
      /* the row served is the slot's transition: the newest insert t with t % C == slot */
      int64_t t_ins = slots[j] + C * ((2 * C + 7 - 1 - slots[j]) / C);
      TEST_ASSERT(out.users[j] == 1 + t_ins);
    }
  }
  /* 49 degrees of freedom: mean 49, sd 9.9; 110 is > 6 sd (p < 1e-7) */
  double x = chi_square(count, C, B * rounds);
  TEST_ASSERTF(x < 110.0, "chi-square %.1f over %lld slots", x, (long long)C);
  /* the same statistic rejects a sampler that never draws the last slot */
  int64_t biased[50] = {0};
  hsrl_rng br;
  hsrl_rng_init(&br, 5, 0);
  for (int64_t d = 0; d < B * rounds; d++) biased[hsrl_rng_below(&br, C - 1)]++;
  TEST_ASSERTF(chi_square(biased, C, B * rounds) > 110.0, "a biased sampler passed: %.1f",
               chi_square(biased, C, B * rounds));
  const replay_shard_counters *n = replay_shard_get_counters(s);
  TEST_ASSERT(n->sampled == B * rounds && n->sample_calls == rounds && n->sample_waits == 0);
  replay_rows_buf_free(&rows);
  replay_shard_free(s);
}

/* ---------------------------------------------------------------- limiter bounds */

/* Random schedules of block inserts (through offer + pump) and batch samples, skewed towards
 * inserts in some phases and samples in others; after every step the Reverb bounds hold, some
 * operation is allowed (no deadlock), and both kinds of wait happened. */
static void run_schedule(double spi, int64_t min_size, double eb_extra, uint64_t seed) {
  replay_shard_config c = base_config(300, spi, min_size, 0);
  c.limiter.error_buffer = replay_limiter_min_error_buffer(spi, 1, c.max_batch) + eb_extra;
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  replay_block_config bc = {c.shape, c.block_rows, c.max_vocab, c.config_hash, 1};
  replay_block *blk = NULL;
  TEST_ASSERT(replay_block_init(&blk, &bc) == HSRL_OK);
  size_t cap = replay_block_bound(blk), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, c.block_rows);
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 1);
  const replay_limiter *l = replay_shard_get_limiter(s);
  int32_t next_user = 1, pending = 0; /* a block refused by a full queue is offered again */
  int64_t n_rows_made = 0;
  for (int step = 0; step < 6000; step++) {
    double p_insert = (step / 500) % 2 ? 0.8 : 0.2;
    if (hsrl_rng_uniform_double(&r) < p_insert) {
      if (!pending) {
        int64_t n = 1 + (int64_t)hsrl_rng_below(&r, (uint64_t)c.block_rows);
        gen_rows(&rows, n, next_user, c.max_vocab, &r);
        replay_rows v = replay_rows_buf_view(&rows, 0, n);
        TEST_ASSERT(replay_block_pack(blk, frame, cap, &v, &size, NULL) == HSRL_OK);
        next_user += (int32_t)n, n_rows_made += n, pending = 1;
      }
      int accepted = 0;
      TEST_ASSERT(replay_shard_offer(s, frame, size, &accepted) == HSRL_OK);
      if (accepted) pending = 0;
      TEST_ASSERT(replay_shard_pump(s, NULL) == HSRL_OK);
      /* the pump never leaves a block queued that the limiter would take a row of */
      TEST_ASSERT(replay_shard_queued(s) == 0 || !replay_limiter_can_insert(l, 1));
    } else {
      replay_rows out;
      int64_t B = 1 + (int64_t)hsrl_rng_below(&r, (uint64_t)c.max_batch);
      int allowed = replay_limiter_can_sample(l, B);
      TEST_ASSERT(replay_shard_sample(s, B, &out) == allowed);
    }
    const double I = (double)l->inserts, S = (double)l->samples;
    TEST_ASSERTF(I * spi - S <= l->max_diff + 1e-9, "step %d: diff %g > max %g", step, I * spi - S, l->max_diff);
    if (l->inserts >= min_size)
      TEST_ASSERTF(I * spi - S >= l->min_diff - 1e-9, "step %d: diff %g < min %g", step, I * spi - S, l->min_diff);
    else
      TEST_ASSERT(l->samples == 0);
    TEST_ASSERTF(replay_limiter_can_insert(l, 1) || replay_limiter_can_sample(l, c.max_batch),
                 "step %d: both refused (I %g, S %g)", step, I, S);
  }
  const replay_shard_counters *n = replay_shard_get_counters(s);
  TEST_ASSERTF(n->insert_waits > 0 && n->sample_waits > 0 && n->queue_full > 0,
               "insert waits %lld, sample waits %lld, queue full %lld", (long long)n->insert_waits,
               (long long)n->sample_waits, (long long)n->queue_full);
  TEST_ASSERT(n->inserted == l->inserts && n->sampled == l->samples);
  TEST_ASSERT(n->inserted <= n_rows_made && n->inserted >= n_rows_made - c.block_rows * (c.queue_blocks + 1));
  /* rows went into the ring in order: the newest slot holds user `inserted` */
  int64_t newest = replay_shard_slot_of_age(s, replay_shard_size(s) - 1);
  replay_rows g = replay_shard_get(s, newest);
  TEST_ASSERT(g.users[0] == (int32_t)n->inserted);
  hsrl_free(frame);
  replay_rows_buf_free(&rows);
  replay_block_free(blk);
  replay_shard_free(s);
}

static void test_limiter_bounds_random_schedule(void) {
  run_schedule(2.0, 40, 0.0, 1);
  run_schedule(0.5, 10, 3.0, 2);
  run_schedule(8.0, 25, 20.0, 3);
  run_schedule(1.0, 1, 0.0, 4);
}

/* ---------------------------------------------------------------- ring */

static void test_ring_overwrite(void) {
  const int64_t C = 10, N = 25;
  replay_shard_config c = base_config(C, 1.0, 1, 1e12);
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, N);
  hsrl_rng r;
  hsrl_rng_init(&r, 8, 0);
  gen_rows(&rows, N, 1, 64, &r);
  for (int64_t t = 0; t < N; t += 5) { /* in pieces, as blocks arrive */
    replay_rows v = replay_rows_buf_view(&rows, t, 5);
    TEST_ASSERT(replay_shard_check_rows(s, &v, NULL) == HSRL_OK);
    TEST_ASSERT(replay_shard_insert(s, &v) == 5);
    TEST_ASSERT(replay_shard_size(s) == (t + 5 < C ? t + 5 : C));
  }
  TEST_ASSERT(replay_shard_get_limiter(s)->deletes == N - C);
  const int64_t H = c.shape.history_len, K = c.shape.slate_size, KL = K * c.shape.n_levels;
  for (int64_t age = 0; age < C; age++) {
    int64_t slot = replay_shard_slot_of_age(s, age), t = N - C + age;
    TEST_ASSERT(slot == t % C);
    replay_rows g = replay_shard_get(s, slot);
    TEST_ASSERT(g.B == 1 && g.users[0] == rows.users[t] && g.next_users[0] == rows.next_users[t]);
    TEST_ASSERT(!memcmp(g.history, rows.history + t * H, (size_t)H * 4));
    TEST_ASSERT(!memcmp(g.next_history, rows.next_history + t * H, (size_t)H * 4));
    TEST_ASSERT(!memcmp(g.slate, rows.slate + t * K, (size_t)K * 4));
    TEST_ASSERT(!memcmp(g.clicks, rows.clicks + t * K, (size_t)K));
    TEST_ASSERT(!memcmp(g.tokens, rows.tokens + t * KL, (size_t)KL * 2));
    TEST_ASSERT(!memcmp(g.behaviour_logp, rows.logp + t * KL, (size_t)KL * 4));
    TEST_ASSERT(g.reward[0] == rows.reward[t] && g.done[0] == rows.done[t]);
    TEST_ASSERT(g.policy_version[0] == rows.policy_version[t]);
  }
  replay_rows_buf_free(&rows);
  replay_shard_free(s);
}

/* Stored next histories (store_next_history = 1) come back exactly; a derive-only shard refuses
 * them, naming the row; tokens that do not fit are refused. */
static void test_rows_storage_rules(void) {
  replay_shard_config c = base_config(20, 1.0, 1, 1e12);
  replay_shard *derive = NULL, *store = NULL;
  TEST_ASSERT(replay_shard_init(&derive, &c) == HSRL_OK);
  c.store_next_history = 1;
  TEST_ASSERT(replay_shard_init(&store, &c) == HSRL_OK);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, 4);
  hsrl_rng r;
  hsrl_rng_init(&r, 12, 0);
  gen_rows(&rows, 4, 1, 64, &r);
  const int64_t H = c.shape.history_len;
  rows.next_history[2 * H + 1] = 77777; /* row 2: not derivable */
  replay_rows v = replay_rows_buf_view(&rows, 0, 4);
  TEST_ASSERT(replay_shard_check_rows(derive, &v, "actor 5") == HSRL_E_INPUT);
  TEST_ASSERT(strstr(hsrl_err_message(), "field 'next_history'") && strstr(hsrl_err_message(), "row 2"));
  TEST_ASSERT(strstr(hsrl_err_message(), "actor 5"));
  TEST_ASSERT(replay_shard_check_rows(store, &v, NULL) == HSRL_OK);
  TEST_ASSERT(replay_shard_insert(store, &v) == 4);
  replay_rows g = replay_shard_get(store, 2);
  TEST_ASSERT(!memcmp(g.next_history, rows.next_history + 2 * H, (size_t)H * 4));
  replay_rows_next_history(rows.next_history + 2 * H, rows.history + 2 * H, rows.slate + 2 * c.shape.slate_size,
                           rows.clicks + 2 * c.shape.slate_size, H, c.shape.slate_size);
  rows.tokens[5] = 64; /* >= max_vocab */
  TEST_ASSERT(replay_shard_check_rows(derive, &v, NULL) == HSRL_E_INPUT && strstr(hsrl_err_message(), "'tokens'"));
  rows.tokens[5] = 1;
  rows.clicks[3] = 2;
  TEST_ASSERT(replay_shard_check_rows(derive, &v, NULL) == HSRL_E_INPUT && strstr(hsrl_err_message(), "'clicks'"));
  rows.clicks[3] = 1;
  TEST_ASSERT(replay_shard_check_rows(derive, &v, NULL) == HSRL_OK);
  replay_rows_buf_free(&rows);
  replay_shard_free(derive);
  replay_shard_free(store);
}

/* ---------------------------------------------------------------- queue */

static void test_queue_push_back_and_partial_inserts(void) {
  /* spi 4, min size 4, buffer (4 + 16) / 2 = 10: offset 16, at most 26 / 4 = 6 inserts ahead */
  replay_shard_config c = base_config(100, 4.0, 4, 10.0);
  c.queue_blocks = 3;
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  replay_block_config bc = {c.shape, c.block_rows, c.max_vocab, c.config_hash, 3};
  replay_block *blk = NULL;
  TEST_ASSERT(replay_block_init(&blk, &bc) == HSRL_OK);
  size_t cap = replay_block_bound(blk);
  uint8_t *frames = hsrl_malloc(5 * cap);
  size_t sizes[5];
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, 8);
  hsrl_rng r;
  hsrl_rng_init(&r, 3, 0);
  for (int b = 0; b < 5; b++) {
    gen_rows(&rows, 8, 1 + 8 * b, 64, &r);
    replay_rows v = replay_rows_buf_view(&rows, 0, 8);
    TEST_ASSERT(replay_block_pack(blk, frames + (size_t)b * cap, cap, &v, &sizes[b], NULL) == HSRL_OK);
  }
  int acc[5];
  for (int b = 0; b < 5; b++)
    TEST_ASSERT(replay_shard_offer(s, frames + (size_t)b * cap, sizes[b], &acc[b]) == HSRL_OK);
  TEST_ASSERT(acc[0] && acc[1] && acc[2] && !acc[3] && !acc[4]);
  const replay_shard_counters *n = replay_shard_get_counters(s);
  TEST_ASSERT(n->queue_full == 2 && n->blocks_received == 3 && replay_shard_queued(s) == 3);
  /* the limiter lets in 4 (free) + 2 more ((6 * 4) - 0 <= 26, 7 * 4 = 28 > 26) */
  int64_t k = 0;
  TEST_ASSERT(replay_shard_pump(s, &k) == HSRL_OK);
  TEST_ASSERT(k == 6 && replay_shard_head_rows_done(s) == 6 && replay_shard_queued(s) == 3);
  TEST_ASSERT(n->insert_waits == 1);
  /* the learner samples; the rest of block 0 and then block 1 follow, in order */
  replay_rows out;
  TEST_ASSERT(replay_shard_sample(s, 8, &out) == 1); /* 24 - 8 = 16 >= 6 */
  TEST_ASSERT(replay_shard_pump(s, &k) == HSRL_OK && k == 2);
  TEST_ASSERT(replay_shard_queued(s) == 2 && replay_shard_head_rows_done(s) == 0);
  TEST_ASSERT(replay_shard_offer(s, frames + 3 * cap, sizes[3], &acc[3]) == HSRL_OK && acc[3]);
  for (int t = 0; t < 40 && replay_shard_queued(s); t++) {
    replay_shard_sample(s, 16, &out);
    TEST_ASSERT(replay_shard_pump(s, NULL) == HSRL_OK);
  }
  TEST_ASSERT(replay_shard_queued(s) == 0 && n->inserted == 32);
  for (int64_t age = 0; age < 32; age++)
    TEST_ASSERT(replay_shard_get(s, replay_shard_slot_of_age(s, age)).users[0] == 1 + age);
  hsrl_free(frames);
  replay_rows_buf_free(&rows);
  replay_block_free(blk);
  replay_shard_free(s);
}

static void test_bad_blocks_dropped(void) {
  replay_shard_config c = base_config(100, 1.0, 1, 1e12);
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  replay_block_config bc = {c.shape, c.block_rows, c.max_vocab, c.config_hash, 3};
  replay_block *blk = NULL;
  TEST_ASSERT(replay_block_init(&blk, &bc) == HSRL_OK);
  size_t cap = replay_block_bound(blk), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, 8);
  hsrl_rng r;
  hsrl_rng_init(&r, 3, 0);
  int acc = 0;
  int64_t k = 0;
  /* good, corrupt, non-derivable next history, good */
  for (int b = 0; b < 4; b++) {
    gen_rows(&rows, 8, 1 + 8 * b, 64, &r);
    if (b == 2) rows.next_history[3 * c.shape.history_len] = 4242;
    replay_rows v = replay_rows_buf_view(&rows, 0, 8);
    TEST_ASSERT(replay_block_pack(blk, frame, cap, &v, &size, NULL) == HSRL_OK);
    if (b == 1) frame[size / 2] ^= 0x20;
    TEST_ASSERT(replay_shard_offer(s, frame, size, &acc) == HSRL_OK && acc);
  }
  TEST_ASSERT(replay_shard_pump(s, &k) == HSRL_E_CORRUPT && k == 8);
  TEST_ASSERT(replay_shard_pump(s, &k) == HSRL_E_INPUT && k == 0);
  TEST_ASSERT(strstr(hsrl_err_message(), "field 'next_history'") && strstr(hsrl_err_message(), "row 3"));
  TEST_ASSERT(replay_shard_pump(s, &k) == HSRL_OK && k == 8);
  const replay_shard_counters *n = replay_shard_get_counters(s);
  TEST_ASSERT(n->blocks_rejected == 2 && n->blocks_received == 4 && n->inserted == 16);
  TEST_ASSERT(replay_shard_get(s, 8).users[0] == 25); /* block 3 followed block 0 */
  /* a block larger than any valid block is refused at the door */
  uint8_t *big = hsrl_calloc(cap + 1, 1);
  TEST_ASSERT(replay_shard_offer(s, big, cap + 1, &acc) == HSRL_E_INPUT && !acc);
  TEST_ASSERT(n->blocks_rejected == 3);
  hsrl_free(big);
  hsrl_free(frame);
  replay_rows_buf_free(&rows);
  replay_block_free(blk);
  replay_shard_free(s);
}

/* ---------------------------------------------------------------- memory */

/* The steady-state loop of a shard and the actor feeding it: pack a block, offer it, pump,
 * sample. After a warm-up (ring wrapped, every path taken) it allocates nothing. */
static void test_zero_allocations_steady_state(void) {
  replay_shard_config c = base_config(64, 2.0, 16, 40.0);
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  replay_block_config bc = {c.shape, c.block_rows, c.max_vocab, c.config_hash, 3};
  replay_block *blk = NULL;
  TEST_ASSERT(replay_block_init(&blk, &bc) == HSRL_OK);
  size_t cap = replay_block_bound(blk), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c.shape, c.block_rows);
  hsrl_rng r;
  hsrl_rng_init(&r, 3, 0);
  int64_t before = 0, served = 0;
  int32_t user = 1;
  for (int it = 0; it < 1200; it++) {
    if (it == 200) before = hsrl_alloc_count();
    gen_rows(&rows, c.block_rows, user, 64, &r);
    user += (int32_t)c.block_rows;
    replay_rows v = replay_rows_buf_view(&rows, 0, c.block_rows);
    TEST_ASSERT(replay_block_pack(blk, frame, cap, &v, &size, NULL) == HSRL_OK);
    int acc = 0;
    TEST_ASSERT(replay_shard_offer(s, frame, size, &acc) == HSRL_OK);
    TEST_ASSERT(replay_shard_pump(s, NULL) == HSRL_OK);
    replay_rows out;
    served += replay_shard_sample(s, c.max_batch, &out);
  }
  int64_t n_alloc = hsrl_alloc_count() - before;
  TEST_ASSERTF(n_alloc == 0, "%lld allocations in 1000 steady-state iterations", (long long)n_alloc);
  TEST_ASSERT(served > 100 && replay_shard_get_counters(s)->inserted > 4 * c.capacity);
  hsrl_free(frame);
  replay_rows_buf_free(&rows);
  replay_block_free(blk);
  replay_shard_free(s);
}

int main(void) {
  TEST_RUN(test_limiter_reverb_semantics);
  TEST_RUN(test_shard_config_checks);
  TEST_RUN(test_sampling_uniform);
  TEST_RUN(test_limiter_bounds_random_schedule);
  TEST_RUN(test_ring_overwrite);
  TEST_RUN(test_rows_storage_rules);
  TEST_RUN(test_queue_push_back_and_partial_inserts);
  TEST_RUN(test_bad_blocks_dropped);
  TEST_RUN(test_zero_allocations_steady_state);
  return test_summary();
}
