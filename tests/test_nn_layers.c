/* test_nn_layers.c: nn_gemm, nn_linear, nn_embedding, nn_layernorm, nn_activation, nn_dropout,
 * nn_softmax (method.md section 7 building blocks; style.md "Tests").
 *
 * For every layer: the fast kernel against a naive reference written here (double accumulation,
 * explicit Jacobians where the kernel uses a closed form) on odd shapes and a 1-row case; central
 * differences through gradcheck_run on every input and parameter (which also checks that calling
 * backward twice doubles the gradients); and a deliberately broken backward that the same checker
 * must reject, so the checker is shown to be able to fail.
 *
 * Gradcheck tolerance GC_TOL = 1e-2: central differences with eps 1e-2 in float32 have a truncation
 * error of order eps^2 |f'''| (~1e-4 relative for these smooth, O(1)-scaled layers) plus float32
 * rounding of the outputs divided by 2 eps (~1e-5); 1e-2 sits well above both, while every broken
 * backward below is off by tens of percent or more. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_activation.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_embedding.h"
#include "common/nn/nn_gemm.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_softmax.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

#define GC_TOL 1e-2
#define ATOL 1e-5
#define RTOL 1e-4

/* Runs the checker on a deliberately broken backward; 1 when it is rejected (its "FAIL" line in
 * the log is the expected outcome). */
static int rejects(gradcheck_case *gc, uint64_t seed) {
  printf("  deliberately broken backward, must be rejected:\n");
  return gradcheck_run(gc, seed, GC_TOL, NULL) == 0;
}

/* Random values in [lo, hi] with a random sign: keeps ReLU inputs away from its kink. */
static void fill_signed(float *x, int64_t n, float lo, float hi, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 1);
  for (int64_t i = 0; i < n; i++) {
    float m = lo + (hi - lo) * hsrl_rng_uniform(&r);
    x[i] = hsrl_rng_u32(&r) & 1u ? m : -m;
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* gemm */

static void naive_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0.0;
      for (int64_t p = 0; p < k; p++)
        s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
      double prev = beta == 0.0f ? 0.0 : (double)beta * (double)c[i * ldc + j];
      c[i * ldc + j] = (float)((double)alpha * s + prev);
    }
}

/* Every transpose combination, padded leading dimensions, alpha/beta, on a shape small enough for
 * the plain-loop path and one large enough for BLAS; beta = 0 must ignore NaN already in C. */
