/* test_sim_metrics.c: the simulator's validation metrics (sim/sim_metrics.h; method.md section 3)
 * against hand-computed values (AUC with ties at 1/2, ECE on tiny examples, log-loss), and the
 * sorting AUC against a brute-force count over all (positive, negative) pairs on tie-heavy data. */
#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "sim/sim_metrics.h"
#include "tests/test_harness.h"

static void test_auc_hand_computed(void) {
  /* positives {0.35, 0.8}, negatives {0.1, 0.4}: 3 of 4 pairs ordered -> 0.75 */
  const float s1[4] = {0.1f, 0.4f, 0.35f, 0.8f};
  const uint8_t y1[4] = {0, 0, 1, 1};
  TEST_NEAR(sim_metrics_auc(s1, y1, 4), 0.75, 1e-12);
  /* ties: positives {0.5, 0.5}, negatives {0.5, 0.2}: each positive beats 0.2 (1) and ties 0.5
   * (1/2) -> (1.5 + 1.5) / 4 = 0.75; by average ranks: ranks 2,3,4 -> 3 each, U = 6 - 3 = 3 */
  const float s2[4] = {0.5f, 0.5f, 0.5f, 0.2f};
  const uint8_t y2[4] = {1, 0, 1, 0};
  TEST_NEAR(sim_metrics_auc(s2, y2, 4), 0.75, 1e-12);
  /* every score tied: 1/2 */
  const float s3[5] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
  const uint8_t y3[5] = {1, 0, 0, 1, 0};
  TEST_NEAR(sim_metrics_auc(s3, y3, 5), 0.5, 1e-12);
  /* perfectly inverted: 0 */
  const float s4[4] = {0.9f, 0.8f, 0.2f, 0.1f};
  const uint8_t y4[4] = {0, 0, 1, 1};
  TEST_NEAR(sim_metrics_auc(s4, y4, 4), 0.0, 1e-12);
  /* one class only: undefined */
  const uint8_t y5[4] = {1, 1, 1, 1};
  TEST_ASSERT(isnan(sim_metrics_auc(s4, y5, 4)));
  TEST_ASSERT(isnan(sim_metrics_auc(s4, y5, 0)));
}

/* O(n^2) definition: pairs won + 1/2 per tie, over all (positive, negative) pairs. */
static double brute_auc(const float *s, const uint8_t *y, int64_t n) {
  double won = 0.0, pairs = 0.0;
  for (int64_t i = 0; i < n; i++) {
    if (!y[i]) continue;
    for (int64_t j = 0; j < n; j++) {
      if (y[j]) continue;
      pairs += 1.0;
      won += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  return won / pairs;
}

static void test_auc_matches_pair_count_with_ties(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 5, 1);
  enum { N = 700 };
  float s[N];
  uint8_t y[N];
  for (int trial = 0; trial < 5; trial++) {
    int levels = trial == 0 ? 2 : 3 + 7 * trial; /* few distinct scores: many ties */
    for (int i = 0; i < N; i++) {
      int lv = (int)hsrl_rng_below(&r, (uint64_t)levels);
      s[i] = (float)lv / (float)levels;
      y[i] = hsrl_rng_uniform(&r) < 0.2f + 0.6f * s[i]; /* informative */
    }
    double a = sim_metrics_auc(s, y, N), b = brute_auc(s, y, N);
    TEST_NEAR(a, b, 1e-12);
    TEST_ASSERTF(a > 0.55, "trial %d: informative scores gave AUC %g", trial, a);
  }
}

static void test_per_position_and_macro(void) {
  /* (n = 4, K = 3); column 0: AUC 1; column 1: AUC 0.25 (hand count below); column 2: one class */
  const float p[12] = {0.9f, 0.2f, 0.5f,  /* row 0 */
                       0.1f, 0.6f, 0.5f,  /* row 1 */
                       0.8f, 0.3f, 0.5f,  /* row 2 */
                       0.3f, 0.4f, 0.5f}; /* row 3 */
  const uint8_t y[12] = {1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0};
  /* column 1: positives {0.2, 0.4}, negatives {0.6, 0.3}: 0.4 > 0.3 only -> 1/4 */
  double per[3];
  sim_metrics_report rep;
  sim_metrics_evaluate(&rep, per, p, y, 4, 3, 10);
  TEST_NEAR(per[0], 1.0, 1e-12);
  TEST_NEAR(per[1], 0.25, 1e-12);
  TEST_ASSERT(isnan(per[2]));
  TEST_ASSERT(rep.n_positions == 2);
  TEST_NEAR(rep.macro_auc, 0.625, 1e-12);
  TEST_NEAR(rep.auc, sim_metrics_auc(p, y, 12), 1e-15);
  TEST_NEAR(rep.click_rate, 4.0 / 12.0, 1e-12);
  double mp = 0.0;
  for (int i = 0; i < 12; i++) mp += (double)p[i];
  TEST_NEAR(rep.mean_prob, mp / 12.0, 1e-12);
}

static void test_log_loss(void) {
  const float p[2] = {0.9f, 0.2f};
  const uint8_t y[2] = {1, 0};
  TEST_NEAR(sim_metrics_log_loss(p, y, 2), -(log(0.9) + log(0.8)) / 2.0, 1e-7);
  /* a certain miss is clipped, not infinite */
  const float q[1] = {0.0f};
  const uint8_t z[1] = {1};
  TEST_NEAR(sim_metrics_log_loss(q, z, 1), -log(SIM_METRICS_LOG_EPS), 1e-6);
}

static void test_ece_hand_computed(void) {
  const float p[5] = {0.12f, 0.18f, 0.91f, 0.99f, 1.0f};
  const uint8_t y[5] = {0, 1, 1, 0, 1};
  /* 10 bins: bin 1 {0.12, 0.18}: |0.15 - 1/2| * 2/5 = 0.14; bin 9 {0.91, 0.99, 1.0} (1.0 goes to
   * the last bin): |0.96667 - 2/3| * 3/5 = 0.18; ECE = 0.32 */
  TEST_NEAR(sim_metrics_ece(p, y, 5, 10), 0.32, 1e-6);
  /* 15 bins: 0.12 -> bin 1, 0.18 -> 2, 0.91 -> 13, 0.99 and 1.0 -> 14:
   * 0.12 * 0.2 + 0.82 * 0.2 + 0.09 * 0.2 + |0.995 - 0.5| * 0.4 = 0.404 */
  TEST_NEAR(sim_metrics_ece(p, y, 5, 15), 0.404, 1e-6);
  /* perfectly calibrated bins give 0 */
  const float c[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  const uint8_t cy[4] = {0, 1, 0, 0};
  TEST_NEAR(sim_metrics_ece(c, cy, 4, 10), 0.0, 1e-9);
}

int main(void) {
  TEST_RUN(test_auc_hand_computed);
  TEST_RUN(test_auc_matches_pair_count_with_ties);
  TEST_RUN(test_per_position_and_macro);
  TEST_RUN(test_log_loss);
  TEST_RUN(test_ece_hand_computed);
  return test_summary();
}
