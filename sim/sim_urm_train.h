/* sim_urm_train.h: training the user-response model, its validation metrics, early stopping and
 * the model file (`<dataset>.sim-train.h5` / `.sim-all.h5`; method.md section 3,
 * architecture.md "Files a user sees").
 *
 * Training (sim_urm_train): Adam (torch's, coupled, no weight decay: the l2 term is in the loss)
 * with lr sim.lr on mini-batches of sim.batch records, the fitting records reshuffled every epoch
 * from hsrl_rng(seed, stream per epoch); dropout masks keyed by (seed, update step). After each
 * epoch, in inference mode (no dropout): the test split's pooled AUC, per-position AUC, macro AUC,
 * log-loss and ECE, and the early-stopping AUC (pooled) of the held-out records.
 *  - Fitting records: the train split (split_all = 0) or every record (split_all = 1: the
 *    evaluation simulator; its test metrics are then in-sample, and the log says so).
 *  - Early stopping: a share sim.val_fraction of the fitting records is held out and never
 *    trained on: each user's latest floor(val_fraction * n_u) records, like the test split holds
 *    each user's latest records (or, when that yields less than half the share, e.g. one record
 *    per user as in RL4RS, a uniform random share drawn with hsrl_rng); training stops after sim.patience epochs without a better held-out
 *    AUC (0: never) or at sim.max_epochs, and the model keeps the best epoch's parameters. With
 *    val_fraction = 0 nothing is held out and the test split's AUC is the criterion (the
 *    reference's protocol; then the test metrics of the chosen epoch are optimistically selected,
 *    which the log and the file record as early_stopping = "test").
 *  - A non-finite loss or gradient stops training with HSRL_E_INTERNAL naming the epoch and step;
 *    the model keeps the best parameters seen so far.
 *
 * Model file (HDF5 through io_h5, written atomically: temporary name + rename):
 *   /                 attrs (io_h5_stamp) hsrl_kind = "sim", hsrl_format_version,
 *                     hsrl_config_hash (the writer's whole effective config), hsrl_version;
 *                     sim_config (the effective [sim] section as INI text), seed, split
 *                     ("train" | "all"), data_file, data_name, data_n_items, data_item_dim,
 *                     data_n_users, data_user_dim, data_history_len, data_slate_size,
 *                     f, hidden, heads, dropout, l2, item_id_embedding, id_l2,
 *                     and after training: epochs, best_epoch, early_stopping ("held-out" | "test"),
 *                     best_test_auc, best_test_macro_auc, best_test_log_loss, best_test_ece,
 *                     best_val_auc, held_out ("latest-per-user" | "random"), n_fit, n_val,
 *                     n_test, test_in_sample (0/1), train_samples_per_s
 *   /sim/...          the parameters (nn_params_write; names in sim_urm.h)
 *   /metrics/...      one value per epoch: epoch, train_loss, val_auc, test_auc, test_macro_auc,
 *                     test_log_loss, test_ece, seconds; test_position_auc (epochs, K)
 * sim_urm_load rebuilds the model from the file's attributes and parameters for a dataset whose
 * sizes (n_items, item_dim, n_users, user_dim, history_len, slate_size) equal the file's; a
 * difference is HSRL_E_INPUT naming both files and the size. */
#ifndef SIM_URM_TRAIN_H
#define SIM_URM_TRAIN_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "sim/sim_data.h"
#include "sim/sim_metrics.h"
#include "sim/sim_urm.h"

#define SIM_URM_FORMAT_VERSION 1
#define SIM_URM_ECE_BINS 15

typedef struct sim_urm_train_options {
  int split_all;          /* 1: fit every record (the evaluation simulator) */
  int64_t max_epochs;     /* sim.max_epochs */
  int64_t patience;       /* sim.patience (0: no early stop) */
  int64_t batch;          /* sim.batch */
  double lr;              /* sim.lr */
  double val_fraction;    /* sim.val_fraction */
  uint64_t seed;          /* run.seed */
  int ece_bins;           /* SIM_URM_ECE_BINS */
  int verbose;            /* progress display and one line per epoch on stderr */
} sim_urm_train_options;

typedef struct sim_urm_epoch {
  int64_t epoch;            /* 1-based */
  double train_loss;        /* mean of the updates' losses (BCE + l2 term) */
  double train_bce;         /* mean of their BCE parts */
  double seconds;           /* wall time of the epoch's updates (no evaluation) */
  double samples_per_s;     /* fitting records per second of update time */
  double val_auc;           /* the early-stopping AUC (pooled) */
  sim_metrics_report test;  /* on the test split */
} sim_urm_epoch;

typedef struct sim_urm_train_log {
  int64_t max_epochs, n_epochs, best_epoch; /* best_epoch 1-based, 0 before any epoch */
  int64_t slate_size;                       /* K */
  int split_all;
  int stop_on_test;                         /* 1: the criterion was the test split's AUC */
  int stopped_early;
  int held_out_random;                      /* 1: the held-out records are a random share */
  int64_t n_fit, n_val, n_test;             /* records fitted, held out, tested */
  double seconds, samples_per_s;            /* all updates */
  sim_urm_epoch *epochs;                    /* (max_epochs) */
  double *test_position_auc;                /* (max_epochs, K) */
} sim_urm_train_log;

/* Options from the effective settings ([sim] section and run.seed). */
sim_urm_train_options sim_urm_train_options_make(const hsrl_settings *s, int split_all);

/* Trains m on d (the dataset m was built for). log is filled (sim_urm_train_log_free it, also
 * after an error). */
hsrl_status sim_urm_train(sim_urm *m, const sim_dataset *d, const sim_urm_train_options *opt,
                          sim_urm_train_log *log);
void sim_urm_train_log_free(sim_urm_train_log *log); /* NULL ok; leaves it zeroed */

/* The best epoch's record (NULL before any epoch). */
const sim_urm_epoch *sim_urm_train_log_best(const sim_urm_train_log *log);

/* Writes the model file (log may be NULL: no metrics). s is the effective config (its [sim]
 * section and hash are stored); data_path names the prepared-data file the model was trained on. */
hsrl_status sim_urm_save(const sim_urm *m, const char *path, const sim_urm_train_log *log,
                         const hsrl_settings *s, const char *data_path, int split_all);

/* Reads a model file for dataset d (borrowed by the model, must outlive it). */
hsrl_status sim_urm_load(sim_urm **out, const char *path, const sim_dataset *d);

/* `hsrl sim train --data F --split train|all --out F [--epochs E] [--config C]
 *  [--set section.key=value]... [--no-item-id] [--quiet]`; argv[0] is the command's name (a
 * following "train" word is skipped). Returns the exit status (0 ok, 2 usage/input, 1 internal). */
int sim_train_command(int argc, char **argv);

#endif