static void test_gemm_matches_naive(void) {
  static const int64_t shapes[4][3] = {{7, 5, 13}, {1, 5, 13}, {33, 29, 17}, {1, 70, 90}};
  for (int s = 0; s < 4; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int bz = 0; bz < 2; bz++) {
          int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
          int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
          int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
          float *a = hsrl_malloc((size_t)na * sizeof(float)), *b = hsrl_malloc((size_t)nb * sizeof(float));
          float *c = hsrl_malloc((size_t)nc * sizeof(float)), *ref = hsrl_malloc((size_t)nc * sizeof(float));
          test_fill_uniform(a, na, -1, 1, 10 + (uint64_t)s);
          test_fill_uniform(b, nb, -1, 1, 20 + (uint64_t)s);
          test_fill_uniform(c, nc, -1, 1, 30 + (uint64_t)s);
          float beta = bz ? 0.0f : 0.7f;
          if (bz)
            for (int64_t i = 0; i < nc; i++) c[i] = NAN;
          memcpy(ref, c, (size_t)nc * sizeof(float));
          nn_gemm(ta, tb, m, n, k, 1.3f, a, lda, b, ldb, beta, c, ldc);
          naive_gemm(ta, tb, m, n, k, 1.3f, a, lda, b, ldb, beta, ref, ldc);
          double worst = 0.0;
          int finite = 1;
          for (int64_t i = 0; i < m; i++) {
            double d = test_max_scaled_diff(c + i * ldc, ref + i * ldc, n, ATOL, RTOL);
            if (d > worst) worst = d;
            for (int64_t j = 0; j < n; j++) finite &= isfinite(c[i * ldc + j]) != 0;
          }
          /* The padding columns of C are not touched. */
          int pad_kept = 1;
          for (int64_t i = 0; i < m; i++) pad_kept &= memcmp(&c[i * ldc + n], &ref[i * ldc + n], sizeof(float)) == 0 ||
                                                       (isnan(c[i * ldc + n]) && isnan(ref[i * ldc + n]));
          hsrl_free(a);
          hsrl_free(b);
          hsrl_free(c);
          hsrl_free(ref);
          TEST_ASSERTF(finite && worst <= 1.0, "shape %d ta %d tb %d beta %g: scaled diff %g finite %d", s,
                       ta, tb, (double)beta, worst, finite);
          TEST_ASSERT(pad_kept);
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* linear */

enum { LN_N = 7, LN_IN = 13, LN_OUT = 5 };

typedef struct linear_ctx {
  int64_t n, in, out;
  float inp[LN_N * LN_IN], w[LN_OUT * LN_IN], b[LN_OUT];
  float dinp[LN_N * LN_IN], dw[LN_OUT * LN_IN], db[LN_OUT];
  float y[LN_N * LN_OUT], dy[LN_N * LN_OUT];
} linear_ctx;

static void linear_fwd(void *p) {
  linear_ctx *c = p;
  nn_linear_forward(c->y, c->inp, c->w, c->b, c->n, c->in, c->out);
}
static void linear_bwd(void *p) {
  linear_ctx *c = p;
  nn_linear_backward(c->dinp, c->dw, c->db, c->dy, c->inp, c->w, c->n, c->in, c->out);
}
/* Broken: dw computed as inp^T dout, i.e. stored (in, out) in the (out, in) buffer. */
static void linear_bwd_broken(void *p) {
  linear_ctx *c = p;
  nn_linear_backward(c->dinp, NULL, c->db, c->dy, c->inp, c->w, c->n, c->in, c->out);
  nn_gemm(1, 0, c->in, c->out, c->n, 1.0f, c->inp, c->in, c->dy, c->out, 1.0f, c->dw, c->out);
}

static void linear_setup(linear_ctx *c, int64_t n, gradcheck_case *gc, int broken) {
  memset(c, 0, sizeof *c);
  c->n = n;
  c->in = LN_IN;
  c->out = LN_OUT;
  test_fill_uniform(c->inp, n * LN_IN, -1, 1, 1);
  test_fill_uniform(c->w, LN_OUT * LN_IN, -0.5f, 0.5f, 2);
  test_fill_uniform(c->b, LN_OUT, -0.5f, 0.5f, 3);
  memset(gc, 0, sizeof *gc);
  *gc = (gradcheck_case){.ctx = c, .forward = linear_fwd, .backward = broken ? linear_bwd_broken : linear_bwd,
                         .out = c->y, .dout = c->dy, .n_out = n * LN_OUT};
  gradcheck_add(gc, "inp", c->inp, c->dinp, n * LN_IN);
  gradcheck_add(gc, "w", c->w, c->dw, LN_OUT * LN_IN);
  gradcheck_add(gc, "b", c->b, c->db, LN_OUT);
}

static void test_linear_matches_naive(void) {
  static linear_ctx c;
  gradcheck_case gc;
  int64_t rows[2] = {LN_N, 1};
  for (int r = 0; r < 2; r++) {
    int64_t n = rows[r];
    linear_setup(&c, n, &gc, 0);
    /* NULL bias: plain product; then with bias. */
    nn_linear_forward(c.y, c.inp, c.w, NULL, n, LN_IN, LN_OUT);
    float ref[LN_N * LN_OUT];
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < LN_OUT; o++) {
        double s = 0.0;
        for (int64_t k = 0; k < LN_IN; k++) s += (double)c.inp[i * LN_IN + k] * (double)c.w[o * LN_IN + k];
        ref[i * LN_OUT + o] = (float)s;
      }
    TEST_ASSERT(test_max_scaled_diff(c.y, ref, n * LN_OUT, ATOL, RTOL) <= 1.0);
    linear_fwd(&c);
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < LN_OUT; o++) ref[i * LN_OUT + o] += c.b[o];
    TEST_ASSERT(test_max_scaled_diff(c.y, ref, n * LN_OUT, ATOL, RTOL) <= 1.0);

    /* Backward against the definitions, on top of nonzero gradients (it must add). */
    test_fill_uniform(c.dy, n * LN_OUT, -1, 1, 4);
    for (int64_t i = 0; i < n * LN_IN; i++) c.dinp[i] = 0.25f;
    for (int64_t i = 0; i < LN_OUT * LN_IN; i++) c.dw[i] = -0.5f;
    for (int64_t i = 0; i < LN_OUT; i++) c.db[i] = 1.0f;
    linear_bwd(&c);
    float rdinp[LN_N * LN_IN], rdw[LN_OUT * LN_IN], rdb[LN_OUT];
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < LN_IN; k++) {
        double s = 0.25;
        for (int64_t o = 0; o < LN_OUT; o++) s += (double)c.dy[i * LN_OUT + o] * (double)c.w[o * LN_IN + k];
        rdinp[i * LN_IN + k] = (float)s;
      }
    for (int64_t o = 0; o < LN_OUT; o++) {
      double sb = 1.0;
      for (int64_t i = 0; i < n; i++) sb += (double)c.dy[i * LN_OUT + o];
      rdb[o] = (float)sb;
      for (int64_t k = 0; k < LN_IN; k++) {
        double s = -0.5;
        for (int64_t i = 0; i < n; i++) s += (double)c.dy[i * LN_OUT + o] * (double)c.inp[i * LN_IN + k];
        rdw[o * LN_IN + k] = (float)s;
      }
    }
    TEST_ASSERT(test_max_scaled_diff(c.dinp, rdinp, n * LN_IN, ATOL, RTOL) <= 1.0);
    TEST_ASSERT(test_max_scaled_diff(c.dw, rdw, LN_OUT * LN_IN, ATOL, RTOL) <= 1.0);
    TEST_ASSERT(test_max_scaled_diff(c.db, rdb, LN_OUT, ATOL, RTOL) <= 1.0);
  }
}

static void test_linear_gradcheck(void) {
  static linear_ctx c;
  gradcheck_case gc;
  linear_setup(&c, LN_N, &gc, 0);
  TEST_ASSERT(gradcheck_run(&gc, 100, GC_TOL, NULL));
  linear_setup(&c, 1, &gc, 0);
  TEST_ASSERT(gradcheck_run(&gc, 101, GC_TOL, NULL));
  linear_setup(&c, LN_N, &gc, 1);
  TEST_ASSERT(rejects(&gc, 100));
}

/* ---------------------------------------------------------------------------------------------- */
/* embedding */

enum { EM_ROWS = 6, EM_N = 9, EM_D = 5 };

typedef struct embedding_ctx {
  int32_t ids[EM_N];
  float table[EM_ROWS * EM_D], dtable[EM_ROWS * EM_D];
  float y[EM_N * EM_D], dy[EM_N * EM_D];
} embedding_ctx;

