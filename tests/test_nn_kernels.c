/* test_nn_kernels.c: the vectorised paths of the numerical core (common/nn; architecture.md
 * "Numerical core"), on the shapes where they switch on.
 *
 * The layer tests (test_nn_layers, test_nn_mha, test_nn_transformer, test_golden_torch) use small
 * odd shapes: head width 4, rows shorter than a vector block. The fast kernels have separate code
 * for full blocks (16 keys, 8 head columns, 8/16 elements) and for tails, and separate
 * instruction-set paths for the dropout words, so this file checks:
 * - dropout words of every instruction-set path (portable C, SSE2, AVX2, AVX-512, whichever the
 *   machine has) against hsrl_philox4x32 with the documented counter layout, at odd offsets and
 *   lengths and across a carry into the high counter word; masks against the 16-bit halves of the
 *   words (element i against half i % 2 of word i / 2) at odd offsets and lengths, and the
 *   threshold round(p 65536) at p near 0 and near 1;
 * - ReLU, dropout apply/backward, the linear bias gradient and LayerNorm against plain scalar
 *   references on lengths around the block sizes, in place and out of place; the dropout forms
 *   that draw and apply piece by piece (plain and fused with a ReLU) against the whole mask, over
 *   several pieces from even and odd counters;
 * - multi-head attention against a naive double-precision reference written here (forward,
 *   every gradient, and the cached weights before/after dropout) for head widths 8, 16, 12 and
 *   10 (full blocks and tails), causal masks with query offsets, key padding, Tk a multiple of 16
 *   and not, dropout on and off, the policy's shape (T = 50, d = 32, 4 heads) included;
 * - central differences on attention with head width 8 and dropout, and a broken backward (told
 *   p = 0 after a p > 0 forward) that the checker must reject;
 * - the transformer layer's last-position mode against its full mode at the policy's shape. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_activation.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_mha.h"
#include "common/nn/nn_transformer.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

/* ---------------------------------------------------------------- dropout words */

/* The documented layout (nn_dropout.c): word (c % 4) of Philox block c / 4, ctr = (block, "DROP",
 * "MASK"), key = (low, high) of the 64-bit key. */
static uint32_t ref_word(uint64_t key, uint64_t c) {
  uint64_t blk = c / 4;
  uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 0x44524f50u, 0x4d41534bu};
  uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)}, out[4];
  hsrl_philox4x32(out, ctr, k);
  return out[c % 4];
}

/* The documented mask (nn_dropout.h): element c is kept when the 16-bit half c % 2 (low first)
 * of word c / 2 is >= t = round(p 65536), capped at 65535; p == 0 keeps everything. Written from
 * the contract, not from the kernel: lround and the cap. */
static uint32_t ref_threshold(float p) {
  long t = lround((double)p * 65536.0);
  return (uint32_t)(t > 65535 ? 65535 : t);
}

static int ref_keep(uint64_t key, uint64_t c, float p) {
  if (p == 0.0f) return 1;
  uint32_t half = (ref_word(key, c / 2) >> (16 * (c % 2))) & 0xffffu;
  return half >= ref_threshold(p);
}

