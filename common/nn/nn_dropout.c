/* nn_dropout.c: see nn_dropout.h.
 *
 * Counter layout: element i uses word (offset+i) % 4 of Philox block (offset+i) / 4; the block
 * index fills ctr[0..1] and ctr[2..3] hold a fixed tag, so dropout words never coincide with the
 * hsrl_rng streams (whose ctr[2..3] is a stream id) even when a caller reuses a seed as the key.
 * An element is kept when its word >= p * 2^32, i.e. with probability 1 - p (to 2^-32).
 *
 * Speed. Masks are drawn for every dropout site of every training step (about a million words per
 * transformer layer and update; the scalar loop cost 8 ns a word), so the Philox rounds are
 * vectorised: 64-bit lanes hold one block's 32-bit words and _mm_mul_epu32 (and its AVX2 and
 * AVX-512 forms) is the 32x32->64 multiply of a round, which GCC does not vectorise from the
 * scalar code at -O2. Several blocks per register and several independent register sets per
 * iteration hide the multiply -> shift -> xor latency; a short tail is computed as one whole
 * group into a buffer. The widest instruction set the machine has is picked at run time
 * (__builtin_cpu_supports; GCC on x86-64), with SSE2 as the x86-64 baseline and the scalar
 * hsrl_philox4x32 elsewhere. Every path gives exactly hsrl_philox4x32's words
 * (tests/test_nn_kernels.c checks each one through nn_dropout_words). Words are made in chunks
 * into a stack buffer and turned into bytes by a loop GCC vectorises. Apply and backward are
 * branch-free block loops (see nn_activation.c for why the select is written as a bit mask).
 * p == 0 draws nothing. */
#include "common/nn/nn_dropout.h"

#include <string.h>

#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"

#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
#include <emmintrin.h>
#define NN_DROPOUT_SSE2 1
#endif

#define NN_DROPOUT_TAG0 0x44524f50u /* "DROP" */
#define NN_DROPOUT_TAG1 0x4d41534bu /* "MASK" */
#define NN_DROPOUT_CHUNK 64         /* Philox blocks per stack buffer (256 words) */
#define NN_DROPOUT_BLOCK 16         /* elements per vectorised block of apply/backward */

/* Philox-4x32-10 constants (Salmon et al. 2011), as in hsrl_rng.c. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox_blocks_scalar(uint32_t *out, uint64_t block, int64_t n_blocks, const uint32_t key[2]) {
  for (int64_t b = 0; b < n_blocks; b++) {
    uint64_t blk = block + (uint64_t)b;
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), NN_DROPOUT_TAG0, NN_DROPOUT_TAG1};
    hsrl_philox4x32(out + 4 * b, ctr, key);
  }
}

#ifdef NN_DROPOUT_SSE2
/* Lane l (64 bits) of c0..c3 holds word 0..3 of block `block + l` in its low 32 bits.
 * _mm_mul_epu32 reads only the low 32 bits of each lane, so the high halves may carry garbage
 * between rounds; the outputs are masked. Several register sets per iteration hide the latency of
 * the multiply -> shift -> xor chain of a round. */
/* One Philox round on one register set (two blocks); the set's four words live in c0..c3. */
#define PHILOX_ROUND_SSE2(c0, c1, c2, c3, k0v, k1v)                              \
  do {                                                                           \
    __m128i p0_ = _mm_mul_epu32(c0, m0), p1_ = _mm_mul_epu32(c2, m1);            \
    c0 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p1_, 32), c1), k0v);         \
    c2 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p0_, 32), c3), k1v);         \
    c1 = p1_;                                                                    \
    c3 = p0_;                                                                    \
  } while (0)

/* Blocks blk, blk+1 into the set c0..c3. */
#define PHILOX_LOAD_SSE2(c0, c1, c2, c3, blk)                                                  \
  do {                                                                                         \
    __m128i b_ = _mm_add_epi64(_mm_set1_epi64x((long long)(blk)), _mm_set_epi64x(1, 0));       \
    c0 = _mm_and_si128(b_, lo32);                                                              \
    c1 = _mm_srli_epi64(b_, 32);                                                               \
    c2 = _mm_set1_epi64x(NN_DROPOUT_TAG0);                                                     \
    c3 = _mm_set1_epi64x(NN_DROPOUT_TAG1);                                                     \
  } while (0)

