/* hsrl_rng.c: see hsrl_rng.h. */
#include "common/hsrl_rng.h"

#include <math.h>

#include "common/hsrl_check.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void hsrl_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void hsrl_rng_init(hsrl_rng *r, uint64_t seed, uint64_t stream) {
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->ctr[0] = 0;
  r->ctr[1] = 0;
  r->ctr[2] = (uint32_t)stream;
  r->ctr[3] = (uint32_t)(stream >> 32);
  r->n_buf = 0;
}

uint32_t hsrl_rng_u32(hsrl_rng *r) {
  if (r->n_buf == 0) {
    hsrl_philox4x32(r->buf, r->ctr, r->key);
    if (++r->ctr[0] == 0) r->ctr[1]++;
    r->n_buf = 4;
  }
  return r->buf[4 - r->n_buf--];
}

uint64_t hsrl_rng_u64(hsrl_rng *r) {
  uint64_t hi = hsrl_rng_u32(r);
  return (hi << 32) | hsrl_rng_u32(r);
}

float hsrl_rng_uniform(hsrl_rng *r) { return (float)(hsrl_rng_u32(r) >> 8) * 0x1.0p-24f; }

double hsrl_rng_uniform_double(hsrl_rng *r) { return (double)(hsrl_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t hsrl_rng_below(hsrl_rng *r, uint64_t n) {
  HSRL_CHECK(n > 0);
  /* Rejection of the top partial range keeps every value equally likely. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = hsrl_rng_u64(r);
  while (x >= limit);
  return x % n;
}

double hsrl_rng_log(double x) {
  HSRL_CHECK(x > 0);
  int e;
  double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1): exact */
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  /* ln m = 2 atanh(t), t = (m-1)/(m+1), |t| < 0.172: the series converges to double precision
   * in under 20 terms. */
  double t = (m - 1.0) / (m + 1.0), t2 = t * t, term = t, sum = 0.0;
  for (int k = 1; k < 60; k += 2) {
    double add = term / k;
    sum += add;
    if (add < 1e-18 && add > -1e-18) break;
    term *= t2;
  }
  return 2.0 * sum + e * 0.69314718055994530942;
}

double hsrl_rng_normal(hsrl_rng *r) {
  double u, v, s;
  do {
    u = 2.0 * hsrl_rng_uniform_double(r) - 1.0;
    v = 2.0 * hsrl_rng_uniform_double(r) - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  /* One of the pair is used: streams stay simple to reason about (one call, fixed draws). */
  return u * sqrt(-2.0 * hsrl_rng_log(s) / s);
}

double hsrl_rng_gumbel(hsrl_rng *r) {
  const double u = ((double)(hsrl_rng_u64(r) >> 11) + 0.5) * 0x1p-53; /* in (0, 1): never infinite */
  return -log(-log(u));
}

int hsrl_rng_bernoulli(hsrl_rng *r, float p) { return hsrl_rng_uniform(r) < p; }

int64_t hsrl_rng_categorical(hsrl_rng *r, const float *weights, int64_t n) {
  HSRL_CHECK(n > 0);
  double total = 0.0;
  for (int64_t i = 0; i < n; i++) total += (double)weights[i];
  HSRL_CHECKF(total > 0.0, "categorical weights sum to %g", total);
  double target = hsrl_rng_uniform_double(r) * total, acc = 0.0;
  int64_t last_positive = 0;
  for (int64_t i = 0; i < n; i++) {
    if (weights[i] <= 0.0f) continue;
    acc += (double)weights[i];
    last_positive = i;
    if (target < acc) return i;
  }
  return last_positive; /* rounding at the top end */
}

void hsrl_rng_permutation(hsrl_rng *r, int64_t *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)hsrl_rng_below(r, (uint64_t)i + 1);
    int64_t t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
}

uint64_t hsrl_rng_derive(uint64_t seed, uint64_t purpose) {
  uint32_t ctr[4] = {(uint32_t)purpose, (uint32_t)(purpose >> 32), 0x5eedu, 0xd371u};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
  hsrl_philox4x32(out, ctr, key);
  return ((uint64_t)out[0] << 32) | out[1];
}