static void test_dropout_words_every_isa(void) {
  enum { N = 700 };
  static uint32_t w[N];
  const uint64_t keys[2] = {0x1234u, 0xfeedface12345678ull};
  /* offsets: aligned, odd, and one whose blocks cross 2^32 (carry into ctr[1]) */
  const uint64_t offsets[3] = {0, 7, 4ull * 0xfffffff0ull + 3};
  const int64_t lens[6] = {0, 1, 3, 29, 257, N};
  int64_t checked = 0;
  for (int isa = NN_DROPOUT_ISA_C; isa <= NN_DROPOUT_ISA_AVX512; isa++)
    for (int k = 0; k < 2; k++)
      for (int o = 0; o < 3; o++)
        for (int l = 0; l < 6; l++) {
          nn_dropout_words(w, lens[l], keys[k], offsets[o], isa);
          for (int64_t i = 0; i < lens[l]; i++) {
            TEST_ASSERTF(w[i] == ref_word(keys[k], offsets[o] + (uint64_t)i),
                         "isa %d key %d offset %llu len %lld: word %lld differs", isa, k,
                         (unsigned long long)offsets[o], (long long)lens[l], (long long)i);
            checked++;
          }
        }
  /* Masks are the 16-bit halves of the words against t: element i at counter c = offset + i
   * reads half c % 2 of stream word c / 2; odd and even offsets, lengths around the vector
   * blocks, and an offset near the top of the counter space. p = 0 keeps everything. */
  uint8_t m[N];
  const uint64_t m_offsets[4] = {5, 6, 0, 8ull * 0xfffffff0ull + 3};
  const int64_t m_lens[8] = {1, 2, 7, 9, 16, 17, 33, N};
  int64_t kept = 0, decided = 0;
  for (int o = 0; o < 4; o++)
    for (int l = 0; l < 8; l++) {
      const int64_t n = m_lens[l];
      memset(m, 0xee, sizeof m);
      nn_dropout_mask(m, n, 0.3f, 99, m_offsets[o]);
      nn_dropout_words(w, (n + 1) / 2 + 1, 99, m_offsets[o] / 2, NN_DROPOUT_ISA_BEST);
      for (int64_t i = 0; i < n; i++) {
        const uint64_t c = m_offsets[o] + (uint64_t)i;
        const uint32_t half = (w[c / 2 - m_offsets[o] / 2] >> (16 * (c % 2))) & 0xffffu;
        TEST_ASSERTF(m[i] == (half >= ref_threshold(0.3f)), "offset %llu len %lld: element %lld",
                     (unsigned long long)m_offsets[o], (long long)n, (long long)i);
        TEST_ASSERT(m[i] == ref_keep(99, c, 0.3f));
        kept += m[i];
        decided++;
      }
      for (int64_t i = n; i < N; i++) TEST_ASSERT(m[i] == 0xee); /* nothing past the end */
    }
  TEST_ASSERT(kept > decided / 2 && kept < decided); /* ~70% */
  TEST_ASSERT(ref_threshold(0.3f) == 19661u); /* 0.3f 65536 = 19660.8 */
  nn_dropout_mask(m, N, 0.0f, 99, 5);
  for (int i = 0; i < N; i++) TEST_ASSERT(m[i] == 1);
  /* p below 2^-17 rounds to t = 0: everything kept. p = 2^-17 is the half-way case: t = 1, so a
   * half of 0 is dropped; the test only checks that the mask is the reference's. */
  nn_dropout_mask(m, N, 7e-6f, 99, 5);
  for (int i = 0; i < N; i++) TEST_ASSERT(m[i] == 1);
  TEST_ASSERT(ref_threshold(0x1p-17f) == 1u);
  nn_dropout_mask(m, N, 0x1p-17f, 99, 5);
  for (int i = 0; i < N; i++) TEST_ASSERT(m[i] == ref_keep(99, 5 + (uint64_t)i, 0x1p-17f));
  /* The largest float below 1 would round to 65536, which no half reaches: capped at 65535, so
   * exactly the halves equal to 65535 are kept (about 1 in 65536), never all dropped by a bug
   * that compares against 65536 or wraps it to 0 (which would keep everything). */
  const float p_top = nextafterf(1.0f, 0.0f);
  TEST_ASSERT(ref_threshold(p_top) == 65535u);
  nn_dropout_mask(m, N, p_top, 99, 5);
  int64_t kept_top = 0;
  for (int i = 0; i < N; i++) {
    TEST_ASSERT(m[i] == ref_keep(99, 5 + (uint64_t)i, p_top));
    kept_top += m[i];
  }
  TEST_ASSERT(kept_top < 10);
  /* The boundary: p = h / 65536 for the half h of some element gives t = h exactly, and that
   * element is kept (half >= t); against t = h + 1 it is dropped. */
  nn_dropout_words(w, N, 99, 0, NN_DROPOUT_ISA_BEST);
  int boundary = 0;
  for (int i = 0; i < 2 * N && boundary < 20; i++) {
    const uint32_t h = (w[i / 2] >> (16 * (i % 2))) & 0xffffu;
    if (h == 0 || h == 65535) continue;
    const float p_h = (float)h / 65536.0f; /* exact: h < 2^24 */
    nn_dropout_mask(m, 1, p_h, 99, (uint64_t)i);
    TEST_ASSERTF(m[0] == 1, "element %d: half %u against t = %u must be kept", i, h, h);
    nn_dropout_mask(m, 1, (float)(h + 1) / 65536.0f, 99, (uint64_t)i);
    TEST_ASSERTF(m[0] == 0, "element %d: half %u against t = %u must be dropped", i, h, h + 1);
    boundary++;
  }
  TEST_ASSERT(boundary == 20);
  printf("  %lld words checked over every instruction-set path\n", (long long)checked);
}

/* ---------------------------------------------------------------- elementwise kernels */

static const int64_t LENS[9] = {0, 1, 7, 15, 16, 17, 31, 33, 1001};

static void test_relu_blocks(void) {
  enum { N = 1001 };
  static float x[N], y[N], z[N], g[N], d[N], ref[N];
  test_fill_uniform(x, N, -1, 1, 1);
  test_fill_uniform(g, N, -1, 1, 2);
  x[5] = NAN;
  for (int l = 0; l < 9; l++) {
    int64_t n = LENS[l];
    nn_relu_forward(y, x, n);
    memcpy(z, x, sizeof z);
    nn_relu_forward(z, z, n); /* in place */
    for (int64_t i = 0; i < n; i++) {
      float want = x[i] < 0.0f ? 0.0f : x[i];
      TEST_ASSERT(i == 5 ? isnan(y[i]) && isnan(z[i]) : y[i] == want && z[i] == want);
    }
    for (int64_t i = 0; i < n; i++) d[i] = ref[i] = 0.25f;
    nn_relu_backward(d, g, y, n);
    for (int64_t i = 0; i < n; i++) ref[i] += y[i] > 0.0f ? g[i] : 0.0f;
    TEST_ASSERT(memcmp(d, ref, (size_t)n * sizeof(float)) == 0);
    memcpy(d, g, sizeof d); /* dinp == dout */
    nn_relu_backward(d, d, y, n);
    for (int64_t i = 0; i < n; i++) TEST_ASSERT(d[i] == g[i] + (y[i] > 0.0f ? g[i] : 0.0f));
  }
}

