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
 * blocks of up to NN_MHA_R = 8 query rows over chunks of NN_MHA_SB = 8 keys, fused (head_forward):
 *   scores S = scale * Q K^T for the block's rows against a transposed copy of K (kt, (dh, Tkp)
 *     with Tkp = Tk rounded up to NN_MHA_KB, zero-padded), over the chunks up to the block's last
 *     causal key only (the causal mask halves the work), each row's maximum over its allowed keys
 *     taken from the fresh scores (a maximum is the same in any order: no second pass);
 *   exponentials in place (a vectorisable polynomial, nn_exp_nonpos; the padding and causal masks
 *     applied as bit masks, only to the chunks that may need them: those holding padding, and
 *     those past the block's first row's causal end), then the weights, written to the compact
 *     cache rows of A, and their dropout;
 *   context C = A' V for the block's rows over the same keys (C columns of one head, d innermost:
 *     8 rows are 8 independent sums per column, enough to hide the additions' latency).
 * The backward (head_backward) does the same per block of rows (dA' = dC V^T against a transposed
 * V; A' rebuilt from A and the keep bytes into a panel of the head, dS into another; dQ = dS K),
 * then dK = dS^T Q and dV = A'^T dC per block of 4 keys over the query rows that can see them.
 * Every output element is written exactly once, so the backward zeroes none of its buffers.
 * The rows are cut into blocks of 8 and the remainder into blocks of 4, 2 and 1 (each size is its
 * own unrolled code, so no row is computed twice; the last-position layer has one query per
 * head). Under the causal mask the 8 rows of a block whose first row sees 8 m + 1 keys from kb
 * (the packed layout, where kb is the first unpadded key) need the same chunks.
 *
 * What is skipped: a batch row's keys before its first unpadded one are skipped in whole blocks of
 * NN_MHA_SB (keys are addressed from that block, kb; the row sums keep their lanes, so the result
 * is bit for bit the one from key 0), and its queries that see no key (left padding under the
 * causal mask) are neither computed nor drawn dropout for: their context is zero, their gradients
 * zero. The compact cache holds, per query row, the weights from kb up to its row block's causal
 * end (rounded up to NN_MHA_SB; stride Tkw) and, with dropout, the keep bytes (1 byte, where A'
 * took a second float): about a third of the two dense (B, h, Tq, Tk) arrays it replaced, which the
 * backward read back from memory. The dense views are filled on request by nn_mha_cache_view.
 * Dropout bytes are drawn for the causal staircase only (nn_dropout_mask_rows). Packed rows
 * (nn_mha_forward_packed) only move where a batch row's kept keys and queries are.
 *
 * Code generation: with GCC the kernels are written on vector types (NN_MHA_VEC: v8f lanes of
 * NN_MHA_SB keys or NN_MHA_DB head columns); with other compilers (clang lacks __builtin_shuffle),
 * or with -DNN_MHA_NO_VEC, as loops for the auto-vectoriser (fixed-size inner loops, accumulators
 * as local arrays, selections as bit masks since a float "c ? x : y" stays a branch under
 * -ftrapping-math). GCC's auto-vectoriser is fragile on these (it once split one of four 16-key
 * score accumulators into 1 + 8 + 4 + 2 + 1 lanes, and packs two adjacent 8-lane accumulator rows
 * into 16 lanes that need two multipliers: see NN_MHA_RL), hence the vector types. Both versions do
 * the same float operations in the same order per element (sums over keys in NN_MHA_SB lanes folded
 * by halving, then the tail key by key), so they give the same bits. On x86-64 with GCC the two
 * per-head functions (the kernels inlined into them) are compiled three times (x86-64-v4 i.e.
 * AVX-512, AVX2, baseline) by target_clones and picked at load time; the head transposes use AVX2
 * intrinsics when available. A head width that is not a multiple of NN_MHA_DB takes a plain-loop
 * path for its last columns (tests/test_nn_kernels.c covers both against a double-precision
 * reference). The forward and the backward prefetch the next row block's compact weights (the
 * backward also its keep bytes, and the next batch row's Q, K|V rows and the rows of their
 * gradients): in training the cache buffer is no longer in the processor's caches when a layer
 * runs, and its short rows are not what the hardware prefetcher foresees (without it, the forward's
 * stores waited for their lines, the backward's loads).
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

#define NN_MHA_R 8   /* query rows per block (at most; see the per-head functions) */
#define NN_MHA_KB 16 /* panel rows and kt are padded to multiples of it */
#define NN_MHA_SB 8  /* keys per chunk of the products and row loops: one AVX2 register, so that
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
  /* dctx, dQ, dK|dV; vt (dh, Tkp), the dS and A' panels (Tq, Tkp) of one head, the dA' block
   * (R, Tkp) */
  return 2 * round16(s->B * s->Tq * s->E) + round16(s->B * s->Tk * 2 * s->E) + round16(dh * tkp) +
         2 * round16(s->Tq * tkp) + round16(NN_MHA_R * tkp);
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

/* block_times_rows (below, in both versions) for a width w < NN_MHA_DB: the head's last columns
 * when the head width is not a multiple of NN_MHA_DB, as plain loops in both versions. */
static NN_MHA_INLINE void block_times_rows_narrow(const int R, float *o, int64_t ldo,
                                                  const float *restrict p, int64_t ldp,
                                                  const float *restrict v, int64_t ldv, int64_t k,
                                                  int64_t w) {
  float c[NN_MHA_R][NN_MHA_DB] = {{0}};
  for (int64_t j = 0; j < k; j++) {
    const float *vj = v + j * ldv;
    for (int r = 0; r < R; r++) {
      const float pj = p[r * ldp + j];
      for (int64_t l = 0; l < w; l++) c[r][l] += pj * vj[l];
    }
  }
  for (int r = 0; r < R; r++) memcpy(o + r * ldo, c[r], (size_t)w * sizeof(float));
}

#if NN_MHA_VEC
/* The kernels on GCC vector types (see the file comment): every lane does what the scalar loops
 * of the #else branch do, in the same order, so both give the same bits. GCC notes that passing
 * and returning vector types changes the ABI between instruction sets (-Wpsabi, silenced for this
 * file in CMakeLists.txt): these helpers are static and always inlined, so no call crosses that
 * boundary. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint64_t v4q __attribute__((vector_size(32)));

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
/* all ones where the byte is 1 (keep bytes are 0 or 1), else 0: the 8 bytes broadcast, each lane
 * shifts its own down (GCC 12 converts a vector of 8 bytes lane by lane through a general
 * register instead) */
static NN_MHA_INLINE v8u keep_mask8(const uint8_t *p) {
  uint64_t u;
  memcpy(&u, p, sizeof u);
  const v8u x = __builtin_shuffle((v8u)((v4q){0} + u), (v8u){0, 2, 4, 6, 1, 3, 5, 7});
  return (v8u){0} - ((x >> (v8u){0, 8, 16, 24, 0, 8, 16, 24}) & 1u);
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
/* all ones for the lanes j0 + l < jend */
static NN_MHA_INLINE v8u below8(int64_t j0, int64_t jend) {
  return (v8u)(iota8 + (int32_t)j0 < (v8i){0} + (int32_t)jend);
}

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

/* nn_exp_nonpos (nn_softmax.h) lane by lane, the same value for every x <= 0 and NaN: the same
 * float operations in the same order, but 2^n is built from the bits of the rounding sum
 * v = t + 1.5 * 2^23 (for |t| < 2^22 its low bits are 0x4b400000 + n, and the shift by 23 drops
 * the high ones) instead of converting n = v - 1.5 * 2^23 to an integer, which needs no NaN guard
 * (a NaN x still gives y NaN, so NaN * 2^n, as there). */
static NN_MHA_INLINE v8f exp_nonpos8(v8f x) {
  const v8u under = (v8u)(x < -87.0f);
  x = floats8((bits8(x) & ~under) | (bits8((v8f){0} - 87.0f) & under));
  const v8f t = x * 1.44269504088896341f;
  const v8f v = t + 12582912.0f;
  const v8f fn = v - 12582912.0f;
  const v8f r1 = x - fn * 0.693359375f;
  const v8f r = r1 - fn * -2.12194440e-4f;
  const v8f r2 = r * r, r4 = r2 * r2;
  const v8f p01 = 1.9875691500e-4f * r + 1.3981999507e-3f;
  const v8f p23 = 8.3334519073e-3f * r + 4.1665795894e-2f;
  const v8f p45 = 1.6666665459e-1f * r + 5.0000001201e-1f;
  const v8f y = ((p01 * r4 + p23 * r2) + p45) * r2 + r + 1.0f;
  const v8f res = y * floats8((bits8(v) + 127u) << 23);
  return floats8(bits8(res) & ~under);
}

static NN_MHA_INLINE void chunk_product(const int R, v8f *acc, const float *const *a,
                                        const float *restrict bt, int64_t ldb, int64_t k) {
  NN_MHA_UNROLL
  for (int r = 0; r < R; r++) acc[r] = (v8f){0};
  if (k == NN_MHA_DB) { /* the policy's head width: fixed offsets, no loop */
    NN_MHA_UNROLL
    for (int d = 0; d < NN_MHA_DB; d++) {
      const v8f b = load8(bt + d * ldb);
      NN_MHA_UNROLL
      for (int r = 0; r < R; r++) acc[r] += a[r][d] * b;
    }
    return;
  }
  for (int64_t d = 0; d < k; d++) {
    const v8f b = load8(bt + d * ldb);
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) acc[r] += a[r][d] * b;
  }
}

static NN_MHA_INLINE void scores_max(const int R, float *restrict s, int64_t lds,
                                     const float *const *q, const float *restrict kt, int64_t ldk,
                                     int64_t dh, int64_t nc, int64_t c_lo, int64_t c_hi,
                                     const uint32_t *restrict allow, const int64_t *jend,
                                     float scale, float *m) {
  v8f mx[NN_MHA_R];
  NN_MHA_UNROLL
  for (int r = 0; r < R; r++) mx[r] = (v8f){0} - INFINITY;
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    v8f acc[NN_MHA_R];
    chunk_product(R, acc, q, kt + j0, ldk, dh);
    const int edge = c < c_lo || c >= c_hi;
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) {
      v8f v = scale * acc[r];
      store8(s + r * lds + j0, v);
      if (edge) v = pick8(loadu8(allow + j0) & below8(j0, jend[r]), v, (v8f){0} - INFINITY);
      mx[r] = pick8((v8u)(v > mx[r]), v, mx[r]);
    }
  }
  NN_MHA_UNROLL
  for (int r = 0; r < R; r++) m[r] = vlanes_max(mx[r]);
}

