/* learner_ring.c: the in-process replay ring (see learner_ring.h; method.md section 8). */
#include "learner/learner_ring.h"

#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

/* One set of transition arrays: the ring's storage (capacity rows) or the batch (max_batch). */
typedef struct ring_rows {
  int32_t *users, *history, *slate, *next_users, *next_history;
  uint16_t *tokens;
  uint8_t *clicks, *done;
  float *reward, *logp;
} ring_rows;

struct learner_ring {
  learner_ring_config cfg;
  int64_t KL;      /* K * L */
  int64_t pushed;
  ring_rows store; /* (capacity, ...) */
  ring_rows batch; /* (max_batch, ...) */
  int64_t *slots;  /* (max_batch) */
  agent_batch view;
};

static void ring_rows_alloc(ring_rows *r, const learner_ring_config *c, int64_t n) {
  const int64_t H = c->history_len, K = c->slate_size, KL = K * c->n_levels;
  r->users = hsrl_calloc((size_t)n, sizeof(int32_t));
  r->history = hsrl_calloc((size_t)(n * H), sizeof(int32_t));
  r->slate = hsrl_calloc((size_t)(n * K), sizeof(int32_t));
  r->next_users = hsrl_calloc((size_t)n, sizeof(int32_t));
  r->next_history = hsrl_calloc((size_t)(n * H), sizeof(int32_t));
  r->tokens = KL > 0 ? hsrl_calloc((size_t)(n * KL), sizeof(uint16_t)) : NULL;
  r->clicks = hsrl_calloc((size_t)(n * K), 1);
  r->done = hsrl_calloc((size_t)n, 1);
  r->reward = hsrl_calloc((size_t)n, sizeof(float));
  r->logp = c->with_logp ? hsrl_calloc((size_t)(n * KL), sizeof(float)) : NULL;
}

static void ring_rows_free(ring_rows *r) {
  hsrl_free(r->users), hsrl_free(r->history), hsrl_free(r->slate), hsrl_free(r->next_users);
  hsrl_free(r->next_history), hsrl_free(r->tokens), hsrl_free(r->clicks), hsrl_free(r->done);
  hsrl_free(r->reward), hsrl_free(r->logp);
}

/* dst row j <- src row i. */
static void ring_rows_copy(const learner_ring *r, ring_rows *dst, int64_t j, const ring_rows *src,
                           int64_t i) {
  const int64_t H = r->cfg.history_len, K = r->cfg.slate_size, KL = r->KL;
  dst->users[j] = src->users[i];
  dst->next_users[j] = src->next_users[i];
  memcpy(dst->history + j * H, src->history + i * H, (size_t)H * sizeof(int32_t));
  memcpy(dst->next_history + j * H, src->next_history + i * H, (size_t)H * sizeof(int32_t));
  memcpy(dst->slate + j * K, src->slate + i * K, (size_t)K * sizeof(int32_t));
  memcpy(dst->clicks + j * K, src->clicks + i * K, (size_t)K);
  if (dst->tokens) memcpy(dst->tokens + j * KL, src->tokens + i * KL, (size_t)KL * sizeof(uint16_t));
  if (dst->logp) memcpy(dst->logp + j * KL, src->logp + i * KL, (size_t)KL * sizeof(float));
  dst->reward[j] = src->reward[i];
  dst->done[j] = src->done[i];
}

learner_ring *learner_ring_init(const learner_ring_config *cfg) {
  HSRL_CHECK(cfg->capacity >= 1 && cfg->history_len >= 1 && cfg->slate_size >= 1);
  HSRL_CHECK(cfg->n_levels >= 0 && cfg->max_batch >= 1);
  HSRL_CHECKF(!cfg->with_logp || cfg->n_levels > 0, "behaviour log-probs need SID levels");
  learner_ring *r = hsrl_calloc(1, sizeof *r);
  r->cfg = *cfg;
  r->KL = cfg->slate_size * cfg->n_levels;
  ring_rows_alloc(&r->store, cfg, cfg->capacity);
  ring_rows_alloc(&r->batch, cfg, cfg->max_batch);
  r->slots = hsrl_calloc((size_t)cfg->max_batch, sizeof(int64_t));
  agent_batch *v = &r->view;
  v->users = r->batch.users, v->history = r->batch.history, v->slate = r->batch.slate;
  v->tokens = r->batch.tokens, v->clicks = r->batch.clicks, v->reward = r->batch.reward;
  v->done = r->batch.done, v->next_users = r->batch.next_users;
  v->next_history = r->batch.next_history, v->behaviour_logp = r->batch.logp;
  return r;
}

