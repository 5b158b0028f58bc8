/* agent_hsrl_net.c: see agent_hsrl_net.h (method.md §6-8).
 *
 * Forward order (train or inference):
 *   c_0 = s = the encoder's state (agent_encoder_forward)
 *   per level: logits_l = W_l c_in + b_l; pi_l, logp_l; res_l = c_l - pi_l E_l; c_{l+1} = LN_l(res_l)
 *   critic: v = mlp(c_0..c_{n_ctx-1}) as n_ctx * B rows; V = sum_j softmax(w)_j v_j.
 * Backward mirrors it: critic first (it adds into every context's gradient), then the levels from
 * the last to the first (level l's context gradient is complete once level l has been processed,
 * since only level l and the critic read c_{l+1}), then the encoder (agent_encoder_backward).
 *
 * Gradient of the actor terms w.r.t. the logits of level l, for one row (p = pi_l, u = logits/tau):
 *   loss terms through log p (pg, bc): g = d/dlogp;  dlogp/du: g - p sum(g)
 *   through p (the expected embedding e_l = p E_l): dpi;  dp/du: p (dpi - sum(p dpi))
 *   entropy term c * sum_v p log p:  c p (log p - sum_v p log p)
 *   and d/dlogits = (1/tau) d/du. */
#include "learner/agents/agent_hsrl_net.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/nn/nn_gemm.h"
#include "common/nn/nn_layernorm.h"
#include "common/nn/nn_linear.h"
#include "common/nn/nn_softmax.h"

/* Purposes of the dropout keys derived from the caller's key (the encoder derives its own from
 * the one it gets). */
enum { KEY_ENCODER = 1, KEY_CRITIC = 2 };

/* ---- parameter tables ---------------------------------------------------------------------- */

