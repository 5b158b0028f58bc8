/* agent_encoder.c: the SASRec state encoder (see agent_encoder.h; method.md section 6).
 *
 * Forward over the n kept history positions (see below):
 *   gather  = x[h]                         (n, D)    features of every kept history item
 *   e       = Drop(phi(h) + pos)           (n, d)    in place; phi(h) + pos when p = 0
 *   x0      = LN(e)                        (n, d)
 *   h_k     = layer_k(h_{k-1})             (n, d) for k < layers-1; the top layer: (B, d)
 *   s       = top [+ user_proj(u)]
 * The backward mirrors it with two (n, d) buffers used in turn.
 *
 * Kept positions: a history's left padding is never read. Padding keys are masked in every
 * layer, a padding query sees only padding (causal mask) and only the top layer's last position
 * becomes the state, so the outputs of left-padding positions are unused at every level. The
 * encoder therefore computes only the positions from the first item of each history on (and the
 * last position of an empty history, whose state the top layer still computes): rows are packed
 * per state (nn_transformer_forward_packed), so the item vectors, dropout masks, norms,
 * projections, FFN and attention of left padding cost nothing. Positions, masks and dropout
 * counters stay those of the full (B, H) computation; results equal it up to the order of float
 * sums (attention sums start at the first item; weight gradients sum fewer, zero, rows).
 *
 * Speed: the position add and the embedding dropout are one pass, its mask drawn piece by piece
 * (nn_dropout_piece) right before the piece is used, so that the mask bytes are read from
 * L1; the backward applies the mask in place. The row loops are written in fixed blocks with
 * restrict pointers so that GCC vectorises them at -O2 (a plain "row[i] += pos[i]" stays scalar:
 * the pointers may alias). */
#include "learner/agents/agent_encoder.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/nn/nn_dropout.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_mha.h"
#include "common/nn/nn_transformer.h"

struct agent_encoder {
  agent_encoder_config cfg;
  int64_t max_batch;
  int with_backward;
  /* tensor offsets in the table */
  int64_t o_map_w, o_map_b, o_id, o_pos, o_sid[AGENT_MAX_LEVELS], o_ln_g, o_ln_b;
  int64_t o_layer[AGENT_ENCODER_MAX_LAYERS];
  int64_t o_user_w, o_user_b;
  void *mem;                   /* the one allocation all the buffers below live in */
  /* the last forward */
  int64_t B;
  float p;                     /* dropout it used */
  int32_t *ids;                /* (mb * H) */
  uint8_t *pad;                /* (mb * H) 1 = padding */
  int64_t *rows;               /* (mb + 1) kept rows of the states: rows[b].. (packed layout) */
  int64_t n_rows;              /* rows[B] */
  int32_t *kept_ids;           /* (mb * H) the ids of the kept positions, packed */
  float *gather;               /* (mb * H, D) */
  float *e, *x0;               /* (mb * H, d) e = Drop(phi + pos) (the LayerNorm input), LN(e) */
  uint8_t *emask;              /* (mb * H * d) */
  float *mean, *rstd;          /* (mb * H) */
  float *h[AGENT_ENCODER_MAX_LAYERS]; /* outputs of layers 0..layers-2 (mb * H, d) */
  float *top;                  /* (mb, d) the top layer's last position */
  float *cache[AGENT_ENCODER_MAX_LAYERS];
  float *user_feat;            /* (mb, P) (user_state) */
  float *user_out;             /* (mb, d) user_proj(u) (user_state) */
  /* backward (with_backward) */
  float *scratch;
  float *d_a, *d_b;            /* (mb * H, d) */
};

agent_encoder_config agent_encoder_config_make(const hsrl_settings_agent *s, int64_t n_items,
                                               int64_t item_dim, const float *item_features,
                                               int64_t n_users, int64_t user_dim,
                                               const float *user_features, int64_t history_len) {
  agent_encoder_config c;
  memset(&c, 0, sizeof c);
  c.n_items = n_items, c.item_dim = item_dim, c.item_features = item_features;
  c.n_users = n_users, c.user_dim = user_dim, c.user_features = user_features;
  c.history_len = history_len;
  c.d = s->d, c.layers = s->layers, c.heads = s->heads, c.ffn = s->ffn;
  c.dropout = (float)s->dropout;
  c.user_state = s->user_state ? 1 : 0;
  c.sid_embedding = s->sid_embedding ? 1 : 0;
  return c;
}

