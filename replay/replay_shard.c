/* replay_shard.c: ring storage, uniform sampling, rate limiting and the block queue of one replay
 * shard (see replay_shard.h; method.md section 8). */
#include "replay/replay_shard.h"

#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/io/io_zstd.h"
#include "replay/replay_block.h"

#define REPLAY_PURPOSE_SAMPLE 0x7265706c6179ull /* "replay" */

struct replay_shard {
  replay_shard_config cfg;
  int64_t H, K, KL;
  int tokens_u16;
  replay_shard_store store;
  replay_limiter limiter;
  replay_shard_counters counters;
  hsrl_rng rng;
  replay_rows_buf batch; /* (max_batch) decoded samples */
  int64_t *slots;        /* (max_batch) */
  replay_block *block;   /* decoder of queued blocks */
  replay_rows_buf stage; /* (block_rows) the front block, decoded */
  int64_t stage_rows;    /* rows of the decoded front block (0: not decoded) */
  int64_t head_done;     /* rows of the front block already inserted */
  replay_queue *queue;
};

void replay_shard_config_from_settings(replay_shard_config *c, const hsrl_settings *s,
                                       int64_t n_shards, int64_t shard, const replay_rows_shape *shape,
                                       int64_t max_vocab, uint64_t config_hash) {
  const int64_t R = n_shards > 0 ? n_shards : 1;
  memset(c, 0, sizeof *c);
  c->shape = *shape;
  c->capacity = (s->train.buffer + R - 1) / R;
  c->max_vocab = max_vocab;
  c->store_next_history = 0;
  c->max_batch = s->train.batch;
  c->block_rows = s->dist.block_rows;
  c->queue_blocks = s->dist.queue_blocks;
  int64_t min_size = (s->train.learning_starts + R - 1) / R;
  if (min_size >= c->capacity) min_size = c->capacity - 1;
  if (min_size < 1) min_size = 1;
  const double spi = s->dist.samples_per_insert;
  double eb = s->dist.spi_tolerance * spi * (double)min_size;
  double eb_min = replay_limiter_min_error_buffer(spi, 1, c->max_batch);
  c->limiter = (replay_limiter_config){spi, min_size, eb > eb_min ? eb : eb_min};
  c->seed = hsrl_rng_derive(hsrl_settings_train_seed(s), REPLAY_PURPOSE_SAMPLE);
  c->stream = (uint64_t)shard;
  c->config_hash = config_hash;
}

/* ---------------------------------------------------------------- init */

