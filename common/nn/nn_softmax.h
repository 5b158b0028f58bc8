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
#include <string.h>

void nn_softmax_forward(float *out /* (n, v) */, const float *inp /* (n, v) */, int64_t n, int64_t v,
                        float temperature);
void nn_softmax_backward(float *dinp /* (n, v) */, const float *dout /* (n, v) */,
                         const float *out /* (n, v) probs */, int64_t n, int64_t v, float temperature);
void nn_log_softmax_forward(float *out /* (n, v) */, const float *inp /* (n, v) */, int64_t n,
                            int64_t v, float temperature);
void nn_log_softmax_backward(float *dinp /* (n, v) */, const float *dout /* (n, v) */,
                             const float *out /* (n, v) log-probs */, int64_t n, int64_t v,
                             float temperature);

/* exp(x) for x <= 0 in plain float arithmetic that GCC vectorises inside a loop (libm's exp is a
 * call per element): range reduction x = n ln2 + r, |r| <= ln2/2, Cephes' polynomial for exp(r)
 * evaluated by Estrin's scheme, 2^n built in the exponent field. Relative error about 1 ulp;
 * exp(0) = 1 exactly; x < -87 (and -inf) gives exactly 0 (the true value is below 1.7e-38);
 * NaN gives NaN. Positive x is outside the contract (callers subtract a row maximum). */
static inline float nn_exp_nonpos(float x) {
  uint32_t ux, under, nan_mask;
  memcpy(&ux, &x, sizeof ux);
  under = 0u - (uint32_t)(x < -87.0f);  /* all ones: flush to 0 */
  nan_mask = 0u - (uint32_t)(x != x);    /* all ones for NaN: keep 2^n finite, y carries NaN */
  {
    const float m87 = -87.0f;
    uint32_t uc;
    memcpy(&uc, &m87, sizeof uc);
    ux = (ux & ~under) | (uc & under); /* clamp: keeps 2^n normal */
    memcpy(&x, &ux, sizeof x);
  }
  const float t = x * 1.44269504088896341f;
  float fn = (t + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
  const float r1 = x - fn * 0.693359375f;
  const float r = r1 - fn * -2.12194440e-4f;
  const float r2 = r * r, r4 = r2 * r2;
  const float p01 = 1.9875691500e-4f * r + 1.3981999507e-3f;
  const float p23 = 8.3334519073e-3f * r + 4.1665795894e-2f;
  const float p45 = 1.6666665459e-1f * r + 5.0000001201e-1f;
  const float y = ((p01 * r4 + p23 * r2) + p45) * r2 + r + 1.0f;
  uint32_t ufn;
  memcpy(&ufn, &fn, sizeof ufn);
  ufn &= ~nan_mask; /* NaN -> +0.0f: the conversion below stays defined */
  memcpy(&fn, &ufn, sizeof fn);
  uint32_t e = (uint32_t)((int32_t)fn + 127) << 23;
  float two_n, res;
  memcpy(&two_n, &e, sizeof two_n);
  res = y * two_n;
  uint32_t ures;
  memcpy(&ures, &res, sizeof ures);
  ures &= ~under;
  memcpy(&res, &ures, sizeof res);
  return res;
}

#endif
