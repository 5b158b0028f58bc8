/* learner_dist.c: the learner role and the launcher of the distributed job (see learner_dist.h). */
#include "learner/learner_dist.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_log.h"
#include "common/hsrl_timer.h"
#include "common/io/io_h5.h"
#include "common/io/io_zstd.h"
#include "replay/replay_block.h"
#include "replay/replay_server.h"

#define LD_TRY(expr) \
  do { hsrl_status s_ = (expr); if (s_ != HSRL_OK) return s_; } while (0)

int learner_dist_launched_size(void) {
  const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
  for (int i = 0; i < 3; i++) {
    const char *v = getenv(names[i]);
    if (v) return atoi(v);
  }
  return 0;
}

int64_t learner_dist_prefill_steps(const hsrl_settings *s, int64_t n_actors) {
  int64_t per = (n_actors > 0 ? n_actors : 1) * s->env.batch;
  int64_t n = (s->train.learning_starts + per - 1) / per;
  return n < 1 ? 1 : n;
}

int64_t learner_dist_sync_version(const hsrl_settings *s, int64_t n_prefill, int64_t j) {
  if (j < n_prefill) return 0;
  int64_t k = j - n_prefill + 1; /* the update this step feeds */
  return ((k - 1) / s->dist.broadcast_every) * s->dist.broadcast_every;
}

void learner_dist_shape(const learner_world *w, const hsrl_settings *s, replay_rows_shape *shape,
                        int64_t *max_vocab) {
  memset(shape, 0, sizeof *shape);
  shape->history_len = w->data.history_len, shape->slate_size = w->data.slate_size;
  int sid = w->has_sid && strcmp(s->agent.kind, "sl") != 0;
  shape->n_levels = sid ? w->index.n_levels : 0;
  shape->with_logp = shape->n_levels > 0;
  *max_vocab = 0;
  for (int l = 0; l < shape->n_levels; l++)
    if (w->index.vocab[l] > *max_vocab) *max_vocab = w->index.vocab[l];
}

const char *learner_dist_sim_path(const hsrl_settings *s) {
  return strcmp(s->env.model, "world") ? s->run.sim_train : "";
}

/* ---------------------------------------------------------------- the learner role */

enum { M_UPD, M_CRIT, M_ACT, M_ENT, M_BC, M_ADV, M_VAL, M_TD, M_GN, M_W0,
       M_LAGSUM = M_W0 + AGENT_MAX_LEVELS + 1, M_LAGN, M_N };

typedef struct ldist {
  comm *ep;
  const learner_train_options *opt;
  const hsrl_settings *s;
  const char *run_dir;
  char ckpt_dir[LEARNER_PATH_MAX + 8];
  int R, n_actors, n_mlc, sync;
  learner_world w;
  agent *a;
  replay_rows_shape shape;
  replay_rows_buf rows; /* (B) the batch being assembled from the shards */
  replay_block *block;
  uint8_t *in_buf;
  int64_t in_cap;
  comm_bcast *bc;
  float *params_out; /* the broadcast's copy of the policy */
  int64_t n_params;
  int bc_busy;
  int64_t iteration;
  FILE *metrics;
  double m[M_N], lag_min, lag_max, t0, t_int;
  learner_dist_actor_stats act_now[4096], act_prev[4096];
  int64_t shard_c[64][REPLAY_SERVER_N_COUNTERS], shard_prev[64][REPLAY_SERVER_N_COUNTERS];
} ldist;

static void ld_nap(void) {
  struct timespec ts = {0, 200000};
  nanosleep(&ts, NULL);
}

/* Receives everything but what we wait for: STATS from actors. */
static hsrl_status ld_drain_stats(ldist *L) {
  for (;;) {
    int found = 0;
    comm_probe pr;
    LD_TRY(comm_poll(L->ep, COMM_ANY, COMM_KIND_STATS, &found, &pr));
    if (!found) return HSRL_OK;
    comm_header h;
    learner_dist_actor_stats as;
    LD_TRY(comm_recv(L->ep, pr.src, COMM_KIND_STATS, &as, sizeof as, LEARNER_DIST_DEADLINE_S, &h));
    int i = h.sender - 1 - L->R;
    if (i >= 0 && i < L->n_actors && i < 4096 && h.bytes == (int64_t)sizeof as) L->act_now[i] = as;
  }
}