void learner_ring_free(learner_ring *r) {
  if (!r) return;
  ring_rows_free(&r->store);
  ring_rows_free(&r->batch);
  hsrl_free(r->slots);
  hsrl_free(r);
}

const learner_ring_config *learner_ring_get_config(const learner_ring *r) { return &r->cfg; }
int64_t learner_ring_size(const learner_ring *r) {
  return r->pushed < r->cfg.capacity ? r->pushed : r->cfg.capacity;
}
int64_t learner_ring_pushed(const learner_ring *r) { return r->pushed; }

void learner_ring_push(learner_ring *r, const agent_batch *rows, const uint8_t *keep) {
  HSRL_CHECK(rows->users && rows->history && rows->slate && rows->clicks && rows->reward &&
             rows->done && rows->next_users && rows->next_history);
  HSRL_CHECKF(r->KL == 0 || rows->tokens, "this ring stores SID tokens: rows->tokens is NULL");
  HSRL_CHECKF(!r->cfg.with_logp || rows->behaviour_logp, "rows->behaviour_logp is NULL");
  /* a view of the caller's rows as ring_rows (const only in spirit: it is read from) */
  ring_rows src = {(int32_t *)rows->users,      (int32_t *)rows->history,
                   (int32_t *)rows->slate,      (int32_t *)rows->next_users,
                   (int32_t *)rows->next_history, (uint16_t *)rows->tokens,
                   (uint8_t *)rows->clicks,     (uint8_t *)rows->done,
                   (float *)rows->reward,       (float *)rows->behaviour_logp};
  for (int64_t i = 0; i < rows->B; i++) {
    if (keep && !keep[i]) continue;
    ring_rows_copy(r, &r->store, r->pushed % r->cfg.capacity, &src, i);
    r->pushed++;
  }
}

const agent_batch *learner_ring_sample(learner_ring *r, int64_t B, hsrl_rng *rng) {
  const int64_t size = learner_ring_size(r);
  HSRL_CHECKF(size >= 1, "sampling an empty replay ring");
  HSRL_CHECKF(B >= 1 && B <= r->cfg.max_batch, "sample of %lld rows, at most %lld", (long long)B,
              (long long)r->cfg.max_batch);
  for (int64_t j = 0; j < B; j++) {
    int64_t slot = (int64_t)hsrl_rng_below(rng, (uint64_t)size);
    r->slots[j] = slot;
    ring_rows_copy(r, &r->batch, j, &r->store, slot);
  }
  r->view.B = B;
  return &r->view;
}

const int64_t *learner_ring_last_slots(const learner_ring *r) { return r->slots; }

const agent_batch *learner_ring_get(learner_ring *r, int64_t slot) {
  HSRL_CHECK(slot >= 0 && slot < learner_ring_size(r));
  ring_rows_copy(r, &r->batch, 0, &r->store, slot);
  r->view.B = 1;
  return &r->view;
}

/* ---------------------------------------------------------------- checkpoints */

static const char *ring_path(char *buf, size_t cap, const char *group, const char *name) {
  snprintf(buf, cap, "%s/%s", group, name);
  return buf;
}

