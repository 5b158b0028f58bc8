/* sim_urm.c: the user-response model (see sim_urm.h; method.md section 3).
 *
 * forward() is the list of kernel calls of the header's equations, in two parts: the context c
 * (urm_context_forward, all that sim_urm_user_context runs) and the slate logits on top of it;
 * backward() mirrors it in reverse. The work buffer is one allocation carved into views ("size then
 * place"): every view starts on a 64-byte boundary. Gradient flow through the padding: padded
 * history positions are masked as keys in both attentions, and the outputs of the self-attention at
 * padded query positions are only ever used as (masked) keys of the cross-attention, so no gradient
 * reaches a padded position and the padding row 0 of the id embedding keeps its zero init. */
#include "sim/sim_urm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_activation.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_embedding.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_loss.h"
#include "common/nn/nn_mha.h"

enum { URM_STREAM_INIT = 0x55524d01 }; /* "URM" init stream id of hsrl_rng */

/* Offsets (floats) of one MHA's four tensors in the table. */
typedef struct urm_mha_offsets {
  int64_t w_in, b_in, w_o, b_o;
} urm_mha_offsets;

struct sim_urm {
  sim_urm_config cfg;
  const sim_dataset *data; /* borrowed: item and user feature tables */
  nn_params *params;
  int64_t o_w1, o_b1, o_w2, o_b2; /* user tower */
  int64_t o_wp, o_bp;             /* item feature projection */
  int64_t o_emb;                  /* id embedding, -1 when off */
  urm_mha_offsets sa, ca;         /* self- and cross-attention */
  int64_t o_wc, o_bc;             /* concat layer */
};

struct sim_urm_work {
  int64_t max_batch;
  int train_buffers; /* backward buffers present */
  /* the last forward */
  int64_t B;
  int trained; /* 1: a training forward with targets, ready for backward */
  uint64_t key;
  double bce, reg;
  nn_mha_shape self_shape, cross_shape;
  /* activations: sized for max_batch rows */
  float *uf;        /* (B, P)  gathered user features */
  float *h1;        /* (B, hidden)  ReLU output */
  uint8_t *mask1;   /* (B, hidden)  dropout mask */
  float *h1d;       /* (B, hidden)  after dropout */
  float *eu;        /* (B, f)  user vector */
  int32_t *hist;    /* (B, H)  history ids of the last forward */
  uint8_t *pad;     /* (B, H)  1 = padding */
  float *xh;        /* (B, H, D)  history item features */
  float *zh;        /* (B, H, f)  projected history */
  float *self_cache; /* nn_mha_cache_floats(self) */
  float *S;         /* (B, H, f)  self-attention output */
  float *cross_cache; /* nn_mha_cache_floats(cross) */
  float *c0;        /* (B, f)  cross-attention output */
  float *cat;       /* (B, 2f)  [c0 ; eu] */
  float *c;         /* (B, f)  context */
  int32_t *slates;  /* (B, K) */
  float *xs;        /* (B, K, D)  slate item features */
  float *ys;        /* (B, K, f)  projected slate items */
  float *logits;    /* (B, K) */
  float *targets;   /* (B, K) */
  /* backward (train_buffers only) */
  float *dlogits;   /* (B, K) */
  float *dys;       /* (B, K, f) */
  float *dc;        /* (B, f) */
  float *dcat;      /* (B, 2f) */
  float *dc0;       /* (B, f) */
  float *deu;       /* (B, f) */
  float *dS;        /* (B, H, f) */
  float *dzh;       /* (B, H, f) */
  float *dh1d;      /* (B, hidden) */
  float *dh1;       /* (B, hidden) */
  float *dpre;      /* (B, hidden) */
  float *mha_scratch; /* max of the two nn_mha_scratch_floats */
  void *block;
};

/* ---------------------------------------------------------------- config and parameters */

sim_urm_config sim_urm_config_make(const hsrl_settings_sim *s, const sim_dataset *data) {
  sim_urm_config c;
  memset(&c, 0, sizeof c);
  c.n_items = data->n_items;
  c.item_dim = data->item_dim;
  c.n_users = data->n_users;
  c.user_dim = data->user_dim;
  c.history_len = data->history_len;
  c.slate_size = data->slate_size;
  c.f = s->f;
  c.hidden = s->hidden;
  c.heads = s->heads;
  c.dropout = (float)s->dropout;
  c.l2 = (float)s->l2;
  c.item_id_embedding = s->item_id_embedding ? 1 : 0;
  c.id_l2 = (float)s->id_l2;
  return c;
}

