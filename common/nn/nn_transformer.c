/* nn_transformer.c: post-norm transformer encoder layer (see nn_transformer.h; method.md s. 6).
 *
 * Forward, for the n = B * n_q query rows (the last n_q positions of every sequence):
 *   xq  = x[:, T-n_q:, :]                       (gathered; x itself when n_q == T)
 *   r1  = xq + Drop_1(MHA(xq, x))               (causal with q_offset = T - n_q, key padding)
 *   x1  = LN1(r1)
 *   h   = ReLU(x1 W1^T + b1);  hd = Drop_2(h)
 *   r2  = x1 + Drop_3(hd W2^T + b2)
 *   out = LN2(r2)
 * Backward mirrors it in reverse and scatters the query-row gradient back into dx.
 * Dropout sites use keys derived from the layer key: 0 attention weights, 1 after attention,
 * 2 after the ReLU, 3 after the FFN.
 *
 * Packed rows (see nn_transformer.h) change only which rows exist: per batch row the query rows
 * are its last min(n_q, n_b) kept rows, gathered and scattered per batch row.
 *
 * Speed: the elementwise steps are fused into single passes (dropout + residual; ReLU + dropout).
 * The dropout masks are drawn in pieces (nn_dropout_piece) right before the pass that applies
 * them, so that their bytes are still in L1 when read (the same masks: they are stateless in the
 * counter). The FFN hidden layer keeps only hd = Drop(ReLU(.)), written in place over the first
 * linear's output, and no mask (nn_dropout_relu_forward): the backward needs neither ReLU(.) nor
 * the mask, since hd > 0 exactly where the pre-activation is > 0 and the element was kept (the
 * scale 1/(1-p) is >= 1). At the policy's shapes the hidden layer is the largest tensor of the
 * layer (F = 4E); a separate ReLU output, mask and their passes cost more than its Philox bits.
 * The backward writes its buffers instead of zeroing and accumulating where it can: dhd = dff W2
 * is a product with beta = 0, the ReLU/dropout backward overwrites it in place, and
 * dx1 = dr2 + dpre W1 accumulates into dr2. With n_q == T the attention's input gradients go
 * straight into dx. */
#include "common/nn/nn_transformer.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_check.h"
#include "common/nn/nn_activation.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_gemm.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"

enum { SITE_ATTN_WEIGHTS = 0, SITE_ATTN_OUT = 1, SITE_FFN_HIDDEN = 2, SITE_FFN_OUT = 3 };

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
static int64_t aligned(int64_t n) {
  return (n + NN_TRANSFORMER_ALIGN - 1) / NN_TRANSFORMER_ALIGN * NN_TRANSFORMER_ALIGN;
}
static int64_t bytes_as_floats(int64_t n_bytes) { return round16((n_bytes + 3) / 4); }

nn_transformer_layout nn_transformer_layout_of(int64_t E, int64_t F) {
  HSRL_CHECK(E > 0 && F > 0);
  nn_transformer_layout l;
  int64_t o = 0;
#define PLACE(field, n) (l.field = aligned(o), o = l.field + (n))
  PLACE(w_in, 3 * E * E);
  PLACE(b_in, 3 * E);
  PLACE(w_o, E * E);
  PLACE(b_o, E);
  PLACE(w1, F * E);
  PLACE(b1, F);
  PLACE(w2, E * F);
  PLACE(b2, E);
  PLACE(ln1_gamma, E);
  PLACE(ln1_beta, E);
  PLACE(ln2_gamma, E);
  PLACE(ln2_beta, E);
#undef PLACE
  l.n_params = o;
  return l;
}

int64_t nn_transformer_param_count(int64_t E, int64_t F) { return nn_transformer_layout_of(E, F).n_params; }

