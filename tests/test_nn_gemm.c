/* test_nn_gemm.c: nn_gemm and nn_gemm_bias (common/nn/nn_gemm.h; architecture.md "Numerical
 * core") against a double-precision reference, on every path the machine runs (nn_gemm_cap_path:
 * OpenBLAS only, then the AVX2 and the AVX-512 register-tiled kernels where the machine has them):
 * the plain loop (tiny products), the tiled kernels (n <= 256: odd n exercise the lane-masked last
 * vector, row counts not a multiple of the tile height the short tiles) and OpenBLAS (n > 256, or a
 * transposed B too big for the panel); that the tiled kernels give exactly the bits of one fused
 * multiply-add chain per element (nn_gemm_tiled.h), long sums cut into stretches included, so
 * that the AVX2 and AVX-512 kernels give the same bits. Checks: all four transpose combinations, alpha/beta
 * (beta = 0 must not read C: C starts as NaN there), row strides larger than the width (the
 * columns between n and ldc must stay untouched), the bias variant, bits identical run to run,
 * and that the comparison itself rejects a result with one wrong element. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/nn/nn_gemm.h"
#include "tests/test_harness.h"

#define GUARD 12345.0f /* value of C's padding columns, which no call may write */

typedef struct gemm_case { int ta, tb; int64_t m, n, k; float alpha, beta; } gemm_case;

/* C = alpha op(A) op(B) + beta C (+ bias) in double; beta == 0 ignores C. */
static void reference(double *out, const gemm_case *g, const float *a, int64_t lda, const float *b,
                      int64_t ldb, const float *c, int64_t ldc, const float *bias) {
  for (int64_t i = 0; i < g->m; i++)
    for (int64_t j = 0; j < g->n; j++) {
      double s = 0.0;
      for (int64_t p = 0; p < g->k; p++) {
        const double av = g->ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = g->tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      double r = (double)g->alpha * s;
      if (g->beta != 0.0f) r += (double)g->beta * (double)c[i * ldc + j];
      if (bias) r += (double)bias[j];
      out[i * g->n + j] = r;
    }
}

/* Largest |got - want| / (1 + |want|) over C's n columns; padding columns must hold GUARD (a
 * violation returns INFINITY). The tolerance scale: float sums of k products of numbers in
 * [-1, 1] are off by about k * 2^-24 relative. */
static double worst_error(const float *c, int64_t ldc, const double *want, const gemm_case *g) {
  double worst = 0.0;
  for (int64_t i = 0; i < g->m; i++) {
    for (int64_t j = 0; j < g->n; j++) {
      const double w = want[i * g->n + j], d = fabs((double)c[i * ldc + j] - w) / (1.0 + fabs(w));
      if (d != d) return INFINITY; /* NaN */
      if (d > worst) worst = d;
    }
    for (int64_t j = g->n; j < ldc; j++)
      if (c[i * ldc + j] != GUARD) return INFINITY;
  }
  return worst;
}

/* Runs one case (bias != 0: nn_gemm_bias, which has alpha 1 and beta 0) with strides padded by
 * pad; returns the worst error, or INFINITY when a second call does not give the same bits. */
static double run_case(const gemm_case *g, int64_t pad, int with_bias, uint64_t seed) {
  const int64_t lda = (g->ta ? g->m : g->k) + pad, ldb = (g->tb ? g->k : g->n) + pad;
  const int64_t ldc = g->n + pad;
  const int64_t na = (g->ta ? g->k : g->m) * lda, nb = (g->tb ? g->n : g->k) * ldb, nc = g->m * ldc;
  float *a = hsrl_malloc((size_t)(na + 1) * sizeof(float));
  float *b = hsrl_malloc((size_t)(nb + 1) * sizeof(float));
  float *c0 = hsrl_malloc((size_t)(nc + 1) * sizeof(float));
  float *c = hsrl_malloc((size_t)(nc + 1) * sizeof(float));
  float *c2 = hsrl_malloc((size_t)(nc + 1) * sizeof(float));
  float *bias = hsrl_malloc((size_t)(g->n + 1) * sizeof(float));
  double *want = hsrl_malloc((size_t)(g->m * g->n + 1) * sizeof(double));
  test_fill_uniform(a, na, -1.0f, 1.0f, seed);
  test_fill_uniform(b, nb, -1.0f, 1.0f, seed + 1);
  test_fill_uniform(c0, nc, -1.0f, 1.0f, seed + 2);
  test_fill_uniform(bias, g->n, -1.0f, 1.0f, seed + 3);
  for (int64_t i = 0; i < g->m; i++) {
    for (int64_t j = 0; j < g->n; j++)
      if (g->beta == 0.0f || with_bias) c0[i * ldc + j] = NAN; /* must not be read */
    for (int64_t j = g->n; j < ldc; j++) c0[i * ldc + j] = GUARD;
  }
  reference(want, g, a, lda, b, ldb, c0, ldc, with_bias ? bias : NULL);
  double err = INFINITY;
  for (int rep = 0; rep < 2; rep++) {
    float *out = rep ? c2 : c;
    memcpy(out, c0, (size_t)nc * sizeof(float));
    if (with_bias) nn_gemm_bias(g->ta, g->tb, g->m, g->n, g->k, a, lda, b, ldb, bias, out, ldc);
    else nn_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, lda, b, ldb, g->beta, out, ldc);
  }
  err = worst_error(c, ldc, want, g);
  if (memcmp(c, c2, (size_t)nc * sizeof(float)) != 0) err = INFINITY; /* NaNs sit in the same places */
  hsrl_free(a), hsrl_free(b), hsrl_free(c0), hsrl_free(c), hsrl_free(c2), hsrl_free(bias);
  hsrl_free(want);
  return err;
}