static int64_t add_named(nn_params *p, const char *prefix, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Adds prefix/<fmt...> with shape (d0) when d1 == 0, else (d0, d1). */
static int64_t add_named(nn_params *p, const char *prefix, int64_t d0, int64_t d1, const char *fmt, ...) {
  char tail[NN_PARAMS_NAME_MAX], name[NN_PARAMS_NAME_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tail, sizeof tail, fmt, ap);
  va_end(ap);
  int len = snprintf(name, sizeof name, "%s/%s", prefix, tail);
  HSRL_CHECKF(len > 0 && len < (int)sizeof name, "parameter name too long: %s/%s", prefix, tail);
  return d1 == 0 ? nn_params_add1(p, name, d0) : nn_params_add2(p, name, d0, d1);
}

/* The heads' tensors, after the encoder's. */
static void heads_add(const agent_hsrl_net_config *c, nn_params *p, const char *prefix,
                      agent_hsrl_actor_layout *lay) {
  const int64_t d = c->enc.d;
  for (int l = 0; l < c->n_levels; l++) {
    lay->head_w[l] = add_named(p, prefix, c->vocab[l], d, "heads/level%d/w", l);
    lay->head_b[l] = add_named(p, prefix, c->vocab[l], 0, "heads/level%d/b", l);
    lay->tok_emb[l] = add_named(p, prefix, c->vocab[l], d, "heads/level%d/emb", l);
    lay->res_g[l] = add_named(p, prefix, d, 0, "heads/level%d/ln/gamma", l);
    lay->res_b[l] = add_named(p, prefix, d, 0, "heads/level%d/ln/beta", l);
  }
}

/* "<prefix>/enc" into buf (NN_PARAMS_NAME_MAX bytes). */
static const char *enc_prefix(char *buf, const char *prefix) {
  int len = snprintf(buf, NN_PARAMS_NAME_MAX, "%s/enc", prefix);
  HSRL_CHECKF(len > 0 && len < NN_PARAMS_NAME_MAX, "parameter prefix too long: %s", prefix);
  return buf;
}

nn_params *agent_hsrl_net_actor_table(const agent_hsrl_net_config *c, const char *prefix,
                                      agent_hsrl_actor_layout *lay) {
  char ep[NN_PARAMS_NAME_MAX];
  nn_params *p = nn_params_init(64);
  memset(lay, -1, sizeof *lay); /* every offset -1 (absent) until placed */
  agent_encoder_register(&c->enc, p, enc_prefix(ep, prefix));
  heads_add(c, p, prefix, lay);
  nn_params_finalize(p);
  return p;
}

/* 1 when nn_mlp's packed layout equals the aligned layout of its tensors added one by one: every
 * tensor but the last has a multiple of NN_PARAMS_ALIGN elements. */
static int mlp_layout_named(const nn_mlp_config *m) {
  for (int l = 0; l <= m->n_hidden; l++) {
    nn_mlp_layer v = nn_mlp_layer_at(m, l);
    if ((v.out_dim * v.in_dim) % NN_PARAMS_ALIGN) return 0;
    if (l < m->n_hidden && v.out_dim % NN_PARAMS_ALIGN) return 0;
  }
  return 1;
}

nn_params *agent_hsrl_net_critic_table(const agent_hsrl_net_config *c, const char *prefix,
                                       agent_hsrl_critic_layout *lay) {
  const nn_mlp_config *m = &c->critic;
  nn_params *p = nn_params_init(16);
  if (mlp_layout_named(m)) {
    lay->mlp = -1;
    for (int l = 0; l <= m->n_hidden; l++) {
      nn_mlp_layer v = nn_mlp_layer_at(m, l);
      int last = l == m->n_hidden;
      char layer[32];
      if (last)
        snprintf(layer, sizeof layer, "out");
      else
        snprintf(layer, sizeof layer, "layer%d", l);
      int64_t o_w = add_named(p, prefix, v.out_dim, v.in_dim, "mlp/%s/w", layer);
      if (l == 0) lay->mlp = o_w;
      int64_t o_b = add_named(p, prefix, v.out_dim, 0, "mlp/%s/b", layer);
      HSRL_CHECK(o_w - lay->mlp == v.w && o_b - lay->mlp == v.b);
      if (!last) {
        int64_t o_g = add_named(p, prefix, v.out_dim, 0, "mlp/%s/gamma", layer);
        int64_t o_be = add_named(p, prefix, v.out_dim, 0, "mlp/%s/beta", layer);
        HSRL_CHECK(o_g - lay->mlp == v.gamma && o_be - lay->mlp == v.beta);
      }
    }
  } else {
    lay->mlp = add_named(p, prefix, nn_mlp_n_params(m), 0, "mlp/params");
  }
  lay->level_w = add_named(p, prefix, c->n_levels + 1, 0, "level_w");
  nn_params_finalize(p);
  return p;
}

static void fill_uniform(float *x, int64_t n, double bound, hsrl_rng *rng) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)(bound * (2.0 * (double)hsrl_rng_uniform(rng) - 1.0));
}
static void fill_normal(float *x, int64_t n, double sd, hsrl_rng *rng) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)(sd * hsrl_rng_normal(rng));
}
static void fill_const(float *x, int64_t n, float v) {
  for (int64_t i = 0; i < n; i++) x[i] = v;
}

void agent_hsrl_net_actor_init(float *values, const agent_hsrl_net *n, hsrl_rng *rng) {
  const agent_hsrl_net_config *c = &n->cfg;
  const agent_hsrl_actor_layout *a = &n->al;
  const int64_t d = c->enc.d;
  agent_encoder_init_params(n->enc, values, rng);
  double bh = 1.0 / sqrt((double)d);
  for (int l = 0; l < c->n_levels; l++) {
    fill_uniform(values + a->head_w[l], c->vocab[l] * d, bh, rng);
    fill_uniform(values + a->head_b[l], c->vocab[l], bh, rng);
    fill_normal(values + a->tok_emb[l], c->vocab[l] * d, 1.0, rng);
    fill_const(values + a->res_g[l], d, 1.0f);
    fill_const(values + a->res_b[l], d, 0.0f);
  }
}

