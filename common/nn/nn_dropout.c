/* nn_dropout.c: see nn_dropout.h.
 *
 * Counter layout: word i of the stream is word i % 4 of Philox block i / 4; the block index fills
 * ctr[0..1] and ctr[2..3] hold a fixed tag, so dropout words never coincide with the hsrl_rng
 * streams (whose ctr[2..3] is a stream id) even when a caller reuses a seed as the key. Mask element
 * c takes the 16-bit half c % 2 (low first) of word c / 2, so one block serves 8 elements, and is
 * kept when that half >= t = round(p 65536), i.e. with probability 1 - t / 65536. 16 bits per
 * decision halve the Philox work of 32 (FlashAttention uses 8) and keep the drop rate within 2^-17
 * of p, far below what training can notice.
 *
 * Speed. Masks are drawn for every dropout site of every training step (about a million decisions
 * per update; the scalar loop cost 8 ns a word), so the Philox rounds are
 * vectorised: 64-bit lanes hold one block's 32-bit words and _mm_mul_epu32 (and its AVX2 and
 * AVX-512 forms) is the 32x32->64 multiply of a round, which GCC does not vectorise from the
 * scalar code at -O2. Several blocks per register and several independent register sets per
 * iteration hide the multiply -> shift -> xor latency; a short tail is computed as one whole
 * group into a buffer. The generators take a LIST of block indices (loaded into the lanes), so
 * that one run serves a contiguous range (nn_dropout_mask, nn_dropout_words) as well as the
 * pieces of many short rows (nn_dropout_mask_rows: the causal staircase of an attention mask,
 * whose keys no query sees are never drawn). The widest instruction set the machine has is
 * picked at run time (__builtin_cpu_supports; GCC on x86-64), with SSE2 as the x86-64 baseline
 * and the scalar hsrl_philox4x32 elsewhere. Every path gives exactly hsrl_philox4x32's words
 * (tests/test_nn_kernels.c checks each one through nn_dropout_words). Words are made in chunks
 * into a stack buffer and turned into bytes by a loop GCC vectorises (on a little-endian machine
 * the halves in stream order are the buffer's bytes read as uint16, copied out with memcpy; the
 * portable loop extracts them with shifts). Apply and backward are branch-free block loops (see
 * nn_activation.c for why the select is written as a bit mask). p == 0 (and any p with t == 0)
 * draws nothing. The forms that draw and apply (nn_dropout_forward, nn_dropout_relu_forward) do
 * so piece by piece (nn_dropout_piece), so that the apply loop reads the mask bytes from L1
 * instead of a tensor-sized mask written and read back; the ReLU form keeps no mask at all. */
#include "common/nn/nn_dropout.h"

#include <string.h>

#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_activation.h"

#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
#include <emmintrin.h>
#define NN_DROPOUT_SSE2 1
#endif

#define NN_DROPOUT_TAG0 0x44524f50u /* "DROP" */
#define NN_DROPOUT_TAG1 0x4d41534bu /* "MASK" */
/* Philox blocks per stack buffer (1024 words, 2048 decisions): the ~200 blocks of one causal
 * 50 x 50 attention head's staircase in one draw, so that few go through the generators' tails. */
#define NN_DROPOUT_CHUNK 256
/* Elements per vectorised block of the apply loops: 32 mask bytes fill a 256-bit register (with
 * 16, GCC widened them to floats in 128-bit pieces; 409600 elements of ReLU + dropout forward,
 * mask included, 158 -> 130 us, an apply of 102400 13 -> 9 us). */
#define NN_DROPOUT_BLOCK 32

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_DROPOUT_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_DROPOUT_HOT
#endif

/* Philox-4x32-10 constants (Salmon et al. 2011), as in hsrl_rng.c. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Every generator below computes the Philox blocks whose indices are listed: out[4i..4i+3] are the
 * words of block blocks[i], i < n. */
