/* bench_nn.c: forward+backward GFLOP/s of the numerical core next to the machine's own
 * cblas_sgemm at the same shapes, measured in the same run (issue 2 benchmark).
 *
 * For each case we time (a) our layer's forward + backward and (b) the bare sequence of
 * cblas_sgemm calls the same arithmetic needs (forward products, and two products per forward
 * product in the backward: d-input and d-weight). Both are divided by the same FLOP count, so the
 * ratio ours / sgemm says how close the layer runs to the sgemm bound on this machine.
 * The transformer cases run on left-padded histories, dense (every position computed) and packed
 * (the state encoder's layout: padding positions not computed; FLOPs and sgemm reference for the
 * rows that exist).
 * This program calls cblas_sgemm directly on purpose: it measures the library itself.
 * Figures are medians over repeats of process CPU time (one thread: OpenBLAS runs with one thread
 * here), which a busy machine inflates much less than wall time. Run through scripts/bench/nn.sh.
 * usage: bench_nn [--no-sgemm] [SUBSTRING]: only the cases whose name contains SUBSTRING; with
 * --no-sgemm the cblas_sgemm reference is not run (its column reads 0; for profiling our code). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_transformer.h"

#define N_REPEATS 7

static int g_no_sgemm; /* 1: skip the cblas_sgemm reference */

typedef struct gemm_call { int ta, tb, m, n, k, count; } gemm_call;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static float *random_buf(int64_t n, uint64_t seed) {
  float *x = hsrl_alloc_aligned((size_t)n * sizeof(float));
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  for (int64_t i = 0; i < n; i++) x[i] = 0.2f * (hsrl_rng_uniform(&r) - 0.5f);
  return x;
}

static double gemm_flops(const gemm_call *g, int n_calls) {
  double f = 0;
  for (int i = 0; i < n_calls; i++) f += 2.0 * g[i].m * g[i].n * g[i].k * g[i].count;
  return f;
}

/* Seconds per pass over the given sgemm calls (median). */
static double time_sgemm(const gemm_call *g, int n_calls, int iters) {
  if (g_no_sgemm) return 0.0;
  int64_t biggest = 1;
  for (int i = 0; i < n_calls; i++) {
    int64_t s = (int64_t)g[i].m * g[i].k + (int64_t)g[i].k * g[i].n + (int64_t)g[i].m * g[i].n;
    if (s > biggest) biggest = s;
  }
  float *a = random_buf(biggest, 1), *b = random_buf(biggest, 2), *c = random_buf(biggest, 3);
  double t[N_REPEATS];
  for (int r = 0; r < N_REPEATS; r++) {
    double t0 = hsrl_time_cpu();
    for (int it = 0; it < iters; it++)
      for (int i = 0; i < n_calls; i++)
        for (int j = 0; j < g[i].count; j++)
          cblas_sgemm(CblasRowMajor, g[i].ta ? CblasTrans : CblasNoTrans,
                      g[i].tb ? CblasTrans : CblasNoTrans, g[i].m, g[i].n, g[i].k, 1.0f, a,
                      g[i].ta ? g[i].m : g[i].k, b, g[i].tb ? g[i].k : g[i].n, 0.0f, c, g[i].n);
    t[r] = (hsrl_time_cpu() - t0) / iters;
  }
  hsrl_free(a), hsrl_free(b), hsrl_free(c);
  return median(t, N_REPEATS);
}

static void report(const char *name, double flops, double t_ours, double t_sgemm) {
  double g_ours = flops / t_ours * 1e-9, g_sgemm = t_sgemm > 0.0 ? flops / t_sgemm * 1e-9 : 0.0;
  printf("%-51s %9.2f MFLOP %9.3f ms %8.2f GFLOP/s | sgemm %8.3f ms %8.2f GFLOP/s | ratio %.2f\n",
         name, flops * 1e-6, t_ours * 1e3, g_ours, t_sgemm * 1e3, g_sgemm,
         g_sgemm > 0.0 ? g_ours / g_sgemm : 0.0);
}

static const char *g_filter; /* NULL: every case */

static int selected(const char *name) { return !g_filter || strstr(name, g_filter) != NULL; }

