/* nn_gemm.c: see nn_gemm.h. The only caller of cblas_sgemm in the tree.
 *
 * Three paths, chosen by shape and machine (each deterministic: the same inputs give the same bits
 * run to run; everything runs on the calling thread):
 *  - tiny products (m n k <= NN_GEMM_SMALL): a plain loop (the BLAS call overhead dominates);
 *  - AVX-512 machines, n <= NN_GEMM_MAX_N (the policy's products: one side is a layer width,
 *    32..128, the other a row count in the thousands): register-tiled kernels (gemm_tile), below;
 *  - everything else: cblas_sgemm (OpenBLAS).
 *
 * The tiled kernels. C is cut into tiles of MR rows x NV 16-float vectors (MR * NV <= 24
 * accumulators in zmm registers); a tile's sum over p = 0..k-1 runs in one register chain per
 * element, a(i, p) broadcast times the 16 columns of row p of the (k, n) operand, with explicit
 * fused multiply-adds (_mm512_fmadd_ps: written, not contracted by the compiler, so the bits do not
 * depend on optimisation flags), then C = alpha * sum (+ beta * C, + bias). op(B) must be a (k, n)
 * row-major panel: B itself when trans_b = 0 (no copy: the big operand of the weight-gradient
 * products is read in place), a transposed copy of B on the stack when trans_b = 1 (a weight
 * matrix, k n <= NN_GEMM_PANEL floats). op(A) is read in place either way (a(i, p) = A[i lda + p]
 * or A[p lda + i]), so nothing of the big operand is packed, and the row bias of nn_gemm_bias is
 * added in the tile's last step instead of a separate pass over C. The last vector of a tile row
 * is read and written under a lane mask when n is not a multiple of 16.
 * OpenBLAS packs both operands of every call, which at these shapes (one dimension 32) cost as
 * much as a third of the product; these kernels run the same products 1.1-1.6x faster (bench_nn).
 * Results differ from OpenBLAS's in the last bits (another summation order), and from the other
 * paths' on machines without AVX-512; tests compare with tolerances. */
#include "common/nn/nn_gemm.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "common/hsrl_check.h"

/* Below this many multiply-adds the BLAS call overhead dominates; a plain loop is faster. */
#define NN_GEMM_SMALL 4096

#if defined(__GNUC__) && defined(__x86_64__) && !defined(NN_GEMM_NO_AVX512)
#include <immintrin.h>
#define NN_GEMM_AVX512 1
#define NN_GEMM_PANEL 16384 /* floats of the transposed-B panel on the stack (64 KiB) */
#define NN_GEMM_MAX_N 256   /* widest C the tiled kernels take (wider: BLAS) */
#define NN_GEMM_ACC 24      /* accumulator registers per tile (of 32) */
#endif

static void gemm_small(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                       float *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++) {
    for (int64_t j = 0; j < n; j++) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; p++) {
        float av = trans_a ? a[p * lda + i] : a[i * lda + p];
        float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      /* beta == 0 must not read C (it may hold garbage or NaN), as BLAS does. */
      c[i * ldc + j] = beta == 0.0f ? alpha * s : alpha * s + beta * c[i * ldc + j];
    }
  }
}

#ifdef NN_GEMM_AVX512
/* The arguments of one tiled product; b is the (k, n) panel, row stride ldb. */
typedef struct gemm_tiled {
  int trans_a;
  int64_t k;
  const float *a;
  int64_t lda;
  const float *b;
  int64_t ldb;
  float alpha, beta;
  const float *bias; /* (n) added to every row, or NULL */
} gemm_tiled;

#define NN_GEMM_UNROLL _Pragma("GCC unroll 24")

/* C rows [0, MR) x columns [0, 16 NV) of the tile at (a, b, c) (already offset), the last vector
 * under mask `last`. MR and NV are constants after inlining. */