static void urm_check_config(const sim_urm_config *c, const sim_dataset *d) {
  HSRL_CHECKF(c->f >= 1 && c->hidden >= 1 && c->heads >= 1 && c->f % c->heads == 0,
              "sim config: f %lld hidden %lld heads %lld", (long long)c->f, (long long)c->hidden,
              (long long)c->heads);
  HSRL_CHECKF(c->dropout >= 0.0f && c->dropout < 1.0f && c->l2 >= 0.0f && c->id_l2 >= 0.0f,
              "sim config: dropout %g l2 %g id_l2 %g", (double)c->dropout, (double)c->l2, (double)c->id_l2);
  HSRL_CHECKF(d->n_items == c->n_items && d->item_dim == c->item_dim && d->n_users == c->n_users &&
                  d->user_dim == c->user_dim && d->history_len == c->history_len &&
                  d->slate_size == c->slate_size,
              "sim_urm: the dataset's sizes differ from the model config");
  HSRL_CHECK(c->n_items >= 1 && c->item_dim >= 1 && c->user_dim >= 1 && c->history_len >= 1 &&
             c->slate_size >= 1);
}

static void urm_fill_uniform(float *x, int64_t n, double bound, hsrl_rng *r) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)((2.0 * hsrl_rng_uniform_double(r) - 1.0) * bound);
}

/* torch.nn.Linear's default init: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void urm_init_linear(float *w, float *b, int64_t out_dim, int64_t in_dim, hsrl_rng *r) {
  double bound = 1.0 / sqrt((double)in_dim);
  urm_fill_uniform(w, out_dim * in_dim, bound, r);
  urm_fill_uniform(b, out_dim, bound, r);
}

/* torch.nn.MultiheadAttention: w_in Xavier-uniform over (3E, E), b_in 0, w_o as a Linear, b_o 0. */
static void urm_init_mha(float *v, const urm_mha_offsets *o, int64_t E, hsrl_rng *r) {
  urm_fill_uniform(v + o->w_in, 3 * E * E, sqrt(6.0 / (double)(E + 3 * E)), r);
  urm_fill_uniform(v + o->w_o, E * E, 1.0 / sqrt((double)E), r);
  /* b_in, b_o stay 0 (the table is zero-filled) */
}

static urm_mha_offsets urm_add_mha(nn_params *p, const char *prefix, int64_t E) {
  char name[NN_PARAMS_NAME_MAX];
  urm_mha_offsets o;
  snprintf(name, sizeof name, "%s/w_in", prefix);
  o.w_in = nn_params_add2(p, name, 3 * E, E);
  snprintf(name, sizeof name, "%s/b_in", prefix);
  o.b_in = nn_params_add1(p, name, 3 * E);
  snprintf(name, sizeof name, "%s/w_o", prefix);
  o.w_o = nn_params_add2(p, name, E, E);
  snprintf(name, sizeof name, "%s/b_o", prefix);
  o.b_o = nn_params_add1(p, name, E);
  return o;
}