/* lane l holds (w0 | w1 << 32) and (w2 | w3 << 32) after packing; unpacking gives each block. */
#define PHILOX_STORE_SSE2(dst, c0, c1, c2, c3)                                                 \
  do {                                                                                         \
    __m128i lo_ = _mm_or_si128(_mm_and_si128(c0, lo32), _mm_slli_epi64(c1, 32));              \
    __m128i hi_ = _mm_or_si128(_mm_and_si128(c2, lo32), _mm_slli_epi64(c3, 32));              \
    _mm_storeu_si128((__m128i *)(void *)(dst), _mm_unpacklo_epi64(lo_, hi_));                 \
    _mm_storeu_si128((__m128i *)(void *)((dst) + 4), _mm_unpackhi_epi64(lo_, hi_));           \
  } while (0)

/* 8 blocks (32 words) from block blk into out; four register sets written out so that they stay
 * in registers. */
static void philox_group_sse2(uint32_t *out, uint64_t blk, const __m128i *rk0, const __m128i *rk1) {
  const __m128i m0 = _mm_set1_epi64x(PHILOX_M0), m1 = _mm_set1_epi64x(PHILOX_M1);
  const __m128i lo32 = _mm_set1_epi64x(0xffffffffLL);
  __m128i a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;
  PHILOX_LOAD_SSE2(a0, a1, a2, a3, blk);
  PHILOX_LOAD_SSE2(b0, b1, b2, b3, blk + 2);
  PHILOX_LOAD_SSE2(c0, c1, c2, c3, blk + 4);
  PHILOX_LOAD_SSE2(d0, d1, d2, d3, blk + 6);
  for (int r = 0; r < 10; r++) {
    const __m128i k0v = rk0[r], k1v = rk1[r];
    PHILOX_ROUND_SSE2(a0, a1, a2, a3, k0v, k1v);
    PHILOX_ROUND_SSE2(b0, b1, b2, b3, k0v, k1v);
    PHILOX_ROUND_SSE2(c0, c1, c2, c3, k0v, k1v);
    PHILOX_ROUND_SSE2(d0, d1, d2, d3, k0v, k1v);
  }
  PHILOX_STORE_SSE2(out, a0, a1, a2, a3);
  PHILOX_STORE_SSE2(out + 8, b0, b1, b2, b3);
  PHILOX_STORE_SSE2(out + 16, c0, c1, c2, c3);
  PHILOX_STORE_SSE2(out + 24, d0, d1, d2, d3);
}

/* Whole groups of 8 blocks; a last partial group is computed whole into a buffer and the needed
 * words copied (short rows of attention masks would otherwise fall to the scalar code). */
static void philox_blocks_sse2(uint32_t *out, uint64_t block, int64_t n_blocks, const uint32_t key[2]) {
  __m128i rk0[10], rk1[10];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
    rk0[r] = _mm_set1_epi64x(k0);
    rk1[r] = _mm_set1_epi64x(k1);
  }
  int64_t b = 0;
  for (; b + 8 <= n_blocks; b += 8) philox_group_sse2(out + 4 * b, block + (uint64_t)b, rk0, rk1);
  if (b < n_blocks) {
    uint32_t tmp[32];
    philox_group_sse2(tmp, block + (uint64_t)b, rk0, rk1);
    memcpy(out + 4 * b, tmp, (size_t)(4 * (n_blocks - b)) * sizeof(uint32_t));
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define NN_DROPOUT_AVX2 1

#define PHILOX_ROUND_AVX2(c0, c1, c2, c3, k0v, k1v)                                   \
  do {                                                                                \
    __m256i p0_ = _mm256_mul_epu32(c0, m0), p1_ = _mm256_mul_epu32(c2, m1);           \
    c0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1_, 32), c1), k0v);     \
    c2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0_, 32), c3), k1v);     \
    c1 = p1_;                                                                         \
    c3 = p0_;                                                                         \
  } while (0)

#define PHILOX_LOAD_AVX2(c0, c1, c2, c3, blk)                                                \
  do {                                                                                       \
    __m256i b_ = _mm256_add_epi64(_mm256_set1_epi64x((long long)(blk)),                      \
                                  _mm256_set_epi64x(3, 2, 1, 0));                            \
    c0 = _mm256_and_si256(b_, lo32);                                                         \
    c1 = _mm256_srli_epi64(b_, 32);                                                          \
    c2 = _mm256_set1_epi64x(NN_DROPOUT_TAG0);                                                \
    c3 = _mm256_set1_epi64x(NN_DROPOUT_TAG1);                                                \
  } while (0)

