/* replay_snapshot.c: replay shard <-> HDF5 (see replay_snapshot.h for the layout). */
#include "replay/replay_snapshot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/io/io_h5.h"

#define SNAP_NEXT_HISTORY_RULE \
  "derived: the last H of (history ++ the clicked slate items in slate order)"

/* ---------------------------------------------------------------- write */

static hsrl_status snap_write_config(io_h5 *f, const replay_shard *s) {
  hsrl_status st = HSRL_OK;
  const replay_shard_config *c = replay_shard_get_config(s);
  const char *g = "shard";
  HSRL_TRY(io_h5_attr_set_i64(f, g, "capacity", c->capacity));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "history_len", c->shape.history_len));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "slate_size", c->shape.slate_size));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "n_levels", c->shape.n_levels));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "with_logp", c->shape.with_logp));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "max_vocab", c->max_vocab));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "token_bytes", replay_shard_tokens_u16(s) ? 2 : 1));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "store_next_history", c->store_next_history));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "max_batch", c->max_batch));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "block_rows", c->block_rows));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "queue_blocks", c->queue_blocks));
  HSRL_TRY(io_h5_attr_set_u64(f, g, "seed", c->seed));
  HSRL_TRY(io_h5_attr_set_u64(f, g, "stream", c->stream));
  HSRL_TRY(io_h5_attr_set_f64(f, g, "samples_per_insert", c->limiter.samples_per_insert));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "min_size_to_sample", c->limiter.min_size_to_sample));
  HSRL_TRY(io_h5_attr_set_f64(f, g, "error_buffer", c->limiter.error_buffer));
done:
  return st;
}

static hsrl_status snap_write_state(io_h5 *f, replay_shard *s) {
  hsrl_status st = HSRL_OK;
  const replay_shard_counters *c = replay_shard_get_counters(s);
  const replay_limiter *l = replay_shard_get_limiter(s);
  const char *g = "counters";
  HSRL_TRY(io_h5_attr_set_i64(f, g, "size", replay_shard_size(s)));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "inserted", c->inserted));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "sampled", c->sampled));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "sample_calls", c->sample_calls));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "sample_waits", c->sample_waits));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "insert_waits", c->insert_waits));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "queue_full", c->queue_full));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "blocks_received", c->blocks_received));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "blocks_rejected", c->blocks_rejected));
  g = "limiter";
  HSRL_TRY(io_h5_attr_set_i64(f, g, "inserts", l->inserts));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "samples", l->samples));
  HSRL_TRY(io_h5_attr_set_i64(f, g, "deletes", l->deletes));
  HSRL_TRY(io_h5_attr_set_f64(f, g, "min_diff", l->min_diff));
  HSRL_TRY(io_h5_attr_set_f64(f, g, "max_diff", l->max_diff));
  const hsrl_rng *r = replay_shard_get_rng(s);
  int64_t v[11], d11[1] = {11};
  for (int i = 0; i < 2; i++) v[i] = r->key[i];
  for (int i = 0; i < 4; i++) v[2 + i] = r->ctr[i], v[6 + i] = r->buf[i];
  v[10] = r->n_buf;
  HSRL_TRY(io_h5_write_i64(f, "rng", v, 1, d11, IO_H5_ZSTD)); /* compressed: checksummed */
  /* the queue: framed blocks as received (they carry their own checksums) */
  replay_queue *q = replay_shard_get_queue(s);
  HSRL_TRY(io_h5_attr_set_i64(f, "queue", "n_blocks", replay_queue_length(q)));
  HSRL_TRY(io_h5_attr_set_i64(f, "queue", "head_rows_done", replay_shard_head_rows_done(s)));
  for (int64_t i = 0; i < replay_queue_length(q); i++) {
    size_t n = 0;
    const void *b = replay_queue_at(q, i, &n);
    char name[64];
    snprintf(name, sizeof name, "queue/block-%05lld", (long long)i);
    int64_t dims[1] = {(int64_t)n};
    HSRL_TRY(io_h5_write_u8(f, name, b, 1, dims, 1)); /* zstd level 1 for its checksum */
  }
