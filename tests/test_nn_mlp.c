/* test_nn_mlp.c: nn_mlp, the critic MLP block (method.md section 7).
 *
 * Checks: the parameter layout and cache size; torch-default init; forward against a naive
 * double-precision reference built here (masks drawn with nn_dropout_mask, tested in
 * test_nn_layers); eval mode ignores dropout; masks depend on absolute rows only (a batch split at
 * any row gives the same outputs); central differences on inputs and every parameter with p = 0
 * and with a fixed p = 0.5 mask (the masks are a function of the key, so the loss is a fixed
 * function for finite differences); a broken backward (train flag lost, so no mask or 1/(1-p)) that
 * the checker must reject; the random-direction check; no allocation in forward or backward.
 *
 * Gradcheck tolerance GC_TOL = 1e-2 with eps GC_EPS = 1e-2 in float32 (style.md): LayerNorm over
 * narrow layers whose inputs are half zero (ReLU, dropout) is strongly curved, and the truncation
 * error of the central difference reaches ~6e-3 here; smaller steps trade it for float32 rounding
 * of the outputs (~1e-2 at eps 1e-3). Every broken backward is off by > 50%. A step must not cross a
 * ReLU kink either: relu_margin_ok shifts the hidden biases so that every pre-activation is at least
 * MARGIN from 0, more than a step moves it (eps * |LayerNorm output| <~ 0.04). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_mlp.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

#define GC_TOL 1e-2
#define GC_EPS 1e-2

/* ---------------------------------------------------------------------------------------------- */
/* naive reference */

/* out (n, out_dim) in double-accumulated float; z_min gets min |pre-activation| over hidden units. */
static void naive_mlp(float *out, double *z_min, const float *params, const float *inp, int64_t n,
                      const nn_mlp_config *cfg, int train, uint64_t key, uint64_t row_offset) {
  int64_t maxw = cfg->in_dim > cfg->out_dim ? cfg->in_dim : cfg->out_dim;
  for (int l = 0; l < cfg->n_hidden; l++)
    if (cfg->hidden[l] > maxw) maxw = cfg->hidden[l];
  double *x = hsrl_malloc((size_t)(n * maxw) * sizeof(double));
  double *z = hsrl_malloc((size_t)(n * maxw) * sizeof(double));
  uint8_t *mask = hsrl_malloc((size_t)(n * maxw));
  for (int64_t i = 0; i < n * cfg->in_dim; i++) x[i] = inp[i];
  *z_min = INFINITY;
  int64_t in = cfg->in_dim, off = 0;
  for (int l = 0; l <= cfg->n_hidden; l++) {
    int last = l == cfg->n_hidden;
    int64_t h = last ? cfg->out_dim : cfg->hidden[l];
    const float *w = params + off, *b = w + h * in;
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < h; o++) {
        double s = (double)b[o];
        for (int64_t k = 0; k < in; k++) s += (double)w[o * in + k] * x[i * in + k];
        z[i * h + o] = s;
      }
    if (last) {
      for (int64_t i = 0; i < n * h; i++) out[i] = (float)z[i];
      break;
    }
    const float *gamma = b + h, *beta = gamma + h;
    float p = train ? cfg->dropout : 0.0f;
    nn_dropout_mask(mask, n * h, p, hsrl_rng_derive(key, (uint64_t)l), row_offset * (uint64_t)h);
    for (int64_t i = 0; i < n * h; i++) {
      if (fabs(z[i]) < *z_min) *z_min = fabs(z[i]);
      double r = z[i] > 0 ? z[i] : 0.0;
      z[i] = mask[i] ? r / (1.0 - (double)p) : 0.0;
    }
    for (int64_t i = 0; i < n; i++) {
      double m = 0.0, v = 0.0;
      for (int64_t o = 0; o < h; o++) m += z[i * h + o];
      m /= (double)h;
      for (int64_t o = 0; o < h; o++) v += (z[i * h + o] - m) * (z[i * h + o] - m);
      v /= (double)h;
      double rs = 1.0 / sqrt(v + 1e-5);
      for (int64_t o = 0; o < h; o++) x[i * h + o] = (z[i * h + o] - m) * rs * (double)gamma[o] + (double)beta[o];
    }
    off += h * in + 3 * h;
    in = h;
  }
  hsrl_free(x);
  hsrl_free(z);
  hsrl_free(mask);
}

