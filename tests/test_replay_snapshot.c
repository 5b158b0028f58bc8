/* test_replay_snapshot.c: replay shard snapshots (replay/replay_snapshot.h) and `hsrl replay
 * inspect` (replay/replay_cmd.h): an exact round trip of the whole state (a wrapped ring, uint8
 * and uint16 tokens, derived and stored next histories, counters, limiter, sampling stream, a
 * queue whose front block is partly inserted) shown by the two shards behaving identically
 * afterwards; an empty shard; restore into a shard of another config (the field is named);
 * damaged files (truncated at many lengths, bytes flipped all over) refused or, where the damage
 * hit unused bytes, read back identical, never a crash; wrong kind and missing files; the
 * inspect command's exit codes.
 *
 * `test_replay_snapshot --write FILE` writes a sample snapshot and exits (for
 * tests/cli_replay_snapshot.sh, which reads it with h5dump, h5py and `hsrl replay inspect`);
 * `test_replay_snapshot replay ARGS...` runs the `hsrl replay` command itself (until hsrl.c
 * lists it). */
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/io/io_h5.h"
#include "replay/replay_block.h"
#include "replay/replay_cmd.h"
#include "replay/replay_snapshot.h"
#include "tests/test_harness.h"

/* libhdf5 leaks a little memory on some error paths when it meets damaged metadata (the flipped
 * byte test); not ours to fix, so the sanitizer build's leak checker ignores allocations made
 * inside libhdf5 (as test_io_h5.c does). Our own HDF5 handles are counted instead: every test
 * must leave io_h5_open_handles() as it found it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

static void gen_rows(replay_rows_buf *b, int64_t n, int32_t first_user, int64_t vocab, double p_stored,
                     hsrl_rng *r) {
  const int64_t H = b->shape.history_len, K = b->shape.slate_size, KL = K * b->shape.n_levels;
  for (int64_t i = 0; i < n; i++) {
    b->users[i] = b->next_users[i] = first_user + (int32_t)i;
    int64_t pad = (int64_t)hsrl_rng_below(r, (uint64_t)H);
    for (int64_t h = 0; h < H; h++) b->history[i * H + h] = h < pad ? 0 : 1 + (int32_t)hsrl_rng_below(r, 900);
    for (int64_t k = 0; k < K; k++) {
      b->slate[i * K + k] = 1 + (int32_t)hsrl_rng_below(r, 900);
      b->clicks[i * K + k] = (uint8_t)hsrl_rng_bernoulli(r, 0.25f);
    }
    for (int64_t j = 0; j < KL; j++) b->tokens[i * KL + j] = (uint16_t)hsrl_rng_below(r, (uint64_t)vocab);
    if (b->logp)
      for (int64_t j = 0; j < KL; j++) b->logp[i * KL + j] = -3.0f * hsrl_rng_uniform(r);
    b->reward[i] = hsrl_rng_uniform(r) - 0.2f;
    b->done[i] = (uint8_t)hsrl_rng_bernoulli(r, 0.1f);
    b->policy_version[i] = first_user / 16;
    replay_rows_next_history(b->next_history + i * H, b->history + i * H, b->slate + i * K,
                             b->clicks + i * K, H, K);
    if (hsrl_rng_uniform_double(r) < p_stored) b->next_history[i * H] = 1 + (int32_t)hsrl_rng_below(r, 900);
  }
}

static replay_shard_config snap_config(int64_t capacity, int64_t vocab, int store_nh) {
  replay_shard_config c;
  memset(&c, 0, sizeof c);
  c.shape = (replay_rows_shape){12, 5, 3, 1};
  c.capacity = capacity;
  c.max_vocab = vocab;
  c.store_next_history = store_nh;
  c.max_batch = 16;
  c.block_rows = 8;
  c.queue_blocks = 4;
  c.limiter = (replay_limiter_config){1.0, 5, 8.5};
  c.seed = 1234;
  c.stream = 1;
  c.config_hash = 0xabcdef12345ull;
  return c;
}

/* Drives s through `rounds` rounds of (offer a block, pump, sample sample_b), then offers two more
 * blocks without sampling, so the limiter stops inside a block. */