done:
  return st;
}

static hsrl_status snap_write_transitions(io_h5 *f, replay_shard *s) {
  hsrl_status st = HSRL_OK;
  const replay_shard_config *c = replay_shard_get_config(s);
  const replay_shard_store *m = replay_shard_get_store(s);
  const int64_t n = replay_shard_size(s), H = c->shape.history_len, K = c->shape.slate_size;
  const int64_t L = c->shape.n_levels;
  const int z = IO_H5_ZSTD;
  int64_t d1[1] = {n}, dH[2] = {n, H}, dK[2] = {n, K}, dKL[3] = {n, K, L};
  uint8_t *clicks = NULL;
  HSRL_TRY(io_h5_attr_set_str(f, "transitions", "order",
                              "slot order: transition t is in slot t % capacity"));
  if (!m->next_history)
    HSRL_TRY(io_h5_attr_set_str(f, "transitions", "next_history", SNAP_NEXT_HISTORY_RULE));
  if (n == 0) goto done;
  HSRL_TRY(io_h5_write_i32(f, "transitions/user", m->users, 1, d1, z));
  HSRL_TRY(io_h5_write_i32(f, "transitions/history", m->history, 2, dH, z));
  HSRL_TRY(io_h5_write_i32(f, "transitions/slate", m->slate, 2, dK, z));
  if (m->tokens8) HSRL_TRY(io_h5_write_u8(f, "transitions/tokens", m->tokens8, 3, dKL, z));
  if (m->tokens16) HSRL_TRY(io_h5_write_u16(f, "transitions/tokens", m->tokens16, 3, dKL, z));
  clicks = hsrl_malloc((size_t)(n * K));
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < K; k++)
      clicks[i * K + k] = (uint8_t)((m->clicks[i * m->clicks_bytes + (k >> 3)] >> (k & 7)) & 1u);
  HSRL_TRY(io_h5_write_u8(f, "transitions/clicks", clicks, 2, dK, z));
  HSRL_TRY(io_h5_write_u8(f, "transitions/done", m->done, 1, d1, z));
  HSRL_TRY(io_h5_write_f32(f, "transitions/reward", m->reward, 1, d1, z));
  if (m->logp) HSRL_TRY(io_h5_write_f32(f, "transitions/behaviour_logp", m->logp, 3, dKL, z));
  HSRL_TRY(io_h5_write_i32(f, "transitions/policy_version", m->policy_version, 1, d1, z));
  HSRL_TRY(io_h5_write_i32(f, "transitions/next_user", m->next_users, 1, d1, z));
  if (m->next_history)
    HSRL_TRY(io_h5_write_i32(f, "transitions/next_history", m->next_history, 2, dH, z));
done:
  hsrl_free(clicks);
  return st;
}

hsrl_status replay_snapshot_write(replay_shard *s, const char *path) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, REPLAY_SNAPSHOT_KIND, REPLAY_SNAPSHOT_VERSION,
                       replay_shard_get_config(s)->config_hash));
  HSRL_TRY(snap_write_config(f, s));
  HSRL_TRY(snap_write_state(f, s));
  HSRL_TRY(snap_write_transitions(f, s));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

/* ---------------------------------------------------------------- read */

