/* test_nn_transformer.c: the post-norm transformer encoder layer (common/nn/nn_transformer.h;
 * method.md section 6) and a whole SASRec-shaped state encoder built from it.
 *
 * - layout and torch-like initialisation;
 * - fast vs a naive double-precision reference written here (forward of the full and the last-n_q
 *   layer, every dropout mask re-derived from its documented counter), and the fast backward vs
 *   central differences of the naive forward in double (h = 1e-6); the forward also at a shape
 *   whose rows span several of the pieces the masks are drawn in;
 * - the last-n_q output equals the last rows of the full output (dropout on);
 * - central differences with loss <R, out> (float32, eps 1e-2) on x and every parameter, masks and
 *   fixed dropout masks (p = 0.3), full and last-n_q; backward twice doubles;
 * - deliberately broken backwards (one that ignores the dropout masks, one that reads the cache of
 *   another dropout draw) are rejected by the same checker;
 * - the SASRec-shaped stack item_map -> +pos -> dropout -> LayerNorm -> 2 layers (causal + left
 *   padding) -> last position -> linear head passes the random-direction check (and a sampled
 *   element-wise check) for every parameter and the input, rejects a broken layer backward, and
 *   its top layer computed for the last position only matches the full top layer. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_params.h"
#include "common/nn/nn_transformer.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

/* Central differences in float32 with eps 1e-2 (style.md). Through two LayerNorms the truncation
 * error of eps 1e-2 reaches ~1% on gradients near the 1e-2 floor; the backward itself agrees with
 * double-precision differences (h = 1e-6) to ~3e-6 (check_fast_vs_naive), and the broken
 * backwards below give errors near 2. */
#define GRAD_TOL 2e-2

/* ---------------------------------------------------------------- naive reference (double) */

typedef struct ref_cfg {
  nn_transformer_shape s;
  int causal;
  const uint8_t *pad; /* (B, T) or NULL */
  float p;
  uint64_t key, offset;
} ref_cfg;

/* Keep scale of one element of dropout site `site` at counter ctr (nn_transformer.h). */
static double ref_keep(const ref_cfg *c, uint64_t site, uint64_t ctr) {
  if (c->p == 0.0f) return 1.0;
  uint8_t m;
  nn_dropout_mask(&m, 1, c->p, hsrl_rng_derive(c->key, site), c->offset + ctr);
  return m ? 1.0 / (1.0 - (double)c->p) : 0.0;
}

static void ref_layernorm(double *y, const double *x, const double *g, const double *b, int64_t d) {
  double mean = 0, var = 0;
  for (int64_t k = 0; k < d; k++) mean += x[k];
  mean /= (double)d;
  for (int64_t k = 0; k < d; k++) var += (x[k] - mean) * (x[k] - mean);
  var /= (double)d;
  double rstd = 1.0 / sqrt(var + 1e-5);
  for (int64_t k = 0; k < d; k++) y[k] = (x[k] - mean) * rstd * g[k] + b[k];
}

/* out (B, n_q, E) from x (B, T, E) and params, everything in double. */
static void ref_layer(double *out, const double *x, const double *prm, const ref_cfg *c) {
  const int64_t B = c->s.B, T = c->s.T, nq = c->s.n_q, E = c->s.E, F = c->s.F, H = c->s.n_heads;
  const int64_t dh = E / H;
  const nn_transformer_layout l = nn_transformer_layout_of(E, F);
  const double *w_in = prm + l.w_in, *b_in = prm + l.b_in, *w_o = prm + l.w_o, *b_o = prm + l.b_o;
  double *K = hsrl_calloc((size_t)(T * E), sizeof(double)), *V = hsrl_calloc((size_t)(T * E), sizeof(double));
  double *Q = hsrl_calloc((size_t)E, sizeof(double)), *C = hsrl_calloc((size_t)E, sizeof(double));
  double *a = hsrl_calloc((size_t)T, sizeof(double)), *r = hsrl_calloc((size_t)E, sizeof(double));
  double *x1 = hsrl_calloc((size_t)E, sizeof(double)), *h = hsrl_calloc((size_t)F, sizeof(double));
  for (int64_t b = 0; b < B; b++) {
    const double *xb = x + b * T * E;
    for (int64_t j = 0; j < T; j++)
      for (int64_t e = 0; e < E; e++) {
        double k = b_in[E + e], v = b_in[2 * E + e];
        for (int64_t cc = 0; cc < E; cc++) {
          k += xb[j * E + cc] * w_in[(E + e) * E + cc];
          v += xb[j * E + cc] * w_in[(2 * E + e) * E + cc];
        }
        K[j * E + e] = k, V[j * E + e] = v;
      }
    for (int64_t t = T - nq; t < T; t++) {
      for (int64_t e = 0; e < E; e++) {
        double q = b_in[e];
        for (int64_t cc = 0; cc < E; cc++) q += xb[t * E + cc] * w_in[e * E + cc];
        Q[e] = q;
        C[e] = 0;
      }
      for (int64_t hd = 0; hd < H; hd++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < T; j++) {
          int ok = !(c->causal && j > t) && !(c->pad && c->pad[b * T + j]);
          a[j] = -INFINITY;
          if (!ok) continue;
          double s = 0;
          for (int64_t d = 0; d < dh; d++) s += Q[hd * dh + d] * K[j * E + hd * dh + d];
          a[j] = s / sqrt((double)dh);
          if (a[j] > mx) mx = a[j];
        }
        for (int64_t j = 0; j < T; j++) sum += (a[j] = isinf(a[j]) ? 0.0 : exp(a[j] - mx));
        for (int64_t j = 0; j < T; j++) {
          double w = sum > 0 ? a[j] / sum : 0.0;
          w *= ref_keep(c, 0, (uint64_t)(((b * H + hd) * T + t) * T + j));
          for (int64_t d = 0; d < dh; d++) C[hd * dh + d] += w * V[j * E + hd * dh + d];
        }
      }
      for (int64_t e = 0; e < E; e++) {
        double o = b_o[e];
        for (int64_t cc = 0; cc < E; cc++) o += C[cc] * w_o[e * E + cc];
        r[e] = xb[t * E + e] + o * ref_keep(c, 1, (uint64_t)((b * T + t) * E + e));
      }
      ref_layernorm(x1, r, prm + l.ln1_gamma, prm + l.ln1_beta, E);
      for (int64_t f = 0; f < F; f++) {
        double z = prm[l.b1 + f];
        for (int64_t e = 0; e < E; e++) z += prm[l.w1 + f * E + e] * x1[e];
        h[f] = (z > 0 ? z : 0) * ref_keep(c, 2, (uint64_t)((b * T + t) * F + f));
      }
      for (int64_t e = 0; e < E; e++) {
        double z = prm[l.b2 + e];
        for (int64_t f = 0; f < F; f++) z += prm[l.w2 + e * F + f] * h[f];
        r[e] = x1[e] + z * ref_keep(c, 3, (uint64_t)((b * T + t) * E + e));
      }
      ref_layernorm(out + (b * nq + t - (T - nq)) * E, r, prm + l.ln2_gamma, prm + l.ln2_beta, E);
    }
  }
  hsrl_free(K), hsrl_free(V), hsrl_free(Q), hsrl_free(C), hsrl_free(a), hsrl_free(r), hsrl_free(x1), hsrl_free(h);
}