void nn_transformer_tensors(nn_transformer_tensor out[NN_TRANSFORMER_N_TENSORS], int64_t E, int64_t F) {
  nn_transformer_layout l = nn_transformer_layout_of(E, F);
  const nn_transformer_tensor t[NN_TRANSFORMER_N_TENSORS] = {
      {"attn/w_in", "self_attn.in_proj_weight", l.w_in, 3 * E, E},
      {"attn/b_in", "self_attn.in_proj_bias", l.b_in, 3 * E, 1},
      {"attn/w_o", "self_attn.out_proj.weight", l.w_o, E, E},
      {"attn/b_o", "self_attn.out_proj.bias", l.b_o, E, 1},
      {"w1", "linear1.weight", l.w1, F, E},
      {"b1", "linear1.bias", l.b1, F, 1},
      {"w2", "linear2.weight", l.w2, E, F},
      {"b2", "linear2.bias", l.b2, E, 1},
      {"ln1/gamma", "norm1.weight", l.ln1_gamma, E, 1},
      {"ln1/beta", "norm1.bias", l.ln1_beta, E, 1},
      {"ln2/gamma", "norm2.weight", l.ln2_gamma, E, 1},
      {"ln2/beta", "norm2.bias", l.ln2_beta, E, 1},
  };
  memcpy(out, t, sizeof t);
}

static void fill_uniform(float *x, int64_t n, double bound, hsrl_rng *rng) {
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)(-bound + 2.0 * bound * (double)hsrl_rng_uniform(rng));
}

static void fill_const(float *x, int64_t n, float v) {
  for (int64_t i = 0; i < n; i++) x[i] = v;
}

void nn_transformer_init(float *params, int64_t E, int64_t F, hsrl_rng *rng) {
  nn_transformer_layout l = nn_transformer_layout_of(E, F);
  memset(params, 0, (size_t)l.n_params * sizeof(float)); /* padding */
  fill_uniform(params + l.w_in, 3 * E * E, sqrt(6.0 / (double)(E + 3 * E)), rng); /* Xavier */
  fill_const(params + l.b_in, 3 * E, 0.0f);
  fill_uniform(params + l.w_o, E * E, 1.0 / sqrt((double)E), rng);
  fill_const(params + l.b_o, E, 0.0f);
  fill_uniform(params + l.w1, F * E, 1.0 / sqrt((double)E), rng);
  fill_uniform(params + l.b1, F, 1.0 / sqrt((double)E), rng);
  fill_uniform(params + l.w2, E * F, 1.0 / sqrt((double)F), rng);
  fill_uniform(params + l.b2, E, 1.0 / sqrt((double)F), rng);
  fill_const(params + l.ln1_gamma, E, 1.0f);
  fill_const(params + l.ln1_beta, E, 0.0f);
  fill_const(params + l.ln2_gamma, E, 1.0f);
  fill_const(params + l.ln2_beta, E, 0.0f);
}

static nn_mha_shape mha_shape_of(const nn_transformer_shape *s) {
  return (nn_mha_shape){s->B, s->n_q, s->T, s->E, s->n_heads};
}

static void check_shape(const nn_transformer_shape *s) {
  HSRL_CHECK(s->B >= 0 && s->T > 0 && s->E > 0 && s->F > 0);
  HSRL_CHECKF(s->n_q >= 1 && s->n_q <= s->T, "n_q %lld T %lld", (long long)s->n_q, (long long)s->T);
}

/* Views of the cache buffer. */
typedef struct layer_cache {
  float *xq;      /* (B, n_q, E) gathered query rows (unused when n_q == T) */
  float *mha;     /* nn_mha cache */
  float *r1;      /* (B, n_q, E) xq + Drop(attention) */
  float *mean1, *rstd1; /* (B, n_q) */
  float *x1;      /* (B, n_q, E) LN1 output */
  float *hd;      /* (B, n_q, F) Drop(ReLU(x1 W1^T + b1)) (ReLU(.) when p == 0) */
  float *r2;      /* (B, n_q, E) x1 + Drop(FFN) */
  float *mean2, *rstd2; /* (B, n_q) */
  uint8_t *m_attn, *m_ffn; /* dropout masks (B, n_q, E) after attention and after the FFN */
} layer_cache;