static void philox_list_scalar(uint32_t *out, const uint64_t *blocks, int64_t n, const uint32_t key[2]) {
  for (int64_t b = 0; b < n; b++) {
    uint64_t blk = blocks[b];
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), NN_DROPOUT_TAG0, NN_DROPOUT_TAG1};
    hsrl_philox4x32(out + 4 * b, ctr, key);
  }
}

/* The last partial group of a vector generator: its indices padded with copies of the last one,
 * computed whole into a buffer, the words needed copied out. */
#define PHILOX_TAIL(group_fn, group, out, blocks, b, n, rk0, rk1)                       \
  do {                                                                                  \
    uint64_t idx_[group];                                                               \
    uint32_t tmp_[4 * (group)];                                                         \
    for (int64_t t_ = 0; t_ < (group); t_++) idx_[t_] = (blocks)[(b) + t_ < (n) ? (b) + t_ : (n) - 1]; \
    group_fn(tmp_, idx_, rk0, rk1);                                                     \
    memcpy((out) + 4 * (b), tmp_, (size_t)(4 * ((n) - (b))) * sizeof(uint32_t));        \
  } while (0)

#ifdef NN_DROPOUT_SSE2
/* The three vector generators (SSE2, AVX2, AVX-512) run the same code on registers of W = 128,
 * 256 or 512 bits: lane l (64 bits) of c0..c3 holds word 0..3 of the l-th listed block in its low
 * 32 bits. _mm_mul_epu32 (and its wider forms) reads only the low 32 bits of each lane, so the
 * high halves may carry garbage between rounds; the outputs are masked. Several register sets per
 * iteration hide the latency of the multiply -> shift -> xor chain of a round. The macros below
 * are written once for the three widths: PHILOX_OP(W, op) names the intrinsic op at width W
 * (_mm_op, _mm256_op, _mm512_op); each function using them defines m0, m1 (the multipliers),
 * lo32 (the low-half mask) and t0, t1 (the counter tags) as vectors of its width. */
#define PHILOX_VEC(W) __m##W##i
#define PHILOX_OP(W, op) PHILOX_OP_##W(op)
#define PHILOX_OP_128(op) _mm_##op
#define PHILOX_OP_256(op) _mm256_##op
#define PHILOX_OP_512(op) _mm512_##op

