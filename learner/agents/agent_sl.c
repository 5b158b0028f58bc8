/* agent_sl.c: the supervised baseline (see agent_sl.h; method.md section 10). */
#include "learner/agents/agent_sl.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_log.h"
#include "common/nn/nn_adam.h"
#include "common/nn/nn_gemm.h"
#include "common/nn/nn_loss.h"
#include "common/nn/nn_params.h"

#define SL_SCORE_FLOATS (1 << 22) /* catalog scores held at once: rows per act chunk */
#define SL_DROPOUT_PURPOSE 0x51d0u
#define KEPT_NAME "sl/kept_values" /* the kept parameters: float32 (table size) */

typedef struct agent_sl {
  agent base;
  agent_sl_config cfg;
  nn_params *p;
  agent_encoder *enc;
  nn_adam_config adam;
  int64_t N, K, d, D, mb;
  /* learn */
  float *s, *ds;                     /* (mb, d) */
  int32_t *ids;                      /* (mb * K) */
  float *gather;                     /* (mb * K, D) */
  float *phi, *dphi;                 /* (mb * K, d) */
  float *logits, *dlogits, *targets; /* (mb * K) */
  /* act */
  int64_t chunk;                     /* users scored at once */
  float *catalog;                    /* (N+1, d) */
  float *scores;                     /* (chunk, N+1) */
  double *q;                         /* (N+1) sampling weights of one row */
  uint8_t *taken;                    /* (N+1) drawn marks of one row (cleared after it) */
  float *best;                       /* (K) top-K scores of one row */
  /* the parameters of the best held-out loss offered (agent_sl_offer_heldout) */
  float *kept;                       /* (table size) */
  double kept_loss;                  /* +inf: none kept */
  int64_t kept_update;               /* the Adam step they are from; 0: none */
} agent_sl;

static agent_sl *sl_of(agent *a) {
  HSRL_CHECK(a && a->vt && !strcmp(a->vt->name, "sl"));
  return (agent_sl *)a;
}

agent_sl_config agent_sl_config_make(const hsrl_settings *s, const sim_dataset *data,
                                     int item_id_embedding, int64_t max_batch, uint64_t seed) {
  agent_sl_config c;
  memset(&c, 0, sizeof c);
  c.enc = agent_encoder_config_make(&s->agent, data->n_items, data->item_dim, data->item_features,
                                    data->n_users, data->user_dim, data->user_features,
                                    data->history_len);
  c.enc.item_id_embedding = item_id_embedding ? 1 : 0;
  c.enc.sid_embedding = 0; /* SL has no Semantic IDs */
  c.slate_size = data->slate_size;
  c.max_batch = max_batch;
  c.lr = (float)s->agent.actor_lr;
  c.lr_schedule = agent_lr_schedule_of(s);
  c.weight_decay = (float)s->agent.weight_decay;
  c.temperature = (float)s->agent.tau_temp;
  c.epsilon = (float)s->agent.epsilon;
  c.exclude_history = s->env.exclude_history ? 1 : 0;
  c.seed = seed;
  return c;
}

/* ---------------------------------------------------------------- scoring and acting */

/* scores (b, N+1) of b <= chunk states; column 0 = -inf. */
static void sl_score_rows(agent_sl *a, int64_t b, const int32_t *users, const int32_t *histories,
                          float *out) {
  const float *values = nn_params_values(a->p);
  agent_encoder_forward(a->enc, values, b, users, histories, 0, 0, a->s);
  nn_gemm(0, 1, b, a->N + 1, a->d, 1.0f, a->s, a->d, a->catalog, a->d, 0.0f, out, a->N + 1);
  for (int64_t r = 0; r < b; r++) out[r * (a->N + 1)] = -INFINITY;
}

