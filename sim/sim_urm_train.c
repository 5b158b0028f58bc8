/* sim_urm_train.c: training loop, validation, early stopping and the model file of the
 * user-response model (see sim_urm_train.h; method.md section 3).
 *
 * Memory: everything an epoch needs (the work buffer for sim.batch rows, the gathered batch,
 * the evaluation arrays, a copy of the best parameters) is allocated before the first update;
 * the update loop allocates nothing.
 *
 * Measured on ML-1M users 1-2999 (36,734 train / 10,692 test records; macro AUC = mean over the
 * 10 slate positions, as the reference reports it): the reference protocol (train split, 2 epochs,
 * lr 1e-3, l2 3e-4, f 16, val_fraction 0) gives 0.646-0.648 over 4 seeds with features only
 * (the authors' model: 0.6435) and 0.748 with the id embedding; the defaults (early stopping,
 * patience 3) give 0.650 (features only, best epoch 8 of 11) and 0.747 (id embedding, best
 * held-out epoch 19 of 20; the test AUC itself peaked at 0.752 in epoch 7). */
#include "sim/sim_urm_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_config.h"
#include "common/hsrl_progress.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_adam.h"
#include "common/nn/nn_params.h"
#include "common/nn/nn_update.h"
#include "sim/sim_holdout.h"

/* hsrl_rng stream ids of the trainer (the model's init uses its own). */
enum {
  TRAIN_STREAM_VAL = 0x53540001,     /* which fitting records are held out */
  TRAIN_STREAM_SHUFFLE = 0x53550000, /* + epoch: the epoch's order */
  TRAIN_PURPOSE_DROPOUT = 0x5344     /* hsrl_rng_derive purpose of the dropout keys */
};

sim_urm_train_options sim_urm_train_options_make(const hsrl_settings *s, int split_all) {
  sim_urm_train_options o;
  memset(&o, 0, sizeof o);
  o.split_all = split_all != 0;
  o.max_epochs = s->sim.max_epochs;
  o.patience = s->sim.patience;
  o.batch = s->sim.batch;
  o.lr = s->sim.lr;
  o.val_fraction = s->sim.val_fraction;
  o.seed = (uint64_t)s->run.seed;
  o.ece_bins = SIM_URM_ECE_BINS;
  o.verbose = 1;
  return o;
}

void sim_urm_train_log_free(sim_urm_train_log *log) {
  if (!log) return;
  hsrl_free(log->epochs);
  hsrl_free(log->test_position_auc);
  memset(log, 0, sizeof *log);
}

const sim_urm_epoch *sim_urm_train_log_best(const sim_urm_train_log *log) {
  if (!log || log->best_epoch < 1 || log->best_epoch > log->n_epochs) return NULL;
  return &log->epochs[log->best_epoch - 1];
}

/* The batch gathered from the dataset's records. */
typedef struct train_batch {
  int32_t *user;    /* (B) */
  int32_t *hist;    /* (B, H) */
  int32_t *slate;   /* (B, K) */
  float *target;    /* (B, K) */
} train_batch;

static void train_gather(train_batch *tb, const sim_dataset *d, const int64_t *idx, int64_t B) {
  const int64_t H = d->history_len, K = d->slate_size;
  for (int64_t b = 0; b < B; b++) {
    int64_t r = idx[b];
    tb->user[b] = d->rec_user[r];
    memcpy(tb->hist + b * H, d->rec_history + r * H, (size_t)H * sizeof(int32_t));
    memcpy(tb->slate + b * K, d->rec_slate + r * K, (size_t)K * sizeof(int32_t));
    for (int64_t k = 0; k < K; k++) tb->target[b * K + k] = d->rec_clicks[r * K + k] ? 1.0f : 0.0f;
  }
}

