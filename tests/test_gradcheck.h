/* test_gradcheck.h: finite-difference checks of backward passes (style.md, "Tests").
 *
 * The scalar under test is loss = <R, out> for a fixed random R (never sum(out): for LayerNorm
 * and softmax its gradient is identically zero, so a broken backward would pass), accumulated in
 * double. A case describes the layer through two callbacks over caller-owned buffers:
 *   forward(ctx)  computes out from the current values of every tensor;
 *   backward(ctx) reads dout and ADDS into every tensor's grad (the checker zeroes them).
 * gradcheck_run:
 *   1. element-wise central differences, eps 1e-2 (float32), on every element or on up to
 *      max_probes random elements per tensor; error = |num - ana| / max(|num|, |ana|, floor);
 *   2. backward called twice must double the gradients;
 * gradcheck_direction: the random-direction check for whole models,
 *   g . delta against (f(x + delta) - f(x - delta)) / 2 with every tensor moved at once. */
#ifndef TEST_GRADCHECK_H
#define TEST_GRADCHECK_H

#include <stdint.h>

#define GRADCHECK_MAX_TENSORS 32

typedef struct gradcheck_tensor {
  const char *name;
  float *value;
  float *grad;
  int64_t n;
} gradcheck_tensor;

typedef struct gradcheck_case {
  void *ctx;
  void (*forward)(void *ctx);
  void (*backward)(void *ctx);
  float *out;
  float *dout;
  int64_t n_out;
  gradcheck_tensor tensors[GRADCHECK_MAX_TENSORS];
  int n_tensors;
  int64_t max_probes; /* per tensor; 0 = every element */
  double eps;         /* 0 = 1e-2 */
  double floor;       /* 0 = 1e-2: gradients smaller than this are compared absolutely */
} gradcheck_case;

typedef struct gradcheck_result {
  double max_err;         /* worst element error (central differences) */
  const char *worst_name; /* tensor holding it */
  int64_t worst_index;
  double worst_numeric, worst_analytic;
  double doubling_err;    /* max |g2 - 2 g1| / max(|2 g1|, floor) */
  double direction_numeric, direction_analytic; /* gradcheck_direction only */
} gradcheck_result;

/* Adds tensor (value, grad, n) under name; returns its index. */
int gradcheck_add(gradcheck_case *c, const char *name, float *value, float *grad, int64_t n);

/* Returns 1 when max_err <= tol and the doubling check holds (err <= 1e-4), 0 otherwise;
 * res (may be NULL) gets the figures. Prints a line describing the worst element. */
int gradcheck_run(gradcheck_case *c, uint64_t seed, double tol, gradcheck_result *res);

/* Random-direction check: delta = h * N(0,1) in every tensor. Returns 1 when
 * |num - ana| <= tol * max(|num|, |ana|, 1e-6). */
int gradcheck_direction(gradcheck_case *c, uint64_t seed, double h, double tol,
                        gradcheck_result *res);

#endif