/* Lanes 0..3 = blocks blk..blk+3; unpack gives blocks (0, 2) and (1, 3) in 128-bit halves. */
#define PHILOX_STORE_AVX2(dst, c0, c1, c2, c3)                                                 \
  do {                                                                                         \
    __m256i lo_ = _mm256_or_si256(_mm256_and_si256(c0, lo32), _mm256_slli_epi64(c1, 32));     \
    __m256i hi_ = _mm256_or_si256(_mm256_and_si256(c2, lo32), _mm256_slli_epi64(c3, 32));     \
    __m256i e_ = _mm256_unpacklo_epi64(lo_, hi_), o_ = _mm256_unpackhi_epi64(lo_, hi_);       \
    _mm256_storeu_si256((__m256i *)(void *)(dst), _mm256_permute2x128_si256(e_, o_, 0x20));   \
    _mm256_storeu_si256((__m256i *)(void *)((dst) + 8), _mm256_permute2x128_si256(e_, o_, 0x31)); \
  } while (0)

/* The SSE2 scheme with four blocks per register, two register sets (8 blocks) per group. */
__attribute__((target("avx2"))) static void philox_group_avx2(uint32_t *out, uint64_t blk,
                                                              const __m256i *rk0,
                                                              const __m256i *rk1) {
  const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
  const __m256i lo32 = _mm256_set1_epi64x(0xffffffffLL);
  __m256i a0, a1, a2, a3, b0, b1, b2, b3;
  PHILOX_LOAD_AVX2(a0, a1, a2, a3, blk);
  PHILOX_LOAD_AVX2(b0, b1, b2, b3, blk + 4);
  for (int r = 0; r < 10; r++) {
    const __m256i k0v = rk0[r], k1v = rk1[r];
    PHILOX_ROUND_AVX2(a0, a1, a2, a3, k0v, k1v);
    PHILOX_ROUND_AVX2(b0, b1, b2, b3, k0v, k1v);
  }
  PHILOX_STORE_AVX2(out, a0, a1, a2, a3);
  PHILOX_STORE_AVX2(out + 16, b0, b1, b2, b3);
}

__attribute__((target("avx2"))) static void philox_blocks_avx2(uint32_t *out, uint64_t block,
                                                               int64_t n_blocks, const uint32_t key[2]) {
  __m256i rk0[10], rk1[10];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
    rk0[r] = _mm256_set1_epi64x(k0);
    rk1[r] = _mm256_set1_epi64x(k1);
  }
  int64_t b = 0;
  for (; b + 8 <= n_blocks; b += 8) philox_group_avx2(out + 4 * b, block + (uint64_t)b, rk0, rk1);
  if (b < n_blocks) {
    uint32_t tmp[32];
    philox_group_avx2(tmp, block + (uint64_t)b, rk0, rk1);
    memcpy(out + 4 * b, tmp, (size_t)(4 * (n_blocks - b)) * sizeof(uint32_t));
  }
}

#define PHILOX_ROUND_AVX512(c0, c1, c2, c3, k0v, k1v)                                 \
  do {                                                                                \
    __m512i p0_ = _mm512_mul_epu32(c0, m0), p1_ = _mm512_mul_epu32(c2, m1);           \
    c0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1_, 32), c1), k0v);     \
    c2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0_, 32), c3), k1v);     \
    c1 = p1_;                                                                         \
    c3 = p0_;                                                                         \
  } while (0)

#define PHILOX_LOAD_AVX512(c0, c1, c2, c3, blk)                                              \
  do {                                                                                       \
    __m512i b_ = _mm512_add_epi64(_mm512_set1_epi64((long long)(blk)),                       \
                                  _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));                 \
    c0 = _mm512_and_si512(b_, lo32);                                                         \
    c1 = _mm512_srli_epi64(b_, 32);                                                          \
    c2 = _mm512_set1_epi64(NN_DROPOUT_TAG0);                                                 \
    c3 = _mm512_set1_epi64(NN_DROPOUT_TAG1);                                                 \
  } while (0)

/* Lanes 0..7 = blocks blk..blk+7; unpack gives even and odd blocks per 128-bit lane, the two
 * permutes put the blocks back in order. */