static void embedding_fwd(void *p) {
  embedding_ctx *c = p;
  nn_embedding_forward(c->y, c->ids, c->table, EM_N, EM_D);
}
static void embedding_bwd(void *p) {
  embedding_ctx *c = p;
  nn_embedding_backward(c->dtable, c->dy, c->ids, EM_N, EM_D);
}
/* Broken: overwrites instead of accumulating, so repeated ids keep only the last gradient. */
static void embedding_bwd_broken(void *p) {
  embedding_ctx *c = p;
  for (int i = 0; i < EM_N; i++) memcpy(c->dtable + c->ids[i] * EM_D, c->dy + i * EM_D, EM_D * sizeof(float));
}

static void embedding_setup(embedding_ctx *c, gradcheck_case *gc, int broken) {
  static const int32_t ids[EM_N] = {3, 0, 3, 5, 1, 3, 0, 2, 5}; /* row 4 unused, 3 thrice */
  memset(c, 0, sizeof *c);
  memcpy(c->ids, ids, sizeof ids);
  test_fill_uniform(c->table, EM_ROWS * EM_D, -1, 1, 5);
  memset(gc, 0, sizeof *gc);
  *gc = (gradcheck_case){.ctx = c, .forward = embedding_fwd,
                         .backward = broken ? embedding_bwd_broken : embedding_bwd, .out = c->y,
                         .dout = c->dy, .n_out = EM_N * EM_D};
  gradcheck_add(gc, "table", c->table, c->dtable, EM_ROWS * EM_D);
}

static void test_embedding(void) {
  static embedding_ctx c;
  gradcheck_case gc;
  embedding_setup(&c, &gc, 0);
  embedding_fwd(&c);
  for (int i = 0; i < EM_N; i++)
    for (int j = 0; j < EM_D; j++) TEST_ASSERT(c.y[i * EM_D + j] == c.table[c.ids[i] * EM_D + j]);
  /* Scatter-add: row r gets the sum of dout over every i with ids[i] == r (0 for unused rows). */
  test_fill_uniform(c.dy, EM_N * EM_D, -1, 1, 6);
  embedding_bwd(&c);
  for (int r = 0; r < EM_ROWS; r++)
    for (int j = 0; j < EM_D; j++) {
      double s = 0.0;
      for (int i = 0; i < EM_N; i++)
        if (c.ids[i] == r) s += (double)c.dy[i * EM_D + j];
      TEST_NEAR(c.dtable[r * EM_D + j], s, 1e-6);
    }
  TEST_ASSERT(c.dtable[4 * EM_D] == 0.0f);
  TEST_ASSERT(gradcheck_run(&gc, 200, GC_TOL, NULL));
  embedding_setup(&c, &gc, 1);
  TEST_ASSERT(rejects(&gc, 200));
}

/* ---------------------------------------------------------------------------------------------- */
/* layernorm */

enum { LA_N = 7, LA_D = 13 };

typedef struct layernorm_ctx {
  int64_t n;
  float inp[LA_N * LA_D], gamma[LA_D], beta[LA_D];
  float dinp[LA_N * LA_D], dgamma[LA_D], dbeta[LA_D];
  float y[LA_N * LA_D], dy[LA_N * LA_D], mean[LA_N], rstd[LA_N];
} layernorm_ctx;

static void layernorm_fwd(void *p) {
  layernorm_ctx *c = p;
  nn_layernorm_forward(c->y, c->mean, c->rstd, c->inp, c->gamma, c->beta, c->n, LA_D);
}
static void layernorm_bwd(void *p) {
  layernorm_ctx *c = p;
  nn_layernorm_backward(c->dinp, c->dgamma, c->dbeta, c->dy, c->inp, c->mean, c->rstd, c->gamma, c->n, LA_D);
}
/* Broken: dx = rstd * (g - xhat * mean(g xhat)), the mean(g) term forgotten. */
static void layernorm_bwd_broken(void *p) {
  layernorm_ctx *c = p;
  nn_layernorm_backward(NULL, c->dgamma, c->dbeta, c->dy, c->inp, c->mean, c->rstd, c->gamma, c->n, LA_D);
  for (int64_t i = 0; i < c->n; i++) {
    double sgx = 0.0;
    for (int j = 0; j < LA_D; j++)
      sgx += (double)(c->dy[i * LA_D + j] * c->gamma[j]) * (double)((c->inp[i * LA_D + j] - c->mean[i]) * c->rstd[i]);
    for (int j = 0; j < LA_D; j++) {
      float xhat = (c->inp[i * LA_D + j] - c->mean[i]) * c->rstd[i];
      c->dinp[i * LA_D + j] += c->rstd[i] * (c->dy[i * LA_D + j] * c->gamma[j] - xhat * (float)(sgx / LA_D));
    }
  }
}

static void layernorm_setup(layernorm_ctx *c, int64_t n, gradcheck_case *gc, int broken) {
  memset(c, 0, sizeof *c);
  c->n = n;
  test_fill_uniform(c->inp, n * LA_D, -2, 3, 7);
  test_fill_uniform(c->gamma, LA_D, 0.5f, 1.5f, 8);
  test_fill_uniform(c->beta, LA_D, -0.5f, 0.5f, 9);
  memset(gc, 0, sizeof *gc);
  *gc = (gradcheck_case){.ctx = c, .forward = layernorm_fwd,
                         .backward = broken ? layernorm_bwd_broken : layernorm_bwd, .out = c->y,
                         .dout = c->dy, .n_out = n * LA_D};
  gradcheck_add(gc, "inp", c->inp, c->dinp, n * LA_D);
  gradcheck_add(gc, "gamma", c->gamma, c->dgamma, LA_D);
  gradcheck_add(gc, "beta", c->beta, c->dbeta, LA_D);
}