static NN_MHA_INLINE void rows_times_chunks(const int R, float *restrict out, int64_t ldo,
                                            const float *const *a, const float *restrict bt,
                                            int64_t ldb, int64_t k, int64_t nc) {
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    v8f acc[NN_MHA_R];
    chunk_product(R, acc, a, bt + j0, ldb, k);
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) store8(out + r * ldo + j0, acc[r]);
  }
}

static NN_MHA_INLINE void softmax_exp_block(const int R, float *restrict s, int64_t lds, int64_t nc,
                                            int64_t c_lo, int64_t c_hi,
                                            const uint32_t *restrict allow, const int64_t *jend,
                                            const float *m, float *inv) {
  v8f sum[NN_MHA_R];
  NN_MHA_UNROLL
  for (int r = 0; r < R; r++) sum[r] = (v8f){0};
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    if (c >= c_lo && c < c_hi) {
      NN_MHA_UNROLL
      for (int r = 0; r < R; r++) {
        const v8f e = exp_nonpos8(load8(s + r * lds + j0) - m[r]);
        store8(s + r * lds + j0, e);
        sum[r] += e;
      }
    } else {
      NN_MHA_UNROLL
      for (int r = 0; r < R; r++) {
        const v8u ok = loadu8(allow + j0) & below8(j0, jend[r]);
        const v8f e = select8(exp_nonpos8(select8(load8(s + r * lds + j0) - m[r], ok)), ok);
        store8(s + r * lds + j0, e);
        sum[r] += e;
      }
    }
  }
  NN_MHA_UNROLL
  for (int r = 0; r < R; r++) {
    const float total = vlanes_sum(sum[r]);
    inv[r] = total > 0.0f ? 1.0f / total : 0.0f;
  }
}