static void enc_check_config(const agent_encoder_config *c) {
  HSRL_CHECKF(c->n_items >= 1 && c->item_dim >= 1 && c->history_len >= 1, "encoder sizes");
  HSRL_CHECKF(c->d >= 1 && c->heads >= 1 && c->d % c->heads == 0, "heads %lld must divide d %lld",
              (long long)c->heads, (long long)c->d);
  HSRL_CHECKF(c->layers >= 1 && c->layers <= AGENT_ENCODER_MAX_LAYERS, "layers %lld",
              (long long)c->layers);
  HSRL_CHECK(c->ffn >= 1 && c->dropout >= 0.0f && c->dropout < 1.0f);
  HSRL_CHECK(c->item_features != NULL);
  if (c->user_state) HSRL_CHECK(c->user_features != NULL && c->user_dim >= 1 && c->n_users >= 1);
  if (c->sid_embedding) {
    HSRL_CHECK(c->sid_tokens != NULL && c->n_levels >= 1 && c->n_levels <= AGENT_MAX_LEVELS);
    for (int l = 0; l < c->n_levels; l++) HSRL_CHECK(c->vocab[l] >= 1);
    for (int64_t i = 1; i <= c->n_items; i++)
      for (int l = 0; l < c->n_levels; l++)
        HSRL_CHECKF(c->sid_tokens[i * c->n_levels + l] < c->vocab[l],
                    "item %lld level %d token %u >= vocab %lld", (long long)i, l,
                    (unsigned)c->sid_tokens[i * c->n_levels + l], (long long)c->vocab[l]);
  }
}