/* Naive: double statistics; backward through the explicit Jacobian
 * dy_j/dx_k = gamma_j rstd (delta_jk - 1/d - xhat_j xhat_k / d). */
static void test_layernorm_matches_naive(void) {
  static layernorm_ctx c;
  gradcheck_case gc;
  int64_t rows[2] = {LA_N, 1};
  for (int r = 0; r < 2; r++) {
    int64_t n = rows[r];
    layernorm_setup(&c, n, &gc, 0);
    layernorm_fwd(&c);
    test_fill_uniform(c.dy, n * LA_D, -1, 1, 10);
    layernorm_bwd(&c);
    float ry[LA_N * LA_D], rdx[LA_N * LA_D], rdg[LA_D] = {0}, rdb[LA_D] = {0};
    double dg[LA_D] = {0}, dbt[LA_D] = {0};
    for (int64_t i = 0; i < n; i++) {
      const float *x = c.inp + i * LA_D;
      double m = 0.0, v = 0.0, xhat[LA_D];
      for (int j = 0; j < LA_D; j++) m += (double)x[j];
      m /= LA_D;
      for (int j = 0; j < LA_D; j++) v += ((double)x[j] - m) * ((double)x[j] - m);
      v /= LA_D;
      double rs = 1.0 / sqrt(v + 1e-5);
      TEST_NEAR(c.mean[i], m, 1e-6);
      TEST_NEAR(c.rstd[i], rs, 1e-5 * rs);
      for (int j = 0; j < LA_D; j++) {
        xhat[j] = ((double)x[j] - m) * rs;
        ry[i * LA_D + j] = (float)(xhat[j] * (double)c.gamma[j] + (double)c.beta[j]);
        dg[j] += (double)c.dy[i * LA_D + j] * xhat[j];
        dbt[j] += (double)c.dy[i * LA_D + j];
      }
      for (int k = 0; k < LA_D; k++) {
        double s = 0.0;
        for (int j = 0; j < LA_D; j++)
          s += (double)c.dy[i * LA_D + j] * (double)c.gamma[j] * rs *
               ((j == k ? 1.0 : 0.0) - 1.0 / LA_D - xhat[j] * xhat[k] / LA_D);
        rdx[i * LA_D + k] = (float)s;
      }
    }
    for (int j = 0; j < LA_D; j++) {
      rdg[j] = (float)dg[j];
      rdb[j] = (float)dbt[j];
    }
    TEST_ASSERT(test_max_scaled_diff(c.y, ry, n * LA_D, ATOL, RTOL) <= 1.0);
    TEST_ASSERT(test_max_scaled_diff(c.dinp, rdx, n * LA_D, ATOL, RTOL) <= 1.0);
    TEST_ASSERT(test_max_scaled_diff(c.dgamma, rdg, LA_D, ATOL, RTOL) <= 1.0);
    TEST_ASSERT(test_max_scaled_diff(c.dbeta, rdb, LA_D, ATOL, RTOL) <= 1.0);
  }
}

static void test_layernorm_gradcheck(void) {
  static layernorm_ctx c;
  gradcheck_case gc;
  layernorm_setup(&c, LA_N, &gc, 0);
  TEST_ASSERT(gradcheck_run(&gc, 300, GC_TOL, NULL));
  layernorm_setup(&c, 1, &gc, 0);
  TEST_ASSERT(gradcheck_run(&gc, 301, GC_TOL, NULL));
  layernorm_setup(&c, LA_N, &gc, 1);
  TEST_ASSERT(rejects(&gc, 300));
}

/* A row far from zero with a small spread: the two-pass variance keeps it normalised. */
static void test_layernorm_offset_row(void) {
  float x[LA_D], y[LA_D], g[LA_D], b[LA_D], m, rs;
  for (int j = 0; j < LA_D; j++) {
    x[j] = 1000.0f + 0.01f * (float)j;
    g[j] = 1.0f;
    b[j] = 0.0f;
  }
  nn_layernorm_forward(y, &m, &rs, x, g, b, 1, LA_D);
  double s = 0.0, s2 = 0.0;
  for (int j = 0; j < LA_D; j++) {
    s += (double)y[j];
    s2 += (double)y[j] * (double)y[j];
  }
  TEST_NEAR(s / LA_D, 0.0, 1e-3);
  /* var = 0.01^2 * (d^2 - 1) / 12 = 0.0014; eps 1e-5 shrinks the unit variance by ~0.7%. */
  double var = 1e-4 * (LA_D * LA_D - 1) / 12.0;
  TEST_NEAR(s2 / LA_D, var / (var + 1e-5), 2e-3);
}

/* ---------------------------------------------------------------------------------------------- */
/* relu */

enum { RE_N = 7 * 13 };

typedef struct relu_ctx {
  float inp[RE_N], dinp[RE_N], y[RE_N], dy[RE_N];
} relu_ctx;

static void relu_fwd(void *p) {
  relu_ctx *c = p;
  nn_relu_forward(c->y, c->inp, RE_N);
}
static void relu_bwd(void *p) {
  relu_ctx *c = p;
  nn_relu_backward(c->dinp, c->dy, c->y, RE_N);
}
/* Broken: passes the gradient where out >= 0, i.e. also for negative inputs. */
static void relu_bwd_broken(void *p) {
  relu_ctx *c = p;
  for (int i = 0; i < RE_N; i++)
    if (c->y[i] >= 0.0f) c->dinp[i] += c->dy[i];
}