void agent_hsrl_net_critic_init(float *values, const agent_hsrl_net *n, hsrl_rng *rng) {
  nn_mlp_init(values + n->cl.mlp, &n->cfg.critic, rng);
  fill_const(values + n->cl.level_w, n->cfg.n_levels + 1, 0.0f);
}

/* ---- workspace ---------------------------------------------------------------------------- */

/* "Size then place": the first pass (base NULL) sums the sizes, the second carves. */
typedef struct carver {
  char *base;
  size_t off;
} carver;

static void *carve(carver *cv, int64_t n_bytes) {
  HSRL_CHECK(n_bytes >= 0);
  void *p = cv->base ? cv->base + cv->off : NULL;
  cv->off += ((size_t)n_bytes + 63) / 64 * 64;
  return p;
}
#define CARVE_F(cv, n) ((float *)carve((cv), (int64_t)(n) * (int64_t)sizeof(float)))

static void carve_all(agent_hsrl_net *n, carver *cv) {
  const agent_hsrl_net_config *c = &n->cfg;
  const int64_t Bm = c->max_batch, d = c->enc.d, L = c->n_levels;
  n->ctx = CARVE_F(cv, (L + 1) * Bm * d);
  n->res = CARVE_F(cv, L * Bm * d);
  n->res_mean = CARVE_F(cv, L * Bm);
  n->res_rstd = CARVE_F(cv, L * Bm);
  n->logits = CARVE_F(cv, Bm * n->v_sum);
  n->pi = CARVE_F(cv, Bm * n->v_sum);
  n->logp = CARVE_F(cv, Bm * n->v_sum);
  n->mlp_cache = CARVE_F(cv, nn_mlp_cache_floats(&c->critic, n->n_ctx * Bm));
  n->v = CARVE_F(cv, n->n_ctx * Bm);
  n->value = CARVE_F(cv, Bm);
  if (!n->with_backward) return;
  n->dctx = CARVE_F(cv, (L + 1) * Bm * d);
  n->dres = CARVE_F(cv, Bm * d);
  n->dlogits = CARVE_F(cv, Bm * n->v_max);
  n->dpi = CARVE_F(cv, Bm * n->v_max);
  n->dv = CARVE_F(cv, n->n_ctx * Bm);
  n->rho = CARVE_F(cv, Bm * c->K);
  n->adv = CARVE_F(cv, Bm);
}

/* The encoder checks its own part (agent_encoder_init). */
static void check_config(const agent_hsrl_net_config *c) {
  HSRL_CHECK(c->K >= 1 && c->max_batch >= 1 && c->tau > 0.0f);
  HSRL_CHECKF(c->n_levels >= 1 && c->n_levels <= AGENT_MAX_LEVELS, "levels %d", c->n_levels);
  for (int l = 0; l < c->n_levels; l++) HSRL_CHECK(c->vocab[l] >= 1 && c->vocab[l] <= 65536);
  if (c->enc.sid_embedding) {
    HSRL_CHECK(c->enc.n_levels == c->n_levels);
    for (int l = 0; l < c->n_levels; l++) HSRL_CHECK(c->enc.vocab[l] == c->vocab[l]);
  }
  HSRL_CHECK(c->critic.in_dim == c->enc.d && c->critic.out_dim == 1);
}