static void test_dropout_apply_blocks(void) {
  enum { N = 1001 };
  static float x[N], y[N], z[N], g[N], d[N];
  static uint8_t m[N];
  test_fill_uniform(x, N, -1, 1, 3);
  test_fill_uniform(g, N, -1, 1, 4);
  const float p = 0.1f, s = 1.0f / (1.0f - p);
  for (int l = 0; l < 9; l++) {
    int64_t n = LENS[l];
    nn_dropout_forward(y, m, x, n, p, 77, 13);
    memcpy(z, x, sizeof z);
    nn_dropout_apply(z, z, m, n, p);
    for (int64_t i = 0; i < n; i++) {
      float want = m[i] ? x[i] * s : 0.0f;
      TEST_ASSERT(y[i] == want && z[i] == want);
    }
    for (int64_t i = 0; i < n; i++) d[i] = 0.5f;
    nn_dropout_backward(d, g, m, n, p);
    for (int64_t i = 0; i < n; i++) TEST_ASSERT(d[i] == 0.5f + (m[i] ? g[i] * s : 0.0f));
    memcpy(d, g, sizeof d);
    nn_dropout_backward(d, d, m, n, p);
    for (int64_t i = 0; i < n; i++) TEST_ASSERT(d[i] == g[i] + (m[i] ? g[i] * s : 0.0f));
  }
}

/* The forms that draw and apply in pieces (nn_dropout_forward, nn_dropout_relu_forward: up to
 * NN_DROPOUT_PIECE elements at a time, ending on Philox block boundaries) against the whole
 * tensor's mask applied by a scalar loop, at lengths around the vector blocks and across several
 * pieces, from counters at a block boundary and inside a block (a shorter first piece); the fused
 * ReLU backward against its scalar definition, p = 0 included. */
static void test_dropout_pieces_and_relu_blocks(void) {
  enum { N = 3000 };
  static float x[N], y[N], z[N], g[N], d[N];
  static uint8_t m[N], whole[N];
  test_fill_uniform(x, N, -1, 1, 8);
  test_fill_uniform(g, N, -1, 1, 9);
  x[5] = NAN, x[6] = NAN;
  const int64_t lens[6] = {1, 17, 1001, NN_DROPOUT_PIECE, NN_DROPOUT_PIECE + 1, 3000};
  const uint64_t offsets[2] = {16, 13};
  const float ps[2] = {0.0f, 0.3f};
  for (int a = 0; a < 2; a++)
    for (int o = 0; o < 2; o++)
      for (int l = 0; l < 6; l++) {
        const int64_t n = lens[l];
        const float p = ps[a], sc = 1.0f / (1.0f - p);
        nn_dropout_mask(whole, n, p, 31, offsets[o]);
        nn_dropout_forward(y, m, x, n, p, 31, offsets[o]);
        TEST_ASSERT(memcmp(m, whole, (size_t)n) == 0);
        memcpy(z, x, sizeof z);
        nn_dropout_forward(z, m, z, n, p, 31, offsets[o]); /* in place */
        for (int64_t i = 0; i < n; i++) {
          const float want = whole[i] ? x[i] * sc : 0.0f;
          TEST_ASSERT(i == 5 || i == 6 ? (isnan(y[i]) && isnan(z[i])) == (whole[i] != 0)
                                       : y[i] == want && z[i] == want);
        }
        memcpy(z, x, sizeof z);
        nn_dropout_relu_forward(z, n, p, 31, offsets[o]);
        int n_drop = 0;
        for (int64_t i = 0; i < n; i++) {
          const float r = x[i] < 0.0f ? 0.0f : x[i];
          n_drop += !whole[i];
          if (i == 5 || i == 6) TEST_ASSERT(whole[i] ? isnan(z[i]) : z[i] == 0.0f); /* NaN not hidden */
          else TEST_ASSERTF(z[i] == (whole[i] ? r * sc : 0.0f), "n %lld element %lld", (long long)n, (long long)i);
        }
        TEST_ASSERT(p > 0.0f || n_drop == 0);
        if (p > 0.0f && n >= 1000) TEST_ASSERT(n_drop > n / 5 && n_drop < 2 * n / 5);
        memcpy(d, g, sizeof d);
        nn_dropout_relu_backward(d, z, n, p);
        for (int64_t i = 0; i < n; i++) TEST_ASSERT(d[i] == (z[i] > 0.0f ? g[i] * sc : 0.0f));
        for (int64_t i = n; i < N; i++) TEST_ASSERT(d[i] == g[i]); /* nothing past n written */
      }
}

/* Bias gradient (column sums, in chunks of 256 columns) against double sums. */
static void test_linear_bias_grad_blocks(void) {
  const int64_t outs[4] = {1, 7, 8, 300}, n = 37, in = 5;
  for (int k = 0; k < 4; k++) {
    int64_t m = outs[k];
    float *dout = hsrl_malloc((size_t)(n * m) * sizeof(float));
    float *inp = hsrl_malloc((size_t)(n * in) * sizeof(float));
    float *w = hsrl_malloc((size_t)(m * in) * sizeof(float));
    float *db = hsrl_malloc((size_t)m * sizeof(float)), *ref = hsrl_malloc((size_t)m * sizeof(float));
    test_fill_uniform(dout, n * m, -1, 1, 5);
    test_fill_uniform(inp, n * in, -1, 1, 6);
    test_fill_uniform(w, m * in, -1, 1, 7);
    for (int64_t o = 0; o < m; o++) {
      double s = 0.0;
      for (int64_t i = 0; i < n; i++) s += (double)dout[i * m + o];
      ref[o] = (float)(s + 1.0);
      db[o] = 1.0f;
    }
    nn_linear_backward(NULL, NULL, db, dout, inp, w, n, in, m);
    double d = test_max_scaled_diff(db, ref, m, 1e-6, 1e-6);
    hsrl_free(dout), hsrl_free(inp), hsrl_free(w), hsrl_free(db), hsrl_free(ref);
    TEST_ASSERTF(d <= 1.0, "out_dim %lld: bias gradient scaled diff %g", (long long)m, d);
  }
}

