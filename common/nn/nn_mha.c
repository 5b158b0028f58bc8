/* nn_mha.c: multi-head attention (see nn_mha.h; method.md section 6).
 *
 * Forward: two projections through nn_linear (Q from q_in; K|V together from kv_in, one GEMM of
 * width 2E), then per (batch row, head) the attention proper, and the out-projection through
 * nn_linear. Backward mirrors it. With A the softmax weights and A' = Drop(A) (both cached), the
 * score gradient needs no dropout mask:
 *   dS_j = A'_j dA'_j - A_j sum_k A'_k dA'_k      (dA' = dL/dA', the gradient after dropout)
 * because dL/dA_j = dA'_j m_j / (1-p) and A_j m_j / (1-p) = A'_j.
 *
 * Attention kernels. The per-head products are tiny (Tq x Tk x E/h = 50 x 50 x 8 in the policy):
 * 256 sgemm calls of that size per product ran at a third of the sgemm peak, and the masked
 * softmax between them was a scalar pass of its own. Here one (batch row, head) is processed in
 * blocks of NN_MHA_R = 4 query rows, fused (head_forward):
 *   scores S = scale * Q K^T for the 4 rows against a transposed copy of K (kt, (dh, Tkp) with
 *     Tkp = Tk rounded up to NN_MHA_KB, zero-padded), over the keys up to the block's last causal
 *     key only (the causal mask halves the work);
 *   masked softmax of each row in place (exp by a vectorisable polynomial, nn_exp_nonpos; padding
 *     and causal masks applied as bit masks), then dropout of the weights, writing the compact
 *     cache row of A in the same pass;
 *   context C = A' V for the 4 rows, over the same keys (C columns of one head, d innermost).
 * The backward (head_backward) does the same per block of rows (dA' = dC V^T against a transposed
 * V; A' rebuilt from A and the keep bytes into a panel of the head, dS into another; dQ = dS K),
 * then dK = dS^T Q and dV = A'^T dC per block of 4 keys over the query rows that can see them.
 * Every output element is written exactly once, so the backward zeroes none of its buffers.
 * A block of one row (the last-position layer has one query per head) computes that row once
 * instead of four copies.
 *
 * What is skipped: a batch row's keys before its first unpadded one are skipped in whole blocks of
 * NN_MHA_SB (keys are addressed from that block, kb; the row sums keep their lanes, so the result
 * is bit for bit the one from key 0), and its queries that see no key (left padding under the
 * causal mask) are neither computed nor drawn dropout for: their context is zero, their gradients
 * zero. The compact cache holds, per query row, the weights from kb up to the causal end (rounded
 * up to NN_MHA_SB; stride Tkw) and, with dropout, the keep bytes (1 byte, where A' took a second
 * float): about a third of the two dense (B, h, Tq, Tk) arrays it replaced, which the backward
 * read back from memory. The dense views are filled on request by nn_mha_cache_view. Dropout
 * bytes are drawn for the causal staircase only (nn_dropout_mask_rows). Packed rows
 * (nn_mha_forward_packed) only move where a batch row's kept keys and queries are.
 *
 * Code generation: with GCC the kernels are written on vector types (NN_MHA_VEC: v16f panels of
 * NN_MHA_KB = 16 keys, v8f lanes of NN_MHA_SB keys or NN_MHA_DB head columns); with other
 * compilers (clang lacks __builtin_shuffle), or with -DNN_MHA_NO_VEC, as loops for the
 * auto-vectoriser (fixed-size inner loops, accumulators as local arrays, selections as bit masks
 * since a float "c ? x : y" stays a branch under -ftrapping-math). GCC's auto-vectorised
 * version of the scores split one of the four 16-key accumulators into 1 + 8 + 4 + 2 + 1 lanes.
 * Both versions do the same float operations in the same order per element (sums over keys in
 * NN_MHA_SB lanes folded by halving, then the scalar tail), so they give the same bits. On x86-64
 * with GCC the two per-head functions (the kernels inlined into them) are compiled three times
 * (x86-64-v4 i.e. AVX-512, AVX2, baseline) by target_clones and picked at load time; the head
 * transposes use AVX2 intrinsics when available. A head width that is not a multiple of
 * NN_MHA_DB takes a plain-loop path for its last columns (tests/test_nn_kernels.c covers both
 * against a double-precision reference). The backward prefetches the next row block's cached
 * weights, which come back from memory in short rows the hardware prefetcher does not foresee.
 *
 * Row independence: every output row is computed by the same operations in the same order
 * whatever the other rows of its block are (a block's extra keys contribute exact zeros), so
 * given the same projections, computing only the last queries reproduces the full computation
 * bit for bit.
 * Inputs must be finite: a NaN in a padded key's value (within the first unpadded key block)
 * would reach the output through 0 * NaN, as in torch. */
#include "common/nn/nn_mha.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_check.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_gemm.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_softmax.h"

#define NN_MHA_R 4   /* query rows per block */
#define NN_MHA_KB 16 /* keys per block of the products and panel rows (panels are multiples) */
#define NN_MHA_SB 8  /* keys per block of the row loops (softmax, dS): one AVX2 register, so that
                      * loop-carried lanes stay in registers (lanes_max, lanes_sum assume 8) */
#define NN_MHA_DB 8  /* head columns per vector block */
#define NN_MHA_KG 4 /* keys per block of the key gradients (8 read twice the stale rows: no gain) */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define NN_MHA_X86 1
#define NN_MHA_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_MHA_HOT
#endif
#if defined(__GNUC__) && !defined(__clang__) && !defined(NN_MHA_NO_VEC) /* else the plain loops */
#define NN_MHA_VEC 1 /* the kernels on GCC vector types */
#endif
#ifdef __GNUC__
#define NN_MHA_INLINE inline __attribute__((always_inline))
#else
#define NN_MHA_INLINE inline
#endif
#ifdef __GNUC__
#define NN_MHA_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define NN_MHA_PREFETCH(p) ((void)(p))
#endif
/* Fully unrolls a fixed lane loop before vectorisation, so that accumulator arrays of two or
 * more vectors stay in registers (GCC -O2 otherwise keeps a 2-iteration vector loop with the
 * accumulators in memory). */
#define NN_MHA_UNROLL _Pragma("GCC unroll 16")

static int64_t floats_for_bytes(int64_t n_bytes) { return (n_bytes + 3) / 4; }

/* Rounds float counts up to 16 (64 bytes) so every view stays aligned like the buffer. */
static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

static int64_t round_kb(int64_t n) { return (n + NN_MHA_KB - 1) / NN_MHA_KB * NN_MHA_KB; }

static int64_t round_sb(int64_t n) { return (n + NN_MHA_SB - 1) / NN_MHA_SB * NN_MHA_SB; }

static void check_shape(const nn_mha_shape *s) {
  HSRL_CHECK(s->B >= 0 && s->Tq >= 0 && s->Tk >= 0);
  HSRL_CHECKF(s->n_heads > 0 && s->E > 0 && s->E % s->n_heads == 0, "E %lld heads %lld",
              (long long)s->E, (long long)s->n_heads);
  HSRL_CHECKF(s->Tk < INT32_MAX - NN_MHA_KB, "Tk %lld", (long long)s->Tk);
}

/* What the forward records for the backward and for nn_mha_cache_view, at the start of the info
 * area; the per-row first unpadded keys (B int32) follow it. */
#define NN_MHA_INFO_MAGIC 0x4d484131u /* "MHA1" */
typedef struct mha_info {
  uint32_t magic;
  int32_t causal;
  int64_t q_offset;
  float p;
  uint32_t packed; /* 1: written by the packed forward (no dense views to expand) */
} mha_info;

/* The cache after the documented views: the info area, the compact weights (B, h, Tq, Tkw) with
 * Tkw = Tk rounded up to NN_MHA_SB, the dropout keep bytes (B, h, Tq, Tk) plus a block of slack
 * (rows are read in whole blocks), then the forward's work area: kt (dh, Tkp), the row panel
 * (R, Tkp) and the allowed-key bit masks of one batch row (Tkp words), Tkp = Tk rounded up to
 * NN_MHA_KB. */
