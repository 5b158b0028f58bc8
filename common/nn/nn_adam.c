/* nn_adam.c: see nn_adam.h. The element loop copies torch's kernels' operation order:
 *   exp_avg.mul_(b1).add_(g, alpha=1-b1)          m = m*b1 + (1-b1)*g
 *   exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) v = v*b2 + ((1-b2)*g)*g
 *   denom = exp_avg_sq.sqrt() / sqrt(bias2) + eps
 *   param.addcdiv_(exp_avg, denom, value=-step)   p = p + ((-step)*m)/denom
 * Each float operation rounds once: the build has -ffp-contract=off and no -ffast-math, so the
 * compiler neither fuses a*b+c nor reorders. */
#include "common/nn/nn_adam.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/hsrl_check.h"

nn_adam_config nn_adam_defaults(float lr) {
  nn_adam_config c = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                      .decoupled = 0};
  return c;
}

/* The double a hyper-parameter was written as: the shortest decimal that reads back as x.
 * torch receives Python doubles (beta2 = 0.999, not 0.99900001287f) and forms 1 - beta2 and
 * 1 - beta2^step from them; doing the same here keeps v within a float rounding of torch's
 * (with the float, 1 - beta2 alone would be off by 1.3e-5 relative). */
static double adam_decimal(float x) {
  char buf[32];
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
    if (strtof(buf, NULL) == x) return strtod(buf, NULL);
  }
  return (double)x; /* 9 significant digits always round-trip a finite float */
}

/* The element loop, in blocks of NN_ADAM_BLOCK without control flow so that GCC's -O2 vectoriser
 * takes it (sqrtf is one instruction with -fno-math-errno, see CMakeLists.txt; vector sqrt and
 * divide round exactly like the scalar ones), compiled for AVX2 and the baseline on x86-64. */
#define NN_ADAM_BLOCK 8
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NN_ADAM_HOT __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NN_ADAM_HOT
#endif

NN_ADAM_HOT static void adam_elements(float *restrict params, const float *restrict grads,
                                      float *restrict m, float *restrict v, int64_t n, float wd,
                                      int coupled, float b1, float b2, float one_minus_b1,
                                      float one_minus_b2, float neg_step_size, float bias2_sqrt,
                                      float eps) {
  int64_t i = 0;
  if (coupled) {
    for (; i + NN_ADAM_BLOCK <= n; i += NN_ADAM_BLOCK)
      for (int k = 0; k < NN_ADAM_BLOCK; k++) {
        float g = grads[i + k] + wd * params[i + k]; /* grad.add(param, alpha=weight_decay) */
        float mk = m[i + k] * b1 + one_minus_b1 * g;
        float vk = v[i + k] * b2 + (one_minus_b2 * g) * g;
        m[i + k] = mk;
        v[i + k] = vk;
        params[i + k] = params[i + k] + (neg_step_size * mk) / (sqrtf(vk) / bias2_sqrt + eps);
      }
  } else {
    for (; i + NN_ADAM_BLOCK <= n; i += NN_ADAM_BLOCK)
      for (int k = 0; k < NN_ADAM_BLOCK; k++) {
        float g = grads[i + k];
        float mk = m[i + k] * b1 + one_minus_b1 * g;
        float vk = v[i + k] * b2 + (one_minus_b2 * g) * g;
        m[i + k] = mk;
        v[i + k] = vk;
        params[i + k] = params[i + k] + (neg_step_size * mk) / (sqrtf(vk) / bias2_sqrt + eps);
      }
  }
  for (; i < n; i++) {
    float g = grads[i];
    if (coupled) g = g + wd * params[i];
    m[i] = m[i] * b1 + one_minus_b1 * g;
    v[i] = v[i] * b2 + (one_minus_b2 * g) * g;
    float denom = sqrtf(v[i]) / bias2_sqrt + eps;
    params[i] = params[i] + (neg_step_size * m[i]) / denom;
  }
}

void nn_adam_step(float *params, const float *grads, float *m, float *v, int64_t n, int64_t step,
                  const nn_adam_config *cfg) {
  HSRL_CHECK(n >= 0 && cfg != NULL);
  HSRL_CHECKF(step >= 1, "Adam step %lld: steps are 1-based", (long long)step);
  HSRL_CHECKF(cfg->lr >= 0.0f && isfinite(cfg->lr), "Adam lr %g", (double)cfg->lr);
  HSRL_CHECKF(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f, "Adam beta1 %g", (double)cfg->beta1);
  HSRL_CHECKF(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f, "Adam beta2 %g", (double)cfg->beta2);
  HSRL_CHECKF(cfg->eps >= 0.0f && isfinite(cfg->eps), "Adam eps %g", (double)cfg->eps);
  HSRL_CHECKF(cfg->weight_decay >= 0.0f && isfinite(cfg->weight_decay), "Adam weight_decay %g",
              (double)cfg->weight_decay);
  if (n == 0) return;

  const double lr = adam_decimal(cfg->lr), beta1 = adam_decimal(cfg->beta1),
               beta2 = adam_decimal(cfg->beta2), wd = adam_decimal(cfg->weight_decay);
  const double bias1 = 1.0 - pow(beta1, (double)step), bias2 = 1.0 - pow(beta2, (double)step);
  /* torch hands these Python floats to float kernels: one rounding each. */
  const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps, wd_f = cfg->weight_decay;
  const float one_minus_b1 = (float)(1.0 - beta1), one_minus_b2 = (float)(1.0 - beta2);
  const float neg_step_size = (float)(-(lr / bias1));
  const float bias2_sqrt = (float)sqrt(bias2);

  if (cfg->decoupled) {
    const float decay = (float)(1.0 - lr * wd); /* param.mul_(1 - lr * weight_decay) */
    for (int64_t i = 0; i < n; i++) params[i] = params[i] * decay;
  }
  const int coupled = !cfg->decoupled && wd_f != 0.0f;
  adam_elements(params, grads, m, v, n, coupled ? wd_f : 0.0f, coupled, b1, b2, one_minus_b1,
                one_minus_b2, neg_step_size, bias2_sqrt, eps);
}
