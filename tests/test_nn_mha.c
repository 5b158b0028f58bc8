/* test_nn_mha.c: multi-head attention (common/nn/nn_mha.h; method.md section 6).
 *
 * - fast vs a naive reference written here in double (forward and backward), on odd shapes
 *   (B=3, Tq=5, Tk=7, E=12, h=3) with a causal mask with a query offset, key padding (one row
 *   left-padded so that its first query has no allowed key) and attention dropout, and on shapes
 *   that take every path of the kernels (Tq = Tk = 31: row blocks of 8, 4, 2, 1, several 8-key
 *   chunks, padding in a first and in a third chunk; head widths 8 and 12);
 * - the fully masked row gives zero attention (output b_o, finite gradients);
 * - computing only the last queries (q_offset) reproduces the full computation's rows bit for
 *   bit, dropout included, also where the two cut different row blocks;
 * - central differences with loss <R, out> on every input and parameter, with masks and a fixed
 *   dropout mask (p = 0.3, fixed key: the mask does not move with the inputs), for cross- and
 *   self-attention (dq_in == dkv_in aliasing); backward twice doubles (inside gradcheck_run);
 * - deliberately broken backwards are rejected by the same checker: the naive backward without the
 *   softmax Jacobian's subtraction, and the fast backward told p = 0 after a p = 0.3 forward. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_mha.h"
#include "tests/test_gradcheck.h"
#include "tests/test_harness.h"

#define GRAD_TOL 1e-2 /* central differences in float32 with eps 1e-2 (style.md) */

/* ---------------------------------------------------------------- naive reference (double) */

typedef struct ref_io {
  /* inputs */
  const float *q, *kv, *w_in, *b_in, *w_o, *b_o, *dout;
  /* outputs (double, caller-allocated) */
  double *out, *dq, *dkv, *dw_in, *db_in, *dw_o, *db_o;
} ref_io;

static int ref_allowed(const nn_mha_mask *m, const nn_mha_shape *s, int64_t b, int64_t i, int64_t j) {
  if (m->causal && j > m->q_offset + i) return 0;
  if (m->key_padding && m->key_padding[b * s->Tk + j]) return 0;
  return 1;
}

/* The documented counter of attention weight (b, head, i, j); one element at a time. */
static double ref_keep_scale(const nn_mha_shape *s, const nn_mha_mask *m, float p, uint64_t key,
                             uint64_t offset, int64_t b, int64_t hd, int64_t i, int64_t j) {
  if (p == 0.0f) return 1.0;
  uint8_t keep;
  uint64_t ctr = offset + (uint64_t)(((b * s->n_heads + hd) * (m->q_offset + s->Tq) + m->q_offset + i) * s->Tk + j);
  nn_dropout_mask(&keep, 1, p, key, ctr);
  return keep ? 1.0 / (1.0 - (double)p) : 0.0;
}

/* Forward (always) and backward (when io->dout != NULL); broken = 1 drops the subtraction in the
 * softmax Jacobian. Gradient outputs are overwritten (not accumulated). */
