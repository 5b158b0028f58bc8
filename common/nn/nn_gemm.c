/* nn_gemm.c: see nn_gemm.h. The only caller of cblas_sgemm in the tree.
 *
 * Three paths, chosen by shape and machine (each deterministic: the same inputs give the same bits
 * run to run; everything runs on the calling thread):
 *  - tiny products (m n k <= NN_GEMM_SMALL): a plain loop (the BLAS call overhead dominates);
 *  - n <= NN_GEMM_MAX_N (the policy's products: one side is a layer width, 32..128, the other a
 *    row count in the thousands) on x86-64 machines with AVX-512 or AVX2 + FMA: register-tiled
 *    kernels (nn_gemm_avx512.c, nn_gemm_avx2.c: the same arithmetic, so the same bits);
 *  - everything else: cblas_sgemm (OpenBLAS).
 *
 * The tiled kernels. C is cut into tiles of MR rows x NV vectors (as many accumulators as the
 * machine has registers for), each summed in one fused multiply-add chain per element
 * (nn_gemm_tiled.h). op(B) must be a (k, n) row-major panel: B itself when trans_b = 0 (no copy:
 * the big operand of the weight-gradient products is read in place), a transposed copy of B on the
 * stack when trans_b = 1 (a weight matrix, k n <= NN_GEMM_PANEL floats). op(A) is read in place
 * either way (a(i, p) = A[i lda + p] or A[p lda + i]), so nothing of the big operand is packed,
 * and the row bias of nn_gemm_bias is added in the tile's last step instead of a separate pass
 * over C. A long sum (k > NN_GEMM_KC, the weight gradients' sums over thousands of rows) runs in
 * stretches of NN_GEMM_KC over every tile, so that a stretch of both operands is read from cache by
 * all the tiles that need it (gemm_run_tiled). OpenBLAS packs both operands of every call, which at
 * these shapes (one dimension 32) cost as much as a third of the product; the AVX-512 kernels run
 * the same products 1.1-1.6x faster than OpenBLAS (bench_nn on an AVX-512 machine). On an AMD EPYC
 * with AVX2: 75-90 GFLOP/s at the policy's products (m 3200, n 16..256, k 32 or 128, and the
 * weight gradients, k 3200) against OpenBLAS's 39-77, 0.8x OpenBLAS at a 4096 x 256 x 256
 * product (none of the configs has one), and HSRL's whole update 1.06x faster than through
 * OpenBLAS (bench_train, HSRL_GEMM_PATH=blas against avx2: medians 9.08 against 9.61 ms over 5
 * interleaved runs each; 9.28 ms before the stretches and the column-block order).
 * Results differ from OpenBLAS's in the last bits (another summation order); tests compare with
 * tolerances. */
#include "common/nn/nn_gemm.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_check.h"
#include "common/nn/nn_gemm_tiled.h"

/* Below this many multiply-adds the BLAS call overhead dominates; a plain loop is faster. */
#define NN_GEMM_SMALL 4096

#define NN_GEMM_PANEL 16384 /* floats of the transposed-B panel on the stack (64 KiB) */
#define NN_GEMM_MAX_N 256   /* widest C the tiled kernels take (wider: BLAS) */
/* The stretch of a long sum (gemm_run_tiled). On the AVX2 machine 128 beat 64, 256 and 512 at the
 * weight gradients (k 3200: 74-85 GFLOP/s against 67-76 at 256, 52-67 at 512). */
#define NN_GEMM_KC 128

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

/* The kernel set in use (NULL: OpenBLAS only), chosen once from the machine, capped by
 * nn_gemm_cap_path. A benign race: every thread computes the same value. */
static int g_path = -1;