hsrl_status replay_shard_init(replay_shard **out, const replay_shard_config *cfg) {
  hsrl_status st = HSRL_OK;
  *out = NULL;
  replay_rows_shape_check(&cfg->shape);
  if (cfg->capacity < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "capacity", "%lld: must be >= 1", (long long)cfg->capacity);
  if (cfg->max_batch < 1 || cfg->block_rows < 1 || cfg->queue_blocks < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0,
                    cfg->max_batch < 1 ? "max_batch" : cfg->block_rows < 1 ? "block_rows" : "queue_blocks",
                    "must be >= 1");
  if (cfg->block_rows > INT32_MAX)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "block_rows", "%lld: too large", (long long)cfg->block_rows);
  replay_limiter lim;
  HSRL_TRY(replay_limiter_init(&lim, &cfg->limiter));
  if (cfg->limiter.min_size_to_sample >= cfg->capacity)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "min_size_to_sample",
                    "%lld is not below the capacity %lld: inserts would never be limited",
                    (long long)cfg->limiter.min_size_to_sample, (long long)cfg->capacity);
  double eb_min = replay_limiter_min_error_buffer(cfg->limiter.samples_per_insert, 1, cfg->max_batch);
  if (cfg->limiter.error_buffer < eb_min)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "error_buffer",
                    "%g is below %g = (samples_per_insert + max_batch) / 2: the learner's sample "
                    "and an insert could both be refused",
                    cfg->limiter.error_buffer, eb_min);
  replay_block_config bc = {cfg->shape, cfg->block_rows, cfg->max_vocab, cfg->config_hash,
                            IO_ZSTD_DEFAULT_LEVEL};
  replay_block *block = NULL;
  HSRL_TRY(replay_block_init(&block, &bc)); /* also refuses a bad max_vocab */

  replay_shard *s = hsrl_calloc(1, sizeof *s);
  s->cfg = *cfg;
  s->H = cfg->shape.history_len, s->K = cfg->shape.slate_size;
  s->KL = s->K * cfg->shape.n_levels;
  s->tokens_u16 = cfg->max_vocab == 0 || cfg->max_vocab > 256;
  s->limiter = lim;
  hsrl_rng_init(&s->rng, cfg->seed, cfg->stream);
  s->block = block;

  const size_t C = (size_t)cfg->capacity, H = (size_t)s->H, K = (size_t)s->K, KL = (size_t)s->KL;
  replay_shard_store *m = &s->store;
  m->clicks_bytes = (s->K + 7) / 8;
  m->users = hsrl_calloc(C, sizeof(int32_t));
  m->history = hsrl_calloc(C * H, sizeof(int32_t));
  m->slate = hsrl_calloc(C * K, sizeof(int32_t));
  if (KL && s->tokens_u16) m->tokens16 = hsrl_calloc(C * KL, sizeof(uint16_t));
  if (KL && !s->tokens_u16) m->tokens8 = hsrl_calloc(C * KL, 1);
  m->clicks = hsrl_calloc(C * (size_t)m->clicks_bytes, 1);
  m->done = hsrl_calloc(C, 1);
  m->reward = hsrl_calloc(C, sizeof(float));
  m->logp = cfg->shape.with_logp ? hsrl_calloc(C * KL, sizeof(float)) : NULL;
  m->policy_version = hsrl_calloc(C, sizeof(int32_t));
  m->next_users = hsrl_calloc(C, sizeof(int32_t));
  m->next_history = cfg->store_next_history ? hsrl_calloc(C * H, sizeof(int32_t)) : NULL;

  replay_rows_buf_init(&s->batch, &cfg->shape, cfg->max_batch);
  s->slots = hsrl_calloc((size_t)cfg->max_batch, sizeof(int64_t));
  replay_rows_buf_init(&s->stage, &cfg->shape, cfg->block_rows);
  s->queue = replay_queue_init(cfg->queue_blocks, replay_block_bound(block));
  *out = s;
done:
  return st;
}

void replay_shard_free(replay_shard *s) {
  if (!s) return;
  replay_shard_store *m = &s->store;
  hsrl_free(m->users), hsrl_free(m->history), hsrl_free(m->slate), hsrl_free(m->tokens8);
  hsrl_free(m->tokens16), hsrl_free(m->clicks), hsrl_free(m->done), hsrl_free(m->reward);
  hsrl_free(m->logp), hsrl_free(m->policy_version), hsrl_free(m->next_users);
  hsrl_free(m->next_history);
  replay_rows_buf_free(&s->batch);
  hsrl_free(s->slots);
  replay_block_free(s->block);
  replay_rows_buf_free(&s->stage);
  replay_queue_free(s->queue);
  hsrl_free(s);
}

const replay_shard_config *replay_shard_get_config(const replay_shard *s) { return &s->cfg; }
int replay_shard_tokens_u16(const replay_shard *s) { return s->tokens_u16; }
int64_t replay_shard_size(const replay_shard *s) {
  return s->counters.inserted < s->cfg.capacity ? s->counters.inserted : s->cfg.capacity;
}
const replay_shard_counters *replay_shard_get_counters(const replay_shard *s) { return &s->counters; }
const replay_limiter *replay_shard_get_limiter(const replay_shard *s) { return &s->limiter; }
replay_shard_store *replay_shard_get_store(replay_shard *s) { return &s->store; }
replay_queue *replay_shard_get_queue(replay_shard *s) { return s->queue; }
const hsrl_rng *replay_shard_get_rng(const replay_shard *s) { return &s->rng; }
int64_t replay_shard_head_rows_done(const replay_shard *s) { return s->head_done; }
int64_t replay_shard_queued(const replay_shard *s) { return replay_queue_length(s->queue); }