static double tolerance(int64_t k) { return 4.0 * (double)(k + 4) * 0x1p-24; }

static void test_gemm_vs_double_reference(void) {
  static const int64_t ms[] = {1, 5, 13, 37, 151};
  static const int64_t ns[] = {1, 7, 16, 17, 27, 32, 47, 64, 96, 100, 128, 200, 256, 257, 300};
  static const int64_t ks[] = {1, 3, 32, 61, 300};
  static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 0.25f}, {2.0f, 0.0f}};
  int n_cases = 0;
  double worst = 0.0;
  uint64_t seed = 100;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++)
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
          for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
            const size_t iab = (im + in + ik) % 4;
            const gemm_case g = {ta, tb, ms[im], ns[in], ks[ik], ab[iab][0], ab[iab][1]};
            const int64_t pad = (int64_t)((im + ik) % 3); /* strides wider than the matrices */
            const double e = run_case(&g, pad, 0, seed += 8);
            TEST_ASSERTF(e <= tolerance(g.k), "ta %d tb %d m %lld n %lld k %lld alpha %g beta %g pad %lld: error %g",
                         ta, tb, (long long)g.m, (long long)g.n, (long long)g.k, (double)g.alpha,
                         (double)g.beta, (long long)pad, e);
            if (e / tolerance(g.k) > worst) worst = e / tolerance(g.k);
            n_cases++;
          }
  printf("  %d cases, worst error %.3g of the tolerance\n", n_cases, worst);
}

static void test_gemm_bias_vs_double_reference(void) {
  static const gemm_case cases[] = {
      {0, 1, 301, 32, 27, 1, 0}, {0, 1, 301, 96, 32, 1, 0}, {0, 1, 77, 128, 32, 1, 0},
      {0, 1, 13, 17, 61, 1, 0},  {0, 1, 9, 300, 32, 1, 0},  {0, 0, 50, 47, 5, 1, 0},
      {1, 0, 40, 33, 120, 1, 0}, {0, 1, 3, 2, 2, 1, 0},     {0, 1, 700, 64, 300, 1, 0}};
  double worst = 0.0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int64_t pad = 0; pad < 2; pad++) {
      const double e = run_case(&cases[i], pad, 1, 900 + 10 * i + (uint64_t)pad);
      TEST_ASSERTF(e <= tolerance(cases[i].k), "bias case %zu pad %lld: error %g", i, (long long)pad, e);
      if (e / tolerance(cases[i].k) > worst) worst = e / tolerance(cases[i].k);
    }
  printf("  worst error %.3g of the tolerance\n", worst);
}