/* Waits for a message (src, kind) while draining STATS (so no sender is pushed back forever). */
static hsrl_status ld_wait(ldist *L, int src, int kind, void *buf, int64_t cap, comm_header *h) {
  double t0 = hsrl_time_now();
  for (;;) {
    int found = 0;
    LD_TRY(comm_poll(L->ep, src, kind, &found, NULL));
    if (found) return comm_recv(L->ep, src, kind, buf, cap, LEARNER_DIST_DEADLINE_S, h);
    LD_TRY(ld_drain_stats(L));
    if (hsrl_time_now() - t0 > LEARNER_DIST_DEADLINE_S) {
      char a[48], b[48];
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL, "%s got no %s message from %s within %.0f s",
                      comm_peer_name(L->ep, 0, a, sizeof a), comm_kind_name(kind),
                      comm_peer_name(L->ep, src, b, sizeof b), LEARNER_DIST_DEADLINE_S);
    }
    ld_nap();
  }
}

static int64_t ld_rows_of(const ldist *L, int r) {
  const int64_t B = L->s->train.batch;
  return (r + 1) * B / L->R - r * B / L->R;
}

static hsrl_status ld_request(ldist *L, int64_t k) {
  for (int r = 0; r < L->R; r++) {
    int64_t req[2] = {k, ld_rows_of(L, r)};
    LD_TRY(comm_send(L->ep, 1 + r, COMM_KIND_SAMPLE_REQUEST, L->iteration, req, sizeof req,
                     LEARNER_DIST_DEADLINE_S));
  }
  return HSRL_OK;
}

/* Batch k from every shard into L->rows. */
static hsrl_status ld_gather(ldist *L, int64_t k) {
  const int64_t B = L->s->train.batch;
  const size_t off = REPLAY_SERVER_N_COUNTERS * sizeof(int64_t);
  for (int r = 0; r < L->R; r++) {
    comm_header h;
    char src[64];
    LD_TRY(ld_wait(L, 1 + r, COMM_KIND_SAMPLE_BATCH, L->in_buf, L->in_cap, &h));
    if (h.policy_version != k || h.bytes < (int64_t)off)
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "SAMPLE_BATCH", "shard %d answered request %lld with %lld",
                      r, (long long)k, (long long)h.policy_version);
    memcpy(L->shard_c[r], L->in_buf, off);
    /* unpack into rows [r*B/R, ...) through a view of the owned buffer at that offset */
    replay_rows_buf part = L->rows;
    const int64_t row0 = r * B / L->R, H = L->shape.history_len, K = L->shape.slate_size;
    const int64_t KL = K * L->shape.n_levels;
    part.capacity = L->rows.capacity - row0;
    part.users += row0, part.history += row0 * H, part.slate += row0 * K;
    part.next_users += row0, part.next_history += row0 * H, part.policy_version += row0;
    part.clicks += row0 * K, part.done += row0, part.reward += row0;
    if (part.tokens) part.tokens += row0 * KL;
    if (part.logp) part.logp += row0 * KL;
    int64_t n = 0;
    snprintf(src, sizeof src, "batch from shard %d", r);
    LD_TRY(replay_block_unpack(L->block, &part, L->in_buf + off, (size_t)(h.bytes - (int64_t)off), src, &n, NULL));
    if (n != ld_rows_of(L, r))
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "SAMPLE_BATCH", "shard %d sent %lld rows, asked %lld", r,
                      (long long)n, (long long)ld_rows_of(L, r));
  }
  return HSRL_OK;
}