int64_t replay_shard_slot_of_age(const replay_shard *s, int64_t i) {
  const int64_t size = replay_shard_size(s);
  HSRL_CHECK(i >= 0 && i < size);
  return (s->counters.inserted - size + i) % s->cfg.capacity;
}

/* ---------------------------------------------------------------- rows in */

hsrl_status replay_shard_check_rows(const replay_shard *s, const replay_rows *rows, const char *source) {
  const int64_t H = s->H, K = s->K, KL = s->KL;
  const int64_t vmax = s->cfg.max_vocab ? s->cfg.max_vocab : (s->tokens_u16 ? 65536 : 256);
  if (!source) source = "replay rows";
  for (int64_t i = 0; i < rows->B; i++) {
    for (int64_t k = 0; k < K; k++)
      if (rows->clicks[i * K + k] > 1)
        return hsrl_err(HSRL_E_INPUT, source, 0, "clicks", "row %lld item %lld: %d is not 0/1",
                        (long long)i, (long long)k, rows->clicks[i * K + k]);
    if (rows->done[i] > 1)
      return hsrl_err(HSRL_E_INPUT, source, 0, "done", "row %lld: %d is not 0/1", (long long)i,
                      rows->done[i]);
    for (int64_t j = 0; j < KL; j++)
      if (rows->tokens[i * KL + j] >= vmax)
        return hsrl_err(HSRL_E_INPUT, source, 0, "tokens",
                        "row %lld entry %lld: token %d does not fit this shard (vocabulary %lld)",
                        (long long)i, (long long)j, rows->tokens[i * KL + j], (long long)vmax);
    if (!s->cfg.store_next_history &&
        !replay_rows_next_history_derived(rows->next_history + i * H, rows->history + i * H,
                                          rows->slate + i * K, rows->clicks + i * K, H, K))
      return hsrl_err(HSRL_E_INPUT, source, 0, "next_history",
                      "row %lld: not the history advanced by the clicked items, and this shard "
                      "derives next histories (store_next_history = 0)",
                      (long long)i);
  }
  return HSRL_OK;
}

/* Row i of rows into slot `slot`, narrowed. */
static void shard_store_row(replay_shard *s, int64_t slot, const replay_rows *rows, int64_t i) {
  const int64_t H = s->H, K = s->K, KL = s->KL;
  replay_shard_store *m = &s->store;
  m->users[slot] = rows->users[i];
  m->next_users[slot] = rows->next_users[i];
  m->policy_version[slot] = rows->policy_version[i];
  m->reward[slot] = rows->reward[i];
  HSRL_CHECK(rows->done[i] <= 1);
  m->done[slot] = rows->done[i];
  memcpy(m->history + slot * H, rows->history + i * H, (size_t)H * sizeof(int32_t));
  memcpy(m->slate + slot * K, rows->slate + i * K, (size_t)K * sizeof(int32_t));
  uint8_t *cb = m->clicks + slot * m->clicks_bytes;
  memset(cb, 0, (size_t)m->clicks_bytes);
  for (int64_t k = 0; k < K; k++) {
    uint8_t c = rows->clicks[i * K + k];
    HSRL_CHECKF(c <= 1, "click %d is not 0/1 (replay_shard_check_rows)", c);
    cb[k >> 3] |= (uint8_t)(c << (k & 7));
  }
  const uint16_t *t = rows->tokens + i * KL;
  if (m->tokens16) memcpy(m->tokens16 + slot * KL, t, (size_t)KL * sizeof(uint16_t));
  if (m->tokens8)
    for (int64_t j = 0; j < KL; j++) {
      HSRL_CHECKF(t[j] <= 255, "token %d in uint8 storage (replay_shard_check_rows)", t[j]);
      m->tokens8[slot * KL + j] = (uint8_t)t[j];
    }
  if (m->logp) memcpy(m->logp + slot * KL, rows->behaviour_logp + i * KL, (size_t)KL * sizeof(float));
  if (m->next_history)
    memcpy(m->next_history + slot * H, rows->next_history + i * H, (size_t)H * sizeof(int32_t));
  else
    HSRL_CHECKF(replay_rows_next_history_derived(rows->next_history + i * H, rows->history + i * H,
                                                 rows->slate + i * K, rows->clicks + i * K, H, K),
                "a next history that is not derivable (replay_shard_check_rows)");
}