static void ref_mha(ref_io *io, const nn_mha_shape *s, const nn_mha_mask *m, float p, uint64_t key,
                    uint64_t offset, int broken) {
  const int64_t B = s->B, Tq = s->Tq, Tk = s->Tk, E = s->E, H = s->n_heads, dh = E / H;
  const double scale = 1.0 / sqrt((double)dh);
  double *Q = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
  double *K = hsrl_calloc((size_t)(B * Tk * E), sizeof(double));
  double *V = hsrl_calloc((size_t)(B * Tk * E), sizeof(double));
  double *A = hsrl_calloc((size_t)(B * H * Tq * Tk), sizeof(double));
  double *Ad = hsrl_calloc((size_t)(B * H * Tq * Tk), sizeof(double));
  double *C = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
  for (int64_t r = 0; r < B * Tq; r++)
    for (int64_t e = 0; e < E; e++) {
      double acc = io->b_in[e];
      for (int64_t c = 0; c < E; c++) acc += (double)io->q[r * E + c] * (double)io->w_in[e * E + c];
      Q[r * E + e] = acc;
    }
  for (int64_t r = 0; r < B * Tk; r++)
    for (int64_t e = 0; e < E; e++) {
      double ak = io->b_in[E + e], av = io->b_in[2 * E + e];
      for (int64_t c = 0; c < E; c++) {
        ak += (double)io->kv[r * E + c] * (double)io->w_in[(E + e) * E + c];
        av += (double)io->kv[r * E + c] * (double)io->w_in[(2 * E + e) * E + c];
      }
      K[r * E + e] = ak, V[r * E + e] = av;
    }
  for (int64_t b = 0; b < B; b++)
    for (int64_t hd = 0; hd < H; hd++)
      for (int64_t i = 0; i < Tq; i++) {
        double *a = A + ((b * H + hd) * Tq + i) * Tk, *ad = Ad + ((b * H + hd) * Tq + i) * Tk;
        double mx = -INFINITY;
        for (int64_t j = 0; j < Tk; j++) {
          if (!ref_allowed(m, s, b, i, j)) continue;
          double dot = 0;
          for (int64_t d = 0; d < dh; d++) dot += Q[(b * Tq + i) * E + hd * dh + d] * K[(b * Tk + j) * E + hd * dh + d];
          a[j] = dot * scale;
          if (a[j] > mx) mx = a[j];
        }
        double sum = 0;
        for (int64_t j = 0; j < Tk; j++)
          if (ref_allowed(m, s, b, i, j)) sum += (a[j] = exp(a[j] - mx));
        for (int64_t j = 0; j < Tk; j++) {
          a[j] = ref_allowed(m, s, b, i, j) ? a[j] / sum : 0.0;
          ad[j] = a[j] * ref_keep_scale(s, m, p, key, offset, b, hd, i, j);
          for (int64_t d = 0; d < dh; d++) C[(b * Tq + i) * E + hd * dh + d] += ad[j] * V[(b * Tk + j) * E + hd * dh + d];
        }
      }
  for (int64_t r = 0; r < B * Tq; r++)
    for (int64_t e = 0; e < E; e++) {
      double acc = io->b_o[e];
      for (int64_t c = 0; c < E; c++) acc += C[r * E + c] * (double)io->w_o[e * E + c];
      io->out[r * E + e] = acc;
    }
  if (io->dout) {
    double *dC = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
    double *dQ = hsrl_calloc((size_t)(B * Tq * E), sizeof(double));
    double *dK = hsrl_calloc((size_t)(B * Tk * E), sizeof(double));
    double *dV = hsrl_calloc((size_t)(B * Tk * E), sizeof(double));
    double *dA = hsrl_calloc((size_t)Tk, sizeof(double));
    memset(io->dw_o, 0, (size_t)(E * E) * sizeof(double));
    memset(io->db_o, 0, (size_t)E * sizeof(double));
    for (int64_t r = 0; r < B * Tq; r++)
      for (int64_t e = 0; e < E; e++) {
        double g = io->dout[r * E + e];
        io->db_o[e] += g;
        for (int64_t c = 0; c < E; c++) {
          dC[r * E + c] += g * (double)io->w_o[e * E + c];
          io->dw_o[e * E + c] += g * C[r * E + c];
        }
      }
    for (int64_t b = 0; b < B; b++)
      for (int64_t hd = 0; hd < H; hd++)
        for (int64_t i = 0; i < Tq; i++) {
          const double *a = A + ((b * H + hd) * Tq + i) * Tk, *ad = Ad + ((b * H + hd) * Tq + i) * Tk;
          const double *dc = dC + (b * Tq + i) * E + hd * dh;
          double dot_a_da = 0;
          for (int64_t j = 0; j < Tk; j++) {
            double g = 0;
            for (int64_t d = 0; d < dh; d++) {
              g += dc[d] * V[(b * Tk + j) * E + hd * dh + d];
              dV[(b * Tk + j) * E + hd * dh + d] += ad[j] * dc[d];
            }
            dA[j] = g * ref_keep_scale(s, m, p, key, offset, b, hd, i, j);
            dot_a_da += a[j] * dA[j];
          }
          for (int64_t j = 0; j < Tk; j++) {
            double ds = a[j] * (dA[j] - (broken ? 0.0 : dot_a_da)) * scale;
            for (int64_t d = 0; d < dh; d++) {
              dQ[(b * Tq + i) * E + hd * dh + d] += ds * K[(b * Tk + j) * E + hd * dh + d];
              dK[(b * Tk + j) * E + hd * dh + d] += ds * Q[(b * Tq + i) * E + hd * dh + d];
            }
          }
        }
    memset(io->dq, 0, (size_t)(B * Tq * E) * sizeof(double));
    memset(io->dkv, 0, (size_t)(B * Tk * E) * sizeof(double));
    memset(io->dw_in, 0, (size_t)(3 * E * E) * sizeof(double));
    memset(io->db_in, 0, (size_t)(3 * E) * sizeof(double));
    for (int64_t r = 0; r < B * Tq; r++)
      for (int64_t e = 0; e < E; e++) {
        double g = dQ[r * E + e];
        io->db_in[e] += g;
        for (int64_t c = 0; c < E; c++) {
          io->dq[r * E + c] += g * (double)io->w_in[e * E + c];
          io->dw_in[e * E + c] += g * (double)io->q[r * E + c];
        }
      }
    for (int64_t r = 0; r < B * Tk; r++)
      for (int64_t e = 0; e < E; e++) {
        double gk = dK[r * E + e], gv = dV[r * E + e];
        io->db_in[E + e] += gk;
        io->db_in[2 * E + e] += gv;
        for (int64_t c = 0; c < E; c++) {
          io->dkv[r * E + c] += gk * (double)io->w_in[(E + e) * E + c] + gv * (double)io->w_in[(2 * E + e) * E + c];
          io->dw_in[(E + e) * E + c] += gk * (double)io->kv[r * E + c];
          io->dw_in[(2 * E + e) * E + c] += gv * (double)io->kv[r * E + c];
        }
      }
    hsrl_free(dC), hsrl_free(dQ), hsrl_free(dK), hsrl_free(dV), hsrl_free(dA);
  }
  hsrl_free(Q), hsrl_free(K), hsrl_free(V), hsrl_free(A), hsrl_free(Ad), hsrl_free(C);
}