typedef struct mha_internal {
  mha_info *info;
  int32_t *first; /* (B) first key that is not padding (Tk: every key is) */
  float *acomp;   /* (B, h, Tq, Tkw) */
  uint8_t *keep;  /* (B, h, Tq, Tk) */
  float *kt, *panel;
  uint32_t *allow;
} mha_internal;

static int64_t info_floats(const nn_mha_shape *s) {
  return round16(floats_for_bytes((int64_t)sizeof(mha_info)) + s->B);
}

static int64_t internal_floats(const nn_mha_shape *s) {
  const int64_t tkp = round_kb(s->Tk), tkw = round_sb(s->Tk), dh = s->E / s->n_heads;
  const int64_t n_rows = s->B * s->n_heads * s->Tq;
  return info_floats(s) + round16(n_rows * tkw) + round16(floats_for_bytes(n_rows * s->Tk + NN_MHA_KB)) +
         round16(dh * tkp) + round16(NN_MHA_R * tkp) + round16(tkp);
}

int64_t nn_mha_cache_floats(const nn_mha_shape *s) {
  check_shape(s);
  int64_t n_att = s->B * s->n_heads * s->Tq * s->Tk;
  return round16(s->B * s->Tq * s->E) + round16(s->B * s->Tk * 2 * s->E) + 2 * round16(n_att) +
         round16(s->B * s->Tq * s->E) + internal_floats(s);
}

int64_t nn_mha_scratch_floats(const nn_mha_shape *s) {
  check_shape(s);
  int64_t tkp = round_kb(s->Tk), dh = s->E / s->n_heads;
  /* dctx, dQ, dK|dV; vt (dh, Tkp), the dS and A' panels (Tq + R, Tkp) of one head, the dA' block
   * (R, Tkp) */
  return 2 * round16(s->B * s->Tq * s->E) + round16(s->B * s->Tk * 2 * s->E) + round16(dh * tkp) +
         2 * round16((s->Tq + NN_MHA_R) * tkp) + round16(NN_MHA_R * tkp);
}

/* The documented views, and (internal != NULL) the rest. */
static nn_mha_cache carve(float *buf, const nn_mha_shape *s, mha_internal *in) {
  check_shape(s);
  const int64_t n_att = s->B * s->n_heads * s->Tq * s->Tk, n_rows = s->B * s->n_heads * s->Tq;
  const int64_t tkp = round_kb(s->Tk), tkw = round_sb(s->Tk), dh = s->E / s->n_heads;
  nn_mha_cache c;
  c.q = buf;
  c.kv = c.q + round16(s->B * s->Tq * s->E);
  c.att = c.kv + round16(s->B * s->Tk * 2 * s->E);
  c.att_drop = c.att + round16(n_att);
  c.ctx = c.att_drop + round16(n_att);
  float *o = c.ctx + round16(s->B * s->Tq * s->E);
  if (in) {
    in->info = (mha_info *)(void *)o;
    in->first = (int32_t *)(void *)(o + floats_for_bytes((int64_t)sizeof(mha_info)));
    o += info_floats(s);
    in->acomp = o, o += round16(n_rows * tkw);
    in->keep = (uint8_t *)o, o += round16(floats_for_bytes(n_rows * s->Tk + NN_MHA_KB));
    in->kt = o, o += round16(dh * tkp);
    in->panel = o, o += round16(NN_MHA_R * tkp);
    in->allow = (uint32_t *)(void *)o;
  }
  return c;
}

/* One past the last key query i may see under the causal mask. */
static int64_t key_end(const nn_mha_mask *m, int64_t i, int64_t Tk) {
  if (!m || !m->causal) return Tk;
  int64_t e = m->q_offset + i + 1;
  return e < 0 ? 0 : (e > Tk ? Tk : e);
}

/* The first key of batch row b at or after k0 that is not padding (Tk when every key is). */
static int64_t first_key(const uint8_t *pad, int64_t k0, int64_t Tk) {
  int64_t j = k0;
  if (pad)
    while (j < Tk && pad[j]) j++;
  return j;
}

/* The attention work of one batch row. Dense layout: every query and key row is present (k0 = 0,
 * nq = Tq). Packed layout (rows != NULL, see nn_mha_forward_packed): the row keeps its last
 * Tk - k0 keys (rows kv0.. of kv) and its last nq queries (rows q0.. of q). Keys before the first
 * unpadded one (`first`) are skipped in blocks: keys start at kb = first rounded down to
 * NN_MHA_SB from k0 (keys are addressed relative to kb, so the lanes of the row sums see the same
 * keys as from k0: the skipped keys contribute exact zeros), and the queries before i_first (local
 * index) see no key at all (zero attention; they are not computed). */
typedef struct mha_rows {
  int64_t kv0, k0;    /* packed row and position of the first kept key */
  int64_t q0, nq, qd; /* packed row of the first kept query, kept queries, dense index of the first */
  int64_t kb, nk;     /* first key block (position), keys from it (Tk - kb) */
  int64_t i_first;    /* first kept query with an allowed key (nq: none) */
} mha_rows;

/* The plan of batch row b given its first unpadded key; q0 is the running query row. */
static mha_rows rows_of(const nn_mha_mask *m, const int64_t *rows, int64_t b, int64_t q0,
                        int64_t first, const nn_mha_shape *s) {
  mha_rows r;
  const int64_t n_b = rows ? rows[b + 1] - rows[b] : s->Tk;
  r.kv0 = rows ? rows[b] : b * s->Tk;
  r.k0 = s->Tk - n_b;
  r.q0 = q0;
  r.nq = rows ? (n_b < s->Tq ? n_b : s->Tq) : s->Tq;
  r.qd = s->Tq - r.nq;
  r.kb = r.k0 + (first - r.k0) / NN_MHA_SB * NN_MHA_SB;
  r.nk = s->Tk - r.kb;
  int64_t i; /* dense index of the first query with an allowed key: key_end(i) > first */
  if (first >= s->Tk) i = s->Tq;
  else if (m && m->causal) i = first - m->q_offset; /* key_end(i) > first <=> i >= first - q_offset */
  else i = 0;
  i -= r.qd;
  r.i_first = i < 0 ? 0 : (i > r.nq ? r.nq : i);
  return r;
}

/* Packed row offsets: (B+1) non-decreasing, rows[0] = 0, at most Tk rows per batch row. */
static void check_rows(const int64_t *rows, const nn_mha_shape *s) {
  HSRL_CHECKF(rows[0] == 0, "packed rows start at %lld", (long long)rows[0]);
  for (int64_t b = 0; b < s->B; b++)
    HSRL_CHECKF(rows[b + 1] >= rows[b] && rows[b + 1] - rows[b] <= s->Tk,
                "batch row %lld has %lld packed rows of at most %lld", (long long)b,
                (long long)(rows[b + 1] - rows[b]), (long long)s->Tk);
}

/* ------------------------------------------------------------------------------------------- */
/* Kernels */

#ifdef NN_MHA_X86
/* 8 x 8 tiles through registers (the scalar transpose cost as much as the score product for
 * one query row); returns the rows done (a multiple of 8). dh a multiple of 8. */