static inline __attribute__((always_inline, target("avx512f"))) void
gemm_tile(const int MR, const int NV, const gemm_tiled *g, const float *a, const float *b,
          const float *bias, float *c, int64_t ldc, __mmask16 last) {
  __m512 acc[NN_GEMM_ACC];
  NN_GEMM_UNROLL
  for (int t = 0; t < MR * NV; t++) acc[t] = _mm512_setzero_ps();
  const int64_t k = g->k, lda = g->lda, ldb = g->ldb;
  /* a(r, p) = ar[p * sp + r * sr] */
  const int64_t sp = g->trans_a ? lda : 1, sr = g->trans_a ? 1 : lda;
  for (int64_t p = 0; p < k; p++) {
    __m512 bv[4];
    const float *bp = b + p * ldb;
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
    const float *ap = a + p * sp;
    NN_GEMM_UNROLL
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(ap[r * sr]);
      NN_GEMM_UNROLL
      for (int v = 0; v < NV; v++) acc[r * NV + v] = _mm512_fmadd_ps(ar, bv[v], acc[r * NV + v]);
    }
  }
  const __m512 alpha = _mm512_set1_ps(g->alpha), beta = _mm512_set1_ps(g->beta);
  NN_GEMM_UNROLL
  for (int r = 0; r < MR; r++) {
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++) {
      const __mmask16 mk = v == NV - 1 ? last : (__mmask16)0xffff;
      float *cp = c + r * ldc + 16 * v;
      __m512 x = acc[r * NV + v];
      if (g->alpha != 1.0f) x = _mm512_mul_ps(alpha, x);
      /* beta == 0 must not read C (it may hold garbage or NaN), as BLAS does. */
      if (g->beta != 0.0f) {
        const __m512 cv = _mm512_maskz_loadu_ps(mk, cp);
        x = _mm512_add_ps(x, g->beta == 1.0f ? cv : _mm512_mul_ps(beta, cv));
      }
      if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk, bias + 16 * v));
      _mm512_mask_storeu_ps(cp, mk, x);
    }
  }
}

/* One instance per (MR, NV): rows per tile 24 / NV (at most 12), NV 1..4. */
typedef void (*gemm_tile_fn)(const gemm_tiled *, const float *, const float *, const float *,
                             float *, int64_t, __mmask16);
#define NN_GEMM_DEF(MR, NV)                                                                        \
  __attribute__((target("avx512f"))) static void gemm_tile_##MR##_##NV(                           \
      const gemm_tiled *g, const float *a, const float *b, const float *bias, float *c,           \
      int64_t ldc, __mmask16 last) {                                                               \
    gemm_tile(MR, NV, g, a, b, bias, c, ldc, last);                                                \
  }
#define NN_GEMM_DEF_NV(NV)                                                                         \
  NN_GEMM_DEF(1, NV) NN_GEMM_DEF(2, NV) NN_GEMM_DEF(3, NV) NN_GEMM_DEF(4, NV) NN_GEMM_DEF(5, NV)   \
  NN_GEMM_DEF(6, NV)
NN_GEMM_DEF_NV(1)
NN_GEMM_DEF_NV(2)
NN_GEMM_DEF_NV(3)
NN_GEMM_DEF_NV(4)
NN_GEMM_DEF(7, 1)
NN_GEMM_DEF(8, 1)
NN_GEMM_DEF(9, 1)
NN_GEMM_DEF(10, 1)
NN_GEMM_DEF(11, 1)
NN_GEMM_DEF(12, 1)
NN_GEMM_DEF(7, 2)
NN_GEMM_DEF(8, 2)
NN_GEMM_DEF(9, 2)
NN_GEMM_DEF(10, 2)
NN_GEMM_DEF(11, 2)
NN_GEMM_DEF(12, 2)
NN_GEMM_DEF(7, 3)
NN_GEMM_DEF(8, 3)

#define NN_GEMM_MR_MAX 12
static const gemm_tile_fn gemm_tiles[4][NN_GEMM_MR_MAX] = {
    {gemm_tile_1_1, gemm_tile_2_1, gemm_tile_3_1, gemm_tile_4_1, gemm_tile_5_1, gemm_tile_6_1,
     gemm_tile_7_1, gemm_tile_8_1, gemm_tile_9_1, gemm_tile_10_1, gemm_tile_11_1, gemm_tile_12_1},
    {gemm_tile_1_2, gemm_tile_2_2, gemm_tile_3_2, gemm_tile_4_2, gemm_tile_5_2, gemm_tile_6_2,
     gemm_tile_7_2, gemm_tile_8_2, gemm_tile_9_2, gemm_tile_10_2, gemm_tile_11_2, gemm_tile_12_2},
    {gemm_tile_1_3, gemm_tile_2_3, gemm_tile_3_3, gemm_tile_4_3, gemm_tile_5_3, gemm_tile_6_3,
     gemm_tile_7_3, gemm_tile_8_3, NULL, NULL, NULL, NULL},
    {gemm_tile_1_4, gemm_tile_2_4, gemm_tile_3_4, gemm_tile_4_4, gemm_tile_5_4, gemm_tile_6_4, NULL,
     NULL, NULL, NULL, NULL, NULL},
};
static const int gemm_mr[4] = {12, 12, 8, 6}; /* rows per tile for NV = 1..4 */

static int gemm_has_avx512(void) {
  static int known = -1; /* a benign race: every thread computes the same value */
  if (known < 0) known = __builtin_cpu_supports("avx512f") ? 1 : 0;
  return known;
}