/* LayerNorm against double statistics and the explicit Jacobian, rows of several widths and
 * counts (groups of 8 rows, blocks of 8 columns, tails of both), in place for the backward too. */
static void test_layernorm_blocks(void) {
  const int64_t ds[3] = {32, 37, 5}, ns[3] = {1, 9, 17};
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      const int64_t d = ds[a], n = ns[b], nd = n * d;
      float *x = hsrl_malloc((size_t)nd * sizeof(float)), *y = hsrl_malloc((size_t)nd * sizeof(float));
      float *dy = hsrl_malloc((size_t)nd * sizeof(float)), *dx = hsrl_calloc((size_t)nd, sizeof(float));
      float *dx2 = hsrl_malloc((size_t)nd * sizeof(float));
      float *ry = hsrl_malloc((size_t)nd * sizeof(float)), *rdx = hsrl_malloc((size_t)nd * sizeof(float));
      float g[40], be[40], dg[40] = {0}, db[40] = {0}, rdg[40], rdb[40], mean[17], rstd[17];
      test_fill_uniform(x, nd, -2, 3, 10 + (uint64_t)a);
      test_fill_uniform(dy, nd, -1, 1, 20 + (uint64_t)b);
      test_fill_uniform(g, d, 0.5f, 1.5f, 30);
      test_fill_uniform(be, d, -0.5f, 0.5f, 31);
      nn_layernorm_forward(y, mean, rstd, x, g, be, n, d);
      nn_layernorm_backward(dx, dg, db, dy, x, mean, rstd, g, n, d);
      double sdg[40] = {0}, sdb[40] = {0};
      for (int64_t i = 0; i < n; i++) {
        const float *xr = x + i * d, *dyr = dy + i * d;
        double m = 0.0, v = 0.0, xh[40];
        for (int64_t j = 0; j < d; j++) m += (double)xr[j];
        m /= (double)d;
        for (int64_t j = 0; j < d; j++) v += ((double)xr[j] - m) * ((double)xr[j] - m);
        double rs = 1.0 / sqrt(v / (double)d + NN_LAYERNORM_EPS);
        TEST_NEAR(mean[i], m, 1e-6);
        TEST_NEAR(rstd[i], rs, 1e-6 * rs);
        for (int64_t j = 0; j < d; j++) {
          xh[j] = ((double)xr[j] - m) * rs;
          ry[i * d + j] = (float)(xh[j] * (double)g[j] + (double)be[j]);
          sdg[j] += (double)dyr[j] * xh[j];
          sdb[j] += (double)dyr[j];
        }
        for (int64_t k = 0; k < d; k++) {
          double s = 0.0;
          for (int64_t j = 0; j < d; j++)
            s += (double)dyr[j] * (double)g[j] * rs *
                 ((j == k ? 1.0 : 0.0) - 1.0 / (double)d - xh[j] * xh[k] / (double)d);
          rdx[i * d + k] = (float)s;
        }
      }
      for (int64_t j = 0; j < d; j++) rdg[j] = (float)sdg[j], rdb[j] = (float)sdb[j];
      /* in place: dinp == dout accumulates the gradient onto dout */
      memcpy(dx2, dy, (size_t)nd * sizeof(float));
      nn_layernorm_backward(dx2, NULL, NULL, dx2, x, mean, rstd, g, n, d);
      for (int64_t i = 0; i < nd; i++) dx2[i] -= dy[i];
      double e[5] = {test_max_scaled_diff(y, ry, nd, 1e-5, 1e-5), test_max_scaled_diff(dx, rdx, nd, 1e-5, 1e-4),
                     test_max_scaled_diff(dg, rdg, d, 1e-5, 1e-4), test_max_scaled_diff(db, rdb, d, 1e-5, 1e-4),
                     test_max_scaled_diff(dx2, rdx, nd, 1e-5, 1e-4)};
      hsrl_free(x), hsrl_free(y), hsrl_free(dy), hsrl_free(dx), hsrl_free(dx2), hsrl_free(ry), hsrl_free(rdx);
      for (int k = 0; k < 5; k++)
        TEST_ASSERTF(e[k] <= 1.0, "d %lld n %lld: check %d scaled diff %g", (long long)d, (long long)n, k, e[k]);
    }
}

/* ---------------------------------------------------------------- attention */

typedef struct attn_case {
  nn_mha_shape s;
  nn_mha_mask m;
  float p;
  uint64_t key, offset;
  uint8_t *pad;
  float *q, *kv, *w_in, *b_in, *w_o, *b_o, *dout;
  float *out, *cache, *scratch;
  float *dq, *dkv, *dw_in, *db_in, *dw_o, *db_o;
  float backward_p; /* p passed to the backward (== p unless testing a broken backward) */
} attn_case;