/* ---------------------------------------------------------------- a problem instance */

typedef struct mha_case {
  nn_mha_shape s;
  nn_mha_mask m;
  float p;
  uint64_t key, offset;
  int self;   /* kv == q, dkv == dq (Tq == Tk) */
  int mode; /* backward: 0 fast, 1 naive broken (no softmax subtraction), 2 fast told p = 0,
             * 3 naive correct */
  uint8_t pad[128];
  float *q, *kv, *w_in, *b_in, *w_o, *b_o;
  float *dq, *dkv, *dw_in, *db_in, *dw_o, *db_o;
  float *out, *dout, *cache, *scratch;
} mha_case;

static void case_init(mha_case *c, nn_mha_shape s, int causal, int64_t q_offset, int with_pad,
                      float p, int self, uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->s = s;
  c->p = p;
  c->key = 0x5eed0000u + seed;
  c->offset = 1000;
  c->self = self;
  c->m.causal = causal;
  c->m.q_offset = q_offset;
  if (with_pad) {
    /* row 0: none; row 1: left-padded by 3 (with q_offset 2 its query 0 sees only padding);
     * row 2 (if any): two keys in the middle */
    for (int64_t b = 0; b < s.B; b++)
      for (int64_t j = 0; j < s.Tk; j++)
        c->pad[b * s.Tk + j] = (uint8_t)((b == 1 && j < 3) || (b == 2 && (j == 1 || j == s.Tk - 2)));
    c->m.key_padding = c->pad;
  }
  int64_t E = s.E, nq = s.B * s.Tq * E, nk = s.B * s.Tk * E;
  c->q = hsrl_malloc((size_t)nq * sizeof(float));
  c->kv = self ? c->q : hsrl_malloc((size_t)nk * sizeof(float));
  c->w_in = hsrl_malloc((size_t)(3 * E * E) * sizeof(float));
  c->b_in = hsrl_malloc((size_t)(3 * E) * sizeof(float));
  c->w_o = hsrl_malloc((size_t)(E * E) * sizeof(float));
  c->b_o = hsrl_malloc((size_t)E * sizeof(float));
  c->dq = hsrl_calloc((size_t)nq, sizeof(float));
  c->dkv = self ? c->dq : hsrl_calloc((size_t)nk, sizeof(float));
  c->dw_in = hsrl_calloc((size_t)(3 * E * E), sizeof(float));
  c->db_in = hsrl_calloc((size_t)(3 * E), sizeof(float));
  c->dw_o = hsrl_calloc((size_t)(E * E), sizeof(float));
  c->db_o = hsrl_calloc((size_t)E, sizeof(float));
  c->out = hsrl_calloc((size_t)nq, sizeof(float));
  c->dout = hsrl_calloc((size_t)nq, sizeof(float));
  c->cache = hsrl_calloc((size_t)nn_mha_cache_floats(&s), sizeof(float));
  c->scratch = hsrl_calloc((size_t)nn_mha_scratch_floats(&s), sizeof(float));
  test_fill_uniform(c->q, nq, -1.0f, 1.0f, seed + 1);
  if (!self) test_fill_uniform(c->kv, nk, -1.0f, 1.0f, seed + 2);
  test_fill_uniform(c->w_in, 3 * E * E, -0.5f, 0.5f, seed + 3);
  test_fill_uniform(c->b_in, 3 * E, -0.3f, 0.3f, seed + 4);
  test_fill_uniform(c->w_o, E * E, -0.5f, 0.5f, seed + 5);
  test_fill_uniform(c->b_o, E, -0.3f, 0.3f, seed + 6);
}