static int fill_shard(replay_shard *s, int rounds, uint64_t seed, int64_t sample_b) {
  const replay_shard_config *c = replay_shard_get_config(s);
  replay_block_config bc = {c->shape, c->block_rows, c->max_vocab, c->config_hash, 3};
  replay_block *blk = NULL;
  if (replay_block_init(&blk, &bc) != HSRL_OK) return 0;
  size_t cap = replay_block_bound(blk), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  replay_rows_buf rows;
  replay_rows_buf_init(&rows, &c->shape, c->block_rows);
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  int ok = 1;
  int32_t user = 1;
  for (int t = 0; t < rounds + 2 && ok; t++) {
    gen_rows(&rows, c->block_rows, user, c->max_vocab ? c->max_vocab : 2000, c->store_next_history ? 0.3 : 0.0, &r);
    user += (int32_t)c->block_rows;
    replay_rows v = replay_rows_buf_view(&rows, 0, c->block_rows);
    int acc = 0;
    ok = replay_block_pack(blk, frame, cap, &v, &size, NULL) == HSRL_OK &&
         replay_shard_offer(s, frame, size, &acc) == HSRL_OK && replay_shard_pump(s, NULL) == HSRL_OK;
    replay_rows out;
    if (t < rounds) replay_shard_sample(s, sample_b, &out);
  }
  hsrl_free(frame);
  replay_rows_buf_free(&rows);
  replay_block_free(blk);
  return ok;
}

/* 1 if a and b hold the same state (config, counters, limiter, stream, queue, storage). */
static int shards_equal(replay_shard *a, replay_shard *b) {
  const replay_shard_config *ca = replay_shard_get_config(a), *cb = replay_shard_get_config(b);
  if (!replay_rows_shape_equal(&ca->shape, &cb->shape) || ca->capacity != cb->capacity ||
      ca->max_vocab != cb->max_vocab || ca->store_next_history != cb->store_next_history ||
      ca->max_batch != cb->max_batch || ca->block_rows != cb->block_rows ||
      ca->queue_blocks != cb->queue_blocks || ca->seed != cb->seed || ca->stream != cb->stream ||
      ca->config_hash != cb->config_hash || ca->limiter.samples_per_insert != cb->limiter.samples_per_insert ||
      ca->limiter.min_size_to_sample != cb->limiter.min_size_to_sample ||
      ca->limiter.error_buffer != cb->limiter.error_buffer)
    return 0;
  if (memcmp(replay_shard_get_counters(a), replay_shard_get_counters(b), sizeof(replay_shard_counters)))
    return 0;
  const replay_limiter *la = replay_shard_get_limiter(a), *lb = replay_shard_get_limiter(b);
  if (la->inserts != lb->inserts || la->samples != lb->samples || la->deletes != lb->deletes ||
      la->min_diff != lb->min_diff || la->max_diff != lb->max_diff)
    return 0;
  if (memcmp(replay_shard_get_rng(a), replay_shard_get_rng(b), sizeof(hsrl_rng))) return 0;
  if (replay_shard_head_rows_done(a) != replay_shard_head_rows_done(b)) return 0;
  replay_queue *qa = replay_shard_get_queue(a), *qb = replay_shard_get_queue(b);
  if (replay_queue_length(qa) != replay_queue_length(qb)) return 0;
  for (int64_t i = 0; i < replay_queue_length(qa); i++) {
    size_t na = 0, nb = 0;
    const void *pa = replay_queue_at(qa, i, &na), *pb = replay_queue_at(qb, i, &nb);
    if (na != nb || memcmp(pa, pb, na)) return 0;
  }
  const replay_shard_store *ma = replay_shard_get_store(a), *mb = replay_shard_get_store(b);
  const size_t C = (size_t)ca->capacity, H = (size_t)ca->shape.history_len, K = (size_t)ca->shape.slate_size;
  const size_t KL = K * (size_t)ca->shape.n_levels;
#define SAME(field, bytes) ((!ma->field && !mb->field) || (ma->field && mb->field && !memcmp(ma->field, mb->field, bytes)))
  return SAME(users, C * 4) && SAME(history, C * H * 4) && SAME(slate, C * K * 4) && SAME(tokens8, C * KL) &&
         SAME(tokens16, C * KL * 2) && SAME(clicks, C * (size_t)ma->clicks_bytes) && SAME(done, C) &&
         SAME(reward, C * 4) && SAME(logp, C * KL * 4) && SAME(policy_version, C * 4) &&
         SAME(next_users, C * 4) && SAME(next_history, C * H * 4);
#undef SAME
}

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int i = 0;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", test_tmpdir(), name);
  return buf[i];
}

