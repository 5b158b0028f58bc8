/* agent_hsrl.c: see agent_hsrl.h (method.md §6-8): the agent.h vtable of HSRL (act, learn,
 * checkpoints, policy parameters) over the networks of agent_hsrl_net.c. */
#include "learner/agents/agent_hsrl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/nn/nn_softmax.h"
#include "common/nn/nn_update.h"
#include "learner/agents/agent_hsrl_diverse.h"
#include "sim/sim_sid_decode.h"

/* Purposes of the random streams derived from the seed. */
enum { PURPOSE_ACTOR_INIT = 0x41435452, PURPOSE_CRITIC_INIT = 0x43524954, PURPOSE_DROPOUT = 0x44524f50 };

typedef struct agent_hsrl {
  agent base; /* first: an agent_hsrl * is an agent * */
  agent_hsrl_config cfg;
  agent_hsrl_world world;
  agent_hsrl_net *net;
  nn_params *tab[4]; /* agent_hsrl_table order; only tab[0] when act_only */
  nn_adam_config adam_actor, adam_critic;
  agent_hsrl_loss_config lc;
  sim_sid_decode_ws ws;
  agent_hsrl_diverse_ws diverse; /* agent.prefix_cap > 0 */
  int64_t n_updates;
  uint64_t key_base;
  float *y;         /* (max_batch) TD targets */
  int32_t *hist_c;  /* (max_batch, H) next histories of the rows that bootstrap */
  int32_t *users_c; /* (max_batch) */
  int64_t *rows_c;  /* (max_batch) */
} agent_hsrl;

static agent_hsrl *as_hsrl(agent *a) {
  HSRL_CHECK(a != NULL && a->vt != NULL && strcmp(a->vt->name, "hsrl") == 0);
  return (agent_hsrl *)a;
}
static const agent_hsrl *as_hsrl_c(const agent *a) {
  HSRL_CHECK(a != NULL && a->vt != NULL && strcmp(a->vt->name, "hsrl") == 0);
  return (const agent_hsrl *)a;
}

void agent_hsrl_config_defaults(agent_hsrl_config *c, const hsrl_settings *s, int64_t max_batch) {
  memset(c, 0, sizeof *c);
  c->s = s->agent;
  c->history_len = s->data.history_len;
  c->slate_size = s->data.slate_size;
  c->max_batch = max_batch;
  c->seed = hsrl_settings_train_seed(s);
  c->explore_temp = 1.0;
  c->critic_to_actor = 1;
  c->grad_clip = 0.0;
  c->act_only = 0;
  c->exclude_history = s->env.exclude_history ? 1 : 0;
  c->lr_schedule = agent_lr_schedule_of(s);
  c->bc_schedule = (nn_lr_schedule){NN_LR_LINEAR, s->agent.bc_final, s->train.iterations};
}

agent_hsrl_world agent_hsrl_world_of(const sim_dataset *data, const sim_sid_index *index,
                                     const sim_sid_trie *trie) {
  agent_hsrl_world w;
  memset(&w, 0, sizeof w);
  w.item_features = data->item_features;
  w.n_items = data->n_items;
  w.item_dim = data->item_dim;
  w.user_features = data->user_features;
  w.n_users = data->n_users;
  w.user_dim = data->user_dim;
  w.index = index;
  w.trie = trie;
  return w;
}

/* ---- construction ------------------------------------------------------------------------- */

#define USAGE(field, ...) hsrl_err(HSRL_E_USAGE, NULL, 0, field, __VA_ARGS__)

/* ids index both the feature table and the SID table */
static int64_t world_n_items(const agent_hsrl_world *w) {
  return w->n_items < w->index->n_items ? w->n_items : w->index->n_items;
}