static hsrl_status ld_broadcast(ldist *L, int64_t version) {
  if (L->n_actors == 0) return HSRL_OK;
  if (L->bc_busy) {
    int done = 0;
    if (L->sync) {
      LD_TRY(comm_bcast_wait(L->bc, LEARNER_DIST_DEADLINE_S, NULL));
      done = 1;
    } else {
      LD_TRY(comm_bcast_test(L->bc, &done, NULL));
    }
    if (!done) return HSRL_OK; /* async: skipped; the next boundary carries newer parameters */
    L->bc_busy = 0;
  }
  memcpy(L->params_out, L->a->vt->policy_params(L->a), (size_t)L->n_params * sizeof(float));
  LD_TRY(comm_bcast_start(L->bc, L->params_out, L->n_params * (int64_t)sizeof(float), version));
  L->bc_busy = 1;
  if (!L->sync)
    for (int i = 0; i < L->n_actors; i++) {
      hsrl_status st = comm_send(L->ep, 1 + L->R + i, COMM_KIND_PING, version, NULL, 0, 0);
      if (st == HSRL_E_TIMEOUT) hsrl_err_clear();
      else LD_TRY(st);
    }
  return HSRL_OK;
}

static hsrl_status ld_checkpoint(ldist *L) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  char path[LEARNER_PATH_MAX + 64];
  size_t n = hsrl_settings_write(L->s, 0, NULL, 0) + 1;
  char *text = hsrl_malloc(n);
  hsrl_settings_write(L->s, 0, text, n);
  /* the shards first: a checkpoint file exists only when its cut is complete */
  for (int r = 0; r < L->R; r++)
    HSRL_TRY(comm_send(L->ep, 1 + r, COMM_KIND_CHECKPOINT_REQUEST, L->iteration, &L->iteration,
                       sizeof L->iteration, LEARNER_DIST_DEADLINE_S));
  for (int r = 0; r < L->R; r++) {
    comm_header h;
    int64_t it = -1;
    HSRL_TRY(ld_wait(L, 1 + r, COMM_KIND_CHECKPOINT_DONE, &it, sizeof it, &h));
    if (it != L->iteration) {
      st = hsrl_err(HSRL_E_INPUT, NULL, 0, "CHECKPOINT_DONE", "shard %d snapshot of %lld, not %lld", r,
                    (long long)it, (long long)L->iteration);
      goto done;
    }
  }
  snprintf(path, sizeof path, "%s/step-%lld.h5", L->ckpt_dir, (long long)L->iteration);
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, LEARNER_TRAIN_CKPT_KIND, LEARNER_TRAIN_CKPT_VERSION, hsrl_settings_hash(L->s)));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "iteration", L->iteration));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "config", text));
  HSRL_TRY(L->a->vt->save(L->a, f));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  hsrl_free(text);
  if (st != HSRL_OK) hsrl_err_context(st, "writing checkpoint %s", path);
  return st;
}

static void ld_metrics_header(ldist *L) {
  fprintf(L->metrics, "iteration\tseconds\tupdates_per_s\tactor_steps_per_s\tuser_steps_per_s"
                      "\treplay_inserts_per_s\treplay_samples_per_s\tcritic_loss\tactor_loss\tentropy"
                      "\tbc_loss\tadvantage\tvalue\ttd_target\tgrad_norm");
  for (int j = 0; j < L->n_mlc; j++) fprintf(L->metrics, "\tmlc_w%d", j);
  fprintf(L->metrics, "\tepisodes\ttotal_reward\tdepth\tlag_min\tlag_mean\tlag_max\treplay_size"
                      "\tsample_waits\tinsert_waits\tqueue_full\n");
  fflush(L->metrics);
}

