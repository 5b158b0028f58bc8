/* replay_rows.h: the transition rows a replay shard stores and serves (architecture.md "The
 * distributed job": replay shard; method.md section 8 "Replay of transitions").
 *
 * replay_rows is a read-only view of B transitions with exactly the field names and types of
 * agent_batch (learner/agents/agent.h), plus the behaviour policy's version of each row, so the
 * learner turns a sample into an agent_batch by copying pointers (replay/ may not include
 * learner/, hence the twin struct). Histories are item ids, never feature vectors.
 *
 * replay_rows_shape fixes the widths: H history items, K slate items, L SID tokens per item (0: no
 * tokens; then tokens is NULL) and whether behaviour log-probs are carried (they need L > 0).
 * replay_rows_buf owns the arrays of up to `capacity` rows of one shape (one allocation per
 * array, made by replay_rows_buf_init; nothing after).
 *
 * Next history. The environment (sim_env.h) advances a user's history as
 *   next_history = the last H of (history ++ the clicked slate items in slate order),
 * also for a finished row (its s' is the old user's final state). replay_rows_next_history()
 * computes it and replay_rows_next_history_derived() tells whether a row's stored next history
 * equals it, so blocks and rings can keep one bit ("derived") instead of H ids. */
#ifndef REPLAY_ROWS_H
#define REPLAY_ROWS_H

#include <stdint.h>

typedef struct replay_rows_shape {
  int64_t history_len; /* H */
  int64_t slate_size;  /* K */
  int64_t n_levels;    /* L: SID tokens per item (0: none) */
  int with_logp;       /* 1: behaviour log-probs (K x L floats per row; needs L > 0) */
} replay_rows_shape;

typedef struct replay_rows {
  int64_t B;
  const int32_t *users;          /* (B) */
  const int32_t *history;        /* (B, H) item ids, left-padded with 0 */
  const int32_t *slate;          /* (B, K) item ids shown */
  const uint16_t *tokens;        /* (B, K, L) SID tokens of the slate's items, or NULL (L = 0) */
  const uint8_t *clicks;         /* (B, K) 0/1 */
  const float *reward;           /* (B) */
  const uint8_t *done;           /* (B) 0/1: the user left after this step */
  const int32_t *next_users;     /* (B) */
  const int32_t *next_history;   /* (B, H) */
  const float *behaviour_logp;   /* (B, K, L) log pi_l of the chosen tokens at acting time, or NULL */
  const int32_t *policy_version; /* (B) version of the policy that acted */
} replay_rows;

/* Owned, writable arrays for `capacity` rows (the same fields as replay_rows). */
typedef struct replay_rows_buf {
  replay_rows_shape shape;
  int64_t capacity;
  int32_t *users, *history, *slate, *next_users, *next_history, *policy_version;
  uint16_t *tokens; /* NULL when L = 0 */
  uint8_t *clicks, *done;
  float *reward;
  float *logp;      /* NULL without log-probs */
} replay_rows_buf;

/* Checks (bugs): H, K >= 1, L >= 0, with_logp only with L > 0. */
void replay_rows_shape_check(const replay_rows_shape *s);
int replay_rows_shape_equal(const replay_rows_shape *a, const replay_rows_shape *b);

/* Allocates zeroed arrays for capacity (>= 1) rows. _free(NULL) and a zeroed buf are no-ops. */
void replay_rows_buf_init(replay_rows_buf *b, const replay_rows_shape *shape, int64_t capacity);
void replay_rows_buf_free(replay_rows_buf *b);
/* The view of rows [row0, row0 + n) of b. */
replay_rows replay_rows_buf_view(const replay_rows_buf *b, int64_t row0, int64_t n);
/* The view of rows [row0, row0 + n) of another view (pointers advanced; NULL fields stay NULL). */
replay_rows replay_rows_slice(const replay_rows *r, const replay_rows_shape *shape, int64_t row0, int64_t n);
/* dst row j <- src row i (every field of the shape; src must have them). */
void replay_rows_buf_copy_row(replay_rows_buf *dst, int64_t j, const replay_rows *src, int64_t i);

/* out (H) <- the last H of (history (H) ++ the items of slate (K) with clicks[k] != 0, in slate
 * order). out must not alias history. */
void replay_rows_next_history(int32_t *out, const int32_t *history, const int32_t *slate,
                              const uint8_t *clicks, int64_t H, int64_t K);
/* 1 if next (H) equals replay_rows_next_history(history, slate, clicks); no scratch needed. */
int replay_rows_next_history_derived(const int32_t *next, const int32_t *history,
                                     const int32_t *slate, const uint8_t *clicks, int64_t H,
                                     int64_t K);

#endif