agent_hsrl_net *agent_hsrl_net_init(const agent_hsrl_net_config *c, int with_backward) {
  check_config(c);
  agent_hsrl_net *n = hsrl_calloc(1, sizeof *n);
  n->cfg = *c;
  n->with_backward = with_backward;
  for (int l = 0; l < c->n_levels; l++) {
    n->level_off[l] = n->v_sum;
    n->v_sum += c->vocab[l];
    if (c->vocab[l] > n->v_max) n->v_max = c->vocab[l];
  }
  n->n_ctx = c->mlc && c->hierarchy ? c->n_levels + 1 : 1;
  /* the encoder, and the layouts (the tables are the agent's): built as agent_hsrl_net_actor_table
   * does, so the encoder's offsets hold in every actor table */
  nn_params *pa = nn_params_init(64);
  n->enc = with_backward ? agent_encoder_init(&c->enc, pa, "a/enc", c->max_batch)
                         : agent_encoder_init_inference(&c->enc, pa, "a/enc", c->max_batch);
  memset(&n->al, -1, sizeof n->al);
  heads_add(c, pa, "a", &n->al);
  nn_params *pc = agent_hsrl_net_critic_table(c, "c", &n->cl);
  nn_params_free(pa);
  nn_params_free(pc);
  carver cv = {NULL, 0};
  carve_all(n, &cv);
  n->mem = hsrl_alloc_aligned(cv.off);
  cv.base = n->mem;
  cv.off = 0;
  carve_all(n, &cv);
  return n;
}

void agent_hsrl_net_free(agent_hsrl_net *n) {
  if (!n) return;
  agent_encoder_free(n->enc);
  hsrl_free(n->mem);
  hsrl_free(n);
}

void agent_hsrl_net_set_tables(agent_hsrl_net *n, int64_t n_items, const float *item_features,
                               const uint16_t *item_tokens, int64_t n_users, const float *user_features) {
  agent_encoder_set_tables(n->enc, n_items, item_features, item_tokens, n_users, user_features);
  n->cfg.enc = *agent_encoder_get_config(n->enc);
}

/* ---- forward ------------------------------------------------------------------------------ */

/* c_{l+1} is computed when a head or the critic reads it: always below the last level, and for the
 * last level (c_L) only when the critic is the MLC. */
static int level_feeds_context(const agent_hsrl_net *n, int l) {
  return l < n->cfg.n_levels - 1 || n->n_ctx > 1;
}

static void heads_forward(agent_hsrl_net *n, const float *P, int64_t B) {
  const agent_hsrl_net_config *c = &n->cfg;
  const agent_hsrl_actor_layout *a = &n->al;
  const int64_t d = c->enc.d, Bd = B * d;
  for (int l = 0; l < c->n_levels; l++) {
    const int64_t V = c->vocab[l], o = B * n->level_off[l];
    const float *cin = c->hierarchy ? n->ctx + l * Bd : n->ctx;
    nn_linear_forward(n->logits + o, cin, P + a->head_w[l], P + a->head_b[l], B, d, V);
    nn_softmax_forward(n->pi + o, n->logits + o, B, V, c->tau);
    nn_log_softmax_forward(n->logp + o, n->logits + o, B, V, c->tau);
    if (!c->hierarchy || !level_feeds_context(n, l)) continue;
    float *r = n->res + l * Bd;
    memcpy(r, n->ctx + l * Bd, (size_t)Bd * sizeof(float));
    nn_gemm(0, 0, B, d, V, -1.0f, n->pi + o, V, P + a->tok_emb[l], d, 1.0f, r, d); /* c_l - pi_l E_l */
    nn_layernorm_forward(n->ctx + (l + 1) * Bd, n->res_mean + l * B, n->res_rstd + l * B, r,
                         P + a->res_g[l], P + a->res_b[l], B, d);
  }
}

void agent_hsrl_net_actor_forward(agent_hsrl_net *n, const float *actor, int64_t B, const int32_t *users,
                                  const int32_t *history, int train, uint64_t key) {
  HSRL_CHECKF(B >= 1 && B <= n->cfg.max_batch, "batch %lld, the agent was sized for %lld", (long long)B,
              (long long)n->cfg.max_batch);
  n->B = B;
  agent_encoder_forward(n->enc, actor, B, users, history, train, hsrl_rng_derive(key, KEY_ENCODER), n->ctx);
  heads_forward(n, actor, B);
}