static const char *enc_name(char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fmt... into name (NN_PARAMS_NAME_MAX bytes); a longer name is a bug. */
static const char *enc_name(char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(name, NN_PARAMS_NAME_MAX, fmt, ap);
  va_end(ap);
  HSRL_CHECKF(len > 0 && len < NN_PARAMS_NAME_MAX, "parameter name too long: %s...", name);
  return name;
}

/* Adds every tensor; fills the offsets of e when e is not NULL. */
static int64_t enc_add(const agent_encoder_config *c, nn_params *p, const char *prefix,
                       agent_encoder *e) {
  char name[NN_PARAMS_NAME_MAX];
  const int64_t d = c->d;
#define ENC_NAME(...) enc_name(name, __VA_ARGS__)
  int64_t first = nn_params_add2(p, ENC_NAME("%s/item_map/w", prefix), d, c->item_dim);
  int64_t o_map_b = nn_params_add1(p, ENC_NAME("%s/item_map/b", prefix), d);
  int64_t o_id = -1, o_sid[AGENT_MAX_LEVELS] = {-1, -1, -1, -1}, o_user_w = -1, o_user_b = -1;
  if (c->item_id_embedding)
    o_id = nn_params_add2(p, ENC_NAME("%s/item_id_emb", prefix), c->n_items + 1, d);
  int64_t o_pos = nn_params_add2(p, ENC_NAME("%s/pos_emb", prefix), c->history_len, d);
  if (c->sid_embedding)
    for (int l = 0; l < c->n_levels; l++)
      o_sid[l] = nn_params_add2(p, ENC_NAME("%s/sid_emb/level%d", prefix, l), c->vocab[l], d);
  int64_t o_ln_g = nn_params_add1(p, ENC_NAME("%s/emb_norm/gamma", prefix), d);
  int64_t o_ln_b = nn_params_add1(p, ENC_NAME("%s/emb_norm/beta", prefix), d);
  nn_transformer_tensor t[NN_TRANSFORMER_N_TENSORS];
  nn_transformer_tensors(t, d, c->ffn);
  int64_t o_layer[AGENT_ENCODER_MAX_LAYERS];
  for (int64_t k = 0; k < c->layers; k++) {
    for (int j = 0; j < NN_TRANSFORMER_N_TENSORS; j++) {
      const char *nm = ENC_NAME("%s/layer%lld/%s", prefix, (long long)k, t[j].name);
      int64_t o = t[j].cols == 1 ? nn_params_add1(p, nm, t[j].rows)
                                 : nn_params_add2(p, nm, t[j].rows, t[j].cols);
      if (j == 0) o_layer[k] = o;
      /* the table's alignment equals the layer's, so the layer's layout holds inside it */
      HSRL_CHECK(o - o_layer[k] == t[j].offset);
    }
  }
  if (c->user_state) {
    o_user_w = nn_params_add2(p, ENC_NAME("%s/user_proj/w", prefix), d, c->user_dim);
    o_user_b = nn_params_add1(p, ENC_NAME("%s/user_proj/b", prefix), d);
  }
#undef ENC_NAME
  if (e) {
    e->o_map_w = first, e->o_map_b = o_map_b, e->o_id = o_id, e->o_pos = o_pos;
    memcpy(e->o_sid, o_sid, sizeof o_sid);
    e->o_ln_g = o_ln_g, e->o_ln_b = o_ln_b;
    memcpy(e->o_layer, o_layer, sizeof(int64_t) * (size_t)c->layers);
    e->o_user_w = o_user_w, e->o_user_b = o_user_b;
  }
  return first;
}

int64_t agent_encoder_register(const agent_encoder_config *cfg, nn_params *p, const char *prefix) {
  enc_check_config(cfg);
  return enc_add(cfg, p, prefix, NULL);
}

static nn_transformer_shape enc_shape(const agent_encoder *e, int64_t B, int top) {
  const agent_encoder_config *c = &e->cfg;
  nn_transformer_shape s = {B, c->history_len, top ? 1 : c->history_len, c->d, c->ffn, c->heads};
  return s;
}

/* "Size then place": with base NULL the pass only sums the sizes; then it carves base. */
typedef struct enc_carver {
  char *base;
  size_t off;
} enc_carver;

static void *enc_carve(enc_carver *cv, int64_t n_bytes) {
  void *p = cv->base ? cv->base + cv->off : NULL;
  cv->off += ((size_t)n_bytes + 63) / 64 * 64; /* every buffer 64-byte aligned */
  return p;
}
#define ENC_CARVE_F(cv, n) ((float *)enc_carve((cv), (int64_t)(n) * (int64_t)sizeof(float)))

static void enc_place(agent_encoder *e, enc_carver *cv) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t mb = e->max_batch, d = c->d, n = mb * c->history_len;
  e->ids = enc_carve(cv, n * (int64_t)sizeof(int32_t));
  e->pad = enc_carve(cv, n);
  e->rows = enc_carve(cv, (mb + 1) * (int64_t)sizeof(int64_t));
  e->kept_ids = enc_carve(cv, n * (int64_t)sizeof(int32_t));
  e->gather = ENC_CARVE_F(cv, n * c->item_dim);
  e->e = ENC_CARVE_F(cv, n * d), e->x0 = ENC_CARVE_F(cv, n * d);
  e->emask = enc_carve(cv, n * d);
  e->mean = ENC_CARVE_F(cv, n), e->rstd = ENC_CARVE_F(cv, n);
  nn_transformer_shape full = enc_shape(e, mb, 0), top = enc_shape(e, mb, 1);
  for (int64_t k = 0; k < c->layers; k++) {
    int is_top = k == c->layers - 1;
    e->cache[k] = ENC_CARVE_F(cv, nn_transformer_cache_floats(is_top ? &top : &full));
    e->h[k] = is_top ? NULL : ENC_CARVE_F(cv, n * d);
  }
  e->top = ENC_CARVE_F(cv, mb * d);
  if (c->user_state) e->user_feat = ENC_CARVE_F(cv, mb * c->user_dim), e->user_out = ENC_CARVE_F(cv, mb * d);
  if (!e->with_backward) return;
  e->scratch = ENC_CARVE_F(cv, nn_transformer_scratch_floats(&full)); /* >= the top layer's */
  e->d_a = ENC_CARVE_F(cv, n * d), e->d_b = ENC_CARVE_F(cv, n * d);
}

static agent_encoder *enc_init(const agent_encoder_config *cfg, nn_params *p, const char *prefix,
                               int64_t max_batch, int with_backward) {
  enc_check_config(cfg);
  HSRL_CHECK(max_batch >= 1);
  agent_encoder *e = hsrl_calloc(1, sizeof *e);
  e->cfg = *cfg;
  e->max_batch = max_batch;
  e->with_backward = with_backward;
  enc_add(cfg, p, prefix, e);
  enc_carver cv = {NULL, 0};
  enc_place(e, &cv);
  e->mem = hsrl_alloc_aligned(cv.off);
  cv.base = e->mem, cv.off = 0;
  enc_place(e, &cv);
  return e;
}

agent_encoder *agent_encoder_init(const agent_encoder_config *cfg, nn_params *p, const char *prefix,
                                  int64_t max_batch) {
  return enc_init(cfg, p, prefix, max_batch, 1);
}

