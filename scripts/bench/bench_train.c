/* bench_train.c: where a training iteration of the HSRL agent spends its time (issue 5 benchmark,
 * method.md section 8 "Defaults from the reference training"), and how close the update runs to
 * the machine's own cblas_sgemm.
 *
 * Builds the world (prepared data, learned simulator, SID file) and the HSRL agent exactly as
 * `hsrl train` does (learner_train_world_load, learner_train_make_agent: the public API) from
 * an effective config given as "section.key=value" arguments (defaults, then these; the run.data,
 * run.sim_train and run.sid keys name the files), and an environment of env.batch users over the
 * train split (sim_env). It then
 *   1. fills a transition buffer of train.learning_starts transitions with EXPLORE steps (no
 *      timing), like the learner's prefill;
 *   2. runs N_ITERS iterations of the learner's schedule (act EXPLORE on the env users, env step
 *      with the learned simulator, push into the buffer, sample train.batch transitions uniformly,
 *      learn()) and times every phase of every iteration (process CPU time: one thread);
 *   3. counts the update's FLOPs analytically from the shapes (every matrix product of learn():
 *      the target actor's and critic's forwards for the TD target, the online forwards, and their
 *      backwards, 2 m n k each; the list mirrors agent_hsrl_net.c, agent_encoder.c, nn_transformer
 *      and nn_mlp), and times that same list of products with cblas_sgemm, called directly on
 *      purpose (like bench_nn.c): the sgemm-bound time of the update.
 * Counting conventions: the TD target is counted for all B rows (rows with done = 1 are skipped by
 * learn(), so the real count is slightly lower); the attention products (scores Q K^T and A V,
 * per batch row and head) are counted at their full H x H size, as plain sgemm calls would compute
 * them, although nn_mha's fused causal kernel does about half of that work; their share is
 * printed separately. Products with a dimension 1 (the critic's output layer, the top layer's
 * single query) are included.
 * Figures are medians over iterations (the machine is shared and noisy); means are printed too so
 * that the breakdown adds up. Run through scripts/bench/train.sh.
 * usage: bench_train [--iters N] section.key=value ... */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_log.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_timer.h"
#include "learner/agents/agent_hsrl.h"
#include "learner/learner_train.h"
#include "sim/sim_env.h"

#define MAX_CALLS 128
#define SGEMM_REPEATS 7

typedef struct gemm_call { int ta, tb, m, n, k, count, attn; } gemm_call;

typedef struct gemm_list {
  gemm_call c[MAX_CALLS];
  int n;
} gemm_list;

static void add(gemm_list *g, int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t count, int attn) {
  if (g->n >= MAX_CALLS) {
    fprintf(stderr, "bench_train: too many products\n");
    exit(1);
  }
  g->c[g->n++] = (gemm_call){ta, tb, (int)m, (int)n, (int)k, (int)count, attn};
}

/* A forward product Y (m, n) = X (m, k) W^T; with backward, its two products: dX = dY W
 * (m, k, n) when need_dx, and dW = dY^T X (n, k, m). */
static void add_fwd(gemm_list *g, int64_t m, int64_t n, int64_t k, int64_t count, int attn) {
  add(g, 0, 1, m, n, k, count, attn);
}
static void add_bwd(gemm_list *g, int64_t m, int64_t n, int64_t k, int64_t count, int attn, int need_dx) {
  if (need_dx) add(g, 0, 0, m, k, n, count, attn);
  add(g, 1, 0, n, k, m, count, attn);
}
static void add_both(gemm_list *g, int backward, int64_t m, int64_t n, int64_t k, int64_t count, int attn,
                     int need_dx) {
  add_fwd(g, m, n, k, count, attn);
  if (backward) add_bwd(g, m, n, k, count, attn, need_dx);
}

typedef struct shapes {
  int64_t H, D, d, F, heads, layers, L, V[AGENT_MAX_LEVELS], n_ctx;
  nn_mlp_config critic;
} shapes;

/* One transformer layer on R rows: n_q = H (full) or 1 (the top layer's last position). */
static void add_layer(gemm_list *g, const shapes *s, int64_t R, int64_t n_q, int backward) {
  const int64_t H = s->H, d = s->d, hd = s->d / s->heads;
  add_both(g, backward, R * n_q, d, d, 1, 0, 1);           /* Q projection */
  add_both(g, backward, R * H, 2 * d, d, 1, 0, 1);         /* K|V projection */
  add_both(g, backward, n_q, H, hd, R * s->heads, 1, 1);   /* scores Q K^T (per row, head) */
  add_both(g, backward, n_q, hd, H, R * s->heads, 1, 1);   /* A V */
  add_both(g, backward, R * n_q, d, d, 1, 0, 1);           /* out projection */
  add_both(g, backward, R * n_q, s->F, d, 1, 0, 1);        /* FFN 1 */
  add_both(g, backward, R * n_q, d, s->F, 1, 0, 1);        /* FFN 2 */
}

