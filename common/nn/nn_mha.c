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
 * blocks of NN_MHA_R = 4 query rows, fused:
 *   scores S = scale * Q K^T for the 4 rows against a transposed copy of K (kt, (dh, Tkp) with
 *     Tkp = Tk rounded up to NN_MHA_KB, zero-padded), over the keys up to the block's last causal
 *     key only (the causal mask halves the work);
 *   masked softmax of each row in place (exp by a vectorisable polynomial, nn_exp_nonpos; padding
 *     and causal masks applied as bit masks), then dropout of the weights, writing the cached
 *     rows A and A' in the same pass;
 *   context C = A' V for the 4 rows, over the same keys (C columns of one head, d innermost).
 * The dropout bytes of a whole head come from one nn_dropout_mask call (its rows are consecutive
 * in the counter space). The backward does the same per block of rows (dA' = dC V^T against a
 * transposed V; dS into a panel of the head; dQ = dS K), then dK = dS^T Q and dV = A'^T dC per
 * block of 4 keys over the query rows that can see them (A' read from the cache). Every output
 * element is written exactly once, so the backward zeroes none of its buffers.
 *
 * Loops are written for GCC's -O2 vectoriser (its "very cheap" cost model vectorises only loops
 * whose trip count the vector code covers exactly): fixed-size inner loops over NN_MHA_KB or
 * NN_MHA_SB keys or NN_MHA_DB head columns, accumulators as local arrays (which stay in
 * registers when a loop is one vector, or is unrolled first), selections as bit masks (a float
 * "c ? x : y" stays a branch under -ftrapping-math). On x86-64 with GCC the hot kernels are
 * compiled three times (x86-64-v4 i.e. AVX-512, AVX2, baseline) by target_clones and picked at
 * load time; the head transposes use AVX2 intrinsics when available. A head width that is not a
 * multiple of NN_MHA_DB takes a plain-loop path for its last columns (tests/test_nn_kernels.c
 * covers both against a double-precision reference).
 *
 * Row independence: every output row is computed by the same operations in the same order
 * whatever the other rows of its block are (a block's extra keys contribute exact zeros), so
 * given the same projections, computing only the last queries reproduces the full computation
 * bit for bit.
 * Inputs must be finite: a NaN in a padded key's value would reach the output through 0 * NaN,
 * as in torch. */
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

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define NN_MHA_X86 1
#define NN_MHA_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_MHA_HOT
#endif
#ifdef __GNUC__
#define NN_MHA_INLINE inline __attribute__((always_inline))
#else
#define NN_MHA_INLINE inline
#endif
/* Fully unrolls a fixed lane loop before vectorisation, so that accumulator arrays of two or
 * more vectors stay in registers (GCC -O2 otherwise keeps a 2-iteration vector loop with the
 * accumulators in memory). */
#define NN_MHA_UNROLL _Pragma("GCC unroll 16")

static int64_t floats_for_bytes(int64_t n_bytes) { return (n_bytes + 3) / 4; }

/* Rounds float counts up to 16 (64 bytes) so every view stays aligned like the buffer. */
static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

static int64_t round_kb(int64_t n) { return (n + NN_MHA_KB - 1) / NN_MHA_KB * NN_MHA_KB; }

static void check_shape(const nn_mha_shape *s) {
  HSRL_CHECK(s->B >= 0 && s->Tq >= 0 && s->Tk >= 0);
  HSRL_CHECKF(s->n_heads > 0 && s->E > 0 && s->E % s->n_heads == 0, "E %lld heads %lld",
              (long long)s->E, (long long)s->n_heads);
  HSRL_CHECKF(s->Tk < INT32_MAX - NN_MHA_KB, "Tk %lld", (long long)s->Tk);
}

/* Forward work area after the documented views (whose byte row is Tk long): the dropout bytes of
 * one head (Tq Tk, continuing the byte row), kt (dh, Tkp), the row panel (R, Tkp) and the
 * allowed-key bit masks of one batch row (Tkp words). */
static int64_t forward_work_floats(const nn_mha_shape *s) {
  int64_t tkp = round_kb(s->Tk), dh = s->E / s->n_heads;
  return round16(floats_for_bytes(s->Tq * s->Tk)) + round16(dh * tkp) +
         round16(NN_MHA_R * tkp) + round16(tkp);
}

int64_t nn_mha_cache_floats(const nn_mha_shape *s) {
  check_shape(s);
  int64_t n_att = s->B * s->n_heads * s->Tq * s->Tk;
  return round16(s->B * s->Tq * s->E) + round16(s->B * s->Tk * 2 * s->E) + 2 * round16(n_att) +
         round16(s->B * s->Tq * s->E) + round16(floats_for_bytes(s->Tk)) + forward_work_floats(s);
}

int64_t nn_mha_scratch_floats(const nn_mha_shape *s) {
  check_shape(s);
  int64_t tkp = round_kb(s->Tk), dh = s->E / s->n_heads;
  /* dctx, dQ, dK|dV; vt (dh, Tkp), the dS panel (Tq + R, Tkp), the dA' block (R, Tkp) */
  return 2 * round16(s->B * s->Tq * s->E) + round16(s->B * s->Tk * 2 * s->E) + round16(dh * tkp) +
         round16((s->Tq + NN_MHA_R) * tkp) + round16(NN_MHA_R * tkp);
}

nn_mha_cache nn_mha_cache_view(float *buf, const nn_mha_shape *s) {
  check_shape(s);
  int64_t n_att = s->B * s->n_heads * s->Tq * s->Tk;
  nn_mha_cache c;
  c.q = buf;
  c.kv = c.q + round16(s->B * s->Tq * s->E);
  c.att = c.kv + round16(s->B * s->Tk * 2 * s->E);
  c.att_drop = c.att + round16(n_att);
  c.ctx = c.att_drop + round16(n_att);
  c.bytes = (uint8_t *)(c.ctx + round16(s->B * s->Tq * s->E));
  return c;
}

/* One past the last key query i may see under the causal mask. */
static int64_t key_end(const nn_mha_mask *m, int64_t i, int64_t Tk) {
  if (!m || !m->causal) return Tk;
  int64_t e = m->q_offset + i + 1;
  return e < 0 ? 0 : (e > Tk ? Tk : e);
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

/* out (dh, ldo) = x^T for x (n, dh) with row stride ldx; columns [n, ldo) are zeroed (ldo is n
 * rounded up to NN_MHA_KB: one fixed block of zeros per row, written first, covers them). */
static void transpose_head(float *restrict out, int64_t ldo, const float *restrict x, int64_t ldx,
                           int64_t n, int64_t dh) {
  if (ldo >= NN_MHA_KB)
    for (int64_t d = 0; d < dh; d++) {
      float *z = out + d * ldo + ldo - NN_MHA_KB;
      for (int l = 0; l < NN_MHA_KB; l++) z[l] = 0.0f;
    }
  int64_t j = 0;
#ifdef NN_MHA_X86
  if (dh % 8 == 0 && __builtin_cpu_supports("avx2")) j = transpose_tiles_avx2(out, ldo, x, ldx, n, dh);
#endif
  for (; j < n; j++)
    for (int64_t d = 0; d < dh; d++) out[d * ldo + j] = x[j * ldx + d];
}

/* out[r][j] = alpha * sum_{d<k} a_r[d] * bt[d][j] for the 4 rows a_0..a_3 and j < n (a multiple
 * of NN_MHA_KB); bt is (k, ldb), out is (4, ldo). Scores (a = Q rows, bt = K^T) and dA' (a = dC
 * rows, bt = V^T). */
NN_MHA_HOT static void rows_times_panel(float *restrict out, int64_t ldo, const float *restrict a0,
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
NN_MHA_HOT static void panel_times_rows(float *o0, float *o1, float *o2, float *o3, int n_rows,
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

/* dK = dS^T X and dV = A'^T Y for one head, per block of 4 keys: for keys j0..j0+3,
 *   dk_r[0..w) = sum_{i in [i_start(j0), n_q)} ds[i][j0+r] * x[i][0..w),
 *   dv_r[0..w) = sum_i ad[i][j0+r] * y[i][0..w),
 * stored (not accumulated) to dk, dv rows j (stride ldk) for j < n_keys. x = Q, y = dC (row
 * stride ldx); ds (stride lds) and ad (stride lda) are zero wherever a key is not allowed. Under
 * the causal mask query i sees key j only when i >= j - q_offset, so each block starts there
 * (i_start = max(0, j0 - q_offset), or 0), and a row i read for keys j0..j0+3 has jend >= j0 + 1:
 * it is read at most 3 keys past its jend (ds has zeros there). Keys j0 + r >= n_keys of the last
 * block read past the row end (the dense A' rows: the next row, or up to 3 floats past the array,
 * inside the cache buffer); their sums are not stored. */
NN_MHA_HOT static void keys_grad(float *dk, float *dv, int64_t ldk, int64_t n_keys,
                                 const float *restrict ds, int64_t lds, const float *restrict ad,
                                 int64_t lda, const float *restrict x, const float *restrict y,
                                 int64_t ldx, int64_t n_q, int causal, int64_t q_offset, int64_t w) {
  for (int64_t j0 = 0; j0 < n_keys; j0 += 4) {
    int64_t i0 = causal ? j0 - q_offset : 0;
    i0 = i0 < 0 ? 0 : (i0 > n_q ? n_q : i0);
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
NN_MHA_HOT static void softmax_exp_rows(float *restrict s, int64_t lds, int n_rows,
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

/* Normalises the exponentials e[0..n) (zero beyond jend) into the weights a = e * inv, written to
 * the cache row att[0..tk) (zero beyond n), and leaves in e what the context product uses: a, or
 * with dropout (keep: the row's bytes, meaningful for j < jend) a' = a * drop_scale where kept,
 * also written to att_drop[0..tk).
 * Whole cache rows in one branch-free pass of 16-key blocks (j >= n, j >= jend select 0), so that
 * short rows take no scalar tails, branches on the mask bytes or memset calls. Values of e beyond
 * n and bytes of keep beyond jend (stale, or the next row's) are read but never selected. */
NN_MHA_HOT static void finish_row(float *restrict e, float *restrict att, float *restrict att_drop,
                                  const uint8_t *restrict keep, int64_t jend, int64_t n,
                                  int64_t tk, float inv, float drop_scale) {
  const int32_t w = (int32_t)(n < tk ? n : tk), je = (int32_t)jend;
  const int64_t full = tk / NN_MHA_KB * NN_MHA_KB;
  if (!att_drop) {
    int64_t j = 0;
    for (; j < full; j += NN_MHA_KB)
      for (int l = 0; l < NN_MHA_KB; l++) {
        float a = select_bits(e[j + l] * inv, 0u - (uint32_t)((int32_t)j + l < w));
        att[j + l] = a;
        e[j + l] = a;
      }
    for (; j < tk; j++) {
      float a = j < w ? e[j] * inv : 0.0f;
      att[j] = a;
      e[j] = a;
    }
    return;
  }
  int64_t j = 0;
  for (; j < full; j += NN_MHA_KB)
    for (int l = 0; l < NN_MHA_KB; l++) {
      float a = select_bits(e[j + l] * inv, 0u - (uint32_t)((int32_t)j + l < w));
      uint32_t k = 0u - (uint32_t)((keep[j + l] != 0) & ((int32_t)j + l < je));
      float ad = select_bits(a * drop_scale, k);
      att[j + l] = a;
      att_drop[j + l] = ad;
      e[j + l] = ad;
    }
  for (; j < tk; j++) {
    float a = j < w ? e[j] * inv : 0.0f;
    float ad = j < jend && keep[j] ? a * drop_scale : 0.0f;
    att[j] = a;
    att_drop[j] = ad;
    e[j] = ad;
  }
}

/* One row of the score gradient. With a and ad the cached weights before and after dropout (dense
 * rows, zero where a key is not allowed; only j < jend is read) and g the dA' row:
 *   ds_j = scale * (ad_j g_j - a_j sum_k ad_k g_k)  for j < jend, and 0 for jend <= j < jend + 4
 * (within width): the dQ and dK products read a block's keys up to 3 past a row's jend (see
 * keys_grad), never further. */
NN_MHA_HOT static void score_grad_row(float *restrict ds, const float *restrict g,
                                      const float *restrict a, const float *restrict ad,
                                      int64_t jend, int64_t width, float scale) {
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

/* ------------------------------------------------------------------------------------------- */

void nn_mha_forward(float *out, float *cache, const float *q_in, const float *kv_in,
                    const float *w_in, const float *b_in, const float *w_o, const float *b_o,
                    const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                    const nn_mha_shape *s) {
  check_shape(s);
  HSRL_CHECKF(p >= 0.0f && p < 1.0f, "dropout p %g", (double)p);
  const int64_t B = s->B, Tq = s->Tq, Tk = s->Tk, E = s->E, H = s->n_heads, dh = E / H;
  const int64_t tkp = round_kb(Tk);
  const int64_t q_offset = mask ? mask->q_offset : 0;
  const uint8_t *key_padding = mask ? mask->key_padding : NULL;
  const float scale = (float)(1.0 / sqrt((double)dh));
  const float drop_scale = 1.0f / (1.0f - p); /* as nn_dropout_apply */
  nn_mha_cache c = nn_mha_cache_view(cache, s);
  /* c.bytes (Tk) is followed by Tq Tk more bytes: room for the dropout bytes of one head */
  float *kt = (float *)c.bytes + round16(floats_for_bytes(Tk)) +
              round16(floats_for_bytes(Tq * Tk)); /* (dh, tkp) */
  float *panel = kt + round16(dh * tkp);                        /* (R, tkp) */
  uint32_t *allow = (uint32_t *)(void *)(panel + round16(NN_MHA_R * tkp)); /* (tkp) */

  nn_linear_forward(c.q, q_in, w_in, b_in, B * Tq, E, E);
  nn_linear_forward(c.kv, kv_in, w_in + E * E, b_in ? b_in + E : NULL, B * Tk, E, 2 * E);

  for (int64_t b = 0; b < B; b++) {
    const uint8_t *pad = key_padding ? key_padding + b * Tk : NULL;
    for (int64_t j = 0; j < tkp; j++) allow[j] = j < Tk && !(pad && pad[j]) ? UINT32_MAX : 0u;
    for (int64_t hd = 0; hd < H; hd++) {
      const float *kh = c.kv + b * Tk * 2 * E + hd * dh; /* (Tk, dh), row stride 2E */
      const float *vh = kh + E;
      const float *qh = c.q + b * Tq * E + hd * dh; /* (Tq, dh), row stride E */
      float *att = c.att + (b * H + hd) * Tq * Tk;  /* (Tq, Tk) */
      float *att_drop = c.att_drop + (b * H + hd) * Tq * Tk;
      transpose_head(kt, tkp, kh, 2 * E, Tk, dh);
      if (p > 0.0f && Tq > 0) { /* the head's rows are consecutive in the counter space: one draw */
        uint64_t ctr = offset + (uint64_t)(((b * H + hd) * (q_offset + Tq) + q_offset) * Tk);
        nn_dropout_mask(c.bytes, (Tq - 1) * Tk + key_end(mask, Tq - 1, Tk), p, key, ctr);
      }
      for (int64_t i0 = 0; i0 < Tq; i0 += NN_MHA_R) {
        const int n_rows = (int)(Tq - i0 < NN_MHA_R ? Tq - i0 : NN_MHA_R);
        const int64_t jmax = key_end(mask, i0 + n_rows - 1, Tk), n = round_kb(jmax);
        const float *q[NN_MHA_R];
        for (int r = 0; r < NN_MHA_R; r++) q[r] = qh + (i0 + (r < n_rows ? r : n_rows - 1)) * E;
        rows_times_panel(panel, tkp, q[0], q[1], q[2], q[3], kt, tkp, dh, n, scale);

        int64_t jend[NN_MHA_R];
        float inv[NN_MHA_R];
        for (int r = 0; r < n_rows; r++) jend[r] = key_end(mask, i0 + r, Tk);
        softmax_exp_rows(panel, tkp, n_rows, allow, jend, n, inv);
        for (int r = 0; r < n_rows; r++) {
          const int64_t i = i0 + r;
          finish_row(panel + r * tkp, att + i * Tk, p > 0.0f ? att_drop + i * Tk : NULL,
                     c.bytes + i * Tk, jend[r], n, Tk, inv[r], drop_scale);
        }
        float *o = c.ctx + (b * Tq + i0) * E + hd * dh;
        for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
          const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
          panel_times_rows(o + d0, o + E + d0, o + 2 * E + d0, o + 3 * E + d0, n_rows, panel, tkp,
                           vh + d0, 2 * E, jmax, w);
        }
      }
    }
  }
  nn_linear_forward(out, c.ctx, w_o, b_o, B * Tq, E, E);
}

void nn_mha_backward(float *dq_in, float *dkv_in, float *dw_in, float *db_in, float *dw_o,
                     float *db_o, float *scratch, const float *dout, const float *cache,
                     const float *q_in, const float *kv_in, const float *w_in, const float *w_o,
                     const nn_mha_mask *mask, float p, const nn_mha_shape *s) {
  check_shape(s);
  const int64_t B = s->B, Tq = s->Tq, Tk = s->Tk, E = s->E, H = s->n_heads, dh = E / H;
  const int64_t tkp = round_kb(Tk);
  const int64_t q_offset = mask ? mask->q_offset : 0;
  const int causal = mask && mask->causal;
  const float scale = (float)(1.0 / sqrt((double)dh));
  nn_mha_cache c = nn_mha_cache_view((float *)cache, s); /* read only below */
  float *dctx = scratch;                        /* (B, Tq, E) */
  float *dq = dctx + round16(B * Tq * E);        /* (B, Tq, E) */
  float *dkv = dq + round16(B * Tq * E);         /* (B, Tk, 2E) */
  float *vt = dkv + round16(B * Tk * 2 * E);     /* (dh, tkp) */
  float *ds_panel = vt + round16(dh * tkp);      /* (Tq + R, tkp) dS of one head */
  float *g = ds_panel + round16((Tq + NN_MHA_R) * tkp); /* (R, tkp) dA' of one row block */

  /* dctx = dout W_o (overwritten: no memset), dW_o and db_o accumulated */
  nn_gemm(0, 0, B * Tq, E, E, 1.0f, dout, E, w_o, E, 0.0f, dctx, E);
  nn_linear_backward(NULL, dw_o, db_o, dout, c.ctx, w_o, B * Tq, E, E);
  memset(ds_panel + Tq * tkp, 0, (size_t)(NN_MHA_R * tkp) * sizeof(float));

  for (int64_t b = 0; b < B; b++) {
    for (int64_t hd = 0; hd < H; hd++) {
      const float *qh = c.q + b * Tq * E + hd * dh;       /* (Tq, dh), row stride E */
      const float *kh = c.kv + b * Tk * 2 * E + hd * dh; /* (Tk, dh), row stride 2E */
      const float *vh = kh + E;
      const float *dch = dctx + b * Tq * E + hd * dh;     /* (Tq, dh), row stride E */
      float *dqh = dq + b * Tq * E + hd * dh;
      float *dkh = dkv + b * Tk * 2 * E + hd * dh;
      float *dvh = dkh + E;
      const float *A = c.att + (b * H + hd) * Tq * Tk;
      const float *Ad = p > 0.0f ? c.att_drop + (b * H + hd) * Tq * Tk : A;
      transpose_head(vt, tkp, vh, 2 * E, Tk, dh);
      for (int64_t i0 = 0; i0 < Tq; i0 += NN_MHA_R) {
        const int n_rows = (int)(Tq - i0 < NN_MHA_R ? Tq - i0 : NN_MHA_R);
        const int64_t jmax = key_end(mask, i0 + n_rows - 1, Tk), n = round_kb(jmax);
        const float *dc[NN_MHA_R];
        for (int r = 0; r < NN_MHA_R; r++) dc[r] = dch + (i0 + (r < n_rows ? r : n_rows - 1)) * E;
        /* dA' = dC V^T for the block's rows */
        rows_times_panel(g, tkp, dc[0], dc[1], dc[2], dc[3], vt, tkp, dh, n, 1.0f);
        for (int r = 0; r < n_rows; r++) {
          const int64_t i = i0 + r, jend = key_end(mask, i, Tk);
          score_grad_row(ds_panel + i * tkp, g + r * tkp, A + i * Tk, Ad + i * Tk, jend, tkp, scale);
        }
        /* dQ = dS K (written: every (row, head column) once); the dS panel has NN_MHA_R zero rows
         * after row Tq - 1 for the last block */
        float *o = dqh + i0 * E;
        for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
          const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
          panel_times_rows(o + d0, o + E + d0, o + 2 * E + d0, o + 3 * E + d0, n_rows,
                           ds_panel + i0 * tkp, tkp, kh + d0, 2 * E, jmax, w);
        }
      }
      /* dK = dS^T Q, dV = A'^T dC */
      for (int64_t d0 = 0; d0 < dh; d0 += NN_MHA_DB) {
        const int64_t w = dh - d0 < NN_MHA_DB ? dh - d0 : NN_MHA_DB;
        keys_grad(dkh + d0, dvh + d0, 2 * E, Tk, ds_panel, tkp, Ad, Tk, qh + d0, dch + d0, E, Tq,
                  causal, q_offset, w);
      }
    }
  }
  if (dq_in || dw_in || db_in)
    nn_linear_backward(dq_in, dw_in, db_in, dq, q_in, w_in, B * Tq, E, E);
  if (dkv_in || dw_in || db_in)
    nn_linear_backward(dkv_in, dw_in ? dw_in + E * E : NULL, db_in ? db_in + E : NULL, dkv, kv_in,
                       w_in + E * E, B * Tk, E, 2 * E);
}