static NN_MHA_INLINE void finish_block(const int R, float *restrict e, int64_t lde,
                                       float *restrict acomp, int64_t ldw,
                                       const uint8_t *restrict keep, int64_t ldk, int64_t nc,
                                       const float *inv, float drop_scale) {
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) {
      const v8f a = load8(e + r * lde + j0) * inv[r];
      store8(acomp + r * ldw + j0, a);
      store8(e + r * lde + j0, keep ? select8(a * drop_scale, keep_mask8(keep + r * ldk + j0)) : a);
    }
  }
}

static NN_MHA_INLINE void block_times_rows(const int R, float *o, int64_t ldo,
                                           const float *restrict p, int64_t ldp,
                                           const float *restrict v, int64_t ldv, int64_t k,
                                           int64_t w) {
  if (w == NN_MHA_DB) {
    v8f c[NN_MHA_R];
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) c[r] = (v8f){0};
    for (int64_t j = 0; j < k; j++) {
      const v8f vj = load8(v + j * ldv);
      NN_MHA_UNROLL
      for (int r = 0; r < R; r++) c[r] += p[r * ldp + j] * vj;
    }
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) store8(o + r * ldo, c[r]);
    return;
  }
  block_times_rows_narrow(R, o, ldo, p, ldp, v, ldv, k, w);
}