/* Inference-mode probabilities of records idx[0..n) into probs (n, K), their labels into labels. */
static void train_predict(const sim_urm *m, sim_urm_work *w, train_batch *tb, const sim_dataset *d,
                          const int64_t *idx, int64_t n, int64_t max_b, float *probs,
                          uint8_t *labels) {
  const int64_t K = d->slate_size;
  for (int64_t s = 0; s < n; s += max_b) {
    int64_t B = n - s < max_b ? n - s : max_b;
    train_gather(tb, d, idx + s, B);
    sim_urm_click_probs(m, w, B, tb->user, tb->hist, tb->slate, probs + s * K);
    for (int64_t i = 0; i < B; i++)
      memcpy(labels + (s + i) * K, d->rec_clicks + idx[s + i] * K, (size_t)K);
  }
}

static void train_epoch_line(const sim_urm_train_log *log, const sim_urm_epoch *e, int best) {
  fprintf(stderr,
          "sim train: epoch %lld/%lld  loss %.4f  %s auc %.4f macro %.4f logloss %.4f ece %.4f",
          (long long)e->epoch, (long long)log->max_epochs, e->train_loss,
          log->split_all ? "test(in-sample)" : "test", e->test.auc, e->test.macro_auc,
          e->test.log_loss, e->test.ece);
  if (!log->stop_on_test) fprintf(stderr, "  held-out auc %.4f", e->val_auc);
  fprintf(stderr, "  %.0f samples/s%s\n", e->samples_per_s, best ? "  *best" : "");
}