agent_encoder *agent_encoder_init_inference(const agent_encoder_config *cfg, nn_params *p,
                                            const char *prefix, int64_t max_batch) {
  return enc_init(cfg, p, prefix, max_batch, 0);
}

void agent_encoder_free(agent_encoder *e) {
  if (!e) return;
  hsrl_free(e->mem);
  hsrl_free(e);
}

void agent_encoder_set_tables(agent_encoder *e, int64_t n_items, const float *item_features,
                              const uint16_t *sid_tokens, int64_t n_users,
                              const float *user_features) {
  agent_encoder_config c = e->cfg;
  HSRL_CHECKF(!c.item_id_embedding || n_items == c.n_items,
              "the item-id embedding has %lld rows; the new tables have %lld items",
              (long long)(c.n_items + 1), (long long)n_items);
  c.n_items = n_items, c.item_features = item_features, c.sid_tokens = sid_tokens;
  c.n_users = n_users, c.user_features = user_features;
  enc_check_config(&c);
  e->cfg = c;
}

const agent_encoder_config *agent_encoder_get_config(const agent_encoder *e) { return &e->cfg; }
int64_t agent_encoder_max_batch(const agent_encoder *e) { return e->max_batch; }

static void enc_fill_uniform(float *x, int64_t n, double bound, hsrl_rng *r) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)((2.0 * hsrl_rng_uniform_double(r) - 1.0) * bound);
}
static void enc_fill_normal(float *x, int64_t n, double std, hsrl_rng *r) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)(hsrl_rng_normal(r) * std);
}

void agent_encoder_init_params(const agent_encoder *e, float *params, hsrl_rng *rng) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t d = c->d;
  double bd = 1.0 / sqrt((double)c->item_dim);
  enc_fill_uniform(params + e->o_map_w, d * c->item_dim, bd, rng);
  enc_fill_uniform(params + e->o_map_b, d, bd, rng);
  if (c->item_id_embedding) {
    float *t = params + e->o_id;
    memset(t, 0, (size_t)d * sizeof(float)); /* row 0: padding */
    enc_fill_normal(t + d, c->n_items * d, (double)AGENT_ENCODER_EMB_INIT_STD, rng);
  }
  enc_fill_normal(params + e->o_pos, c->history_len * d, 1.0, rng);
  if (c->sid_embedding)
    for (int l = 0; l < c->n_levels; l++)
      enc_fill_normal(params + e->o_sid[l], c->vocab[l] * d, (double)AGENT_ENCODER_EMB_INIT_STD, rng);
  for (int64_t j = 0; j < d; j++) params[e->o_ln_g + j] = 1.0f, params[e->o_ln_b + j] = 0.0f;
  for (int64_t k = 0; k < c->layers; k++) nn_transformer_init(params + e->o_layer[k], d, c->ffn, rng);
  if (c->user_state) {
    double bu = 1.0 / sqrt((double)c->user_dim);
    enc_fill_uniform(params + e->o_user_w, d * c->user_dim, bu, rng);
    enc_fill_uniform(params + e->o_user_b, d, bu, rng);
  }
}

/* out[j] += the id and SID-token embeddings of item ids[j] (ids NULL: item j); padding id 0 gets
 * none. */
static void enc_add_embeddings(const agent_encoder *e, const float *params, int64_t n,
                               const int32_t *ids, float *out) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t d = c->d;
  if (!c->item_id_embedding && !c->sid_embedding) return;
  for (int64_t j = 0; j < n; j++) {
    int64_t id = ids ? ids[j] : j;
    if (id == 0) continue;
    float *o = out + j * d;
    if (c->item_id_embedding) {
      const float *r = params + e->o_id + id * d;
      for (int64_t q = 0; q < d; q++) o[q] += r[q];
    }
    if (c->sid_embedding)
      for (int l = 0; l < c->n_levels; l++) {
        const float *r = params + e->o_sid[l] + (int64_t)c->sid_tokens[id * c->n_levels + l] * d;
        for (int64_t q = 0; q < d; q++) o[q] += r[q];
      }
  }
}

void agent_encoder_item_vectors(const agent_encoder *e, const float *params, int64_t n,
                                const int32_t *ids, float *gather, float *out) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t D = c->item_dim;
  for (int64_t j = 0; j < n; j++) {
    HSRL_CHECKF(ids[j] >= 0 && ids[j] <= c->n_items, "item id %d out of 0..%lld", (int)ids[j],
                (long long)c->n_items);
    memcpy(gather + j * D, c->item_features + (int64_t)ids[j] * D, (size_t)D * sizeof(float));
  }
  nn_linear_forward(out, gather, params + e->o_map_w, params + e->o_map_b, n, D, c->d);
  enc_add_embeddings(e, params, n, ids, out);
}