static NN_MHA_INLINE void score_grad_row(float *restrict ds, float *restrict adp,
                                         const float *restrict g, const float *restrict a,
                                         const uint8_t *restrict keep, int64_t jend, int64_t nc,
                                         float scale, float drop_scale) {
  const float *ad = a;
  if (keep) {
    for (int64_t j = 0; j < nc * NN_MHA_SB; j += NN_MHA_SB)
      store8(adp + j, select8(load8(a + j) * drop_scale, keep_mask8(keep + j)));
    ad = adp;
  }
  const int64_t nfull = jend / NN_MHA_SB * NN_MHA_SB;
  v8f acc = {0};
  for (int64_t j = 0; j < nfull; j += NN_MHA_SB) acc += load8(ad + j) * load8(g + j);
  float dsum = vlanes_sum(acc);
  if (nfull < jend) {
    const v8f t = select8(load8(ad + nfull) * load8(g + nfull), below8(nfull, jend));
    NN_MHA_UNROLL
    for (int l = 0; l < NN_MHA_SB; l++) dsum += t[l];
  }
  int64_t j = 0;
  for (; j < nfull; j += NN_MHA_SB)
    store8(ds + j, (load8(ad + j) * load8(g + j) - load8(a + j) * dsum) * scale);
  for (; j < nc * NN_MHA_SB; j += NN_MHA_SB)
    store8(ds + j, select8((load8(ad + j) * load8(g + j) - load8(a + j) * dsum) * scale,
                           below8(j, jend)));
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

#else /* NN_MHA_VEC */
/* Accumulator rows (8 lanes) are padded to 9 so that the basic-block vectoriser packs each row on
 * its own: with the rows adjacent it packed two rows into 16 lanes whose products need different
 * scalars, and multiplied lane by lane. */
#define NN_MHA_RL (NN_MHA_SB + 1)

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

/* all ones when key j0 + l is below jend */
static NN_MHA_INLINE uint32_t below(int64_t j0, int l, int64_t jend) {
  return 0u - (uint32_t)((int32_t)j0 + l < (int32_t)jend);
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

/* The kernels of a block of R <= NN_MHA_R query rows over the 8-key chunks c < nc of the keys
 * from kb (nc: the block's last causal key rounded up to NN_MHA_SB, over NN_MHA_SB; keys past
 * it are never read). Every element's sum runs in the same order whatever R is (a block's extra
 * keys contribute exact zeros), which is the row independence of the file comment. */

/* acc[r][l] = sum_{d<k} a_r[d] * bt[d][l] for r < R, l < NN_MHA_SB, in d order from +0 (bt (k, ldb):
 * K^T or V^T from a chunk's first key). */
static NN_MHA_INLINE void chunk_product(const int R, float acc[][NN_MHA_RL], const float *const *a,
                                        const float *restrict bt, int64_t ldb, int64_t k) {
  NN_MHA_UNROLL
  for (int r = 0; r < R; r++)
    for (int l = 0; l < NN_MHA_SB; l++) acc[r][l] = 0.0f;
  for (int64_t d = 0; d < k; d++) {
    const float *b = bt + d * ldb;
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) {
      const float ad = a[r][d];
      NN_MHA_UNROLL
      for (int l = 0; l < NN_MHA_SB; l++) acc[r][l] += ad * b[l];
    }
  }
}

/* Scores s[r][j] = scale * sum_{d<dh} q_r[d] kt[d][j] for j < 8 nc (s rows of stride lds) and
 * m[r] = the exact maximum of the allowed ones (-inf if none): a maximum does not depend on the
 * order it is taken in, so taking it here from the fresh scores gives what a pass over the row
 * gave. Key j of row r is allowed when allow[j] is all ones and j < jend[r]; the chunks in
 * [c_lo, c_hi) are allowed for every row of the block (no padding, below the first row's causal
 * end), so only the others look at the masks. */
static NN_MHA_INLINE void scores_max(const int R, float *restrict s, int64_t lds,
                                     const float *const *q, const float *restrict kt, int64_t ldk,
                                     int64_t dh, int64_t nc, int64_t c_lo, int64_t c_hi,
                                     const uint32_t *restrict allow, const int64_t *jend,
                                     float scale, float *m) {
  float mx[NN_MHA_R][NN_MHA_RL];
  for (int r = 0; r < R; r++)
    for (int l = 0; l < NN_MHA_SB; l++) mx[r][l] = -INFINITY;
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    float acc[NN_MHA_R][NN_MHA_RL];
    chunk_product(R, acc, q, kt + j0, ldk, dh);
    const uint32_t all = c < c_lo || c >= c_hi ? 0u : UINT32_MAX; /* inside: no masks */
    for (int r = 0; r < R; r++)
      for (int l = 0; l < NN_MHA_SB; l++) {
        const float v = scale * acc[r][l];
        s[r * lds + j0 + l] = v;
        const float vm = pick(((allow[j0 + l] & below(j0, l, jend[r])) | all) != 0, v, -INFINITY);
        mx[r][l] = pick(vm > mx[r][l], vm, mx[r][l]);
      }
  }
  for (int r = 0; r < R; r++) m[r] = lanes_max(mx[r]);
}

/* out[r][j] = sum_{d<k} a_r[d] * bt[d][j] for j < 8 nc: dA' = dC V^T (a = dC rows, bt = V^T). */
static NN_MHA_INLINE void rows_times_chunks(const int R, float *restrict out, int64_t ldo,
                                            const float *const *a, const float *restrict bt,
                                            int64_t ldb, int64_t k, int64_t nc) {
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    float acc[NN_MHA_R][NN_MHA_RL];
    chunk_product(R, acc, a, bt + j0, ldb, k);
    for (int r = 0; r < R; r++) memcpy(out + r * ldo + j0, acc[r], NN_MHA_SB * sizeof(float));
  }
}

/* s[r][j] becomes exp(s[r][j] - m[r]) where allowed and exactly 0 elsewhere (j < 8 nc; masks as
 * in scores_max); inv[r] = 1 / sum_j s[r][j] (in NN_MHA_SB lanes over the chunks in order, then
 * folded), or 0 for a row without an allowed key (zero attention: m = -inf, every exp argument
 * is masked to 0 and its result away). The chunks past a row's causal end add +0 to its lanes,
 * which leaves them as they are (lanes are never -0). */
static NN_MHA_INLINE void softmax_exp_block(const int R, float *restrict s, int64_t lds, int64_t nc,
                                            int64_t c_lo, int64_t c_hi,
                                            const uint32_t *restrict allow, const int64_t *jend,
                                            const float *m, float *inv) {
  float sum[NN_MHA_R][NN_MHA_RL] = {{0}};
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    const uint32_t all = c < c_lo || c >= c_hi ? 0u : UINT32_MAX; /* inside: no masks */
    for (int r = 0; r < R; r++) {
      float *sr = s + r * lds + j0;
      for (int l = 0; l < NN_MHA_SB; l++) {
        const uint32_t ok = (allow[j0 + l] & below(j0, l, jend[r])) | all;
        const float e = select_bits(nn_exp_nonpos(select_bits(sr[l] - m[r], ok)), ok);
        sr[l] = e;
        sum[r][l] += e;
      }
    }
  }
  for (int r = 0; r < R; r++) {
    const float total = lanes_sum(sum[r]);
    inv[r] = total > 0.0f ? 1.0f / total : 0.0f;
  }
}