static void test_relu(void) {
  static relu_ctx c;
  memset(&c, 0, sizeof c);
  /* |x| >= 0.05 > eps: no finite difference crosses the kink. */
  fill_signed(c.inp, RE_N, 0.05f, 1.0f, 11);
  relu_fwd(&c);
  int n_neg = 0;
  for (int i = 0; i < RE_N; i++) {
    TEST_ASSERT(c.y[i] == (c.inp[i] > 0.0f ? c.inp[i] : 0.0f));
    n_neg += c.inp[i] < 0.0f;
  }
  TEST_ASSERT(n_neg > 10 && n_neg < RE_N - 10);
  /* In place. */
  float tmp[RE_N];
  memcpy(tmp, c.inp, sizeof tmp);
  nn_relu_forward(tmp, tmp, RE_N);
  TEST_ASSERT(memcmp(tmp, c.y, sizeof tmp) == 0);
  /* NaN is not hidden. */
  float nan_in = NAN, nan_out = 0.0f;
  nn_relu_forward(&nan_out, &nan_in, 1);
  TEST_ASSERT(isnan(nan_out));

  gradcheck_case gc = {.ctx = &c, .forward = relu_fwd, .backward = relu_bwd, .out = c.y, .dout = c.dy, .n_out = RE_N};
  gradcheck_add(&gc, "inp", c.inp, c.dinp, RE_N);
  TEST_ASSERT(gradcheck_run(&gc, 400, GC_TOL, NULL));
  gc.backward = relu_bwd_broken;
  TEST_ASSERT(rejects(&gc, 400));
}

/* ---------------------------------------------------------------------------------------------- */
/* dropout */

/* The drop probability the 16-bit threshold gives (nn_dropout.h): t / 65536, t = round(p 65536)
 * capped at 65535. */
static double dropout_rate(float p) {
  long t = lround((double)p * 65536.0);
  return (double)(t > 65535 ? 65535 : t) / 65536.0;
}

static void test_dropout_mask_statistics(void) {
  enum { N = 1 << 20 };
  uint8_t *a = hsrl_malloc(N), *b = hsrl_malloc(N), *c = hsrl_malloc(N);
  const float ps[4] = {0.1f, 0.3f, 0.5f, 0.99999994f /* the largest float below 1 */};
  for (int t = 0; t < 4; t++) {
    float p = ps[t];
    nn_dropout_mask(a, N, p, 1234, 0);
    int64_t dropped = 0;
    for (int i = 0; i < N; i++) dropped += !a[i];
    /* The drop rate within 4 standard errors sqrt(q(1-q)/N) of q = t / 65536 (3e-4 at p = 0.1,
     * 2e-3 at 0.5); q is within 2^-17 of p (6e-6 below p at 0.1: not detectable here, and not
     * meant to be). At the top, q = 65535/65536, not 1: about 16 of the 2^20 elements kept. */
    const double q = dropout_rate(p), se = sqrt(q * (1.0 - q) / N);
    printf("  p %.8f: dropped %.6f, t/65536 %.6f, 4 se %.6f\n", (double)p, (double)dropped / N, q, 4.0 * se);
    TEST_NEAR((double)dropped / N, q, 4.0 * se);
    if (t == 3) {
      TEST_ASSERT(dropped < N); /* never t = 65536 (all dropped) or 0 (none) */
      continue;
    }
    /* Same (key, offset): same mask; split at an odd point with the offset advanced: same mask. */
    nn_dropout_mask(b, N, p, 1234, 0);
    TEST_ASSERT(memcmp(a, b, N) == 0);
    nn_dropout_mask(b, 37, p, 1234, 0);
    nn_dropout_mask(b + 37, N - 37, p, 1234, 37);
    TEST_ASSERT(memcmp(a, b, N) == 0);
    nn_dropout_mask(b, N - 1001, p, 1234, 1001);
    TEST_ASSERT(memcmp(a + 1001, b, N - 1001) == 0);
    /* A different key or a shifted offset: independent masks, disagreeing on ~2p(1-p). An offset
     * shifted by one moves every element to the other half of a word (or the next word). */
    nn_dropout_mask(b, N, p, 1235, 0);
    nn_dropout_mask(c, N, p, 1234, 1);
    int64_t diff_key = 0, diff_off = 0;
    for (int i = 0; i < N; i++) {
      diff_key += a[i] != b[i];
      diff_off += a[i] != c[i];
    }
    double want = 2.0 * (double)p * (1.0 - (double)p);
    TEST_NEAR((double)diff_key / N, want, 0.015);
    TEST_NEAR((double)diff_off / N, want, 0.015);
  }
  /* Keys differing only in the high 32 bits give different masks too. */
  nn_dropout_mask(a, 1000, 0.5f, 1ull << 40, 0);
  nn_dropout_mask(b, 1000, 0.5f, 2ull << 40, 0);
  TEST_ASSERT(memcmp(a, b, 1000) != 0);
  /* p below 2^-17 rounds to t = 0 and keeps everything (documented in nn_dropout.h). */
  nn_dropout_mask(a, N, 5e-6f, 1234, 0);
  for (int i = 0; i < N; i++) TEST_ASSERT(a[i] == 1);
  hsrl_free(a);
  hsrl_free(b);
  hsrl_free(c);
}

/* A mask drawn in pieces (random lengths, odd and even starts, pieces shorter and longer than a
 * Philox block or a chunk of the generator) equals the mask drawn whole; so does a staircase drawn
 * by nn_dropout_mask_rows against one nn_dropout_mask call per row, bytes outside the staircase
 * untouched. */
