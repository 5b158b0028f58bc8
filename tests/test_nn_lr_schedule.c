/* test_nn_lr_schedule.c: the learning-rate factors of nn_lr_schedule (train.lr_decay) at hand-worked
 * steps, their range and monotonicity, the names, and a horizon of one step. */
#include <math.h>

#include "common/nn/nn_lr_schedule.h"
#include "tests/test_harness.h"

static void test_hand_worked_factors(void) {
  nn_lr_schedule c = {NN_LR_CONSTANT, 0.1, 5}, l = {NN_LR_LINEAR, 0.2, 5}, k = {NN_LR_COSINE, 0.2, 5};
  for (int64_t t = 1; t <= 9; t++) TEST_ASSERT(nn_lr_factor(&c, t) == 1.0);
  /* u = (t - 1) / 4: 0, 1/4, 1/2, 3/4, 1, then 1 */
  const double lin[] = {1.0, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2};
  const double cosw[] = {1.0, 0.2 + 0.8 * (1.0 + cos(0.25 * 3.14159265358979323846)) / 2.0, 0.6,
                         0.2 + 0.8 * (1.0 + cos(0.75 * 3.14159265358979323846)) / 2.0, 0.2, 0.2, 0.2};
  for (int64_t t = 1; t <= 7; t++) {
    TEST_NEAR(nn_lr_factor(&l, t), lin[t - 1], 1e-15);
    TEST_NEAR(nn_lr_factor(&k, t), cosw[t - 1], 1e-15);
  }
}

static void test_monotone_and_in_range(void) {
  for (int d = NN_LR_LINEAR; d <= NN_LR_COSINE; d++)
    for (int fi = 0; fi <= 2; fi++) {
      nn_lr_schedule s = {(nn_lr_decay)d, 0.5 * fi, 1000};
      double prev = 2.0;
      for (int64_t t = 1; t <= 1200; t++) {
        double f = nn_lr_factor(&s, t);
        TEST_ASSERTF(f <= prev && f >= s.final_fraction - 1e-15 && f <= 1.0, "decay %d final %g step %lld: %g",
                     d, s.final_fraction, (long long)t, f);
        prev = f;
      }
      TEST_NEAR(nn_lr_factor(&s, 1000), s.final_fraction, 1e-15);
    }
}

static void test_names_and_short_horizon(void) {
  TEST_ASSERT(nn_lr_decay_parse("constant") == NN_LR_CONSTANT);
  TEST_ASSERT(nn_lr_decay_parse("linear") == NN_LR_LINEAR);
  TEST_ASSERT(nn_lr_decay_parse("cosine") == NN_LR_COSINE);
  TEST_ASSERT(nn_lr_decay_parse("step") == -1 && nn_lr_decay_parse("") == -1);
  nn_lr_schedule one = {NN_LR_LINEAR, 0.3, 1}, none = {NN_LR_COSINE, 0.3, 0};
  TEST_NEAR(nn_lr_factor(&one, 1), 0.3, 1e-15);
  TEST_NEAR(nn_lr_factor(&none, 4), 0.3, 1e-15);
}

int main(void) {
  TEST_RUN(test_hand_worked_factors);
  TEST_RUN(test_monotone_and_in_range);
  TEST_RUN(test_names_and_short_horizon);
  return test_summary();
}