static hsrl_status net_config_of(agent_hsrl_net_config *nc, const agent_hsrl_config *c, const agent_hsrl_world *w) {
  const hsrl_settings_agent *s = &c->s;
  memset(nc, 0, sizeof *nc);
  if (c->history_len < 1) return USAGE("data.history_len", "%lld < 1", (long long)c->history_len);
  if (c->slate_size < 1) return USAGE("data.slate_size", "%lld < 1", (long long)c->slate_size);
  if (c->max_batch < 1) return USAGE("max_batch", "%lld < 1", (long long)c->max_batch);
  if (s->d < 1 || s->heads < 1 || s->d % s->heads != 0)
    return USAGE("agent.heads", "%lld does not divide agent.d = %lld", (long long)s->heads, (long long)s->d);
  if (s->layers < 1 || s->layers > AGENT_ENCODER_MAX_LAYERS)
    return USAGE("agent.layers", "%lld outside 1..%d", (long long)s->layers, AGENT_ENCODER_MAX_LAYERS);
  if (s->ffn < 1) return USAGE("agent.ffn", "%lld < 1", (long long)s->ffn);
  if (!(s->dropout >= 0.0 && s->dropout < 1.0)) return USAGE("agent.dropout", "%g outside [0,1)", s->dropout);
  if (!(s->critic_dropout >= 0.0 && s->critic_dropout < 1.0))
    return USAGE("agent.critic_dropout", "%g outside [0,1)", s->critic_dropout);
  if (!(s->tau_temp > 0.0)) return USAGE("agent.tau_temp", "%g is not positive", s->tau_temp);
  if (!(c->explore_temp > 0.0)) return USAGE("explore_temp", "%g is not positive", c->explore_temp);
  if (!(s->epsilon >= 0.0 && s->epsilon <= 1.0)) return USAGE("agent.epsilon", "%g outside [0,1]", s->epsilon);
  if (strcmp(s->decoder, "trie") != 0 && strcmp(s->decoder, "catalog") != 0)
    return USAGE("agent.decoder", "'%s' is not trie or catalog", s->decoder);
  if (!w || !w->item_features || w->n_items < 1 || w->item_dim < 1 || !w->index)
    return USAGE("world", "item features and a SID index are required");
  const sim_sid_index *idx = w->index;
  if (idx->n_levels < 1 || idx->n_levels > AGENT_MAX_LEVELS)
    return USAGE("sid.levels", "%d levels; the agent supports 1..%d", idx->n_levels, AGENT_MAX_LEVELS);
  if (strcmp(s->decoder, "trie") == 0 && !w->trie) return USAGE("agent.decoder", "trie decoding needs a trie");
  if (s->user_state && (!w->user_features || w->user_dim < 1))
    return USAGE("agent.user_state", "true, but the world has no user features");
  int64_t hidden[NN_MLP_MAX_HIDDEN];
  int64_t n_hidden = hsrl_settings_parse_int_list(s->critic_hidden, hidden, NN_MLP_MAX_HIDDEN);
  if (n_hidden < 1)
    return USAGE("agent.critic_hidden", "'%s' is not 1..%d positive widths", s->critic_hidden, NN_MLP_MAX_HIDDEN);

  nc->enc = agent_encoder_config_make(s, world_n_items(w), w->item_dim, w->item_features, w->n_users, w->user_dim,
                                      w->user_features, c->history_len);
  nc->enc.sid_tokens = idx->tokens;
  nc->enc.n_levels = idx->n_levels;
  nc->K = c->slate_size;
  nc->n_levels = idx->n_levels;
  for (int l = 0; l < idx->n_levels; l++) nc->vocab[l] = nc->enc.vocab[l] = idx->vocab[l];
  nc->critic.in_dim = s->d;
  nc->critic.n_hidden = (int)n_hidden;
  for (int64_t i = 0; i < n_hidden; i++) nc->critic.hidden[i] = hidden[i];
  nc->critic.out_dim = 1;
  nc->critic.dropout = (float)s->critic_dropout;
  nc->tau = (float)s->tau_temp;
  nc->hierarchy = s->hierarchy;
  nc->mlc = s->mlc;
  nc->max_batch = c->max_batch;
  return HSRL_OK;
}

static const char *const table_prefix[4] = {"actor", "critic", "actor_target", "critic_target"};