sim_urm *sim_urm_init(const sim_urm_config *cfg, const sim_dataset *data, uint64_t seed) {
  urm_check_config(cfg, data);
  sim_urm *m = hsrl_calloc(1, sizeof *m);
  m->cfg = *cfg;
  m->data = data;
  const int64_t P = cfg->user_dim, D = cfg->item_dim, f = cfg->f, hid = cfg->hidden;
  nn_params *p = nn_params_init(20);
  m->o_w1 = nn_params_add2(p, "sim/user/l1/w", hid, P);
  m->o_b1 = nn_params_add1(p, "sim/user/l1/b", hid);
  m->o_w2 = nn_params_add2(p, "sim/user/l2/w", f, hid);
  m->o_b2 = nn_params_add1(p, "sim/user/l2/b", f);
  m->o_wp = nn_params_add2(p, "sim/item/proj/w", f, D);
  m->o_bp = nn_params_add1(p, "sim/item/proj/b", f);
  m->o_emb = cfg->item_id_embedding ? nn_params_add2(p, "sim/item/id_emb", cfg->n_items + 1, f) : -1;
  m->sa = urm_add_mha(p, "sim/self_attn", f);
  m->ca = urm_add_mha(p, "sim/cross_attn", f);
  m->o_wc = nn_params_add2(p, "sim/concat/w", f, 2 * f);
  m->o_bc = nn_params_add1(p, "sim/concat/b", f);
  nn_params_finalize(p);
  m->params = p;

  float *v = nn_params_values(p);
  hsrl_rng r;
  hsrl_rng_init(&r, seed, URM_STREAM_INIT);
  urm_init_linear(v + m->o_w1, v + m->o_b1, hid, P, &r);
  urm_init_linear(v + m->o_w2, v + m->o_b2, f, hid, &r);
  urm_init_linear(v + m->o_wp, v + m->o_bp, f, D, &r);
  if (m->o_emb >= 0) {
    float *e = v + m->o_emb;
    for (int64_t i = f; i < (cfg->n_items + 1) * f; i++)
      e[i] = (float)(hsrl_rng_normal(&r) * (double)SIM_URM_ID_INIT_STD); /* row 0 stays 0 */
  }
  urm_init_mha(v, &m->sa, f, &r);
  urm_init_mha(v, &m->ca, f, &r);
  urm_init_linear(v + m->o_wc, v + m->o_bc, f, 2 * f, &r);
  return m;
}

void sim_urm_free(sim_urm *m) {
  if (!m) return;
  nn_params_free(m->params);
  hsrl_free(m);
}

const sim_urm_config *sim_urm_get_config(const sim_urm *m) { return &m->cfg; }
nn_params *sim_urm_params(const sim_urm *m) { return m->params; }
const sim_dataset *sim_urm_data(const sim_urm *m) { return m->data; }

/* ---------------------------------------------------------------- work buffers */

static int64_t urm_round16(int64_t n) { return (n + 15) / 16 * 16; }
static int64_t urm_bytes_as_floats(int64_t n_bytes) { return urm_round16((n_bytes + 3) / 4); }

static nn_mha_shape urm_self_shape(const sim_urm_config *c, int64_t B) {
  nn_mha_shape s = {B, c->history_len, c->history_len, c->f, c->heads};
  return s;
}

static nn_mha_shape urm_cross_shape(const sim_urm_config *c, int64_t B) {
  nn_mha_shape s = {B, 1, c->history_len, c->f, c->heads};
  return s;
}

/* Carves the views out of base (NULL: only counts). Returns the floats needed. */
static int64_t urm_work_layout(sim_urm_work *w, const sim_urm_config *c, int64_t Bm, int train,
                               float *base) {
  const int64_t P = c->user_dim, D = c->item_dim, f = c->f, hid = c->hidden;
  const int64_t H = c->history_len, K = c->slate_size;
  nn_mha_shape ss = urm_self_shape(c, Bm), cs = urm_cross_shape(c, Bm);
  int64_t at = 0;
#define URM_F(field, n)                                   \
  do {                                                    \
    if (base) w->field = base + at;                       \
    at += urm_round16(n);                                 \
  } while (0)
#define URM_B(field, type, n)                             \
  do {                                                    \
    if (base) w->field = (type *)(void *)(base + at);     \
    at += urm_bytes_as_floats((n) * (int64_t)sizeof(type)); \
  } while (0)
  URM_F(uf, Bm * P);
  URM_F(h1, Bm * hid);
  URM_B(mask1, uint8_t, Bm * hid);
  URM_F(h1d, Bm * hid);
  URM_F(eu, Bm * f);
  URM_B(hist, int32_t, Bm * H);
  URM_B(pad, uint8_t, Bm * H);
  URM_F(xh, Bm * H * D);
  URM_F(zh, Bm * H * f);
  URM_F(self_cache, nn_mha_cache_floats(&ss));
  URM_F(S, Bm * H * f);
  URM_F(cross_cache, nn_mha_cache_floats(&cs));
  URM_F(c0, Bm * f);
  URM_F(cat, Bm * 2 * f);
  URM_F(c, Bm * f);
  URM_B(slates, int32_t, Bm * K);
  URM_F(xs, Bm * K * D);
  URM_F(ys, Bm * K * f);
  URM_F(logits, Bm * K);
  URM_F(targets, Bm * K);
  if (train) {
    int64_t s1 = nn_mha_scratch_floats(&ss), s2 = nn_mha_scratch_floats(&cs);
    URM_F(dlogits, Bm * K);
    URM_F(dys, Bm * K * f);
    URM_F(dc, Bm * f);
    URM_F(dcat, Bm * 2 * f);
    URM_F(dc0, Bm * f);
    URM_F(deu, Bm * f);
    URM_F(dS, Bm * H * f);
    URM_F(dzh, Bm * H * f);
    URM_F(dh1d, Bm * hid);
    URM_F(dh1, Bm * hid);
    URM_F(dpre, Bm * hid);
    URM_F(mha_scratch, s1 > s2 ? s1 : s2);
  }
#undef URM_F
#undef URM_B
  return at;
}