__attribute__((target("avx2"))) static int64_t transpose_tiles_avx2(float *out, int64_t ldo,
                                                                     const float *x, int64_t ldx,
                                                                     int64_t n, int64_t dh) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int64_t d = 0; d < dh; d += 8) {
      const float *xr = x + j * ldx + d;
      __m256 r0 = _mm256_loadu_ps(xr), r1 = _mm256_loadu_ps(xr + ldx);
      __m256 r2 = _mm256_loadu_ps(xr + 2 * ldx), r3 = _mm256_loadu_ps(xr + 3 * ldx);
      __m256 r4 = _mm256_loadu_ps(xr + 4 * ldx), r5 = _mm256_loadu_ps(xr + 5 * ldx);
      __m256 r6 = _mm256_loadu_ps(xr + 6 * ldx), r7 = _mm256_loadu_ps(xr + 7 * ldx);
      __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float *o = out + d * ldo + j;
      _mm256_storeu_ps(o, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(o + ldo, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(o + 2 * ldo, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(o + 3 * ldo, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(o + 4 * ldo, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(o + 5 * ldo, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(o + 6 * ldo, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(o + 7 * ldo, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
  return j;
}
#endif

/* out (dh, ldo) = x^T for x (n, dh) with row stride ldx, and columns [n, round_kb(n)) zeroed (one
 * fixed block of zeros per row, written first); ldo >= round_kb(n). */
static void transpose_head(float *restrict out, int64_t ldo, const float *restrict x, int64_t ldx,
                           int64_t n, int64_t dh) {
  if (n % NN_MHA_KB)
    for (int64_t d = 0; d < dh; d++) {
      float *z = out + d * ldo + round_kb(n) - NN_MHA_KB;
      for (int l = 0; l < NN_MHA_KB; l++) z[l] = 0.0f;
    }
  int64_t j = 0;
#ifdef NN_MHA_X86
  if (dh % 8 == 0 && __builtin_cpu_supports("avx2")) j = transpose_tiles_avx2(out, ldo, x, ldx, n, dh);
#endif
  for (; j < n; j++)
    for (int64_t d = 0; d < dh; d++) out[d * ldo + j] = x[j * ldx + d];
}

#if NN_MHA_VEC
/* The kernels on GCC vector types (see the file comment): every lane does what the scalar loops
 * * of the #else branch do, in the same order, so both give the same bits. GCC notes that passing
 * and returning vector types changes the ABI between instruction sets (-Wpsabi, silenced for this
 * file in CMakeLists.txt): these helpers are static and always inlined, so no call crosses that
 * boundary. */
typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint8_t v8b __attribute__((vector_size(8)));

static NN_MHA_INLINE v16f load16(const float *p) {
  v16f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static NN_MHA_INLINE void store16(float *p, v16f v) { memcpy(p, &v, sizeof v); }
static NN_MHA_INLINE v8f load8(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static NN_MHA_INLINE void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static NN_MHA_INLINE v8u loadu8(const uint32_t *p) {
  v8u v;
  memcpy(&v, p, sizeof v);
  return v;
}
/* all ones where the byte is 1 (keep bytes are 0 or 1), else 0 */
static NN_MHA_INLINE v8u keep_mask8(const uint8_t *p) {
  v8b b;
  memcpy(&b, p, sizeof b);
  return (v8u){0} - __builtin_convertvector(b, v8u);
}
static NN_MHA_INLINE v8u bits8(v8f x) {
  v8u u;
  memcpy(&u, &x, sizeof u);
  return u;
}
static NN_MHA_INLINE v8f floats8(v8u u) {
  v8f x;
  memcpy(&x, &u, sizeof x);
  return x;
}
static NN_MHA_INLINE v8f select8(v8f x, v8u m) { return floats8(bits8(x) & m); } /* x or +0 */
static NN_MHA_INLINE v8f pick8(v8u m, v8f x, v8f y) { return floats8((bits8(x) & m) | (bits8(y) & ~m)); }
static const v8i iota8 = {0, 1, 2, 3, 4, 5, 6, 7};

/* lanes_max and lanes_sum of the scalar code, on a vector (the same comparisons and additions,
 * halving with shuffles instead of a round trip through memory) */
static NN_MHA_INLINE float vlanes_max(v8f v) {
  const v8f h = __builtin_shuffle(v, (v8i){4, 5, 6, 7, 4, 5, 6, 7});
  const v8f a = floats8((bits8(h) & (v8u)(h > v)) | (bits8(v) & ~(v8u)(h > v)));
  const float x = a[0] > a[1] ? a[0] : a[1], y = a[2] > a[3] ? a[2] : a[3];
  return x > y ? x : y;
}
static NN_MHA_INLINE float vlanes_sum(v8f v) {
  const v8f a = v + __builtin_shuffle(v, (v8i){4, 5, 6, 7, 4, 5, 6, 7});
  const v8f b = a + __builtin_shuffle(a, (v8i){2, 3, 2, 3, 2, 3, 2, 3});
  return b[0] + b[1];
}

/* nn_exp_nonpos (nn_softmax.h) lane by lane: the same operations in the same order. */
static NN_MHA_INLINE v8f exp_nonpos8(v8f x) {
  const v8u under = (v8u)(x < -87.0f), nan_mask = (v8u)(x != x);
  x = floats8((bits8(x) & ~under) | (bits8((v8f){0} - 87.0f) & under));
  const v8f t = x * 1.44269504088896341f;
  v8f fn = (t + 12582912.0f) - 12582912.0f;
  const v8f r1 = x - fn * 0.693359375f;
  const v8f r = r1 - fn * -2.12194440e-4f;
  const v8f r2 = r * r, r4 = r2 * r2;
  const v8f p01 = 1.9875691500e-4f * r + 1.3981999507e-3f;
  const v8f p23 = 8.3334519073e-3f * r + 4.1665795894e-2f;
  const v8f p45 = 1.6666665459e-1f * r + 5.0000001201e-1f;
  const v8f y = ((p01 * r4 + p23 * r2) + p45) * r2 + r + 1.0f;
  fn = floats8(bits8(fn) & ~nan_mask);
  const v8u e = (v8u)(__builtin_convertvector(fn, v8i) + 127) << 23;
  const v8f res = y * floats8(e);
  return floats8(bits8(res) & ~under);
}

static NN_MHA_INLINE void rows_times_panel(float *restrict out, int64_t ldo, const float *restrict a0,
                                           const float *restrict a1, const float *restrict a2,
                                           const float *restrict a3, const float *restrict bt,
                                           int64_t ldb, int64_t k, int64_t n, float alpha) {
  if (a1 == a0 && a3 == a0) { /* one row (the last-position layer): the same sums, once */
    for (int64_t j0 = 0; j0 < n; j0 += NN_MHA_KB) {
      v16f c0 = {0};
      for (int64_t d = 0; d < k; d++) c0 += a0[d] * load16(bt + d * ldb + j0);
      store16(out + j0, alpha * c0);
    }
    return;
  }
  for (int64_t j0 = 0; j0 < n; j0 += NN_MHA_KB) {
    v16f c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
    for (int64_t d = 0; d < k; d++) {
      const v16f b = load16(bt + d * ldb + j0);
      c0 += a0[d] * b;
      c1 += a1[d] * b;
      c2 += a2[d] * b;
      c3 += a3[d] * b;
    }
    store16(out + j0, alpha * c0);
    store16(out + ldo + j0, alpha * c1);
    store16(out + 2 * ldo + j0, alpha * c2);
    store16(out + 3 * ldo + j0, alpha * c3);
  }
}

static NN_MHA_INLINE void panel_times_rows(float *o0, float *o1, float *o2, float *o3, int n_rows,
                                           const float *restrict p, int64_t ldp,
                                           const float *restrict v, int64_t ldv, int64_t k,
                                           int64_t w) {
  const float *p0 = p, *p1 = p + ldp, *p2 = p + 2 * ldp, *p3 = p + 3 * ldp;
  float *o[NN_MHA_R] = {o0, o1, o2, o3};
  if (w == NN_MHA_DB && n_rows == 1) { /* the last-position layer */
    v8f c0 = {0};
    for (int64_t j = 0; j < k; j++) c0 += p0[j] * load8(v + j * ldv);
    store8(o0, c0);
    return;
  }
  if (w == NN_MHA_DB) {
    v8f c[NN_MHA_R] = {{0}, {0}, {0}, {0}};
    for (int64_t j = 0; j < k; j++) {
      const v8f vj = load8(v + j * ldv);
      c[0] += p0[j] * vj;
      c[1] += p1[j] * vj;
      c[2] += p2[j] * vj;
      c[3] += p3[j] * vj;
    }
    for (int r = 0; r < n_rows; r++) store8(o[r], c[r]);
    return;
  }
  float c[NN_MHA_R][NN_MHA_DB] = {{0}};
  for (int64_t j = 0; j < k; j++) {
    const float *vj = v + j * ldv;
    for (int64_t l = 0; l < w; l++) {
      c[0][l] += p0[j] * vj[l];
      c[1][l] += p1[j] * vj[l];
      c[2][l] += p2[j] * vj[l];
      c[3][l] += p3[j] * vj[l];
    }
  }
  for (int r = 0; r < n_rows; r++) memcpy(o[r], c[r], (size_t)w * sizeof(float));
}

static NN_MHA_INLINE void keys_grad(float *dk, float *dv, int64_t ldk, int64_t n_keys,
                                    int64_t key_base, const float *restrict ds, int64_t lds,
                                    const float *restrict ad, int64_t lda, const float *restrict x,
                                    const float *restrict y, int64_t ldx, int64_t i_first,
                                    int64_t n_q, int causal, int64_t q_offset, int64_t w) {
  for (int64_t j0 = 0; j0 < n_keys; j0 += NN_MHA_KG) {
    int64_t i0 = causal ? key_base + j0 - q_offset : 0;
    i0 = i0 < i_first ? i_first : (i0 > n_q ? n_q : i0);
    const int nk = (int)(n_keys - j0 < NN_MHA_KG ? n_keys - j0 : NN_MHA_KG);
    float *dkj = dk + j0 * ldk, *dvj = dv + j0 * ldk;
    if (w == NN_MHA_DB) {
      v8f kk[NN_MHA_KG], vv[NN_MHA_KG];
      for (int r = 0; r < NN_MHA_KG; r++) kk[r] = vv[r] = (v8f){0};
      for (int64_t i = i0; i < n_q; i++) {
        const v8f xi = load8(x + i * ldx), yi = load8(y + i * ldx);
        const float *si = ds + i * lds + j0, *ai = ad + i * lda + j0;
        NN_MHA_UNROLL
        for (int r = 0; r < NN_MHA_KG; r++) {
          kk[r] += si[r] * xi;
          vv[r] += ai[r] * yi;
        }
      }
      for (int r = 0; r < nk; r++) store8(dkj + r * ldk, kk[r]), store8(dvj + r * ldk, vv[r]);
      continue;
    }
    float kk[NN_MHA_KG][NN_MHA_DB] = {{0}}, vv[NN_MHA_KG][NN_MHA_DB] = {{0}};
    for (int64_t i = i0; i < n_q; i++) {
      const float *xi = x + i * ldx, *yi = y + i * ldx;
      const float *si = ds + i * lds + j0, *ai = ad + i * lda + j0;
      for (int64_t l = 0; l < w; l++)
        for (int r = 0; r < NN_MHA_KG; r++) {
          kk[r][l] += si[r] * xi[l];
          vv[r][l] += ai[r] * yi[l];
        }
    }
    for (int r = 0; r < nk; r++) {
      memcpy(dkj + r * ldk, kk[r], (size_t)w * sizeof(float));
      memcpy(dvj + r * ldk, vv[r], (size_t)w * sizeof(float));
    }
  }
}

static NN_MHA_INLINE void softmax_exp_rows(float *restrict s, int64_t lds, int n_rows,
                                           const uint32_t *restrict allow, const int64_t *jend,
                                           int64_t n, float *inv) {
  float m[NN_MHA_R];
  for (int r = 0; r < n_rows; r++) {
    const float *sr = s + r * lds;
    const v8i je = (v8i){0} + (int32_t)jend[r];
    const int64_t nr = round_sb(jend[r]);
    v8f mx = (v8f){0} - INFINITY;
    for (int64_t j0 = 0; j0 < nr; j0 += NN_MHA_SB) {
      const v8u ok = loadu8(allow + j0) & (v8u)(iota8 + (int32_t)j0 < je);
      const v8f v = pick8((v8u)(ok != 0), load8(sr + j0), (v8f){0} - INFINITY);
      mx = pick8((v8u)(v > mx), v, mx);
    }
    m[r] = vlanes_max(mx);
  }
  for (int r = 0; r < n_rows; r++) {
    float *sr = s + r * lds;
    const v8i je = (v8i){0} + (int32_t)jend[r];
    const int64_t nr = round_sb(jend[r]);
    const float mr = m[r];
    v8f sum = {0};
    int64_t j0 = 0;
    for (; j0 < nr; j0 += NN_MHA_SB) {
      const v8u ok = loadu8(allow + j0) & (v8u)(iota8 + (int32_t)j0 < je);
      const v8f e = select8(exp_nonpos8(select8(load8(sr + j0) - mr, ok)), ok);
      store8(sr + j0, e);
      sum += e;
    }
    for (; j0 < n; j0 += NN_MHA_SB) store8(sr + j0, (v8f){0});
    const float total = vlanes_sum(sum);
    inv[r] = total > 0.0f ? 1.0f / total : 0.0f;
  }
}

static NN_MHA_INLINE void finish_row(float *restrict e, float *restrict acomp,
                                     const uint8_t *restrict keep, int64_t w, float inv,
                                     float drop_scale) {
  for (int64_t j = 0; j < w; j += NN_MHA_SB) {
    const v8f a = load8(e + j) * inv;
    store8(acomp + j, a);
    store8(e + j, keep ? select8(a * drop_scale, keep_mask8(keep + j)) : a);
  }
}

static NN_MHA_INLINE void score_grad_row(float *restrict ds, float *restrict adp,
                                         const float *restrict g, const float *restrict a,
                                         const uint8_t *restrict keep, int64_t jend, int64_t w,
                                         int64_t width, float scale, float drop_scale) {
  const float *ad = a;
  if (keep) {
    for (int64_t j = 0; j < w; j += NN_MHA_SB)
      store8(adp + j, select8(load8(a + j) * drop_scale, keep_mask8(keep + j)));
    ad = adp;
  }
  v8f acc = {0};
  int64_t j = 0;
  for (; j + NN_MHA_SB <= jend; j += NN_MHA_SB) acc += load8(ad + j) * load8(g + j);
  float dsum = vlanes_sum(acc);
  for (; j < jend; j++) dsum += ad[j] * g[j];
  for (j = 0; j + NN_MHA_SB <= jend; j += NN_MHA_SB)
    store8(ds + j, (load8(ad + j) * load8(g + j) - load8(a + j) * dsum) * scale);
  for (; j < jend; j++) ds[j] = (ad[j] * g[j] - a[j] * dsum) * scale;
  for (int l = 0; l < NN_MHA_KG; l++)
    if (jend + l < width) ds[jend + l] = 0.0f;
}

#else /* NN_MHA_VEC */
/* out[r][j] = alpha * sum_{d<k} a_r[d] * bt[d][j] for the 4 rows a_0..a_3 and j < n (a multiple
 * of NN_MHA_KB); bt is (k, ldb), out is (4, ldo). Scores (a = Q rows, bt = K^T) and dA' (a = dC
 * rows, bt = V^T). */
static NN_MHA_INLINE void rows_times_panel(float *restrict out, int64_t ldo, const float *restrict a0,
                                        const float *restrict a1, const float *restrict a2,
                                        const float *restrict a3, const float *restrict bt,
                                        int64_t ldb, int64_t k, int64_t n, float alpha) {
  for (int64_t j0 = 0; j0 < n; j0 += NN_MHA_KB) {
    float c0[NN_MHA_KB] = {0}, c1[NN_MHA_KB] = {0}, c2[NN_MHA_KB] = {0}, c3[NN_MHA_KB] = {0};
    for (int64_t d = 0; d < k; d++) {
      const float *b = bt + d * ldb + j0;
      const float v0 = a0[d], v1 = a1[d], v2 = a2[d], v3 = a3[d];
      NN_MHA_UNROLL
      for (int l = 0; l < NN_MHA_KB; l++) {
        c0[l] += v0 * b[l];
        c1[l] += v1 * b[l];
        c2[l] += v2 * b[l];
        c3[l] += v3 * b[l];
      }
    }
    float *o0 = out + j0, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
    NN_MHA_UNROLL
    for (int l = 0; l < NN_MHA_KB; l++) o0[l] = alpha * c0[l];
    NN_MHA_UNROLL
    for (int l = 0; l < NN_MHA_KB; l++) o1[l] = alpha * c1[l];
    NN_MHA_UNROLL
    for (int l = 0; l < NN_MHA_KB; l++) o2[l] = alpha * c2[l];
    NN_MHA_UNROLL
    for (int l = 0; l < NN_MHA_KB; l++) o3[l] = alpha * c3[l];
  }
}

/* Stores the first n_rows of 4 accumulated rows of width w. */
static NN_MHA_INLINE void put_rows(float *o0, float *o1, float *o2, float *o3, const float *c0,
                                   const float *c1, const float *c2, const float *c3, int n_rows,
                                   int64_t w) {
  float *o[NN_MHA_R] = {o0, o1, o2, o3};
  const float *c[NN_MHA_R] = {c0, c1, c2, c3};
  for (int r = 0; r < n_rows; r++) {
    if (w == NN_MHA_DB) memcpy(o[r], c[r], NN_MHA_DB * sizeof(float)); /* inlined: fixed size */
    else memcpy(o[r], c[r], (size_t)w * sizeof(float));
  }
}

/* o_r[0..w) = sum_{j<k} p[r][j] * v[j][0..w) for r < n_rows (<= 4),
 * p (4, ldp), v (k, ldv). Context (p = A', v = V) and dQ (p = dS, v = K). w <= NN_MHA_DB; the
 * full width is the vectorised case. Rows r >= n_rows of p are read but not stored. */
static NN_MHA_INLINE void panel_times_rows(float *o0, float *o1, float *o2, float *o3, int n_rows,
                                        const float *restrict p, int64_t ldp,
                                        const float *restrict v, int64_t ldv, int64_t k,
                                        int64_t w) {
  float c0[NN_MHA_DB] = {0}, c1[NN_MHA_DB] = {0}, c2[NN_MHA_DB] = {0}, c3[NN_MHA_DB] = {0};
  const float *p0 = p, *p1 = p + ldp, *p2 = p + 2 * ldp, *p3 = p + 3 * ldp;
  if (w == NN_MHA_DB) {
    for (int64_t j = 0; j < k; j++) {
      const float *vj = v + j * ldv;
      const float s0 = p0[j], s1 = p1[j], s2 = p2[j], s3 = p3[j];
      NN_MHA_UNROLL
      for (int l = 0; l < NN_MHA_DB; l++) {
        c0[l] += s0 * vj[l];
        c1[l] += s1 * vj[l];
        c2[l] += s2 * vj[l];
        c3[l] += s3 * vj[l];
      }
    }
  } else {
    for (int64_t j = 0; j < k; j++) {
      const float *vj = v + j * ldv;
      for (int64_t l = 0; l < w; l++) {
        c0[l] += p0[j] * vj[l];
        c1[l] += p1[j] * vj[l];
        c2[l] += p2[j] * vj[l];
        c3[l] += p3[j] * vj[l];
      }
    }
  }
  put_rows(o0, o1, o2, o3, c0, c1, c2, c3, n_rows, w);
}

/* dK = dS^T X and dV = A'^T Y for one head, per block of 4 keys: for keys j0..j0+3 (relative to
 * the head's first key block; key_base is that block's absolute index),
 *   dk_r[0..w) = sum_{i in [i_start(j0), n_q)} ds[i][j0+r] * x[i][0..w),
 *   dv_r[0..w) = sum_i ad[i][j0+r] * y[i][0..w),
 * stored (not accumulated) to dk, dv rows j (stride ldk) for j < n_keys. x = Q, y = dC (row
 * stride ldx); ds (stride lds) and ad (stride lda) are zero wherever a key is not allowed. Rows
 * before i_first see no key (their ds and ad rows are not read). Under the causal mask query i
 * sees key j only when i >= j - q_offset, so each block starts there (i_start = max(i_first,
 * key_base + j0 - q_offset)), and a row i read for keys j0..j0+3 has jend >= j0 + 1: it is read at
 * most 3 keys past its jend (ds and ad have zeros there). */
static NN_MHA_INLINE void keys_grad(float *dk, float *dv, int64_t ldk, int64_t n_keys, int64_t key_base,
                                 const float *restrict ds, int64_t lds, const float *restrict ad,
                                 int64_t lda, const float *restrict x, const float *restrict y,
                                 int64_t ldx, int64_t i_first, int64_t n_q, int causal,
                                 int64_t q_offset, int64_t w) {
  for (int64_t j0 = 0; j0 < n_keys; j0 += 4) {
    int64_t i0 = causal ? key_base + j0 - q_offset : 0;
    i0 = i0 < i_first ? i_first : (i0 > n_q ? n_q : i0);
    float k0[NN_MHA_DB] = {0}, k1[NN_MHA_DB] = {0}, k2[NN_MHA_DB] = {0}, k3[NN_MHA_DB] = {0};
    float v0[NN_MHA_DB] = {0}, v1[NN_MHA_DB] = {0}, v2[NN_MHA_DB] = {0}, v3[NN_MHA_DB] = {0};
    if (w == NN_MHA_DB) {
      for (int64_t i = i0; i < n_q; i++) {
        const float *xi = x + i * ldx, *yi = y + i * ldx;
        const float *si = ds + i * lds + j0, *ai = ad + i * lda + j0;
        const float s0 = si[0], s1 = si[1], s2 = si[2], s3 = si[3];
        const float a0 = ai[0], a1 = ai[1], a2 = ai[2], a3 = ai[3];
        NN_MHA_UNROLL
        for (int l = 0; l < NN_MHA_DB; l++) {
          k0[l] += s0 * xi[l];
          k1[l] += s1 * xi[l];
          k2[l] += s2 * xi[l];
          k3[l] += s3 * xi[l];
          v0[l] += a0 * yi[l];
          v1[l] += a1 * yi[l];
          v2[l] += a2 * yi[l];
          v3[l] += a3 * yi[l];
        }
      }
    } else {
      for (int64_t i = i0; i < n_q; i++) {
        const float *xi = x + i * ldx, *yi = y + i * ldx;
        const float *si = ds + i * lds + j0, *ai = ad + i * lda + j0;
        for (int64_t l = 0; l < w; l++) {
          k0[l] += si[0] * xi[l];
          k1[l] += si[1] * xi[l];
          k2[l] += si[2] * xi[l];
          k3[l] += si[3] * xi[l];
          v0[l] += ai[0] * yi[l];
          v1[l] += ai[1] * yi[l];
          v2[l] += ai[2] * yi[l];
          v3[l] += ai[3] * yi[l];
        }
      }
    }
    const int nk = (int)(n_keys - j0 < 4 ? n_keys - j0 : 4);
    float *dkj = dk + j0 * ldk, *dvj = dv + j0 * ldk;
    put_rows(dkj, dkj + ldk, dkj + 2 * ldk, dkj + 3 * ldk, k0, k1, k2, k3, nk, w);
    put_rows(dvj, dvj + ldk, dvj + 2 * ldk, dvj + 3 * ldk, v0, v1, v2, v3, nk, w);
  }
}

/* Branch-free selections on bit patterns: GCC keeps "c ? x : y" on floats as a branch under the
 * default -ftrapping-math, and a branch stops the vectoriser. */
static NN_MHA_INLINE float select_bits(float x, uint32_t m) { /* m all ones: x; 0: +0.0f */
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u &= m;
  memcpy(&x, &u, sizeof x);
  return x;
}

static NN_MHA_INLINE float pick(int c, float x, float y) { /* c ? x : y */
  uint32_t ux, uy, m = 0u - (uint32_t)(c != 0);
  memcpy(&ux, &x, sizeof ux);
  memcpy(&uy, &y, sizeof uy);
  ux = (ux & m) | (uy & ~m);
  memcpy(&x, &ux, sizeof x);
  return x;
}

/* Horizontal max / sum of NN_MHA_SB lanes by halving, so each step is a vector operation (a
 * scalar loop over the lanes stalls on store forwarding; rows are short, so it showed). The
 * lanes are clobbered. */
static NN_MHA_INLINE float lanes_max(float *v) { /* 8 lanes: NN_MHA_SB */
  for (int l = 0; l < 4; l++) v[l] = pick(v[l + 4] > v[l], v[l + 4], v[l]);
  float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3]; /* scalar: maxss */
  return a > b ? a : b;
}

static NN_MHA_INLINE float lanes_sum(float *v) {
  for (int l = 0; l < 4; l++) v[l] += v[l + 4];
  for (int l = 0; l < 2; l++) v[l] += v[l + 2];
  return v[0] + v[1];
}

/* Masked exponentials of the first n_rows rows of a block of score rows s (stride lds, n a
 * multiple of NN_MHA_KB wide): key j of row r is allowed when allow[j] is all ones and
 * j < jend[r]; s[r][j] becomes exp(s[r][j] - max_r) where allowed and exactly 0 elsewhere (up to
 * n). inv[r] = 1 / sum_j s[r][j], or 0 for a row without an allowed key (zero attention). */
static NN_MHA_INLINE void softmax_exp_rows(float *restrict s, int64_t lds, int n_rows,
                                        const uint32_t *restrict allow, const int64_t *jend,
                                        int64_t n, float *inv) {
  /* Two phases over the rows (maxima, then exponentials): the rows are independent, so the
   * processor overlaps one row's latency-bound exp chain with the next row's. */
  float m[NN_MHA_R];
  for (int r = 0; r < n_rows; r++) {
    const float *sr = s + r * lds;
    const int32_t je = (int32_t)jend[r];
    const int64_t nr = (jend[r] + NN_MHA_SB - 1) / NN_MHA_SB * NN_MHA_SB; /* <= n */
    float mx[NN_MHA_SB];
    for (int l = 0; l < NN_MHA_SB; l++) mx[l] = -INFINITY;
    for (int64_t j0 = 0; j0 < nr; j0 += NN_MHA_SB)
      for (int l = 0; l < NN_MHA_SB; l++) {
        uint32_t ok = allow[j0 + l] & (0u - (uint32_t)((int32_t)j0 + l < je));
        float v = pick(ok != 0, sr[j0 + l], -INFINITY);
        mx[l] = pick(v > mx[l], v, mx[l]);
      }
    /* with no allowed key m = -inf, every exp argument clamps to 0 and is masked away */
    m[r] = lanes_max(mx);
  }
  for (int r = 0; r < n_rows; r++) {
    float *sr = s + r * lds;
    const int32_t je = (int32_t)jend[r];
    const int64_t nr = (jend[r] + NN_MHA_SB - 1) / NN_MHA_SB * NN_MHA_SB;
    const float mr = m[r];
    float sum[NN_MHA_SB] = {0};
    for (int64_t j0 = 0; j0 < nr; j0 += NN_MHA_SB)
      for (int l = 0; l < NN_MHA_SB; l++) {
        uint32_t ok = allow[j0 + l] & (0u - (uint32_t)((int32_t)j0 + l < je));
        float e = select_bits(nn_exp_nonpos(select_bits(sr[j0 + l] - mr, ok)), ok);
        sr[j0 + l] = e;
        sum[l] += e;
      }
    for (int64_t j0 = nr; j0 < n; j0 += NN_MHA_SB)
      for (int l = 0; l < NN_MHA_SB; l++) sr[j0 + l] = 0.0f;
    const float total = lanes_sum(sum);
    inv[r] = total > 0.0f ? 1.0f / total : 0.0f;
  }
}

/* Normalises the exponentials e[0..w) of one row (zero from jend on; w = jend rounded up to
 * NN_MHA_SB) into the weights a = e * inv, written to the compact cache row acomp[0..w), and
 * leaves in e what the context product uses: a, or with dropout (keep: the row's bytes, 0 or 1
 * for j < jend) a' = a * drop_scale where kept. The keep bytes are read for j < w without
 * looking at jend: a is exactly +0 there, which any selection leaves +0 (so the bytes there, the
 * next row's or never written, do not matter). */
static NN_MHA_INLINE void finish_row(float *restrict e, float *restrict acomp,
                                  const uint8_t *restrict keep, int64_t w,
                                  float inv, float drop_scale) {
  if (!keep) {
    for (int64_t j = 0; j < w; j += NN_MHA_SB)
      for (int l = 0; l < NN_MHA_SB; l++) {
        const float a = e[j + l] * inv;
        acomp[j + l] = a;
        e[j + l] = a;
      }
    return;
  }
  for (int64_t j = 0; j < w; j += NN_MHA_SB)
    for (int l = 0; l < NN_MHA_SB; l++) {
      const float a = e[j + l] * inv;
      acomp[j + l] = a;
      e[j + l] = select_bits(a * drop_scale, 0u - (uint32_t)keep[j + l]);
    }
}

/* One row of the score gradient. With a the cached weights (zero where a key is not allowed; read
 * for j < w = jend rounded up to NN_MHA_SB) and g the dA' row, the weights after dropout are
 *   ad_j = a_j * drop_scale where kept (keep != NULL; written to adp[0..w); bytes from jend on
 *   are read but select nothing, as in finish_row), or a itself (adp is not written),
 * and ds_j = scale * (ad_j g_j - a_j sum_k ad_k g_k) for j < jend, and 0 for jend <= j < jend + 4
 * (within width): the dQ and dK products read a block's keys up to 3 past a row's jend (see
 * keys_grad), never further. */
static NN_MHA_INLINE void score_grad_row(float *restrict ds, float *restrict adp, const float *restrict g,
                                      const float *restrict a, const uint8_t *restrict keep,
                                      int64_t jend, int64_t w, int64_t width, float scale,
                                      float drop_scale) {
  const float *ad = a;
  if (keep) {
    for (int64_t j = 0; j < w; j += NN_MHA_SB)
      for (int l = 0; l < NN_MHA_SB; l++)
        adp[j + l] = select_bits(a[j + l] * drop_scale, 0u - (uint32_t)keep[j + l]);
    ad = adp;
  }
  float acc[NN_MHA_SB] = {0};
  int64_t j = 0;
  for (; j + NN_MHA_SB <= jend; j += NN_MHA_SB)
    for (int l = 0; l < NN_MHA_SB; l++) acc[l] += ad[j + l] * g[j + l];
  float dsum = lanes_sum(acc);
  for (; j < jend; j++) dsum += ad[j] * g[j];
  for (j = 0; j + NN_MHA_SB <= jend; j += NN_MHA_SB)
    for (int l = 0; l < NN_MHA_SB; l++) ds[j + l] = (ad[j + l] * g[j + l] - a[j + l] * dsum) * scale;
  for (; j < jend; j++) ds[j] = (ad[j] * g[j] - a[j] * dsum) * scale;
  for (int l = 0; l < 4; l++)
    if (jend + l < width) ds[jend + l] = 0.0f;
}
#endif /* NN_MHA_VEC */

/* ------------------------------------------------------------------------------------------- */
/* One (batch row, head): the kernels above inlined into one function per instruction set. */

/* The row block from kept query i0 of a head: returns its row count n_rows (NN_MHA_R, or what is
 * left), sets *jmax to the keys its last row sees (from kb) and x_rows to the block's rows of x
 * (row stride ldx), the last one repeated to fill a short block (rows past n_rows are computed
 * but not stored). */
static NN_MHA_INLINE int row_block(const float *x_rows[NN_MHA_R], int64_t *jmax, const float *x,
                                   int64_t ldx, int64_t i0, const mha_rows *r,
                                   const nn_mha_mask *mask, int64_t Tk) {
  const int n_rows = (int)(r->nq - i0 < NN_MHA_R ? r->nq - i0 : NN_MHA_R);
  *jmax = key_end(mask, r->qd + i0 + n_rows - 1, Tk) - r->kb;
  for (int k = 0; k < NN_MHA_R; k++) x_rows[k] = x + (i0 + (k < n_rows ? k : n_rows - 1)) * ldx;
  return n_rows;
}

/* Forward of the kept queries [i_first, nq) of one head: scores against kt (the head's keys from
 * kb, transposed), masked softmax, the compact weights (acomp rows, stride ldw) and dropout (keep:
 * the head's bytes from key kb on, row stride ldk, or NULL), context into ctx (row stride ldq,
 * like q). */
NN_MHA_HOT static void head_forward(float *ctx, const float *qh, int64_t ldq, const float *kt,
                                    int64_t tkp, const float *vh, int64_t ldv, float *panel,
                                    const uint32_t *allow, float *acomp, int64_t ldw,
                                    const uint8_t *keep, int64_t ldk, const nn_mha_mask *mask,
                                    const mha_rows *r, int64_t dh, float scale, float drop_scale) {
  const int64_t Tk = ldk;
  for (int64_t i0 = r->i_first; i0 < r->nq; i0 += NN_MHA_R) {
    const float *q[NN_MHA_R];
    int64_t jmax;
    const int n_rows = row_block(q, &jmax, qh, ldq, i0, r, mask, Tk);
    const int64_t n = round_kb(jmax);
    rows_times_panel(panel, tkp, q[0], q[1], q[2], q[3], kt, tkp, dh, n, scale);
    int64_t jend[NN_MHA_R];
    float inv[NN_MHA_R];
    for (int k = 0; k < n_rows; k++) jend[k] = key_end(mask, r->qd + i0 + k, Tk) - r->kb;
    softmax_exp_rows(panel, tkp, n_rows, allow, jend, n, inv);
    for (int k = 0; k < n_rows; k++) {
      const int64_t i = i0 + k;
      finish_row(panel + k * tkp, acomp + i * ldw, keep ? keep + i * ldk : NULL, round_sb(jend[k]),
                 inv[k], drop_scale);
    }
    float *o = ctx + i0 * ldq;
    for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
      const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
      panel_times_rows(o + d0, o + ldq + d0, o + 2 * ldq + d0, o + 3 * ldq + d0, n_rows, panel, tkp,
                       vh + d0, ldv, jmax, w);
    }
  }
}

/* Backward of one head (the kept queries [i_first, nq), the keys from kb): dQ rows (stride ldq,
 * like q and dC), dK and dV rows from key kb (stride ldkv, like K and V). */
NN_MHA_HOT static void head_backward(float *dqh, float *dkh, float *dvh, int64_t ldkv,
                                     const float *qh, const float *kh, const float *dch,
                                     int64_t ldq, const float *vt, int64_t tkp, float *ds_panel,
                                     float *ad_panel, float *g, const float *A, int64_t ldw,
                                     const uint8_t *keep, int64_t ldk, const nn_mha_mask *mask,
                                     const mha_rows *r, int64_t dh, float scale, float drop_scale) {
  const int64_t Tk = ldk;
  for (int64_t i0 = r->i_first; i0 < r->nq; i0 += NN_MHA_R) {
    const float *dc[NN_MHA_R];
    int64_t jmax;
    const int n_rows = row_block(dc, &jmax, dch, ldq, i0, r, mask, Tk);
    const int64_t n = round_kb(jmax);
    /* the next block's cached weights and keep bytes (written by the forward long ago: not in
     * cache, and read in short rows the hardware prefetcher does not anticipate) */
    for (int64_t i = i0 + NN_MHA_R; i < i0 + 2 * NN_MHA_R && i < r->nq; i++) {
      const int64_t w = round_sb(key_end(mask, r->qd + i, Tk) - r->kb);
      for (int64_t j = 0; j < w; j += 16) NN_MHA_PREFETCH(A + i * ldw + j);
      if (keep) NN_MHA_PREFETCH(keep + i * ldk);
    }
    /* dA' = dC V^T for the block's rows */
    rows_times_panel(g, tkp, dc[0], dc[1], dc[2], dc[3], vt, tkp, dh, n, 1.0f);
    for (int k = 0; k < n_rows; k++) {
      const int64_t i = i0 + k, jend = key_end(mask, r->qd + i, Tk) - r->kb;
      score_grad_row(ds_panel + i * tkp, ad_panel + i * tkp, g + k * tkp, A + i * ldw,
                     keep ? keep + i * ldk : NULL, jend, round_sb(jend), tkp, scale, drop_scale);
    }
    /* dQ = dS K (written: every (row, head column) once); the dS panel has NN_MHA_R zero rows
     * after row Tq - 1 for the last block */
    float *o = dqh + i0 * ldq;
    for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
      const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
      panel_times_rows(o + d0, o + ldq + d0, o + 2 * ldq + d0, o + 3 * ldq + d0, n_rows,
                       ds_panel + i0 * tkp, tkp, kh + d0, ldkv, jmax, w);
    }
  }
  /* dK = dS^T Q, dV = A'^T dC over the keys from kb; a key's causal first query is counted in
   * dense query indices (key_base - qd) */
  const float *Ad = keep ? ad_panel : A;
  const int64_t lda = keep ? tkp : ldw;
  const int causal = mask && mask->causal;
  const int64_t q_offset = mask ? mask->q_offset : 0;
  for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
    const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
    keys_grad(dkh + d0, dvh + d0, ldkv, r->nk, r->kb - r->qd, ds_panel, tkp, Ad, lda, qh + d0,
              dch + d0, ldq, r->i_first, r->nq, causal, q_offset, w);
  }
}

/* ------------------------------------------------------------------------------------------- */

static void mha_forward(float *out, float *cache, const float *q_in, const float *kv_in,
                        const float *w_in, const float *b_in, const float *w_o, const float *b_o,
                        const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                        const nn_mha_shape *s, const int64_t *rows) {
  check_shape(s);
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p %g", (double)p);
  if (rows) check_rows(rows, s);
  const int64_t B = s->B, Tq = s->Tq, Tk = s->Tk, E = s->E, H = s->n_heads, dh = E / H;
  const int64_t tkp = round_kb(Tk), tkw = round_sb(Tk);
  const int64_t q_offset = mask ? mask->q_offset : 0;
  const uint8_t *key_padding = mask ? mask->key_padding : NULL;
  const float scale = (float)(1.0 / sqrt((double)dh));
  const float drop_scale = 1.0f / (1.0f - p); /* as nn_dropout_apply */
  mha_internal in;
  nn_mha_cache c = carve(cache, s, &in);
  const mha_info info = {NN_MHA_INFO_MAGIC, mask ? mask->causal : 0, q_offset, p, rows != NULL};
  memcpy(in.info, &info, sizeof info);
  int64_t n_q_rows = 0, n_kv_rows = rows ? rows[B] : B * Tk;
  for (int64_t b = 0; b < B; b++) n_q_rows += rows_of(mask, rows, b, 0, Tk, s).nq;

  nn_linear_forward(c.q, q_in, w_in, b_in, n_q_rows, E, E);
  nn_linear_forward(c.kv, kv_in, w_in + E * E, b_in ? b_in + E : NULL, n_kv_rows, E, 2 * E);

  for (int64_t b = 0, q0 = 0; b < B; b++) {
    const uint8_t *pad = key_padding ? key_padding + b * Tk : NULL;
    const int64_t k0 = rows ? Tk - (rows[b + 1] - rows[b]) : 0, first = first_key(pad, k0, Tk);
    in.first[b] = (int32_t)first;
    const mha_rows r = rows_of(mask, rows, b, q0, first, s);
    q0 += r.nq;
    /* allowed keys, relative to kb; the block's padding beyond Tk is not allowed */
    for (int64_t j = 0; j < round_kb(r.nk); j++)
      in.allow[j] = j < r.nk && !(pad && pad[r.kb + j]) ? UINT32_MAX : 0u;
    for (int64_t hd = 0; hd < H; hd++) {
      const float *kh = c.kv + (r.kv0 + r.kb - r.k0) * 2 * E + hd * dh; /* (nk, dh), stride 2E */
      const float *vh = kh + E;
      const float *qh = c.q + r.q0 * E + hd * dh; /* (nq, dh), row stride E */
      const int64_t row0 = (b * H + hd) * Tq;     /* the head's first row of acomp and keep */
      float *ctx = c.ctx + r.q0 * E + hd * dh;
      for (int64_t i = 0; i < r.i_first; i++) /* zero attention */
        for (int64_t d = 0; d < dh; d++) ctx[i * E + d] = 0.0f;
      if (r.i_first >= r.nq) continue;
      transpose_head(in.kt, tkp, kh, 2 * E, r.nk, dh);
      uint8_t *keep = NULL; /* the head's keep bytes, (Tq, Tk): row i, key j at i Tk + j */
      if (p > 0.0f) { /* row i's keys [kb, jend) are at counter ctr + (i - i_first) Tk + (j - kb) */
        keep = in.keep + row0 * Tk;
        const int64_t c0 = r.i_first * Tk + r.kb;
        const int64_t len0 = key_end(mask, r.qd + r.i_first, Tk) - r.kb;
        uint64_t ctr = offset + (uint64_t)(((b * H + hd) * (q_offset + Tq) + q_offset + r.qd) * Tk + c0);
        nn_dropout_mask_rows(keep + c0, Tk, r.nq - r.i_first, len0, mask && mask->causal ? 1 : 0,
                             r.nk, p, key, ctr);
      }
      head_forward(ctx, qh, E, in.kt, tkp, vh, 2 * E, in.panel, in.allow, in.acomp + row0 * tkw, tkw,
                   keep ? keep + r.kb : NULL, Tk, mask, &r, dh, scale, drop_scale);
    }
  }
  nn_linear_forward(out, c.ctx, w_o, b_o, n_q_rows, E, E);
}

static void mha_backward(float *dq_in, float *dkv_in, float *dw_in, float *db_in, float *dw_o,
                         float *db_o, float *scratch, const float *dout, const float *cache,
                         const float *q_in, const float *kv_in, const float *w_in, const float *w_o,
                         const nn_mha_mask *mask, float p, const nn_mha_shape *s,
                         const int64_t *rows) {
  check_shape(s);
  if (rows) check_rows(rows, s);
  const int64_t B = s->B, Tq = s->Tq, Tk = s->Tk, E = s->E, H = s->n_heads, dh = E / H;
  const int64_t tkp = round_kb(Tk), tkw = round_sb(Tk);
  const float scale = (float)(1.0 / sqrt((double)dh));
  const float drop_scale = 1.0f / (1.0f - p);
  mha_internal in;
  nn_mha_cache c = carve((float *)cache, s, &in); /* read only below */
  float *dctx = scratch;                        /* (B, Tq, E) */
  float *dq = dctx + round16(B * Tq * E);        /* (B, Tq, E) */
  float *dkv = dq + round16(B * Tq * E);         /* (B, Tk, 2E) */
  float *vt = dkv + round16(B * Tk * 2 * E);     /* (dh, tkp) */
  float *ds_panel = vt + round16(dh * tkp);      /* (Tq + R, tkp) dS of one head */
  float *ad_panel = ds_panel + round16((Tq + NN_MHA_R) * tkp); /* (Tq + R, tkp) A' of one head */
  float *g = ad_panel + round16((Tq + NN_MHA_R) * tkp); /* (R, tkp) dA' of one row block */
  int64_t n_q_rows = 0, n_kv_rows = rows ? rows[B] : B * Tk;
  for (int64_t b = 0; b < B; b++) n_q_rows += rows_of(mask, rows, b, 0, Tk, s).nq;

  /* dctx = dout W_o (overwritten: no memset), dW_o and db_o accumulated */
  nn_gemm(0, 0, n_q_rows, E, E, 1.0f, dout, E, w_o, E, 0.0f, dctx, E);
  nn_linear_backward(NULL, dw_o, db_o, dout, c.ctx, w_o, n_q_rows, E, E);
  memset(ds_panel + Tq * tkp, 0, (size_t)(NN_MHA_R * tkp) * sizeof(float));

  for (int64_t b = 0, q0 = 0; b < B; b++) {
    const mha_rows r = rows_of(mask, rows, b, q0, in.first[b], s);
    q0 += r.nq;
    for (int64_t hd = 0; hd < H; hd++) {
      const float *qh = c.q + r.q0 * E + hd * dh;                        /* (nq, dh), stride E */
      const float *kh = c.kv + (r.kv0 + r.kb - r.k0) * 2 * E + hd * dh; /* (nk, dh), stride 2E */
      const float *vh = kh + E;
      const float *dch = dctx + r.q0 * E + hd * dh; /* (nq, dh), row stride E */
      float *dqh = dq + r.q0 * E + hd * dh;
      float *dkh = dkv + r.kv0 * 2 * E + hd * dh;   /* the kept keys from k0 */
      float *dvh = dkh + E;
      const int64_t row0 = (b * H + hd) * Tq;
      const float *A = in.acomp + row0 * tkw;                        /* (nq, tkw) */
      const uint8_t *keep = p > 0.0f ? in.keep + row0 * Tk : NULL;  /* (nq, Tk) */
      /* what sees no key or is seen by no query gets zero gradients */
      for (int64_t i = 0; i < r.i_first; i++)
        for (int64_t d = 0; d < dh; d++) dqh[i * E + d] = 0.0f;
      const int64_t j_zero = (r.i_first < r.nq ? r.kb : Tk) - r.k0;
      for (int64_t j = 0; j < j_zero; j++)
        for (int64_t d = 0; d < dh; d++) dkh[j * 2 * E + d] = dvh[j * 2 * E + d] = 0.0f;
      if (r.i_first >= r.nq) continue;
      transpose_head(vt, tkp, vh, 2 * E, r.nk, dh);
      const int64_t kbo = (r.kb - r.k0) * 2 * E;
      head_backward(dqh, dkh + kbo, dvh + kbo, 2 * E, qh, kh, dch, E, vt, tkp, ds_panel, ad_panel, g,
                    A, tkw, keep ? keep + r.kb : NULL, Tk, mask, &r, dh, scale, drop_scale);
    }
  }
  if (dq_in || dw_in || db_in)
    nn_linear_backward(dq_in, dw_in, db_in, dq, q_in, w_in, n_q_rows, E, E);
  if (dkv_in || dw_in || db_in)
    nn_linear_backward(dkv_in, dw_in ? dw_in + E * E : NULL, db_in ? db_in + E : NULL, dkv, kv_in,
                       w_in + E * E, n_kv_rows, E, 2 * E);
}

void nn_mha_forward(float *out, float *cache, const float *q_in, const float *kv_in,
                    const float *w_in, const float *b_in, const float *w_o, const float *b_o,
                    const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                    const nn_mha_shape *s) {
  mha_forward(out, cache, q_in, kv_in, w_in, b_in, w_o, b_o, mask, p, key, offset, s, NULL);
}

void nn_mha_forward_packed(float *out, float *cache, const float *q_in, const float *kv_in,
                           const float *w_in, const float *b_in, const float *w_o, const float *b_o,
                           const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                           const nn_mha_shape *s, const int64_t *rows) {
  HSRL_CHECK(rows != NULL);
  mha_forward(out, cache, q_in, kv_in, w_in, b_in, w_o, b_o, mask, p, key, offset, s, rows);
}

void nn_mha_backward(float *dq_in, float *dkv_in, float *dw_in, float *db_in, float *dw_o,
                     float *db_o, float *scratch, const float *dout, const float *cache,
                     const float *q_in, const float *kv_in, const float *w_in, const float *w_o,
                     const nn_mha_mask *mask, float p, const nn_mha_shape *s) {
  mha_backward(dq_in, dkv_in, dw_in, db_in, dw_o, db_o, scratch, dout, cache, q_in, kv_in, w_in, w_o,
               mask, p, s, NULL);
}

void nn_mha_backward_packed(float *dq_in, float *dkv_in, float *dw_in, float *db_in, float *dw_o,
                            float *db_o, float *scratch, const float *dout, const float *cache,
                            const float *q_in, const float *kv_in, const float *w_in,
                            const float *w_o, const nn_mha_mask *mask, float p,
                            const nn_mha_shape *s, const int64_t *rows) {
  HSRL_CHECK(rows != NULL);
  mha_backward(dq_in, dkv_in, dw_in, db_in, dw_o, db_o, scratch, dout, cache, q_in, kv_in, w_in, w_o,
               mask, p, s, rows);
}

nn_mha_cache nn_mha_cache_view(float *buf, const nn_mha_shape *s) {
  mha_internal in;
  nn_mha_cache c = carve(buf, s, &in);
  mha_info info;
  memcpy(&info, in.info, sizeof info);
  if (info.magic != NN_MHA_INFO_MAGIC || info.packed) return c; /* nothing to expand */
  /* expand the compact weights into the dense views */
  const int64_t H = s->n_heads, Tq = s->Tq, Tk = s->Tk, tkw = round_sb(Tk);
  const nn_mha_mask m = {info.causal, info.q_offset, NULL};
  const float drop_scale = 1.0f / (1.0f - info.p);
  for (int64_t b = 0; b < s->B; b++) {
    const mha_rows r = rows_of(&m, NULL, b, 0, in.first[b], s);
    for (int64_t hd = 0; hd < H; hd++)
      for (int64_t i = 0; i < Tq; i++) {
        const int64_t row = (b * H + hd) * Tq + i, jend = key_end(&m, i, Tk);
        const float *a = in.acomp + row * tkw; /* key j at a[j - kb] */
        const uint8_t *keep = in.keep + row * Tk;
        for (int64_t j = 0; j < Tk; j++) {
          const float v = i >= r.i_first && j >= r.kb && j < jend ? a[j - r.kb] : 0.0f;
          c.att[row * Tk + j] = v;
          if (info.p > 0.0f) c.att_drop[row * Tk + j] = j < jend && keep[j] ? v * drop_scale : 0.0f;
        }
      }
  }
  return c;
}