hsrl_status sim_urm_train(sim_urm *m, const sim_dataset *d, const sim_urm_train_options *opt,
                          sim_urm_train_log *log) {
  hsrl_status st = HSRL_OK;
  memset(log, 0, sizeof *log);
  HSRL_CHECK(opt->max_epochs >= 1 && opt->batch >= 1 && opt->patience >= 0);
  HSRL_CHECK(opt->val_fraction >= 0.0 && opt->val_fraction < 1.0);
  HSRL_CHECK(sim_urm_data(m) == d);
  const int64_t H = d->history_len, K = d->slate_size, Bm = opt->batch;
  nn_params *p = sim_urm_params(m);
  const int64_t n_par = nn_params_size(p);

  /* fitting and held-out records */
  int64_t n_base = opt->split_all ? d->n_records : d->n_train;
  int64_t *base = hsrl_malloc((size_t)(n_base > 0 ? n_base : 1) * sizeof(int64_t));
  for (int64_t i = 0; i < n_base; i++) base[i] = opt->split_all ? i : d->train_idx[i];
  int held_random = 0;
  int64_t n_val = sim_holdout_latest(d, base, n_base, opt->val_fraction, opt->seed, TRAIN_STREAM_VAL,
                                     &held_random);
  const int64_t *val_idx = base, *fit_idx = base + n_val;
  const int64_t n_fit = n_base - n_val, n_test = d->n_test;

  log->max_epochs = opt->max_epochs;
  log->slate_size = K;
  log->split_all = opt->split_all;
  log->stop_on_test = n_val == 0;
  log->held_out_random = held_random;
  log->n_fit = n_fit;
  log->n_val = n_val;
  log->n_test = n_test;
  log->epochs = hsrl_calloc((size_t)opt->max_epochs, sizeof *log->epochs);
  log->test_position_auc = hsrl_calloc((size_t)(opt->max_epochs * K), sizeof(double));

  sim_urm_work *w = sim_urm_work_init(m, Bm, 1);
  train_batch tb;
  tb.user = hsrl_malloc((size_t)Bm * sizeof(int32_t));
  tb.hist = hsrl_malloc((size_t)(Bm * H) * sizeof(int32_t));
  tb.slate = hsrl_malloc((size_t)(Bm * K) * sizeof(int32_t));
  tb.target = hsrl_malloc((size_t)(Bm * K) * sizeof(float));
  int64_t n_eval = n_test > n_val ? n_test : n_val;
  float *probs = hsrl_malloc((size_t)((n_eval > 0 ? n_eval : 1) * K) * sizeof(float));
  uint8_t *labels = hsrl_malloc((size_t)((n_eval > 0 ? n_eval : 1) * K));
  int64_t *order = hsrl_malloc((size_t)(n_fit > 0 ? n_fit : 1) * sizeof(int64_t));
  int64_t *perm = hsrl_malloc((size_t)(n_fit > 0 ? n_fit : 1) * sizeof(int64_t));
  float *best_values = hsrl_alloc_aligned((size_t)n_par * sizeof(float));
  memcpy(best_values, nn_params_values(p), (size_t)n_par * sizeof(float));

  if (n_fit < 1 || n_test < 1) {
    st = hsrl_err(HSRL_E_INPUT, d->name, 0, "records",
                  "nothing to train on or to test (%lld fitting, %lld test records)",
                  (long long)n_fit, (long long)n_test);
    goto done;
  }
  if (opt->verbose)
    fprintf(stderr,
            "sim train: %s: fitting %lld records (%s split), testing %lld; early stopping on %s "
            "(patience %lld, at most %lld epochs); %lld parameters\n",
            d->name, (long long)n_fit, opt->split_all ? "all" : "train", (long long)n_test,
            n_val ? "held-out records of the fitting split" : "the TEST split's AUC",
            (long long)opt->patience, (long long)opt->max_epochs,
            (long long)nn_params_n_elements(p));
  if (opt->verbose && n_val)
    fprintf(stderr, "sim train: %lld records (%.1f%%) held out for early stopping: %s\n",
            (long long)n_val, 100.0 * (double)n_val / (double)n_base,
            held_random ? "a uniform random share" : "each user's latest records");

  nn_adam_config adam = nn_adam_defaults((float)opt->lr);
  const uint64_t dropout_seed = hsrl_rng_derive(opt->seed, TRAIN_PURPOSE_DROPOUT);
  double best_auc = -1.0, total_seconds = 0.0;
  int64_t since_best = 0, step = 0, samples = 0;
  for (int64_t e = 1; e <= opt->max_epochs; e++) {
    hsrl_rng r;
    hsrl_rng_init(&r, opt->seed, TRAIN_STREAM_SHUFFLE + (uint64_t)e);
    hsrl_rng_permutation(&r, perm, n_fit);
    for (int64_t i = 0; i < n_fit; i++) order[i] = fit_idx[perm[i]];
    hsrl_progress prog;
    memset(&prog, 0, sizeof prog);
    char label[48], note[96] = "";
    snprintf(label, sizeof label, "sim epoch %lld", (long long)e);
    if (opt->verbose) hsrl_progress_init(&prog, label, n_fit);
    double loss_sum = 0.0, bce_sum = 0.0;
    int64_t n_steps = 0;
    double t0 = hsrl_time_now();
    for (int64_t s = 0; s < n_fit; s += Bm) {
      int64_t B = n_fit - s < Bm ? n_fit - s : Bm;
      train_gather(&tb, d, order + s, B);
      nn_params_zero_grads(p);
      double loss = sim_urm_forward(m, w, B, tb.user, tb.hist, tb.slate, tb.target, 1,
                                    hsrl_rng_derive(dropout_seed, (uint64_t)step));
      sim_urm_backward(m, w, 1.0f);
      if (!isfinite(loss) || !nn_all_finite(nn_params_grads(p), n_par)) {
        st = hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL,
                      "sim train: %s at epoch %lld, update %lld (loss %g); keeping the best "
                      "epoch's parameters",
                      isfinite(loss) ? "non-finite gradient" : "non-finite loss", (long long)e,
                      (long long)step, loss);
        if (opt->verbose) hsrl_progress_finish(&prog, "stopped");
        goto done;
      }
      nn_params_adam_update(p, &adam);
      loss_sum += loss;
      bce_sum += sim_urm_work_bce(w);
      n_steps++;
      step++;
      if (opt->verbose) {
        snprintf(note, sizeof note, "loss %.4f", loss_sum / (double)n_steps);
        hsrl_progress_update(&prog, s + B, note);
      }
    }
    double secs = hsrl_time_now() - t0;
    total_seconds += secs;
    samples += n_fit;
    if (opt->verbose) hsrl_progress_finish(&prog, note);

    sim_urm_epoch *ep = &log->epochs[e - 1];
    ep->epoch = e;
    ep->train_loss = loss_sum / (double)n_steps;
    ep->train_bce = bce_sum / (double)n_steps;
    ep->seconds = secs;
    ep->samples_per_s = secs > 0.0 ? (double)n_fit / secs : 0.0;
    train_predict(m, w, &tb, d, d->test_idx, n_test, Bm, probs, labels);
    sim_metrics_evaluate(&ep->test, log->test_position_auc + (e - 1) * K, probs, labels, n_test, K,
                         opt->ece_bins);
    if (n_val) {
      train_predict(m, w, &tb, d, val_idx, n_val, Bm, probs, labels);
      ep->val_auc = sim_metrics_auc(probs, labels, n_val * K);
    } else {
      ep->val_auc = ep->test.auc;
    }
    log->n_epochs = e;
    double crit = isnan(ep->val_auc) ? 0.0 : ep->val_auc;
    int better = crit > best_auc;
    if (better) {
      best_auc = crit;
      log->best_epoch = e;
      since_best = 0;
      memcpy(best_values, nn_params_values(p), (size_t)n_par * sizeof(float));
    } else {
      since_best++;
    }
    if (opt->verbose) train_epoch_line(log, ep, better);
    if (opt->patience > 0 && since_best >= opt->patience && e < opt->max_epochs) {
      log->stopped_early = 1;
      if (opt->verbose)
        fprintf(stderr, "sim train: no better %s AUC for %lld epochs: stopping; best epoch %lld\n",
                n_val ? "held-out" : "test", (long long)opt->patience, (long long)log->best_epoch);
      break;
    }
  }
  log->seconds = total_seconds;
  log->samples_per_s = total_seconds > 0.0 ? (double)samples / total_seconds : 0.0;

