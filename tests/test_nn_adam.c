/* test_nn_adam.c: Adam / AdamW (nn_adam) against a double-precision reference and hand-worked
 * numbers, torch's float constants, bias correction at step 1; clipping, soft update and the
 * finiteness check (nn_update). The torch golden comparison is tests/test_golden_adam (H2). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/nn/nn_adam.h"
#include "common/nn/nn_update.h"
#include "tests/test_harness.h"

/* ---------------------------------------------------------------------------------------------
 * Double reference: the textbook formulas (bias-corrected moments), not torch's operation order,
 * with the hyper-parameters as the decimals they are written as. */
typedef struct ref_hp {
  double lr, beta1, beta2, eps, wd;
  int decoupled;
} ref_hp;

static void ref_adam_step(double *p, const float *grad, double *m, double *v, int64_t n, int64_t t,
                          const ref_hp *hp) {
  double bias1 = 1.0 - pow(hp->beta1, (double)t), bias2 = 1.0 - pow(hp->beta2, (double)t);
  for (int64_t i = 0; i < n; i++) {
    double g = (double)grad[i];
    if (hp->decoupled) p[i] *= 1.0 - hp->lr * hp->wd;
    else g += hp->wd * p[i];
    m[i] = hp->beta1 * m[i] + (1.0 - hp->beta1) * g;
    v[i] = hp->beta2 * v[i] + (1.0 - hp->beta2) * g * g;
    double m_hat = m[i] / bias1, v_hat = v[i] / bias2;
    p[i] -= hp->lr * m_hat / (sqrt(v_hat) + hp->eps);
  }
}

/* Max over i of |a_i - b_i| / (atol_i + rtol |b_i|), atol_i = atol * scale_i (scale: NULL = 1). */
static double scaled_diff(const float *a, const double *b, const double *scale, int64_t n,
                          double atol, double rtol) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double tol = atol * (scale ? scale[i] : 1.0) + rtol * fabs(b[i]);
    double d = fabs((double)a[i] - b[i]) / tol;
    if (!(d <= worst)) worst = d; /* NaN counts as a failure */
  }
  return worst;
}

enum { N_EL = 1003, N_STEPS = 5 };

/* Gradient of step t: uniform in (-1, 1) times a per-element magnitude 1e-4 .. 1e2, so that eps,
 * the weight decay and the moments each dominate somewhere. */
static double grad_scale(int64_t i) { return pow(10.0, (double)(i % 7) - 4.0); }
static void make_grad(float *g, int64_t n, int64_t t) {
  test_fill_uniform(g, n, -1.0f, 1.0f, 1000 + (uint64_t)t);
  for (int64_t i = 0; i < n; i++) g[i] = (float)((double)g[i] * grad_scale(i));
}

typedef struct adam_run {
  double worst_p, worst_m, worst_v;
} adam_run;

/* Runs N_STEPS of nn_adam_step and of the reference from the same start; step_shift != 0 feeds
 * nn_adam_step a wrong step count (to show that the comparison notices). */
static adam_run adam_compare(const nn_adam_config *cfg, const ref_hp *hp, int64_t step_shift) {
  float *p = hsrl_malloc(N_EL * sizeof *p), *g = hsrl_malloc(N_EL * sizeof *g);
  float *m = hsrl_calloc(N_EL, sizeof *m), *v = hsrl_calloc(N_EL, sizeof *v);
  double *rp = hsrl_malloc(N_EL * sizeof *rp), *rm = hsrl_calloc(N_EL, sizeof *rm);
  double *rv = hsrl_calloc(N_EL, sizeof *rv), *mscale = hsrl_malloc(N_EL * sizeof *mscale);
  test_fill_uniform(p, N_EL, -1.0f, 1.0f, 7);
  for (int64_t i = 0; i < N_EL; i++) rp[i] = (double)p[i];
  for (int64_t i = 0; i < N_EL; i++) mscale[i] = grad_scale(i) + hp->wd; /* size of |g| */
  for (int64_t t = 1; t <= N_STEPS; t++) {
    make_grad(g, N_EL, t);
    nn_adam_step(p, g, m, v, N_EL, t + step_shift, cfg);
    ref_adam_step(rp, g, rm, rv, N_EL, t, hp);
  }
  adam_run r;
  /* Parameters are O(1): a few float roundings of 1 per step. Moments: relative to the size of
   * the gradients that built them (m can cancel to near 0); v is a sum of squares, relative. */
  r.worst_p = scaled_diff(p, rp, NULL, N_EL, 4e-7, 1e-6);
  r.worst_m = scaled_diff(m, rm, mscale, N_EL, 1e-7, 1e-6);
  r.worst_v = scaled_diff(v, rv, NULL, N_EL, 1e-30, 1e-6);
  hsrl_free(p), hsrl_free(g), hsrl_free(m), hsrl_free(v);
  hsrl_free(rp), hsrl_free(rm), hsrl_free(rv), hsrl_free(mscale);
  return r;
}

