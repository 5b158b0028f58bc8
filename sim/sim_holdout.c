/* sim_holdout.c: see sim_holdout.h. */
#include "sim/sim_holdout.h"

#include <math.h>
#include <stdlib.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"

/* A record of the fitting split, for grouping by user in time order. */
typedef struct holdout_key {
  int32_t user;
  int64_t time, idx;
} holdout_key;

static int holdout_key_cmp(const void *a, const void *b) {
  const holdout_key *x = a, *y = b;
  if (x->user != y->user) return (x->user > y->user) - (x->user < y->user);
  if (x->time != y->time) return (x->time > y->time) - (x->time < y->time);
  return (x->idx > y->idx) - (x->idx < y->idx);
}

int64_t sim_holdout_latest(const sim_dataset *d, int64_t *idx, int64_t n, double vf, uint64_t seed,
                           uint64_t stream, int *random) {
  *random = 0;
  int64_t want = (int64_t)floor(vf * (double)n + 0.5);
  if (want >= n) want = n - 1;
  if (want <= 0) return 0;
  holdout_key *keys = hsrl_malloc((size_t)n * sizeof *keys);
  for (int64_t i = 0; i < n; i++) {
    keys[i].user = d->rec_user[idx[i]];
    keys[i].time = d->rec_time[idx[i]];
    keys[i].idx = idx[i];
  }
  qsort(keys, (size_t)n, sizeof *keys, holdout_key_cmp);
  int64_t n_val = 0;
  for (int64_t g = 0; g < n;) { /* one user's records keys[g..e) */
    int64_t e = g;
    while (e < n && keys[e].user == keys[g].user) e++;
    int64_t held = (int64_t)floor(vf * (double)(e - g));
    for (int64_t i = e - held; i < e; i++) keys[i].user = -1; /* mark */
    n_val += held;
    g = e;
  }
  if (2 * n_val >= want) {
    int64_t a = 0, b = n_val;
    for (int64_t i = 0; i < n; i++) idx[keys[i].user < 0 ? a++ : b++] = keys[i].idx;
  } else { /* a uniform random subset: a partial Fisher-Yates shuffle */
    *random = 1;
    n_val = want;
    hsrl_rng r;
    hsrl_rng_init(&r, seed, stream);
    for (int64_t i = 0; i < n_val; i++) {
      int64_t j = i + (int64_t)hsrl_rng_below(&r, (uint64_t)(n - i));
      int64_t t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
  }
  hsrl_free(keys);
  return n_val;
}