/* ---------------------------------------------------------------------------------------------- */

static nn_mlp_config small_config(float p) {
  nn_mlp_config cfg = {.in_dim = 6, .n_hidden = 2, .hidden = {9, 7}, .out_dim = 3, .dropout = p};
  return cfg;
}

static void test_layout(void) {
  nn_mlp_config cfg = small_config(0.0f);
  int64_t want = (9 * 6 + 3 * 9) + (7 * 9 + 3 * 7) + (3 * 7 + 3);
  TEST_ASSERT(nn_mlp_n_params(&cfg) == want);
  int64_t next = 0;
  for (int l = 0; l <= cfg.n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(&cfg, l);
    TEST_ASSERT(v.w == next);
    TEST_ASSERT(v.b == v.w + v.in_dim * v.out_dim);
    if (l < cfg.n_hidden) {
      TEST_ASSERT(v.gamma == v.b + v.out_dim && v.beta == v.gamma + v.out_dim);
      next = v.beta + v.out_dim;
    } else {
      TEST_ASSERT(v.gamma == -1 && v.beta == -1);
      next = v.b + v.out_dim;
    }
  }
  TEST_ASSERT(next == want);
  /* The critic of method.md section 7 on d = 32: 32*256+256 + 2*256 + 256*64+64 + 2*64 + 64+1. */
  nn_mlp_config critic = {.in_dim = 32, .n_hidden = 2, .hidden = {256, 64}, .out_dim = 1, .dropout = 0.2f};
  TEST_ASSERT(nn_mlp_n_params(&critic) == 32 * 256 + 3 * 256 + 256 * 64 + 3 * 64 + 64 + 1);
  nn_mlp_config plain = {.in_dim = 5, .n_hidden = 0, .out_dim = 2};
  TEST_ASSERT(nn_mlp_n_params(&plain) == 12);
  TEST_ASSERT(nn_mlp_cache_floats(&plain, 10) == 0);
  /* Cache: 2 activations + mean/rstd per layer (no mask: ReLU and dropout are one pass), two
   * scratch buffers. */
  TEST_ASSERT(nn_mlp_cache_floats(&cfg, 5) == (2 * 45 + 10) + (2 * 35 + 10) + 2 * 45);
}

static void test_init(void) {
  nn_mlp_config cfg = {.in_dim = 40, .n_hidden = 2, .hidden = {256, 64}, .out_dim = 1, .dropout = 0.2f};
  int64_t np = nn_mlp_n_params(&cfg);
  float *params = hsrl_malloc((size_t)np * sizeof(float));
  hsrl_rng r;
  hsrl_rng_init(&r, 3, 0);
  nn_mlp_init(params, &cfg, &r);
  for (int l = 0; l <= cfg.n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(&cfg, l);
    double bound = 1.0 / sqrt((double)v.in_dim), mx = 0.0, s = 0.0, s2 = 0.0;
    int64_t nw = v.in_dim * v.out_dim;
    for (int64_t i = 0; i < nw; i++) {
      double w = params[v.w + i];
      if (fabs(w) > mx) mx = fabs(w);
      s += w;
      s2 += w * w;
    }
    for (int64_t i = 0; i < v.out_dim; i++) TEST_ASSERT(fabs((double)params[v.b + i]) <= bound);
    TEST_ASSERT(mx <= bound && mx > 0.95 * bound);
    /* U(-a, a): mean 0, variance a^2 / 3. */
    TEST_NEAR(s / (double)nw, 0.0, 4.0 * bound / sqrt(3.0 * (double)nw));
    TEST_NEAR(s2 / (double)nw / (bound * bound / 3.0), 1.0, 0.15);
    if (l < cfg.n_hidden)
      for (int64_t i = 0; i < v.out_dim; i++) TEST_ASSERT(params[v.gamma + i] == 1.0f && params[v.beta + i] == 0.0f);
  }
  hsrl_free(params);
}

/* Forward against the naive reference: small and critic-sized configs, n = 7 and n = 1, eval and
 * train with dropout. Also: eval ignores dropout; a different key changes the train output. */
