/* nn_loss.h: scalar losses (method.md sections 5-7). Forward returns the loss as a double
 * (accumulated in double); backward ADDS scale * dloss/dinput into the gradient buffer.
 *
 * bce_with_logits: mean over n of max(x,0) - x*y + log1p(exp(-|x|)) (stable for any |x|);
 *                  backward adds scale * (sigmoid(x) - y) / n.
 * mse:             mean over n of (pred - target)^2; backward adds scale * 2 (pred - target) / n.
 * nll:             mean over rows of -logp[row, idx[row]]; backward adds -scale / n at the chosen
 *                  entries. 0 <= idx < v.
 * entropy:         H_row = -sum_j p_j log p_j of probs = softmax(logits) (p = 0 contributes 0);
 *                  forward writes H per row (if ent != NULL) and returns the mean over rows;
 *                  backward adds scale * d(mean H)/dlogits = -scale * p_j (log p_j + H_row) / n
 *                  (the gradient w.r.t. the LOGITS at temperature 1, computed from probs). */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include <stdint.h>

double nn_bce_with_logits_forward(const float *logits /* (n) */, const float *targets /* (n) */,
                                  int64_t n);
void nn_bce_with_logits_backward(float *dlogits /* (n) */, const float *logits /* (n) */,
                                 const float *targets /* (n) */, int64_t n, float scale);
double nn_mse_forward(const float *pred /* (n) */, const float *target /* (n) */, int64_t n);
void nn_mse_backward(float *dpred /* (n) */, const float *pred /* (n) */, const float *target /* (n) */,
                     int64_t n, float scale);
double nn_nll_forward(const float *logp /* (n, v) */, const int32_t *idx /* (n) */, int64_t n,
                      int64_t v);
void nn_nll_backward(float *dlogp /* (n, v) */, const int32_t *idx /* (n) */, int64_t n, int64_t v,
                     float scale);
double nn_entropy_forward(float *ent /* (n) or NULL */, const float *probs /* (n, v) */, int64_t n,
                          int64_t v);
void nn_entropy_backward(float *dlogits /* (n, v) */, const float *probs /* (n, v) */, int64_t n,
                         int64_t v, float scale);

#endif