/* ---------------------------------------------------------------- one layer as a test case */

typedef struct layer_case {
  nn_transformer_shape s;
  nn_mha_mask m;
  uint8_t pad[64];
  float p;
  uint64_t key, offset;
  int mode; /* backward: 0 correct, 1 told p = 0 (ignores dropout), 2 cache of another draw */
  int64_t n_params;
  float *x, *dx, *prm, *dprm, *out, *dout, *cache, *cache2, *out2, *scratch;
} layer_case;

/* B = 3, T = 7, E = 12, h = 3, F = 20; row 1 left-padded by 3 (its first 3 queries see only
 * padding under the causal mask), row 2 with two padded keys in the middle. */
static void layer_init(layer_case *c, int64_t n_q, float p, uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->s = (nn_transformer_shape){3, 7, n_q, 12, 20, 3};
  const int64_t B = c->s.B, T = c->s.T, E = c->s.E, F = c->s.F;
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < T; j++) c->pad[b * T + j] = (uint8_t)((b == 1 && j < 3) || (b == 2 && (j == 2 || j == 4)));
  c->m = (nn_mha_mask){1, 0, c->pad};
  c->p = p;
  c->key = 0xabcdef00u + seed;
  c->offset = 12345;
  c->n_params = nn_transformer_param_count(E, F);
  c->x = hsrl_malloc((size_t)(B * T * E) * sizeof(float));
  c->dx = hsrl_calloc((size_t)(B * T * E), sizeof(float));
  c->prm = hsrl_malloc((size_t)c->n_params * sizeof(float));
  c->dprm = hsrl_calloc((size_t)c->n_params, sizeof(float));
  c->out = hsrl_calloc((size_t)(B * n_q * E), sizeof(float));
  c->out2 = hsrl_calloc((size_t)(B * n_q * E), sizeof(float));
  c->dout = hsrl_calloc((size_t)(B * n_q * E), sizeof(float));
  c->cache = hsrl_calloc((size_t)nn_transformer_cache_floats(&c->s), sizeof(float));
  c->cache2 = hsrl_calloc((size_t)nn_transformer_cache_floats(&c->s), sizeof(float));
  c->scratch = hsrl_calloc((size_t)nn_transformer_scratch_floats(&c->s), sizeof(float));
  test_fill_uniform(c->x, B * T * E, -1.0f, 1.0f, seed + 1);
  /* random parameters everywhere (LN gamma around 1, beta nonzero) so every path matters */
  hsrl_rng rng;
  hsrl_rng_init(&rng, seed + 2, 0);
  nn_transformer_init(c->prm, E, F, &rng);
  nn_transformer_layout l = nn_transformer_layout_of(E, F);
  test_fill_uniform(c->prm + l.b_in, 3 * E, -0.3f, 0.3f, seed + 3);
  test_fill_uniform(c->prm + l.b_o, E, -0.3f, 0.3f, seed + 4);
  test_fill_uniform(c->prm + l.ln1_gamma, E, 0.5f, 1.5f, seed + 5);
  test_fill_uniform(c->prm + l.ln1_beta, E, -0.5f, 0.5f, seed + 6);
  test_fill_uniform(c->prm + l.ln2_gamma, E, 0.5f, 1.5f, seed + 7);
  test_fill_uniform(c->prm + l.ln2_beta, E, -0.5f, 0.5f, seed + 8);
}