/* The config stored in f (config_hash from the stamp). */
static hsrl_status snap_read_config(io_h5 *f, replay_shard_config *c, int64_t *token_bytes) {
  hsrl_status st = HSRL_OK;
  const char *g = "shard";
  int64_t with_logp = 0, store_nh = 0;
  memset(c, 0, sizeof *c);
  HSRL_TRY(io_h5_check_stamp(f, REPLAY_SNAPSHOT_KIND, REPLAY_SNAPSHOT_VERSION,
                             REPLAY_SNAPSHOT_VERSION, NULL, &c->config_hash));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "capacity", &c->capacity));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "history_len", &c->shape.history_len));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "slate_size", &c->shape.slate_size));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "n_levels", &c->shape.n_levels));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "with_logp", &with_logp));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "max_vocab", &c->max_vocab));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "token_bytes", token_bytes));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "store_next_history", &store_nh));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "max_batch", &c->max_batch));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "block_rows", &c->block_rows));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "queue_blocks", &c->queue_blocks));
  HSRL_TRY(io_h5_attr_get_u64(f, g, "seed", &c->seed));
  HSRL_TRY(io_h5_attr_get_u64(f, g, "stream", &c->stream));
  HSRL_TRY(io_h5_attr_get_f64(f, g, "samples_per_insert", &c->limiter.samples_per_insert));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "min_size_to_sample", &c->limiter.min_size_to_sample));
  HSRL_TRY(io_h5_attr_get_f64(f, g, "error_buffer", &c->limiter.error_buffer));
  c->shape.with_logp = with_logp != 0;
  c->store_next_history = store_nh != 0;
  /* sizes that would make init abort or allocate absurdly are a damaged file, not a bug */
  const int64_t H = c->shape.history_len, K = c->shape.slate_size, L = c->shape.n_levels;
  if (c->capacity < 1 || c->capacity > ((int64_t)1 << 40) || H < 1 || H > 65536 || K < 1 ||
      K > 65536 || L < 0 || L > 64 || (with_logp && !L) || (with_logp != 0 && with_logp != 1) ||
      (store_nh != 0 && store_nh != 1) || (*token_bytes != 1 && *token_bytes != 2) ||
      c->max_batch < 1 || c->max_batch > ((int64_t)1 << 30) || c->block_rows < 1 ||
      c->block_rows > ((int64_t)1 << 24) || c->queue_blocks < 1 || c->queue_blocks > 65536)
    return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, "shard",
                    "implausible shard config (capacity %lld, H %lld, K %lld, L %lld, ...)",
                    (long long)c->capacity, (long long)H, (long long)K, (long long)L);
done:
  return st;
}

/* HSRL_E_INPUT naming the first config field where the file (a) and the shard (b) differ. */
static hsrl_status snap_compare_config(const char *path, const replay_shard_config *a,
                                       const replay_shard_config *b) {
#define SNAP_SAME(field, fmt, cast)                                                                \
  if (a->field != b->field)                                                                        \
    return hsrl_err(HSRL_E_INPUT, path, 0, #field, "the snapshot has " fmt ", this shard " fmt, \
                    (cast)a->field, (cast)b->field);
  SNAP_SAME(capacity, "%lld", long long)
  SNAP_SAME(shape.history_len, "%lld", long long)
  SNAP_SAME(shape.slate_size, "%lld", long long)
  SNAP_SAME(shape.n_levels, "%lld", long long)
  SNAP_SAME(shape.with_logp, "%d", int)
  SNAP_SAME(max_vocab, "%lld", long long)
  SNAP_SAME(store_next_history, "%d", int)
  SNAP_SAME(max_batch, "%lld", long long)
  SNAP_SAME(block_rows, "%lld", long long)
  SNAP_SAME(queue_blocks, "%lld", long long)
  SNAP_SAME(seed, "%llu", unsigned long long)
  SNAP_SAME(stream, "%llu", unsigned long long)
  SNAP_SAME(limiter.samples_per_insert, "%g", double)
  SNAP_SAME(limiter.min_size_to_sample, "%lld", long long)
  SNAP_SAME(limiter.error_buffer, "%g", double)
#undef SNAP_SAME
  if (a->config_hash && b->config_hash && a->config_hash != b->config_hash)
    return hsrl_err(HSRL_E_INPUT, path, 0, "config_hash",
                    "the snapshot was written under config %016llx, this shard runs %016llx",
                    (unsigned long long)a->config_hash, (unsigned long long)b->config_hash);
  return HSRL_OK;
}