/* One Philox round on one register set. */
#define PHILOX_ROUND(W, c0, c1, c2, c3, k0v, k1v)                                                  \
  do {                                                                                             \
    PHILOX_VEC(W) p0_ = PHILOX_OP(W, mul_epu32)(c0, m0), p1_ = PHILOX_OP(W, mul_epu32)(c2, m1);    \
    c0 = PHILOX_OP(W, xor_si##W)(PHILOX_OP(W, xor_si##W)(PHILOX_OP(W, srli_epi64)(p1_, 32), c1), k0v); \
    c2 = PHILOX_OP(W, xor_si##W)(PHILOX_OP(W, xor_si##W)(PHILOX_OP(W, srli_epi64)(p0_, 32), c3), k1v); \
    c1 = p1_;                                                                                      \
    c3 = p0_;                                                                                      \
  } while (0)

/* The blocks list[0..W/64) into the set c0..c3. */
#define PHILOX_LOAD(W, c0, c1, c2, c3, list)                                                       \
  do {                                                                                             \
    PHILOX_VEC(W) b_ = PHILOX_OP(W, loadu_si##W)((const void *)(list));                            \
    c0 = PHILOX_OP(W, and_si##W)(b_, lo32);                                                        \
    c1 = PHILOX_OP(W, srli_epi64)(b_, 32);                                                         \
    c2 = t0;                                                                                       \
    c3 = t1;                                                                                       \
  } while (0)

/* lo = (w0 | w1 << 32), hi = (w2 | w3 << 32) per lane: each block's four words as two lanes,
 * which the width's store macro interleaves back into block order. */
#define PHILOX_PACK(W, lo, hi, c0, c1, c2, c3)                                                     \
  PHILOX_VEC(W) lo = PHILOX_OP(W, or_si##W)(PHILOX_OP(W, and_si##W)(c0, lo32),                     \
                                            PHILOX_OP(W, slli_epi64)(c1, 32));                     \
  PHILOX_VEC(W) hi = PHILOX_OP(W, or_si##W)(PHILOX_OP(W, and_si##W)(c2, lo32),                     \
                                            PHILOX_OP(W, slli_epi64)(c3, 32))

/* The round keys of all 10 rounds, broadcast (set1 is the one intrinsic named differently at
 * 512 bits). */
#define PHILOX_KEYS(set1, rk0, rk1, key)                                                           \
  do {                                                                                             \
    uint32_t k0_ = (key)[0], k1_ = (key)[1];                                                       \
    for (int r_ = 0; r_ < 10; r_++, k0_ += PHILOX_W0, k1_ += PHILOX_W1) {                          \
      rk0[r_] = set1(k0_);                                                                         \
      rk1[r_] = set1(k1_);                                                                         \
    }                                                                                              \
  } while (0)

/* The vector constants of a generator of width W (set1 as in PHILOX_KEYS). */
#define PHILOX_CONSTANTS(W, set1)                                                                  \
  const PHILOX_VEC(W) m0 = set1(PHILOX_M0), m1 = set1(PHILOX_M1);                                  \
  const PHILOX_VEC(W) lo32 = set1(0xffffffffLL), t0 = set1(NN_DROPOUT_TAG0), t1 = set1(NN_DROPOUT_TAG1)

/* The body of a group function: four register sets (4 W/64 blocks, listed at blk) through the
 * 10 rounds (unrolled, so that the sets stay in registers) into out, stored by the width's STORE. */
#define PHILOX_FOUR_SETS(W, STORE, out, blk)                                                       \
  do {                                                                                             \
    const int64_t n_ = (W) / 64; /* blocks per register */                                         \
    PHILOX_VEC(W) a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;                  \
    PHILOX_LOAD(W, a0, a1, a2, a3, blk);                                                           \
    PHILOX_LOAD(W, b0, b1, b2, b3, (blk) + n_);                                                    \
    PHILOX_LOAD(W, c0, c1, c2, c3, (blk) + 2 * n_);                                                \
    PHILOX_LOAD(W, d0, d1, d2, d3, (blk) + 3 * n_);                                                \
    _Pragma("GCC unroll 10")                                                                       \
    for (int r_ = 0; r_ < 10; r_++) {                                                              \
      const PHILOX_VEC(W) k0v = rk0[r_], k1v = rk1[r_];                                            \
      PHILOX_ROUND(W, a0, a1, a2, a3, k0v, k1v);                                                   \
      PHILOX_ROUND(W, b0, b1, b2, b3, k0v, k1v);                                                   \
      PHILOX_ROUND(W, c0, c1, c2, c3, k0v, k1v);                                                   \
      PHILOX_ROUND(W, d0, d1, d2, d3, k0v, k1v);                                                   \
    }                                                                                              \
    STORE(out, a0, a1, a2, a3);                                                                    \
    STORE((out) + 4 * n_, b0, b1, b2, b3);                                                         \
    STORE((out) + 8 * n_, c0, c1, c2, c3);                                                         \
    STORE((out) + 12 * n_, d0, d1, d2, d3);                                                        \
  } while (0)

#define PHILOX_STORE_SSE2(dst, c0, c1, c2, c3)                                                     \
  do {                                                                                             \
    PHILOX_PACK(128, lo_, hi_, c0, c1, c2, c3);                                                    \
    _mm_storeu_si128((__m128i *)(void *)(dst), _mm_unpacklo_epi64(lo_, hi_));                     \
    _mm_storeu_si128((__m128i *)(void *)((dst) + 4), _mm_unpackhi_epi64(lo_, hi_));               \
  } while (0)

/* The 8 listed blocks (32 words) into out; four register sets written out so that they stay in
 * registers. */
static void philox_group_sse2(uint32_t *out, const uint64_t *blk, const __m128i *rk0, const __m128i *rk1) {
  PHILOX_CONSTANTS(128, _mm_set1_epi64x);
  PHILOX_FOUR_SETS(128, PHILOX_STORE_SSE2, out, blk);
}

/* Whole groups of 8 blocks, then a last partial group (PHILOX_TAIL; short rows of attention masks
 * would otherwise fall to the scalar code). */
static void philox_list_sse2(uint32_t *out, const uint64_t *blocks, int64_t n_blocks, const uint32_t key[2]) {
  __m128i rk0[10], rk1[10];
  PHILOX_KEYS(_mm_set1_epi64x, rk0, rk1, key);
  int64_t b = 0;
  for (; b + 8 <= n_blocks; b += 8) philox_group_sse2(out + 4 * b, blocks + b, rk0, rk1);
  if (b < n_blocks) PHILOX_TAIL(philox_group_sse2, 8, out, blocks, b, n_blocks, rk0, rk1);
}

#if defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define NN_DROPOUT_AVX2 1

/* Lanes 0..3 = blocks blk..blk+3; unpack gives blocks (0, 2) and (1, 3) in 128-bit halves. */
#define PHILOX_STORE_AVX2(dst, c0, c1, c2, c3)                                                     \
  do {                                                                                             \
    PHILOX_PACK(256, lo_, hi_, c0, c1, c2, c3);                                                    \
    __m256i e_ = _mm256_unpacklo_epi64(lo_, hi_), o_ = _mm256_unpackhi_epi64(lo_, hi_);           \
    _mm256_storeu_si256((__m256i *)(void *)(dst), _mm256_permute2x128_si256(e_, o_, 0x20));       \
    _mm256_storeu_si256((__m256i *)(void *)((dst) + 8), _mm256_permute2x128_si256(e_, o_, 0x31)); \
  } while (0)

/* The SSE2 scheme with four blocks per register, two register sets (8 blocks) per group. */
__attribute__((target("avx2"))) static void philox_group_avx2(uint32_t *out, const uint64_t *blk,
                                                              const __m256i *rk0,
                                                              const __m256i *rk1) {
  PHILOX_CONSTANTS(256, _mm256_set1_epi64x);
  __m256i a0, a1, a2, a3, b0, b1, b2, b3;
  PHILOX_LOAD(256, a0, a1, a2, a3, blk);
  PHILOX_LOAD(256, b0, b1, b2, b3, blk + 4);
  for (int r = 0; r < 10; r++) {
    const __m256i k0v = rk0[r], k1v = rk1[r];
    PHILOX_ROUND(256, a0, a1, a2, a3, k0v, k1v);
    PHILOX_ROUND(256, b0, b1, b2, b3, k0v, k1v);
  }
  PHILOX_STORE_AVX2(out, a0, a1, a2, a3);
  PHILOX_STORE_AVX2(out + 16, b0, b1, b2, b3);
}

__attribute__((target("avx2"))) static void philox_list_avx2(uint32_t *out, const uint64_t *blocks,
                                                             int64_t n_blocks, const uint32_t key[2]) {
  __m256i rk0[10], rk1[10];
  PHILOX_KEYS(_mm256_set1_epi64x, rk0, rk1, key);
  int64_t b = 0;
  for (; b + 8 <= n_blocks; b += 8) philox_group_avx2(out + 4 * b, blocks + b, rk0, rk1);
  if (b < n_blocks) PHILOX_TAIL(philox_group_avx2, 8, out, blocks, b, n_blocks, rk0, rk1);
}

/* Lanes 0..7 = blocks blk..blk+7; unpack gives even and odd blocks per 128-bit lane, the two
 * permutes put the blocks back in order. */
#define PHILOX_STORE_AVX512(dst, c0, c1, c2, c3)                                                   \
  do {                                                                                             \
    PHILOX_PACK(512, lo_, hi_, c0, c1, c2, c3);                                                    \
    __m512i e_ = _mm512_unpacklo_epi64(lo_, hi_), o_ = _mm512_unpackhi_epi64(lo_, hi_);           \
    _mm512_storeu_si512((void *)(dst), _mm512_permutex2var_epi64(e_, idx_first, o_));             \
    _mm512_storeu_si512((void *)((dst) + 16), _mm512_permutex2var_epi64(e_, idx_second, o_));     \
  } while (0)

#define PHILOX_PERMUTES_AVX512                                                                     \
  const __m512i idx_first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);                            \
  const __m512i idx_second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4)

__attribute__((target("avx512f"))) static void philox_group_avx512(uint32_t *out, const uint64_t *blk,
                                                                   const __m512i *rk0,
                                                                   const __m512i *rk1) {
  PHILOX_CONSTANTS(512, _mm512_set1_epi64);
  PHILOX_PERMUTES_AVX512;
  PHILOX_FOUR_SETS(512, PHILOX_STORE_AVX512, out, blk);
}

/* One register set: 8 blocks (32 words), for tails. */
__attribute__((target("avx512f"))) static void philox_set_avx512(uint32_t *out, const uint64_t *blk,
                                                                 const __m512i *rk0,
                                                                 const __m512i *rk1) {
  PHILOX_CONSTANTS(512, _mm512_set1_epi64);
  PHILOX_PERMUTES_AVX512;
  __m512i a0, a1, a2, a3;
  PHILOX_LOAD(512, a0, a1, a2, a3, blk);
  for (int r = 0; r < 10; r++) PHILOX_ROUND(512, a0, a1, a2, a3, rk0[r], rk1[r]);
  PHILOX_STORE_AVX512(out, a0, a1, a2, a3);
}

/* 32 blocks (four register sets, enough independent work to cover the multiply latency) per
 * group, then single sets of 8; a tail is computed whole (one set) into a buffer and the words
 * needed copied out. */
__attribute__((target("avx512f"))) static void philox_list_avx512(uint32_t *out,
                                                                  const uint64_t *blocks,
                                                                  int64_t n_blocks,
                                                                  const uint32_t key[2]) {
  __m512i rk0[10], rk1[10];
  PHILOX_KEYS(_mm512_set1_epi64, rk0, rk1, key);
  int64_t b = 0;
  for (; b + 32 <= n_blocks; b += 32) philox_group_avx512(out + 4 * b, blocks + b, rk0, rk1);
  for (; b + 8 <= n_blocks; b += 8) philox_set_avx512(out + 4 * b, blocks + b, rk0, rk1);
  if (b < n_blocks) PHILOX_TAIL(philox_set_avx512, 8, out, blocks, b, n_blocks, rk0, rk1);
}
#endif /* AVX2 and AVX-512 with GCC */
#endif /* NN_DROPOUT_SSE2 */

/* The listed blocks of the dropout counter space, with the widest instruction set the machine
 * has, capped at max_isa (see nn_dropout_words). */
static void philox_list(uint32_t *out, const uint64_t *blocks, int64_t n_blocks, const uint32_t key[2],
                        int max_isa) {
#ifdef NN_DROPOUT_AVX2
  if (max_isa >= NN_DROPOUT_ISA_AVX512 && __builtin_cpu_supports("avx512f")) {
    philox_list_avx512(out, blocks, n_blocks, key);
    return;
  }
  if (max_isa >= NN_DROPOUT_ISA_AVX2 && __builtin_cpu_supports("avx2")) {
    philox_list_avx2(out, blocks, n_blocks, key);
    return;
  }
#endif
#ifdef NN_DROPOUT_SSE2
  if (max_isa >= NN_DROPOUT_ISA_SSE2) {
    philox_list_sse2(out, blocks, n_blocks, key);
    return;
  }
#endif
  philox_list_scalar(out, blocks, n_blocks, key);
}

/* Runs of counters [c, c + len) become Philox words in a buffer, in chunks of NN_DROPOUT_CHUNK
 * blocks. A run counts in units of per = 2^shift per block: 4 for the word stream
 * (nn_dropout_words), 8 for mask elements (16-bit halves); shifts, not divisions, since the
 * helpers below need not be inlined with a constant. */
typedef struct run_chunk {
  uint64_t list[NN_DROPOUT_CHUNK + 8]; /* + slack for run_append's last group of 8 */
  uint32_t words[4 * NN_DROPOUT_CHUNK];
  int64_t n_blocks;
} run_chunk;

/* The units of the run starting at unit c that fit in one chunk (at most
 * per NN_DROPOUT_CHUNK - (per - 1)): appends their blocks to the chunk's list (the caller checks
 * the room) and returns the position of the first unit in the chunk's buffer (in units). */
static inline int64_t run_append(run_chunk *ch, uint64_t c, int64_t take, int shift) {
  const int64_t per = (int64_t)1 << shift, skip = (int64_t)(c & (uint64_t)(per - 1));
  const int64_t need = (skip + take + per - 1) >> shift, pos = per * ch->n_blocks + skip;
  const uint64_t first = c >> shift;
  uint64_t *list = ch->list + ch->n_blocks;
  /* Groups of 8 indices (a fixed trip count, which GCC vectorises; one store per index cost 7% of
   * a long mask's time), the last group running into the slack past the listed ones. */
  for (int64_t b = 0; b < need; b += 8)
    for (int k = 0; k < 8; k++) list[b + k] = first + (uint64_t)(b + k);
  ch->n_blocks += need;
  return pos;
}

static inline int64_t run_blocks(uint64_t c, int64_t take, int shift) {
  const int64_t per = (int64_t)1 << shift;
  return ((int64_t)(c & (uint64_t)(per - 1)) + take + per - 1) >> shift;
}

void nn_dropout_words(uint32_t *words, int64_t n, uint64_t key, uint64_t offset, int max_isa) {
  HSRL_CHECK(n >= 0);
  const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  const int64_t max_take = 4 * NN_DROPOUT_CHUNK - 3;
  run_chunk ch;
  for (int64_t i = 0; i < n;) {
    const uint64_t c = offset + (uint64_t)i;
    const int64_t take = n - i < max_take ? n - i : max_take;
    ch.n_blocks = 0;
    const int64_t pos = run_append(&ch, c, take, 2);
    philox_list(ch.words, ch.list, ch.n_blocks, k, max_isa);
    memcpy(words + i, ch.words + pos, (size_t)take * sizeof(uint32_t));
    i += take;
  }
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NN_DROPOUT_LITTLE_ENDIAN 1
#endif

/* mask[k] = (half pos0 + k of the words, the low half of a word first) >= t for k < len, len a
 * constant where it is inlined so that the loop becomes whole vector registers. */
static inline void halves_to_keep(uint8_t *restrict mask, const uint32_t *restrict words, int64_t pos0,
                                  int len, uint16_t t) {
#ifdef NN_DROPOUT_LITTLE_ENDIAN
  /* The halves in stream order are the buffer's bytes read as uint16 (GCC turns the memcpy into
   * a plain unaligned vector load; a uint16_t pointer would break strict aliasing). */
  const unsigned char *bytes = (const unsigned char *)words + 2 * pos0;
  for (int k = 0; k < len; k++) {
    uint16_t h;
    memcpy(&h, bytes + 2 * k, sizeof h);
    mask[k] = (uint8_t)(h >= t);
  }
#else
  for (int k = 0; k < len; k++) {
    const int64_t j = pos0 + k;
    mask[k] = (uint8_t)((uint16_t)(words[j >> 1] >> (16 * (j & 1))) >= t);
  }
#endif
}

/* Blocks of len (a constant after inlining) over [0, n), n >= len; the last block overlaps the
 * one before it (rewriting some bytes with the same values) instead of running a scalar tail,
 * which short rows of attention masks would otherwise mostly be. */
static inline void keep_blocks(uint8_t *restrict mask, const uint32_t *restrict words, int64_t pos, int64_t n,
                               uint16_t t, int len) {
  for (int64_t i = 0;; i += len) {
    if (i + len > n) i = n - len;
    halves_to_keep(mask + i, words, pos + i, len, t);
    if (i + len == n) return;
  }
}

/* mask[i] = (half pos + i of the words) >= t, i < n: 32 halves (64 bytes) per block,
 * shorter rows in blocks of 16 or 8, the shortest one by one. */
NN_DROPOUT_HOT static void words_to_keep(uint8_t *restrict mask, const uint32_t *restrict words, int64_t pos,
                                         int64_t n, uint16_t t) {
  if (n >= 32) keep_blocks(mask, words, pos, n, t, 32);
  else if (n >= 16) keep_blocks(mask, words, pos, n, t, 16);
  else if (n >= 8) keep_blocks(mask, words, pos, n, t, 8);
  else
    for (int64_t i = 0; i < n; i++) halves_to_keep(mask + i, words, pos + i, 1, t);
}

/* t = round(p 65536), half-way cases up (p 65536 is exact in double; p >= 0, so truncating
 * p 65536 + 0.5 rounds). A p above 1 - 2^-17 (the largest float below 1 included) would round to
 * 65536, which no half reaches (nothing kept: a drop rate of 1 where p < 1): capped at 65535. */
static uint16_t keep_threshold(float p) {
  const uint32_t t = (uint32_t)((double)p * 65536.0 + 0.5);
  return t > 65535u ? (uint16_t)65535 : (uint16_t)t;
}

/* Rows of different lengths share the chunks: a row's pieces are listed until the chunk is full
 * (or holds NN_DROPOUT_SEGS pieces), then the chunk is drawn and its pieces turned into bytes. */
#define NN_DROPOUT_SEGS 128

typedef struct run_piece {
  uint8_t *dst;
  int64_t pos, len;
} run_piece;

static void rows_flush(run_chunk *ch, run_piece *pieces, int *n_pieces, const uint32_t k[2], uint16_t t) {
  if (ch->n_blocks > 0) philox_list(ch->words, ch->list, ch->n_blocks, k, NN_DROPOUT_ISA_BEST);
  for (int i = 0; i < *n_pieces; i++) words_to_keep(pieces[i].dst, ch->words, pieces[i].pos, pieces[i].len, t);
  ch->n_blocks = 0;
  *n_pieces = 0;
}

void nn_dropout_mask_rows(uint8_t *mask, int64_t ld, int64_t n_rows, int64_t len0, int64_t step,
                          int64_t max_len, float p, uint64_t key, uint64_t offset) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n_rows >= 0 && ld >= 0 && max_len <= ld);
  const uint16_t t = keep_threshold(p);
  const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  const int64_t max_take = 8 * NN_DROPOUT_CHUNK - 7;
  run_chunk ch;
  run_piece pieces[NN_DROPOUT_SEGS];
  int n_pieces = 0;
  ch.n_blocks = 0;
  for (int64_t r = 0; r < n_rows; r++) {
    int64_t len = len0 + r * step;
    len = len < 0 ? 0 : (len > max_len ? max_len : len);
    if (t == 0) { /* every half >= 0: keep everything, draw nothing */
      memset(mask + r * ld, 1, (size_t)len);
      continue;
    }
    for (int64_t j = 0; j < len;) {
      const uint64_t c = offset + (uint64_t)(r * ld + j);
      const int64_t take = len - j < max_take ? len - j : max_take;
      if (ch.n_blocks + run_blocks(c, take, 3) > NN_DROPOUT_CHUNK || n_pieces == NN_DROPOUT_SEGS)
        rows_flush(&ch, pieces, &n_pieces, k, t);
      pieces[n_pieces].dst = mask + r * ld + j;
      pieces[n_pieces].len = take;
      pieces[n_pieces].pos = run_append(&ch, c, take, 3);
      n_pieces++;
      j += take;
    }
  }
  if (t > 0) rows_flush(&ch, pieces, &n_pieces, k, t);
}

/* One row of length n: the same words, in the same chunks of runs. */
void nn_dropout_mask(uint8_t *mask, int64_t n, float p, uint64_t key, uint64_t offset) {
  HSRL_CHECK(n >= 0);
  nn_dropout_mask_rows(mask, n, 1, n, 0, n, p, key, offset);
}

NN_DROPOUT_HOT static void apply_copy(float *restrict out, const float *restrict inp, const uint8_t *restrict mask,
                       int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      out[i + k] = nn_dropout_keep_or_zero(inp[i + k] * scale, mask[i + k] != 0);
  for (; i < n; i++) out[i] = mask[i] ? inp[i] * scale : 0.0f;
}

NN_DROPOUT_HOT static void apply_inplace(float *restrict x, const uint8_t *restrict mask, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      x[i + k] = nn_dropout_keep_or_zero(x[i + k] * scale, mask[i + k] != 0);
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
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  if (p == 0.0f) { /* mask all 1, scale 1 */
    nn_dropout_mask(mask, n, p, key, offset);
    if (out != inp) memmove(out, inp, (size_t)n * sizeof(float));
    return;
  }
  const float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0, m; i < n; i += m) {
    m = nn_dropout_piece(offset + (uint64_t)i, n - i);
    nn_dropout_mask(mask + i, m, p, key, offset + (uint64_t)i);
    if (out == inp) apply_inplace(out + i, mask + i, m, scale);
    else apply_copy(out + i, inp + i, mask + i, m, scale);
  }
}