static void test_dropout_mask_pieces(void) {
  enum { N = 200003 };
  uint8_t *whole = hsrl_malloc(N), *parts = hsrl_malloc(N);
  const uint64_t key = 0x9e3779b97f4a7c15ull, offset = 12345;
  nn_dropout_mask(whole, N, 0.1f, key, offset);
  memset(parts, 7, N);
  hsrl_rng rng;
  hsrl_rng_init(&rng, 42, 0);
  int64_t n_pieces = 0;
  for (int64_t i = 0; i < N; n_pieces++) {
    uint32_t r = hsrl_rng_u32(&rng);
    int64_t len = (r & 1) ? 1 + (int64_t)(r >> 1) % 17 : 1 + (int64_t)(r >> 1) % 3000;
    if (len > N - i) len = N - i;
    nn_dropout_mask(parts + i, len, 0.1f, key, offset + (uint64_t)i);
    i += len;
  }
  TEST_ASSERT(memcmp(whole, parts, N) == 0);
  printf("  %lld pieces\n", (long long)n_pieces);
  /* Staircases: rows of width ld, row r drawn up to min(len0 + r step, max_len); 300 rows, more
   * pieces and blocks than one chunk of the generator holds. */
  const int64_t lds[3] = {50, 17, 600}, steps[3] = {1, 0, 3}, len0s[3] = {1, 5, -4};
  for (int s = 0; s < 3; s++) {
    const int64_t ld = lds[s], n_rows = 300, max_len = ld - (s == 1 ? 2 : 0);
    memset(parts, 7, N);
    nn_dropout_mask_rows(parts, ld, n_rows, len0s[s], steps[s], max_len, 0.3f, key, offset + 1);
    for (int64_t r = 0; r < n_rows; r++) {
      int64_t len = len0s[s] + r * steps[s];
      len = len < 0 ? 0 : (len > max_len ? max_len : len);
      nn_dropout_mask(whole, len, 0.3f, key, offset + 1 + (uint64_t)(r * ld));
      TEST_ASSERT(memcmp(parts + r * ld, whole, (size_t)len) == 0);
      for (int64_t j = len; j < ld; j++) TEST_ASSERT(parts[r * ld + j] == 7);
    }
  }
  hsrl_free(whole);
  hsrl_free(parts);
}

static void test_dropout_apply_and_identity(void) {
  enum { N = 7 * 13 };
  float x[N], y[N], g[N], dy[N];
  uint8_t m[N];
  test_fill_uniform(x, N, -1, 1, 12);
  nn_dropout_forward(y, m, x, N, 0.0f, 99, 5);
  for (int i = 0; i < N; i++) TEST_ASSERT(m[i] == 1 && y[i] == x[i]);
  nn_dropout_forward(y, m, x, N, 0.25f, 99, 5);
  int n_drop = 0;
  for (int i = 0; i < N; i++) {
    TEST_ASSERT(y[i] == (m[i] ? x[i] * (1.0f / 0.75f) : 0.0f));
    n_drop += !m[i];
  }
  TEST_ASSERT(n_drop > 5 && n_drop < N - 5);
  /* In place matches out of place. */
  float z[N];
  memcpy(z, x, sizeof z);
  nn_dropout_apply(z, z, m, N, 0.25f);
  TEST_ASSERT(memcmp(z, y, sizeof z) == 0);
  /* Backward adds dout * mask / (1-p). */
  test_fill_uniform(dy, N, -1, 1, 13);
  for (int i = 0; i < N; i++) g[i] = 0.5f;
  nn_dropout_backward(g, dy, m, N, 0.25f);
  for (int i = 0; i < N; i++) TEST_ASSERT(g[i] == 0.5f + (m[i] ? dy[i] * (1.0f / 0.75f) : 0.0f));
}

enum { DR_N = 7 * 13 };
typedef struct dropout_ctx {
  float p;
  uint8_t mask[DR_N];
  float inp[DR_N], dinp[DR_N], y[DR_N], dy[DR_N];
} dropout_ctx;

static void dropout_fwd(void *p) {
  dropout_ctx *c = p;
  nn_dropout_forward(c->y, c->mask, c->inp, DR_N, c->p, 77, 3); /* fixed key: same mask each call */
}
static void dropout_bwd(void *p) {
  dropout_ctx *c = p;
  nn_dropout_backward(c->dinp, c->dy, c->mask, DR_N, c->p);
}
/* Broken: forgets the 1/(1-p) scale. */
static void dropout_bwd_broken(void *p) {
  dropout_ctx *c = p;
  for (int i = 0; i < DR_N; i++)
    if (c->mask[i]) c->dinp[i] += c->dy[i];
}

static void test_dropout_gradcheck(void) {
  static dropout_ctx c;
  memset(&c, 0, sizeof c);
  c.p = 0.4f;
  test_fill_uniform(c.inp, DR_N, -1, 1, 14);
  gradcheck_case gc = {.ctx = &c, .forward = dropout_fwd, .backward = dropout_bwd, .out = c.y, .dout = c.dy, .n_out = DR_N};
  gradcheck_add(&gc, "inp", c.inp, c.dinp, DR_N);
  TEST_ASSERT(gradcheck_run(&gc, 500, GC_TOL, NULL));
  gc.backward = dropout_bwd_broken;
  TEST_ASSERT(rejects(&gc, 500));
}

/* ReLU followed by dropout, fused (nn_dropout_relu_forward / _backward). The backward writes in
 * place; the test adds its result into dinp so that the checker's "twice doubles" applies. */