/* The transformer layer on histories left-padded by 0, T/5 or 2T/5 positions (by batch row). In
 * the packed mode (the state encoder's: nn_transformer_forward_packed) the padding rows are not
 * computed at all; the FLOPs and the sgemm reference then count the rows that exist (the
 * attention products per batch row at their full n_q x n_b size, as sgemm would compute them). */
static void bench_transformer(int64_t B, int64_t T, int64_t n_q, int64_t E, int64_t F, int64_t h,
                              float p, int packed) {
  char name[128];
  snprintf(name, sizeof name, "transformer%s B%lld T%lld n_q%lld d%lld h%lld F%lld p%.1f",
           packed ? " packed" : "", (long long)B, (long long)T, (long long)n_q, (long long)E,
           (long long)h, (long long)F, (double)p);
  if (!selected(name)) return;
  nn_transformer_shape s = {.B = B, .T = T, .n_q = n_q, .E = E, .F = F, .n_heads = h};
  int64_t n_params = nn_transformer_param_count(E, F);
  float *params = hsrl_alloc_aligned((size_t)n_params * sizeof(float));
  hsrl_rng rng;
  hsrl_rng_init(&rng, 5, 0);
  nn_transformer_init(params, E, F, &rng);
  float *dparams = hsrl_alloc_aligned((size_t)n_params * sizeof(float));
  float *x = random_buf(B * T * E, 6), *dx = random_buf(B * T * E, 7);
  float *out = random_buf(B * n_q * E, 8), *dout = random_buf(B * n_q * E, 9);
  float *cache = hsrl_alloc_aligned((size_t)nn_transformer_cache_floats(&s) * sizeof(float));
  float *scratch = hsrl_alloc_aligned((size_t)nn_transformer_scratch_floats(&s) * sizeof(float));
  uint8_t *pad = hsrl_calloc((size_t)(B * T), 1);
  int64_t *rows = hsrl_calloc((size_t)(B + 1), sizeof(int64_t));
  for (int64_t b = 0; b < B; b++) {
    const int64_t first = T / 5 * (b % 3); /* some left padding */
    for (int64_t t = 0; t < first; t++) pad[b * T + t] = 1;
    rows[b + 1] = rows[b] + (packed ? T - first : T);
  }
  nn_mha_mask mask = {.causal = 1, .q_offset = 0, .key_padding = pad};

  int64_t hd = E / h, n_rows = rows[B], n_qrows = 0;
  for (int64_t b = 0; b < B; b++) {
    const int64_t nb = rows[b + 1] - rows[b];
    n_qrows += nb < n_q ? nb : n_q;
  }
  /* The products of one forward, then two per product in the backward; the attention products
   * per batch row (grouped by size: at most 3 distinct padding lengths here). */
  gemm_call g[7 + 6];
  int n_fwd = 0;
  g[n_fwd++] = (gemm_call){0, 1, (int)n_qrows, (int)E, (int)E, 1};     /* Q projection */
  g[n_fwd++] = (gemm_call){0, 1, (int)n_rows, (int)(2 * E), (int)E, 1}; /* K, V projection */
  for (int64_t k = 0; k < 3 && k < B; k++) { /* batch rows b = k mod 3 */
    const int64_t nb = rows[k + 1] - rows[k], nqb = nb < n_q ? nb : n_q;
    const int count = (int)((B - k + 2) / 3 * h);
    g[n_fwd++] = (gemm_call){0, 1, (int)nqb, (int)nb, (int)hd, count}; /* scores */
    g[n_fwd++] = (gemm_call){0, 0, (int)nqb, (int)hd, (int)nb, count}; /* weights x V */
  }
  g[n_fwd++] = (gemm_call){0, 1, (int)n_qrows, (int)E, (int)E, 1}; /* out projection */
  g[n_fwd++] = (gemm_call){0, 1, (int)n_qrows, (int)F, (int)E, 1}; /* FFN 1 */
  g[n_fwd++] = (gemm_call){0, 1, (int)n_qrows, (int)E, (int)F, 1}; /* FFN 2 */
  gemm_call all[3 * 13];
  for (int i = 0; i < n_fwd; i++) {
    all[3 * i] = g[i];
    all[3 * i + 1] = (gemm_call){0, 0, g[i].m, g[i].k, g[i].n, g[i].count}; /* d-input */
    all[3 * i + 2] = (gemm_call){1, 0, g[i].n, g[i].k, g[i].m, g[i].count}; /* d-weight */
  }
  double flops = gemm_flops(all, 3 * n_fwd);
  int iters = 20;
  double t[N_REPEATS];
  for (int r = 0; r < N_REPEATS; r++) {
    double t0 = hsrl_time_cpu();
    for (int it = 0; it < iters; it++) {
      memset(dx, 0, (size_t)(n_rows * E) * sizeof(float));
      if (packed) {
        nn_transformer_forward_packed(out, cache, x, params, &mask, p, 1, (uint64_t)it * 1000003u, &s,
                                      rows);
        nn_transformer_backward_packed(dx, dparams, scratch, dout, cache, x, params, &mask, p, &s,
                                       rows);
      } else {
        nn_transformer_forward(out, cache, x, params, &mask, p, 1, (uint64_t)it * 1000003u, &s);
        nn_transformer_backward(dx, dparams, scratch, dout, cache, x, params, &mask, p, &s);
      }
    }
    t[r] = (hsrl_time_cpu() - t0) / iters;
  }
  report(name, flops, median(t, N_REPEATS), time_sgemm(all, 3 * n_fwd, iters));
  hsrl_free(params), hsrl_free(dparams), hsrl_free(x), hsrl_free(dx), hsrl_free(out);
  hsrl_free(dout), hsrl_free(cache), hsrl_free(scratch), hsrl_free(pad), hsrl_free(rows);
}