void agent_hsrl_net_level_weights(const agent_hsrl_net *n, const float *critic, double *w) {
  if (n->n_ctx == 1) {
    w[0] = 1.0;
    return;
  }
  const float *lw = critic + n->cl.level_w;
  double m = -INFINITY, z = 0.0;
  for (int j = 0; j < n->n_ctx; j++) m = fmax(m, (double)lw[j]);
  for (int j = 0; j < n->n_ctx; j++) z += (w[j] = exp((double)lw[j] - m));
  for (int j = 0; j < n->n_ctx; j++) w[j] /= z;
}

void agent_hsrl_net_critic_forward(agent_hsrl_net *n, const float *critic, int train, uint64_t key) {
  const int64_t B = n->B;
  nn_mlp_forward(n->v, n->mlp_cache, critic + n->cl.mlp, n->ctx, n->n_ctx * B, &n->cfg.critic, train,
                 hsrl_rng_derive(key, KEY_CRITIC), 0);
  double w[AGENT_MAX_LEVELS + 1];
  agent_hsrl_net_level_weights(n, critic, w);
  for (int64_t b = 0; b < B; b++) {
    double s = 0.0;
    for (int j = 0; j < n->n_ctx; j++) s += w[j] * (double)n->v[j * B + b];
    n->value[b] = (float)s;
  }
}

/* ---- loss and backward -------------------------------------------------------------------- */

static int slot_valid(const agent_batch *b, int64_t row, int64_t k, int64_t K) {
  return b->slate == NULL || b->slate[row * K + k] != 0;
}

/* A = clip(y - V, -1, 1) (method.md §8), or y - V standardised over the batch. No gradient. */
static void advantages(float *a, const float *y, const float *v, int64_t B, int normalise) {
  if (!normalise) {
    for (int64_t r = 0; r < B; r++) a[r] = (float)fmin(1.0, fmax(-1.0, (double)y[r] - (double)v[r]));
    return;
  }
  double m = 0.0, ss = 0.0;
  for (int64_t r = 0; r < B; r++) m += (double)y[r] - (double)v[r];
  m /= (double)B;
  for (int64_t r = 0; r < B; r++) {
    const double e = (double)y[r] - (double)v[r] - m;
    ss += e * e;
  }
  const double inv_sd = 1.0 / (sqrt(ss / (double)B) + 1e-6);
  for (int64_t r = 0; r < B; r++) a[r] = (float)(((double)y[r] - (double)v[r] - m) * inv_sd);
}