/* Actor (encoder + heads) and critic on R rows; backward = the online pass of the loss. */
static void add_nets(gemm_list *g, const shapes *s, int64_t R, int backward) {
  /* encoder: item_map over the R H history items (no d-input: the features are data) */
  add_both(g, backward, R * s->H, s->d, s->D, 1, 0, 0);
  for (int64_t k = 0; k < s->layers; k++) add_layer(g, s, R, k == s->layers - 1 ? 1 : s->H, backward);
  /* heads: logits_l = c_l W_l^T (R, V_l, d); e_l = pi_l E_l (R, d, V_l) for every level whose
   * context is read (all, with the MLC) */
  for (int64_t l = 0; l < s->L; l++) {
    add_both(g, backward, R, s->V[l], s->d, 1, 0, 1);
    add(g, 0, 0, R, s->d, s->V[l], 1, 0); /* pi E */
    if (backward) {
      add(g, 0, 1, R, s->V[l], s->d, 1, 0); /* dpi = -dres E^T */
      add(g, 1, 0, s->V[l], s->d, R, 1, 0); /* dE -= pi^T dres */
    }
  }
  /* critic MLP on n_ctx R rows (d-input of every layer: critic_to_actor) */
  int64_t in = s->critic.in_dim;
  for (int l = 0; l <= s->critic.n_hidden; l++) {
    int64_t out = l < s->critic.n_hidden ? s->critic.hidden[l] : s->critic.out_dim;
    add_both(g, backward, s->n_ctx * R, out, in, 1, 0, 1);
    in = out;
  }
}

static double list_flops(const gemm_list *g, int attn_only) {
  double f = 0;
  for (int i = 0; i < g->n; i++)
    if (!attn_only || g->c[i].attn) f += 2.0 * g->c[i].m * g->c[i].n * g->c[i].k * g->c[i].count;
  return f;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, int n) {
  double *t = hsrl_malloc((size_t)n * sizeof *t);
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  double m = t[n / 2];
  hsrl_free(t);
  return m;
}

static double mean(const double *v, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  return s / n;
}

/* Seconds of one pass over the list's products with cblas_sgemm (median of SGEMM_REPEATS). */
static double time_sgemm(const gemm_list *g, int iters) {
  int64_t biggest = 1;
  for (int i = 0; i < g->n; i++) {
    const gemm_call *c = &g->c[i];
    int64_t s = (int64_t)c->m * c->k + (int64_t)c->k * c->n + (int64_t)c->m * c->n;
    if (s > biggest) biggest = s;
  }
  float *buf[3];
  hsrl_rng r;
  hsrl_rng_init(&r, 1, 0);
  for (int j = 0; j < 3; j++) {
    buf[j] = hsrl_alloc_aligned((size_t)biggest * sizeof(float));
    for (int64_t i = 0; i < biggest; i++) buf[j][i] = 0.2f * (hsrl_rng_uniform(&r) - 0.5f);
  }
  double t[SGEMM_REPEATS];
  for (int rep = 0; rep < SGEMM_REPEATS; rep++) {
    double t0 = hsrl_time_cpu();
    for (int it = 0; it < iters; it++)
      for (int i = 0; i < g->n; i++) {
        const gemm_call *c = &g->c[i];
        for (int j = 0; j < c->count; j++)
          cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans,
                      c->m, c->n, c->k, 1.0f, buf[0], c->ta ? c->m : c->k, buf[1], c->tb ? c->k : c->n,
                      0.0f, buf[2], c->n);
      }
    t[rep] = (hsrl_time_cpu() - t0) / iters;
  }
  for (int j = 0; j < 3; j++) hsrl_free(buf[j]);
  return median(t, SGEMM_REPEATS);
}

/* The transition buffer (a plain ring, like learner_ring but without shards). */
typedef struct tbuf {
  int64_t cap, n, next, H, K, KL;
  int32_t *users, *hist, *slate, *next_users, *next_hist;
  uint16_t *tokens;
  float *logp, *reward;
  uint8_t *clicks, *done;
} tbuf;

