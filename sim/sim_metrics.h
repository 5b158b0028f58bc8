/* sim_metrics.h: how well a click model predicts logged clicks (method.md section 3, "Report
 * pooled AUC, per-position AUC, log-loss and calibration").
 *
 * Scores/probabilities are float32, labels uint8 in {0, 1} (the records' click labels); every
 * sum is accumulated in double.
 *  - AUC: the Mann-Whitney statistic, P(score of a random positive > score of a random negative)
 *    with ties counted 1/2 -- the same number as ranking by score with tied scores given their
 *    average rank (sklearn's roc_auc_score). NaN when either class is empty. Sorting costs
 *    O(n log n) and one O(n) scratch allocation per call (metrics run once per epoch, never in a
 *    hot loop). A NaN score is a bug (check failure).
 *  - per-position AUC: the AUC of column k of (n, K) arrays; macro AUC = the mean of the defined
 *    (non-NaN) per-position AUCs, what the reference reports (sklearn's multilabel roc_auc_score
 *    on the (n, K) arrays, reference-hsrl.md section 2.1).
 *  - log-loss: mean of -[y log p + (1-y) log(1-p)] with p clipped to [1e-7, 1 - 1e-7].
 *  - ECE (expected calibration error): n_bins equal-width bins of [0, 1] (p = 1 goes into the
 *    last bin); ECE = sum over bins of (n_bin / n) |mean p in the bin - click rate in the bin|. */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include <stdint.h>

#define SIM_METRICS_LOG_EPS 1e-7

double sim_metrics_auc(const float *scores /* (n) */, const uint8_t *labels /* (n) */, int64_t n);
/* AUC of the n elements scores[i * stride], labels[i * stride] (a column of a row-major array). */
double sim_metrics_auc_strided(const float *scores, const uint8_t *labels, int64_t n,
                               int64_t stride);
double sim_metrics_log_loss(const float *probs /* (n) */, const uint8_t *labels /* (n) */,
                            int64_t n);
double sim_metrics_ece(const float *probs /* (n) */, const uint8_t *labels /* (n) */, int64_t n,
                       int n_bins);

typedef struct sim_metrics_report {
  int64_t n_rows, slate_size; /* n, K */
  double auc;                 /* pooled over all n*K (row, position) pairs */
  double macro_auc;           /* mean of the defined per-position AUCs (NaN if none) */
  int64_t n_positions;        /* positions whose AUC is defined */
  double log_loss, ece;       /* pooled */
  int ece_bins;
  double click_rate, mean_prob;
} sim_metrics_report;

/* Every metric of (n, K) probabilities against (n, K) labels; per_position_auc (K) may be NULL. */
void sim_metrics_evaluate(sim_metrics_report *r, double *per_position_auc /* (K) or NULL */,
                          const float *probs /* (n, K) */, const uint8_t *labels /* (n, K) */,
                          int64_t n, int64_t K, int ece_bins);

#endif