/* Normalises the exponentials e (rows of stride lde, j < 8 nc) into the weights a = e * inv[r],
 * written to the compact cache rows acomp (stride ldw), and leaves in e what the context product
 * uses: a, or with dropout (keep: the rows' bytes, stride ldk, 0 or 1 for allowed keys)
 * a' = a * drop_scale where kept. The keep bytes are read for every j < 8 nc without looking at
 * the masks: a is exactly +0 where a key is not allowed, which any selection leaves +0 (so the
 * bytes there, the next row's or never written, do not matter). */
static NN_MHA_INLINE void finish_block(const int R, float *restrict e, int64_t lde,
                                       float *restrict acomp, int64_t ldw,
                                       const uint8_t *restrict keep, int64_t ldk, int64_t nc,
                                       const float *inv, float drop_scale) {
  for (int64_t c = 0; c < nc; c++) {
    const int64_t j0 = c * NN_MHA_SB;
    for (int r = 0; r < R; r++) {
      float *er = e + r * lde + j0, *ar = acomp + r * ldw + j0;
      if (!keep)
        for (int l = 0; l < NN_MHA_SB; l++) {
          const float a = er[l] * inv[r];
          ar[l] = a;
          er[l] = a;
        }
      else
        for (int l = 0; l < NN_MHA_SB; l++) {
          const float a = er[l] * inv[r];
          ar[l] = a;
          er[l] = select_bits(a * drop_scale, 0u - (uint32_t)keep[r * ldk + j0 + l]);
        }
    }
  }
}

/* o_r[0..w) = sum_{j<k} p[r][j] * v[j][0..w) for r < R, p (R, ldp), v (k, ldv), o rows of stride
 * ldo: the context (p = A', v = V) and dQ (p = dS, v = K). w <= NN_MHA_DB; the full width is the
 * vectorised case. */
static NN_MHA_INLINE void block_times_rows(const int R, float *o, int64_t ldo,
                                           const float *restrict p, int64_t ldp,
                                           const float *restrict v, int64_t ldv, int64_t k,
                                           int64_t w) {
  if (w == NN_MHA_DB) {
    float c[NN_MHA_R][NN_MHA_RL] = {{0}};
    for (int64_t j = 0; j < k; j++) {
      const float *vj = v + j * ldv;
      NN_MHA_UNROLL
      for (int r = 0; r < R; r++) {
        const float pj = p[r * ldp + j];
        NN_MHA_UNROLL
        for (int l = 0; l < NN_MHA_DB; l++) c[r][l] += pj * vj[l];
      }
    }
    NN_MHA_UNROLL
    for (int r = 0; r < R; r++) memcpy(o + r * ldo, c[r], NN_MHA_DB * sizeof(float));
    return;
  }
  block_times_rows_narrow(R, o, ldo, p, ldp, v, ldv, k, w);
}

/* One row of the score gradient. With a the cached weights (zero where a key is not allowed;
 * read for j < 8 nc) and g the dA' row, the weights after dropout are
 *   ad_j = a_j * drop_scale where kept (keep != NULL; written to adp[0..8 nc); bytes past jend
 *   are read but select nothing, as in finish_block), or a itself (adp is not written),
 * and ds_j = scale * (ad_j g_j - a_j sum_k ad_k g_k) for j < jend, exactly 0 for
 * jend <= j < 8 nc (the dQ and dK products read a row's keys up to its block's last key and up
 * to 3 past its jend, never further). The sum runs in NN_MHA_SB lanes over the whole chunks,
 * folded, then key by key over the last jend % 8 (its other lanes add +0, which leaves a sum
 * that is never -0 as it is). */
