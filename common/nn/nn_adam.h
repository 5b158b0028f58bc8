/* nn_adam.h: Adam and AdamW over one flat float32 buffer, exactly as torch.optim does it
 * (method.md section 8 "Adam ... L2 1e-5"; reference-hsrl.md section 0 "Adam").
 *
 * decoupled == 0 is torch.optim.Adam (1.13, single-tensor path, amsgrad off, maximize off), whose
 * weight_decay is COUPLED L2 (the reference's actor_decay / critic_decay mean this):
 *   g = grad + wd * param                              (only when wd != 0)
 *   m = b1 * m + (1 - b1) * g
 *   v = b2 * v + (1 - b2) * g * g
 *   param += (-lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
 * decoupled == 1 is torch.optim.AdamW: param *= 1 - lr * wd first, then the same update with
 * g = grad.
 *
 * Float32 element arithmetic in torch's operation order; the scalars (1 - b1, 1 - b2, lr / bias1,
 * sqrt(bias2), 1 - lr * wd) are formed in double from the decimal values the config was written
 * with and rounded to float once, as torch does with its Python-float hyper-parameters, so moments
 * and parameters agree with torch to about one float rounding per operation.
 *
 * params, m, v are updated in place; m and v start at zero; `step` counts calls, 1-based (the value
 * after torch's `state['step'] += 1`). Padding between tensors of an nn_params table stays zero
 * (zero grad and zero param give a zero update). The four arrays must not overlap. No allocation. */
#ifndef NN_ADAM_H
#define NN_ADAM_H

#include <stdint.h>

typedef struct nn_adam_config {
  float lr, beta1, beta2, eps, weight_decay;
  int decoupled; /* 0 Adam (coupled L2 like torch), 1 AdamW */
} nn_adam_config;

/* lr as given, betas 0.9 / 0.999, eps 1e-8, weight_decay 0, coupled (torch.optim.Adam defaults). */
nn_adam_config nn_adam_defaults(float lr);

void nn_adam_step(float *params /* (n) */, const float *grads /* (n) */, float *m /* (n) */,
                  float *v /* (n) */, int64_t n, int64_t step, const nn_adam_config *cfg);

#endif