/* The shapes of the policy's products (rows in the thousands, one side 27..128): long sums. */
static void test_gemm_policy_shapes(void) {
  static const gemm_case cases[] = {
      {0, 1, 2803, 128, 32, 1, 0}, {0, 1, 2803, 32, 128, 1, 1}, {0, 0, 2803, 32, 128, 1, 1},
      {1, 0, 128, 32, 2803, 1, 1}, {1, 0, 32, 27, 2803, 1, 1},  {1, 0, 96, 32, 2803, 1, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const double e = run_case(&cases[i], 0, 0, 1700 + 10 * i);
    TEST_ASSERTF(e <= tolerance(cases[i].k), "policy case %zu: error %g", i, e);
  }
}

/* The comparison must notice one wrong element, a NaN, and a write into the padding. */
static void test_checker_rejects_wrong_results(void) {
  const gemm_case g = {0, 1, 5, 19, 7, 1.0f, 0.0f};
  const int64_t ldc = 21;
  float a[5 * 7], b[19 * 7], c[5 * 21];
  double want[5 * 19];
  test_fill_uniform(a, 5 * 7, -1.0f, 1.0f, 1);
  test_fill_uniform(b, 19 * 7, -1.0f, 1.0f, 2);
  for (int64_t i = 0; i < 5 * 21; i++) c[i] = (i % 21) >= 19 ? GUARD : NAN;
  reference(want, &g, a, 7, b, 7, c, ldc, NULL);
  nn_gemm(0, 1, 5, 19, 7, 1.0f, a, 7, b, 7, 0.0f, c, ldc);
  TEST_ASSERT(worst_error(c, ldc, want, &g) <= tolerance(7));
  const float keep = c[3 * 21 + 18];
  c[3 * 21 + 18] += 1e-3f;
  TEST_ASSERT(worst_error(c, ldc, want, &g) > tolerance(7));
  c[3 * 21 + 18] = NAN;
  TEST_ASSERT(worst_error(c, ldc, want, &g) > tolerance(7));
  c[3 * 21 + 18] = keep;
  c[2 * 21 + 20] = 0.0f;
  TEST_ASSERT(worst_error(c, ldc, want, &g) > tolerance(7));
}

/* One product through the current path into c (ldc = n), B transposed or not. */
static void product(const gemm_case *g, const float *a, const float *b, const float *bias, float *c) {
  const int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  if (bias) nn_gemm_bias(g->ta, g->tb, g->m, g->n, g->k, a, lda, b, ldb, bias, c, g->n);
  else nn_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, lda, b, ldb, g->beta, c, g->n);
}

/* C as nn_gemm_tiled.h defines the tiled kernels' arithmetic, element by element in float: one
 * fused multiply-add chain over p = 0..k-1 from 0, then alpha, beta and bias in that order. */
static void fma_chain(const gemm_case *g, const float *a, const float *b, const float *bias,
                      float *c) {
  const int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  for (int64_t i = 0; i < g->m; i++)
    for (int64_t j = 0; j < g->n; j++) {
      float x = 0.0f;
      for (int64_t p = 0; p < g->k; p++)
        x = fmaf(g->ta ? a[p * lda + i] : a[i * lda + p], g->tb ? b[j * ldb + p] : b[p * ldb + j], x);
      const float alpha = bias ? 1.0f : g->alpha, beta = bias ? 0.0f : g->beta;
      if (alpha != 1.0f) x = alpha * x;
      if (beta != 0.0f) x = x + (beta == 1.0f ? c[i * g->n + j] : beta * c[i * g->n + j]);
      if (bias) x = x + bias[j];
      c[i * g->n + j] = x;
    }
}

