/* nn_softmax.h: row softmax and log-softmax with a temperature (method.md sections 5 and 7).
 *
 * Rows of width v: y = softmax(x / temperature), computed max-subtracted so large logits do not
 * overflow; log_softmax likewise. temperature > 0. Backward ADDS into dinp and includes the 1/T:
 *   softmax:     dx += (1/T) * y * (dy - sum(dy * y))
 *   log_softmax: dx += (1/T) * (dy - exp(y) * sum(dy))      (y = log-probs)
 * out may alias inp in the forward functions. */
#ifndef NN_SOFTMAX_H
#define NN_SOFTMAX_H

#include <stdint.h>

void nn_softmax_forward(float *out /* (n, v) */, const float *inp /* (n, v) */, int64_t n, int64_t v,
                        float temperature);
void nn_softmax_backward(float *dinp /* (n, v) */, const float *dout /* (n, v) */,
                         const float *out /* (n, v) probs */, int64_t n, int64_t v, float temperature);
void nn_log_softmax_forward(float *out /* (n, v) */, const float *inp /* (n, v) */, int64_t n,
                            int64_t v, float temperature);
void nn_log_softmax_backward(float *dinp /* (n, v) */, const float *dout /* (n, v) */,
                             const float *out /* (n, v) log-probs */, int64_t n, int64_t v,
                             float temperature);

#endif