sim_urm_work *sim_urm_work_init(const sim_urm *m, int64_t max_batch, int train) {
  HSRL_CHECKF(max_batch >= 1, "sim_urm_work_init: max_batch %lld", (long long)max_batch);
  sim_urm_work *w = hsrl_calloc(1, sizeof *w);
  w->max_batch = max_batch;
  w->train_buffers = train != 0;
  int64_t n = urm_work_layout(w, &m->cfg, max_batch, w->train_buffers, NULL);
  w->block = hsrl_alloc_aligned((size_t)n * sizeof(float));
  urm_work_layout(w, &m->cfg, max_batch, w->train_buffers, w->block);
  return w;
}

void sim_urm_work_free(sim_urm_work *w) {
  if (!w) return;
  hsrl_free(w->block);
  hsrl_free(w);
}

const float *sim_urm_work_logits(const sim_urm_work *w) { return w->logits; }
double sim_urm_work_bce(const sim_urm_work *w) { return w->bce; }
double sim_urm_work_reg(const sim_urm_work *w) { return w->reg; }

/* ---------------------------------------------------------------- forward */

/* z (n, f) = Linear(D->f)(x) + E_id[ids], with x (n, D) gathered from the item table. */
static void urm_items_forward(const sim_urm *m, float *z, float *x, const int32_t *ids, int64_t n) {
  const float *v = nn_params_values(m->params);
  const int64_t D = m->cfg.item_dim, f = m->cfg.f;
  nn_embedding_forward(x, ids, m->data->item_features, n, D);
  nn_linear_forward(z, x, v + m->o_wp, v + m->o_bp, n, D, f);
  if (m->o_emb >= 0) {
    const float *e = v + m->o_emb;
    for (int64_t i = 0; i < n; i++) {
      const float *row = e + (int64_t)ids[i] * f;
      float *zi = z + i * f;
      for (int64_t j = 0; j < f; j++) zi[j] += row[j];
    }
  }
}

static void urm_check_ids(const sim_urm *m, int64_t n, const int32_t *ids, int32_t lo,
                          const char *what) {
  const int64_t N = m->cfg.n_items;
  for (int64_t i = 0; i < n; i++)
    HSRL_CHECKF(ids[i] >= lo && ids[i] <= N, "sim_urm: %s id %d not in [%d, %lld]", what, ids[i],
                lo, (long long)N);
}

/* w->uf (B, P) from the user table (user_ids) or copied (user_features when user_ids is NULL). */
static void urm_set_users(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *user_ids,
                          const float *user_features) {
  const sim_urm_config *c = &m->cfg;
  HSRL_CHECKF(B >= 0 && B <= w->max_batch, "sim_urm: batch %lld > work's max %lld", (long long)B,
              (long long)w->max_batch);
  if (!user_ids) {
    memcpy(w->uf, user_features, (size_t)(B * c->user_dim) * sizeof(float));
    return;
  }
  for (int64_t b = 0; b < B; b++)
    HSRL_CHECKF(user_ids[b] >= 1 && user_ids[b] <= c->n_users,
                "sim_urm: user id %d not in [1, %lld]", user_ids[b], (long long)c->n_users);
  nn_embedding_forward(w->uf, user_ids, m->data->user_features, B, c->user_dim);
}

/* The regulariser is sum_t coef_t * sum(theta_t^2): l2 / n_t for every tensor but the id
 * embedding (l2 * mean(theta_t^2)), id_l2 for the id embedding (a per-row prior). */