static void test_forward_matches_naive(void) {
  nn_mlp_config cfgs[2] = {small_config(0.5f),
                           {.in_dim = 24, .n_hidden = 2, .hidden = {256, 64}, .out_dim = 1, .dropout = 0.2f}};
  for (int ci = 0; ci < 2; ci++)
    for (int64_t n = 7; n >= 1; n -= 6)
      for (int train = 0; train < 2; train++) {
        nn_mlp_config *cfg = &cfgs[ci];
        int64_t np = nn_mlp_n_params(cfg);
        float *params = hsrl_malloc((size_t)np * sizeof(float));
        float *cache = hsrl_malloc((size_t)nn_mlp_cache_floats(cfg, n) * sizeof(float));
        float *inp = hsrl_malloc((size_t)(n * cfg->in_dim) * sizeof(float));
        float out[7 * 3], ref[7 * 3], other[7 * 3];
        hsrl_rng r;
        hsrl_rng_init(&r, 4, 0);
        nn_mlp_init(params, cfg, &r);
        test_fill_uniform(inp, n * cfg->in_dim, -1, 1, 5);
        nn_mlp_forward(out, cache, params, inp, n, cfg, train, 42, 11);
        double zmin;
        naive_mlp(ref, &zmin, params, inp, n, cfg, train, 42, 11);
        double d = test_max_scaled_diff(out, ref, n * cfg->out_dim, 1e-5, 1e-4);
        nn_mlp_forward(other, cache, params, inp, n, cfg, train, 43, 11);
        int changed = memcmp(other, out, (size_t)(n * cfg->out_dim) * sizeof(float)) != 0;
        hsrl_free(params);
        hsrl_free(cache);
        hsrl_free(inp);
        TEST_ASSERTF(d <= 1.0, "config %d n %lld train %d: scaled diff %g", ci, (long long)n, train, d);
        TEST_ASSERTF(changed == train, "config %d n %lld train %d: key changed output: %d", ci, (long long)n,
                     train, changed);
      }
}

/* Rows 3..6 of a 7-row batch at row_offset 0 equal a 4-row batch at row_offset 3. */
static void test_masks_follow_rows(void) {
  nn_mlp_config cfg = small_config(0.5f);
  enum { NR = 7, SPLIT = 3 };
  float params[400], inp[NR * 6], out_all[NR * 3], out_part[NR * 3];
  float *cache = hsrl_malloc((size_t)nn_mlp_cache_floats(&cfg, NR) * sizeof(float));
  TEST_ASSERT(nn_mlp_n_params(&cfg) <= 400);
  hsrl_rng r;
  hsrl_rng_init(&r, 6, 0);
  nn_mlp_init(params, &cfg, &r);
  test_fill_uniform(inp, NR * 6, -1, 1, 7);
  nn_mlp_forward(out_all, cache, params, inp, NR, &cfg, 1, 99, 0);
  nn_mlp_forward(out_part, cache, params, inp + SPLIT * 6, NR - SPLIT, &cfg, 1, 99, SPLIT);
  double d = test_max_scaled_diff(out_part, out_all + SPLIT * 3, (NR - SPLIT) * 3, 1e-6, 1e-5);
  /* Without the offset the masks (and outputs) differ. */
  nn_mlp_forward(out_part, cache, params, inp + SPLIT * 6, NR - SPLIT, &cfg, 1, 99, 0);
  double d0 = test_max_scaled_diff(out_part, out_all + SPLIT * 3, (NR - SPLIT) * 3, 1e-6, 1e-5);
  hsrl_free(cache);
  TEST_ASSERTF(d <= 1.0, "split batch differs: %g", d);
  TEST_ASSERT(d0 > 1.0);
}

/* ---------------------------------------------------------------------------------------------- */
/* gradcheck */

#define MARGIN 0.05

typedef struct mlp_ctx {
  nn_mlp_config cfg;
  int64_t n, np;
  int train, broken;
  float *params, *dparams, *inp, *dinp, *cache, *out, *dout;
} mlp_ctx;