/* lr and wd as floats for the config and as the decimals they stand for for the reference. */
static void check_against_reference(float lr, double lr_dec, float wd, double wd_dec,
                                    int decoupled) {
  nn_adam_config cfg = nn_adam_defaults(lr);
  cfg.weight_decay = wd;
  cfg.decoupled = decoupled;
  ref_hp hp = {.lr = lr_dec, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .wd = wd_dec,
               .decoupled = decoupled};
  adam_run r = adam_compare(&cfg, &hp, 0);
  TEST_ASSERTF(r.worst_p <= 1.0 && r.worst_m <= 1.0 && r.worst_v <= 1.0,
               "lr %g wd %g decoupled %d: scaled diffs p %.3g m %.3g v %.3g", lr_dec, wd_dec,
               decoupled, r.worst_p, r.worst_m, r.worst_v);
  /* the comparison is sharp enough to see a bias correction one step off */
  adam_run bad = adam_compare(&cfg, &hp, 1);
  TEST_ASSERTF(bad.worst_p > 100.0, "a wrong step count went unnoticed (%.3g)", bad.worst_p);
}

static void test_adam_matches_double_reference(void) {
  check_against_reference(0.01f, 0.01, 0.0f, 0.0, 0);
  if (test_failed_now()) return;
  check_against_reference(0.001f, 0.001, 0.0f, 0.0, 0);
}

static void test_adam_coupled_weight_decay_matches_reference(void) {
  check_against_reference(0.01f, 0.01, 0.1f, 0.1, 0);
}

static void test_adamw_matches_reference(void) {
  check_against_reference(0.01f, 0.01, 0.1f, 0.1, 1);
  if (test_failed_now()) return;
  check_against_reference(0.001f, 0.001, 0.1f, 0.1, 1);
}

/* Coupled L2, decoupled decay and no decay must give clearly different parameters. */
static void test_adam_variants_differ(void) {
  float g[N_EL], p[3][N_EL], m[3][N_EL], v[3][N_EL];
  memset(m, 0, sizeof m), memset(v, 0, sizeof v);
  for (int k = 0; k < 3; k++) test_fill_uniform(p[k], N_EL, -1.0f, 1.0f, 7);
  nn_adam_config cfg[3] = {nn_adam_defaults(0.01f), nn_adam_defaults(0.01f),
                           nn_adam_defaults(0.01f)};
  cfg[1].weight_decay = cfg[2].weight_decay = 0.1f;
  cfg[2].decoupled = 1;
  for (int64_t t = 1; t <= N_STEPS; t++) {
    make_grad(g, N_EL, t);
    for (int k = 0; k < 3; k++) nn_adam_step(p[k], g, m[k], v[k], N_EL, t, &cfg[k]);
  }
  for (int a = 0; a < 3; a++)
    for (int b = a + 1; b < 3; b++) {
      double max_diff = 0.0;
      for (int64_t i = 0; i < N_EL; i++)
        max_diff = fmax(max_diff, fabs((double)p[a][i] - (double)p[b][i]));
      TEST_ASSERTF(max_diff > 1e-4, "variants %d and %d agree to %g", a, b, max_diff);
    }
}

/* One element by hand (lr 0.1, betas 0.9 / 0.999, eps 1e-8), p0 = 1:
 *   t=1, g=0.5:  m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25,
 *                p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002
 *   t=2, g=-1:   m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
 *                m_hat = -0.055 / 0.19 = -0.289473684, v_hat = 0.00124975 / 0.001999 = 0.625187594,
 *                sqrt = 0.790688051,
 *                p = 0.900000002 + 0.1 * 0.289473684 / 0.790688051 = 0.936610354 */
