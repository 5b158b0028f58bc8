/* nn_embedding.h: table lookup, out[i] = table[ids[i]] (torch.nn.Embedding; method.md section 7).
 *
 * ids must be valid rows of the table (checked against 0 only; the caller owns the row count).
 * Backward scatter-adds dout rows into dtable, so repeated ids accumulate. */
#ifndef NN_EMBEDDING_H
#define NN_EMBEDDING_H

#include <stdint.h>

void nn_embedding_forward(float *out /* (n, d) */, const int32_t *ids /* (n) */,
                          const float *table /* (rows, d) */, int64_t n, int64_t d);
void nn_embedding_backward(float *dtable /* (rows, d) */, const float *dout /* (n, d) */,
                           const int32_t *ids /* (n) */, int64_t n, int64_t d);

#endif