static float *falloc(int64_t n) { return hsrl_calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static void attn_init(attn_case *c, nn_mha_shape s, int causal, int64_t q_offset, int with_pad,
                      float p, uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->s = s;
  c->p = c->backward_p = p;
  c->key = 0xabc000u + seed;
  c->offset = 777;
  const int64_t E = s.E, nq = s.B * s.Tq * E, nk = s.B * s.Tk * E;
  c->pad = hsrl_calloc((size_t)(s.B * s.Tk + 1), 1);
  if (with_pad) /* row b: b * 3 keys of left padding, and key Tk - 2 of row 0 */
    for (int64_t b = 0; b < s.B; b++)
      for (int64_t j = 0; j < s.Tk; j++)
        c->pad[b * s.Tk + j] = (uint8_t)(j < 3 * b || (b == 0 && j == s.Tk - 2 && s.Tk > 3));
  c->m = (nn_mha_mask){causal, q_offset, with_pad ? c->pad : NULL};
  c->q = falloc(nq), c->kv = falloc(nk), c->dout = falloc(nq), c->out = falloc(nq);
  c->w_in = falloc(3 * E * E), c->b_in = falloc(3 * E), c->w_o = falloc(E * E), c->b_o = falloc(E);
  c->dq = falloc(nq), c->dkv = falloc(nk), c->dw_in = falloc(3 * E * E), c->db_in = falloc(3 * E);
  c->dw_o = falloc(E * E), c->db_o = falloc(E);
  c->cache = falloc(nn_mha_cache_floats(&s));
  c->scratch = falloc(nn_mha_scratch_floats(&s));
  test_fill_uniform(c->q, nq, -1, 1, seed + 1);
  test_fill_uniform(c->kv, nk, -1, 1, seed + 2);
  test_fill_uniform(c->w_in, 3 * E * E, -0.5f, 0.5f, seed + 3);
  test_fill_uniform(c->b_in, 3 * E, -0.3f, 0.3f, seed + 4);
  test_fill_uniform(c->w_o, E * E, -0.5f, 0.5f, seed + 5);
  test_fill_uniform(c->b_o, E, -0.3f, 0.3f, seed + 6);
  test_fill_uniform(c->dout, nq, -1, 1, seed + 7);
}

static void attn_free(attn_case *c) {
  float *all[] = {c->q, c->kv, c->dout, c->out, c->w_in, c->b_in, c->w_o, c->b_o, c->dq, c->dkv,
                  c->dw_in, c->db_in, c->dw_o, c->db_o, c->cache, c->scratch};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hsrl_free(all[i]);
  hsrl_free(c->pad);
}

static void attn_forward(void *ctx) {
  attn_case *c = ctx;
  nn_mha_forward(c->out, c->cache, c->q, c->kv, c->w_in, c->b_in, c->w_o, c->b_o, &c->m, c->p,
                 c->key, c->offset, &c->s);
}

static void attn_backward(void *ctx) {
  attn_case *c = ctx;
  nn_mha_backward(c->dq, c->dkv, c->dw_in, c->db_in, c->dw_o, c->db_o, c->scratch, c->dout,
                  c->cache, c->q, c->kv, c->w_in, c->w_o, &c->m, c->backward_p, &c->s);
}

/* Naive double reference of nn_mha.h: outputs (and gradients overwritten) plus the weights
 * before (A) and after (Ad) dropout, (B, h, Tq, Tk). */
typedef struct attn_ref {
  double *out, *A, *Ad, *dq, *dkv, *dw_in, *db_in, *dw_o, *db_o;
} attn_ref;

static void attn_reference(const attn_case *c, attn_ref *r) {
  const int64_t B = c->s.B, Tq = c->s.Tq, Tk = c->s.Tk, E = c->s.E, H = c->s.n_heads, dh = E / H;
  const double sc = 1.0 / sqrt((double)dh);
  double *Q = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
  double *K = hsrl_calloc((size_t)(B * Tk * E), sizeof(double)), *V = hsrl_calloc((size_t)(B * Tk * E), sizeof(double));
  double *C = hsrl_calloc((size_t)(B * Tq * E), sizeof(double)), *dC = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
  double *dQ = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
  double *dK = hsrl_calloc((size_t)(B * Tk * E), sizeof(double)), *dV = hsrl_calloc((size_t)(B * Tk * E), sizeof(double));
  double *keep = hsrl_calloc((size_t)(Tk + 1), sizeof(double)), *dA = hsrl_calloc((size_t)(Tk + 1), sizeof(double));
  for (int64_t t = 0; t < B * Tq; t++)
    for (int64_t e = 0; e < E; e++) {
      double s = (double)c->b_in[e];
      for (int64_t k = 0; k < E; k++) s += (double)c->q[t * E + k] * (double)c->w_in[e * E + k];
      Q[t * E + e] = s;
    }
  for (int64_t t = 0; t < B * Tk; t++)
    for (int64_t e = 0; e < E; e++) {
      double sk = (double)c->b_in[E + e], sv = (double)c->b_in[2 * E + e];
      for (int64_t k = 0; k < E; k++) {
        sk += (double)c->kv[t * E + k] * (double)c->w_in[(E + e) * E + k];
        sv += (double)c->kv[t * E + k] * (double)c->w_in[(2 * E + e) * E + k];
      }
      K[t * E + e] = sk, V[t * E + e] = sv;
    }
  /* dC = dout W_o */
  for (int64_t t = 0; t < B * Tq; t++)
    for (int64_t k = 0; k < E; k++) {
      double s = 0.0;
      for (int64_t e = 0; e < E; e++) s += (double)c->dout[t * E + e] * (double)c->w_o[e * E + k];
      dC[t * E + k] = s;
    }
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < Tq; i++) {
        double *A = r->A + ((b * H + h) * Tq + i) * Tk, *Ad = r->Ad + ((b * H + h) * Tq + i) * Tk;
        double mx = -(double)INFINITY;
        for (int64_t j = 0; j < Tk; j++) {
          int ok = !(c->m.causal && j > c->m.q_offset + i) && !(c->m.key_padding && c->m.key_padding[b * Tk + j]);
          double s = 0.0;
          for (int64_t d = 0; d < dh; d++) s += Q[(b * Tq + i) * E + h * dh + d] * K[(b * Tk + j) * E + h * dh + d];
          A[j] = ok ? s * sc : -(double)INFINITY;
          if (A[j] > mx) mx = A[j];
          uint64_t ctr = c->offset + (uint64_t)(((b * H + h) * (c->m.q_offset + Tq) + c->m.q_offset + i) * Tk + j);
          keep[j] = ref_keep(c->key, ctr, c->p) ? 1.0 / (1.0 - (double)c->p) : 0.0;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < Tk; j++) sum += A[j] = mx == -(double)INFINITY ? 0.0 : exp(A[j] - mx);
        for (int64_t j = 0; j < Tk; j++) {
          A[j] = sum > 0.0 ? A[j] / sum : 0.0;
          Ad[j] = A[j] * keep[j];
        }
        for (int64_t d = 0; d < dh; d++) {
          double s = 0.0;
          for (int64_t j = 0; j < Tk; j++) s += Ad[j] * V[(b * Tk + j) * E + h * dh + d];
          C[(b * Tq + i) * E + h * dh + d] = s;
        }
        /* backward of this row */
        double dot = 0.0;
        for (int64_t j = 0; j < Tk; j++) {
          double g = 0.0;
          for (int64_t d = 0; d < dh; d++) g += dC[(b * Tq + i) * E + h * dh + d] * V[(b * Tk + j) * E + h * dh + d];
          for (int64_t d = 0; d < dh; d++) dV[(b * Tk + j) * E + h * dh + d] += Ad[j] * dC[(b * Tq + i) * E + h * dh + d];
          dA[j] = g * keep[j];
          dot += A[j] * dA[j];
        }
        for (int64_t j = 0; j < Tk; j++) {
          double ds = A[j] * (dA[j] - dot) * sc;
          for (int64_t d = 0; d < dh; d++) {
            dQ[(b * Tq + i) * E + h * dh + d] += ds * K[(b * Tk + j) * E + h * dh + d];
            dK[(b * Tk + j) * E + h * dh + d] += ds * Q[(b * Tq + i) * E + h * dh + d];
          }
        }
      }
  for (int64_t t = 0; t < B * Tq; t++)
    for (int64_t e = 0; e < E; e++) {
      double s = (double)c->b_o[e];
      for (int64_t k = 0; k < E; k++) s += C[t * E + k] * (double)c->w_o[e * E + k];
      r->out[t * E + e] = s;
    }
  /* parameter and input gradients */
  memset(r->dw_in, 0, (size_t)(3 * E * E) * sizeof(double));
  memset(r->db_in, 0, (size_t)(3 * E) * sizeof(double));
  memset(r->dw_o, 0, (size_t)(E * E) * sizeof(double));
  memset(r->db_o, 0, (size_t)E * sizeof(double));
  memset(r->dq, 0, (size_t)(B * Tq * E) * sizeof(double));
  memset(r->dkv, 0, (size_t)(B * Tk * E) * sizeof(double));
  for (int64_t t = 0; t < B * Tq; t++)
    for (int64_t e = 0; e < E; e++) {
      r->db_o[e] += (double)c->dout[t * E + e];
      r->db_in[e] += dQ[t * E + e];
      for (int64_t k = 0; k < E; k++) {
        r->dw_o[e * E + k] += (double)c->dout[t * E + e] * C[t * E + k];
        r->dw_in[e * E + k] += dQ[t * E + e] * (double)c->q[t * E + k];
        r->dq[t * E + k] += dQ[t * E + e] * (double)c->w_in[e * E + k];
      }
    }
  for (int64_t t = 0; t < B * Tk; t++)
    for (int64_t e = 0; e < E; e++) {
      r->db_in[E + e] += dK[t * E + e];
      r->db_in[2 * E + e] += dV[t * E + e];
      for (int64_t k = 0; k < E; k++) {
        r->dw_in[(E + e) * E + k] += dK[t * E + e] * (double)c->kv[t * E + k];
        r->dw_in[(2 * E + e) * E + k] += dV[t * E + e] * (double)c->kv[t * E + k];
        r->dkv[t * E + k] += dK[t * E + e] * (double)c->w_in[(E + e) * E + k] +
                             dV[t * E + e] * (double)c->w_in[(2 * E + e) * E + k];
      }
    }
  hsrl_free(Q), hsrl_free(K), hsrl_free(V), hsrl_free(C), hsrl_free(dC), hsrl_free(dQ);
  hsrl_free(dK), hsrl_free(dV), hsrl_free(keep), hsrl_free(dA);
}

