/* nn_mlp.c: see nn_mlp.h.
 *
 * Cache layout for n rows, per hidden layer l of width h (in this order, in floats):
 *   a (n, h)     Linear output, then ReLU and dropout in place: Drop(ReLU(.)) = LayerNorm input
 *   y (n, h)     LayerNorm output = next layer's input
 *   mean (n), rstd (n)
 * then two scratch buffers of n * max(hidden) floats each for the backward pass's gradients.
 *
 * ReLU and dropout are one pass (nn_dropout_relu_forward: the mask drawn piece by piece, not
 * kept) and so is their backward, which needs only a (> 0 exactly where the Linear output was > 0
 * and the element kept). The backward writes its gradient buffers instead of zeroing and
 * accumulating: the LayerNorm input gradient through nn_layernorm_backward_set, the ReLU/dropout
 * backward in place, the input gradients of all Linears but the first as products with beta = 0
 * (no zeroing passes). */
#include "common/nn/nn_mlp.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_check.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_gemm.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"

typedef struct mlp_cache_view {
  float *a, *y, *mean, *rstd;
} mlp_cache_view;

static void check_config(const nn_mlp_config *cfg) {
  HSRL_CHECK(cfg->in_dim > 0 && cfg->out_dim > 0);
  HSRL_CHECKF(cfg->n_hidden >= 0 && cfg->n_hidden <= NN_MLP_MAX_HIDDEN, "n_hidden %d", cfg->n_hidden);
  for (int l = 0; l < cfg->n_hidden; l++) HSRL_CHECK(cfg->hidden[l] > 0);
  HSRL_CHECKF(cfg->dropout >= 0.0f && cfg->dropout < 1.0f, "dropout %g", (double)cfg->dropout);
}

static int64_t layer_cache_floats(int64_t n, int64_t h) { return 2 * n * h + 2 * n; }

static int64_t max_hidden(const nn_mlp_config *cfg) {
  int64_t m = 0;
  for (int l = 0; l < cfg->n_hidden; l++)
    if (cfg->hidden[l] > m) m = cfg->hidden[l];
  return m;
}

static mlp_cache_view cache_at(float *cache, const nn_mlp_config *cfg, int64_t n, int l) {
  int64_t off = 0;
  for (int k = 0; k < l; k++) off += layer_cache_floats(n, cfg->hidden[k]);
  int64_t h = cfg->hidden[l];
  mlp_cache_view v;
  v.a = cache + off;
  v.y = v.a + n * h;
  v.mean = v.y + n * h;
  v.rstd = v.mean + n;
  return v;
}

static float *scratch_at(float *cache, const nn_mlp_config *cfg, int64_t n, int which) {
  int64_t off = 0;
  for (int k = 0; k < cfg->n_hidden; k++) off += layer_cache_floats(n, cfg->hidden[k]);
  return cache + off + (int64_t)which * n * max_hidden(cfg);
}

nn_mlp_layer nn_mlp_layer_at(const nn_mlp_config *cfg, int l) {
  check_config(cfg);
  HSRL_CHECKF(l >= 0 && l <= cfg->n_hidden, "layer %d of %d", l, cfg->n_hidden);
  int64_t off = 0, in = cfg->in_dim;
  for (int k = 0; k < l; k++) {
    off += cfg->hidden[k] * in + 3 * cfg->hidden[k];
    in = cfg->hidden[k];
  }
  nn_mlp_layer v;
  v.in_dim = in;
  v.out_dim = l < cfg->n_hidden ? cfg->hidden[l] : cfg->out_dim;
  v.w = off;
  v.b = off + v.out_dim * in;
  v.gamma = l < cfg->n_hidden ? v.b + v.out_dim : -1;
  v.beta = l < cfg->n_hidden ? v.gamma + v.out_dim : -1;
  return v;
}

int64_t nn_mlp_n_params(const nn_mlp_config *cfg) {
  nn_mlp_layer last = nn_mlp_layer_at(cfg, cfg->n_hidden);
  return last.b + last.out_dim;
}

int64_t nn_mlp_cache_floats(const nn_mlp_config *cfg, int64_t n) {
  check_config(cfg);
  HSRL_CHECK(n >= 0);
  int64_t s = 2 * n * max_hidden(cfg);
  for (int l = 0; l < cfg->n_hidden; l++) s += layer_cache_floats(n, cfg->hidden[l]);
  return s;
}