void agent_encoder_item_vectors_backward(const agent_encoder *e, float *grads, const float *params,
                                         int64_t n, const int32_t *ids, const float *gather,
                                         const float *dout) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t d = c->d;
  nn_linear_backward(NULL, grads + e->o_map_w, grads + e->o_map_b, dout, gather,
                     params + e->o_map_w, n, c->item_dim, d);
  if (!c->item_id_embedding && !c->sid_embedding) return;
  for (int64_t j = 0; j < n; j++) {
    int64_t id = ids[j];
    if (id == 0) continue;
    const float *g = dout + j * d;
    if (c->item_id_embedding) {
      float *r = grads + e->o_id + id * d;
      for (int64_t q = 0; q < d; q++) r[q] += g[q];
    }
    if (c->sid_embedding)
      for (int l = 0; l < c->n_levels; l++) {
        float *r = grads + e->o_sid[l] + (int64_t)c->sid_tokens[id * c->n_levels + l] * d;
        for (int64_t q = 0; q < d; q++) r[q] += g[q];
      }
  }
}

void agent_encoder_catalog_vectors(const agent_encoder *e, const float *params, float *out) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t n = c->n_items + 1;
  nn_linear_forward(out, c->item_features, params + e->o_map_w, params + e->o_map_b, n, c->item_dim,
                    c->d);
  enc_add_embeddings(e, params, n, NULL, out);
}

#define ENC_BLOCK 32

/* x += y */
static void enc_rows_add(float *restrict x, const float *restrict y, int64_t n) {
  int64_t i = 0;
  for (; i + ENC_BLOCK <= n; i += ENC_BLOCK)
    for (int k = 0; k < ENC_BLOCK; k++) x[i + k] += y[i + k];
  for (; i < n; i++) x[i] += y[i];
}

/* x = Drop(x + y) with the given mask bytes */
static void enc_add_dropout(float *restrict x, const float *restrict y, const uint8_t *restrict keep,
                            int64_t n, float scale) {
  int64_t i = 0;
  for (; i + ENC_BLOCK <= n; i += ENC_BLOCK)
    for (int k = 0; k < ENC_BLOCK; k++)
      x[i + k] = nn_dropout_keep_or_zero((x[i + k] + y[i + k]) * scale, keep[i + k] != 0);
  for (; i < n; i++) x[i] = keep[i] ? (x[i] + y[i]) * scale : 0.0f;
}