static void ld_report(ldist *L) {
  double now = hsrl_time_now(), dt = now - L->t_int;
  if (dt <= 0.0) dt = 1e-9;
  double nu = L->m[M_UPD] > 0 ? L->m[M_UPD] : 1.0;
  double steps = 0, us = 0, ep = 0, er = 0, ed = 0;
  for (int i = 0; i < L->n_actors && i < 4096; i++) {
    steps += L->act_now[i].steps - L->act_prev[i].steps;
    us += L->act_now[i].user_steps - L->act_prev[i].user_steps;
    ep += L->act_now[i].episodes - L->act_prev[i].episodes;
    er += L->act_now[i].episode_reward - L->act_prev[i].episode_reward;
    ed += L->act_now[i].episode_depth - L->act_prev[i].episode_depth;
    L->act_prev[i] = L->act_now[i];
  }
  int64_t d[REPLAY_SERVER_N_COUNTERS] = {0}, size = 0;
  for (int r = 0; r < L->R && r < 64; r++) {
    for (int c = 0; c < REPLAY_SERVER_N_COUNTERS; c++) d[c] += L->shard_c[r][c] - L->shard_prev[r][c];
    size += L->shard_c[r][REPLAY_SERVER_C_SIZE];
    memcpy(L->shard_prev[r], L->shard_c[r], sizeof L->shard_c[r]);
  }
  fprintf(L->metrics, "%lld\t%.3f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f", (long long)L->iteration, now - L->t0,
          L->m[M_UPD] / dt, steps / dt, us / dt, (double)d[REPLAY_SERVER_C_INSERTED] / dt,
          (double)d[REPLAY_SERVER_C_SAMPLED] / dt);
  for (int k = M_CRIT; k <= M_GN; k++) fprintf(L->metrics, "\t%.6g", L->m[k] / nu);
  for (int j = 0; j < L->n_mlc; j++) fprintf(L->metrics, "\t%.6g", L->m[M_W0 + j] / nu);
  if (ep > 0) fprintf(L->metrics, "\t%.0f\t%.6g\t%.6g", ep, er / ep, ed / ep);
  else fprintf(L->metrics, "\t0\tnan\tnan");
  double ln = L->m[M_LAGN];
  fprintf(L->metrics, "\t%.0f\t%.3f\t%.0f\t%lld\t%lld\t%lld\t%lld\n", ln > 0 ? L->lag_min : 0.0,
          ln > 0 ? L->m[M_LAGSUM] / ln : 0.0, ln > 0 ? L->lag_max : 0.0, (long long)size,
          (long long)d[REPLAY_SERVER_C_SAMPLE_WAITS], (long long)d[REPLAY_SERVER_C_INSERT_WAITS],
          (long long)d[REPLAY_SERVER_C_QUEUE_FULL]);
  fflush(L->metrics);
  memset(L->m, 0, sizeof L->m);
  L->t_int = now;
}

static hsrl_status ld_update(ldist *L) {
  const int64_t B = L->s->train.batch, k = L->iteration + 1;
  replay_rows r = replay_rows_buf_view(&L->rows, 0, B);
  agent_batch b;
  memset(&b, 0, sizeof b);
  b.B = B, b.users = r.users, b.history = r.history, b.slate = r.slate, b.tokens = r.tokens;
  b.clicks = r.clicks, b.reward = r.reward, b.done = r.done, b.next_users = r.next_users;
  b.next_history = r.next_history, b.behaviour_logp = r.behaviour_logp;
  agent_stats st;
  memset(&st, 0, sizeof st);
  agent_learn(L->a, &b, &st);
  L->iteration = k;
  if (L->opt->on_update) L->opt->on_update(L->opt->on_update_ctx, k, &st);
  if (!(isfinite(st.critic_loss) && isfinite(st.actor_loss) && isfinite(st.grad_norm)))
    return hsrl_err(HSRL_E_INTERNAL, L->run_dir, 0, "loss",
                    "iteration %lld: non-finite loss or gradient; stopped without a checkpoint",
                    (long long)k);
  double *m = L->m;
  m[M_UPD] += 1.0, m[M_CRIT] += st.critic_loss, m[M_ACT] += st.actor_loss, m[M_ENT] += st.entropy;
  m[M_BC] += st.bc_loss, m[M_ADV] += st.advantage, m[M_VAL] += st.value, m[M_TD] += st.td_target;
  m[M_GN] += st.grad_norm;
  for (int j = 0; j < L->n_mlc && j <= AGENT_MAX_LEVELS; j++) m[M_W0 + j] += st.level_weight[j];
  for (int64_t i = 0; i < B; i++) {
    double lag = (double)(k - 1 - r.policy_version[i]);
    if (m[M_LAGN] == 0 || lag < L->lag_min) L->lag_min = lag;
    if (m[M_LAGN] == 0 || lag > L->lag_max) L->lag_max = lag;
    m[M_LAGSUM] += lag, m[M_LAGN] += 1.0;
  }
  return HSRL_OK;
}