/* Both shards go on with the same calls and must give the same samples. */
static int continue_identically(replay_shard *a, replay_shard *b) {
  for (int t = 0; t < 20; t++) {
    replay_rows ra, rb;
    int sa = replay_shard_sample(a, 16, &ra), sb = replay_shard_sample(b, 16, &rb);
    if (sa != sb) return 0;
    if (sa && memcmp(replay_shard_last_slots(a), replay_shard_last_slots(b), 16 * sizeof(int64_t))) return 0;
    if (sa && (memcmp(ra.users, rb.users, 16 * 4) || memcmp(ra.next_history, rb.next_history, 16 * 12 * 4)))
      return 0;
    int64_t ka = 0, kb = 0;
    if (replay_shard_pump(a, &ka) != replay_shard_pump(b, &kb) || ka != kb) return 0;
  }
  return shards_equal(a, b);
}

static void round_trip(int64_t vocab, int store_nh, int rounds) {
  replay_shard_config c = snap_config(40, vocab, store_nh);
  replay_shard *s = NULL, *t = NULL, *u = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  TEST_ASSERT(fill_shard(s, rounds, 7, 8));
  if (rounds > 0) {
    TEST_ASSERT(replay_shard_get_counters(s)->inserted > c.capacity); /* wrapped */
    TEST_ASSERTF(replay_shard_head_rows_done(s) > 0, "front block untouched (%lld queued)",
                 (long long)replay_shard_queued(s));
  }
  TEST_ASSERT(replay_shard_tokens_u16(s) == (vocab == 0 || vocab > 256));
  const char *path = tmp_path("shard-0.h5");
  hsrl_status st = replay_snapshot_write(s, path);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  /* a new shard from the file */
  st = replay_snapshot_read(&t, path);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(shards_equal(s, t));
  /* restore into an existing shard of the same config */
  TEST_ASSERT(replay_shard_init(&u, &c) == HSRL_OK);
  st = replay_snapshot_restore(u, path);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(shards_equal(s, u));
  TEST_ASSERT(continue_identically(s, t)); /* the read shard goes on as the written one */
  replay_shard *v = NULL;
  TEST_ASSERT(replay_snapshot_read(&v, path) == HSRL_OK);
  TEST_ASSERT(continue_identically(u, v)); /* and so does the restored one */
  replay_shard_free(v);
  /* an overwrite of the file is atomic and leaves no temporary behind */
  TEST_ASSERT(replay_snapshot_write(t, path) == HSRL_OK);
  replay_shard_free(s);
  replay_shard_free(t);
  replay_shard_free(u);
}

static void test_round_trip_uint8_derived(void) { round_trip(64, 0, 12); }
static void test_round_trip_uint16_stored(void) { round_trip(1000, 1, 12); }
static void test_round_trip_empty(void) {
  replay_shard_config c = snap_config(40, 0, 0);
  replay_shard *s = NULL, *t = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  const char *path = tmp_path("empty.h5");
  TEST_ASSERT(replay_snapshot_write(s, path) == HSRL_OK);
  TEST_ASSERT(replay_snapshot_read(&t, path) == HSRL_OK);
  TEST_ASSERT(shards_equal(s, t) && replay_shard_size(t) == 0);
  replay_shard_free(s);
  replay_shard_free(t);
}