static void layer_free(layer_case *c) {
  hsrl_free(c->x), hsrl_free(c->dx), hsrl_free(c->prm), hsrl_free(c->dprm), hsrl_free(c->out);
  hsrl_free(c->out2), hsrl_free(c->dout), hsrl_free(c->cache), hsrl_free(c->cache2), hsrl_free(c->scratch);
}

static void layer_forward(void *ctx) {
  layer_case *c = ctx;
  nn_transformer_forward(c->out, c->cache, c->x, c->prm, &c->m, c->p, c->key, c->offset, &c->s);
}

static void layer_backward(void *ctx) {
  layer_case *c = ctx;
  const float *cache = c->cache;
  if (c->mode == 2) { /* a stale cache: the same inputs under another dropout draw */
    nn_transformer_forward(c->out2, c->cache2, c->x, c->prm, &c->m, c->p, c->key, c->offset + 777, &c->s);
    cache = c->cache2;
  }
  nn_transformer_backward(c->dx, c->dprm, c->scratch, c->dout, cache, c->x, c->prm, &c->m,
                          c->mode == 1 ? 0.0f : c->p, &c->s);
}

static ref_cfg layer_ref_cfg(const layer_case *c) {
  return (ref_cfg){c->s, c->m.causal, c->m.key_padding, c->p, c->key, c->offset};
}