#define PHILOX_STORE_AVX512(dst, c0, c1, c2, c3)                                               \
  do {                                                                                         \
    __m512i lo_ = _mm512_or_si512(_mm512_and_si512(c0, lo32), _mm512_slli_epi64(c1, 32));     \
    __m512i hi_ = _mm512_or_si512(_mm512_and_si512(c2, lo32), _mm512_slli_epi64(c3, 32));     \
    __m512i e_ = _mm512_unpacklo_epi64(lo_, hi_), o_ = _mm512_unpackhi_epi64(lo_, hi_);       \
    _mm512_storeu_si512((void *)(dst), _mm512_permutex2var_epi64(e_, idx_first, o_));         \
    _mm512_storeu_si512((void *)((dst) + 16), _mm512_permutex2var_epi64(e_, idx_second, o_)); \
  } while (0)

__attribute__((target("avx512f"))) static void philox_group_avx512(uint32_t *out, uint64_t blk,
                                                                   const __m512i *rk0,
                                                                   const __m512i *rk1) {
  const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
  const __m512i lo32 = _mm512_set1_epi64(0xffffffffLL);
  const __m512i idx_first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i idx_second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  __m512i a0, a1, a2, a3, b0, b1, b2, b3;
  PHILOX_LOAD_AVX512(a0, a1, a2, a3, blk);
  PHILOX_LOAD_AVX512(b0, b1, b2, b3, blk + 8);
  for (int r = 0; r < 10; r++) {
    const __m512i k0v = rk0[r], k1v = rk1[r];
    PHILOX_ROUND_AVX512(a0, a1, a2, a3, k0v, k1v);
    PHILOX_ROUND_AVX512(b0, b1, b2, b3, k0v, k1v);
  }
  PHILOX_STORE_AVX512(out, a0, a1, a2, a3);
  PHILOX_STORE_AVX512(out + 32, b0, b1, b2, b3);
}

/* One register set: 8 blocks (32 words), for tails. */
__attribute__((target("avx512f"))) static void philox_set_avx512(uint32_t *out, uint64_t blk,
                                                                 const __m512i *rk0,
                                                                 const __m512i *rk1) {
  const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
  const __m512i lo32 = _mm512_set1_epi64(0xffffffffLL);
  const __m512i idx_first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i idx_second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  __m512i a0, a1, a2, a3;
  PHILOX_LOAD_AVX512(a0, a1, a2, a3, blk);
  for (int r = 0; r < 10; r++) PHILOX_ROUND_AVX512(a0, a1, a2, a3, rk0[r], rk1[r]);
  PHILOX_STORE_AVX512(out, a0, a1, a2, a3);
}

/* 16 blocks per group; a tail is computed whole (one group, or one register set when it is at
 * most 8 blocks) into a buffer and the words needed copied out. */
__attribute__((target("avx512f"))) static void philox_blocks_avx512(uint32_t *out, uint64_t block,
                                                                    int64_t n_blocks,
                                                                    const uint32_t key[2]) {
  __m512i rk0[10], rk1[10];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
    rk0[r] = _mm512_set1_epi64(k0);
    rk1[r] = _mm512_set1_epi64(k1);
  }
  int64_t b = 0;
  for (; b + 16 <= n_blocks; b += 16) philox_group_avx512(out + 4 * b, block + (uint64_t)b, rk0, rk1);
  if (b < n_blocks) {
    uint32_t tmp[64];
    if (n_blocks - b > 8) philox_group_avx512(tmp, block + (uint64_t)b, rk0, rk1);
    else philox_set_avx512(tmp, block + (uint64_t)b, rk0, rk1);
    memcpy(out + 4 * b, tmp, (size_t)(4 * (n_blocks - b)) * sizeof(uint32_t));
  }
}
#endif /* AVX2 and AVX-512 with GCC */
#endif /* NN_DROPOUT_SSE2 */

/* Blocks [block, block + n_blocks) of the dropout counter space, with the widest instruction set
 * the machine has, capped at max_isa (see nn_dropout_words). */
static void philox_blocks(uint32_t *out, uint64_t block, int64_t n_blocks, const uint32_t key[2],
                          int max_isa) {
#ifdef NN_DROPOUT_AVX2
  if (max_isa >= NN_DROPOUT_ISA_AVX512 && __builtin_cpu_supports("avx512f")) {
    philox_blocks_avx512(out, block, n_blocks, key);
    return;
  }
  if (max_isa >= NN_DROPOUT_ISA_AVX2 && __builtin_cpu_supports("avx2")) {
    philox_blocks_avx2(out, block, n_blocks, key);
    return;
  }
#endif
#ifdef NN_DROPOUT_SSE2
  if (max_isa >= NN_DROPOUT_ISA_SSE2) {
    philox_blocks_sse2(out, block, n_blocks, key);
    return;
  }
#endif
  philox_blocks_scalar(out, block, n_blocks, key);
}