static void tbuf_init(tbuf *t, int64_t cap, int64_t H, int64_t K, int64_t L) {
  memset(t, 0, sizeof *t);
  t->cap = cap, t->H = H, t->K = K, t->KL = K * L;
  t->users = hsrl_calloc((size_t)cap, sizeof(int32_t));
  t->next_users = hsrl_calloc((size_t)cap, sizeof(int32_t));
  t->hist = hsrl_calloc((size_t)(cap * H), sizeof(int32_t));
  t->next_hist = hsrl_calloc((size_t)(cap * H), sizeof(int32_t));
  t->slate = hsrl_calloc((size_t)(cap * K), sizeof(int32_t));
  t->tokens = hsrl_calloc((size_t)(cap * t->KL), sizeof(uint16_t));
  t->logp = hsrl_calloc((size_t)(cap * t->KL), sizeof(float));
  t->reward = hsrl_calloc((size_t)cap, sizeof(float));
  t->clicks = hsrl_calloc((size_t)(cap * K), 1);
  t->done = hsrl_calloc((size_t)cap, 1);
}

static void tbuf_free(tbuf *t) {
  hsrl_free(t->users), hsrl_free(t->next_users), hsrl_free(t->hist), hsrl_free(t->next_hist);
  hsrl_free(t->slate), hsrl_free(t->tokens), hsrl_free(t->logp), hsrl_free(t->reward);
  hsrl_free(t->clicks), hsrl_free(t->done);
}

/* Copies row src of the arrays into slot i. */
static void tbuf_put(tbuf *t, int64_t i, int64_t src, const int32_t *users, const int32_t *hist,
                     const int32_t *slate, const uint16_t *tokens, const float *logp,
                     const sim_env_step_result *res) {
  const int64_t H = t->H, K = t->K, KL = t->KL;
  t->users[i] = users[src];
  memcpy(t->hist + i * H, hist + src * H, (size_t)H * sizeof(int32_t));
  memcpy(t->slate + i * K, slate + src * K, (size_t)K * sizeof(int32_t));
  memcpy(t->tokens + i * KL, tokens + src * KL, (size_t)KL * sizeof(uint16_t));
  memcpy(t->logp + i * KL, logp + src * KL, (size_t)KL * sizeof(float));
  memcpy(t->clicks + i * K, res->clicks + src * K, (size_t)K);
  t->reward[i] = res->reward[src];
  t->done[i] = res->done[src];
  t->next_users[i] = res->next_users[src];
  memcpy(t->next_hist + i * H, res->next_histories + src * H, (size_t)H * sizeof(int32_t));
}

static void tbuf_push(tbuf *t, int64_t B, const int32_t *users, const int32_t *hist, const int32_t *slate,
                      const uint16_t *tokens, const float *logp, const sim_env_step_result *res) {
  for (int64_t b = 0; b < B; b++) {
    if (!res->active[b]) continue;
    tbuf_put(t, t->next, b, users, hist, slate, tokens, logp, res);
    t->next = (t->next + 1) % t->cap;
    if (t->n < t->cap) t->n++;
  }
}