/* The K best of sc[1..N] (NaN counts as -inf), best first, ties to the lower id. */
static void sl_topk(agent_sl *a, const float *sc, int32_t *out) {
  const int64_t K = a->K;
  float *best = a->best;
  int64_t n = 0;
  for (int64_t i = 1; i <= a->N; i++) {
    float x = isnan(sc[i]) ? -INFINITY : sc[i];
    if (n == K && !(x > best[K - 1])) continue;
    int64_t pos = n < K ? n++ : K - 1;
    while (pos > 0 && best[pos - 1] < x) { /* strict: an equal earlier (lower) id stays ahead */
      best[pos] = best[pos - 1];
      out[pos] = out[pos - 1];
      pos--;
    }
    best[pos] = x;
    out[pos] = (int32_t)i;
  }
}

/* K distinct items drawn without replacement (agent_sl.h, "act EXPLORE"); with exclusion
 * (a->cfg.exclude_history) the state's history items are never drawn, not even by the eps share. */
static void sl_sample(agent_sl *a, const float *sc, const int32_t *history, hsrl_rng *rng, int32_t *out) {
  const int64_t N = a->N, K = a->K;
  const double tau = (double)a->cfg.temperature, eps = (double)a->cfg.epsilon;
  float mx = -INFINITY;
  for (int64_t i = 1; i <= N; i++)
    if (sc[i] > mx) mx = sc[i];
  double total = 0.0;
  for (int64_t i = 1; i <= N; i++) {
    double w = isfinite(sc[i]) && isfinite(mx) ? exp(((double)sc[i] - (double)mx) / tau) : 0.0;
    a->q[i] = w;
    total += w;
  }
  int64_t n_excluded = 0; /* history items (-inf scores): marked as drawn for the whole slate */
  const int64_t H = a->cfg.enc.history_len;
  if (a->cfg.exclude_history)
    for (int64_t j = 0; j < H; j++)
      if (history[j] > 0 && !a->taken[history[j]]) a->taken[history[j]] = 1, n_excluded++;
  double drawn_mass = 0.0;
  for (int64_t k = 0; k < K; k++) {
    int64_t remaining = N - n_excluded - k, pick = -1;
    int uniform = eps > 0.0 && hsrl_rng_uniform_double(rng) < eps;
    double mass = total - drawn_mass;
    if (!uniform && mass > 0.0) {
      double t = hsrl_rng_uniform_double(rng) * mass, acc = 0.0;
      for (int64_t i = 1; i <= N; i++) {
        if (a->taken[i]) continue;
        pick = i; /* the last undrawn item if rounding leaves t unreached */
        acc += a->q[i];
        if (acc > t) break;
      }
    } else {
      int64_t r = (int64_t)hsrl_rng_below(rng, (uint64_t)remaining);
      for (int64_t i = 1; i <= N; i++) {
        if (a->taken[i]) continue;
        if (r-- == 0) {
          pick = i;
          break;
        }
      }
    }
    HSRL_CHECK(pick >= 1);
    a->taken[pick] = 1;
    drawn_mass += a->q[pick];
    out[k] = (int32_t)pick;
  }
  for (int64_t k = 0; k < K; k++) a->taken[out[k]] = 0;
  if (a->cfg.exclude_history)
    for (int64_t j = 0; j < H; j++)
      if (history[j] > 0) a->taken[history[j]] = 0;
}

static void sl_act(agent *base, int64_t B, const int32_t *users, const int32_t *histories,
                   agent_act_mode mode, hsrl_rng *rng, agent_act_out *out) {
  agent_sl *a = sl_of(base);
  HSRL_CHECK(mode == AGENT_ACT_GREEDY || rng != NULL);
  const int64_t H = a->cfg.enc.history_len;
  agent_encoder_catalog_vectors(a->enc, nn_params_values(a->p), a->catalog);
  for (int64_t b0 = 0; b0 < B; b0 += a->chunk) {
    int64_t b = B - b0 < a->chunk ? B - b0 : a->chunk;
    sl_score_rows(a, b, users + b0, histories + b0 * H, a->scores);
    for (int64_t r = 0; r < b; r++) {
      float *sc = a->scores + r * (a->N + 1);
      int32_t *slate = out->slate + (b0 + r) * a->K;
      if (a->cfg.exclude_history) /* history items: never shown (-inf: never ranked, never drawn) */
        for (int64_t j = 0; j < H; j++)
          if (histories[(b0 + r) * H + j] > 0) sc[histories[(b0 + r) * H + j]] = -INFINITY;
      if (mode == AGENT_ACT_GREEDY)
        sl_topk(a, sc, slate);
      else
        sl_sample(a, sc, histories + (b0 + r) * H, rng, slate);
    }
  }
}