int64_t replay_shard_insert(replay_shard *s, const replay_rows *rows) {
  HSRL_CHECK(rows->users && rows->history && rows->slate && rows->clicks && rows->reward &&
             rows->done && rows->next_users && rows->next_history && rows->policy_version);
  HSRL_CHECKF(s->KL == 0 || rows->tokens, "this shard stores SID tokens: rows->tokens is NULL");
  HSRL_CHECKF(!s->cfg.shape.with_logp || rows->behaviour_logp, "rows->behaviour_logp is NULL");
  int64_t n = 0;
  for (; n < rows->B; n++) {
    if (!replay_limiter_can_insert(&s->limiter, 1)) break;
    const int64_t slot = s->counters.inserted % s->cfg.capacity;
    shard_store_row(s, slot, rows, n);
    replay_limiter_insert(&s->limiter, 1);
    if (s->counters.inserted >= s->cfg.capacity) replay_limiter_delete(&s->limiter, 1);
    s->counters.inserted++;
  }
  return n;
}

/* ---------------------------------------------------------------- blocks */

hsrl_status replay_shard_offer(replay_shard *s, const void *block, size_t n, int *accepted) {
  *accepted = 0;
  if (n < 1 || n > replay_queue_slot_bytes(s->queue)) {
    s->counters.blocks_rejected++;
    return hsrl_err(HSRL_E_INPUT, NULL, 0, "block",
                    "a block of %zu bytes: blocks of up to %lld rows take 1..%zu bytes", n,
                    (long long)s->cfg.block_rows, replay_queue_slot_bytes(s->queue));
  }
  if (!replay_queue_push(s->queue, block, n)) {
    s->counters.queue_full++;
    return HSRL_OK;
  }
  s->counters.blocks_received++;
  *accepted = 1;
  return HSRL_OK;
}

/* Drops the front block (rejected or fully inserted). */
static void shard_pop_front(replay_shard *s) {
  replay_queue_pop(s->queue);
  s->stage_rows = 0;
  s->head_done = 0;
}

hsrl_status replay_shard_pump(replay_shard *s, int64_t *n_inserted) {
  hsrl_status st = HSRL_OK;
  int64_t total = 0;
  size_t n_bytes = 0;
  const void *front;
  while ((front = replay_queue_at(s->queue, 0, &n_bytes))) {
    if (!s->stage_rows) {
      int64_t n = 0;
      st = replay_block_unpack(s->block, &s->stage, front, n_bytes, "replay block", &n, NULL);
      if (st == HSRL_OK) {
        replay_rows v = replay_rows_buf_view(&s->stage, 0, n);
        st = replay_shard_check_rows(s, &v, "replay block");
      }
      if (st == HSRL_OK && s->head_done >= n)
        st = hsrl_err(HSRL_E_CORRUPT, "replay block", 0, "n_rows",
                      "the front block has %lld rows, %lld of them already inserted", (long long)n,
                      (long long)s->head_done);
      if (st != HSRL_OK) {
        s->counters.blocks_rejected++;
        shard_pop_front(s);
        break;
      }
      s->stage_rows = n;
    }
    replay_rows v = replay_rows_buf_view(&s->stage, s->head_done, s->stage_rows - s->head_done);
    int64_t k = replay_shard_insert(s, &v);
    total += k;
    s->head_done += k;
    if (s->head_done < s->stage_rows) {
      s->counters.insert_waits++;
      break;
    }
    shard_pop_front(s);
  }
  if (n_inserted) *n_inserted = total;
  return st;
}

/* ---------------------------------------------------------------- rows out */