static void mlp_fwd(void *q) {
  mlp_ctx *c = q;
  nn_mlp_forward(c->out, c->cache, c->params, c->inp, c->n, &c->cfg, c->train, 1234, 5);
}
/* broken = 1: the train flag is lost in the backward (no mask, no 1/(1-p)). */
static void mlp_bwd(void *q) {
  mlp_ctx *c = q;
  nn_mlp_backward(c->dinp, c->dparams, c->cache, c->dout, c->params, c->inp, c->n, &c->cfg,
                  c->broken ? 0 : c->train);
}

static void mlp_ctx_init(mlp_ctx *c, nn_mlp_config cfg, int64_t n, int train, uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->cfg = cfg;
  c->n = n;
  c->train = train;
  c->np = nn_mlp_n_params(&cfg);
  c->params = hsrl_malloc((size_t)c->np * sizeof(float));
  c->dparams = hsrl_malloc((size_t)c->np * sizeof(float));
  c->inp = hsrl_malloc((size_t)(n * cfg.in_dim) * sizeof(float));
  c->dinp = hsrl_malloc((size_t)(n * cfg.in_dim) * sizeof(float));
  c->cache = hsrl_malloc((size_t)nn_mlp_cache_floats(&cfg, n) * sizeof(float) + 1);
  c->out = hsrl_malloc((size_t)(n * cfg.out_dim) * sizeof(float));
  c->dout = hsrl_malloc((size_t)(n * cfg.out_dim) * sizeof(float));
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  nn_mlp_init(c->params, &cfg, &r);
  /* Non-trivial LayerNorm affine parameters, so their gradients are exercised off (1, 0). */
  for (int l = 0; l < cfg.n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(&cfg, l);
    for (int64_t i = 0; i < v.out_dim; i++) {
      c->params[v.gamma + i] = 0.5f + hsrl_rng_uniform(&r);
      c->params[v.beta + i] = 0.4f * hsrl_rng_uniform(&r) - 0.2f;
    }
  }
  test_fill_uniform(c->inp, n * cfg.in_dim, -1, 1, seed + 1);
}

static void mlp_ctx_free(mlp_ctx *c) {
  hsrl_free(c->params);
  hsrl_free(c->dparams);
  hsrl_free(c->inp);
  hsrl_free(c->dinp);
  hsrl_free(c->cache);
  hsrl_free(c->out);
  hsrl_free(c->dout);
}

/* Shifts each hidden unit's bias (layer by layer, as later layers see earlier ones) by the delta in
 * [-0.3, 0.3] that keeps its pre-activations over all rows farthest from 0, so that no finite
 * difference step (which moves a pre-activation by ~GC_EPS * |input| <~ 0.04) crosses a ReLU
 * kink. The function stays a generic point of the network. Returns min |pre-activation|. */
static double relu_margin_ok(mlp_ctx *c) {
  for (int l = 0; l < c->cfg.n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(&c->cfg, l);
    nn_mlp_config sub = c->cfg;
    sub.n_hidden = l; /* the network truncated before layer l's ReLU: outputs its pre-activations */
    sub.out_dim = v.out_dim;
    double unused;
    float *z = hsrl_malloc((size_t)(c->n * v.out_dim) * sizeof(float));
    naive_mlp(z, &unused, c->params, c->inp, c->n, &sub, c->train, 1234, 5);
    for (int64_t o = 0; o < v.out_dim; o++) {
      double best = -1.0, best_delta = 0.0;
      for (int k = -30; k <= 30; k++) {
        double delta = 0.01 * k, m = INFINITY;
        for (int64_t i = 0; i < c->n; i++) m = fmin(m, fabs((double)z[i * v.out_dim + o] + delta));
        if (m > best) {
          best = m;
          best_delta = delta;
        }
      }
      c->params[v.b + o] += (float)best_delta;
    }
    hsrl_free(z);
  }
  double zmin;
  float *tmp = hsrl_malloc((size_t)(c->n * c->cfg.out_dim) * sizeof(float));
  naive_mlp(tmp, &zmin, c->params, c->inp, c->n, &c->cfg, c->train, 1234, 5);
  hsrl_free(tmp);
  return zmin;
}