static double *to_double(const float *x, int64_t n) {
  double *d = hsrl_malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

/* Moves every FFN pre-activation away from the ReLU kink (small w1, b1 = +-0.5, so |z| > 0.2 by
 * several standard deviations): central differences with eps 1e-2 that cross a kink measure the
 * kink, not the backward. The double-precision check (h = 1e-6) uses generic parameters. */
static void relu_margin(float *prm, int64_t E, int64_t F, uint64_t seed) {
  nn_transformer_layout l = nn_transformer_layout_of(E, F);
  test_fill_uniform(prm + l.w1, F * E, -0.045f, 0.045f, seed);
  test_fill_uniform(prm + l.b1, F, -1.0f, 1.0f, seed + 1);
  for (int64_t f = 0; f < F; f++) prm[l.b1 + f] = prm[l.b1 + f] < 0.0f ? -0.5f : 0.5f;
}

/* ---------------------------------------------------------------- layer tests */

/* The layout equals an nn_params table holding the 12 named tensors (after any earlier tensor). */
static void test_layout_matches_nn_params(void) {
  TEST_ASSERT(NN_TRANSFORMER_ALIGN == NN_PARAMS_ALIGN);
  const int64_t shapes[2][2] = {{32, 128}, {12, 20}};
  for (int k = 0; k < 2; k++) {
    const int64_t E = shapes[k][0], F = shapes[k][1];
    nn_transformer_tensor t[NN_TRANSFORMER_N_TENSORS];
    nn_transformer_tensors(t, E, F);
    nn_params *p = nn_params_init(16);
    nn_params_add1(p, "before", 5); /* the layer need not come first */
    int64_t base = -1;
    for (int i = 0; i < NN_TRANSFORMER_N_TENSORS; i++) {
      char name[64];
      snprintf(name, sizeof name, "enc/layer0/%s", t[i].name);
      int64_t o = t[i].cols == 1 ? nn_params_add1(p, name, t[i].rows) : nn_params_add2(p, name, t[i].rows, t[i].cols);
      if (i == 0) base = o;
      TEST_ASSERTF(o - base == t[i].offset, "E %lld: %s at %lld in nn_params, %lld in the layout", (long long)E,
                   t[i].name, (long long)(o - base), (long long)t[i].offset);
    }
    nn_params_free(p);
  }
}

static void test_layout_and_init(void) {
  const int64_t E = 32, F = 128;
  nn_transformer_layout l = nn_transformer_layout_of(E, F);
  TEST_ASSERT(l.n_params == 4 * E * E + 2 * E * F + F + 9 * E); /* no padding at the policy's size */
  TEST_ASSERT(nn_transformer_param_count(E, F) == l.n_params);
  nn_transformer_tensor t[NN_TRANSFORMER_N_TENSORS];
  nn_transformer_tensors(t, E, F);
  int64_t o = 0;
  for (int i = 0; i < NN_TRANSFORMER_N_TENSORS; i++) {
    TEST_ASSERTF(t[i].offset == o, "%s at %lld, expected %lld", t[i].name, (long long)t[i].offset, (long long)o);
    o += t[i].rows * t[i].cols;
  }
  TEST_ASSERT(o == l.n_params);
  TEST_ASSERT(t[0].offset == l.w_in && t[11].offset == l.ln2_beta);
  /* odd sizes: aligned offsets, padding zeroed by init */
  nn_transformer_layout lo = nn_transformer_layout_of(12, 20);
  TEST_ASSERT(lo.b_in == 3 * 144 && lo.w_o == 3 * 144 + 48 && lo.ln2_beta % NN_TRANSFORMER_ALIGN == 0);
  float *po = hsrl_malloc((size_t)lo.n_params * sizeof(float));
  for (int64_t i = 0; i < lo.n_params; i++) po[i] = NAN;
  hsrl_rng r0;
  hsrl_rng_init(&r0, 1, 0);
  nn_transformer_init(po, 12, 20, &r0);
  for (int64_t i = 0; i < lo.n_params; i++) TEST_ASSERT(isfinite(po[i]));
  TEST_ASSERT(po[lo.b_in + 36] == 0.0f && po[lo.b_in + 47] == 0.0f); /* padding after b_in */
  hsrl_free(po);
  float *prm = hsrl_malloc((size_t)l.n_params * sizeof(float));
  hsrl_rng rng;
  hsrl_rng_init(&rng, 3, 0);
  nn_transformer_init(prm, E, F, &rng);
  struct { int64_t off, n; double bound; } u[] = {
      {l.w_in, 3 * E * E, sqrt(6.0 / (4.0 * (double)E))}, {l.w_o, E * E, 1 / sqrt((double)E)},
      {l.w1, F * E, 1 / sqrt((double)E)}, {l.b1, F, 1 / sqrt((double)E)},
      {l.w2, E * F, 1 / sqrt((double)F)}, {l.b2, E, 1 / sqrt((double)F)}};
  for (size_t k = 0; k < sizeof u / sizeof u[0]; k++) {
    double mx = 0, sq = 0;
    for (int64_t i = 0; i < u[k].n; i++) {
      double v = prm[u[k].off + i];
      TEST_ASSERT(fabs(v) <= u[k].bound);
      mx = fmax(mx, fabs(v));
      sq += v * v;
    }
    TEST_ASSERTF(mx > 0.8 * u[k].bound, "tensor %zu max %g bound %g", k, mx, u[k].bound);
    /* U(-a, a) has variance a^2 / 3 */
    if (u[k].n >= 1000) TEST_NEAR(sq / (double)u[k].n, u[k].bound * u[k].bound / 3, 0.1 * u[k].bound * u[k].bound / 3);
  }
  for (int64_t i = 0; i < 3 * E; i++) TEST_ASSERT(prm[l.b_in + i] == 0.0f);
  for (int64_t i = 0; i < E; i++) {
    TEST_ASSERT(prm[l.b_o + i] == 0.0f);
    TEST_ASSERT(prm[l.ln1_gamma + i] == 1.0f && prm[l.ln2_gamma + i] == 1.0f);
    TEST_ASSERT(prm[l.ln1_beta + i] == 0.0f && prm[l.ln2_beta + i] == 0.0f);
  }
  hsrl_free(prm);
}

/* Forward vs the naive reference; backward vs double central differences of the naive forward. */
static void check_fast_vs_naive(int64_t n_q, float p) {
  layer_case c;
  layer_init(&c, n_q, p, 100 + (uint64_t)n_q);
  const int64_t B = c.s.B, T = c.s.T, E = c.s.E, n_out = B * n_q * E;
  ref_cfg rc = layer_ref_cfg(&c);
  test_fill_uniform(c.dout, n_out, -1.0f, 1.0f, 7);
  layer_forward(&c);
  layer_backward(&c);
  double *xd = to_double(c.x, B * T * E), *pd = to_double(c.prm, c.n_params);
  double *ref = hsrl_malloc((size_t)n_out * sizeof(double));
  ref_layer(ref, xd, pd, &rc);
  float *reff = hsrl_malloc((size_t)n_out * sizeof(float));
  for (int64_t i = 0; i < n_out; i++) reff[i] = (float)ref[i];
  double d_out = test_max_scaled_diff(c.out, reff, n_out, 1e-6, 1e-5);
  TEST_ASSERTF(d_out <= 1.0, "n_q %lld p %g: output scaled diff %g", (long long)n_q, (double)p, d_out);
  /* gradients by central differences of the double reference, h = 1e-6 */
  double *tens[2] = {xd, pd};
  const float *ana[2] = {c.dx, c.dprm};
  int64_t ns[2] = {B * T * E, c.n_params};
  double worst = 0;
  for (int k = 0; k < 2; k++) {
    float *num = hsrl_malloc((size_t)ns[k] * sizeof(float));
    for (int64_t i = 0; i < ns[k]; i++) {
      double keep = tens[k][i], fp = 0, fm = 0;
      tens[k][i] = keep + 1e-6;
      ref_layer(ref, xd, pd, &rc);
      for (int64_t o = 0; o < n_out; o++) fp += (double)c.dout[o] * ref[o];
      tens[k][i] = keep - 1e-6;
      ref_layer(ref, xd, pd, &rc);
      for (int64_t o = 0; o < n_out; o++) fm += (double)c.dout[o] * ref[o];
      tens[k][i] = keep;
      num[i] = (float)((fp - fm) / 2e-6);
    }
    double d = test_max_scaled_diff(ana[k], num, ns[k], 1e-5, 1e-4);
    if (d > worst) worst = d;
    TEST_ASSERTF(d <= 1.0, "n_q %lld p %g: %s gradient scaled diff %g vs the naive reference",
                 (long long)n_q, (double)p, k ? "param" : "x", d);
    hsrl_free(num);
  }
  printf("  n_q=%lld p=%g: output scaled diff %.3g (atol 1e-6, rtol 1e-5), gradients %.3g (atol 1e-5, rtol 1e-4)\n",
         (long long)n_q, (double)p, d_out, worst);
  hsrl_free(xd), hsrl_free(pd), hsrl_free(ref), hsrl_free(reff);
  layer_free(&c);
}

static void test_fast_vs_naive_full(void) { check_fast_vs_naive(7, 0.0f); }
static void test_fast_vs_naive_full_dropout(void) { check_fast_vs_naive(7, 0.3f); }
static void test_fast_vs_naive_last2_dropout(void) { check_fast_vs_naive(2, 0.3f); }

/* Rows longer than one mask piece (the layer draws its dropout masks NN_DROPOUT_PIECE = 1024
 * elements at a time): B = 2, T = 40, E = 32, F = 64, so a batch row's residual masks span 1280
 * elements and its FFN hidden mask 2560, from odd counters (offset 12345: pieces end early, at
 * Philox block boundaries). The forward against the naive reference (every mask re-derived element by element from
 * its counter); the backward reads the masks the forward stored, which the small-shape gradient
 * checks above cover. */
static void test_fast_vs_naive_mask_pieces(void) {
  const int64_t B = 2, T = 40, E = 32, F = 64;
  for (int64_t n_q = 33; n_q <= T; n_q += T - 33) {
    const nn_transformer_shape s = {B, T, n_q, E, F, 2};
    uint8_t pad[2 * 40] = {0};
    for (int64_t j = 0; j < 5; j++) pad[T + j] = 1; /* row 1 left-padded by 5 */
    const nn_mha_mask m = {1, 0, pad};
    const int64_t n_params = nn_transformer_param_count(E, F), n_out = B * n_q * E;
    float *x = hsrl_malloc((size_t)(B * T * E) * sizeof(float)), *prm = hsrl_malloc((size_t)n_params * sizeof(float));
    float *out = hsrl_malloc((size_t)n_out * sizeof(float)), *reff = hsrl_malloc((size_t)n_out * sizeof(float));
    float *cache = hsrl_malloc((size_t)nn_transformer_cache_floats(&s) * sizeof(float));
    test_fill_uniform(x, B * T * E, -1.0f, 1.0f, 61);
    hsrl_rng rng;
    hsrl_rng_init(&rng, 62, 0);
    nn_transformer_init(prm, E, F, &rng);
    const float p = 0.3f;
    const uint64_t key = 0x5eedu, offset = 12345;
    nn_transformer_forward(out, cache, x, prm, &m, p, key, offset, &s);
    double *xd = to_double(x, B * T * E), *pd = to_double(prm, n_params);
    double *ref = hsrl_malloc((size_t)n_out * sizeof(double));
    const ref_cfg rc = {s, 1, pad, p, key, offset};
    ref_layer(ref, xd, pd, &rc);
    for (int64_t i = 0; i < n_out; i++) reff[i] = (float)ref[i];
    const double d = test_max_scaled_diff(out, reff, n_out, 1e-6, 1e-5);
    printf("  n_q=%lld, rows of 1280 and 2560 mask elements: output scaled diff %.3g\n", (long long)n_q, d);
    TEST_ASSERTF(d <= 1.0, "n_q %lld: output scaled diff %g", (long long)n_q, d);
    hsrl_free(x), hsrl_free(prm), hsrl_free(out), hsrl_free(reff), hsrl_free(cache);
    hsrl_free(xd), hsrl_free(pd), hsrl_free(ref);
  }
}

static void test_last_nq_equals_full_rows(void) {
  for (int64_t n_q = 1; n_q <= 7; n_q += 3) {
    layer_case full, last;
    layer_init(&full, 7, 0.3f, 200);
    layer_init(&last, n_q, 0.3f, 200);
    layer_forward(&full);
    layer_forward(&last);
    const int64_t B = full.s.B, T = full.s.T, E = full.s.E;
    float *rows = hsrl_malloc((size_t)(B * n_q * E) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
      memcpy(rows + b * n_q * E, full.out + (b * T + T - n_q) * E, (size_t)(n_q * E) * sizeof(float));
    double d = test_max_scaled_diff(last.out, rows, B * n_q * E, 1e-6, 1e-5);
    printf("  n_q=%lld vs full rows: scaled diff %.3g\n", (long long)n_q, d);
    hsrl_free(rows);
    layer_free(&full);
    layer_free(&last);
    TEST_ASSERTF(d <= 1.0, "n_q %lld: scaled diff %g", (long long)n_q, d);
  }
}

static void run_layer_gradcheck(int64_t n_q, float p, int mode, int expect_pass, const char *what) {
  layer_case c;
  layer_init(&c, n_q, p, 300 + (uint64_t)n_q);
  relu_margin(c.prm, c.s.E, c.s.F, 400);
  c.mode = mode;
  gradcheck_case g;
  memset(&g, 0, sizeof g);
  g.ctx = &c;
  g.forward = layer_forward;
  g.backward = layer_backward;
  g.out = c.out;
  g.dout = c.dout;
  g.n_out = c.s.B * n_q * c.s.E;
  gradcheck_add(&g, "x", c.x, c.dx, c.s.B * c.s.T * c.s.E);
  nn_transformer_tensor t[NN_TRANSFORMER_N_TENSORS];
  nn_transformer_tensors(t, c.s.E, c.s.F);
  for (int i = 0; i < NN_TRANSFORMER_N_TENSORS; i++)
    gradcheck_add(&g, t[i].name, c.prm + t[i].offset, c.dprm + t[i].offset, t[i].rows * t[i].cols);
  if (!expect_pass) printf("  deliberately broken backward (%s): the checker must say FAIL\n", what);
  gradcheck_result r;
  int ok = gradcheck_run(&g, 5, GRAD_TOL, &r);
  printf("  [%s] max err %.3g (%s), doubling err %.3g\n", what, r.max_err, r.worst_name, r.doubling_err);
  layer_free(&c);
  if (expect_pass)
    TEST_ASSERTF(ok, "%s: gradcheck failed, max err %g at %s", what, r.max_err, r.worst_name);
  else
    TEST_ASSERTF(!ok && r.max_err > 10 * GRAD_TOL, "%s: broken backward NOT rejected (max err %g)", what, r.max_err);
}

static void test_gradcheck_full(void) { run_layer_gradcheck(7, 0.0f, 0, 1, "full, p=0"); }
static void test_gradcheck_full_dropout(void) { run_layer_gradcheck(7, 0.3f, 0, 1, "full, p=0.3"); }
static void test_gradcheck_last2_dropout(void) { run_layer_gradcheck(2, 0.3f, 0, 1, "last 2, p=0.3"); }
static void test_gradcheck_last1(void) { run_layer_gradcheck(1, 0.3f, 0, 1, "last 1, p=0.3"); }
static void test_broken_ignores_dropout_rejected(void) { run_layer_gradcheck(7, 0.3f, 1, 0, "backward ignores dropout"); }
static void test_broken_stale_cache_rejected(void) { run_layer_gradcheck(2, 0.3f, 2, 0, "cache of another draw"); }

/* ---------------------------------------------------------------- SASRec-shaped stack */

typedef struct stack {
  int64_t B, T, D, d, F, H, V;
  float p;
  uint8_t pad[64];
  nn_mha_mask mask;
  nn_transformer_shape s_full, s_top;
  int top_full; /* 1: top layer computed for all T positions, last row taken */
  int broken;   /* 1: layer 0's backward ignores its dropout masks (must be caught) */
  int64_t n_layer;
  /* parameters and input, with gradients */
  float *X, *w_map, *b_map, *pos, *ln_g, *ln_b, *layer[2], *w_head, *b_head;
  float *dX, *dw_map, *db_map, *dpos, *dln_g, *dln_b, *dlayer[2], *dw_head, *db_head;
  /* activations */
  float *e, *ed, *x0, *mean, *rstd, *h1, *h2, *h2_full, *logits, *dlogits;
  uint8_t *emask;
  float *c0, *c1, *scratch;
  float *dh2, *dh2_full, *dh1, *dx0, *ded, *de;
} stack;

static float *zalloc(int64_t n) { return hsrl_calloc((size_t)n, sizeof(float)); }

static void stack_init(stack *st, int top_full) {
  memset(st, 0, sizeof *st);
  st->B = 3, st->T = 6, st->D = 5, st->d = 8, st->F = 16, st->H = 2, st->V = 7;
  st->p = 0.1f;
  st->top_full = top_full;
  const int64_t B = st->B, T = st->T, D = st->D, d = st->d, V = st->V;
  /* left padding: row 0 none, row 1 two, row 2 four */
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) st->pad[b * T + t] = (uint8_t)(t < 2 * b);
  st->mask = (nn_mha_mask){1, 0, st->pad};
  st->s_full = (nn_transformer_shape){B, T, T, d, st->F, st->H};
  st->s_top = (nn_transformer_shape){B, T, top_full ? T : 1, d, st->F, st->H};
  st->n_layer = nn_transformer_param_count(d, st->F);
  st->X = zalloc(B * T * D), st->dX = zalloc(B * T * D);
  st->w_map = zalloc(d * D), st->dw_map = zalloc(d * D);
  st->b_map = zalloc(d), st->db_map = zalloc(d);
  st->pos = zalloc(T * d), st->dpos = zalloc(T * d);
  st->ln_g = zalloc(d), st->dln_g = zalloc(d), st->ln_b = zalloc(d), st->dln_b = zalloc(d);
  for (int k = 0; k < 2; k++) st->layer[k] = zalloc(st->n_layer), st->dlayer[k] = zalloc(st->n_layer);
  st->w_head = zalloc(V * d), st->dw_head = zalloc(V * d), st->b_head = zalloc(V), st->db_head = zalloc(V);
  st->e = zalloc(B * T * d), st->ed = zalloc(B * T * d), st->x0 = zalloc(B * T * d);
  st->mean = zalloc(B * T), st->rstd = zalloc(B * T), st->h1 = zalloc(B * T * d);
  st->h2 = zalloc(B * d), st->h2_full = zalloc(B * T * d), st->logits = zalloc(B * V), st->dlogits = zalloc(B * V);
  st->emask = hsrl_calloc((size_t)(B * T * d), 1);
  st->c0 = zalloc(nn_transformer_cache_floats(&st->s_full));
  st->c1 = zalloc(nn_transformer_cache_floats(&st->s_top));
  st->scratch = zalloc(nn_transformer_scratch_floats(&st->s_full)); /* >= the top layer's */
  st->dh2 = zalloc(B * d), st->dh2_full = zalloc(B * T * d), st->dh1 = zalloc(B * T * d);
  st->dx0 = zalloc(B * T * d), st->ded = zalloc(B * T * d), st->de = zalloc(B * T * d);
  /* values: torch-like init, each layer its own (torch starts both layers identical; distinct
   * layers make a mixed-up layer gradient visible) */
  test_fill_uniform(st->X, B * T * D, -1.0f, 1.0f, 1);
  test_fill_uniform(st->w_map, d * D, -0.45f, 0.45f, 2);
  test_fill_uniform(st->b_map, d, -0.45f, 0.45f, 3);
  test_fill_uniform(st->pos, T * d, -1.0f, 1.0f, 4);
  test_fill_uniform(st->ln_g, d, 0.7f, 1.3f, 5);
  test_fill_uniform(st->ln_b, d, -0.2f, 0.2f, 6);
  hsrl_rng rng;
  hsrl_rng_init(&rng, 7, 0);
  for (int k = 0; k < 2; k++) {
    nn_transformer_init(st->layer[k], d, st->F, &rng);
    relu_margin(st->layer[k], d, st->F, 20 + (uint64_t)k);
  }
  test_fill_uniform(st->w_head, V * d, -0.35f, 0.35f, 9);
  test_fill_uniform(st->b_head, V, -0.35f, 0.35f, 10);
}

static void stack_free(stack *st) {
  float *all[] = {st->X, st->dX, st->w_map, st->dw_map, st->b_map, st->db_map, st->pos, st->dpos,
                  st->ln_g, st->dln_g, st->ln_b, st->dln_b, st->layer[0], st->dlayer[0], st->layer[1],
                  st->dlayer[1], st->w_head, st->dw_head, st->b_head, st->db_head, st->e, st->ed, st->x0,
                  st->mean, st->rstd, st->h1, st->h2, st->h2_full, st->logits, st->dlogits, st->c0, st->c1,
                  st->scratch, st->dh2, st->dh2_full, st->dh1, st->dx0, st->ded, st->de};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hsrl_free(all[i]);
  hsrl_free(st->emask);
}

static void stack_forward(void *ctx) {
  stack *st = ctx;
  const int64_t B = st->B, T = st->T, d = st->d, n = B * T;
  nn_linear_forward(st->e, st->X, st->w_map, st->b_map, n, st->D, d);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < T * d; i++) st->e[b * T * d + i] += st->pos[i];
  nn_dropout_forward(st->ed, st->emask, st->e, n * d, st->p, 101, 0);
  nn_layernorm_forward(st->x0, st->mean, st->rstd, st->ed, st->ln_g, st->ln_b, n, d);
  nn_transformer_forward(st->h1, st->c0, st->x0, st->layer[0], &st->mask, st->p, 201, 0, &st->s_full);
  if (st->top_full) {
    nn_transformer_forward(st->h2_full, st->c1, st->h1, st->layer[1], &st->mask, st->p, 202, 0, &st->s_top);
    for (int64_t b = 0; b < B; b++) memcpy(st->h2 + b * d, st->h2_full + (b * T + T - 1) * d, (size_t)d * sizeof(float));
  } else {
    nn_transformer_forward(st->h2, st->c1, st->h1, st->layer[1], &st->mask, st->p, 202, 0, &st->s_top);
  }
  nn_linear_forward(st->logits, st->h2, st->w_head, st->b_head, B, d, st->V);
}