static layer_cache cache_view(float *buf, const nn_transformer_shape *s) {
  nn_mha_shape ms = mha_shape_of(s);
  int64_t n = s->B * s->n_q, E = s->E, F = s->F;
  layer_cache c;
  float *o = buf;
  c.xq = o, o += round16(n * E);
  c.mha = o, o += round16(nn_mha_cache_floats(&ms));
  c.r1 = o, o += round16(n * E);
  c.mean1 = o, o += round16(n);
  c.rstd1 = o, o += round16(n);
  c.x1 = o, o += round16(n * E);
  c.hd = o, o += round16(n * F);
  c.r2 = o, o += round16(n * E);
  c.mean2 = o, o += round16(n);
  c.rstd2 = o, o += round16(n);
  c.m_attn = (uint8_t *)o, o += bytes_as_floats(n * E);
  c.m_ffn = (uint8_t *)o, o += bytes_as_floats(n * E);
  return c;
}

int64_t nn_transformer_cache_floats(const nn_transformer_shape *s) {
  check_shape(s);
  nn_mha_shape ms = mha_shape_of(s);
  int64_t n = s->B * s->n_q, E = s->E, F = s->F;
  return 5 * round16(n * E) + round16(nn_mha_cache_floats(&ms)) + 4 * round16(n) + round16(n * F) +
         2 * bytes_as_floats(n * E);
}

int64_t nn_transformer_scratch_floats(const nn_transformer_shape *s) {
  check_shape(s);
  nn_mha_shape ms = mha_shape_of(s);
  int64_t n = s->B * s->n_q, E = s->E, F = s->F;
  /* dr2 (then dx1), df, dr1, dattn, dxq (n, E); dhd (then dpre) (n, F); the MHA backward's */
  return 5 * round16(n * E) + round16(n * F) + round16(nn_mha_scratch_floats(&ms));
}

/* Which rows a call computes. Dense: every batch row has its T input rows and its last n_q query
 * rows. Packed (rows != NULL, nn_transformer_forward_packed): batch row b has its last
 * n_b = rows[b+1] - rows[b] input rows, at rows[b].. of x, and its last min(n_q, n_b) query rows,
 * one batch row after the other. */
static int64_t x_row0(const int64_t *rows, int64_t b, int64_t T) { return rows ? rows[b] : b * T; }
static int64_t x_rows(const int64_t *rows, int64_t b, int64_t T) { return rows ? rows[b + 1] - rows[b] : T; }
static int64_t q_rows(const int64_t *rows, int64_t b, const nn_transformer_shape *s) {
  const int64_t n_b = x_rows(rows, b, s->T);
  return n_b < s->n_q ? n_b : s->n_q;
}
static int64_t all_q_rows(const int64_t *rows, const nn_transformer_shape *s) {
  int64_t n = 0;
  for (int64_t b = 0; b < s->B; b++) n += q_rows(rows, b, s);
  return n;
}

static void check_rows(const int64_t *rows, const nn_transformer_shape *s) {
  HSRL_CHECKF(rows[0] == 0, "packed rows start at %lld", (long long)rows[0]);
  for (int64_t b = 0; b < s->B; b++)
    HSRL_CHECKF(rows[b + 1] >= rows[b] && rows[b + 1] - rows[b] <= s->T,
                "batch row %lld has %lld packed rows of at most %lld", (long long)b,
                (long long)(rows[b + 1] - rows[b]), (long long)s->T);
}

/* Fused elementwise passes, in fixed blocks GCC vectorises (see nn_activation.c); the dropout
 * selections are bit masks (a float select stays a branch under -ftrapping-math). 32 elements: a
 * block's mask bytes fill a 256-bit register (with 16, GCC widened them in 128-bit pieces). */
#define NN_TR_BLOCK 32

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_TR_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_TR_HOT
#endif