static void run_mlp_gradcheck(nn_mlp_config cfg, int64_t n, int train, uint64_t seed, int expect_pass,
                              int broken, gradcheck_result *res, int *ok) {
  mlp_ctx c;
  mlp_ctx_init(&c, cfg, n, train, seed);
  c.broken = broken;
  double zmin = relu_margin_ok(&c);
  gradcheck_case gc = {.ctx = &c, .forward = mlp_fwd, .backward = mlp_bwd, .out = c.out, .dout = c.dout,
                       .n_out = n * cfg.out_dim};
  gc.eps = GC_EPS;
  gradcheck_add(&gc, "inp", c.inp, c.dinp, n * cfg.in_dim);
  gradcheck_add(&gc, "params", c.params, c.dparams, c.np);
  if (broken) printf("  deliberately broken backward, must be rejected:\n");
  int pass = gradcheck_run(&gc, seed + 2, GC_TOL, res);
  int dir = gradcheck_direction(&gc, seed + 3, 1e-3, 1e-2, NULL);
  mlp_ctx_free(&c);
  *ok = zmin >= MARGIN && pass == expect_pass && (broken || dir);
}

static void test_gradcheck_no_dropout(void) {
  int ok;
  gradcheck_result res;
  run_mlp_gradcheck(small_config(0.0f), 5, 1, 10, 1, 0, &res, &ok);
  TEST_ASSERTF(ok, "max err %g", res.max_err);
  run_mlp_gradcheck(small_config(0.0f), 1, 1, 20, 1, 0, &res, &ok);
  TEST_ASSERTF(ok, "1 row: max err %g", res.max_err);
  /* Eval mode with p > 0 configured: dropout is off. */
  run_mlp_gradcheck(small_config(0.5f), 5, 0, 30, 1, 0, &res, &ok);
  TEST_ASSERTF(ok, "eval: max err %g", res.max_err);
  /* No hidden layer, and one hidden layer. */
  nn_mlp_config plain = {.in_dim = 5, .n_hidden = 0, .out_dim = 2};
  run_mlp_gradcheck(plain, 4, 1, 40, 1, 0, &res, &ok);
  TEST_ASSERTF(ok, "plain: max err %g", res.max_err);
  nn_mlp_config one = {.in_dim = 5, .n_hidden = 1, .hidden = {11}, .out_dim = 2, .dropout = 0.3f};
  run_mlp_gradcheck(one, 4, 1, 50, 1, 0, &res, &ok);
  TEST_ASSERTF(ok, "one hidden: max err %g", res.max_err);
}

static void test_gradcheck_fixed_dropout(void) {
  int ok;
  gradcheck_result res;
  run_mlp_gradcheck(small_config(0.5f), 5, 1, 60, 1, 0, &res, &ok);
  TEST_ASSERTF(ok, "max err %g", res.max_err);
  /* The train flag lost in the backward: rejected. */
  run_mlp_gradcheck(small_config(0.5f), 5, 1, 60, 0, 1, &res, &ok);
  TEST_ASSERTF(ok, "broken backward accepted: max err %g", res.max_err);
}

/* Steady state: forward and backward allocate nothing. */
static void test_no_allocation(void) {
  mlp_ctx c;
  mlp_ctx_init(&c, small_config(0.2f), 6, 1, 70);
  memset(c.dparams, 0, (size_t)c.np * sizeof(float));
  test_fill_uniform(c.dout, 6 * 3, -1, 1, 71);
  int64_t before = hsrl_alloc_count();
  for (int i = 0; i < 3; i++) {
    mlp_fwd(&c);
    mlp_bwd(&c);
  }
  int64_t after = hsrl_alloc_count();
  int finite = 1;
  for (int64_t i = 0; i < c.np; i++) finite &= isfinite(c.dparams[i]) != 0;
  mlp_ctx_free(&c);
  TEST_ASSERT(after == before);
  TEST_ASSERT(finite);
}

int main(void) {
  TEST_RUN(test_layout);
  TEST_RUN(test_init);
  TEST_RUN(test_forward_matches_naive);
  TEST_RUN(test_masks_follow_rows);
  TEST_RUN(test_gradcheck_no_dropout);
  TEST_RUN(test_gradcheck_fixed_dropout);
  TEST_RUN(test_no_allocation);
  return test_summary();
}