static void case_free(mha_case *c) {
  if (!c->self) hsrl_free(c->kv), hsrl_free(c->dkv);
  hsrl_free(c->q), hsrl_free(c->w_in), hsrl_free(c->b_in), hsrl_free(c->w_o), hsrl_free(c->b_o);
  hsrl_free(c->dq), hsrl_free(c->dw_in), hsrl_free(c->db_in), hsrl_free(c->dw_o), hsrl_free(c->db_o);
  hsrl_free(c->out), hsrl_free(c->dout), hsrl_free(c->cache), hsrl_free(c->scratch);
}

static void case_forward(void *ctx) {
  mha_case *c = ctx;
  nn_mha_forward(c->out, c->cache, c->q, c->kv, c->w_in, c->b_in, c->w_o, c->b_o, &c->m, c->p,
                 c->key, c->offset, &c->s);
}

static void add_double(float *dst, const double *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] += (float)src[i];
}

static void case_backward(void *ctx) {
  mha_case *c = ctx;
  if (c->mode == 0 || c->mode == 2) {
    nn_mha_backward(c->dq, c->dkv, c->dw_in, c->db_in, c->dw_o, c->db_o, c->scratch, c->dout,
                    c->cache, c->q, c->kv, c->w_in, c->w_o, &c->m, c->mode == 2 ? 0.0f : c->p, &c->s);
    return;
  }
  const int64_t E = c->s.E, nq = c->s.B * c->s.Tq * E, nk = c->s.B * c->s.Tk * E;
  double *buf = hsrl_calloc((size_t)(2 * nq + nk + 4 * E * E + 4 * E), sizeof(double));
  ref_io io = {c->q, c->kv, c->w_in, c->b_in, c->w_o, c->b_o, c->dout, buf, buf + nq, buf + 2 * nq,
               buf + 2 * nq + nk, buf + 2 * nq + nk + 3 * E * E, buf + 2 * nq + nk + 3 * E * E + 3 * E,
               buf + 2 * nq + nk + 4 * E * E + 3 * E};
  ref_mha(&io, &c->s, &c->m, c->p, c->key, c->offset, c->mode == 1);
  add_double(c->dq, io.dq, nq);
  add_double(c->dkv, io.dkv, nk);
  add_double(c->dw_in, io.dw_in, 3 * E * E);
  add_double(c->db_in, io.db_in, 3 * E);
  add_double(c->dw_o, io.dw_o, E * E);
  add_double(c->db_o, io.db_o, E);
  hsrl_free(buf);
}

static void case_gradcheck_setup(mha_case *c, gradcheck_case *g) {
  memset(g, 0, sizeof *g);
  g->ctx = c;
  g->forward = case_forward;
  g->backward = case_backward;
  g->out = c->out;
  g->dout = c->dout;
  const int64_t E = c->s.E;
  g->n_out = c->s.B * c->s.Tq * E;
  gradcheck_add(g, c->self ? "x" : "q", c->q, c->dq, c->s.B * c->s.Tq * E);
  if (!c->self) gradcheck_add(g, "kv", c->kv, c->dkv, c->s.B * c->s.Tk * E);
  gradcheck_add(g, "w_in", c->w_in, c->dw_in, 3 * E * E);
  gradcheck_add(g, "b_in", c->b_in, c->db_in, 3 * E);
  gradcheck_add(g, "w_o", c->w_o, c->dw_o, E * E);
  gradcheck_add(g, "b_o", c->b_o, c->db_o, E);
}