void agent_sl_scores(agent *base, int64_t B, const int32_t *users, const int32_t *histories,
                     float *out) {
  agent_sl *a = sl_of(base);
  const int64_t H = a->cfg.enc.history_len;
  agent_encoder_catalog_vectors(a->enc, nn_params_values(a->p), a->catalog);
  for (int64_t b0 = 0; b0 < B; b0 += a->chunk) {
    int64_t b = B - b0 < a->chunk ? B - b0 : a->chunk;
    sl_score_rows(a, b, users + b0, histories + b0 * H, out + b0 * (a->N + 1));
  }
}

/* ---------------------------------------------------------------- learning */

static double sl_loss(agent_sl *a, const agent_batch *batch, int train, uint64_t key, float dloss) {
  const int64_t B = batch->B, K = a->K, d = a->d, n = B * K;
  HSRL_CHECKF(B >= 1 && B <= a->mb, "SL batch %lld of at most %lld", (long long)B, (long long)a->mb);
  HSRL_CHECK(batch->users && batch->history && batch->slate && batch->clicks);
  float *values = nn_params_values(a->p), *grads = nn_params_grads(a->p);
  agent_encoder_forward(a->enc, values, B, batch->users, batch->history, train, key, a->s);
  memcpy(a->ids, batch->slate, (size_t)n * sizeof(int32_t));
  agent_encoder_item_vectors(a->enc, values, n, a->ids, a->gather, a->phi);
  for (int64_t b = 0; b < B; b++)
    for (int64_t k = 0; k < K; k++) {
      const float *s = a->s + b * d, *ph = a->phi + (b * K + k) * d;
      float acc = 0.0f;
      for (int64_t j = 0; j < d; j++) acc += s[j] * ph[j];
      a->logits[b * K + k] = acc;
      a->targets[b * K + k] = batch->clicks[b * K + k] ? 1.0f : 0.0f;
    }
  double loss = nn_bce_with_logits_forward(a->logits, a->targets, n);
  if (dloss == 0.0f) return loss;
  memset(a->dlogits, 0, (size_t)n * sizeof(float));
  nn_bce_with_logits_backward(a->dlogits, a->logits, a->targets, n, dloss);
  memset(a->ds, 0, (size_t)(B * d) * sizeof(float));
  for (int64_t b = 0; b < B; b++)
    for (int64_t k = 0; k < K; k++) {
      const float g = a->dlogits[b * K + k];
      const float *s = a->s + b * d, *ph = a->phi + (b * K + k) * d;
      float *dsb = a->ds + b * d, *dph = a->dphi + (b * K + k) * d;
      for (int64_t j = 0; j < d; j++) {
        dsb[j] += g * ph[j];
        dph[j] = g * s[j];
      }
    }
  agent_encoder_item_vectors_backward(a->enc, grads, values, n, a->ids, a->gather, a->dphi);
  agent_encoder_backward(a->enc, grads, values, a->ds);
  return loss;
}

double agent_sl_loss(agent *base, const agent_batch *batch, uint64_t key, float dloss) {
  return sl_loss(sl_of(base), batch, 1, key, dloss);
}

double agent_sl_heldout_loss(agent *base, const agent_batch *batch) {
  return sl_loss(sl_of(base), batch, 0, 0, 0.0f);
}

int agent_sl_offer_heldout(agent *base, double loss) {
  agent_sl *a = sl_of(base);
  if (!(loss < a->kept_loss)) return 0; /* NaN is never kept */
  memcpy(a->kept, nn_params_values(a->p), (size_t)nn_params_size(a->p) * sizeof(float));
  a->kept_loss = loss;
  a->kept_update = nn_params_adam_step(a->p);
  return 1;
}