void nn_dropout_words(uint32_t *words, int64_t n, uint64_t key, uint64_t offset, int max_isa) {
  HSRL_CHECK(n >= 0);
  const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  uint32_t buf[4 * NN_DROPOUT_CHUNK];
  for (int64_t i = 0; i < n;) {
    uint64_t c = offset + (uint64_t)i;
    int64_t skip = (int64_t)(c % 4); /* words of the first block before element i */
    int64_t take = n - i < 4 * NN_DROPOUT_CHUNK - skip ? n - i : 4 * NN_DROPOUT_CHUNK - skip;
    philox_blocks(buf, c / 4, (skip + take + 3) / 4, k, max_isa);
    memcpy(words + i, buf + skip, (size_t)take * sizeof(uint32_t));
    i += take;
  }
}

static void words_to_keep(uint8_t *restrict mask, const uint32_t *restrict words, int64_t n,
                          uint32_t threshold) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++) mask[i + k] = (uint8_t)(words[i + k] >= threshold);
  for (; i < n; i++) mask[i] = (uint8_t)(words[i] >= threshold);
}

void nn_dropout_mask(uint8_t *mask, int64_t n, float p, uint64_t key, uint64_t offset) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  if (p == 0.0f) {
    memset(mask, 1, (size_t)n);
    return;
  }
  /* p < 1, so p * 2^32 < 2^32 fits the word range. */
  uint32_t threshold = (uint32_t)((double)p * 4294967296.0);
  const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  uint32_t words[4 * NN_DROPOUT_CHUNK];
  for (int64_t i = 0; i < n;) {
    uint64_t c = offset + (uint64_t)i;
    int64_t skip = (int64_t)(c % 4); /* words of the first block before element i */
    int64_t take = n - i < 4 * NN_DROPOUT_CHUNK - skip ? n - i : 4 * NN_DROPOUT_CHUNK - skip;
    philox_blocks(words, c / 4, (skip + take + 3) / 4, k, NN_DROPOUT_ISA_BEST);
    words_to_keep(mask + i, words + skip, take, threshold);
    i += take;
  }
}

/* x where keep != 0, +0.0f elsewhere, without a branch. */
static float keep_or_zero(float x, uint8_t keep) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u &= 0u - (uint32_t)keep;
  memcpy(&x, &u, sizeof x);
  return x;
}

static void apply_copy(float *restrict out, const float *restrict inp, const uint8_t *restrict mask,
                       int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      out[i + k] = keep_or_zero(inp[i + k] * scale, mask[i + k] != 0);
  for (; i < n; i++) out[i] = mask[i] ? inp[i] * scale : 0.0f;
}

static void apply_inplace(float *restrict x, const uint8_t *restrict mask, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      x[i + k] = keep_or_zero(x[i + k] * scale, mask[i + k] != 0);
  for (; i < n; i++) x[i] = mask[i] ? x[i] * scale : 0.0f;
}

void nn_dropout_apply(float *out, const float *inp, const uint8_t *mask, int64_t n, float p) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  float scale = 1.0f / (1.0f - p);
  if (out == inp) apply_inplace(out, mask, n, scale);
  else apply_copy(out, inp, mask, n, scale);
}

void nn_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n, float p, uint64_t key,
                        uint64_t offset) {
  nn_dropout_mask(mask, n, p, key, offset);
  if (p == 0.0f) { /* mask all 1, scale 1 */
    if (out != inp) memmove(out, inp, (size_t)n * sizeof(float));
    return;
  }
  nn_dropout_apply(out, inp, mask, n, p);
}

static void backward_kernel(float *restrict dinp, const float *restrict dout,
                            const uint8_t *restrict mask, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      dinp[i + k] += keep_or_zero(dout[i + k] * scale, mask[i + k] != 0);
  for (; i < n; i++)
    if (mask[i]) dinp[i] += dout[i] * scale;
}

void nn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  float scale = 1.0f / (1.0f - p);
  if (dinp == dout) { /* in place: each element reads its own value first */
    for (int64_t i = 0; i < n; i++) dinp[i] += mask[i] ? dinp[i] * scale : 0.0f;
    return;
  }
  backward_kernel(dinp, dout, mask, n, scale);
}