static double diff_vs_double(const float *a, const double *ref, int64_t n, double atol, double rtol) {
  float *r = hsrl_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) r[i] = (float)ref[i];
  double d = test_max_scaled_diff(a, r, n, atol, rtol);
  hsrl_free(r);
  return d;
}

typedef struct attn_shape_case {
  nn_mha_shape s;
  int causal;
  int64_t q_offset;
  int pad;
  float p;
} attn_shape_case;

static void test_attention_vs_naive(void) {
  const attn_shape_case cases[] = {
      {{2, 50, 50, 32, 4}, 1, 0, 1, 0.0f},  /* the policy's layer: head width 8 */
      {{2, 50, 50, 32, 4}, 1, 0, 1, 0.1f},  /* ... with training dropout */
      {{2, 9, 21, 48, 3}, 0, 0, 1, 0.2f},   /* head width 16, no causal mask */
      {{3, 5, 7, 12, 1}, 1, 2, 1, 0.3f},    /* head width 12: one block and a tail of 4 */
      {{2, 1, 50, 32, 4}, 1, 49, 1, 0.1f},  /* last position only */
      {{1, 17, 33, 40, 4}, 1, 16, 0, 0.0f}, /* head width 10, no padding */
      {{2, 16, 32, 16, 2}, 1, 16, 1, 0.1f}, /* Tk a multiple of 16 (no panel padding) */
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const attn_shape_case *sc = &cases[k];
    attn_case c;
    attn_init(&c, sc->s, sc->causal, sc->q_offset, sc->pad, sc->p, 100 + k);
    const int64_t B = c.s.B, Tq = c.s.Tq, Tk = c.s.Tk, E = c.s.E, H = c.s.n_heads;
    const int64_t nq = B * Tq * E, nk = B * Tk * E, na = B * H * Tq * Tk;
    attn_forward(&c);
    attn_backward(&c);
    attn_ref r;
    double *buf = hsrl_calloc((size_t)(nq * 2 + na * 2 + nk + 4 * E * E + 4 * E), sizeof(double));
    r.out = buf, r.A = r.out + nq, r.Ad = r.A + na, r.dq = r.Ad + na, r.dkv = r.dq + nq;
    r.dw_in = r.dkv + nk, r.db_in = r.dw_in + 3 * E * E, r.dw_o = r.db_in + 3 * E, r.db_o = r.dw_o + E * E;
    attn_reference(&c, &r);
    nn_mha_cache v = nn_mha_cache_view(c.cache, &c.s);
    struct { const char *name; const float *fast; const double *ref; int64_t n; double atol, rtol; } cmp[] = {
        {"out", c.out, r.out, nq, 1e-5, 1e-4},        {"att", v.att, r.A, na, 1e-6, 1e-5},
        {"dq", c.dq, r.dq, nq, 1e-5, 1e-4},           {"dkv", c.dkv, r.dkv, nk, 1e-5, 1e-4},
        {"dw_in", c.dw_in, r.dw_in, 3 * E * E, 1e-5, 1e-4}, {"db_in", c.db_in, r.db_in, 3 * E, 1e-5, 1e-4},
        {"dw_o", c.dw_o, r.dw_o, E * E, 1e-5, 1e-4},  {"db_o", c.db_o, r.db_o, E, 1e-5, 1e-4},
        {"att_drop", v.att_drop, r.Ad, c.p > 0.0f ? na : 0, 1e-6, 1e-5},
    };
    double worst = 0.0;
    for (size_t t = 0; t < sizeof cmp / sizeof cmp[0]; t++) {
      double d = diff_vs_double(cmp[t].fast, cmp[t].ref, cmp[t].n, cmp[t].atol, cmp[t].rtol);
      if (d > worst) worst = d;
      if (d > 1.0) {
        hsrl_free(buf);
        attn_free(&c);
        TEST_ASSERTF(0, "case %zu (Tq %lld Tk %lld E %lld h %lld p %g): %s scaled diff %g", k,
                     (long long)Tq, (long long)Tk, (long long)E, (long long)H, (double)sc->p, cmp[t].name, d);
      }
    }
    /* weights not allowed are exactly zero in the cache */
    int64_t n_zero_bad = 0;
    for (int64_t i = 0; i < na; i++) n_zero_bad += r.A[i] == 0.0 && v.att[i] != 0.0f;
    printf("  case %zu: Tq %lld Tk %lld E %lld h %lld causal %d p %.1f: worst scaled diff %.3g\n", k,
           (long long)Tq, (long long)Tk, (long long)E, (long long)H, sc->causal, (double)sc->p, worst);
    hsrl_free(buf);
    attn_free(&c);
    TEST_ASSERTF(n_zero_bad == 0, "case %zu: %lld masked weights not exactly 0", k, (long long)n_zero_bad);
  }
}