/* Fresh tables with the agent's layout (values zero). */
static void tables_make(const agent_hsrl *a, nn_params *t[4]) {
  agent_hsrl_actor_layout al;
  agent_hsrl_critic_layout cl;
  memset(t, 0, 4 * sizeof t[0]);
  int n = a->cfg.act_only ? 1 : 4;
  for (int i = 0; i < n; i++) {
    if (i % 2 == 0) {
      t[i] = agent_hsrl_net_actor_table(&a->net->cfg, table_prefix[i], &al);
      HSRL_CHECK(memcmp(&al, &a->net->al, sizeof al) == 0);
    } else {
      t[i] = agent_hsrl_net_critic_table(&a->net->cfg, table_prefix[i], &cl);
      HSRL_CHECK(memcmp(&cl, &a->net->cl, sizeof cl) == 0);
    }
  }
}

static void tables_free(nn_params *t[4]) {
  for (int i = 0; i < 4; i++) {
    nn_params_free(t[i]);
    t[i] = NULL;
  }
}

static void hsrl_act(agent *a, int64_t B, const int32_t *users, const int32_t *histories, agent_act_mode mode,
                     hsrl_rng *rng, agent_act_out *out);
static void hsrl_learn(agent *a, const agent_batch *batch, agent_stats *out);
static hsrl_status hsrl_save(const agent *a, io_h5 *f);
static hsrl_status hsrl_load(agent *a, io_h5 *f);
static int64_t hsrl_n_policy_params(const agent *a);
static float *hsrl_policy_params(agent *a);
static void hsrl_free_agent(agent *a);

static const agent_vtable hsrl_vtable = {"hsrl", hsrl_act, hsrl_learn, hsrl_save, hsrl_load,
                                         hsrl_n_policy_params, hsrl_policy_params, NULL,
                                         hsrl_free_agent};

hsrl_status agent_hsrl_init(agent **out, const agent_hsrl_config *cfg, const agent_hsrl_world *w) {
  *out = NULL;
  agent_hsrl_net_config nc;
  hsrl_status st = net_config_of(&nc, cfg, w);
  if (st != HSRL_OK) return st;

  agent_hsrl *a = hsrl_calloc(1, sizeof *a);
  a->base.vt = &hsrl_vtable;
  a->cfg = *cfg;
  a->world = *w;
  a->net = agent_hsrl_net_init(&nc, !cfg->act_only);
  tables_make(a, a->tab);

  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive(cfg->seed, PURPOSE_ACTOR_INIT), 0);
  agent_hsrl_net_actor_init(nn_params_values(a->tab[AGENT_HSRL_ACTOR]), a->net, &r);
  if (!cfg->act_only) {
    hsrl_rng_init(&r, hsrl_rng_derive(cfg->seed, PURPOSE_CRITIC_INIT), 0);
    agent_hsrl_net_critic_init(nn_params_values(a->tab[AGENT_HSRL_CRITIC]), a->net, &r);
    for (int i = 0; i < 2; i++)
      memcpy(nn_params_values(a->tab[i + 2]), nn_params_values(a->tab[i]),
             (size_t)nn_params_size(a->tab[i]) * sizeof(float));
  }

  const hsrl_settings_agent *s = &cfg->s;
  a->adam_actor = nn_adam_defaults((float)s->actor_lr);
  a->adam_actor.weight_decay = (float)s->weight_decay;
  a->adam_critic = nn_adam_defaults((float)s->critic_lr);
  a->adam_critic.weight_decay = (float)s->weight_decay;
  a->lc.lambda_h = s->entropy ? (float)s->entropy_weight : 0.0f;
  a->lc.lambda_bc = s->bc ? (float)s->bc_weight : 0.0f; /* learn() rescales it by agent.bc_final */
  a->lc.critic_to_actor = cfg->critic_to_actor;
  a->lc.off_policy = cfg->s.off_policy_correction;
  a->lc.normalise_advantage = strcmp(s->advantage, "normalise") == 0;
  a->lc.click_credit = strcmp(s->credit, "click") == 0;
  for (int i = 0; i < 4; i++) a->lc.scale[i] = 1.0f;
  if (!s->pg) a->lc.scale[1] = 0.0f;
  a->key_base = hsrl_rng_derive(cfg->seed, PURPOSE_DROPOUT);

  sim_sid_decode_ws_init(&a->ws, nc.K, nc.n_levels, a->net->v_max, 0);
  if (cfg->exclude_history) sim_sid_decode_ws_reserve_exclude(&a->ws, cfg->history_len);
  if (s->prefix_cap > 0) agent_hsrl_diverse_reserve(&a->diverse, w->index);
  const int64_t Bm = cfg->max_batch;
  a->y = hsrl_malloc((size_t)Bm * sizeof(float));
  a->hist_c = hsrl_malloc((size_t)(Bm * nc.enc.history_len) * sizeof(int32_t));
  a->users_c = hsrl_malloc((size_t)Bm * sizeof(int32_t));
  a->rows_c = hsrl_malloc((size_t)Bm * sizeof(int64_t));
  *out = &a->base;
  return HSRL_OK;
}