static void test_restore_config_mismatch(void) {
  replay_shard_config c = snap_config(40, 64, 0);
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  TEST_ASSERT(fill_shard(s, 3, 1, 8));
  const char *path = tmp_path("mismatch.h5");
  TEST_ASSERT(replay_snapshot_write(s, path) == HSRL_OK);
  replay_shard_free(s);
  struct {
    replay_shard_config c;
    const char *field;
  } cases[4];
  cases[0].c = snap_config(41, 64, 0), cases[0].field = "capacity";
  cases[1].c = snap_config(40, 64, 1), cases[1].field = "store_next_history";
  cases[2].c = snap_config(40, 64, 0), cases[2].c.limiter.error_buffer = 9.0, cases[2].field = "limiter.error_buffer";
  cases[3].c = snap_config(40, 64, 0), cases[3].c.config_hash = 5, cases[3].field = "config_hash";
  for (int i = 0; i < 4; i++) {
    TEST_ASSERT(replay_shard_init(&s, &cases[i].c) == HSRL_OK);
    hsrl_status st = replay_snapshot_restore(s, path);
    char want[64];
    snprintf(want, sizeof want, "field '%s'", cases[i].field);
    TEST_ASSERTF(st == HSRL_E_INPUT && strstr(hsrl_err_message(), want) && strstr(hsrl_err_message(), path),
                 "%s: %s", cases[i].field, hsrl_err_message());
    replay_shard_free(s);
  }
}

static int64_t file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

static int copy_with(const char *src, const char *dst, int64_t keep, int64_t flip_at) {
  FILE *f = fopen(src, "rb");
  if (!f) return 0;
  int64_t n = file_size(src);
  uint8_t *buf = hsrl_malloc((size_t)n);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  if ((int64_t)got != n) return hsrl_free(buf), 0;
  if (flip_at >= 0 && flip_at < n) buf[flip_at] ^= 0x5a;
  f = fopen(dst, "wb");
  size_t put = f ? fwrite(buf, 1, (size_t)(keep < n ? keep : n), f) : 0;
  if (f) fclose(f);
  hsrl_free(buf);
  return put == (size_t)(keep < n ? keep : n);
}

/* Damage: every outcome is a clean error naming the file, or (damage in bytes nothing reads)
 * the identical state; most damage must be detected. */
static void test_damaged_files(void) {
  replay_shard_config c = snap_config(40, 64, 0);
  replay_shard *s = NULL, *t = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  TEST_ASSERT(fill_shard(s, 10, 3, 8));
  const char *path = tmp_path("good.h5"), *bad = tmp_path("bad.h5");
  TEST_ASSERT(replay_snapshot_write(s, path) == HSRL_OK);
  const int64_t n = file_size(path);
  int n_detected = 0, n_trials = 0;
  for (int64_t keep = 0; keep < n; keep += n / 23 + 1) {
    TEST_ASSERT(copy_with(path, bad, keep, -1));
    hsrl_status st = replay_snapshot_read(&t, bad);
    TEST_ASSERTF(st != HSRL_OK && t == NULL, "truncated to %lld of %lld bytes: read", (long long)keep, (long long)n);
    TEST_ASSERTF(strstr(hsrl_err_message(), "bad.h5"), "message without the file: %s", hsrl_err_message());
  }
  for (int64_t at = 0; at < n; at += n / 97 + 1) {
    TEST_ASSERT(copy_with(path, bad, n, at));
    hsrl_status st = replay_snapshot_read(&t, bad);
    n_trials++;
    if (st != HSRL_OK) {
      n_detected++;
      TEST_ASSERT(t == NULL);
      TEST_ASSERTF(st == HSRL_E_CORRUPT || st == HSRL_E_INPUT, "flip at %lld: %s", (long long)at, hsrl_status_name(st));
    } else {
      TEST_ASSERTF(shards_equal(s, t), "flip at %lld: read without error but different", (long long)at);
      replay_shard_free(t);
      t = NULL;
    }
  }
  TEST_ASSERTF(n_detected * 2 > n_trials, "only %d of %d flips detected", n_detected, n_trials);
  /* a file of another kind, a missing file */
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, bad) == HSRL_OK && io_h5_stamp(f, "checkpoint", 1, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(replay_snapshot_read(&t, bad) == HSRL_E_INPUT && strstr(hsrl_err_message(), "checkpoint"));
  TEST_ASSERT(replay_snapshot_read(&t, tmp_path("nope.h5")) == HSRL_E_INPUT);
  replay_shard_free(s);
}

