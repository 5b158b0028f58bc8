/* nn_update.h: whole-buffer operations of a learner update (method.md section 8): global
 * gradient-norm clipping, the soft (Polyak) update of a target network, and a finiteness check.
 *
 * Each works on one flat buffer, normally a whole nn_params table (values or grads; the zero
 * padding between tensors changes nothing). No allocation. The build never uses -ffast-math, so
 * isfinite() here is a real test and nn_all_finite cannot be folded to a constant. */
#ifndef NN_UPDATE_H
#define NN_UPDATE_H

#include <stdint.h>

/* sum of x[i]^2 in double: products exact, added in NN_UPDATE_BLOCK interleaved lanes (element i
 * into lane i % NN_UPDATE_BLOCK, lanes summed in order, then the tail), so the vectoriser takes it
 * and one long dependent chain of additions does not set its speed. */
double nn_sum_squares(const float *x /* (n) */, int64_t n);

/* torch.nn.utils.clip_grad_norm_ (norm_type 2) over one buffer: returns the pre-clip L2 norm of
 * grads, accumulated in double (nn_sum_squares). When coef = max_norm / (norm + 1e-6) is below 1 every gradient
 * is multiplied by (float)coef, so the clipped norm is max_norm (to 1e-6 relative); otherwise
 * grads are left untouched. A non-finite norm leaves grads untouched and is returned for the
 * caller's NaN/Inf check (torch would multiply by NaN). max_norm > 0. */
double nn_clip_grad_norm(float *grads /* (n) */, int64_t n, float max_norm);

/* target = tau * source + (1 - tau) * target, elementwise in float as
 * target * (1 - tau) + source * tau, with 1 - tau formed in double (the reference's
 * `t.data * (1.0 - tau) + p.data * tau`). 0 <= tau <= 1; tau = 1 copies source. target and
 * source are the same buffer or do not overlap. */
void nn_soft_update(float *target /* (n) */, const float *source /* (n) */, int64_t n, float tau);

/* 1 if every x[i] is finite (no NaN, no +-Inf), else 0. n == 0 gives 1. */
int nn_all_finite(const float *x /* (n) */, int64_t n);

#endif