/* r = res + r (no dropout) */
NN_TR_HOT static void residual_add(float *restrict r, const float *restrict res, int64_t n) {
  int64_t i = 0;
  for (; i + NN_TR_BLOCK <= n; i += NN_TR_BLOCK)
    for (int k = 0; k < NN_TR_BLOCK; k++) r[i + k] += res[i + k];
  for (; i < n; i++) r[i] += res[i];
}

/* r = res + Drop(r): res + r * scale where kept, res elsewhere */
NN_TR_HOT static void residual_dropout(float *restrict r, const float *restrict res,
                                       const uint8_t *restrict keep, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + NN_TR_BLOCK <= n; i += NN_TR_BLOCK)
    for (int k = 0; k < NN_TR_BLOCK; k++)
      r[i + k] = res[i + k] + nn_dropout_keep_or_zero(r[i + k] * scale, keep[i + k] != 0);
  for (; i < n; i++) r[i] = res[i] + (keep[i] ? r[i] * scale : 0.0f);
}

/* A dropout site over the query rows of a (B, T, width) tensor x (packed as the query rows are),
 * its mask indexed by absolute row: batch row b's last q_rows(b) rows use the counters of rows
 * b T + T - q_rows(b) .. b T + T - 1. With res: x = res + Drop(x), the mask stored in mask (for the
 * backward), each piece drawn right before it is used; without (res and mask NULL):
 * x = Drop(ReLU(x)) (nn_dropout_relu_forward), no mask kept. */
static void dropout_rows(float *x, const float *res, uint8_t *mask, const nn_transformer_shape *s,
                         const int64_t *rows, int64_t width, float p, uint64_t key, uint64_t offset) {
  const float scale = 1.0f / (1.0f - p);
  for (int64_t b = 0, q0 = 0; b < s->B; b++) {
    const int64_t nq = q_rows(rows, b, s), len = nq * width;
    const uint64_t c0 = offset + (uint64_t)((b * s->T + s->T - nq) * width);
    if (!res) nn_dropout_relu_forward(x + q0 * width, len, p, key, c0);
    else
      for (int64_t i = 0, m; i < len; i += m) {
        const int64_t at = q0 * width + i;
        m = nn_dropout_piece(c0 + (uint64_t)i, len - i);
        nn_dropout_mask(mask + at, m, p, key, c0 + (uint64_t)i);
        residual_dropout(x + at, res + at, mask + at, m, scale);
      }
    q0 += nq;
  }
}

static void layer_forward(float *out, float *cache, const float *x, const float *params,
                          const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                          const nn_transformer_shape *s, const int64_t *rows) {
  check_shape(s);
  if (rows) check_rows(rows, s);
  const int64_t B = s->B, T = s->T, nq = s->n_q, E = s->E, F = s->F, n = all_q_rows(rows, s);
  const nn_transformer_layout l = nn_transformer_layout_of(E, F);
  const nn_mha_shape ms = mha_shape_of(s);
  layer_cache c = cache_view(cache, s);
  nn_mha_mask m = {mask ? mask->causal : 0, T - nq, mask ? mask->key_padding : NULL};

  const float *xq = x; /* the query rows: x itself when every input row is a query (n_q == T) */
  if (nq < T) {
    for (int64_t b = 0, q0 = 0; b < B; b++) {
      const int64_t nqb = q_rows(rows, b, s);
      memcpy(c.xq + q0 * E, x + (x_row0(rows, b, T) + x_rows(rows, b, T) - nqb) * E,
             (size_t)(nqb * E) * sizeof(float));
      q0 += nqb;
    }
    xq = c.xq;
  }

  /* r1 = xq + Drop(MHA(xq, x)) */
  const uint64_t k_att = hsrl_rng_derive(key, SITE_ATTN_WEIGHTS);
  if (rows)
    nn_mha_forward_packed(c.r1, c.mha, xq, x, params + l.w_in, params + l.b_in, params + l.w_o,
                          params + l.b_o, &m, p, k_att, offset, &ms, rows);
  else
    nn_mha_forward(c.r1, c.mha, xq, x, params + l.w_in, params + l.b_in, params + l.w_o,
                   params + l.b_o, &m, p, k_att, offset, &ms);
  if (p > 0.0f) dropout_rows(c.r1, xq, c.m_attn, s, rows, E, p, hsrl_rng_derive(key, SITE_ATTN_OUT), offset);
  else residual_add(c.r1, xq, n * E);
  nn_layernorm_forward(c.x1, c.mean1, c.rstd1, c.r1, params + l.ln1_gamma, params + l.ln1_beta, n, E);

  /* FFN: hd = Drop(ReLU(x1 W1^T + b1)) in place, r2 = x1 + Drop(hd W2^T + b2) */
  nn_linear_forward(c.hd, c.x1, params + l.w1, params + l.b1, n, E, F);
  if (p > 0.0f) dropout_rows(c.hd, NULL, NULL, s, rows, F, p, hsrl_rng_derive(key, SITE_FFN_HIDDEN), offset);
  else nn_relu_forward(c.hd, c.hd, n * F);
  nn_linear_forward(c.r2, c.hd, params + l.w2, params + l.b2, n, F, E);
  if (p > 0.0f) dropout_rows(c.r2, c.x1, c.m_ffn, s, rows, E, p, hsrl_rng_derive(key, SITE_FFN_OUT), offset);
  else residual_add(c.r2, c.x1, n * E);
  nn_layernorm_forward(out, c.mean2, c.rstd2, c.r2, params + l.ln2_gamma, params + l.ln2_beta, n, E);
}