int main(int argc, char **argv) {
  int n_iters = 300;
  int first = 1;
  if (argc > 2 && !strcmp(argv[1], "--iters")) n_iters = atoi(argv[2]), first = 3;
  if (n_iters < 10) n_iters = 10;
  hsrl_settings s;
  hsrl_status st = hsrl_settings_load(&s, NULL, argc - first, (const char *const *)(argv + first));
  if (st != HSRL_OK) {
    fprintf(stderr, "bench_train: %s\n", hsrl_err_message());
    return 2;
  }
  const int64_t Benv = s.env.batch, Bt = s.train.batch, max_batch = Benv > Bt ? Benv : Bt;
  learner_world w;
  memset(&w, 0, sizeof w);
  st = learner_train_world_load(&w, &s, s.run.sim_train, max_batch);
  if (st != HSRL_OK) {
    fprintf(stderr, "bench_train: %s\n", hsrl_err_message());
    return 2;
  }
  agent *a = NULL;
  st = learner_train_make_agent(&a, &s, &w, max_batch, 12345, 0);
  if (st != HSRL_OK) {
    fprintf(stderr, "bench_train: %s\n", hsrl_err_message());
    return 2;
  }
  const sim_dataset *data = &w.data;
  const int64_t H = data->history_len, K = data->slate_size, L = w.index.n_levels, KL = K * L;
  sim_env_config ec;
  st = sim_env_config_make(&ec, &s.env, K, H, 0, 0);
  if (st != HSRL_OK) {
    fprintf(stderr, "bench_train: %s\n", hsrl_err_message());
    return 2;
  }
  ec.seed = 777, ec.stream = 0;
  sim_env *env = sim_env_init(&ec, data, data->train_idx, data->n_train, &w.model);

  const agent_hsrl_net *net = agent_hsrl_net_of(a);
  shapes sh;
  memset(&sh, 0, sizeof sh);
  sh.H = H, sh.D = data->item_dim, sh.d = s.agent.d, sh.F = s.agent.ffn, sh.heads = s.agent.heads;
  sh.layers = s.agent.layers, sh.L = L, sh.n_ctx = net->n_ctx, sh.critic = net->cfg.critic;
  for (int l = 0; l < L; l++) sh.V[l] = net->cfg.vocab[l];
  printf("shapes: N %lld items, D %lld, H %lld, K %lld, d %lld, layers %lld, heads %lld, FFN %lld, L %lld,"
         " V", (long long)data->n_items, (long long)sh.D, (long long)H, (long long)K, (long long)sh.d,
         (long long)sh.layers, (long long)sh.heads, (long long)sh.F, (long long)L);
  for (int l = 0; l < L; l++) printf("%s%lld", l ? "," : " ", (long long)sh.V[l]);
  printf(", critic %s, B_env %lld, B %lld, decoder %s\n", s.agent.critic_hidden, (long long)Benv,
         (long long)Bt, s.agent.decoder);

  /* buffers */
  int32_t *users = hsrl_calloc((size_t)Benv, sizeof(int32_t));
  int32_t *hist = hsrl_calloc((size_t)(Benv * H), sizeof(int32_t));
  int32_t *slate = hsrl_calloc((size_t)(Benv * K), sizeof(int32_t));
  uint16_t *tokens = hsrl_calloc((size_t)(Benv * KL), sizeof(uint16_t));
  float *logp = hsrl_calloc((size_t)(Benv * KL), sizeof(float));
  tbuf tb;
  const int64_t cap = s.train.buffer;
  tbuf_init(&tb, cap, H, K, L);
  tbuf sb; /* the sampled batch */
  tbuf_init(&sb, Bt, H, K, L);
  hsrl_rng act_rng, sample_rng;
  hsrl_rng_init(&act_rng, 99, 0);
  hsrl_rng_init(&sample_rng, 98, 0);
  agent_act_out out = {slate, tokens, logp};
  sim_env_step_result res;

  /* 1. prefill */
  double t0 = hsrl_time_now();
  while (tb.n < s.train.learning_starts) {
    memcpy(users, sim_env_users(env), (size_t)Benv * sizeof(int32_t));
    memcpy(hist, sim_env_histories(env), (size_t)(Benv * H) * sizeof(int32_t));
    agent_act(a, Benv, users, hist, AGENT_ACT_EXPLORE, &act_rng, &out);
    sim_env_step(env, slate, &res);
    tbuf_push(&tb, Benv, users, hist, slate, tokens, logp, &res);
  }
  printf("prefill: %lld transitions in %.2f s (wall)\n", (long long)tb.n, hsrl_time_now() - t0);

  /* 2. iterations */
  enum { T_ACT, T_ENV, T_PUSH, T_SAMPLE, T_LEARN, T_ALL, N_T };
  double *tm[N_T];
  for (int j = 0; j < N_T; j++) tm[j] = hsrl_calloc((size_t)n_iters, sizeof(double));
  agent_batch batch;
  memset(&batch, 0, sizeof batch);
  batch.B = Bt, batch.users = sb.users, batch.history = sb.hist, batch.slate = sb.slate;
  batch.tokens = sb.tokens, batch.clicks = sb.clicks, batch.reward = sb.reward, batch.done = sb.done;
  batch.next_users = sb.next_users, batch.next_history = sb.next_hist, batch.behaviour_logp = sb.logp;
  agent_stats stats;
  double wall0 = hsrl_time_now();
  for (int it = 0; it < n_iters; it++) {
    double c0 = hsrl_time_cpu();
    memcpy(users, sim_env_users(env), (size_t)Benv * sizeof(int32_t));
    memcpy(hist, sim_env_histories(env), (size_t)(Benv * H) * sizeof(int32_t));
    agent_act(a, Benv, users, hist, AGENT_ACT_EXPLORE, &act_rng, &out);
    double c1 = hsrl_time_cpu();
    sim_env_step(env, slate, &res);
    double c2 = hsrl_time_cpu();
    tbuf_push(&tb, Benv, users, hist, slate, tokens, logp, &res);
    double c3 = hsrl_time_cpu();
    for (int64_t j = 0; j < Bt; j++) {
      int64_t src = (int64_t)hsrl_rng_below(&sample_rng, (uint64_t)tb.n);
      const int64_t Hh = tb.H;
      sb.users[j] = tb.users[src];
      memcpy(sb.hist + j * Hh, tb.hist + src * Hh, (size_t)Hh * sizeof(int32_t));
      memcpy(sb.slate + j * K, tb.slate + src * K, (size_t)K * sizeof(int32_t));
      memcpy(sb.tokens + j * KL, tb.tokens + src * KL, (size_t)KL * sizeof(uint16_t));
      memcpy(sb.logp + j * KL, tb.logp + src * KL, (size_t)KL * sizeof(float));
      memcpy(sb.clicks + j * K, tb.clicks + src * K, (size_t)K);
      sb.reward[j] = tb.reward[src], sb.done[j] = tb.done[src], sb.next_users[j] = tb.next_users[src];
      memcpy(sb.next_hist + j * Hh, tb.next_hist + src * Hh, (size_t)Hh * sizeof(int32_t));
    }
    double c4 = hsrl_time_cpu();
    agent_learn(a, &batch, &stats);
    double c5 = hsrl_time_cpu();
    tm[T_ACT][it] = c1 - c0, tm[T_ENV][it] = c2 - c1, tm[T_PUSH][it] = c3 - c2;
    tm[T_SAMPLE][it] = c4 - c3, tm[T_LEARN][it] = c5 - c4, tm[T_ALL][it] = c5 - c0;
    if (!(stats.grad_norm == stats.grad_norm)) {
      fprintf(stderr, "bench_train: non-finite update at iteration %d\n", it);
      return 1;
    }
  }
  double wall = hsrl_time_now() - wall0;
  const char *names[N_T] = {"act (32 users, EXPLORE)", "env step (learned simulator)", "push",
                            "sample batch", "update (learn)", "iteration"};
  printf("iterations: %d (CPU time per phase; wall %.2f s = %.2f it/s)\n", n_iters, wall, n_iters / wall);
  printf("  %-30s %10s %10s %8s\n", "phase", "median ms", "mean ms", "share");
  double all = mean(tm[T_ALL], n_iters);
  for (int j = 0; j < N_T; j++)
    printf("  %-30s %10.3f %10.3f %7.1f%%\n", j == T_ACT ? "act" : names[j], median(tm[j], n_iters) * 1e3,
           mean(tm[j], n_iters) * 1e3, 100.0 * mean(tm[j], n_iters) / all);
  printf("  (act = %s)\n", names[T_ACT]);
  printf("  iterations/s from the CPU-time median iteration: %.1f\n", 1.0 / median(tm[T_ALL], n_iters));
  printf("BREAKDOWN_MS act %.4f env %.4f update %.4f other %.4f\n", mean(tm[T_ACT], n_iters) * 1e3,
         mean(tm[T_ENV], n_iters) * 1e3, mean(tm[T_LEARN], n_iters) * 1e3,
         (mean(tm[T_PUSH], n_iters) + mean(tm[T_SAMPLE], n_iters)) * 1e3);

  /* 3. FLOPs and the sgemm bound */
  static gemm_list g;
  g.n = 0;
  add_nets(&g, &sh, Bt, 0); /* TD target: target actor + target critic, inference */
  int n_target = g.n;
  add_nets(&g, &sh, Bt, 1); /* online forward + backward */
  double flops = list_flops(&g, 0), attn = list_flops(&g, 1);
  gemm_list gt = g;
  gt.n = n_target;
  double f_target = list_flops(&gt, 0);
  double t_upd = median(tm[T_LEARN], n_iters);
  double t_sg = time_sgemm(&g, 20);
  printf("update FLOPs: %.2f MFLOP in %d product shapes (TD target %.2f MFLOP, online forward +"
         " backward %.2f MFLOP; attention Q K^T and A V counted full size: %.2f MFLOP)\n",
         flops * 1e-6, g.n, f_target * 1e-6, (flops - f_target) * 1e-6, attn * 1e-6);
  printf("update achieved: %.3f ms median = %.2f GFLOP/s\n", t_upd * 1e3, flops / t_upd * 1e-9);
  printf("sgemm bound: the same products with cblas_sgemm: %.3f ms = %.2f GFLOP/s\n", t_sg * 1e3,
         flops / t_sg * 1e-9);
  printf("fraction of the sgemm-bound time: %.2f (sgemm-bound time / measured update time)\n", t_sg / t_upd);

  for (int j = 0; j < N_T; j++) hsrl_free(tm[j]);
  tbuf_free(&tb), tbuf_free(&sb);
  hsrl_free(users), hsrl_free(hist), hsrl_free(slate), hsrl_free(tokens), hsrl_free(logp);
  sim_env_free(env);
  agent_free(a);
  learner_train_world_free(&w);
  return 0;
}