static NN_MHA_INLINE void score_grad_row(float *restrict ds, float *restrict adp,
                                         const float *restrict g, const float *restrict a,
                                         const uint8_t *restrict keep, int64_t jend, int64_t nc,
                                         float scale, float drop_scale) {
  const float *ad = a;
  if (keep) {
    for (int64_t j = 0; j < nc * NN_MHA_SB; j += NN_MHA_SB)
      for (int l = 0; l < NN_MHA_SB; l++)
        adp[j + l] = select_bits(a[j + l] * drop_scale, 0u - (uint32_t)keep[j + l]);
    ad = adp;
  }
  const int64_t nfull = jend / NN_MHA_SB * NN_MHA_SB;
  float acc[NN_MHA_SB] = {0};
  for (int64_t j = 0; j < nfull; j += NN_MHA_SB)
    for (int l = 0; l < NN_MHA_SB; l++) acc[l] += ad[j + l] * g[j + l];
  float dsum = lanes_sum(acc);
  if (nfull < jend) {
    float t[NN_MHA_SB];
    for (int l = 0; l < NN_MHA_SB; l++)
      t[l] = select_bits(ad[nfull + l] * g[nfull + l], below(nfull, l, jend));
    for (int l = 0; l < NN_MHA_SB; l++) dsum += t[l];
  }
  int64_t j = 0;
  for (; j < nfull; j += NN_MHA_SB)
    for (int l = 0; l < NN_MHA_SB; l++) ds[j + l] = (ad[j + l] * g[j + l] - a[j + l] * dsum) * scale;
  for (; j < nc * NN_MHA_SB; j += NN_MHA_SB)
    for (int l = 0; l < NN_MHA_SB; l++)
      ds[j + l] = select_bits((ad[j + l] * g[j + l] - a[j + l] * dsum) * scale, below(j, l, jend));
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
 * most 3 keys past its jend, within jend rounded up to 4 (ds and ad have zeros there). */
static NN_MHA_INLINE void keys_grad(float *dk, float *dv, int64_t ldk, int64_t n_keys, int64_t key_base,
                                 const float *restrict ds, int64_t lds, const float *restrict ad,
                                 int64_t lda, const float *restrict x, const float *restrict y,
                                 int64_t ldx, int64_t i_first, int64_t n_q, int causal,
                                 int64_t q_offset, int64_t w) {
  for (int64_t j0 = 0; j0 < n_keys; j0 += NN_MHA_KG) {
    int64_t i0 = causal ? key_base + j0 - q_offset : 0;
    i0 = i0 < i_first ? i_first : (i0 > n_q ? n_q : i0);
    float kk[NN_MHA_KG][NN_MHA_RL] = {{0}}, vv[NN_MHA_KG][NN_MHA_RL] = {{0}};
    if (w == NN_MHA_DB)
      for (int64_t i = i0; i < n_q; i++) {
        const float *xi = x + i * ldx, *yi = y + i * ldx;
        const float *si = ds + i * lds + j0, *ai = ad + i * lda + j0;
        NN_MHA_UNROLL
        for (int r = 0; r < NN_MHA_KG; r++) {
          const float s = si[r], a = ai[r];
          NN_MHA_UNROLL
          for (int l = 0; l < NN_MHA_DB; l++) {
            kk[r][l] += s * xi[l];
            vv[r][l] += a * yi[l];
          }
        }
      }
    else
      for (int64_t i = i0; i < n_q; i++) {
        const float *xi = x + i * ldx, *yi = y + i * ldx;
        const float *si = ds + i * lds + j0, *ai = ad + i * lda + j0;
        for (int r = 0; r < NN_MHA_KG; r++)
          for (int64_t l = 0; l < w; l++) {
            kk[r][l] += si[r] * xi[l];
            vv[r][l] += ai[r] * yi[l];
          }
      }
    const int nk = (int)(n_keys - j0 < NN_MHA_KG ? n_keys - j0 : NN_MHA_KG);
    for (int r = 0; r < nk; r++) {
      memcpy(dk + (j0 + r) * ldk, kk[r], (size_t)w * sizeof(float));
      memcpy(dv + (j0 + r) * ldk, vv[r], (size_t)w * sizeof(float));
    }
  }
}
#endif /* NN_MHA_VEC */

/* ------------------------------------------------------------------------------------------- */
/* One (batch row, head): the kernels above inlined into one function per instruction set. The
 * kept queries [i_first, nq) of a head go in blocks of NN_MHA_R = 8 rows, the remainder in
 * blocks of 4, 2 and 1 (the block functions take their row count R as a constant, so each size
 * is its own unrolled code). Under the causal mask the 8 rows of a block whose first row sees
 * 8 m + 1 keys from kb (the packed layout: kb is the first unpadded key) all need the same
 * chunks, and 8 rows are 8 independent sums for each product's additions to overlap. The
 * forward and the backward cut the rows into the same blocks, so the backward reads a row's
 * compact weights exactly over the chunks the forward wrote (its block's). */

/* The rows of the block from kept query i0: x rows (stride ldx), their causal ends from kb. */
static NN_MHA_INLINE void block_rows(const int R, const float **x_rows, int64_t *jend,
                                     const float *x, int64_t ldx, int64_t i0, const mha_rows *r,
                                     const nn_mha_mask *mask, int64_t Tk) {
  for (int k = 0; k < R; k++) {
    x_rows[k] = x + (i0 + k) * ldx;
    jend[k] = key_end(mask, r->qd + i0 + k, Tk) - r->kb;
  }
}

/* Prefetches rows [i_from, i_to) (below nq) of the compact weights a (stride lda) and of the
 * keep bytes (keep, or NULL), over the keys each row sees (see the file comment). */
static NN_MHA_INLINE void prefetch_rows(const float *a, int64_t lda, const uint8_t *keep,
                                        int64_t i_from, int64_t i_to, const mha_rows *r,
                                        const nn_mha_mask *mask, int64_t Tk) {
  for (int64_t i = i_from; i < i_to && i < r->nq; i++) {
    const int64_t w = round_sb(key_end(mask, r->qd + i, Tk) - r->kb);
    for (int64_t j = 0; j < w; j += 16) NN_MHA_PREFETCH(a + i * lda + j);
    if (keep) NN_MHA_PREFETCH(keep + i * Tk);
  }
}

/* The forward of a block of R rows from kept query i0 (see head_forward). */
static NN_MHA_INLINE void block_forward(const int R, float *ctx, const float *qh, int64_t ldq,
                                        int64_t i0, const float *kt, int64_t tkp, const float *vh,
                                        int64_t ldv, float *panel, const uint32_t *allow,
                                        int64_t c_lo, float *acomp, int64_t ldw,
                                        const uint8_t *keep, int64_t ldk,
                                        const nn_mha_mask *mask, const mha_rows *r, int64_t dh,
                                        float scale, float drop_scale) {
  const float *q[NN_MHA_R];
  int64_t jend[NN_MHA_R];
  float m[NN_MHA_R], inv[NN_MHA_R];
  block_rows(R, q, jend, qh, ldq, i0, r, mask, ldk);
  prefetch_rows(acomp, ldw, NULL, i0 + R, i0 + 2 * R, r, mask, ldk);
  const int64_t jmax = jend[R - 1];              /* the block's last row sees the most keys */
  const int64_t nc = round_sb(jmax) / NN_MHA_SB;
  const int64_t c_hi = jend[0] / NN_MHA_SB;      /* whole chunks its first row sees */
  scores_max(R, panel, tkp, q, kt, tkp, dh, nc, c_lo, c_hi, allow, jend, scale, m);
  softmax_exp_block(R, panel, tkp, nc, c_lo, c_hi, allow, jend, m, inv);
  finish_block(R, panel, tkp, acomp + i0 * ldw, ldw, keep ? keep + i0 * ldk : NULL, ldk, nc, inv,
               drop_scale);
  for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
    const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
    block_times_rows(R, ctx + i0 * ldq + d0, ldq, panel, tkp, vh + d0, ldv, jmax, w);
  }
}

