/* nn_lr_schedule.c: see nn_lr_schedule.h. */
#include "common/nn/nn_lr_schedule.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_check.h"

#define PI 3.14159265358979323846

int nn_lr_decay_parse(const char *name) {
  if (!strcmp(name, "constant")) return NN_LR_CONSTANT;
  if (!strcmp(name, "linear")) return NN_LR_LINEAR;
  if (!strcmp(name, "cosine")) return NN_LR_COSINE;
  return -1;
}

double nn_lr_factor(const nn_lr_schedule *s, int64_t t) {
  HSRL_CHECKF(t >= 1, "learning-rate schedule at step %lld (steps are 1-based)", (long long)t);
  if (s->decay == NN_LR_CONSTANT) return 1.0;
  const double f = s->final_fraction;
  const double u = s->horizon <= 1 ? 1.0 : fmin(1.0, (double)(t - 1) / (double)(s->horizon - 1));
  if (s->decay == NN_LR_LINEAR) return 1.0 - (1.0 - f) * u;
  return f + (1.0 - f) * 0.5 * (1.0 + cos(PI * u));
}