void agent_encoder_forward(agent_encoder *e, const float *params, int64_t B, const int32_t *users,
                           const int32_t *histories, int train, uint64_t key, float *out_s) {
  const agent_encoder_config *c = &e->cfg;
  HSRL_CHECKF(B >= 1 && B <= e->max_batch, "encoder batch %lld of at most %lld", (long long)B,
              (long long)e->max_batch);
  HSRL_CHECKF(!c->user_state || users != NULL, "the user state needs the users");
  const int64_t H = c->history_len, d = c->d;
  e->B = B;
  e->p = train ? c->dropout : 0.0f;
  memcpy(e->ids, histories, (size_t)(B * H) * sizeof(int32_t));
  for (int64_t i = 0; i < B * H; i++) e->pad[i] = (uint8_t)(e->ids[i] == 0);
  /* kept positions: from the first item on (at least the last position) */
  e->rows[0] = 0;
  for (int64_t b = 0; b < B; b++) {
    int64_t first = 0;
    while (first < H - 1 && e->pad[b * H + first]) first++;
    memcpy(e->kept_ids + e->rows[b], e->ids + b * H + first, (size_t)(H - first) * sizeof(int32_t));
    e->rows[b + 1] = e->rows[b] + H - first;
  }
  const int64_t n = e->n_rows = e->rows[B];
  agent_encoder_item_vectors(e, params, n, e->kept_ids, e->gather, e->e);
  /* e = Drop(e + pos): masks by absolute position, element (b, t, j) uses counter (b H + t) d + j */
  const float *pos = params + e->o_pos;
  const uint64_t k_emb = hsrl_rng_derive(key, 1);
  const float scale = 1.0f / (1.0f - e->p);
  for (int64_t b = 0; b < B; b++) {
    const int64_t o = e->rows[b] * d, len = (e->rows[b + 1] - e->rows[b]) * d;
    const float *pb = pos + (H * d - len); /* from the first kept position on */
    if (e->p == 0.0f) {
      enc_rows_add(e->e + o, pb, len);
      continue;
    }
    const uint64_t c0 = (uint64_t)((b + 1) * H * d - len);
    for (int64_t i = 0, m; i < len; i += m) {
      m = nn_dropout_piece(c0 + (uint64_t)i, len - i);
      nn_dropout_mask(e->emask + o + i, m, e->p, k_emb, c0 + (uint64_t)i);
      enc_add_dropout(e->e + o + i, pb + i, e->emask + o + i, m, scale);
    }
  }
  nn_layernorm_forward(e->x0, e->mean, e->rstd, e->e, params + e->o_ln_g, params + e->o_ln_b, n, d);
  nn_mha_mask mask = {1, 0, e->pad};
  const float *in = e->x0;
  for (int64_t k = 0; k < c->layers; k++) {
    int is_top = k == c->layers - 1;
    nn_transformer_shape s = enc_shape(e, B, is_top);
    float *out = is_top ? e->top : e->h[k];
    nn_transformer_forward_packed(out, e->cache[k], in, params + e->o_layer[k], &mask, e->p,
                                  hsrl_rng_derive(key, 2 + (uint64_t)k), 0, &s, e->rows);
    in = out;
  }
  memcpy(out_s, e->top, (size_t)(B * d) * sizeof(float));
  if (c->user_state) {
    const int64_t P = c->user_dim;
    for (int64_t b = 0; b < B; b++) {
      HSRL_CHECKF(users[b] >= 0 && users[b] <= c->n_users, "user id %d out of 0..%lld",
                  (int)users[b], (long long)c->n_users);
      memcpy(e->user_feat + b * P, c->user_features + (int64_t)users[b] * P, (size_t)P * sizeof(float));
    }
    nn_linear_forward(e->user_out, e->user_feat, params + e->o_user_w, params + e->o_user_b, B, P, d);
    for (int64_t i = 0; i < B * d; i++) out_s[i] += e->user_out[i];
  }
}

void agent_encoder_backward(agent_encoder *e, float *grads, const float *params, const float *ds) {
  const agent_encoder_config *c = &e->cfg;
  const int64_t B = e->B, H = c->history_len, d = c->d, n = e->n_rows;
  HSRL_CHECKF(e->with_backward, "agent_encoder_backward on an inference encoder");
  HSRL_CHECKF(B >= 1, "agent_encoder_backward before any forward");
  const size_t nd = (size_t)(n * d) * sizeof(float);
  if (c->user_state)
    nn_linear_backward(NULL, grads + e->o_user_w, grads + e->o_user_b, ds, e->user_feat,
                       params + e->o_user_w, B, c->user_dim, d);
  nn_mha_mask mask = {1, 0, e->pad};
  const float *dout = ds;
  float *bufs[2] = {e->d_a, e->d_b};
  int which = 0;
  for (int64_t k = c->layers - 1; k >= 0; k--) {
    int is_top = k == c->layers - 1;
    nn_transformer_shape s = enc_shape(e, B, is_top);
    const float *in = k == 0 ? e->x0 : e->h[k - 1];
    float *din = bufs[which];
    memset(din, 0, nd);
    nn_transformer_backward_packed(din, grads + e->o_layer[k], e->scratch, dout, e->cache[k], in,
                                   params + e->o_layer[k], &mask, e->p, &s, e->rows);
    dout = din;
    which ^= 1;
  }
  /* dout = d x0 (in bufs[which ^ 1]); LayerNorm into the other buffer, the dropout backward in
   * place */
  float *de = bufs[which];
  nn_layernorm_backward_set(de, grads + e->o_ln_g, grads + e->o_ln_b, dout, e->e, e->mean, e->rstd,
                            params + e->o_ln_g, n, d);
  if (e->p > 0.0f) nn_dropout_apply(de, de, e->emask, n * d, e->p);
  float *dpos = grads + e->o_pos;
  for (int64_t b = 0; b < B; b++) {
    const int64_t len = (e->rows[b + 1] - e->rows[b]) * d;
    enc_rows_add(dpos + (H * d - len), de + e->rows[b] * d, len);
  }
  agent_encoder_item_vectors_backward(e, grads, params, n, e->kept_ids, e->gather, de);
}