static void test_adam_hand_worked(void) {
  nn_adam_config cfg = nn_adam_defaults(0.1f);
  float p = 1.0f, m = 0.0f, v = 0.0f, g = 0.5f;
  nn_adam_step(&p, &g, &m, &v, 1, 1, &cfg);
  TEST_NEAR(m, 0.05, 1e-9);
  TEST_NEAR(v, 0.00025, 5e-11); /* float: 1 ulp = 2.7e-11 */
  TEST_NEAR(p, 0.900000002, 1e-7);
  g = -1.0f;
  nn_adam_step(&p, &g, &m, &v, 1, 2, &cfg);
  TEST_NEAR(m, -0.055, 1e-8);
  TEST_NEAR(v, 0.00124975, 1e-10);
  TEST_NEAR(p, 0.936610354, 2e-7);
}

/* Coupled L2 by hand (lr 0.1, wd 0.1, p0 = 2): g = 0.5 -> g' = 0.5 + 0.2 = 0.7, step 1 moves by
 * lr: p = 1.9. g = -0.2 -> g' = 0: no move at all. AdamW: p = 2 * (1 - 0.01) = 1.98 first, then
 * the step of the raw gradient: 1.88 for g = 0.5, 2.08 for g = -0.2. */
static void test_weight_decay_hand_worked(void) {
  nn_adam_config adam = nn_adam_defaults(0.1f), adamw = nn_adam_defaults(0.1f);
  adam.weight_decay = adamw.weight_decay = 0.1f;
  adamw.decoupled = 1;
  const float grads[2] = {0.5f, -0.2f};
  const double want_adam[2] = {1.9, 2.0}, want_adamw[2] = {1.88, 2.08};
  for (int k = 0; k < 2; k++) {
    float p = 2.0f, m = 0.0f, v = 0.0f;
    nn_adam_step(&p, &grads[k], &m, &v, 1, 1, &adam);
    TEST_NEAR(p, want_adam[k], 2e-7);
    p = 2.0f, m = 0.0f, v = 0.0f;
    nn_adam_step(&p, &grads[k], &m, &v, 1, 1, &adamw);
    TEST_NEAR(p, want_adamw[k], 2e-7);
  }
}

/* torch forms 1 - beta from the Python doubles: exp_avg = 0.1f * g, exp_avg_sq = (0.001f * g) * g
 * after the first step, bit for bit (from the float 0.999f, 1 - beta2 would be 1.3e-5 off). */
static void test_first_moments_use_torch_constants(void) {
  nn_adam_config cfg = nn_adam_defaults(0.001f);
  float g[64], p[64], m[64], v[64];
  test_fill_uniform(g, 64, -3.0f, 3.0f, 5);
  memset(p, 0, sizeof p), memset(m, 0, sizeof m), memset(v, 0, sizeof v);
  nn_adam_step(p, g, m, v, 64, 1, &cfg);
  const float one_minus_b1 = (float)(1.0 - 0.9), one_minus_b2 = (float)(1.0 - 0.999);
  for (int i = 0; i < 64; i++) {
    TEST_ASSERTF(m[i] == one_minus_b1 * g[i], "m[%d] = %.9g, torch %.9g", i, (double)m[i],
                 (double)(one_minus_b1 * g[i]));
    TEST_ASSERTF(v[i] == (one_minus_b2 * g[i]) * g[i], "v[%d] = %.9g, torch %.9g", i, (double)v[i],
                 (double)((one_minus_b2 * g[i]) * g[i]));
  }
}

/* Bias correction: at step 1 every parameter moves by lr against the sign of its gradient,
 * whatever the gradient's size (well above eps). */
static void test_step1_moves_by_lr(void) {
  enum { N = 257 };
  float g[N], p[N], m[N], v[N];
  test_fill_uniform(g, N, -1.0f, 1.0f, 9);
  for (int i = 0; i < N; i++) g[i] = (float)((double)g[i] * pow(10.0, (double)(i % 5) - 2.0));
  for (int i = 0; i < N; i++)
    if (fabsf(g[i]) < 1e-3f) g[i] = g[i] < 0 ? -1e-3f : 1e-3f;
  for (int decoupled = 0; decoupled < 2; decoupled++) {
    nn_adam_config cfg = nn_adam_defaults(0.001f);
    cfg.decoupled = decoupled;
    cfg.weight_decay = 0.05f; /* p = 0: neither form of decay acts */
    memset(p, 0, sizeof p), memset(m, 0, sizeof m), memset(v, 0, sizeof v);
    nn_adam_step(p, g, m, v, N, 1, &cfg);
    for (int i = 0; i < N; i++) {
      double want = g[i] > 0 ? -0.001 : 0.001;
      TEST_ASSERTF(fabs((double)p[i] - want) <= 2e-5 * 0.001, "g %g: moved %.9g, want %g",
                   (double)g[i], (double)p[i], want);
    }
  }
}