/* ---------------------------------------------------------------- hsrl replay inspect */

static int run_cmd(int argc, const char **argv) { return replay_command(argc, (char **)argv); }

static void test_inspect_command(void) {
  replay_shard_config c = snap_config(40, 64, 0);
  replay_shard *s = NULL;
  TEST_ASSERT(replay_shard_init(&s, &c) == HSRL_OK);
  TEST_ASSERT(fill_shard(s, 6, 5, 8));
  const char *path = tmp_path("inspect.h5"), *bad = tmp_path("inspect-bad.h5");
  TEST_ASSERT(replay_snapshot_write(s, path) == HSRL_OK);
  replay_shard_free(s);
  TEST_ASSERT(copy_with(path, bad, file_size(path) / 2, -1));
  const char *ok1[] = {"replay", "inspect", path};
  const char *ok2[] = {"replay", "inspect", path, "--rows", "2"};
  const char *ok3[] = {"replay", "inspect", "--rows=0", path};
  const char *help[] = {"replay", "inspect", "--help"};
  const char *help2[] = {"replay", "--help"};
  const char *corrupt[] = {"replay", "inspect", bad};
  const char *missing[] = {"replay", "inspect", tmp_path("missing.h5")};
  const char *no_file[] = {"replay", "inspect"};
  const char *bad_rows[] = {"replay", "inspect", path, "--rows", "x"};
  const char *bad_opt[] = {"replay", "inspect", path, "--frobnicate"};
  const char *bad_sub[] = {"replay", "dump", path};
  const char *bare[] = {"replay"};
  fflush(stdout);
  TEST_ASSERT(run_cmd(3, ok1) == 0);
  TEST_ASSERT(run_cmd(5, ok2) == 0);
  TEST_ASSERT(run_cmd(4, ok3) == 0);
  TEST_ASSERT(run_cmd(3, help) == 0);
  TEST_ASSERT(run_cmd(2, help2) == 0);
  TEST_ASSERT(run_cmd(3, corrupt) == 2);
  TEST_ASSERT(run_cmd(3, missing) == 2);
  TEST_ASSERT(run_cmd(2, no_file) == 2);
  TEST_ASSERT(run_cmd(5, bad_rows) == 2);
  TEST_ASSERT(run_cmd(4, bad_opt) == 2);
  TEST_ASSERT(run_cmd(3, bad_sub) == 2);
  TEST_ASSERT(run_cmd(1, bare) == 2);
}

/* The sample for cli_replay_snapshot.sh: 500 slots, H 20, K 6, L 3 (V 64), log-probs, wrapped. */
static int write_sample(const char *path) {
  replay_shard_config c = snap_config(500, 64, 0);
  c.shape = (replay_rows_shape){20, 6, 3, 1};
  c.block_rows = 32;
  c.max_batch = 64;
  c.limiter = (replay_limiter_config){2.0, 100, 48.0};
  replay_shard *s = NULL;
  if (replay_shard_init(&s, &c) != HSRL_OK || !fill_shard(s, 40, 11, 64)) return 1;
  hsrl_status st = replay_snapshot_write(s, path);
  if (st != HSRL_OK) fprintf(stderr, "%s\n", hsrl_err_message());
  replay_shard_free(s);
  return st == HSRL_OK ? 0 : 1;
}

static int64_t handles_before;
static void check_handles(void) {
  TEST_ASSERTF(io_h5_open_handles() == handles_before, "%lld HDF5 handles left open",
               (long long)(io_h5_open_handles() - handles_before));
}
#define RUN(fn) do { handles_before = io_h5_open_handles(); TEST_RUN(fn); TEST_RUN(check_handles); } while (0)

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write")) return write_sample(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "replay")) return replay_command(argc - 1, argv + 1);
  RUN(test_round_trip_uint8_derived);
  RUN(test_round_trip_uint16_stored);
  RUN(test_round_trip_empty);
  RUN(test_restore_config_mismatch);
  RUN(test_damaged_files);
  RUN(test_inspect_command);
  return test_summary();
}