static void stack_backward(void *ctx) {
  stack *st = ctx;
  const int64_t B = st->B, T = st->T, d = st->d, n = B * T;
  const size_t nd = (size_t)(n * d) * sizeof(float);
  memset(st->dh2, 0, (size_t)(B * d) * sizeof(float));
  nn_linear_backward(st->dh2, st->dw_head, st->db_head, st->dlogits, st->h2, st->w_head, B, d, st->V);
  memset(st->dh1, 0, nd);
  if (st->top_full) {
    memset(st->dh2_full, 0, nd);
    for (int64_t b = 0; b < B; b++) memcpy(st->dh2_full + (b * T + T - 1) * d, st->dh2 + b * d, (size_t)d * sizeof(float));
    nn_transformer_backward(st->dh1, st->dlayer[1], st->scratch, st->dh2_full, st->c1, st->h1, st->layer[1],
                            &st->mask, st->p, &st->s_top);
  } else {
    nn_transformer_backward(st->dh1, st->dlayer[1], st->scratch, st->dh2, st->c1, st->h1, st->layer[1],
                            &st->mask, st->p, &st->s_top);
  }
  memset(st->dx0, 0, nd);
  nn_transformer_backward(st->dx0, st->dlayer[0], st->scratch, st->dh1, st->c0, st->x0, st->layer[0],
                          &st->mask, st->broken ? 0.0f : st->p, &st->s_full);
  memset(st->ded, 0, nd);
  nn_layernorm_backward(st->ded, st->dln_g, st->dln_b, st->dx0, st->ed, st->mean, st->rstd, st->ln_g, n, d);
  memset(st->de, 0, nd);
  nn_dropout_backward(st->de, st->ded, st->emask, n * d, st->p);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < T * d; i++) st->dpos[i] += st->de[b * T * d + i];
  nn_linear_backward(st->dX, st->dw_map, st->db_map, st->de, st->X, st->w_map, n, st->D, d);
}