static void bench_linear(const char *what, int64_t n, int64_t in, int64_t out_dim) {
  char name[128];
  snprintf(name, sizeof name, "linear %s n%lld %lld->%lld", what, (long long)n, (long long)in,
           (long long)out_dim);
  if (!selected(name)) return;
  float *w = random_buf(out_dim * in, 1), *b = random_buf(out_dim, 2), *x = random_buf(n * in, 3);
  float *y = random_buf(n * out_dim, 4), *dy = random_buf(n * out_dim, 5);
  float *dx = random_buf(n * in, 6), *dw = random_buf(out_dim * in, 7), *db = random_buf(out_dim, 8);
  gemm_call all[3] = {{0, 1, (int)n, (int)out_dim, (int)in, 1},
                      {0, 0, (int)n, (int)in, (int)out_dim, 1},
                      {1, 0, (int)out_dim, (int)in, (int)n, 1}};
  double flops = gemm_flops(all, 3);
  int iters = (int)(2e8 / flops) + 1;
  double t[N_REPEATS];
  for (int r = 0; r < N_REPEATS; r++) {
    double t0 = hsrl_time_cpu();
    for (int it = 0; it < iters; it++) {
      nn_linear_forward(y, x, w, b, n, in, out_dim);
      nn_linear_backward(dx, dw, db, dy, x, w, n, in, out_dim);
    }
    t[r] = (hsrl_time_cpu() - t0) / iters;
  }
  report(name, flops, median(t, N_REPEATS), time_sgemm(all, 3, iters));
  hsrl_free(w), hsrl_free(b), hsrl_free(x), hsrl_free(y), hsrl_free(dy), hsrl_free(dx);
  hsrl_free(dw), hsrl_free(db);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--no-sgemm") == 0) g_no_sgemm = 1;
    else g_filter = argv[i];
  }
  printf("forward+backward, median of %d repeats (CPU time); ratio = our GFLOP/s / cblas_sgemm GFLOP/s at "
         "the same products\n", N_REPEATS);
  /* p = 0: evaluation; p = 0.1: the training setting (four dropout sites per layer); packed: the
   * state encoder's layout (left padding not computed). */
  for (int packed = 0; packed < 2; packed++) {
    bench_transformer(64, 50, 50, 32, 128, 4, 0.0f, packed);
    bench_transformer(64, 50, 1, 32, 128, 4, 0.0f, packed);
    bench_transformer(64, 50, 50, 32, 128, 4, 0.1f, packed);
    bench_transformer(64, 50, 1, 32, 128, 4, 0.1f, packed);
  }
  /* The policy's linear layers (method.md §6-7, ML-1M: D = 27, V = 64; critic on 4 contexts). */
  bench_linear("item_map", 64 * 50, 27, 32);
  bench_linear("sid head", 64, 32, 64);
  bench_linear("critic 1", 64 * 4, 32, 256);
  bench_linear("critic 2", 64 * 4, 256, 64);
  bench_linear("large", 4096, 256, 256);
  return 0;
}