void agent_hsrl_set_world(agent *a_, const agent_hsrl_world *w) {
  agent_hsrl *a = as_hsrl(a_);
  const agent_hsrl_net_config *c = &a->net->cfg;
  HSRL_CHECK(w->item_features && w->index && w->item_dim == c->enc.item_dim);
  HSRL_CHECK(w->index->n_levels == c->n_levels);
  for (int l = 0; l < c->n_levels; l++) HSRL_CHECK(w->index->vocab[l] == c->vocab[l]);
  HSRL_CHECK(!c->enc.user_state || (w->user_features && w->user_dim == c->enc.user_dim));
  HSRL_CHECK(strcmp(a->cfg.s.decoder, "trie") != 0 || w->trie);
  a->world = *w;
  if (a->cfg.s.prefix_cap > 0) agent_hsrl_diverse_reserve(&a->diverse, w->index);
  agent_hsrl_net_set_tables(a->net, world_n_items(w), w->item_features, w->index->tokens, w->n_users, w->user_features);
}

static void hsrl_free_agent(agent *a_) {
  agent_hsrl *a = as_hsrl(a_);
  agent_hsrl_net_free(a->net);
  tables_free(a->tab);
  sim_sid_decode_ws_free(&a->ws);
  agent_hsrl_diverse_free(&a->diverse);
  hsrl_free(a->y);
  hsrl_free(a->hist_c);
  hsrl_free(a->users_c);
  hsrl_free(a->rows_c);
  hsrl_free(a);
}

/* ---- acting ------------------------------------------------------------------------------- */

