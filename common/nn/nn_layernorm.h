/* nn_layernorm.h: layer normalisation over the last dimension (torch.nn.LayerNorm; method.md s. 7).
 *
 * out = (inp - mean) * rstd * gamma + beta with the biased variance and eps = 1e-5 like torch.
 * Forward caches mean and rstd = 1/sqrt(var + eps) per row for the backward.
 * Backward ADDS into dinp, dgamma, dbeta (each may be NULL when not needed); _set WRITES dinp
 * (the result of adding into a zeroed buffer, without the zeroing pass). */
#ifndef NN_LAYERNORM_H
#define NN_LAYERNORM_H

#include <stdint.h>

#define NN_LAYERNORM_EPS 1e-5

void nn_layernorm_forward(float *out /* (n, d) */, float *mean /* (n) */, float *rstd /* (n) */,
                          const float *inp /* (n, d) */, const float *gamma /* (d) */,
                          const float *beta /* (d) */, int64_t n, int64_t d);
void nn_layernorm_backward(float *dinp /* (n, d) or NULL */, float *dgamma /* (d) or NULL */,
                           float *dbeta /* (d) or NULL */, const float *dout /* (n, d) */,
                           const float *inp /* (n, d) */, const float *mean /* (n) */,
                           const float *rstd /* (n) */, const float *gamma /* (d) */, int64_t n,
                           int64_t d);
/* dinp written (not NULL, not dout); dgamma and dbeta accumulated (both, or both NULL). */
void nn_layernorm_backward_set(float *dinp /* (n, d) */, float *dgamma /* (d) or NULL */,
                               float *dbeta /* (d) or NULL */, const float *dout /* (n, d) */,
                               const float *inp /* (n, d) */, const float *mean /* (n) */,
                               const float *rstd /* (n) */, const float *gamma /* (d) */, int64_t n,
                               int64_t d);

#endif