/* Forward of the kept queries [i_first, nq) of one head: scores against kt (the head's keys from
 * kb, transposed), masked softmax, the compact weights (acomp rows, stride ldw) and dropout (keep:
 * the head's bytes from key kb on, row stride ldk, or NULL), context into ctx (row stride ldq,
 * like q). panel: (NN_MHA_R, tkp) work rows; c_lo: the 8-key chunks before it may hold padding
 * (allow: the allowed keys from kb). */
NN_MHA_HOT static void head_forward(float *ctx, const float *qh, int64_t ldq, const float *kt,
                                    int64_t tkp, const float *vh, int64_t ldv, float *panel,
                                    const uint32_t *allow, int64_t c_lo, float *acomp, int64_t ldw,
                                    const uint8_t *keep, int64_t ldk, const nn_mha_mask *mask,
                                    const mha_rows *r, int64_t dh, float scale, float drop_scale) {
  int64_t i0 = r->i_first;
  prefetch_rows(acomp, ldw, NULL, i0, i0 + NN_MHA_R, r, mask, ldk); /* the others: a block ahead */
  for (; i0 + 8 <= r->nq; i0 += 8)
    block_forward(8, ctx, qh, ldq, i0, kt, tkp, vh, ldv, panel, allow, c_lo, acomp, ldw, keep, ldk,
                  mask, r, dh, scale, drop_scale);
  if (i0 + 4 <= r->nq) {
    block_forward(4, ctx, qh, ldq, i0, kt, tkp, vh, ldv, panel, allow, c_lo, acomp, ldw, keep, ldk,
                  mask, r, dh, scale, drop_scale);
    i0 += 4;
  }
  if (i0 + 2 <= r->nq) {
    block_forward(2, ctx, qh, ldq, i0, kt, tkp, vh, ldv, panel, allow, c_lo, acomp, ldw, keep, ldk,
                  mask, r, dh, scale, drop_scale);
    i0 += 2;
  }
  if (i0 < r->nq)
    block_forward(1, ctx, qh, ldq, i0, kt, tkp, vh, ldv, panel, allow, c_lo, acomp, ldw, keep, ldk,
                  mask, r, dh, scale, drop_scale);
}

/* The backward of a block of R rows from kept query i0 (see head_backward): dA', dS and A'
 * rows, dQ. */
static NN_MHA_INLINE void block_backward(const int R, float *dqh, const float *kh, int64_t ldkv,
                                         const float *dch, int64_t ldq, int64_t i0,
                                         const float *vt, int64_t tkp, float *ds_panel,
                                         float *ad_panel, float *g, const float *A, int64_t ldw,
                                         const uint8_t *keep, int64_t ldk,
                                         const nn_mha_mask *mask, const mha_rows *r, int64_t dh,
                                         float scale, float drop_scale) {
  const float *dc[NN_MHA_R];
  int64_t jend[NN_MHA_R];
  block_rows(R, dc, jend, dch, ldq, i0, r, mask, ldk);
  const int64_t jmax = jend[R - 1], nc = round_sb(jmax) / NN_MHA_SB;
  prefetch_rows(A, ldw, keep, i0 + R, i0 + 2 * R, r, mask, ldk); /* the next block's */
  rows_times_chunks(R, g, tkp, dc, vt, tkp, dh, nc); /* dA' = dC V^T */
  for (int k = 0; k < R; k++) {
    const int64_t i = i0 + k;
    score_grad_row(ds_panel + i * tkp, ad_panel + i * tkp, g + k * tkp, A + i * ldw,
                   keep ? keep + i * ldk : NULL, jend[k], nc, scale, drop_scale);
  }
  /* dQ = dS K (written: every (row, head column) once) */
  for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
    const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
    block_times_rows(R, dqh + i0 * ldq + d0, ldq, ds_panel + i0 * tkp, tkp, kh + d0, ldkv, jmax, w);
  }
}

