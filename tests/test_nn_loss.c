/* test_nn_loss.c: nn_loss (BCE with logits, MSE, NLL, softmax entropy; method.md sections 5-8).
 *
 * Each loss: forward against a naive formula in double on an odd size and n = 1; central
 * differences through gradcheck_run (the scalar loss is the layer's single output, so the checker's
 * <R, out> = R * loss and dout[0] = R is passed as the backward's scale, which also tests scale);
 * a broken backward the checker must reject; and the numerical edge cases (|x| = 100, uniform
 * entropy = log v, p = 0 entries). NLL and entropy are checked through (log-)softmax w.r.t. the
 * logits, the way the learner uses them.
 *
 * Gradcheck tolerance GC_TOL = 1e-2: eps 1e-2 central differences of smooth O(1) losses have a
 * truncation error ~1e-4 relative; the loss is stored as float32 (rounding ~1e-7, divided by
 * 2 eps ~1e-5). Each broken backward is off by >= 50%. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_rng.h"
#include "common/nn/nn_loss.h"
#include "common/nn/nn_softmax.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

#define GC_TOL 1e-2

enum { N = 7, V = 13 };

/* Runs the checker on a deliberately broken backward; 1 when it is rejected (its "FAIL" line in
 * the log is the expected outcome). */
static int rejects(gradcheck_case *gc, uint64_t seed) {
  printf("  deliberately broken backward, must be rejected:\n");
  return gradcheck_run(gc, seed, GC_TOL, NULL) == 0;
}

typedef struct loss_ctx {
  int64_t n;
  int broken;
  float x[N * V], dx[N * V];     /* logits or predictions */
  float y[N * V];                /* targets */
  int32_t idx[N];
  float p[N * V], dp[N * V];     /* probs / log-probs and their gradient scratch */
  float loss, dloss;
} loss_ctx;

/* ---------------------------------------------------------------------------------------------- */
/* BCE with logits */

static void bce_fwd(void *q) {
  loss_ctx *c = q;
  c->loss = (float)nn_bce_with_logits_forward(c->x, c->y, c->n);
}
/* broken = 1 forgets the 1/n of the mean. */
static void bce_bwd(void *q) {
  loss_ctx *c = q;
  nn_bce_with_logits_backward(c->dx, c->x, c->y, c->n, c->broken ? c->dloss * (float)c->n : c->dloss);
}

static void test_bce(void) {
  static loss_ctx c;
  for (int64_t n = 1; n <= N; n += N - 1) {
    memset(&c, 0, sizeof c);
    c.n = n;
    test_fill_uniform(c.x, n, -4, 4, 1);
    test_fill_uniform(c.y, n, 0, 1, 2); /* soft targets are allowed */
    double ref = 0.0;
    for (int64_t i = 0; i < n; i++) {
      double s = 1.0 / (1.0 + exp(-(double)c.x[i])), t = c.y[i];
      ref -= t * log(s) + (1.0 - t) * log(1.0 - s);
    }
    ref /= (double)n;
    TEST_NEAR(nn_bce_with_logits_forward(c.x, c.y, n), ref, 1e-12 + 1e-9 * fabs(ref));
    gradcheck_case gc = {.ctx = &c, .forward = bce_fwd, .backward = bce_bwd, .out = &c.loss, .dout = &c.dloss, .n_out = 1};
    gradcheck_add(&gc, "logits", c.x, c.dx, n);
    TEST_ASSERT(gradcheck_run(&gc, 10 + (uint64_t)n, GC_TOL, NULL));
    /* With n = 1 the missing 1/n is invisible: the broken variant is checked on n = 7 only. */
    if (n > 1) {
      c.broken = 1;
      TEST_ASSERT(rejects(&gc, 10 + (uint64_t)n));
    }
  }
}

static void test_bce_extreme_logits(void) {
  const float x[4] = {100.0f, -100.0f, 100.0f, -100.0f}, y[4] = {0.0f, 0.0f, 1.0f, 1.0f};
  double want[4] = {100.0, 0.0, 0.0, 100.0};
  for (int i = 0; i < 4; i++) {
    double l = nn_bce_with_logits_forward(x + i, y + i, 1);
    TEST_ASSERTF(isfinite(l), "x %g y %g: %g", (double)x[i], (double)y[i], l);
    TEST_NEAR(l, want[i], 1e-12);
    float g = 0.0f;
    nn_bce_with_logits_backward(&g, x + i, y + i, 1, 1.0f);
    TEST_ASSERT(isfinite(g));
    /* sigmoid(100) - 0 = 1, sigmoid(-100) - 1 = -1, the others ~ 0. */
    TEST_NEAR(g, (i == 0) - (i == 3), 1e-12);
  }
  /* log1p keeps the tiny tail: BCE(30, y=1) = log1p(e^-30) ~ 9.36e-14, not 0. */
  float x30 = 30.0f, one = 1.0f;
  TEST_NEAR(nn_bce_with_logits_forward(&x30, &one, 1) / exp(-30.0), 1.0, 1e-9);
}