/* x = Drop(ReLU(x)) */
NN_DROPOUT_HOT static void relu_apply(float *restrict x, const uint8_t *restrict keep, int64_t n,
                                      float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++) {
      const float v = x[i + k] < 0.0f ? 0.0f : x[i + k];
      x[i + k] = nn_dropout_keep_or_zero(v * scale, keep[i + k] != 0);
    }
  for (; i < n; i++) {
    const float v = x[i] < 0.0f ? 0.0f : x[i];
    x[i] = keep[i] ? v * scale : 0.0f;
  }
}

void nn_dropout_relu_forward(float *x, int64_t n, float p, uint64_t key, uint64_t offset) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  if (p == 0.0f) {
    nn_relu_forward(x, x, n);
    return;
  }
  uint8_t keep[NN_DROPOUT_PIECE];
  const float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0, m; i < n; i += m) {
    m = nn_dropout_piece(offset + (uint64_t)i, n - i);
    nn_dropout_mask(keep, m, p, key, offset + (uint64_t)i);
    relu_apply(x + i, keep, m, scale);
  }
}

NN_DROPOUT_HOT static void relu_backward(float *restrict d, const float *restrict y, int64_t n,
                                         float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      d[i + k] = nn_dropout_keep_or_zero(d[i + k] * scale, y[i + k] > 0.0f);
  for (; i < n; i++) d[i] = y[i] > 0.0f ? d[i] * scale : 0.0f;
}

void nn_dropout_relu_backward(float *d, const float *y, int64_t n, float p) {
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p = %g", (double)p);
  HSRL_CHECK(n >= 0);
  relu_backward(d, y, n, 1.0f / (1.0f - p));
}

NN_DROPOUT_HOT static void backward_kernel(float *restrict dinp, const float *restrict dout,
                            const uint8_t *restrict mask, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_DROPOUT_BLOCK <= n; i += NN_DROPOUT_BLOCK)
    for (int k = 0; k < NN_DROPOUT_BLOCK; k++)
      dinp[i + k] += nn_dropout_keep_or_zero(dout[i + k] * scale, mask[i + k] != 0);
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