done:
  if (log->best_epoch > 0) /* keep the best epoch's parameters, also after a failure */
    memcpy(nn_params_values(p), best_values, (size_t)n_par * sizeof(float));
  hsrl_free(best_values);
  hsrl_free(perm);
  hsrl_free(order);
  hsrl_free(labels);
  hsrl_free(probs);
  hsrl_free(tb.user);
  hsrl_free(tb.hist);
  hsrl_free(tb.slate);
  hsrl_free(tb.target);
  sim_urm_work_free(w);
  hsrl_free(base);
  return st;
}

/* ---------------------------------------------------------------- the model file */

/* The [sim] section of the effective config as INI text (size then place, like
 * hsrl_config_write). */
static size_t train_sim_config_text(const hsrl_settings *s, char *buf, size_t cap) {
  const hsrl_config_schema *schema = hsrl_settings_schema();
  size_t len = 0;
  int n = snprintf(buf, cap, "[sim]\n");
  len += (size_t)n;
  for (int64_t i = 0; i < schema->n_fields; i++) {
    const hsrl_config_field *f = &schema->fields[i];
    if (strcmp(f->section, "sim") != 0) continue;
    char val[HSRL_SETTINGS_STR_MAX + 1];
    hsrl_config_field_format(f, s, val, sizeof val);
    n = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s = %s\n", f->key, val);
    len += (size_t)n;
  }
  return len;
}