void nn_mlp_init(float *params, const nn_mlp_config *cfg, hsrl_rng *rng) {
  for (int l = 0; l <= cfg->n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(cfg, l);
    float bound = (float)(1.0 / sqrt((double)v.in_dim));
    for (int64_t i = 0; i < v.out_dim * v.in_dim; i++)
      params[v.w + i] = bound * (2.0f * hsrl_rng_uniform(rng) - 1.0f);
    for (int64_t i = 0; i < v.out_dim; i++) params[v.b + i] = bound * (2.0f * hsrl_rng_uniform(rng) - 1.0f);
    if (l == cfg->n_hidden) break;
    for (int64_t i = 0; i < v.out_dim; i++) {
      params[v.gamma + i] = 1.0f;
      params[v.beta + i] = 0.0f;
    }
  }
}

void nn_mlp_forward(float *out, float *cache, const float *params, const float *inp, int64_t n,
                    const nn_mlp_config *cfg, int train, uint64_t key, uint64_t row_offset) {
  check_config(cfg);
  HSRL_CHECK(n >= 0);
  float p = train ? cfg->dropout : 0.0f;
  const float *x = inp;
  for (int l = 0; l < cfg->n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(cfg, l);
    mlp_cache_view c = cache_at(cache, cfg, n, l);
    int64_t nh = n * v.out_dim;
    nn_linear_forward(c.a, x, params + v.w, params + v.b, n, v.in_dim, v.out_dim);
    nn_dropout_relu_forward(c.a, nh, p, hsrl_rng_derive(key, (uint64_t)l), row_offset * (uint64_t)v.out_dim);
    nn_layernorm_forward(c.y, c.mean, c.rstd, c.a, params + v.gamma, params + v.beta, n, v.out_dim);
    x = c.y;
  }
  nn_mlp_layer f = nn_mlp_layer_at(cfg, cfg->n_hidden);
  nn_linear_forward(out, x, params + f.w, params + f.b, n, f.in_dim, f.out_dim);
}

void nn_mlp_backward(float *dinp, float *dparams, float *cache, const float *dout, const float *params,
                     const float *inp, int64_t n, const nn_mlp_config *cfg, int train) {
  check_config(cfg);
  HSRL_CHECK(n >= 0);
  float p = train ? cfg->dropout : 0.0f;
  float *ga = scratch_at(cache, cfg, n, 0), *gb = scratch_at(cache, cfg, n, 1);
  int L = cfg->n_hidden;

  /* Final Linear: its input gradient is written to scratch A (added into dinp when there is no
   * hidden layer). */
  nn_mlp_layer f = nn_mlp_layer_at(cfg, L);
  const float *x_last = L > 0 ? cache_at(cache, cfg, n, L - 1).y : inp;
  if (L > 0)
    nn_gemm(0, 0, n, f.in_dim, f.out_dim, 1.0f, dout, f.out_dim, params + f.w, f.in_dim, 0.0f, ga, f.in_dim);
  nn_linear_backward(L > 0 ? NULL : dinp, dparams + f.w, dparams + f.b, dout, x_last, params + f.w, n,
                     f.in_dim, f.out_dim);

  /* Invariant at the top of each iteration: ga holds dL/dy_l (n, h_l). */
  for (int l = L - 1; l >= 0; l--) {
    nn_mlp_layer v = nn_mlp_layer_at(cfg, l);
    mlp_cache_view c = cache_at(cache, cfg, n, l);
    nn_layernorm_backward_set(gb, dparams + v.gamma, dparams + v.beta, ga, c.a, c.mean, c.rstd,
                              params + v.gamma, n, v.out_dim);
    nn_dropout_relu_backward(gb, c.a, n * v.out_dim, p); /* gb = dL/d(Linear output) */
    const float *x = l > 0 ? cache_at(cache, cfg, n, l - 1).y : inp;
    if (l > 0)
      nn_gemm(0, 0, n, v.in_dim, v.out_dim, 1.0f, gb, v.out_dim, params + v.w, v.in_dim, 0.0f, ga, v.in_dim);
    nn_linear_backward(l > 0 ? NULL : dinp, dparams + v.w, dparams + v.b, gb, x, params + v.w, n,
                       v.in_dim, v.out_dim);
  }
}