/* Head width 8 (the vector path) under central differences, dropout on with a fixed mask; and
 * the backward told p = 0 after a p > 0 forward must be rejected. */
static void run_attention_gradcheck(float backward_p, int expect_pass) {
  attn_case c;
  attn_init(&c, (nn_mha_shape){2, 9, 9, 16, 2}, 1, 0, 1, 0.3f, 900);
  c.backward_p = backward_p;
  gradcheck_case g;
  memset(&g, 0, sizeof g);
  g.ctx = &c, g.forward = attn_forward, g.backward = attn_backward;
  g.out = c.out, g.dout = c.dout, g.n_out = c.s.B * c.s.Tq * c.s.E;
  gradcheck_add(&g, "q", c.q, c.dq, c.s.B * c.s.Tq * c.s.E);
  gradcheck_add(&g, "kv", c.kv, c.dkv, c.s.B * c.s.Tk * c.s.E);
  gradcheck_add(&g, "w_in", c.w_in, c.dw_in, 3 * c.s.E * c.s.E);
  gradcheck_add(&g, "b_in", c.b_in, c.db_in, 3 * c.s.E);
  gradcheck_add(&g, "w_o", c.w_o, c.dw_o, c.s.E * c.s.E);
  g.max_probes = 60;
  if (!expect_pass) printf("  deliberately broken backward (told p = 0): the checker must say FAIL\n");
  gradcheck_result r;
  int ok = gradcheck_run(&g, 5, 1e-2, &r);
  attn_free(&c);
  if (expect_pass)
    TEST_ASSERTF(ok, "gradcheck failed: max err %g at %s", r.max_err, r.worst_name);
  else
    TEST_ASSERTF(!ok && r.max_err > 0.1, "broken backward NOT rejected (max err %g)", r.max_err);
}