hsrl_status learner_ring_write(const learner_ring *r, io_h5 *f, const char *group) {
  hsrl_status st = HSRL_OK;
  char p[512];
  const int64_t n = learner_ring_size(r), H = r->cfg.history_len, K = r->cfg.slate_size;
  const int64_t L = r->cfg.n_levels;
  const ring_rows *s = &r->store;
  const int z = IO_H5_ZSTD;
  int64_t d1[1] = {n}, dH[2] = {n, H}, dK[2] = {n, K}, dKL[3] = {n, K, L};
  HSRL_TRY(io_h5_attr_set_i64(f, group, "ring_format_version", LEARNER_RING_FORMAT_VERSION));
  HSRL_TRY(io_h5_attr_set_i64(f, group, "capacity", r->cfg.capacity));
  HSRL_TRY(io_h5_attr_set_i64(f, group, "history_len", H));
  HSRL_TRY(io_h5_attr_set_i64(f, group, "slate_size", K));
  HSRL_TRY(io_h5_attr_set_i64(f, group, "n_levels", L));
  HSRL_TRY(io_h5_attr_set_i64(f, group, "with_logp", r->cfg.with_logp));
  HSRL_TRY(io_h5_attr_set_i64(f, group, "pushed", r->pushed));
  if (n == 0) goto done; /* an empty ring: the attributes say so */
  HSRL_TRY(io_h5_write_i32(f, ring_path(p, sizeof p, group, "user"), s->users, 1, d1, z));
  HSRL_TRY(io_h5_write_i32(f, ring_path(p, sizeof p, group, "history"), s->history, 2, dH, z));
  HSRL_TRY(io_h5_write_i32(f, ring_path(p, sizeof p, group, "slate"), s->slate, 2, dK, z));
  HSRL_TRY(io_h5_write_u8(f, ring_path(p, sizeof p, group, "clicks"), s->clicks, 2, dK, z));
  HSRL_TRY(io_h5_write_f32(f, ring_path(p, sizeof p, group, "reward"), s->reward, 1, d1, z));
  HSRL_TRY(io_h5_write_u8(f, ring_path(p, sizeof p, group, "done"), s->done, 1, d1, z));
  HSRL_TRY(io_h5_write_i32(f, ring_path(p, sizeof p, group, "next_user"), s->next_users, 1, d1, z));
  HSRL_TRY(io_h5_write_i32(f, ring_path(p, sizeof p, group, "next_history"), s->next_history, 2,
                           dH, z));
  if (s->tokens)
    HSRL_TRY(io_h5_write_u16(f, ring_path(p, sizeof p, group, "tokens"), s->tokens, 3, dKL, z));
  if (s->logp)
    HSRL_TRY(io_h5_write_f32(f, ring_path(p, sizeof p, group, "behaviour_logp"), s->logp, 3, dKL, z));
done:
  return st;
}

static hsrl_status ring_expect(io_h5 *f, const char *group, const char *attr, int64_t want) {
  int64_t v = 0;
  hsrl_status st = io_h5_attr_get_i64(f, group, attr, &v);
  if (st != HSRL_OK) return st;
  if (v != want)
    return hsrl_err(HSRL_E_INPUT, io_h5_path(f), 0, attr,
                    "the checkpoint's replay ring has %s = %lld, this run %lld", attr,
                    (long long)v, (long long)want);
  return HSRL_OK;
}

hsrl_status learner_ring_read(learner_ring *r, io_h5 *f, const char *group) {
  hsrl_status st = HSRL_OK;
  char p[512];
  const int64_t H = r->cfg.history_len, K = r->cfg.slate_size, KL = r->KL;
  int64_t pushed = 0;
  HSRL_TRY(ring_expect(f, group, "ring_format_version", LEARNER_RING_FORMAT_VERSION));
  HSRL_TRY(ring_expect(f, group, "capacity", r->cfg.capacity));
  HSRL_TRY(ring_expect(f, group, "history_len", H));
  HSRL_TRY(ring_expect(f, group, "slate_size", K));
  HSRL_TRY(ring_expect(f, group, "n_levels", r->cfg.n_levels));
  HSRL_TRY(ring_expect(f, group, "with_logp", r->cfg.with_logp));
  HSRL_TRY(io_h5_attr_get_i64(f, group, "pushed", &pushed));
  if (pushed < 0) return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, "pushed", "negative count");
  int64_t n = pushed < r->cfg.capacity ? pushed : r->cfg.capacity;
  ring_rows *s = &r->store;
  if (n == 0) goto ok;
  HSRL_TRY(io_h5_read_i32(f, ring_path(p, sizeof p, group, "user"), s->users, n));
  HSRL_TRY(io_h5_read_i32(f, ring_path(p, sizeof p, group, "history"), s->history, n * H));
  HSRL_TRY(io_h5_read_i32(f, ring_path(p, sizeof p, group, "slate"), s->slate, n * K));
  HSRL_TRY(io_h5_read_u8(f, ring_path(p, sizeof p, group, "clicks"), s->clicks, n * K));
  HSRL_TRY(io_h5_read_f32(f, ring_path(p, sizeof p, group, "reward"), s->reward, n));
  HSRL_TRY(io_h5_read_u8(f, ring_path(p, sizeof p, group, "done"), s->done, n));
  HSRL_TRY(io_h5_read_i32(f, ring_path(p, sizeof p, group, "next_user"), s->next_users, n));
  HSRL_TRY(io_h5_read_i32(f, ring_path(p, sizeof p, group, "next_history"), s->next_history, n * H));
  if (s->tokens) HSRL_TRY(io_h5_read_u16(f, ring_path(p, sizeof p, group, "tokens"), s->tokens, n * KL));
  if (s->logp)
    HSRL_TRY(io_h5_read_f32(f, ring_path(p, sizeof p, group, "behaviour_logp"), s->logp, n * KL));
ok:
  r->pushed = pushed;
done:
  return st;
}