static void act_impl(agent_hsrl *a, int64_t B, const int32_t *users, const int32_t *histories,
                     const int32_t *cand, int64_t m, agent_act_mode mode, hsrl_rng *rng, agent_act_out *out) {
  if (B == 0) return;
  HSRL_CHECK(out != NULL && out->slate != NULL && histories != NULL);
  agent_hsrl_net *n = a->net;
  const agent_hsrl_net_config *c = &n->cfg;
  const int L = c->n_levels;
  const int64_t K = c->K;
  agent_hsrl_net_actor_forward(n, nn_params_values(a->tab[AGENT_HSRL_ACTOR]), B, users, histories, 0, 0);
  HSRL_CHECK(mode == AGENT_ACT_EXPLORE || mode == AGENT_ACT_GREEDY);
  const int explore = mode == AGENT_ACT_EXPLORE && strcmp(a->cfg.s.explore, "greedy") != 0;
  if (explore && a->cfg.explore_temp != 1.0) {
    const float temp = (float)((double)c->tau * a->cfg.explore_temp);
    for (int l = 0; l < L; l++) {
      const int64_t o = B * n->level_off[l];
      nn_log_softmax_forward(n->logp + o, n->logits + o, B, c->vocab[l], temp);
    }
  }
  sim_sid_logp lp;
  memset(&lp, 0, sizeof lp);
  for (int l = 0; l < L; l++) lp.level[l] = n->logp + B * n->level_off[l];
  if (a->cfg.exclude_history) lp.exclude = histories, lp.exclude_n = a->cfg.history_len;
  const sim_sid_index *idx = a->world.index;
  const int list = cand != NULL || strcmp(a->cfg.s.decoder, "catalog") == 0;
  const int capped = cand == NULL && a->cfg.s.prefix_cap > 0;
  if (!explore && capped) {
    agent_hsrl_diverse_topk(out->slate, out->logp, idx, &lp, B, K, a->cfg.s.prefix_cap, &a->diverse);
  } else if (explore && capped && a->cfg.s.explore_cap) {
    HSRL_CHECKF(rng != NULL, "exploring needs a random stream");
    agent_hsrl_diverse_sample(out->slate, out->logp, idx, &lp, B, K, a->cfg.s.prefix_cap, (float)a->cfg.s.epsilon, rng,
                              &a->diverse);
  } else if (!explore) {
    if (list)
      sim_sid_decode_topk_list(out->slate, NULL, out->logp, idx, &lp, cand, m, B, K, &a->ws);
    else
      sim_sid_decode_topk(out->slate, NULL, out->logp, idx, a->world.trie, &lp, B, K, &a->ws);
  } else {
    HSRL_CHECKF(rng != NULL, "exploring needs a random stream");
    const float eps = (float)a->cfg.s.epsilon;
    if (list)
      sim_sid_decode_sample_list(out->slate, NULL, out->logp, idx, &lp, cand, m, B, K, eps, rng, &a->ws);
    else
      sim_sid_decode_sample(out->slate, NULL, out->logp, idx, a->world.trie, &lp, B, K, eps, rng, &a->ws);
  }
  if (out->tokens) {
    for (int64_t i = 0; i < B * K; i++) {
      const int32_t item = out->slate[i];
      for (int l = 0; l < L; l++)
        out->tokens[i * L + l] = item > 0 ? idx->tokens[(int64_t)item * L + l] : (uint16_t)0;
    }
  }
}

static void hsrl_act(agent *a, int64_t B, const int32_t *users, const int32_t *histories, agent_act_mode mode,
                     hsrl_rng *rng, agent_act_out *out) {
  act_impl(as_hsrl(a), B, users, histories, NULL, 0, mode, rng, out);
}

void agent_hsrl_act_candidates(agent *a, int64_t B, const int32_t *users, const int32_t *histories,
                               const int32_t *cand, int64_t m, agent_act_mode mode, hsrl_rng *rng,
                               agent_act_out *out) {
  HSRL_CHECK(cand != NULL && m >= 1);
  act_impl(as_hsrl(a), B, users, histories, cand, m, mode, rng, out);
}

/* ---- learning ----------------------------------------------------------------------------- */

void agent_hsrl_values(agent *a_, int64_t B, const int32_t *users, const int32_t *histories, int target,
                       float *value) {
  agent_hsrl *a = as_hsrl(a_);
  HSRL_CHECK(!a->cfg.act_only);
  if (B == 0) return;
  agent_hsrl_net *n = a->net;
  nn_params *actor = a->tab[target ? AGENT_HSRL_ACTOR_TARGET : AGENT_HSRL_ACTOR];
  nn_params *critic = a->tab[target ? AGENT_HSRL_CRITIC_TARGET : AGENT_HSRL_CRITIC];
  agent_hsrl_net_actor_forward(n, nn_params_values(actor), B, users, histories, 0, 0);
  agent_hsrl_net_critic_forward(n, nn_params_values(critic), 0, 0);
  memcpy(value, n->value, (size_t)B * sizeof(float));
}