static const nn_mha_shape ODD = {3, 5, 7, 12, 3};

/* ---------------------------------------------------------------- tests */

/* B = 3, Tq = Tk = 31: the kernels' row blocks of 8, 4, 2 and 1 (31 = 8 + 8 + 8 + 4 + 2 + 1), rows
 * over four 8-key chunks, the padding of case_init in a first chunk (row 1) and in a third one
 * (row 2); head width 8 (vector columns) and 12 (8 + a plain-loop tail of 4). */
static const nn_mha_shape BLOCKS8 = {3, 31, 31, 16, 2}, BLOCKS12 = {3, 31, 31, 24, 2};

static void check_fast_vs_naive_on(nn_mha_shape s, int64_t q_offset, float p) {
  mha_case c;
  case_init(&c, s, 1, q_offset, 1, p, 0, 11);
  const int64_t E = c.s.E, nq = c.s.B * c.s.Tq * E, nk = c.s.B * c.s.Tk * E;
  test_fill_uniform(c.dout, nq, -1.0f, 1.0f, 99);
  case_forward(&c);
  case_backward(&c);
  double *buf = hsrl_calloc((size_t)(2 * nq + nk + 4 * E * E + 4 * E), sizeof(double));
  ref_io io = {c.q, c.kv, c.w_in, c.b_in, c.w_o, c.b_o, c.dout, buf, buf + nq, buf + 2 * nq,
               buf + 2 * nq + nk, buf + 2 * nq + nk + 3 * E * E, buf + 2 * nq + nk + 3 * E * E + 3 * E,
               buf + 2 * nq + nk + 4 * E * E + 3 * E};
  ref_mha(&io, &c.s, &c.m, c.p, c.key, c.offset, 0);
  struct { const char *name; const float *fast; const double *ref; int64_t n; } cmp[] = {
      {"out", c.out, io.out, nq},          {"dq", c.dq, io.dq, nq},
      {"dkv", c.dkv, io.dkv, nk},          {"dw_in", c.dw_in, io.dw_in, 3 * E * E},
      {"db_in", c.db_in, io.db_in, 3 * E}, {"dw_o", c.dw_o, io.dw_o, E * E},
      {"db_o", c.db_o, io.db_o, E},
  };
  /* float rounding errors grow with the rows a sum runs over (the parameter gradients sum over
   * all B Tk rows): the tolerance as their square root, relative to the ODD shape's 21 */
  const double grow = sqrt(fmax(1.0, (double)(s.B * s.Tk) / 21.0)), atol = 1e-6 * grow,
               rtol = 1e-5 * grow;
  double worst = 0;
  int n_dropped = 0;
  for (size_t k = 0; k < sizeof cmp / sizeof cmp[0]; k++) {
    float *r = hsrl_malloc((size_t)cmp[k].n * sizeof(float));
    for (int64_t i = 0; i < cmp[k].n; i++) r[i] = (float)cmp[k].ref[i];
    double d = test_max_scaled_diff(cmp[k].fast, r, cmp[k].n, atol, rtol);
    hsrl_free(r);
    if (d > worst) worst = d;
    TEST_ASSERTF(d <= 1.0, "Tq %lld E %lld p=%g %s: scaled diff %g vs the naive reference",
                 (long long)s.Tq, (long long)s.E, (double)p, cmp[k].name, d);
  }
  if (p > 0) {
    nn_mha_cache v = nn_mha_cache_view(c.cache, &c.s);
    for (int64_t i = 0; i < c.s.B * c.s.n_heads * c.s.Tq * c.s.Tk; i++)
      n_dropped += v.att[i] > 0.0f && v.att_drop[i] == 0.0f;
    TEST_ASSERTF(n_dropped > 0, "p=%g dropped no attention weight", (double)p);
  }
  printf("  B %lld Tq %lld Tk %lld E %lld h %lld p=%g: fast vs naive max scaled diff %.3g (atol %.2g, "
         "rtol %.2g), %d weights dropped\n",
         (long long)s.B, (long long)s.Tq, (long long)s.Tk, (long long)s.E, (long long)s.n_heads,
         (double)p, worst, atol, rtol, n_dropped);
  hsrl_free(buf);
  case_free(&c);
}