static hsrl_status snap_read_transitions(io_h5 *f, replay_shard *s, int64_t n) {
  hsrl_status st = HSRL_OK;
  const replay_shard_config *c = replay_shard_get_config(s);
  replay_shard_store *m = replay_shard_get_store(s);
  const int64_t H = c->shape.history_len, K = c->shape.slate_size, KL = K * c->shape.n_levels;
  const char *path = io_h5_path(f);
  uint8_t *clicks = NULL;
  if (n == 0) goto done;
  HSRL_TRY(io_h5_read_i32(f, "transitions/user", m->users, n));
  HSRL_TRY(io_h5_read_i32(f, "transitions/history", m->history, n * H));
  HSRL_TRY(io_h5_read_i32(f, "transitions/slate", m->slate, n * K));
  if (m->tokens8) HSRL_TRY(io_h5_read_u8(f, "transitions/tokens", m->tokens8, n * KL));
  if (m->tokens16) HSRL_TRY(io_h5_read_u16(f, "transitions/tokens", m->tokens16, n * KL));
  if (c->max_vocab > 0)
    for (int64_t j = 0; j < n * KL; j++) {
      int64_t t = m->tokens8 ? m->tokens8[j] : m->tokens16[j];
      if (t >= c->max_vocab)
        return hsrl_err(HSRL_E_CORRUPT, path, 0, "transitions/tokens",
                        "slot %lld: token %lld >= the vocabulary %lld", (long long)(j / KL),
                        (long long)t, (long long)c->max_vocab);
    }
  clicks = hsrl_malloc((size_t)(n * K));
  HSRL_TRY(io_h5_read_u8(f, "transitions/clicks", clicks, n * K));
  memset(m->clicks, 0, (size_t)(n * m->clicks_bytes));
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < K; k++) {
      uint8_t v = clicks[i * K + k];
      if (v > 1) {
        st = hsrl_err(HSRL_E_CORRUPT, path, 0, "transitions/clicks",
                      "slot %lld item %lld: %d is not 0/1", (long long)i, (long long)k, v);
        goto done;
      }
      m->clicks[i * m->clicks_bytes + (k >> 3)] |= (uint8_t)(v << (k & 7));
    }
  HSRL_TRY(io_h5_read_u8(f, "transitions/done", m->done, n));
  for (int64_t i = 0; i < n; i++)
    if (m->done[i] > 1) {
      st = hsrl_err(HSRL_E_CORRUPT, path, 0, "transitions/done", "slot %lld: %d is not 0/1",
                    (long long)i, m->done[i]);
      goto done;
    }
  HSRL_TRY(io_h5_read_f32(f, "transitions/reward", m->reward, n));
  if (m->logp) HSRL_TRY(io_h5_read_f32(f, "transitions/behaviour_logp", m->logp, n * KL));
  HSRL_TRY(io_h5_read_i32(f, "transitions/policy_version", m->policy_version, n));
  HSRL_TRY(io_h5_read_i32(f, "transitions/next_user", m->next_users, n));
  if (m->next_history)
    HSRL_TRY(io_h5_read_i32(f, "transitions/next_history", m->next_history, n * H));
done:
  hsrl_free(clicks);
  return st;
}