static hsrl_status ld_loop(ldist *L) {
  const hsrl_settings *s = L->s;
  const int64_t N = s->train.iterations;
  LD_TRY(ld_broadcast(L, 0));
  LD_TRY(ld_request(L, 1));
  L->t0 = L->t_int = hsrl_time_now();
  while (L->iteration < N) {
    const int64_t k = L->iteration + 1;
    if (k + 1 <= N) LD_TRY(ld_request(L, k + 1)); /* one ahead */
    LD_TRY(ld_gather(L, k));
    LD_TRY(ld_update(L));
    LD_TRY(ld_drain_stats(L));
    if (k % s->dist.broadcast_every == 0) LD_TRY(ld_broadcast(L, k));
    if (k % s->train.report_every == 0 || k == N) ld_report(L);
    if ((s->train.checkpoint_every > 0 && k % s->train.checkpoint_every == 0) || k == N)
      LD_TRY(ld_checkpoint(L));
  }
  /* stop: the last broadcast must finish (members take every one in order) */
  if (L->bc_busy) {
    LD_TRY(comm_bcast_wait(L->bc, LEARNER_DIST_DEADLINE_S, NULL));
    L->bc_busy = 0;
  }
  for (int r = 1; r < comm_size(L->ep); r++)
    LD_TRY(comm_send(L->ep, r, COMM_KIND_STOP, L->iteration, NULL, 0, LEARNER_DIST_DEADLINE_S));
  return HSRL_OK;
}

static hsrl_status ld_mkdirs(const char *path) {
  char buf[LEARNER_PATH_MAX + 16];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++)
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      mkdir(buf, 0777);
      *p = c;
      if (c == '\0') break;
    }
  struct stat sb;
  if (stat(path, &sb) != 0) return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot create directory");
  return HSRL_OK;
}