/* Whether the tiled kernels take this product. */
static int gemm_tiled_ok(int trans_b, int64_t n, int64_t k) {
  if (!gemm_has_avx512() || n > NN_GEMM_MAX_N) return 0;
  return !trans_b || n * k <= NN_GEMM_PANEL;
}

__attribute__((target("avx512f"))) static void gemm_run_tiled(int trans_a, int trans_b, int64_t m,
                                                              int64_t n, int64_t k, float alpha,
                                                              const float *a, int64_t lda,
                                                              const float *b, int64_t ldb,
                                                              float beta, const float *bias,
                                                              float *c, int64_t ldc) {
  float panel[NN_GEMM_PANEL] __attribute__((aligned(64)));
  gemm_tiled g = {trans_a, k, a, lda, b, ldb, alpha, beta, bias};
  if (trans_b) { /* panel (k, n) = B^T, B (n, k) */
    for (int64_t j = 0; j < n; j++)
      for (int64_t p = 0; p < k; p++) panel[p * n + j] = b[j * ldb + p];
    g.b = panel;
    g.ldb = n;
  }
  /* column blocks of at most 4 vectors, as even as possible */
  const int64_t n_vec = (n + 15) / 16, n_blocks = (n_vec + 3) / 4;
  const int64_t nv_block = (n_vec + n_blocks - 1) / n_blocks;
  const int64_t a_row = trans_a ? 1 : lda; /* step of A between C rows */
  const int64_t mr_step = gemm_mr[nv_block - 1]; /* the widest block's rows, for every block */
  for (int64_t i0 = 0; i0 < m; i0 += mr_step) {
    const int mr = (int)(m - i0 < mr_step ? m - i0 : mr_step);
    for (int64_t v0 = 0; v0 < n_vec; v0 += nv_block) {
      const int nv = (int)(n_vec - v0 < nv_block ? n_vec - v0 : nv_block);
      const int64_t j0 = 16 * v0, cols = n - j0 < 16 * nv ? n - j0 : 16 * nv;
      const int rem = (int)(cols - 16 * (nv - 1)); /* 1..16 columns in the last vector */
      const __mmask16 last = (__mmask16)(rem == 16 ? 0xffff : (1u << rem) - 1u);
      gemm_tiles[nv - 1][mr - 1](&g, a + i0 * a_row, g.b + j0, bias ? bias + j0 : NULL,
                                 c + i0 * ldc + j0, ldc, last);
    }
  }
}
#endif

static void check_args(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                       int64_t ldb, int64_t ldc) {
  HSRL_CHECK(m >= 0 && n >= 0 && k >= 0);
  HSRL_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX);
  HSRL_CHECK(lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
  HSRL_CHECKF(lda >= (trans_a ? m : k) && lda >= 1, "lda %lld", (long long)lda);
  HSRL_CHECKF(ldb >= (trans_b ? k : n) && ldb >= 1, "ldb %lld", (long long)ldb);
  HSRL_CHECKF(ldc >= n && ldc >= 1, "ldc %lld", (long long)ldc);
}

void nn_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc) {
  check_args(trans_a, trans_b, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  /* Each factor <= NN_GEMM_SMALL first, so the product cannot overflow. */
  if (m <= NN_GEMM_SMALL && n <= NN_GEMM_SMALL && k <= NN_GEMM_SMALL && m * n * k <= NN_GEMM_SMALL) {
    gemm_small(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#ifdef NN_GEMM_AVX512
  if (gemm_tiled_ok(trans_b, n, k)) {
    gemm_run_tiled(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, NULL, c, ldc);
    return;
  }
#endif
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* c[i][0..n) = bias for every row i: the first row, then copies of the rows filled so far,
 * doubling (one memcpy call per doubling, not per row). */
static void fill_rows(float *restrict c, int64_t ldc, const float *restrict bias, int64_t m,
                      int64_t n) {
  if (m <= 0) return;
  if (ldc != n) {
    for (int64_t i = 0; i < m; i++) memcpy(c + i * ldc, bias, (size_t)n * sizeof(float));
    return;
  }
  memcpy(c, bias, (size_t)n * sizeof(float));
  for (int64_t done = 1; done < m;) {
    const int64_t rows = done < m - done ? done : m - done;
    memcpy(c + done * n, c, (size_t)(rows * n) * sizeof(float));
    done += rows;
  }
}

void nn_gemm_bias(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                  int64_t lda, const float *b, int64_t ldb, const float *bias, float *c, int64_t ldc) {
  check_args(trans_a, trans_b, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
#ifdef NN_GEMM_AVX512
  if (k > 0 && gemm_tiled_ok(trans_b, n, k)) {
    gemm_run_tiled(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, bias, c, ldc);
    return;
  }
#endif
  fill_rows(c, ldc, bias, m, n);
  nn_gemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
}