/* Backward of one head (the kept queries [i_first, nq), the keys from kb): dQ rows (stride ldq,
 * like q and dC), dK and dV rows from key kb (stride ldkv, like K and V). ds_panel and ad_panel:
 * (nq, tkp) rows of the head, g: (NN_MHA_R, tkp). */
NN_MHA_HOT static void head_backward(float *dqh, float *dkh, float *dvh, int64_t ldkv,
                                     const float *qh, const float *kh, const float *dch,
                                     int64_t ldq, const float *vt, int64_t tkp, float *ds_panel,
                                     float *ad_panel, float *g, const float *A, int64_t ldw,
                                     const uint8_t *keep, int64_t ldk, const nn_mha_mask *mask,
                                     const mha_rows *r, int64_t dh, float scale, float drop_scale) {
  int64_t i0 = r->i_first;
  prefetch_rows(A, ldw, keep, i0, i0 + NN_MHA_R, r, mask, ldk); /* the others: a block ahead */
  for (; i0 + 8 <= r->nq; i0 += 8)
    block_backward(8, dqh, kh, ldkv, dch, ldq, i0, vt, tkp, ds_panel, ad_panel, g, A, ldw, keep,
                   ldk, mask, r, dh, scale, drop_scale);
  if (i0 + 4 <= r->nq) {
    block_backward(4, dqh, kh, ldkv, dch, ldq, i0, vt, tkp, ds_panel, ad_panel, g, A, ldw, keep,
                   ldk, mask, r, dh, scale, drop_scale);
    i0 += 4;
  }
  if (i0 + 2 <= r->nq) {
    block_backward(2, dqh, kh, ldkv, dch, ldq, i0, vt, tkp, ds_panel, ad_panel, g, A, ldw, keep,
                   ldk, mask, r, dh, scale, drop_scale);
    i0 += 2;
  }
  if (i0 < r->nq)
    block_backward(1, dqh, kh, ldkv, dch, ldq, i0, vt, tkp, ds_panel, ad_panel, g, A, ldw, keep,
                   ldk, mask, r, dh, scale, drop_scale);
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
    int64_t c_lo = 0; /* chunks before c_lo may hold padding */
    for (int64_t j = 0; j < round_kb(r.nk); j++) {
      in.allow[j] = j < r.nk && !(pad && pad[r.kb + j]) ? UINT32_MAX : 0u;
      if (j < r.nk && !in.allow[j]) c_lo = j / NN_MHA_SB + 1;
    }
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
      head_forward(ctx, qh, E, in.kt, tkp, vh, 2 * E, in.panel, in.allow, c_lo, in.acomp + row0 * tkw, tkw,
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
  float *ds_panel = vt + round16(dh * tkp);      /* (Tq, tkp) dS of one head */
  float *ad_panel = ds_panel + round16(Tq * tkp);  /* (Tq, tkp) A' of one head */
  float *g = ad_panel + round16(Tq * tkp);          /* (R, tkp) dA' of one row block */
  int64_t n_q_rows = 0, n_kv_rows = rows ? rows[B] : B * Tk;
  for (int64_t b = 0; b < B; b++) n_q_rows += rows_of(mask, rows, b, 0, Tk, s).nq;

  /* dctx = dout W_o (overwritten: no memset), dW_o and db_o accumulated */
  nn_gemm(0, 0, n_q_rows, E, E, 1.0f, dout, E, w_o, E, 0.0f, dctx, E);
  nn_linear_backward(NULL, dw_o, db_o, dout, c.ctx, w_o, n_q_rows, E, E);

  for (int64_t b = 0, q0 = 0; b < B; b++) {
    const mha_rows r = rows_of(mask, rows, b, q0, in.first[b], s);
    q0 += r.nq;
    /* the next batch row's Q and K|V rows (from the cache) and its dQ and dK|dV rows, a share
     * per head: the first head to touch a row waited for its lines */
    int64_t n_next[2] = {0, 0}; /* floats of its query rows and of its key rows */
    const float *next_q = c.q + q0 * E, *next_kv = c.kv;
    const float *next_dq = dq + q0 * E, *next_dkv = dkv;
    if (b + 1 < B) {
      const mha_rows rn = rows_of(mask, rows, b + 1, q0, in.first[b + 1], s);
      n_next[0] = rn.nq * E, n_next[1] = (Tk - rn.k0) * 2 * E;
      next_kv = c.kv + rn.kv0 * 2 * E, next_dkv = dkv + rn.kv0 * 2 * E;
    }
    for (int64_t hd = 0; hd < H; hd++) {
      for (int64_t o = n_next[0] * hd / H / 16 * 16; o < n_next[0] * (hd + 1) / H; o += 16)
        NN_MHA_PREFETCH(next_q + o), NN_MHA_PREFETCH(next_dq + o);
      for (int64_t o = n_next[1] * hd / H / 16 * 16; o < n_next[1] * (hd + 1) / H; o += 16)
        NN_MHA_PREFETCH(next_kv + o), NN_MHA_PREFETCH(next_dkv + o);
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
          const int seen = i >= r.i_first && j >= r.kb && j < jend; /* computed, keep drawn */
          const float v = seen ? a[j - r.kb] : 0.0f;
          c.att[row * Tk + j] = v;
          if (info.p > 0.0f) c.att_drop[row * Tk + j] = seen && keep[j] ? v * drop_scale : 0.0f;
        }
      }
  }
  return c;
}