typedef struct relu_dropout_ctx {
  float p;
  float inp[DR_N], dinp[DR_N], y[DR_N], dy[DR_N], tmp[DR_N];
  int broken; /* 1: the backward is told p = 0 (forgets the 1/(1-p) scale) */
} relu_dropout_ctx;

static void relu_dropout_fwd(void *p) {
  relu_dropout_ctx *c = p;
  memcpy(c->y, c->inp, sizeof c->y);
  nn_dropout_relu_forward(c->y, DR_N, c->p, 77, 3); /* fixed key: same mask each call */
}
static void relu_dropout_bwd(void *p) {
  relu_dropout_ctx *c = p;
  memcpy(c->tmp, c->dy, sizeof c->tmp);
  nn_dropout_relu_backward(c->tmp, c->y, DR_N, c->broken ? 0.0f : c->p);
  for (int i = 0; i < DR_N; i++) c->dinp[i] += c->tmp[i];
}

static void test_relu_dropout_fused(void) {
  static relu_dropout_ctx c;
  memset(&c, 0, sizeof c);
  c.p = 0.4f;
  fill_signed(c.inp, DR_N, 0.05f, 1.0f, 15); /* |x| >= 0.05 > eps: no difference crosses the kink */
  uint8_t m[DR_N];
  nn_dropout_mask(m, DR_N, c.p, 77, 3);
  relu_dropout_fwd(&c);
  int n_pass = 0;
  for (int i = 0; i < DR_N; i++) {
    const float r = c.inp[i] < 0.0f ? 0.0f : c.inp[i];
    TEST_ASSERT(c.y[i] == (m[i] ? r * (1.0f / (1.0f - c.p)) : 0.0f));
    n_pass += c.y[i] > 0.0f;
  }
  TEST_ASSERT(n_pass > 5 && n_pass < DR_N / 2); /* both the ReLU and the mask zero some */
  /* p = 0 is the plain ReLU. */
  float r0[DR_N], y0[DR_N];
  memcpy(r0, c.inp, sizeof r0);
  nn_dropout_relu_forward(r0, DR_N, 0.0f, 77, 3);
  nn_relu_forward(y0, c.inp, DR_N);
  TEST_ASSERT(memcmp(r0, y0, sizeof r0) == 0);
  gradcheck_case gc = {.ctx = &c, .forward = relu_dropout_fwd, .backward = relu_dropout_bwd, .out = c.y,
                       .dout = c.dy, .n_out = DR_N};
  gradcheck_add(&gc, "inp", c.inp, c.dinp, DR_N);
  TEST_ASSERT(gradcheck_run(&gc, 501, GC_TOL, NULL));
  c.broken = 1;
  TEST_ASSERT(rejects(&gc, 501));
}

/* ---------------------------------------------------------------------------------------------- */
/* softmax and log-softmax */

enum { SM_N = 7, SM_V = 13 };

typedef struct softmax_ctx {
  int64_t n;
  int log_form, broken;
  float t;
  float inp[SM_N * SM_V], dinp[SM_N * SM_V], y[SM_N * SM_V], dy[SM_N * SM_V];
} softmax_ctx;

static void softmax_fwd(void *p) {
  softmax_ctx *c = p;
  if (c->log_form)
    nn_log_softmax_forward(c->y, c->inp, c->n, SM_V, c->t);
  else
    nn_softmax_forward(c->y, c->inp, c->n, SM_V, c->t);
}
/* broken = 1 drops the temperature in the backward (uses T = 1). */
static void softmax_bwd(void *p) {
  softmax_ctx *c = p;
  float t = c->broken ? 1.0f : c->t;
  if (c->log_form)
    nn_log_softmax_backward(c->dinp, c->dy, c->y, c->n, SM_V, t);
  else
    nn_softmax_backward(c->dinp, c->dy, c->y, c->n, SM_V, t);
}

/* Naive softmax of row x at temperature t, in double without the max shift (inputs are small). */
static void naive_softmax_row(double *p, const float *x, int64_t v, double t) {
  double s = 0.0;
  for (int64_t j = 0; j < v; j++) s += exp((double)x[j] / t);
  for (int64_t j = 0; j < v; j++) p[j] = exp((double)x[j] / t) / s;
}

static void test_softmax_matches_naive(void) {
  static softmax_ctx c;
  int64_t rows[2] = {SM_N, 1};
  const float temps[2] = {1.0f, 0.37f};
  for (int r = 0; r < 2; r++)
    for (int ti = 0; ti < 2; ti++)
      for (int lf = 0; lf < 2; lf++) {
        memset(&c, 0, sizeof c);
        c.n = rows[r];
        c.t = temps[ti];
        c.log_form = lf;
        test_fill_uniform(c.inp, c.n * SM_V, -2, 2, 15);
        test_fill_uniform(c.dy, c.n * SM_V, -1, 1, 16);
        softmax_fwd(&c);
        for (int64_t i = 0; i < c.n * SM_V; i++) c.dinp[i] = 0.125f;
        softmax_bwd(&c);
        float ry[SM_N * SM_V], rdx[SM_N * SM_V];
        for (int64_t i = 0; i < c.n; i++) {
          double p[SM_V];
          naive_softmax_row(p, c.inp + i * SM_V, SM_V, (double)c.t);
          /* Jacobian of softmax: dp_j/dx_k = p_j (delta_jk - p_k) / T; log-softmax: (delta_jk - p_k) / T. */
          for (int k = 0; k < SM_V; k++) {
            ry[i * SM_V + k] = (float)(lf ? log(p[k]) : p[k]);
            double s = 0.125;
            for (int j = 0; j < SM_V; j++) {
              double jac = ((j == k ? 1.0 : 0.0) - p[k]) / (double)c.t;
              s += (double)c.dy[i * SM_V + j] * (lf ? jac : p[j] * jac);
            }
            rdx[i * SM_V + k] = (float)s;
          }
        }
        TEST_ASSERTF(test_max_scaled_diff(c.y, ry, c.n * SM_V, ATOL, RTOL) <= 1.0, "rows %lld T %g log %d",
                     (long long)c.n, (double)c.t, lf);
        TEST_ASSERTF(test_max_scaled_diff(c.dinp, rdx, c.n * SM_V, ATOL, RTOL) <= 1.0, "rows %lld T %g log %d",
                     (long long)c.n, (double)c.t, lf);
      }
}