/* Zero padding in a parameter table: zero grad on a zero parameter stays exactly zero. */
static void test_zero_stays_zero(void) {
  nn_adam_config cfg = nn_adam_defaults(0.01f);
  cfg.weight_decay = 0.1f;
  float p[4] = {0}, g[4] = {0}, m[4] = {0}, v[4] = {0};
  for (int64_t t = 1; t <= 3; t++) nn_adam_step(p, g, m, v, 4, t, &cfg);
  for (int i = 0; i < 4; i++) TEST_ASSERT(p[i] == 0.0f && m[i] == 0.0f && v[i] == 0.0f);
}

/* ---------------------------------------------------------------------------------------------
 * nn_update */

static void test_clip_grad_norm(void) {
  float g2[2] = {3.0f, 4.0f};
  TEST_NEAR(nn_clip_grad_norm(g2, 2, 10.0f), 5.0, 1e-12);
  TEST_ASSERT(g2[0] == 3.0f && g2[1] == 4.0f); /* below max_norm: untouched */
  TEST_NEAR(nn_clip_grad_norm(g2, 2, 1.0f), 5.0, 1e-12);
  TEST_NEAR(g2[0], 0.6, 1e-6);
  TEST_NEAR(g2[1], 0.8, 1e-6);

  enum { N = 10007 };
  float *g = hsrl_malloc(N * sizeof *g), *orig = hsrl_malloc(N * sizeof *orig);
  test_fill_uniform(orig, N, -2.0f, 2.0f, 11);
  /* independent norm: pairwise-free Kahan sum in double */
  double s = 0.0, c = 0.0;
  for (int64_t i = 0; i < N; i++) {
    double y = (double)orig[i] * (double)orig[i] - c, t = s + y;
    c = (t - s) - y, s = t;
  }
  double want = sqrt(s);
  memcpy(g, orig, N * sizeof *g);
  double norm = nn_clip_grad_norm(g, N, 1.0f);
  TEST_NEAR(norm, want, 1e-9 * want);
  double after = 0.0;
  for (int64_t i = 0; i < N; i++) after += (double)g[i] * (double)g[i];
  TEST_NEAR(sqrt(after), 1.0, 1e-6);
  double coef = 1.0 / (want + 1e-6);
  for (int64_t i = 0; i < N; i++)
    TEST_ASSERTF(fabs((double)g[i] - coef * (double)orig[i]) <=
                     2.5e-7 * fabs(coef * (double)orig[i]),
                 "element %lld not scaled uniformly", (long long)i);
  /* no change at all below the threshold */
  memcpy(g, orig, N * sizeof *g);
  TEST_NEAR(nn_clip_grad_norm(g, N, (float)(2.0 * want)), want, 1e-9 * want);
  TEST_ASSERT(memcmp(g, orig, N * sizeof *g) == 0);
  /* a NaN gradient: the norm says so and the buffer is left as it was */
  memcpy(g, orig, N * sizeof *g);
  g[N / 2] = NAN;
  TEST_ASSERT(isnan(nn_clip_grad_norm(g, N, 1.0f)));
  TEST_ASSERT(g[0] == orig[0] && g[N - 1] == orig[N - 1]);
  g[N / 2] = INFINITY;
  TEST_ASSERT(isinf(nn_clip_grad_norm(g, N, 1.0f)));
  TEST_ASSERT(nn_clip_grad_norm(g, 0, 1.0f) == 0.0);
  hsrl_free(g), hsrl_free(orig);
}