static hsrl_status train_write_metrics(io_h5 *f, const sim_urm_train_log *log) {
  hsrl_status st = HSRL_OK;
  const int64_t E = log->n_epochs, K = log->slate_size;
  if (E < 1) return HSRL_OK;
  double *col = hsrl_malloc((size_t)E * sizeof(double));
  int64_t *ep = hsrl_malloc((size_t)E * sizeof(int64_t));
  int64_t dims1[1] = {E}, dims2[2] = {E, K};
  for (int64_t i = 0; i < E; i++) ep[i] = log->epochs[i].epoch;
  HSRL_TRY(io_h5_write_i64(f, "metrics/epoch", ep, 1, dims1, 0));
#define TRAIN_COLUMN(name, expr)                                      \
  do {                                                                \
    for (int64_t i = 0; i < E; i++) col[i] = log->epochs[i].expr;     \
    HSRL_TRY(io_h5_write_f64(f, "metrics/" name, col, 1, dims1, 0));  \
  } while (0)
  TRAIN_COLUMN("train_loss", train_loss);
  TRAIN_COLUMN("train_bce", train_bce);
  TRAIN_COLUMN("val_auc", val_auc);
  TRAIN_COLUMN("test_auc", test.auc);
  TRAIN_COLUMN("test_macro_auc", test.macro_auc);
  TRAIN_COLUMN("test_log_loss", test.log_loss);
  TRAIN_COLUMN("test_ece", test.ece);
  TRAIN_COLUMN("seconds", seconds);
  TRAIN_COLUMN("samples_per_s", samples_per_s);
#undef TRAIN_COLUMN
  HSRL_TRY(io_h5_write_f64(f, "metrics/test_position_auc", log->test_position_auc, 2, dims2, 0));
  const sim_urm_epoch *b = sim_urm_train_log_best(log);
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "epochs", E));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "best_epoch", log->best_epoch));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "early_stopping", log->stop_on_test ? "test" : "held-out"));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "held_out", log->n_val == 0 ? "none"
                                                   : log->held_out_random ? "random"
                                                                          : "latest-per-user"));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "test_in_sample", log->split_all));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_fit", log->n_fit));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_val", log->n_val));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_test", log->n_test));
  HSRL_TRY(io_h5_attr_set_f64(f, "/", "train_samples_per_s", log->samples_per_s));
  if (b) {
    HSRL_TRY(io_h5_attr_set_f64(f, "/", "best_test_auc", b->test.auc));
    HSRL_TRY(io_h5_attr_set_f64(f, "/", "best_test_macro_auc", b->test.macro_auc));
    HSRL_TRY(io_h5_attr_set_f64(f, "/", "best_test_log_loss", b->test.log_loss));
    HSRL_TRY(io_h5_attr_set_f64(f, "/", "best_test_ece", b->test.ece));
    HSRL_TRY(io_h5_attr_set_i64(f, "/", "ece_bins", b->test.ece_bins));
    HSRL_TRY(io_h5_attr_set_f64(f, "/", "best_val_auc", b->val_auc));
  }
done:
  hsrl_free(col);
  hsrl_free(ep);
  return st;
}

hsrl_status sim_urm_save(const sim_urm *m, const char *path, const sim_urm_train_log *log,
                         const hsrl_settings *s, const char *data_path, int split_all) {
  hsrl_status st = HSRL_OK;
  const sim_urm_config *c = sim_urm_get_config(m);
  const sim_dataset *d = sim_urm_data(m);
  io_h5 *f = NULL;
  size_t cap = train_sim_config_text(s, NULL, 0) + 1;
  char *text = hsrl_malloc(cap);
  train_sim_config_text(s, text, cap);

  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, "sim", SIM_URM_FORMAT_VERSION, hsrl_settings_hash(s)));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "sim_config", text));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "seed", s->run.seed));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "split", split_all ? "all" : "train"));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "data_file", data_path ? data_path : ""));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "data_name", d->name));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "data_n_items", c->n_items));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "data_item_dim", c->item_dim));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "data_n_users", c->n_users));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "data_user_dim", c->user_dim));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "data_history_len", c->history_len));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "data_slate_size", c->slate_size));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "f", c->f));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "hidden", c->hidden));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "heads", c->heads));
  HSRL_TRY(io_h5_attr_set_f64(f, "/", "dropout", (double)c->dropout));
  HSRL_TRY(io_h5_attr_set_f64(f, "/", "l2", (double)c->l2));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "item_id_embedding", c->item_id_embedding));
  HSRL_TRY(io_h5_attr_set_f64(f, "/", "id_l2", (double)c->id_l2));
  HSRL_TRY(nn_params_write(sim_urm_params(m), f, 0));
  if (log) HSRL_TRY(train_write_metrics(f, log));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  hsrl_free(text);
  return st;
}