/* Slot `slot` decoded into batch row j. */
static void shard_load_row(replay_shard *s, int64_t j, int64_t slot) {
  const int64_t H = s->H, K = s->K, KL = s->KL;
  const replay_shard_store *m = &s->store;
  replay_rows_buf *b = &s->batch;
  b->users[j] = m->users[slot];
  b->next_users[j] = m->next_users[slot];
  b->policy_version[j] = m->policy_version[slot];
  b->reward[j] = m->reward[slot];
  b->done[j] = m->done[slot];
  memcpy(b->history + j * H, m->history + slot * H, (size_t)H * sizeof(int32_t));
  memcpy(b->slate + j * K, m->slate + slot * K, (size_t)K * sizeof(int32_t));
  const uint8_t *cb = m->clicks + slot * m->clicks_bytes;
  for (int64_t k = 0; k < K; k++) b->clicks[j * K + k] = (uint8_t)((cb[k >> 3] >> (k & 7)) & 1u);
  if (m->tokens16) memcpy(b->tokens + j * KL, m->tokens16 + slot * KL, (size_t)KL * sizeof(uint16_t));
  if (m->tokens8)
    for (int64_t l = 0; l < KL; l++) b->tokens[j * KL + l] = m->tokens8[slot * KL + l];
  if (m->logp) memcpy(b->logp + j * KL, m->logp + slot * KL, (size_t)KL * sizeof(float));
  if (m->next_history)
    memcpy(b->next_history + j * H, m->next_history + slot * H, (size_t)H * sizeof(int32_t));
  else
    replay_rows_next_history(b->next_history + j * H, b->history + j * H, b->slate + j * K,
                             b->clicks + j * K, H, K);
}

int replay_shard_sample(replay_shard *s, int64_t B, replay_rows *out) {
  HSRL_CHECKF(B >= 1 && B <= s->cfg.max_batch, "sample of %lld rows, at most %lld", (long long)B,
              (long long)s->cfg.max_batch);
  if (!replay_limiter_can_sample(&s->limiter, B)) {
    s->counters.sample_waits++;
    return 0;
  }
  const uint64_t size = (uint64_t)replay_shard_size(s);
  for (int64_t j = 0; j < B; j++) {
    int64_t slot = (int64_t)hsrl_rng_below(&s->rng, size);
    s->slots[j] = slot;
    shard_load_row(s, j, slot);
  }
  replay_limiter_sample(&s->limiter, B);
  s->counters.sampled += B;
  s->counters.sample_calls++;
  *out = replay_rows_buf_view(&s->batch, 0, B);
  return 1;
}

const int64_t *replay_shard_last_slots(const replay_shard *s) { return s->slots; }

replay_rows replay_shard_get(replay_shard *s, int64_t slot) {
  HSRL_CHECK(slot >= 0 && slot < replay_shard_size(s));
  shard_load_row(s, 0, slot);
  return replay_rows_buf_view(&s->batch, 0, 1);
}

/* ---------------------------------------------------------------- state */

hsrl_status replay_shard_set_state(replay_shard *s, const replay_shard_counters *c,
                                   int64_t limiter_deletes, const hsrl_rng *rng,
                                   int64_t head_rows_done, const char *source) {
  const int64_t want_deletes = c->inserted > s->cfg.capacity ? c->inserted - s->cfg.capacity : 0;
  if (c->inserted < 0 || c->sampled < 0 || c->sample_calls < 0 || c->sample_waits < 0 ||
      c->insert_waits < 0 || c->queue_full < 0 || c->blocks_received < 0 || c->blocks_rejected < 0)
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "counters", "a negative counter");
  if (limiter_deletes != want_deletes)
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "deletes",
                    "%lld deletes after %lld inserts into a ring of %lld (expected %lld)",
                    (long long)limiter_deletes, (long long)c->inserted,
                    (long long)s->cfg.capacity, (long long)want_deletes);
  if (head_rows_done < 0 || head_rows_done > INT32_MAX ||
      (head_rows_done > 0 && replay_queue_length(s->queue) == 0))
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "head_rows_done",
                    "%lld rows of the front block inserted, %lld blocks queued",
                    (long long)head_rows_done, (long long)replay_queue_length(s->queue));
  if (rng->n_buf < 0 || rng->n_buf > 4)
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "rng", "bad stream state");
  hsrl_status st = replay_limiter_set_counts(&s->limiter, c->inserted, c->sampled, limiter_deletes, source);
  if (st != HSRL_OK) return st;
  s->counters = *c;
  s->rng = *rng;
  s->stage_rows = 0;
  s->head_done = head_rows_done;
  return HSRL_OK;
}