void agent_hsrl_td_target(agent *a_, const agent_batch *b, float *y) {
  agent_hsrl *a = as_hsrl(a_);
  HSRL_CHECK(!a->cfg.act_only);
  HSRL_CHECK(b->reward && b->done && b->next_history);
  const int64_t B = b->B, H = a->net->cfg.enc.history_len;
  HSRL_CHECKF(B >= 0 && B <= a->cfg.max_batch, "batch %lld > max_batch %lld", (long long)B,
              (long long)a->cfg.max_batch);
  /* only the rows that bootstrap (done = 0) are encoded */
  int64_t m = 0;
  for (int64_t r = 0; r < B; r++) {
    if (b->done[r]) continue;
    a->rows_c[m] = r;
    memcpy(a->hist_c + m * H, b->next_history + r * H, (size_t)H * sizeof(int32_t));
    a->users_c[m] = b->next_users ? b->next_users[r] : 0;
    m++;
  }
  for (int64_t r = 0; r < B; r++) y[r] = b->reward[r];
  if (m == 0) return;
  agent_hsrl_net *n = a->net;
  agent_hsrl_net_actor_forward(n, nn_params_values(a->tab[AGENT_HSRL_ACTOR_TARGET]), m,
                               n->cfg.enc.user_state ? a->users_c : NULL, a->hist_c, 0, 0);
  agent_hsrl_net_critic_forward(n, nn_params_values(a->tab[AGENT_HSRL_CRITIC_TARGET]), 0, 0);
  const double gamma = a->cfg.s.gamma;
  for (int64_t j = 0; j < m; j++) {
    const int64_t r = a->rows_c[j];
    y[r] = (float)((double)b->reward[r] + gamma * (double)n->value[j]);
  }
}

static double grad_norm(nn_params *p, double max_norm) {
  float *g = nn_params_grads(p);
  const int64_t n = nn_params_size(p);
  if (max_norm > 0.0) return nn_clip_grad_norm(g, n, (float)max_norm);
  return sqrt(nn_sum_squares(g, n));
}

static void hsrl_learn(agent *a_, const agent_batch *b, agent_stats *out) {
  agent_hsrl *a = as_hsrl(a_);
  HSRL_CHECKF(!a->cfg.act_only, "learn() on an act-only HSRL agent");
  HSRL_CHECKF(b->B >= 1 && b->B <= a->cfg.max_batch, "batch %lld outside 1..%lld", (long long)b->B,
              (long long)a->cfg.max_batch);
  HSRL_CHECKF(b->tokens != NULL, "the HSRL agent learns from SID tokens; the batch has none");
  agent_hsrl_td_target(a_, b, a->y);
  const uint64_t key = hsrl_rng_derive(a->key_base, (uint64_t)a->n_updates);
  agent_hsrl_terms t;
  nn_params *actor = a->tab[AGENT_HSRL_ACTOR], *critic = a->tab[AGENT_HSRL_CRITIC];
  /* this update's lambda_BC (agent.bc_final), keyed like the learning rates by the Adam step */
  const int64_t step = nn_params_adam_step(actor) + 1;
  a->lc.lambda_bc = a->cfg.s.bc ? (float)(a->cfg.s.bc_weight * nn_lr_factor(&a->cfg.bc_schedule, step)) : 0.0f;
  agent_hsrl_net_loss(a->net, actor, critic, b, a->y, NULL, NULL, &a->lc, 1, key, &t);
  const double na = grad_norm(actor, a->cfg.grad_clip), nc = grad_norm(critic, a->cfg.grad_clip);
  const double gn = sqrt(na * na + nc * nc);
  const int finite = isfinite(gn) && isfinite(t.critic) && isfinite(t.pg) && isfinite(t.negent) && isfinite(t.bc);
  if (finite) {
    const double f = nn_lr_factor(&a->cfg.lr_schedule, step);
    a->adam_actor.lr = (float)(a->cfg.s.actor_lr * f);
    a->adam_critic.lr = (float)(a->cfg.s.critic_lr * f);
    nn_params_adam_update(actor, &a->adam_actor);
    nn_params_adam_update(critic, &a->adam_critic);
    const float tau = (float)a->cfg.s.target_tau;
    nn_soft_update(nn_params_values(a->tab[AGENT_HSRL_ACTOR_TARGET]), nn_params_values(actor),
                   nn_params_size(actor), tau);
    nn_soft_update(nn_params_values(a->tab[AGENT_HSRL_CRITIC_TARGET]), nn_params_values(critic),
                   nn_params_size(critic), tau);
    a->n_updates++;
  }
  if (!out) return;
  memset(out, 0, sizeof *out);
  out->critic_loss = t.critic;
  out->actor_loss = t.pg;
  out->entropy = t.entropy;
  out->bc_loss = t.bc;
  out->advantage = t.advantage;
  out->value = t.value;
  out->td_target = t.td_target;
  out->grad_norm = finite ? gn : (double)NAN;
  const int L = a->net->cfg.n_levels;
  out->n_levels = L;
  const float *lw = nn_params_values(critic) + a->net->cl.level_w;
  double mx = -INFINITY, z = 0.0;
  for (int j = 0; j <= L; j++) mx = fmax(mx, (double)lw[j]);
  for (int j = 0; j <= L; j++) z += (out->level_weight[j] = exp((double)lw[j] - mx));
  for (int j = 0; j <= L; j++) out->level_weight[j] /= z;
}