static int machine_path(void) {
#if defined(__GNUC__) && defined(__x86_64__)
  if (nn_gemm_kernels_avx512() && __builtin_cpu_supports("avx512f")) return NN_GEMM_PATH_AVX512;
  if (nn_gemm_kernels_avx2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return NN_GEMM_PATH_AVX2;
#endif
  return NN_GEMM_PATH_BLAS;
}

/* AddressSanitizer builds default to OpenBLAS: instrumented, the tiled kernels made training 3x
 * slower there (the sanitizer build's multi-rank tests tripped their deadlines); test_nn_gemm still
 * runs every kernel under the sanitizer through nn_gemm_cap_path. */
#if defined(__SANITIZE_ADDRESS__)
#define NN_GEMM_DEFAULT_CAP NN_GEMM_PATH_BLAS
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NN_GEMM_DEFAULT_CAP NN_GEMM_PATH_BLAS
#endif
#endif
#ifndef NN_GEMM_DEFAULT_CAP
#define NN_GEMM_DEFAULT_CAP NN_GEMM_PATH_BEST
#endif

/* HSRL_GEMM_PATH=blas|avx2|avx512 caps the first choice (unset or an unknown name: the default). */
static int environment_cap(void) {
  const char *name = getenv("HSRL_GEMM_PATH");
  if (!name) return NN_GEMM_DEFAULT_CAP;
  for (int path = 0; path <= NN_GEMM_PATH_BEST; path++)
    if (strcmp(name, nn_gemm_path_name(path)) == 0) return path;
  return NN_GEMM_DEFAULT_CAP;
}

int nn_gemm_cap_path(int max_path) {
  const int best = machine_path();
  g_path = max_path < best ? (max_path < 0 ? 0 : max_path) : best;
  return g_path;
}

const char *nn_gemm_path_name(int path) {
  return path == NN_GEMM_PATH_AVX512 ? "avx512" : path == NN_GEMM_PATH_AVX2 ? "avx2" : "blas";
}

int nn_gemm_path(void) {
  if (g_path < 0) nn_gemm_cap_path(environment_cap());
  return g_path;
}

static const gemm_kernels *gemm_kernels_in_use(void) {
  const int path = nn_gemm_path();
  return path == NN_GEMM_PATH_AVX512 ? nn_gemm_kernels_avx512()
         : path == NN_GEMM_PATH_AVX2 ? nn_gemm_kernels_avx2()
                                       : NULL;
}

/* Whether the tiled kernels take this product. */
static int gemm_tiled_ok(const gemm_kernels *kern, int trans_b, int64_t n, int64_t k) {
  if (!kern || n > NN_GEMM_MAX_N) return 0;
  return !trans_b || n * k <= NN_GEMM_PANEL;
}

/* The tiles of one stretch of the sum (g: its k, a, b, raw; in: the partial sums so far, row
 * stride g->ld_in, or NULL) into c: column blocks of at most nv_max vectors, as even as possible,
 * each in row tiles of the widest block's height (the last tile shorter). Column blocks outside,
 * so a block's stretch of the panel stays in cache while its row tiles read it. */
static void gemm_tiles(const gemm_kernels *kern, const gemm_tiled *g, int64_t m, int64_t n,
                       const float *in, float *c, int64_t ldc) {
  const int64_t lanes = kern->lanes, n_vec = (n + lanes - 1) / lanes;
  const int64_t n_blocks = (n_vec + kern->nv_max - 1) / kern->nv_max;
  const int64_t nv_block = (n_vec + n_blocks - 1) / n_blocks;
  const int64_t a_row = g->trans_a ? 1 : g->lda; /* step of A between C rows */
  const int64_t mr_step = kern->mr[nv_block - 1];
  for (int64_t v0 = 0; v0 < n_vec; v0 += nv_block) {
    const int nv = (int)(n_vec - v0 < nv_block ? n_vec - v0 : nv_block);
    const int64_t j0 = lanes * v0, cols = n - j0 < lanes * nv ? n - j0 : lanes * nv;
    const int rem = (int)(cols - lanes * (nv - 1)); /* 1..lanes columns in the last vector */
    for (int64_t i0 = 0; i0 < m; i0 += mr_step) {
      const int mr = (int)(m - i0 < mr_step ? m - i0 : mr_step);
      kern->tile[(nv - 1) * kern->mr_max + (mr - 1)](
          g, g->a + i0 * a_row, g->b + j0, g->bias ? g->bias + j0 : NULL,
          in ? in + i0 * g->ld_in + j0 : NULL, c + i0 * ldc + j0, ldc, rem);
    }
  }
}

/* C = alpha op(A) op(B) + beta C (+ bias) through the tiles. A long sum (k > NN_GEMM_KC) is cut
 * into stretches of NN_GEMM_KC, each over every tile, its partial sums stored and continued by the
 * next (the same chains, so the same bits): a stretch of both operands then stays in cache across
 * the tiles that read it, where one pass would stream the whole of them once per column block
 * (the weight gradients: sums over thousands of rows). The partial sums go to C when C is not
 * read (beta == 0), to a copy on the stack otherwise (m n <= NN_GEMM_PANEL; a larger C that is
 * read sums in one pass). Nothing is allocated. */
static void gemm_run_tiled(const gemm_kernels *kern, int trans_a, int trans_b, int64_t m, int64_t n,
                           int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                           int64_t ldb, float beta, const float *bias, float *c, int64_t ldc) {
  float panel[NN_GEMM_PANEL] __attribute__((aligned(64)));
  gemm_tiled g = {trans_a, k, a, lda, b, ldb, alpha, beta, bias, 0, 0};
  if (trans_b) { /* panel (k, n) = B^T, B (n, k) */
    for (int64_t j = 0; j < n; j++)
      for (int64_t p = 0; p < k; p++) panel[p * n + j] = b[j * ldb + p];
    g.b = panel;
    g.ldb = n;
  }
  /* when C is read (beta != 0) the partial sums need a copy of their own, on the stack */
  if (k <= NN_GEMM_KC || (beta != 0.0f && m * n > NN_GEMM_PANEL)) {
    gemm_tiles(kern, &g, m, n, NULL, c, ldc);
    return;
  }
  float scratch[NN_GEMM_PANEL] __attribute__((aligned(64)));
  float *part = beta != 0.0f ? scratch : c;
  const int64_t ld_part = beta != 0.0f ? n : ldc;
  const float *a0 = g.a, *b0 = g.b;
  g.ld_in = ld_part;
  for (int64_t p0 = 0; p0 < k; p0 += NN_GEMM_KC) {
    const int64_t kc = k - p0 < NN_GEMM_KC ? k - p0 : NN_GEMM_KC;
    const int last = p0 + kc == k;
    g.k = kc;
    g.a = a0 + p0 * (trans_a ? lda : 1);
    g.b = b0 + p0 * g.ldb;
    g.bias = last ? bias : NULL;
    g.raw = !last;
    gemm_tiles(kern, &g, m, n, p0 ? part : NULL, last ? c : part, last ? ldc : ld_part);
  }
}

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
  const gemm_kernels *kern = gemm_kernels_in_use();
  if (gemm_tiled_ok(kern, trans_b, n, k)) {
    gemm_run_tiled(kern, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, NULL, c, ldc);
    return;
  }
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
  const gemm_kernels *kern = gemm_kernels_in_use();
  if (k > 0 && gemm_tiled_ok(kern, trans_b, n, k)) {
    gemm_run_tiled(kern, trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, bias, c, ldc);
    return;
  }
  fill_rows(c, ldc, bias, m, n);
  nn_gemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
}
