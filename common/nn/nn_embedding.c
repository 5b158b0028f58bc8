/* nn_embedding.c: see nn_embedding.h. */
#include "common/nn/nn_embedding.h"

#include <string.h>

#include "common/hsrl_check.h"

void nn_embedding_forward(float *out, const int32_t *ids, const float *table, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  for (int64_t i = 0; i < n; i++) {
    HSRL_CHECKF(ids[i] >= 0, "ids[%lld] = %d", (long long)i, (int)ids[i]);
    memcpy(out + i * d, table + (int64_t)ids[i] * d, (size_t)d * sizeof(float));
  }
}

void nn_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t n, int64_t d) {
  HSRL_CHECK(n >= 0 && d > 0);
  for (int64_t i = 0; i < n; i++) {
    HSRL_CHECKF(ids[i] >= 0, "ids[%lld] = %d", (long long)i, (int)ids[i]);
    float *row = dtable + (int64_t)ids[i] * d;
    const float *g = dout + i * d;
    for (int64_t j = 0; j < d; j++) row[j] += g[j];
  }
}