/* Reads an int64 attribute of "/" that must be >= lo. */
static hsrl_status train_attr_i64(io_h5 *f, const char *path, const char *name, int64_t lo,
                                  int64_t *out) {
  hsrl_status st = io_h5_attr_get_i64(f, "/", name, out);
  if (st != HSRL_OK) return st;
  if (*out < lo)
    return hsrl_err(HSRL_E_CORRUPT, path, 0, name, "attribute %s = %lld, expected >= %lld", name,
                    (long long)*out, (long long)lo);
  return HSRL_OK;
}

hsrl_status sim_urm_load(sim_urm **out, const char *path, const sim_dataset *d) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  sim_urm *m = NULL;
  *out = NULL;
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(io_h5_check_stamp(f, "sim", SIM_URM_FORMAT_VERSION, SIM_URM_FORMAT_VERSION, NULL, NULL));
  /* the data file the model was trained for must have the same sizes */
  static const char *const size_names[6] = {"data_n_items",  "data_item_dim",    "data_n_users",
                                            "data_user_dim", "data_history_len", "data_slate_size"};
  const int64_t have[6] = {d->n_items, d->item_dim, d->n_users, d->user_dim, d->history_len,
                           d->slate_size};
  char data_file[512] = "";
  if (io_h5_attr_get_str(f, "/", "data_file", data_file, sizeof data_file) != HSRL_OK)
    hsrl_err_clear();
  for (int i = 0; i < 6; i++) {
    int64_t want = 0;
    HSRL_TRY(train_attr_i64(f, path, size_names[i], 1, &want));
    if (want != have[i]) {
      st = hsrl_err(HSRL_E_INPUT, path, 0, size_names[i],
                    "the simulator was trained on a data file with %s = %lld (%s), but the data "
                    "file given (%s) has %lld; retrain it with 'hsrl sim train'",
                    size_names[i] + 5, (long long)want, data_file[0] ? data_file : "?", d->name,
                    (long long)have[i]);
      goto done;
    }
  }
  sim_urm_config c;
  memset(&c, 0, sizeof c);
  c.n_items = d->n_items;
  c.item_dim = d->item_dim;
  c.n_users = d->n_users;
  c.user_dim = d->user_dim;
  c.history_len = d->history_len;
  c.slate_size = d->slate_size;
  int64_t id_emb = 0;
  double dropout = 0.0, l2 = 0.0, id_l2 = 0.0; /* id_l2: absent in files written before it existed */
  HSRL_TRY(train_attr_i64(f, path, "f", 1, &c.f));
  HSRL_TRY(train_attr_i64(f, path, "hidden", 1, &c.hidden));
  HSRL_TRY(train_attr_i64(f, path, "heads", 1, &c.heads));
  HSRL_TRY(train_attr_i64(f, path, "item_id_embedding", 0, &id_emb));
  if (io_h5_attr_exists(f, "/", "id_l2")) HSRL_TRY(io_h5_attr_get_f64(f, "/", "id_l2", &id_l2));
  HSRL_TRY(io_h5_attr_get_f64(f, "/", "dropout", &dropout));
  HSRL_TRY(io_h5_attr_get_f64(f, "/", "l2", &l2));
  if (c.f % c.heads != 0 || c.f > 4096 || c.hidden > 65536 || !(dropout >= 0.0 && dropout < 1.0) ||
      !(l2 >= 0.0) || !(id_l2 >= 0.0)) {
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, "f",
                  "bad model attributes (f %lld, hidden %lld, heads %lld, dropout %g, l2 %g, id_l2 %g)",
                  (long long)c.f, (long long)c.hidden, (long long)c.heads, dropout, l2, id_l2);
    goto done;
  }
  c.dropout = (float)dropout;
  c.l2 = (float)l2;
  c.item_id_embedding = id_emb != 0;
  c.id_l2 = (float)id_l2;
  m = sim_urm_init(&c, d, 0);
  HSRL_TRY(nn_params_read(sim_urm_params(m), f, path, 0));
  *out = m;
  m = NULL;
done:
  sim_urm_free(m);
  io_h5_close(f);
  return st;
}