static void test_fast_vs_naive_no_dropout(void) { check_fast_vs_naive_on(ODD, 2, 0.0f); }
static void test_fast_vs_naive_dropout(void) { check_fast_vs_naive_on(ODD, 2, 0.3f); }
static void test_fast_vs_naive_blocks(void) {
  check_fast_vs_naive_on(BLOCKS8, 0, 0.0f);
  check_fast_vs_naive_on(BLOCKS8, 0, 0.3f);
  check_fast_vs_naive_on(BLOCKS12, 0, 0.3f);
}

/* Row 1 is left-padded by 3 and query 0 (absolute position 2) sees keys 0..2 only: all padding. */
static void test_fully_masked_row_is_zero_attention(void) {
  mha_case c;
  case_init(&c, ODD, 1, 2, 1, 0.3f, 0, 21);
  const int64_t E = c.s.E, Tq = c.s.Tq, Tk = c.s.Tk, H = c.s.n_heads;
  test_fill_uniform(c.dout, c.s.B * Tq * E, -1.0f, 1.0f, 5);
  case_forward(&c);
  nn_mha_cache v = nn_mha_cache_view(c.cache, &c.s);
  for (int64_t hd = 0; hd < H; hd++)
    for (int64_t j = 0; j < Tk; j++) TEST_ASSERT(v.att[((1 * H + hd) * Tq + 0) * Tk + j] == 0.0f);
  for (int64_t e = 0; e < E; e++) TEST_NEAR(c.out[(1 * Tq + 0) * E + e], c.b_o[e], 1e-6);
  /* query 1 of row 1 (position 3) sees key 3 only: weight 1 before dropout */
  for (int64_t hd = 0; hd < H; hd++) TEST_NEAR(v.att[((1 * H + hd) * Tq + 1) * Tk + 3], 1.0, 1e-6);
  case_backward(&c);
  float *all[] = {c.out, c.dq, c.dkv, c.dw_in, c.db_in, c.dw_o, c.db_o};
  int64_t ns[] = {c.s.B * Tq * E, c.s.B * Tq * E, c.s.B * Tk * E, 3 * E * E, 3 * E, E * E, E};
  for (int k = 0; k < 7; k++)
    for (int64_t i = 0; i < ns[k]; i++) TEST_ASSERTF(isfinite(all[k][i]), "tensor %d [%lld]", k, (long long)i);
  /* the masked query's input gets no gradient at all */
  for (int64_t e = 0; e < E; e++) TEST_ASSERT(c.dq[(1 * Tq + 0) * E + e] == 0.0f);
  case_free(&c);
}

/* Self-attention over T keys in full vs only the last nq queries (q_offset = T - nq): the same
 * rows, whatever row blocks the two computations cut (T = 31, an unpadded batch row: the full one
 * has blocks from rows 0, 8, 16, 24, 28, 30, the last 11 queries from rows 20, 28, 30). Equal up
 * to float rounding, not bit for bit: the projections are sgemm calls of different row counts,
 * and OpenBLAS's kernel for some CPUs (seen on an AMD EPYC) rounds them differently in the last
 * bit. A wrong block or offset gives differences of the size of the values. */