static double urm_reg_coef(const sim_urm *m, const nn_param_entry *e) {
  return e->offset == m->o_emb ? (double)m->cfg.id_l2 : (double)m->cfg.l2 / (double)e->n;
}

static double urm_reg(const sim_urm *m) {
  const float *v = nn_params_values(m->params);
  double reg = 0.0;
  for (int64_t t = 0; t < nn_params_count(m->params); t++) {
    const nn_param_entry *e = nn_params_entry(m->params, t);
    if (e->n == 0) continue;
    double s = 0.0;
    for (int64_t i = 0; i < e->n; i++) s += (double)v[e->offset + i] * (double)v[e->offset + i];
    reg += urm_reg_coef(m, e) * s;
  }
  return reg;
}

/* The context c (B, f) into w->c, from the user features already in w->uf (urm_set_users). */
static void urm_context_forward(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *hist,
                                int train, uint64_t key) {
  const sim_urm_config *c = &m->cfg;
  const int64_t P = c->user_dim, f = c->f, hid = c->hidden, H = c->history_len;
  const float *v = nn_params_values(m->params);
  urm_check_ids(m, B * H, hist, 0, "history");
  w->B = B;
  w->trained = 0; /* every forward invalidates the last loss and its backward */
  w->bce = w->reg = 0.0;
  w->key = key;
  w->self_shape = urm_self_shape(c, B);
  w->cross_shape = urm_cross_shape(c, B);

  /* user tower */
  nn_linear_forward(w->h1, w->uf, v + m->o_w1, v + m->o_b1, B, P, hid);
  nn_relu_forward(w->h1, w->h1, B * hid);
  const float *h1d = w->h1;
  if (train && c->dropout > 0.0f) {
    nn_dropout_forward(w->h1d, w->mask1, w->h1, B * hid, c->dropout, key, 0);
    h1d = w->h1d;
  }
  nn_linear_forward(w->eu, h1d, v + m->o_w2, v + m->o_b2, B, hid, f);

  /* history: projection, self-attention, cross-attention from the user vector */
  memcpy(w->hist, hist, (size_t)(B * H) * sizeof(int32_t));
  for (int64_t i = 0; i < B * H; i++) w->pad[i] = hist[i] == 0;
  urm_items_forward(m, w->zh, w->xh, hist, B * H);
  nn_mha_mask mask = {0, 0, w->pad};
  nn_mha_forward(w->S, w->self_cache, w->zh, w->zh, v + m->sa.w_in, v + m->sa.b_in, v + m->sa.w_o,
                 v + m->sa.b_o, &mask, 0.0f, 0, 0, &w->self_shape);
  nn_mha_forward(w->c0, w->cross_cache, w->eu, w->S, v + m->ca.w_in, v + m->ca.b_in,
                 v + m->ca.w_o, v + m->ca.b_o, &mask, 0.0f, 0, 0, &w->cross_shape);

  /* context c = Linear([c0 ; eu]) */
  for (int64_t b = 0; b < B; b++) {
    memcpy(w->cat + b * 2 * f, w->c0 + b * f, (size_t)f * sizeof(float));
    memcpy(w->cat + b * 2 * f + f, w->eu + b * f, (size_t)f * sizeof(float));
  }
  nn_linear_forward(w->c, w->cat, v + m->o_wc, v + m->o_bc, B, 2 * f, f);
}

/* The whole forward after urm_set_users: context, then logit_k = <phi(slate_k), c> (B, K). */
static void urm_forward_core(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *hist,
                             const int32_t *slates, int train, uint64_t key) {
  const int64_t f = m->cfg.f, K = m->cfg.slate_size;
  urm_context_forward(m, w, B, hist, train, key);
  urm_check_ids(m, B * K, slates, 1, "slate");
  memcpy(w->slates, slates, (size_t)(B * K) * sizeof(int32_t));
  urm_items_forward(m, w->ys, w->xs, slates, B * K);
  for (int64_t b = 0; b < B; b++) {
    const float *cb = w->c + b * f;
    for (int64_t k = 0; k < K; k++) {
      const float *y = w->ys + (b * K + k) * f;
      float dot = 0.0f;
      for (int64_t j = 0; j < f; j++) dot += y[j] * cb[j];
      w->logits[b * K + k] = dot;
    }
  }
}