static hsrl_status learner_dist_learner(comm *ep, const learner_train_options *opt, const char *run_dir) {
  hsrl_status st = HSRL_OK;
  ldist *L = hsrl_calloc(1, sizeof *L);
  const hsrl_settings *s = &opt->settings;
  L->ep = ep, L->opt = opt, L->s = s, L->run_dir = run_dir, L->sync = s->dist.sync ? 1 : 0;
  L->R = (int)s->dist.replay_shards;
  L->n_actors = comm_size(ep) - 1 - L->R;
  snprintf(L->ckpt_dir, sizeof L->ckpt_dir, "%s/ckpt", run_dir);
  HSRL_TRY(ld_mkdirs(L->ckpt_dir));
  const int64_t Bt = s->train.batch;
  HSRL_TRY(learner_train_world_load(&L->w, s, learner_dist_sim_path(s), s->env.batch));
  HSRL_TRY(learner_train_make_agent(&L->a, s, &L->w, Bt,
                                    hsrl_rng_derive((uint64_t)s->run.seed, LEARNER_DIST_PURPOSE_AGENT), 0));
  int64_t max_vocab = 0;
  learner_dist_shape(&L->w, s, &L->shape, &max_vocab);
  L->n_mlc = strcmp(s->agent.kind, "sl") ? (int)L->shape.n_levels + 1 : 0;
  replay_rows_buf_init(&L->rows, &L->shape, Bt);
  {
    replay_block_config bc = {L->shape, Bt, max_vocab, hsrl_settings_hash(s), IO_ZSTD_DEFAULT_LEVEL};
    HSRL_TRY(replay_block_init(&L->block, &bc));
    L->in_cap = (int64_t)replay_block_bound(L->block) + REPLAY_SERVER_N_COUNTERS * 8;
    L->in_buf = hsrl_alloc_aligned((size_t)L->in_cap);
  }
  L->n_params = L->a->vt->n_policy_params(L->a);
  L->params_out = hsrl_alloc_aligned((size_t)L->n_params * sizeof(float));
  if (L->n_actors > 0) {
    int members[4096], n = 0;
    for (int r = 1 + L->R; r < comm_size(ep) && n < 4096; r++) members[n++] = r;
    HSRL_TRY(comm_bcast_open(&L->bc, ep, 0, members, n));
  }
  {
    char mpath[LEARNER_PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/metrics.tsv", run_dir);
    L->metrics = fopen(mpath, "w");
    if (!L->metrics) {
      st = hsrl_err(HSRL_E_IO, mpath, 0, NULL, "cannot write");
      goto done;
    }
    ld_metrics_header(L);
  }
  st = ld_loop(L);
  if (st == HSRL_OK && !opt->quiet)
    HSRL_INFO("distributed run %s: %lld updates, %d replay shards, %d actors", run_dir,
              (long long)L->iteration, L->R, L->n_actors);
done:
  if (L->metrics) fclose(L->metrics);
  comm_bcast_free(L->bc);
  agent_free(L->a);
  learner_train_world_free(&L->w);
  replay_rows_buf_free(&L->rows);
  replay_block_free(L->block);
  hsrl_free(L->in_buf), hsrl_free(L->params_out);
  hsrl_free(L);
  return st;
}

/* ---------------------------------------------------------------- roles and launcher */

typedef struct ld_role {
  comm *ep;
  const learner_train_options *opt;
  const char *run_dir;
  learner_dist_actor_fn actor_fn;
  hsrl_status st;
  char msg[1024];
} ld_role;

static hsrl_status ld_replay_role(comm *ep, const learner_train_options *opt, const char *run_dir) {
  const hsrl_settings *s = &opt->settings;
  learner_world w;
  HSRL_CHECK(s->env.batch >= 1);
  hsrl_status st = learner_train_world_load(&w, s, learner_dist_sim_path(s), s->env.batch);
  if (st != HSRL_OK) return st;
  replay_server_config c;
  memset(&c, 0, sizeof c);
  c.settings = s;
  learner_dist_shape(&w, s, &c.shape, &c.max_vocab);
  learner_train_world_free(&w);
  c.config_hash = hsrl_settings_hash(s);
  c.run_dir = run_dir;
  c.n_prefill_steps = learner_dist_prefill_steps(s, comm_size(ep) - 1 - s->dist.replay_shards);
  c.deadline_s = LEARNER_DIST_DEADLINE_S;
  return replay_server_run(ep, &c);
}

static void *ld_role_main(void *arg) {
  ld_role *r = arg;
  switch (comm_my_role(r->ep)) {
    case COMM_ROLE_LEARNER: r->st = learner_dist_learner(r->ep, r->opt, r->run_dir); break;
    case COMM_ROLE_REPLAY: r->st = ld_replay_role(r->ep, r->opt, r->run_dir); break;
    default: r->st = r->actor_fn(r->ep, r->opt); break;
  }
  if (r->st != HSRL_OK) {
    snprintf(r->msg, sizeof r->msg, "%s", hsrl_err_message());
    HSRL_ERROR("rank %d (%s): %s", comm_rank(r->ep), comm_role_name(comm_my_role(r->ep)), r->msg);
  }
  return NULL;
}

hsrl_status learner_dist_run(const learner_train_options *opt, comm_transport transport, int n_ranks,
                             learner_dist_actor_fn actor_fn) {
  hsrl_status st = HSRL_OK;
  const hsrl_settings *s = &opt->settings;
  char run_dir[LEARNER_PATH_MAX];
  comm_world *w = NULL;
  ld_role *roles = NULL;
  pthread_t *th = NULL;
  if (opt->resume)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "--resume", "resuming a distributed run is not implemented yet");
  if (s->dist.replay_shards < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards",
                    "the distributed job needs replay shard ranks (dist.replay_shards >= 1; 0, the "
                    "replay inside the learner, is not implemented yet)");
  if (s->dist.replay_shards > 64 || s->train.batch < s->dist.replay_shards)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards", "at most 64 and at most train.batch");
  if (opt->run_dir[0]) snprintf(run_dir, sizeof run_dir, "%s", opt->run_dir);
  else snprintf(run_dir, sizeof run_dir, "%s/%s", s->run.out_dir, s->run.name);
  comm_config cc = comm_config_defaults();
  cc.transport = transport;
  cc.n_ranks = n_ranks;
  cc.n_replay_shards = (int)s->dist.replay_shards;
  cc.config_hash = hsrl_settings_hash(s);
  {
    /* the largest message: a parameter vector or a batch; in-process inboxes deep enough for
     * the sync prefill (an actor runs that far ahead of the first request) */
    learner_world lw;
    HSRL_TRY(learner_train_world_load(&lw, s, learner_dist_sim_path(s), s->env.batch));
    agent *a = NULL;
    st = learner_train_make_agent(&a, s, &lw, 1, 0, 1);
    int64_t np = a ? a->vt->n_policy_params(a) : 0;
    agent_free(a);
    learner_train_world_free(&lw);
    if (st != HSRL_OK) goto done;
    int64_t big = np * 4 + 4096;
    int64_t rows = s->train.batch > s->dist.block_rows ? s->train.batch : s->dist.block_rows;
    int64_t per_row = 8 * (2 * s->data.history_len + 4 * s->data.slate_size * 8 + 16);
    if (rows * per_row + 65536 > big) big = rows * per_row + 65536;
    cc.max_payload_bytes = big;
    int64_t steps = learner_dist_prefill_steps(s, 1) + 4;
    int64_t msgs = steps * (s->env.batch / s->dist.block_rows + 2) + 16;
    cc.n_slots = msgs > 64 ? (int)(msgs < 4096 ? msgs : 4096) : 64;
  }
  HSRL_TRY(comm_world_open(&w, &cc));
  if (comm_world_size(w) < 2 + s->dist.replay_shards) {
    st = hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards",
                  "%d ranks cannot hold the learner, %lld replay shards and an actor",
                  comm_world_size(w), (long long)s->dist.replay_shards);
    goto done;
  }
  if (comm_world_is_mpi(w) && comm_rank(comm_world_local(w, 0)) == 0) HSRL_TRY(ld_mkdirs(run_dir));
  if (!comm_world_is_mpi(w)) HSRL_TRY(ld_mkdirs(run_dir));
  {
    const int n = comm_world_n_local(w);
    roles = hsrl_calloc((size_t)n, sizeof *roles);
    th = hsrl_calloc((size_t)n, sizeof *th);
    for (int i = 0; i < n; i++) {
      roles[i].ep = comm_world_local(w, i), roles[i].opt = opt, roles[i].run_dir = run_dir;
      roles[i].actor_fn = actor_fn;
    }
    if (n == 1) {
      ld_role_main(&roles[0]);
    } else {
      for (int i = 0; i < n; i++) HSRL_CHECK(pthread_create(&th[i], NULL, ld_role_main, &roles[i]) == 0);
      for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    }
    for (int i = 0; i < n && st == HSRL_OK; i++)
      if (roles[i].st != HSRL_OK)
        st = hsrl_err(roles[i].st, NULL, 0, NULL, "rank %d: %s", comm_rank(roles[i].ep), roles[i].msg);
  }
done:
  comm_world_free(w);
  hsrl_free(roles), hsrl_free(th);
  return st;
}
