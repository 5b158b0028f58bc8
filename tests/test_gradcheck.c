/* test_gradcheck.c: see test_gradcheck.h. */
#include "tests/test_gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"

int gradcheck_add(gradcheck_case *c, const char *name, float *value, float *grad, int64_t n) {
  HSRL_CHECK(c->n_tensors < GRADCHECK_MAX_TENSORS);
  c->tensors[c->n_tensors] = (gradcheck_tensor){name, value, grad, n};
  return c->n_tensors++;
}

static double loss_of(gradcheck_case *c, const float *r) {
  c->forward(c->ctx);
  double s = 0.0;
  for (int64_t i = 0; i < c->n_out; i++) s += (double)r[i] * (double)c->out[i];
  return s;
}

static void zero_grads(gradcheck_case *c) {
  for (int t = 0; t < c->n_tensors; t++) memset(c->tensors[t].grad, 0, (size_t)c->tensors[t].n * sizeof(float));
}

/* forward + backward with dout = R; grads zeroed first. */
static void analytic(gradcheck_case *c, const float *r) {
  c->forward(c->ctx);
  memcpy(c->dout, r, (size_t)c->n_out * sizeof(float));
  zero_grads(c);
  c->backward(c->ctx);
}

static float *random_r(gradcheck_case *c, hsrl_rng *rng) {
  float *r = hsrl_malloc((size_t)c->n_out * sizeof(float));
  for (int64_t i = 0; i < c->n_out; i++) r[i] = 2.0f * hsrl_rng_uniform(rng) - 1.0f;
  return r;
}

int gradcheck_run(gradcheck_case *c, uint64_t seed, double tol, gradcheck_result *res) {
  gradcheck_result local;
  if (!res) res = &local;
  memset(res, 0, sizeof *res);
  double eps = c->eps > 0 ? c->eps : 1e-2, floor_ = c->floor > 0 ? c->floor : 1e-2;
  hsrl_rng rng;
  hsrl_rng_init(&rng, seed, 7);
  float *r = random_r(c, &rng);

  /* Analytic gradients, kept aside. */
  analytic(c, r);
  float *saved[GRADCHECK_MAX_TENSORS];
  for (int t = 0; t < c->n_tensors; t++) {
    saved[t] = hsrl_malloc((size_t)c->tensors[t].n * sizeof(float));
    memcpy(saved[t], c->tensors[t].grad, (size_t)c->tensors[t].n * sizeof(float));
  }

  /* Backward twice doubles. */
  c->backward(c->ctx);
  for (int t = 0; t < c->n_tensors; t++)
    for (int64_t i = 0; i < c->tensors[t].n; i++) {
      double two = 2.0 * (double)saved[t][i], g2 = c->tensors[t].grad[i];
      double e = fabs(g2 - two) / fmax(fabs(two), floor_);
      if (!(e <= res->doubling_err)) res->doubling_err = e;
    }

  /* Central differences. */
  res->worst_name = c->n_tensors ? c->tensors[0].name : "";
  for (int t = 0; t < c->n_tensors; t++) {
    gradcheck_tensor *x = &c->tensors[t];
    int64_t n_probe = (c->max_probes > 0 && c->max_probes < x->n) ? c->max_probes : x->n;
    for (int64_t p = 0; p < n_probe; p++) {
      int64_t i = n_probe == x->n ? p : (int64_t)hsrl_rng_below(&rng, (uint64_t)x->n);
      float keep = x->value[i];
      x->value[i] = keep + (float)eps;
      double fp = loss_of(c, r);
      x->value[i] = keep - (float)eps;
      double fm = loss_of(c, r);
      x->value[i] = keep;
      /* Divide by the step actually taken in float32. */
      double step = (double)(keep + (float)eps) - (double)(keep - (float)eps);
      double num = (fp - fm) / step, ana = saved[t][i];
      double e = fabs(num - ana) / fmax(fmax(fabs(num), fabs(ana)), floor_);
      if (!(e <= res->max_err)) {
        res->max_err = e;
        res->worst_name = x->name;
        res->worst_index = i;
        res->worst_numeric = num;
        res->worst_analytic = ana;
      }
    }
  }
  c->forward(c->ctx); /* leave outputs consistent with the unperturbed values */
  for (int t = 0; t < c->n_tensors; t++) hsrl_free(saved[t]);
  hsrl_free(r);
  int ok = res->max_err <= tol && res->doubling_err <= 1e-4;
  printf("  gradcheck: max err %.3g at %s[%lld] (numeric %.6g, analytic %.6g); doubling err %.3g -> %s\n",
         res->max_err, res->worst_name, (long long)res->worst_index, res->worst_numeric,
         res->worst_analytic, res->doubling_err, ok ? "pass" : "FAIL");
  return ok;
}

int gradcheck_direction(gradcheck_case *c, uint64_t seed, double h, double tol,
                        gradcheck_result *res) {
  gradcheck_result local;
  if (!res) res = &local;
  memset(res, 0, sizeof *res);
  hsrl_rng rng;
  hsrl_rng_init(&rng, seed, 11);
  float *r = random_r(c, &rng);
  analytic(c, r);
  float *keep[GRADCHECK_MAX_TENSORS], *delta[GRADCHECK_MAX_TENSORS];
  double ana = 0.0;
  for (int t = 0; t < c->n_tensors; t++) {
    gradcheck_tensor *x = &c->tensors[t];
    keep[t] = hsrl_malloc((size_t)x->n * sizeof(float));
    delta[t] = hsrl_malloc((size_t)x->n * sizeof(float));
    memcpy(keep[t], x->value, (size_t)x->n * sizeof(float));
    for (int64_t i = 0; i < x->n; i++) {
      delta[t][i] = (float)(h * hsrl_rng_normal(&rng));
      ana += (double)x->grad[i] * (double)delta[t][i];
    }
  }
  for (int t = 0; t < c->n_tensors; t++)
    for (int64_t i = 0; i < c->tensors[t].n; i++) c->tensors[t].value[i] = keep[t][i] + delta[t][i];
  double fp = loss_of(c, r);
  for (int t = 0; t < c->n_tensors; t++)
    for (int64_t i = 0; i < c->tensors[t].n; i++) c->tensors[t].value[i] = keep[t][i] - delta[t][i];
  double fm = loss_of(c, r);
  for (int t = 0; t < c->n_tensors; t++) {
    memcpy(c->tensors[t].value, keep[t], (size_t)c->tensors[t].n * sizeof(float));
    hsrl_free(keep[t]);
    hsrl_free(delta[t]);
  }
  c->forward(c->ctx);
  hsrl_free(r);
  double num = (fp - fm) / 2.0;
  res->direction_numeric = num;
  res->direction_analytic = ana;
  double err = fabs(num - ana) / fmax(fmax(fabs(num), fabs(ana)), 1e-6);
  res->max_err = err;
  int ok = err <= tol;
  printf("  direction check: numeric %.8g analytic %.8g rel err %.3g -> %s\n", num, ana, err,
         ok ? "pass" : "FAIL");
  return ok;
}