static void layer_backward(float *dx, float *dparams, float *scratch, const float *dout,
                           const float *cache, const float *x, const float *params,
                           const nn_mha_mask *mask, float p, const nn_transformer_shape *s,
                           const int64_t *rows) {
  check_shape(s);
  if (rows) check_rows(rows, s);
  const int64_t B = s->B, T = s->T, nq = s->n_q, E = s->E, F = s->F, n = all_q_rows(rows, s);
  const nn_transformer_layout l = nn_transformer_layout_of(E, F);
  const nn_mha_shape ms = mha_shape_of(s);
  layer_cache c = cache_view((float *)cache, s); /* read only below */
  nn_mha_mask m = {mask ? mask->causal : 0, T - nq, mask ? mask->key_padding : NULL};
  const size_t nE = (size_t)(n * E) * sizeof(float);
  const int64_t sn = B * nq; /* the scratch views are sized for the dense shape */
#define DP(field) (dparams ? dparams + l.field : NULL)

  float *dr2 = scratch;               /* (n, E) dL/dr2, then dL/dx1 */
  float *df = dr2 + round16(sn * E);   /* (n, E) */
  float *dr1 = df + round16(sn * E);   /* (n, E) */
  float *dattn = dr1 + round16(sn * E); /* (n, E) */
  float *dxq = dattn + round16(sn * E); /* (n, E) */
  float *dhd = dxq + round16(sn * E);   /* (n, F) dL/dhd, then dL/dpre */
  float *mha_scratch = dhd + round16(sn * F);

  /* out = LN2(r2) (dr2 written) */
  nn_layernorm_backward_set(dr2, DP(ln2_gamma), DP(ln2_beta), dout, c.r2, c.mean2, c.rstd2,
                            params + l.ln2_gamma, n, E);
  /* r2 = x1 + Drop(hd W2^T + b2): dff = Drop'(dr2); dhd = dff W2 (written, not accumulated) */
  const float *dff = dr2;
  if (p > 0.0f) {
    nn_dropout_apply(df, dr2, c.m_ffn, n * E, p); /* the dropout backward, written */
    dff = df;
  }
  nn_gemm(0, 0, n, F, E, 1.0f, dff, E, params + l.w2, F, 0.0f, dhd, F);
  if (dparams) nn_linear_backward(NULL, DP(w2), DP(b2), dff, c.hd, params + l.w2, n, F, E);
  /* hd = Drop(ReLU(x1 W1^T + b1)): dpre in place of dhd; dx1 = dr2 + dpre W1, into dr2 */
  nn_dropout_relu_backward(dhd, c.hd, n * F, p);
  nn_gemm(0, 0, n, E, F, 1.0f, dhd, F, params + l.w1, E, 1.0f, dr2, E);
  if (dparams) nn_linear_backward(NULL, DP(w1), DP(b1), dhd, c.x1, params + l.w1, n, E, F);
  /* x1 = LN1(r1) (dr1 written) */
  nn_layernorm_backward_set(dr1, DP(ln1_gamma), DP(ln1_beta), dr2, c.r1, c.mean1, c.rstd1,
                            params + l.ln1_gamma, n, E);
  /* r1 = xq + Drop(MHA(xq, x)) */
  const float *da = dr1;
  if (p > 0.0f) {
    nn_dropout_apply(dattn, dr1, c.m_attn, n * E, p);
    da = dattn;
  }
  if (dx && nq == T) {
    /* xq is x: both attention input gradients and the residual's go into dx */
    if (rows)
      nn_mha_backward_packed(dx, dx, DP(w_in), DP(b_in), DP(w_o), DP(b_o), mha_scratch, da, c.mha, x,
                             x, params + l.w_in, params + l.w_o, &m, p, &ms, rows);
    else
      nn_mha_backward(dx, dx, DP(w_in), DP(b_in), DP(w_o), DP(b_o), mha_scratch, da, c.mha, x, x,
                      params + l.w_in, params + l.w_o, &m, p, &ms);
    residual_add(dx, dr1, n * E);
  } else {
    const float *xq = nq < T ? c.xq : x;
    if (dx) memcpy(dxq, dr1, nE);
    if (rows)
      nn_mha_backward_packed(dx ? dxq : NULL, dx, DP(w_in), DP(b_in), DP(w_o), DP(b_o), mha_scratch,
                             da, c.mha, xq, x, params + l.w_in, params + l.w_o, &m, p, &ms, rows);
    else
      nn_mha_backward(dx ? dxq : NULL, dx, DP(w_in), DP(b_in), DP(w_o), DP(b_o), mha_scratch, da,
                      c.mha, xq, x, params + l.w_in, params + l.w_o, &m, p, &ms);
    if (dx) {
      for (int64_t b = 0, q0 = 0; b < B; b++) {
        const int64_t nqb = q_rows(rows, b, s);
        residual_add(dx + (x_row0(rows, b, T) + x_rows(rows, b, T) - nqb) * E, dxq + q0 * E, nqb * E);
        q0 += nqb;
      }
    }
  }
#undef DP
}