static void check_last_queries_match_full(int64_t T, int64_t E, int64_t H, int64_t nq) {
  const int64_t B = 3;
  mha_case c;
  case_init(&c, (nn_mha_shape){B, T, T, E, H}, 1, 0, 1, 0.3f, 1, 31);
  case_forward(&c);
  nn_mha_shape s2 = {B, nq, T, E, H};
  nn_mha_mask m2 = {1, T - nq, c.m.key_padding};
  float *xq = hsrl_malloc((size_t)(B * nq * E) * sizeof(float));
  float *out2 = hsrl_malloc((size_t)(B * nq * E) * sizeof(float));
  float *cache2 = hsrl_calloc((size_t)nn_mha_cache_floats(&s2), sizeof(float));
  for (int64_t b = 0; b < B; b++) memcpy(xq + b * nq * E, c.q + (b * T + T - nq) * E, (size_t)(nq * E) * sizeof(float));
  nn_mha_forward(out2, cache2, xq, c.q, c.w_in, c.b_in, c.w_o, c.b_o, &m2, c.p, c.key, c.offset, &s2);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < nq * E; i++)
      TEST_ASSERTF(fabsf(out2[b * nq * E + i] - c.out[(b * T + T - nq) * E + i]) <=
                       1e-6f + 1e-5f * fabsf(c.out[(b * T + T - nq) * E + i]),
                   "b %lld i %lld: %.9g vs %.9g",
                   (long long)b, (long long)i, (double)out2[b * nq * E + i],
                   (double)c.out[(b * T + T - nq) * E + i]);
  hsrl_free(xq), hsrl_free(out2), hsrl_free(cache2);
  case_free(&c);
}

static void test_last_queries_match_full(void) {
  check_last_queries_match_full(7, 12, 3, 3);
  check_last_queries_match_full(31, 16, 2, 11);
  check_last_queries_match_full(31, 16, 2, 1);
  check_last_queries_match_full(31, 24, 2, 13);
}

static void run_gradcheck(int self, float p, int mode, int expect_pass, const char *what) {
  mha_case c;
  if (self)
    case_init(&c, (nn_mha_shape){3, 6, 6, 12, 3}, 1, 0, 1, p, 1, 41);
  else
    case_init(&c, ODD, 1, 2, 1, p, 0, 51);
  c.mode = mode;
  gradcheck_case g;
  case_gradcheck_setup(&c, &g);
  if (!expect_pass) printf("  deliberately broken backward (%s): the checker must say FAIL\n", what);
  gradcheck_result r;
  int ok = gradcheck_run(&g, 77, GRAD_TOL, &r);
  printf("  [%s] max err %.3g (%s), doubling err %.3g\n", what, r.max_err, r.worst_name, r.doubling_err);
  if (expect_pass)
    TEST_ASSERTF(ok, "%s: gradcheck failed, max err %g at %s", what, r.max_err, r.worst_name);
  else
    TEST_ASSERTF(!ok && r.max_err > 10 * GRAD_TOL, "%s: broken backward NOT rejected (max err %g)", what, r.max_err);
  case_free(&c);
}

static void test_gradcheck_cross_masks(void) { run_gradcheck(0, 0.0f, 0, 1, "cross, masks, p=0"); }
static void test_gradcheck_cross_masks_dropout(void) { run_gradcheck(0, 0.3f, 0, 1, "cross, masks, p=0.3"); }
static void test_gradcheck_self_aliased(void) { run_gradcheck(1, 0.3f, 0, 1, "self, dq==dkv, p=0.3"); }
static void test_gradcheck_naive_reference(void) { run_gradcheck(0, 0.3f, 3, 1, "naive reference"); }
static void test_broken_softmax_rejected(void) { run_gradcheck(0, 0.0f, 1, 0, "broken softmax Jacobian"); }
static void test_broken_dropout_rejected(void) { run_gradcheck(0, 0.3f, 2, 0, "backward ignores dropout"); }

static void test_no_allocation(void) {
  mha_case c;
  case_init(&c, ODD, 1, 2, 1, 0.3f, 0, 61);
  int64_t before = hsrl_alloc_count();
  case_forward(&c);
  case_backward(&c);
  TEST_ASSERT(hsrl_alloc_count() == before);
  case_free(&c);
}

int main(void) {
  TEST_RUN(test_fast_vs_naive_no_dropout);
  TEST_RUN(test_fast_vs_naive_dropout);
  TEST_RUN(test_fast_vs_naive_blocks);
  TEST_RUN(test_fully_masked_row_is_zero_attention);
  TEST_RUN(test_last_queries_match_full);
  TEST_RUN(test_gradcheck_cross_masks);
  TEST_RUN(test_gradcheck_cross_masks_dropout);
  TEST_RUN(test_gradcheck_self_aliased);
  TEST_RUN(test_gradcheck_naive_reference);
  TEST_RUN(test_broken_softmax_rejected);
  TEST_RUN(test_broken_dropout_rejected);
  TEST_RUN(test_no_allocation);
  return test_summary();
}