static void test_attention_gradcheck_width8(void) { run_attention_gradcheck(0.3f, 1); }
static void test_attention_broken_rejected(void) { run_attention_gradcheck(0.0f, 0); }

/* ---------------------------------------------------------------- transformer */

/* The policy's layer: the last-position mode gives the last rows of the full mode (dropout on),
 * and the input gradient of a last-row loss agrees too. */
static void test_transformer_last_position_policy_shape(void) {
  const int64_t B = 3, T = 50, E = 32, F = 128, H = 4;
  nn_transformer_shape full = {B, T, T, E, F, H}, last = {B, T, 1, E, F, H};
  const int64_t n_params = nn_transformer_param_count(E, F);
  float *prm = falloc(n_params), *dprm_f = falloc(n_params), *dprm_l = falloc(n_params);
  float *x = falloc(B * T * E), *out_f = falloc(B * T * E), *out_l = falloc(B * E);
  float *dout_f = falloc(B * T * E), *dout_l = falloc(B * E), *dx_f = falloc(B * T * E), *dx_l = falloc(B * T * E);
  float *cf = falloc(nn_transformer_cache_floats(&full)), *cl = falloc(nn_transformer_cache_floats(&last));
  float *scratch = falloc(nn_transformer_scratch_floats(&full));
  uint8_t pad[3 * 50] = {0};
  for (int64_t t = 0; t < 7; t++) pad[1 * T + t] = 1;
  nn_mha_mask m = {1, 0, pad};
  hsrl_rng rng;
  hsrl_rng_init(&rng, 3, 0);
  nn_transformer_init(prm, E, F, &rng);
  test_fill_uniform(x, B * T * E, -1, 1, 4);
  test_fill_uniform(dout_l, B * E, -1, 1, 5);
  for (int64_t b = 0; b < B; b++) memcpy(dout_f + (b * T + T - 1) * E, dout_l + b * E, (size_t)E * sizeof(float));
  nn_transformer_forward(out_f, cf, x, prm, &m, 0.1f, 42, 9, &full);
  nn_transformer_forward(out_l, cl, x, prm, &m, 0.1f, 42, 9, &last);
  nn_transformer_backward(dx_f, dprm_f, scratch, dout_f, cf, x, prm, &m, 0.1f, &full);
  nn_transformer_backward(dx_l, dprm_l, scratch, dout_l, cl, x, prm, &m, 0.1f, &last);
  float rows[3 * 32];
  for (int64_t b = 0; b < B; b++) memcpy(rows + b * E, out_f + (b * T + T - 1) * E, (size_t)E * sizeof(float));
  double d_out = test_max_scaled_diff(out_l, rows, B * E, 1e-6, 1e-5);
  double d_dx = test_max_scaled_diff(dx_l, dx_f, B * T * E, 1e-6, 1e-4);
  double d_dp = test_max_scaled_diff(dprm_l, dprm_f, n_params, 1e-6, 1e-4);
  printf("  last vs full: output %.3g, dx %.3g, dparams %.3g (scaled)\n", d_out, d_dx, d_dp);
  float *all[] = {prm, dprm_f, dprm_l, x, out_f, out_l, dout_f, dout_l, dx_f, dx_l, cf, cl, scratch};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hsrl_free(all[i]);
  TEST_ASSERT(d_out <= 1.0 && d_dx <= 1.0 && d_dp <= 1.0);
}

int main(void) {
  TEST_RUN(test_dropout_words_every_isa);
  TEST_RUN(test_relu_blocks);
  TEST_RUN(test_dropout_apply_blocks);
  TEST_RUN(test_dropout_pieces_and_relu_blocks);
  TEST_RUN(test_linear_bias_grad_blocks);
  TEST_RUN(test_layernorm_blocks);
  TEST_RUN(test_attention_vs_naive);
  TEST_RUN(test_attention_gradcheck_width8);
  TEST_RUN(test_attention_broken_rejected);
  TEST_RUN(test_transformer_last_position_policy_shape);
  return test_summary();
}