static hsrl_status snap_read_state(io_h5 *f, replay_shard *s, int64_t *size) {
  hsrl_status st = HSRL_OK;
  const char *path = io_h5_path(f);
  replay_shard_counters c = {0};
  int64_t n_size = 0, inserts = 0, samples = 0, deletes = 0, n_blocks = 0, head_done = 0;
  const char *g = "counters";
  HSRL_TRY(io_h5_attr_get_i64(f, g, "size", &n_size));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "inserted", &c.inserted));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "sampled", &c.sampled));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "sample_calls", &c.sample_calls));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "sample_waits", &c.sample_waits));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "insert_waits", &c.insert_waits));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "queue_full", &c.queue_full));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "blocks_received", &c.blocks_received));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "blocks_rejected", &c.blocks_rejected));
  g = "limiter";
  HSRL_TRY(io_h5_attr_get_i64(f, g, "inserts", &inserts));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "samples", &samples));
  HSRL_TRY(io_h5_attr_get_i64(f, g, "deletes", &deletes));
  const int64_t cap = replay_shard_get_config(s)->capacity;
  if (c.inserted < 0 || n_size != (c.inserted < cap ? c.inserted : cap) || inserts != c.inserted ||
      samples != c.sampled)
    return hsrl_err(HSRL_E_CORRUPT, path, 0, "counters",
                    "size %lld, inserted %lld, sampled %lld disagree with the limiter's inserts "
                    "%lld, samples %lld (capacity %lld)",
                    (long long)n_size, (long long)c.inserted, (long long)c.sampled,
                    (long long)inserts, (long long)samples, (long long)cap);
  int64_t v[11];
  HSRL_TRY(io_h5_read_i64(f, "rng", v, 11));
  hsrl_rng rng;
  for (int i = 0; i < 2; i++) rng.key[i] = (uint32_t)v[i];
  for (int i = 0; i < 4; i++) rng.ctr[i] = (uint32_t)v[2 + i], rng.buf[i] = (uint32_t)v[6 + i];
  rng.n_buf = (int)(v[10] >= 0 && v[10] <= 4 ? v[10] : -1);
  /* the queue */
  replay_queue *q = replay_shard_get_queue(s);
  HSRL_TRY(io_h5_attr_get_i64(f, "queue", "n_blocks", &n_blocks));
  HSRL_TRY(io_h5_attr_get_i64(f, "queue", "head_rows_done", &head_done));
  if (n_blocks < 0 || n_blocks > replay_queue_capacity(q))
    return hsrl_err(HSRL_E_CORRUPT, path, 0, "queue", "%lld blocks in a queue of %lld",
                    (long long)n_blocks, (long long)replay_queue_capacity(q));
  replay_queue_clear(q);
  uint8_t *buf = hsrl_malloc(replay_queue_slot_bytes(q));
  for (int64_t i = 0; i < n_blocks && st == HSRL_OK; i++) {
    char name[64];
    int ndims = 0;
    int64_t dims[IO_H5_MAX_DIMS];
    snprintf(name, sizeof name, "queue/block-%05lld", (long long)i);
    st = io_h5_shape(f, name, &ndims, dims);
    if (st == HSRL_OK && (ndims != 1 || dims[0] < 1 || (size_t)dims[0] > replay_queue_slot_bytes(q)))
      st = hsrl_err(HSRL_E_CORRUPT, path, 0, name, "not a block of 1..%zu bytes",
                    replay_queue_slot_bytes(q));
    if (st == HSRL_OK) st = io_h5_read_u8(f, name, buf, dims[0]);
    if (st == HSRL_OK) replay_queue_push(q, buf, (size_t)dims[0]);
  }
  hsrl_free(buf);
  if (st != HSRL_OK) goto done;
  HSRL_TRY(replay_shard_set_state(s, &c, deletes, &rng, head_done, path));
  *size = n_size;
done:
  return st;
}

/* Restores f into s (config already compared). */
static hsrl_status snap_restore_open(io_h5 *f, replay_shard *s) {
  hsrl_status st = HSRL_OK;
  int64_t size = 0;
  HSRL_TRY(snap_read_state(f, s, &size));
  HSRL_TRY(snap_read_transitions(f, s, size));
done:
  return st;
}

hsrl_status replay_snapshot_restore(replay_shard *s, const char *path) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  replay_shard_config c;
  int64_t token_bytes = 0;
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(snap_read_config(f, &c, &token_bytes));
  HSRL_TRY(snap_compare_config(path, &c, replay_shard_get_config(s)));
  HSRL_TRY(snap_restore_open(f, s));
done:
  io_h5_close(f);
  return st;
}

hsrl_status replay_snapshot_read(replay_shard **out, const char *path) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  replay_shard *s = NULL;
  replay_shard_config c;
  int64_t token_bytes = 0;
  *out = NULL;
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(snap_read_config(f, &c, &token_bytes));
  st = replay_shard_init(&s, &c);
  if (st != HSRL_OK) {
    st = hsrl_err_context(HSRL_E_CORRUPT, "%s: the stored shard config", path);
    goto done;
  }
  if ((replay_shard_tokens_u16(s) ? 2 : 1) != token_bytes) {
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, "token_bytes", "%lld disagrees with max_vocab %lld",
                  (long long)token_bytes, (long long)c.max_vocab);
    goto done;
  }
  HSRL_TRY(snap_restore_open(f, s));
  *out = s;
  s = NULL;
done:
  replay_shard_free(s);
  io_h5_close(f);
  return st;
}