static void stack_case(stack *st, gradcheck_case *g) {
  memset(g, 0, sizeof *g);
  g->ctx = st;
  g->forward = stack_forward;
  g->backward = stack_backward;
  g->out = st->logits;
  g->dout = st->dlogits;
  g->n_out = st->B * st->V;
  const int64_t d = st->d;
  gradcheck_add(g, "X", st->X, st->dX, st->B * st->T * st->D);
  gradcheck_add(g, "item_map/w", st->w_map, st->dw_map, d * st->D);
  gradcheck_add(g, "item_map/b", st->b_map, st->db_map, d);
  gradcheck_add(g, "pos", st->pos, st->dpos, st->T * d);
  gradcheck_add(g, "emb_norm/gamma", st->ln_g, st->dln_g, d);
  gradcheck_add(g, "emb_norm/beta", st->ln_b, st->dln_b, d);
  gradcheck_add(g, "layer0", st->layer[0], st->dlayer[0], st->n_layer);
  gradcheck_add(g, "layer1", st->layer[1], st->dlayer[1], st->n_layer);
  gradcheck_add(g, "head/w", st->w_head, st->dw_head, st->V * d);
  gradcheck_add(g, "head/b", st->b_head, st->db_head, st->V);
}

static void test_sasrec_stack_direction(void) {
  for (int top_full = 0; top_full < 2; top_full++) {
    stack st;
    stack_init(&st, top_full);
    gradcheck_case g;
    stack_case(&st, &g);
    int ok = 1;
    for (uint64_t seed = 1; seed <= 3; seed++) {
      gradcheck_result r;
      ok &= gradcheck_direction(&g, seed, 1e-3, 1e-2, &r);
    }
    /* and element-wise on a sample of every tensor (incl. the doubling check) */
    g.max_probes = 24;
    gradcheck_result r;
    ok &= gradcheck_run(&g, 9, GRAD_TOL, &r);
    stack_free(&st);
    TEST_ASSERTF(ok, "top_full %d: stack gradient check failed", top_full);
  }
}