void nn_transformer_forward(float *out, float *cache, const float *x, const float *params,
                            const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                            const nn_transformer_shape *s) {
  layer_forward(out, cache, x, params, mask, p, key, offset, s, NULL);
}

void nn_transformer_forward_packed(float *out, float *cache, const float *x, const float *params,
                                   const nn_mha_mask *mask, float p, uint64_t key, uint64_t offset,
                                   const nn_transformer_shape *s, const int64_t *rows) {
  HSRL_CHECK(rows != NULL);
  layer_forward(out, cache, x, params, mask, p, key, offset, s, rows);
}

void nn_transformer_backward(float *dx, float *dparams, float *scratch, const float *dout,
                             const float *cache, const float *x, const float *params,
                             const nn_mha_mask *mask, float p, const nn_transformer_shape *s) {
  layer_backward(dx, dparams, scratch, dout, cache, x, params, mask, p, s, NULL);
}

void nn_transformer_backward_packed(float *dx, float *dparams, float *scratch, const float *dout,
                                    const float *cache, const float *x, const float *params,
                                    const nn_mha_mask *mask, float p, const nn_transformer_shape *s,
                                    const int64_t *rows) {
  HSRL_CHECK(rows != NULL);
  layer_backward(dx, dparams, scratch, dout, cache, x, params, mask, p, s, rows);
}
