/* nn_linear.h: fully connected layer, out = inp w^T + b (torch.nn.Linear; method.md section 7).
 *
 * Weights are (out_dim, in_dim) row-major like torch, so reference tensors load as they are.
 * Backward ADDS into every non-NULL gradient buffer (the caller zeroes):
 *   dinp += dout w,  dw += dout^T inp,  db += column sums of dout. */
#ifndef NN_LINEAR_H
#define NN_LINEAR_H

#include <stdint.h>

void nn_linear_forward(float *out /* (n, out_dim) */, const float *inp /* (n, in_dim) */,
                       const float *w /* (out_dim, in_dim) */, const float *b /* (out_dim) or NULL */,
                       int64_t n, int64_t in_dim, int64_t out_dim);
void nn_linear_backward(float *dinp /* (n, in_dim) or NULL */, float *dw /* (out_dim, in_dim) or NULL */,
                        float *db /* (out_dim) or NULL */, const float *dout /* (n, out_dim) */,
                        const float *inp /* (n, in_dim) */, const float *w /* (out_dim, in_dim) */,
                        int64_t n, int64_t in_dim, int64_t out_dim);

#endif