/* nn_sum_squares: the documented lane order exactly, the Kahan sum to 1e-12, and every tail length */
static void test_sum_squares(void) {
  enum { N = 10007 };
  float *x = hsrl_malloc(N * sizeof *x);
  test_fill_uniform(x, N, -3.0f, 3.0f, 12);
  const int64_t lens[8] = {0, 1, 15, 16, 17, 33, 1000, N};
  for (int t = 0; t < 8; t++) {
    const int64_t n = lens[t];
    double lane[16] = {0}, ordered = 0.0, s = 0.0, c = 0.0;
    const int64_t full = n / 16 * 16;
    for (int64_t i = 0; i < full; i++) lane[i % 16] += (double)x[i] * (double)x[i];
    for (int k = 0; k < 16; k++) ordered += lane[k];
    for (int64_t i = full; i < n; i++) ordered += (double)x[i] * (double)x[i];
    for (int64_t i = 0; i < n; i++) {
      double y = (double)x[i] * (double)x[i] - c, u = s + y;
      c = (u - s) - y, s = u;
    }
    const double got = nn_sum_squares(x, n);
    TEST_ASSERTF(got == ordered, "n %lld: %.17g, the documented order gives %.17g", (long long)n, got, ordered);
    TEST_NEAR(got, s, 1e-12 * (s + 1.0));
  }
  x[N / 3] = NAN;
  TEST_ASSERT(isnan(nn_sum_squares(x, N)));
  hsrl_free(x);
}

static void test_soft_update(void) {
  enum { N = 301 };
  float t[N], s[N], t0[N];
  test_fill_uniform(s, N, -1.0f, 1.0f, 21);
  test_fill_uniform(t0, N, -1.0f, 1.0f, 22);
  memcpy(t, t0, sizeof t);
  nn_soft_update(t, s, N, 0.01f);
  for (int i = 0; i < N; i++) TEST_NEAR(t[i], 0.01 * (double)s[i] + 0.99 * (double)t0[i], 2e-7);
  /* k updates towards a fixed source: t_k = s + 0.99^k (t_0 - s); float roundings add up to
   * at most ~100 ulps (each is damped by 0.99 per later step) */
  for (int k = 2; k <= 200; k++) nn_soft_update(t, s, N, 0.01f);
  double decay = pow(0.99, 200.0);
  for (int i = 0; i < N; i++)
    TEST_NEAR(t[i], (double)s[i] + decay * ((double)t0[i] - (double)s[i]), 2e-5);
  /* tau = 0 keeps the target, tau = 1 copies the source, exactly */
  memcpy(t, t0, sizeof t);
  nn_soft_update(t, s, N, 0.0f);
  TEST_ASSERT(memcmp(t, t0, sizeof t) == 0);
  nn_soft_update(t, s, N, 1.0f);
  TEST_ASSERT(memcmp(t, s, sizeof t) == 0);
}

static void test_all_finite(void) {
  enum { N = 1001 };
  float x[N];
  test_fill_uniform(x, N, -1.0f, 1.0f, 31);
  x[3] = FLT_MAX, x[4] = -FLT_MAX, x[5] = FLT_MIN / 4.0f; /* extremes and a denormal are finite */
  TEST_ASSERT(nn_all_finite(x, N) == 1);
  TEST_ASSERT(nn_all_finite(x, 0) == 1);
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  const int64_t where[3] = {0, N / 2, N - 1};
  for (int b = 0; b < 3; b++)
    for (int w = 0; w < 3; w++) {
      float keep = x[where[w]];
      x[where[w]] = bad[b];
      TEST_ASSERTF(nn_all_finite(x, N) == 0, "value %d at %lld not detected", b,
                   (long long)where[w]);
      TEST_ASSERT(nn_all_finite(x, where[w]) == 1); /* the prefix before it is clean */
      x[where[w]] = keep;
    }
  /* a NaN produced by arithmetic, not a literal */
  volatile float zero = 0.0f;
  x[7] = zero / zero;
  TEST_ASSERT(nn_all_finite(x, N) == 0);
}

int main(void) {
  TEST_RUN(test_adam_matches_double_reference);
  TEST_RUN(test_adam_coupled_weight_decay_matches_reference);
  TEST_RUN(test_adamw_matches_reference);
  TEST_RUN(test_adam_variants_differ);
  TEST_RUN(test_adam_hand_worked);
  TEST_RUN(test_weight_decay_hand_worked);
  TEST_RUN(test_first_moments_use_torch_constants);
  TEST_RUN(test_step1_moves_by_lr);
  TEST_RUN(test_zero_stays_zero);
  TEST_RUN(test_clip_grad_norm);
  TEST_RUN(test_sum_squares);
  TEST_RUN(test_soft_update);
  TEST_RUN(test_all_finite);
  return test_summary();
}