static void test_sasrec_stack_broken_rejected(void) {
  stack st;
  stack_init(&st, 0);
  st.broken = 1;
  gradcheck_case g;
  stack_case(&st, &g);
  printf("  deliberately broken stack backward: the checker must say FAIL\n");
  gradcheck_result r;
  int ok = gradcheck_direction(&g, 1, 1e-3, 1e-2, &r);
  stack_free(&st);
  TEST_ASSERTF(!ok && r.max_err > 0.05, "broken stack backward NOT rejected (rel err %g)", r.max_err);
}

/* The top layer computed for the last position only gives the same logits and gradients. */
static void test_sasrec_stack_last_position_only(void) {
  stack a, b;
  stack_init(&a, 0);
  stack_init(&b, 1);
  test_fill_uniform(a.dlogits, a.B * a.V, -1.0f, 1.0f, 3);
  memcpy(b.dlogits, a.dlogits, (size_t)(a.B * a.V) * sizeof(float));
  stack_forward(&a), stack_backward(&a);
  stack_forward(&b), stack_backward(&b);
  double dl = test_max_scaled_diff(a.logits, b.logits, a.B * a.V, 1e-6, 1e-5);
  double dg0 = test_max_scaled_diff(a.dlayer[0], b.dlayer[0], a.n_layer, 1e-6, 1e-4);
  double dg1 = test_max_scaled_diff(a.dlayer[1], b.dlayer[1], a.n_layer, 1e-6, 1e-4);
  double dx = test_max_scaled_diff(a.dX, b.dX, a.B * a.T * a.D, 1e-6, 1e-4);
  printf("  last-only vs full top layer: logits %.3g, dlayer0 %.3g, dlayer1 %.3g, dX %.3g\n", dl, dg0, dg1, dx);
  int nonzero = 0;
  for (int64_t i = 0; i < a.n_layer; i++) nonzero += a.dlayer[0][i] != 0.0f;
  stack_free(&a), stack_free(&b);
  TEST_ASSERT(dl <= 1.0 && dg0 <= 1.0 && dg1 <= 1.0 && dx <= 1.0);
  TEST_ASSERT(nonzero > 100);
}

int main(void) {
  TEST_RUN(test_layout_and_init);
  TEST_RUN(test_layout_matches_nn_params);
  TEST_RUN(test_fast_vs_naive_full);
  TEST_RUN(test_fast_vs_naive_full_dropout);
  TEST_RUN(test_fast_vs_naive_last2_dropout);
  TEST_RUN(test_fast_vs_naive_mask_pieces);
  TEST_RUN(test_last_nq_equals_full_rows);
  TEST_RUN(test_gradcheck_full);
  TEST_RUN(test_gradcheck_full_dropout);
  TEST_RUN(test_gradcheck_last2_dropout);
  TEST_RUN(test_gradcheck_last1);
  TEST_RUN(test_broken_ignores_dropout_rejected);
  TEST_RUN(test_broken_stale_cache_rejected);
  TEST_RUN(test_sasrec_stack_direction);
  TEST_RUN(test_sasrec_stack_broken_rejected);
  TEST_RUN(test_sasrec_stack_last_position_only);
  return test_summary();
}