int64_t agent_sl_kept_update(const agent *base, double *loss) {
  const agent_sl *a = (const agent_sl *)base;
  if (loss) *loss = a->kept_loss;
  return a->kept_update;
}

static void sl_use_best(agent *base) {
  agent_sl *a = sl_of(base);
  if (a->kept_update == 0) return;
  memcpy(nn_params_values(a->p), a->kept, (size_t)nn_params_size(a->p) * sizeof(float));
  HSRL_INFO("SL acts with its parameters of update %lld (best held-out loss %.4f)",
            (long long)a->kept_update, a->kept_loss);
}

uint64_t agent_sl_dropout_key(const agent *base, int64_t update) {
  const agent_sl *a = (const agent_sl *)base;
  return hsrl_rng_derive(hsrl_rng_derive(a->cfg.seed, SL_DROPOUT_PURPOSE), (uint64_t)update);
}

static void sl_learn(agent *base, const agent_batch *batch, agent_stats *st) {
  agent_sl *a = sl_of(base);
  int64_t t = nn_params_adam_step(a->p) + 1;
  nn_params_zero_grads(a->p);
  double loss = agent_sl_loss(base, batch, agent_sl_dropout_key(base, t), 1.0f);
  const float *grads = nn_params_grads(a->p);
  double sq = 0.0;
  const int64_t size = nn_params_size(a->p);
  for (int64_t i = 0; i < size; i++) sq += (double)grads[i] * (double)grads[i];
  double gnorm = sqrt(sq);
  if (isfinite(loss) && isfinite(gnorm)) {
    a->adam.lr = (float)((double)a->cfg.lr * nn_lr_factor(&a->cfg.lr_schedule, t));
    nn_params_adam_update(a->p, &a->adam);
  }
  memset(st, 0, sizeof *st);
  st->actor_loss = loss;
  st->grad_norm = gnorm;
}

/* ---------------------------------------------------------------- tables */

static hsrl_status sl_save(const agent *base, io_h5 *f) {
  const agent_sl *a = (const agent_sl *)base;
  hsrl_status st = nn_params_write(a->p, f, NN_PARAMS_OPTIM);
  if (st != HSRL_OK) return st;
  if ((st = io_h5_attr_set_i64(f, "sl", "sl_format_version", AGENT_SL_FORMAT_VERSION)) != HSRL_OK) return st;
  if (a->kept_update == 0) return HSRL_OK;
  const int64_t n = nn_params_size(a->p);
  if ((st = io_h5_write_f32(f, KEPT_NAME, a->kept, 1, &n, 0)) != HSRL_OK) return st;
  if ((st = io_h5_attr_set_i64(f, KEPT_NAME, "update", a->kept_update)) != HSRL_OK) return st;
  return io_h5_attr_set_f64(f, KEPT_NAME, "heldout_loss", a->kept_loss);
}

static hsrl_status sl_load(agent *base, io_h5 *f) {
  agent_sl *a = sl_of(base);
  int64_t v = 0;
  if (!io_h5_exists(f, "sl") || io_h5_attr_get_i64(f, "sl", "sl_format_version", &v) != HSRL_OK)
    return hsrl_err(HSRL_E_INPUT, io_h5_path(f), 0, "sl", "no SL agent tables in this file");
  if (v != AGENT_SL_FORMAT_VERSION)
    return hsrl_err(HSRL_E_INPUT, io_h5_path(f), 0, "sl/sl_format_version",
                    "version %lld, this build reads %d", (long long)v, AGENT_SL_FORMAT_VERSION);
  hsrl_status st = nn_params_read(a->p, f, NULL, NN_PARAMS_OPTIM);
  if (st != HSRL_OK) return st;
  a->kept_loss = INFINITY, a->kept_update = 0;
  if (!io_h5_exists(f, KEPT_NAME)) return HSRL_OK;
  const int64_t n = nn_params_size(a->p);
  if ((st = io_h5_read_f32(f, KEPT_NAME, a->kept, n)) != HSRL_OK ||
      (st = io_h5_attr_get_i64(f, KEPT_NAME, "update", &a->kept_update)) != HSRL_OK ||
      (st = io_h5_attr_get_f64(f, KEPT_NAME, "heldout_loss", &a->kept_loss)) != HSRL_OK)
    return st;
  if (a->kept_update < 1)
    return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, KEPT_NAME "/update", "%lld (must be >= 1)",
                    (long long)a->kept_update);
  return HSRL_OK;
}