static void test_softmax_gradcheck(void) {
  static softmax_ctx c;
  for (int lf = 0; lf < 2; lf++)
    for (int64_t n = 1; n <= SM_N; n += SM_N - 1) {
      memset(&c, 0, sizeof c);
      c.n = n;
      c.t = 0.5f;
      c.log_form = lf;
      test_fill_uniform(c.inp, n * SM_V, -1, 1, 17);
      gradcheck_case gc = {.ctx = &c, .forward = softmax_fwd, .backward = softmax_bwd, .out = c.y, .dout = c.dy,
                           .n_out = n * SM_V};
      gradcheck_add(&gc, "inp", c.inp, c.dinp, n * SM_V);
      TEST_ASSERTF(gradcheck_run(&gc, 600, GC_TOL, NULL), "log %d rows %lld", lf, (long long)n);
      c.broken = 1;
      TEST_ASSERTF(rejects(&gc, 600), "broken accepted: log %d rows %lld", lf,
                   (long long)n);
    }
}

/* Logits of +-1e4 and 1e30: finite, rows sum to 1, log-softmax finite where p > 0 and equal to
 * log(softmax) where that is representable. */
static void test_softmax_large_logits(void) {
  enum { V = 6 };
  float x[2 * V] = {1e4f, -1e4f, 9999.0f, 0.0f, 1e4f, 3.0f, 1e30f, 1e30f, -1e30f, 0.0f, 1e30f, 1e29f};
  float p[2 * V], lp[2 * V];
  for (int t = 0; t < 2; t++) {
    float temp = t ? 0.1f : 1.0f;
    nn_softmax_forward(p, x, 2, V, temp);
    nn_log_softmax_forward(lp, x, 2, V, temp);
    for (int i = 0; i < 2; i++) {
      double s = 0.0;
      for (int j = 0; j < V; j++) {
        TEST_ASSERT(isfinite(p[i * V + j]) && p[i * V + j] >= 0.0f);
        TEST_ASSERT(!isnan(lp[i * V + j]) && lp[i * V + j] <= 0.0f);
        if (p[i * V + j] > 1e-30f) TEST_NEAR(lp[i * V + j], log((double)p[i * V + j]), 1e-5);
        s += (double)p[i * V + j];
      }
      TEST_NEAR(s, 1.0, 1e-6);
    }
    /* Row 0 at T = 1: the two 1e4 entries share the mass with 9999 at e^-1 of theirs. */
    if (t == 0) TEST_NEAR(p[0], 1.0 / (2.0 + exp(-1.0)), 1e-6);
    /* Row 1: three equal maxima share the mass. */
    TEST_NEAR(p[V + 0], 1.0 / 3.0, 1e-6);
  }
}

/* softmax(x, T) == softmax(x / T, 1): the temperature divides the logits. */
static void test_softmax_temperature(void) {
  float x[SM_V], xs[SM_V], a[SM_V], b[SM_V];
  test_fill_uniform(x, SM_V, -3, 3, 18);
  for (int j = 0; j < SM_V; j++) xs[j] = x[j] / 2.5f;
  nn_softmax_forward(a, x, 1, SM_V, 2.5f);
  nn_softmax_forward(b, xs, 1, SM_V, 1.0f);
  TEST_ASSERT(test_max_scaled_diff(a, b, SM_V, 1e-7, 1e-5) <= 1.0);
  /* A higher temperature flattens: entropy grows. */
  double h1 = 0.0, h2 = 0.0;
  nn_softmax_forward(b, x, 1, SM_V, 1.0f);
  for (int j = 0; j < SM_V; j++) {
    h1 -= (double)b[j] * log((double)b[j]);
    h2 -= (double)a[j] * log((double)a[j]);
  }
  TEST_ASSERT(h2 > h1);
}

int main(void) {
  TEST_RUN(test_gemm_matches_naive);
  TEST_RUN(test_linear_matches_naive);
  TEST_RUN(test_linear_gradcheck);
  TEST_RUN(test_embedding);
  TEST_RUN(test_layernorm_matches_naive);
  TEST_RUN(test_layernorm_gradcheck);
  TEST_RUN(test_layernorm_offset_row);
  TEST_RUN(test_relu);
  TEST_RUN(test_dropout_mask_statistics);
  TEST_RUN(test_dropout_mask_pieces);
  TEST_RUN(test_dropout_apply_and_identity);
  TEST_RUN(test_dropout_gradcheck);
  TEST_RUN(test_relu_dropout_fused);
  TEST_RUN(test_softmax_matches_naive);
  TEST_RUN(test_softmax_gradcheck);
  TEST_RUN(test_softmax_large_logits);
  TEST_RUN(test_softmax_temperature);
  return test_summary();
}