/* ---- parameters and checkpoints ----------------------------------------------------------- */

static int64_t hsrl_n_policy_params(const agent *a) {
  return nn_params_size(as_hsrl_c(a)->tab[AGENT_HSRL_ACTOR]);
}

static float *hsrl_policy_params(agent *a) { return nn_params_values(as_hsrl(a)->tab[AGENT_HSRL_ACTOR]); }

#define N_UPDATES_NAME "agent_hsrl/n_updates"
#define DROPOUT_KEY_ATTR "dropout_key"

static hsrl_status hsrl_save(const agent *a_, io_h5 *f) {
  const agent_hsrl *a = as_hsrl_c(a_);
  hsrl_status st = HSRL_OK;
  if (a->cfg.act_only) return nn_params_write(a->tab[AGENT_HSRL_ACTOR], f, 0);
  for (int i = 0; i < 4; i++)
    if ((st = nn_params_write(a->tab[i], f, i < 2 ? NN_PARAMS_OPTIM : 0)) != HSRL_OK) return st;
  const int64_t one = 1;
  if ((st = io_h5_write_i64(f, N_UPDATES_NAME, &a->n_updates, 1, &one, 0)) != HSRL_OK) return st;
  return io_h5_attr_set_u64(f, N_UPDATES_NAME, DROPOUT_KEY_ATTR, a->key_base);
}

static hsrl_status hsrl_load(agent *a_, io_h5 *f) {
  agent_hsrl *a = as_hsrl(a_);
  hsrl_status st = HSRL_OK;
  nn_params *t[4];
  tables_make(a, t);
  int64_t n_updates = a->n_updates;
  uint64_t key_base = a->key_base;
  if (a->cfg.act_only) {
    HSRL_TRY(nn_params_read(t[0], f, NULL, 0));
  } else {
    for (int i = 0; i < 4; i++) HSRL_TRY(nn_params_read(t[i], f, NULL, i < 2 ? NN_PARAMS_OPTIM : 0));
    HSRL_TRY(io_h5_read_i64(f, N_UPDATES_NAME, &n_updates, 1));
    HSRL_TRY(io_h5_attr_get_u64(f, N_UPDATES_NAME, DROPOUT_KEY_ATTR, &key_base));
  }
  /* every table read: adopt them (same layout, so the networks' offsets stay valid) */
  for (int i = 0; i < 4; i++) {
    nn_params *old = a->tab[i];
    a->tab[i] = t[i];
    t[i] = old;
  }
  a->n_updates = n_updates;
  a->key_base = key_base;
done:
  tables_free(t);
  return st;
}

/* ---- access ------------------------------------------------------------------------------- */

nn_params *agent_hsrl_params(agent *a, agent_hsrl_table which) {
  HSRL_CHECK(which >= AGENT_HSRL_ACTOR && which <= AGENT_HSRL_CRITIC_TARGET);
  return as_hsrl(a)->tab[which];
}
agent_hsrl_net *agent_hsrl_net_of(agent *a) { return as_hsrl(a)->net; }
const agent_hsrl_loss_config *agent_hsrl_loss_config_of(agent *a) { return &as_hsrl(a)->lc; }
int64_t agent_hsrl_n_updates(const agent *a) { return as_hsrl_c(a)->n_updates; }