/* The tiled kernels give exactly the bits of that chain, whatever their tiles and however a long
 * sum is cut into stretches (k > 128: partial sums kept in C when beta is 0, in a scratch copy
 * otherwise), so every machine that has them computes the same bits: the AVX2 and the AVX-512
 * kernels are each checked against the chain wherever the machine runs them. */
static void test_tiled_bits_equal_fma_chain(void) {
  if (nn_gemm_path() == NN_GEMM_PATH_BLAS) TEST_SKIP("OpenBLAS rounds in its own order");
  static const gemm_case cases[] = {
      {0, 1, 2803, 128, 32, 1, 0},     {1, 0, 128, 32, 2803, 1, 1},    {1, 0, 32, 27, 2803, -0.5f, 0.25f},
      {0, 0, 301, 27, 300, 2, 0},      {0, 0, 37, 200, 129, 1, 1},     {1, 1, 64, 40, 400, 1, 1},
      {0, 1, 13, 17, 61, 1, 0},        {1, 0, 7, 256, 1000, 0.5f, 0},  {0, 0, 200, 9, 128, 1, 0},
      {0, 1, 2803, 32, 128, 1, 1},     {0, 0, 301, 27, 128, -0.5f, 0.25f}, {1, 0, 37, 200, 61, 2, 0},
      {0, 0, 200, 100, 300, 1, 1} /* C read and too big for the stack copy: one pass */};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      const gemm_case *g = &cases[i];
      const int64_t na = g->m * g->k, nb = g->k * g->n, nc = g->m * g->n;
      float *a = hsrl_malloc((size_t)na * sizeof(float)), *b = hsrl_malloc((size_t)nb * sizeof(float));
      float *bias = hsrl_malloc((size_t)g->n * sizeof(float));
      float *got = hsrl_malloc((size_t)nc * sizeof(float)), *want = hsrl_malloc((size_t)nc * sizeof(float));
      test_fill_uniform(a, na, -1.0f, 1.0f, 4000 + i);
      test_fill_uniform(b, nb, -1.0f, 1.0f, 4100 + i);
      test_fill_uniform(bias, g->n, -1.0f, 1.0f, 4200 + i);
      test_fill_uniform(got, nc, -1.0f, 1.0f, 4300 + i);
      memcpy(want, got, (size_t)nc * sizeof(float));
      product(g, a, b, with_bias ? bias : NULL, got);
      fma_chain(g, a, b, with_bias ? bias : NULL, want);
      int64_t differ = 0;
      for (int64_t e = 0; e < nc; e++) differ += memcmp(&got[e], &want[e], sizeof(float)) != 0;
      TEST_ASSERTF(differ == 0, "ta %d tb %d m %lld n %lld k %lld alpha %g beta %g bias %d: %lld of %lld elements differ",
                   g->ta, g->tb, (long long)g->m, (long long)g->n, (long long)g->k, (double)g->alpha,
                   (double)g->beta, with_bias, (long long)differ, (long long)nc);
      hsrl_free(a), hsrl_free(b), hsrl_free(bias), hsrl_free(got), hsrl_free(want);
    }
}

int main(void) {
  for (int path = NN_GEMM_PATH_BLAS; path <= NN_GEMM_PATH_BEST; path++) {
    if (nn_gemm_cap_path(path) != path) {
      printf("path %s: this machine does not run it\n", nn_gemm_path_name(path));
      continue;
    }
    printf("path %s\n", nn_gemm_path_name(path));
    TEST_RUN(test_gemm_vs_double_reference);
    TEST_RUN(test_gemm_bias_vs_double_reference);
    TEST_RUN(test_gemm_policy_shapes);
    TEST_RUN(test_checker_rejects_wrong_results);
    TEST_RUN(test_tiled_bits_equal_fma_chain);
  }
  return test_summary();
}