double sim_urm_forward(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *user_ids,
                       const int32_t *histories, const int32_t *slates, const float *targets,
                       int train, uint64_t dropout_key) {
  const sim_urm_config *c = &m->cfg;
  urm_set_users(m, w, B, user_ids, NULL);
  urm_forward_core(m, w, B, histories, slates, train, dropout_key);
  if (!targets) return 0.0;
  const int64_t n = B * c->slate_size;
  memcpy(w->targets, targets, (size_t)n * sizeof(float));
  w->bce = n > 0 ? nn_bce_with_logits_forward(w->logits, w->targets, n) : 0.0;
  w->reg = urm_reg(m);
  w->trained = train != 0 && w->train_buffers;
  return w->bce + w->reg;
}

/* ---------------------------------------------------------------- backward */

static void urm_items_backward(const sim_urm *m, const float *dz, const float *x,
                               const int32_t *ids, int64_t n) {
  const float *v = nn_params_values(m->params);
  float *g = nn_params_grads(m->params);
  const int64_t D = m->cfg.item_dim, f = m->cfg.f;
  nn_linear_backward(NULL, g + m->o_wp, g + m->o_bp, dz, x, v + m->o_wp, n, D, f);
  if (m->o_emb >= 0) nn_embedding_backward(g + m->o_emb, dz, ids, n, f);
}

void sim_urm_backward(const sim_urm *m, sim_urm_work *w, float dloss) {
  HSRL_CHECKF(w->trained, "sim_urm_backward without a training forward with targets "
                          "(or the work has no backward buffers)");
  const sim_urm_config *c = &m->cfg;
  const int64_t B = w->B, P = c->user_dim, f = c->f, hid = c->hidden, H = c->history_len;
  const int64_t K = c->slate_size;
  const float *v = nn_params_values(m->params);
  float *g = nn_params_grads(m->params);

  /* loss -> logits -> (slate vectors, context) */
  memset(w->dlogits, 0, (size_t)(B * K) * sizeof(float));
  if (B * K > 0) nn_bce_with_logits_backward(w->dlogits, w->logits, w->targets, B * K, dloss);
  for (int64_t b = 0; b < B; b++) {
    const float *cb = w->c + b * f;
    float *dcb = w->dc + b * f;
    for (int64_t j = 0; j < f; j++) dcb[j] = 0.0f;
    for (int64_t k = 0; k < K; k++) {
      float dl = w->dlogits[b * K + k];
      const float *y = w->ys + (b * K + k) * f;
      float *dy = w->dys + (b * K + k) * f;
      for (int64_t j = 0; j < f; j++) {
        dy[j] = dl * cb[j];
        dcb[j] += dl * y[j];
      }
    }
  }
  urm_items_backward(m, w->dys, w->xs, w->slates, B * K);

  /* concat layer, split into the cross-attention output and the user vector */
  memset(w->dcat, 0, (size_t)(B * 2 * f) * sizeof(float));
  nn_linear_backward(w->dcat, g + m->o_wc, g + m->o_bc, w->dc, w->cat, v + m->o_wc, B, 2 * f, f);
  for (int64_t b = 0; b < B; b++) {
    memcpy(w->dc0 + b * f, w->dcat + b * 2 * f, (size_t)f * sizeof(float));
    memcpy(w->deu + b * f, w->dcat + b * 2 * f + f, (size_t)f * sizeof(float));
  }

  /* cross-attention (its query adds into deu), then self-attention (query and key/value
   * gradients both add into dzh) */
  nn_mha_mask mask = {0, 0, w->pad};
  memset(w->dS, 0, (size_t)(B * H * f) * sizeof(float));
  nn_mha_backward(w->deu, w->dS, g + m->ca.w_in, g + m->ca.b_in, g + m->ca.w_o, g + m->ca.b_o,
                  w->mha_scratch, w->dc0, w->cross_cache, w->eu, w->S, v + m->ca.w_in,
                  v + m->ca.w_o, &mask, 0.0f, &w->cross_shape);
  memset(w->dzh, 0, (size_t)(B * H * f) * sizeof(float));
  nn_mha_backward(w->dzh, w->dzh, g + m->sa.w_in, g + m->sa.b_in, g + m->sa.w_o, g + m->sa.b_o,
                  w->mha_scratch, w->dS, w->self_cache, w->zh, w->zh, v + m->sa.w_in,
                  v + m->sa.w_o, &mask, 0.0f, &w->self_shape);
  urm_items_backward(m, w->dzh, w->xh, w->hist, B * H);

  /* user tower */
  const int dropped = c->dropout > 0.0f;
  const float *h1d = dropped ? w->h1d : w->h1;
  memset(w->dh1d, 0, (size_t)(B * hid) * sizeof(float));
  nn_linear_backward(w->dh1d, g + m->o_w2, g + m->o_b2, w->deu, h1d, v + m->o_w2, B, hid, f);
  const float *dh1 = w->dh1d;
  if (dropped) {
    memset(w->dh1, 0, (size_t)(B * hid) * sizeof(float));
    nn_dropout_backward(w->dh1, w->dh1d, w->mask1, B * hid, c->dropout);
    dh1 = w->dh1;
  }
  memset(w->dpre, 0, (size_t)(B * hid) * sizeof(float));
  nn_relu_backward(w->dpre, dh1, w->h1, B * hid);
  nn_linear_backward(NULL, g + m->o_w1, g + m->o_b1, w->dpre, w->uf, v + m->o_w1, B, P, hid);

  /* the regulariser (urm_reg) */
  for (int64_t t = 0; t < nn_params_count(m->params); t++) {
    const nn_param_entry *e = nn_params_entry(m->params, t);
    if (e->n == 0) continue;
    const double coef = urm_reg_coef(m, e);
    if (coef == 0.0) continue;
    const float s = (float)(2.0 * coef * (double)dloss);
    for (int64_t i = 0; i < e->n; i++) g[e->offset + i] += s * v[e->offset + i];
  }
}

