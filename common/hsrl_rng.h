/* hsrl_rng.h: counter-based random numbers (Philox-4x32-10, Salmon et al., SC'11).
 *
 * A stream is keyed by (seed, stream id): the 64-bit seed is the Philox key, the stream id fills
 * the upper half of the 128-bit counter and the draw index the lower half. Streams never overlap
 * (2^64 blocks each), and a rank's numbers depend only on (seed, stream id), never on how many
 * ranks exist or on timing. Every derived distribution uses only IEEE-exact operations (+ - * /
 * sqrt and our own log), so the same seed gives the same numbers on every machine.
 *
 * For kernels that must not carry state (dropout masks), hsrl_philox4x32() maps a counter and a
 * key to four independent words directly. */
#ifndef HSRL_RNG_H
#define HSRL_RNG_H

#include <stdint.h>

typedef struct hsrl_rng {
  uint32_t key[2];
  uint32_t ctr[4]; /* ctr[0..1]: block index; ctr[2..3]: stream id */
  uint32_t buf[4];
  int n_buf; /* words of buf not yet used */
} hsrl_rng;

void hsrl_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

void hsrl_rng_init(hsrl_rng *r, uint64_t seed, uint64_t stream);
uint32_t hsrl_rng_u32(hsrl_rng *r);
uint64_t hsrl_rng_u64(hsrl_rng *r);
float hsrl_rng_uniform(hsrl_rng *r);         /* [0, 1), 24 random bits */
double hsrl_rng_uniform_double(hsrl_rng *r); /* [0, 1), 53 random bits */
uint64_t hsrl_rng_below(hsrl_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
double hsrl_rng_normal(hsrl_rng *r);         /* N(0, 1), Marsaglia polar method */
double hsrl_rng_gumbel(hsrl_rng *r);         /* standard Gumbel -log(-log u), u from 53 bits: finite */
int hsrl_rng_bernoulli(hsrl_rng *r, float p); /* 1 with probability p */
/* Index i with probability weights[i] / sum(weights); weights >= 0, sum > 0. */
int64_t hsrl_rng_categorical(hsrl_rng *r, const float *weights, int64_t n);
void hsrl_rng_permutation(hsrl_rng *r, int64_t *out, int64_t n); /* uniform permutation of 0..n-1 */

/* Natural log from IEEE-exact operations only (bit-identical on every machine); x > 0. */
double hsrl_rng_log(double x);

/* Derives a seed for a sub-purpose from (seed, purpose) so that purposes get unrelated keys. */
uint64_t hsrl_rng_derive(uint64_t seed, uint64_t purpose);

#endif