/* ---------------------------------------------------------------------------------------------- */
/* MSE */

static void mse_fwd(void *q) {
  loss_ctx *c = q;
  c->loss = (float)nn_mse_forward(c->x, c->y, c->n);
}
/* broken = 1 drops the factor 2 of d(e^2)/de. */
static void mse_bwd(void *q) {
  loss_ctx *c = q;
  nn_mse_backward(c->dx, c->x, c->y, c->n, c->broken ? 0.5f * c->dloss : c->dloss);
}

static void test_mse(void) {
  static loss_ctx c;
  for (int64_t n = 1; n <= N; n += N - 1) {
    memset(&c, 0, sizeof c);
    c.n = n;
    test_fill_uniform(c.x, n, -2, 2, 3);
    test_fill_uniform(c.y, n, -2, 2, 4);
    double ref = 0.0;
    for (int64_t i = 0; i < n; i++) ref += ((double)c.x[i] - (double)c.y[i]) * ((double)c.x[i] - (double)c.y[i]);
    ref /= (double)n;
    TEST_NEAR(nn_mse_forward(c.x, c.y, n), ref, 1e-12);
    gradcheck_case gc = {.ctx = &c, .forward = mse_fwd, .backward = mse_bwd, .out = &c.loss, .dout = &c.dloss, .n_out = 1};
    gradcheck_add(&gc, "pred", c.x, c.dx, n);
    TEST_ASSERT(gradcheck_run(&gc, 20 + (uint64_t)n, GC_TOL, NULL));
    c.broken = 1;
    TEST_ASSERT(rejects(&gc, 20 + (uint64_t)n));
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* NLL through log-softmax (temperature 0.7), gradient w.r.t. the logits */

static void nll_fwd(void *q) {
  loss_ctx *c = q;
  nn_log_softmax_forward(c->p, c->x, c->n, V, 0.7f);
  c->loss = (float)nn_nll_forward(c->p, c->idx, c->n, V);
}
/* broken = 1 gets the sign wrong (gradient of +mean logp). */
static void nll_bwd(void *q) {
  loss_ctx *c = q;
  memset(c->dp, 0, sizeof c->dp);
  nn_nll_backward(c->dp, c->idx, c->n, V, c->broken ? -c->dloss : c->dloss);
  nn_log_softmax_backward(c->dx, c->dp, c->p, c->n, V, 0.7f);
}

static void test_nll(void) {
  static loss_ctx c;
  for (int64_t n = 1; n <= N; n += N - 1) {
    memset(&c, 0, sizeof c);
    c.n = n;
    test_fill_uniform(c.x, n * V, -2, 2, 5);
    hsrl_rng r;
    hsrl_rng_init(&r, 6, 0);
    for (int64_t i = 0; i < n; i++) c.idx[i] = (int32_t)hsrl_rng_below(&r, V);
    nll_fwd(&c);
    double ref = 0.0;
    for (int64_t i = 0; i < n; i++) {
      double s = 0.0;
      for (int j = 0; j < V; j++) s += exp((double)c.x[i * V + j] / 0.7);
      ref -= (double)c.x[i * V + c.idx[i]] / 0.7 - log(s);
    }
    ref /= (double)n;
    TEST_NEAR(nn_nll_forward(c.p, c.idx, n, V), ref, 1e-6);
    /* Direct gradient: -scale / n at the chosen entries only, added. */
    memset(c.dp, 0, sizeof c.dp);
    c.dp[0] = 1.0f;
    nn_nll_backward(c.dp, c.idx, n, V, 2.0f);
    for (int64_t i = 0; i < n; i++)
      for (int j = 0; j < V; j++) {
        double want = (i == 0 && j == 0 ? 1.0 : 0.0) + (j == c.idx[i] ? -2.0 / (double)n : 0.0);
        TEST_NEAR(c.dp[i * V + j], want, 1e-7);
      }
    gradcheck_case gc = {.ctx = &c, .forward = nll_fwd, .backward = nll_bwd, .out = &c.loss, .dout = &c.dloss, .n_out = 1};
    gradcheck_add(&gc, "logits", c.x, c.dx, n * V);
    TEST_ASSERT(gradcheck_run(&gc, 30 + (uint64_t)n, GC_TOL, NULL));
    c.broken = 1;
    TEST_ASSERT(rejects(&gc, 30 + (uint64_t)n));
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* entropy of softmax(logits) */

static void entropy_fwd(void *q) {
  loss_ctx *c = q;
  nn_softmax_forward(c->p, c->x, c->n, V, 1.0f);
  c->loss = (float)nn_entropy_forward(NULL, c->p, c->n, V);
}
static void entropy_bwd(void *q) {
  loss_ctx *c = q;
  nn_entropy_backward(c->dx, c->p, c->n, V, c->dloss);
}
/* Broken: the plausible but wrong -p (log p + 1) / n, i.e. dH/dp taken for dH/dlogits' diagonal
 * without the softmax coupling. */
static void entropy_bwd_broken(void *q) {
  loss_ctx *c = q;
  for (int64_t i = 0; i < c->n * V; i++)
    c->dx[i] += (float)(-(double)c->dloss * (double)c->p[i] * (log((double)c->p[i]) + 1.0) / (double)c->n);
}

static void test_entropy(void) {
  static loss_ctx c;
  for (int64_t n = 1; n <= N; n += N - 1) {
    memset(&c, 0, sizeof c);
    c.n = n;
    test_fill_uniform(c.x, n * V, -2, 2, 7);
    entropy_fwd(&c);
    float ent[N];
    double mean = nn_entropy_forward(ent, c.p, n, V), ref = 0.0;
    for (int64_t i = 0; i < n; i++) {
      double h = 0.0;
      for (int j = 0; j < V; j++) h -= (double)c.p[i * V + j] * log((double)c.p[i * V + j]);
      TEST_NEAR(ent[i], h, 1e-6);
      ref += h;
    }
    TEST_NEAR(mean, ref / (double)n, 1e-9);
    gradcheck_case gc = {.ctx = &c, .forward = entropy_fwd, .backward = entropy_bwd, .out = &c.loss, .dout = &c.dloss, .n_out = 1};
    gradcheck_add(&gc, "logits", c.x, c.dx, n * V);
    TEST_ASSERT(gradcheck_run(&gc, 40 + (uint64_t)n, GC_TOL, NULL));
    gc.backward = entropy_bwd_broken;
    TEST_ASSERT(rejects(&gc, 40 + (uint64_t)n));
  }
}

/* Uniform rows: H = log v and zero gradient (the maximum); rows with exact zeros stay finite. */
static void test_entropy_edge_cases(void) {
  float p[2 * V], ent[2], g[2 * V];
  for (int j = 0; j < 2 * V; j++) p[j] = 1.0f / V;
  double h = nn_entropy_forward(ent, p, 2, V);
  TEST_NEAR(h, log((double)V), 1e-6);
  TEST_NEAR(ent[1], log((double)V), 1e-6);
  memset(g, 0, sizeof g);
  nn_entropy_backward(g, p, 2, V, 1.0f);
  for (int j = 0; j < 2 * V; j++) TEST_NEAR(g[j], 0.0, 1e-7);
  /* One-hot: H = 0, gradient 0; half/half with zeros: H = log 2. */
  float x[2 * V];
  for (int j = 0; j < 2 * V; j++) x[j] = -1e4f;
  x[3] = 0.0f;
  x[V + 1] = 0.0f;
  x[V + 5] = 0.0f;
  nn_softmax_forward(p, x, 2, V, 1.0f);
  h = nn_entropy_forward(ent, p, 2, V);
  TEST_NEAR(ent[0], 0.0, 1e-12);
  TEST_NEAR(ent[1], log(2.0), 1e-6);
  TEST_NEAR(h, 0.5 * log(2.0), 1e-6);
  memset(g, 0, sizeof g);
  nn_entropy_backward(g, p, 2, V, 1.0f);
  for (int j = 0; j < 2 * V; j++) TEST_ASSERT(isfinite(g[j]) && fabs((double)g[j]) < 1e-6);
}

int main(void) {
  TEST_RUN(test_bce);
  TEST_RUN(test_bce_extreme_logits);
  TEST_RUN(test_mse);
  TEST_RUN(test_nll);
  TEST_RUN(test_entropy);
  TEST_RUN(test_entropy_edge_cases);
  return test_summary();
}