/* ---------------------------------------------------------------- inference */

static float urm_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* user_ids, or user_features when user_ids is NULL. */
static void urm_click_probs(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *user_ids,
                            const float *user_features, const int32_t *histories,
                            const int32_t *slates, float *out_p) {
  urm_set_users(m, w, B, user_ids, user_features);
  urm_forward_core(m, w, B, histories, slates, 0, 0);
  for (int64_t i = 0; i < B * m->cfg.slate_size; i++) out_p[i] = urm_sigmoid(w->logits[i]);
}

void sim_urm_click_probs(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *user_ids,
                         const int32_t *histories, const int32_t *slates, float *out_p) {
  urm_click_probs(m, w, B, user_ids, NULL, histories, slates, out_p);
}

void sim_urm_click_probs_features(const sim_urm *m, sim_urm_work *w, int64_t B,
                                  const float *user_features, const int32_t *histories,
                                  const int32_t *slates, float *out_p) {
  urm_click_probs(m, w, B, NULL, user_features, histories, slates, out_p);
}

static void urm_user_context(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *user_ids,
                             const float *user_features, const int32_t *histories, float *out_c) {
  urm_set_users(m, w, B, user_ids, user_features);
  urm_context_forward(m, w, B, histories, 0, 0);
  memcpy(out_c, w->c, (size_t)(B * m->cfg.f) * sizeof(float));
}

void sim_urm_user_context(const sim_urm *m, sim_urm_work *w, int64_t B, const int32_t *user_ids,
                          const int32_t *histories, float *out_c) {
  urm_user_context(m, w, B, user_ids, NULL, histories, out_c);
}

void sim_urm_user_context_features(const sim_urm *m, sim_urm_work *w, int64_t B,
                                   const float *user_features, const int32_t *histories,
                                   float *out_c) {
  urm_user_context(m, w, B, NULL, user_features, histories, out_c);
}

void sim_urm_item_vectors(const sim_urm *m, float *out) {
  const float *v = nn_params_values(m->params);
  const int64_t N1 = m->cfg.n_items + 1, D = m->cfg.item_dim, f = m->cfg.f;
  nn_linear_forward(out, m->data->item_features, v + m->o_wp, v + m->o_bp, N1, D, f);
  if (m->o_emb >= 0)
    for (int64_t i = 0; i < N1 * f; i++) out[i] += v[m->o_emb + i];
}
