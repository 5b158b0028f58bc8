/* nn_activation.h: elementwise activations (method.md section 7 uses ReLU in the critic MLP).
 *
 * Forward may run in place (out == inp). Backward ADDS dout where out > 0 into dinp; it reads the
 * forward OUTPUT, so in-place forward loses nothing. */
#ifndef NN_ACTIVATION_H
#define NN_ACTIVATION_H

#include <stdint.h>

void nn_relu_forward(float *out /* (n) */, const float *inp /* (n) */, int64_t n);
void nn_relu_backward(float *dinp /* (n) */, const float *dout /* (n) */, const float *out /* (n) */,
                      int64_t n);

#endif