double agent_hsrl_net_loss(agent_hsrl_net *n, nn_params *actor, nn_params *critic, const agent_batch *b,
                           const float *y, const float *adv, float *adv_out, const agent_hsrl_loss_config *lc,
                           int train, uint64_t key, agent_hsrl_terms *terms) {
  HSRL_CHECK(n->with_backward);
  HSRL_CHECK(b->tokens != NULL && b->history != NULL && y != NULL);
  const agent_hsrl_net_config *c = &n->cfg;
  const agent_hsrl_actor_layout *a = &n->al;
  const int64_t B = b->B, K = c->K, d = c->enc.d, Bd = B * d;
  const int L = c->n_levels;
  const float *PA = nn_params_values(actor), *PC = nn_params_values(critic);
  float *GA = nn_params_grads(actor), *GC = nn_params_grads(critic);
  nn_params_zero_grads(actor);
  nn_params_zero_grads(critic);

  agent_hsrl_net_actor_forward(n, PA, B, b->users, b->history, train, key);
  agent_hsrl_net_critic_forward(n, PC, train, key);

  /* critic term, advantages */
  agent_hsrl_terms t;
  memset(&t, 0, sizeof t);
  double w[AGENT_MAX_LEVELS + 1];
  agent_hsrl_net_level_weights(n, PC, w);
  const int nc = n->n_ctx;
  double sum_a = 0.0, sum_v = 0.0, sum_y = 0.0;
  double gw[AGENT_MAX_LEVELS + 1] = {0};
  if (!adv) advantages(n->adv, y, n->value, B, lc->normalise_advantage);
  for (int64_t r = 0; r < B; r++) {
    const double V = (double)n->value[r], diff = V - (double)y[r];
    t.critic += diff * diff;
    const double A = adv ? (double)adv[r] : (double)n->adv[r];
    if (adv_out) adv_out[r] = (float)A;
    n->adv[r] = (float)A;
    sum_a += A, sum_v += V, sum_y += (double)y[r];
    const double dV = (double)lc->scale[0] * 2.0 * diff / (double)B;
    for (int j = 0; j < nc; j++) {
      n->dv[j * B + r] = (float)(w[j] * dV);
      if (nc > 1) gw[j] += dV * w[j] * ((double)n->v[j * B + r] - V);
    }
  }
  t.critic /= (double)B;
  t.advantage = sum_a / (double)B, t.value = sum_v / (double)B, t.td_target = sum_y / (double)B;
  if (nc > 1)
    for (int j = 0; j < nc; j++) GC[n->cl.level_w + j] += (float)gw[j];
  memset(n->dctx, 0, (size_t)((L + 1) * Bd) * sizeof(float));
  nn_mlp_backward(lc->critic_to_actor ? n->dctx : NULL, GC + n->cl.mlp, n->mlp_cache, n->dv, PC + n->cl.mlp,
                  n->ctx, nc * B, &c->critic, train);

  /* importance weights (no gradient), pg and bc values */
  for (int64_t r = 0; r < B; r++) {
    int64_t nv = 0;
    double n_click = 0.0, pg_r = 0.0, bc_r = 0.0;
    for (int64_t k = 0; k < K; k++)
      if (slot_valid(b, r, k, K)) nv++, n_click += b->clicks ? (double)b->clicks[r * K + k] : 0.0;
    const double click_rate = nv > 0 ? n_click / (double)nv : 0.0;
    for (int64_t k = 0; k < K; k++) {
      if (!slot_valid(b, r, k, K)) continue;
      const uint16_t *z = b->tokens + (r * K + k) * L;
      double lp = 0.0;
      for (int l = 0; l < L; l++) {
        HSRL_CHECKF(z[l] < c->vocab[l], "row %lld slot %lld: token %d of level %d outside the vocabulary %lld",
                    (long long)r, (long long)k, (int)z[l], l, (long long)c->vocab[l]);
        lp += (double)n->logp[B * n->level_off[l] + r * c->vocab[l] + z[l]];
      }
      double rho = 1.0;
      if (lc->off_policy && b->behaviour_logp) {
        double beh = 0.0;
        for (int l = 0; l < L; l++) beh += (double)b->behaviour_logp[(r * K + k) * L + l];
        rho = fmin(1.0, exp(lp - beh));
      }
      const double yk = b->clicks ? (double)b->clicks[r * K + k] : 0.0;
      const double ak = (double)n->adv[r] + (lc->click_credit ? yk - click_rate : 0.0);
      n->rho[r * K + k] = (float)(rho * ak);
      pg_r += rho * ak * -lp;
      bc_r += yk * -lp;
    }
    if (nv > 0) t.pg += pg_r / (double)nv;
    t.bc += bc_r / fmax(1.0, n_click);
  }
  t.pg /= (double)B;
  t.bc /= (double)B;

  /* the levels, last first */
  const double ent_c = (double)lc->scale[2] * (double)lc->lambda_h / (double)B;
  const double inv_tau = 1.0 / (double)c->tau;
  for (int l = L - 1; l >= 0; l--) {
    const int64_t V = c->vocab[l], o = B * n->level_off[l];
    const float *pi = n->pi + o, *lp = n->logp + o;
    float *g = n->dlogits, *dpi = n->dpi;
    memset(g, 0, (size_t)(B * V) * sizeof(float));
    /* pg and bc through log pi_l[z_l] */
    for (int64_t r = 0; r < B; r++) {
      int64_t nv = 0;
      double n_click = 0.0;
      for (int64_t k = 0; k < K; k++)
        if (slot_valid(b, r, k, K)) nv++, n_click += b->clicks ? (double)b->clicks[r * K + k] : 0.0;
      if (nv == 0) continue;
      const double cpg = -(double)lc->scale[1] / ((double)B * (double)nv);
      const double cbc = -(double)lc->scale[3] * (double)lc->lambda_bc / ((double)B * fmax(1.0, n_click));
      for (int64_t k = 0; k < K; k++) {
        if (!slot_valid(b, r, k, K)) continue;
        double yk = b->clicks ? (double)b->clicks[r * K + k] : 0.0;
        g[r * V + b->tokens[(r * K + k) * L + l]] += (float)(cpg * (double)n->rho[r * K + k] + cbc * yk);
      }
    }
    /* through pi_l: e_l = pi_l E_l, res_l = c_l - e_l, c_{l+1} = LN_l(res_l) */
    const int via_pi = c->hierarchy && level_feeds_context(n, l);
    if (via_pi) {
      float *dr = n->dres;
      memset(dr, 0, (size_t)Bd * sizeof(float));
      nn_layernorm_backward(dr, GA + a->res_g[l], GA + a->res_b[l], n->dctx + (l + 1) * Bd, n->res + l * Bd,
                            n->res_mean + l * B, n->res_rstd + l * B, PA + a->res_g[l], B, d);
      float *dc = n->dctx + l * Bd;
      for (int64_t i = 0; i < Bd; i++) dc[i] += dr[i];
      nn_gemm(0, 1, B, V, d, -1.0f, dr, d, PA + a->tok_emb[l], d, 0.0f, dpi, V); /* dpi = -dres E^T */
      nn_gemm(1, 0, V, d, B, -1.0f, pi, V, dr, d, 1.0f, GA + a->tok_emb[l], d); /* dE -= pi^T dres */
    }
    /* entropy term value */
    for (int64_t r = 0; r < B; r++) {
      const float *p = pi + r * V, *q = lp + r * V;
      double ne = 0.0, sg = 0.0, spd = 0.0;
      for (int64_t v = 0; v < V; v++) ne += (double)p[v] * (double)q[v];
      t.negent += ne;
      float *gr = g + r * V;
      for (int64_t v = 0; v < V; v++) sg += (double)gr[v];
      if (via_pi)
        for (int64_t v = 0; v < V; v++) spd += (double)p[v] * (double)dpi[r * V + v];
      for (int64_t v = 0; v < V; v++) {
        double pv = (double)p[v];
        double du = (double)gr[v] - pv * sg + ent_c * pv * ((double)q[v] - ne);
        if (via_pi) du += pv * ((double)dpi[r * V + v] - spd);
        gr[v] = (float)(inv_tau * du);
      }
    }
    const float *cin = c->hierarchy ? n->ctx + l * Bd : n->ctx;
    float *dcin = c->hierarchy ? n->dctx + l * Bd : n->dctx;
    nn_linear_backward(dcin, GA + a->head_w[l], GA + a->head_b[l], g, cin, PA + a->head_w[l], B, d, V);
  }
  t.negent /= (double)B;
  t.entropy = -t.negent;

  agent_encoder_backward(n->enc, GA, PA, n->dctx); /* dctx[0] = dL/ds */

  if (terms) *terms = t;
  return (double)lc->scale[0] * t.critic + (double)lc->scale[1] * t.pg +
         (double)lc->scale[2] * (double)lc->lambda_h * t.negent + (double)lc->scale[3] * (double)lc->lambda_bc * t.bc;
}