static int64_t sl_n_policy_params(const agent *base) {
  return nn_params_size(((const agent_sl *)base)->p);
}
static float *sl_policy_params(agent *base) { return nn_params_values(sl_of(base)->p); }

static void sl_free(agent *base) {
  agent_sl *a = (agent_sl *)base;
  agent_encoder_free(a->enc);
  nn_params_free(a->p);
  float *fl[] = {a->s, a->ds, a->gather, a->phi, a->dphi, a->logits, a->dlogits, a->targets,
                 a->catalog, a->scores, a->best, a->kept};
  for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) hsrl_free(fl[i]);
  hsrl_free(a->ids), hsrl_free(a->q), hsrl_free(a->taken);
  hsrl_free(a);
}

static const agent_vtable sl_vtable = {
    "sl", sl_act, sl_learn, sl_save, sl_load, sl_n_policy_params, sl_policy_params, sl_use_best, sl_free,
};

nn_params *agent_sl_params(agent *base) { return sl_of(base)->p; }

static float *sl_floats(int64_t n) { return hsrl_alloc_aligned((size_t)n * sizeof(float)); }

agent *agent_sl_init(const agent_sl_config *cfg) {
  HSRL_CHECK(cfg->slate_size >= 1 && cfg->max_batch >= 1);
  HSRL_CHECKF(cfg->enc.n_items >= cfg->slate_size, "%lld items cannot fill a slate of %lld",
              (long long)cfg->enc.n_items, (long long)cfg->slate_size);
  HSRL_CHECK(cfg->temperature > 0.0f && cfg->epsilon >= 0.0f && cfg->epsilon <= 1.0f);
  agent_sl *a = hsrl_calloc(1, sizeof *a);
  a->base.vt = &sl_vtable;
  a->cfg = *cfg;
  a->N = cfg->enc.n_items, a->K = cfg->slate_size, a->d = cfg->enc.d, a->D = cfg->enc.item_dim;
  a->mb = cfg->max_batch;
  a->p = nn_params_init(64);
  a->enc = agent_encoder_init(&cfg->enc, a->p, "sl/enc", cfg->max_batch);
  nn_params_finalize(a->p);
  hsrl_rng rng;
  hsrl_rng_init(&rng, hsrl_rng_derive(cfg->seed, 0x51u), 0);
  agent_encoder_init_params(a->enc, nn_params_values(a->p), &rng);
  a->adam = nn_adam_defaults(cfg->lr);
  a->adam.weight_decay = cfg->weight_decay;
  const int64_t mb = a->mb, K = a->K, d = a->d, N = a->N;
  a->s = sl_floats(mb * d), a->ds = sl_floats(mb * d);
  a->ids = hsrl_calloc((size_t)(mb * K), sizeof(int32_t));
  a->gather = sl_floats(mb * K * a->D);
  a->phi = sl_floats(mb * K * d), a->dphi = sl_floats(mb * K * d);
  a->logits = sl_floats(mb * K), a->dlogits = sl_floats(mb * K), a->targets = sl_floats(mb * K);
  a->chunk = SL_SCORE_FLOATS / (N + 1);
  if (a->chunk < 1) a->chunk = 1;
  if (a->chunk > mb) a->chunk = mb;
  a->catalog = sl_floats((N + 1) * d);
  a->scores = sl_floats(a->chunk * (N + 1));
  a->q = hsrl_calloc((size_t)(N + 1), sizeof(double));
  a->taken = hsrl_calloc((size_t)(N + 1), 1);
  a->best = sl_floats(K);
  a->kept = sl_floats(nn_params_size(a->p));
  a->kept_loss = INFINITY;
  return &a->base;
}
