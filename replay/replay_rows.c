/* replay_rows.c: transition row views and buffers, next-history derivation (see replay_rows.h;
 * method.md section 8). */
#include "replay/replay_rows.h"

#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

void replay_rows_shape_check(const replay_rows_shape *s) {
  HSRL_CHECKF(s->history_len >= 1 && s->slate_size >= 1 && s->n_levels >= 0,
              "replay shape H %lld, K %lld, L %lld", (long long)s->history_len,
              (long long)s->slate_size, (long long)s->n_levels);
  HSRL_CHECKF(!s->with_logp || s->n_levels > 0, "behaviour log-probs need SID levels (L > 0)");
}

int replay_rows_shape_equal(const replay_rows_shape *a, const replay_rows_shape *b) {
  return a->history_len == b->history_len && a->slate_size == b->slate_size &&
         a->n_levels == b->n_levels && !a->with_logp == !b->with_logp;
}

void replay_rows_buf_init(replay_rows_buf *b, const replay_rows_shape *shape, int64_t capacity) {
  replay_rows_shape_check(shape);
  HSRL_CHECK(capacity >= 1);
  const size_t n = (size_t)capacity, H = (size_t)shape->history_len, K = (size_t)shape->slate_size;
  const size_t KL = K * (size_t)shape->n_levels;
  memset(b, 0, sizeof *b);
  b->shape = *shape;
  b->capacity = capacity;
  b->users = hsrl_calloc(n, sizeof(int32_t));
  b->history = hsrl_calloc(n * H, sizeof(int32_t));
  b->slate = hsrl_calloc(n * K, sizeof(int32_t));
  b->next_users = hsrl_calloc(n, sizeof(int32_t));
  b->next_history = hsrl_calloc(n * H, sizeof(int32_t));
  b->policy_version = hsrl_calloc(n, sizeof(int32_t));
  b->tokens = KL ? hsrl_calloc(n * KL, sizeof(uint16_t)) : NULL;
  b->clicks = hsrl_calloc(n * K, 1);
  b->done = hsrl_calloc(n, 1);
  b->reward = hsrl_calloc(n, sizeof(float));
  b->logp = shape->with_logp ? hsrl_calloc(n * KL, sizeof(float)) : NULL;
}

void replay_rows_buf_free(replay_rows_buf *b) {
  if (!b) return;
  hsrl_free(b->users), hsrl_free(b->history), hsrl_free(b->slate), hsrl_free(b->next_users);
  hsrl_free(b->next_history), hsrl_free(b->policy_version), hsrl_free(b->tokens);
  hsrl_free(b->clicks), hsrl_free(b->done), hsrl_free(b->reward), hsrl_free(b->logp);
  memset(b, 0, sizeof *b);
}

replay_rows replay_rows_buf_view(const replay_rows_buf *b, int64_t row0, int64_t n) {
  HSRL_CHECK(row0 >= 0 && n >= 0 && row0 + n <= b->capacity);
  replay_rows v = {
      .B = b->capacity, .users = b->users, .history = b->history, .slate = b->slate,
      .tokens = b->tokens, .clicks = b->clicks, .reward = b->reward, .done = b->done,
      .next_users = b->next_users, .next_history = b->next_history,
      .behaviour_logp = b->logp, .policy_version = b->policy_version,
  };
  return replay_rows_slice(&v, &b->shape, row0, n);
}

replay_rows replay_rows_slice(const replay_rows *r, const replay_rows_shape *shape, int64_t row0,
                              int64_t n) {
  HSRL_CHECK(row0 >= 0 && n >= 0 && row0 + n <= r->B);
  const int64_t H = shape->history_len, K = shape->slate_size, KL = K * shape->n_levels;
  replay_rows v = {
      .B = n,
      .users = r->users ? r->users + row0 : NULL,
      .history = r->history ? r->history + row0 * H : NULL,
      .slate = r->slate ? r->slate + row0 * K : NULL,
      .tokens = r->tokens ? r->tokens + row0 * KL : NULL,
      .clicks = r->clicks ? r->clicks + row0 * K : NULL,
      .reward = r->reward ? r->reward + row0 : NULL,
      .done = r->done ? r->done + row0 : NULL,
      .next_users = r->next_users ? r->next_users + row0 : NULL,
      .next_history = r->next_history ? r->next_history + row0 * H : NULL,
      .behaviour_logp = r->behaviour_logp ? r->behaviour_logp + row0 * KL : NULL,
      .policy_version = r->policy_version ? r->policy_version + row0 : NULL,
  };
  return v;
}

void replay_rows_buf_copy_row(replay_rows_buf *dst, int64_t j, const replay_rows *src, int64_t i) {
  const int64_t H = dst->shape.history_len, K = dst->shape.slate_size;
  const int64_t KL = K * dst->shape.n_levels;
  dst->users[j] = src->users[i];
  dst->next_users[j] = src->next_users[i];
  dst->policy_version[j] = src->policy_version[i];
  dst->reward[j] = src->reward[i];
  dst->done[j] = src->done[i];
  memcpy(dst->history + j * H, src->history + i * H, (size_t)H * sizeof(int32_t));
  memcpy(dst->next_history + j * H, src->next_history + i * H, (size_t)H * sizeof(int32_t));
  memcpy(dst->slate + j * K, src->slate + i * K, (size_t)K * sizeof(int32_t));
  memcpy(dst->clicks + j * K, src->clicks + i * K, (size_t)K);
  if (dst->tokens) memcpy(dst->tokens + j * KL, src->tokens + i * KL, (size_t)KL * sizeof(uint16_t));
  if (dst->logp)
    memcpy(dst->logp + j * KL, src->behaviour_logp + i * KL, (size_t)KL * sizeof(float));
}

/* The number of clicks n_c decides the split: the last `keep` = max(H - n_c, 0) old entries
 * move to the front, then the clicked items, of which the first n_c - (H - keep) fall off. */
void replay_rows_next_history(int32_t *out, const int32_t *history, const int32_t *slate,
                              const uint8_t *clicks, int64_t H, int64_t K) {
  int64_t n_c = 0;
  for (int64_t k = 0; k < K; k++) n_c += clicks[k] != 0;
  const int64_t keep = n_c < H ? H - n_c : 0;
  memcpy(out, history + (H - keep), (size_t)keep * sizeof(int32_t));
  int64_t skip = n_c - (H - keep), pos = keep;
  for (int64_t k = 0; k < K; k++) {
    if (!clicks[k]) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    out[pos++] = slate[k];
  }
}

int replay_rows_next_history_derived(const int32_t *next, const int32_t *history,
                                     const int32_t *slate, const uint8_t *clicks, int64_t H,
                                     int64_t K) {
  int64_t n_c = 0;
  for (int64_t k = 0; k < K; k++) n_c += clicks[k] != 0;
  const int64_t keep = n_c < H ? H - n_c : 0;
  if (memcmp(next, history + (H - keep), (size_t)keep * sizeof(int32_t))) return 0;
  int64_t skip = n_c - (H - keep), pos = keep;
  for (int64_t k = 0; k < K; k++) {
    if (!clicks[k]) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    if (next[pos++] != slate[k]) return 0;
  }
  return 1;
}
