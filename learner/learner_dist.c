/* learner_dist.c: the learner role and the launcher of the distributed job (see learner_dist.h). */
#include "learner/learner_dist.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_log.h"
#include "common/hsrl_progress.h"
#include "common/hsrl_timer.h"
#include "common/hsrl_watchdog.h"
#include "common/io/io_h5.h"
#include "common/io/io_zstd.h"
#include "learner/learner_select.h"
#include "replay/replay_block.h"
#include "replay/replay_server.h"
#include "replay/replay_shard.h"
#include "replay/replay_snapshot.h"

#define LD_TRY(expr) \
  do { hsrl_status s_ = (expr); if (s_ != HSRL_OK) return s_; } while (0)

double learner_dist_deadline(const learner_train_options *opt) {
  return opt->deadline_s > 0.0 ? opt->deadline_s : LEARNER_DIST_DEADLINE_S;
}

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
       M_LAGSUM = M_W0 + AGENT_MAX_LEVELS + 1, M_LAGN, M_LAGMIN, M_LAGMAX, M_N };

#define LD_MAX_ACTORS 4096
#define LD_MAX_SHARDS 64

typedef struct ldist {
  comm *ep;
  const learner_train_options *opt;
  const hsrl_settings *s;
  const char *run_dir;
  char ckpt_dir[LEARNER_PATH_MAX + 8];
  int R, n_actors, n_mlc, sync;
  double deadline;
  int64_t n_pre; /* sync: actor steps before update 1 */
  learner_world w;
  agent *a;
  replay_rows_shape shape;
  replay_rows_buf rows; /* (B) R > 0: the batch being assembled from the shards */
  replay_block *block;
  uint8_t *in_buf;
  int64_t in_cap;
  /* R = 0: the replay inside the learner */
  replay_shard *local;
  int actors[LD_MAX_ACTORS];
  int64_t steps_in; /* sync: actor steps ingested */
  int64_t *taken;   /* (size) messages taken from each actor rank (credits) */
  comm_bcast *bc;
  float *params_out; /* the broadcast's copy of the policy */
  int64_t n_params, bc_version;
  int bc_busy;
  int64_t iteration;
  learner_select sel; /* train.val_every: validation on the learner rank, between updates */
  FILE *metrics;
  double m[M_N], t0, t_int, seconds_before;
  hsrl_progress progress;
  int64_t progress_from;
  learner_dist_actor_stats act_now[LD_MAX_ACTORS], act_prev[LD_MAX_ACTORS];
  int64_t shard_c[LD_MAX_SHARDS][REPLAY_SERVER_N_COUNTERS], shard_prev[LD_MAX_SHARDS][REPLAY_SERVER_N_COUNTERS];
} ldist;

static void ld_nap(void) {
  struct timespec ts = {0, 200000};
  nanosleep(&ts, NULL);
}

static void ld_take_stats(ldist *L, const comm_header *h, const void *payload) {
  int i = h->sender - 1 - L->R;
  if (i >= 0 && i < L->n_actors && i < LD_MAX_ACTORS && h->bytes == (int64_t)sizeof(learner_dist_actor_stats))
    memcpy(&L->act_now[i], payload, sizeof(learner_dist_actor_stats));
}

/* Messages an ingest (R = 0) does not expect: STATS are taken, anything else is an error. */
static hsrl_status ld_on_other(void *ctx, const comm_header *h, const void *payload) {
  ldist *L = ctx;
  if (h->kind == COMM_KIND_STATS) {
    ld_take_stats(L, h, payload);
    return HSRL_OK;
  }
  return hsrl_err(HSRL_E_INPUT, NULL, 0, "kind", "the learner got %s from rank %d",
                  comm_kind_name(h->kind), h->sender);
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
    LD_TRY(comm_recv(L->ep, pr.src, COMM_KIND_STATS, &as, sizeof as, L->deadline, &h));
    ld_take_stats(L, &h, &as);
  }
}

/* Waits for a message (src, kind) while draining STATS (so no sender is pushed back forever). */
static hsrl_status ld_wait(ldist *L, int src, int kind, void *buf, int64_t cap, comm_header *h) {
  double t0 = hsrl_time_now();
  for (;;) {
    int found = 0;
    LD_TRY(comm_poll(L->ep, src, kind, &found, NULL));
    if (found) return comm_recv(L->ep, src, kind, buf, cap, L->deadline, h);
    LD_TRY(ld_drain_stats(L));
    if (hsrl_time_now() - t0 > L->deadline) {
      char a[48], b[48];
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL, "%s got no %s message from %s within %.3g s",
                      comm_peer_name(L->ep, 0, a, sizeof a), comm_kind_name(kind),
                      comm_peer_name(L->ep, src, b, sizeof b), L->deadline);
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
    LD_TRY(comm_send(L->ep, 1 + r, COMM_KIND_SAMPLE_REQUEST, L->iteration, req, sizeof req, L->deadline));
  }
  return HSRL_OK;
}

/* R > 0: batch k from every shard into L->rows. */
static hsrl_status ld_gather_shards(ldist *L, int64_t k, replay_rows *out) {
  const int64_t B = L->s->train.batch;
  const size_t off = REPLAY_SERVER_N_COUNTERS * sizeof(int64_t);
  for (int r = 0; r < L->R; r++) {
    comm_header h;
    char src[64];
    LD_TRY(ld_wait(L, 1 + r, COMM_KIND_SAMPLE_BATCH, L->in_buf, L->in_cap, &h));
    hsrl_watchdog_mark("learner: gathering a batch from the shards");
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
  *out = replay_rows_buf_view(&L->rows, 0, B);
  return HSRL_OK;
}

/* R = 0: batch k from the learner's own shard, fed by the actors meanwhile. */
static hsrl_status ld_gather_local(ldist *L, int64_t k, replay_rows *out) {
  const int64_t B = L->s->train.batch;
  if (L->sync) {
    LD_TRY(replay_server_ingest_steps(L->ep, L->local, L->actors, L->n_actors, L->in_buf, L->in_cap,
                                      L->deadline, &L->steps_in, L->n_pre + k, L->taken, ld_on_other, L));
    if (!replay_shard_sample(L->local, B, out))
      return hsrl_err(HSRL_E_INTERNAL, NULL, 0, "limiter", "sync replay refused a sample");
  } else {
    double idle_since = hsrl_time_now();
    for (;;) {
      int progress = 0;
      LD_TRY(replay_server_ingest_waiting(L->ep, L->local, L->in_buf, L->in_cap, L->deadline, L->taken,
                                          &progress));
      if (replay_shard_sample(L->local, B, out)) break;
      LD_TRY(ld_drain_stats(L));
      if (progress) {
        hsrl_watchdog_mark("learner: ingesting its actors' transitions");
        idle_since = hsrl_time_now();
        continue;
      }
      if (hsrl_time_now() - idle_since > L->deadline)
        return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                        "rank 0 (learner) got no transitions from its actors within %.3g s (update "
                        "%lld, replay holds %lld)",
                        L->deadline, (long long)k, (long long)replay_shard_size(L->local));
      ld_nap();
    }
  }
  const replay_shard_counters *c = replay_shard_get_counters(L->local);
  int64_t *sc = L->shard_c[0];
  sc[REPLAY_SERVER_C_INSERTED] = c->inserted, sc[REPLAY_SERVER_C_SAMPLED] = c->sampled;
  sc[REPLAY_SERVER_C_SAMPLE_WAITS] = c->sample_waits, sc[REPLAY_SERVER_C_INSERT_WAITS] = c->insert_waits;
  sc[REPLAY_SERVER_C_QUEUE_FULL] = c->queue_full, sc[REPLAY_SERVER_C_BLOCKS] = c->blocks_received;
  sc[REPLAY_SERVER_C_SIZE] = replay_shard_size(L->local), sc[REPLAY_SERVER_C_QUEUED] = replay_shard_queued(L->local);
  return HSRL_OK;
}

/* Broadcasts params_out (from_agent: a fresh copy of the agent's policy first) as `version`. */
static hsrl_status ld_broadcast(ldist *L, int64_t version, int from_agent) {
  if (L->n_actors == 0) return HSRL_OK;
  if (L->bc_busy) {
    int done = 0;
    if (L->sync) {
      LD_TRY(comm_bcast_wait(L->bc, L->deadline, NULL));
      done = 1;
    } else {
      LD_TRY(comm_bcast_test(L->bc, &done, NULL));
    }
    if (!done) return HSRL_OK; /* async: skipped; the next boundary carries newer parameters */
    L->bc_busy = 0;
  }
  if (from_agent) memcpy(L->params_out, L->a->vt->policy_params(L->a), (size_t)L->n_params * sizeof(float));
  LD_TRY(comm_bcast_start(L->bc, L->params_out, L->n_params * (int64_t)sizeof(float), version));
  L->bc_busy = 1;
  L->bc_version = version;
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
  snprintf(path, sizeof path, "%s/step-%lld.h5", L->ckpt_dir, (long long)L->iteration);
  /* the shards first: a checkpoint file exists only when its cut is complete */
  hsrl_watchdog_mark("learner: checkpoint: the shards' snapshots");
  if (L->R == 0) {
    hsrl_watchdog_disarm("learner: writing its replay snapshot (not watched)");
    HSRL_TRY(replay_server_snapshot(L->local, L->run_dir, 0, L->iteration));
    hsrl_watchdog_mark("learner: checkpoint: its replay snapshot written");
  }
  for (int r = 0; r < L->R; r++)
    HSRL_TRY(comm_send(L->ep, 1 + r, COMM_KIND_CHECKPOINT_REQUEST, L->iteration, &L->iteration,
                       sizeof L->iteration, L->deadline));
  for (int r = 0; r < L->R; r++) {
    comm_header h;
    int64_t it = -1;
    HSRL_TRY(ld_wait(L, 1 + r, COMM_KIND_CHECKPOINT_DONE, &it, sizeof it, &h));
    hsrl_watchdog_mark("learner: checkpoint: the shards' snapshots");
    if (it != L->iteration) {
      st = hsrl_err(HSRL_E_INPUT, NULL, 0, "CHECKPOINT_DONE", "shard %d snapshot of %lld, not %lld", r,
                    (long long)it, (long long)L->iteration);
      goto done;
    }
  }
  /* local I/O that waits for no peer: not watched */
  hsrl_watchdog_disarm("learner: writing the checkpoint file (not watched)");
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, LEARNER_TRAIN_CKPT_KIND, LEARNER_TRAIN_CKPT_VERSION, hsrl_settings_hash(L->s)));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "iteration", L->iteration));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "config", text));
  HSRL_TRY(L->a->vt->save(L->a, f));
  {
    int64_t dims[1] = {L->n_params};
    HSRL_TRY(io_h5_write_f32(f, "learner/dist/policy", L->params_out, 1, dims, 0));
    HSRL_TRY(io_h5_attr_set_i64(f, "learner/dist", "policy_version", L->bc_version));
    HSRL_TRY(io_h5_attr_set_i64(f, "learner/dist", "replay_shards", L->R));
    HSRL_TRY(io_h5_attr_set_i64(f, "learner/dist", "actors", L->n_actors));
    HSRL_TRY(io_h5_attr_set_i64(f, "learner/dist", "sync", L->sync));
    HSRL_TRY(io_h5_attr_set_i64(f, "learner/dist", "prefill_steps", L->n_pre));
    int64_t mdims[1] = {M_N};
    HSRL_TRY(io_h5_write_f64(f, "learner/metrics/interval_sums", L->m, 1, mdims, 0));
  }
  HSRL_TRY(learner_select_write(&L->sel, f));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  hsrl_free(text);
  hsrl_watchdog_mark("learner: after writing the checkpoint file");
  if (st != HSRL_OK) hsrl_err_context(st, "writing checkpoint %s", path);
  return st;
}

/* Resume: the agent, the last broadcast and the metrics interval of checkpoint k. */
static hsrl_status ld_restore(ldist *L, int64_t k) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  char path[LEARNER_PATH_MAX + 64];
  int64_t it = -1;
  snprintf(path, sizeof path, "%s/step-%lld.h5", L->ckpt_dir, (long long)k);
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(learner_train_check_resume_config(f, path, L->s));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "iteration", &it));
  if (it != k) {
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, "iteration", "%lld, the file name says %lld", (long long)it,
                  (long long)k);
    goto done;
  }
  HSRL_TRY(L->a->vt->load(L->a, f));
  HSRL_TRY(io_h5_read_f32(f, "learner/dist/policy", L->params_out, L->n_params));
  HSRL_TRY(io_h5_attr_get_i64(f, "learner/dist", "policy_version", &L->bc_version));
  if (L->bc_version < 0 || L->bc_version > k) {
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, "learner/dist/policy_version", "%lld outside [0, %lld]",
                  (long long)L->bc_version, (long long)k);
    goto done;
  }
  HSRL_TRY(io_h5_read_f64(f, "learner/metrics/interval_sums", L->m, M_N));
  HSRL_TRY(learner_select_read(&L->sel, f, path));
  L->iteration = k;
done:
  io_h5_close(f);
  if (st != HSRL_OK) hsrl_err_context(st, "resuming from %s", path);
  return st;
}

static void ld_metrics_header(ldist *L) {
  fprintf(L->metrics, "iteration\tseconds\tupdates_per_s\tactor_steps_per_s\tuser_steps_per_s"
                      "\treplay_inserts_per_s\treplay_samples_per_s\tcritic_loss\tactor_loss\tentropy"
                      "\tbc_loss\tadvantage\tvalue\ttd_target\tgrad_norm");
  for (int j = 0; j < L->n_mlc; j++) fprintf(L->metrics, "\tmlc_w%d", j);
  fprintf(L->metrics, "\tepisodes\ttotal_reward\tdepth\tlag_min\tlag_mean\tlag_max\treplay_size"
                      "\tsample_waits\tinsert_waits\tqueue_full%s\n",
          L->sel.every > 0 ? "\tval_reward" : "");
  fflush(L->metrics);
}

static void ld_report(ldist *L) {
  double now = hsrl_time_now(), dt = now - L->t_int;
  if (dt <= 0.0) dt = 1e-9;
  double nu = L->m[M_UPD] > 0 ? L->m[M_UPD] : 1.0;
  double steps = 0, us = 0, ep = 0, er = 0, ed = 0;
  for (int i = 0; i < L->n_actors && i < LD_MAX_ACTORS; i++) {
    steps += L->act_now[i].steps - L->act_prev[i].steps;
    us += L->act_now[i].user_steps - L->act_prev[i].user_steps;
    ep += L->act_now[i].episodes - L->act_prev[i].episodes;
    er += L->act_now[i].episode_reward - L->act_prev[i].episode_reward;
    ed += L->act_now[i].episode_depth - L->act_prev[i].episode_depth;
    L->act_prev[i] = L->act_now[i];
  }
  const int n_shards = L->R > 0 ? L->R : 1;
  int64_t d[REPLAY_SERVER_N_COUNTERS] = {0}, size = 0;
  for (int r = 0; r < n_shards && r < LD_MAX_SHARDS; r++) {
    for (int c = 0; c < REPLAY_SERVER_N_COUNTERS; c++) d[c] += L->shard_c[r][c] - L->shard_prev[r][c];
    size += L->shard_c[r][REPLAY_SERVER_C_SIZE];
    memcpy(L->shard_prev[r], L->shard_c[r], sizeof L->shard_c[r]);
  }
  fprintf(L->metrics, "%lld\t%.3f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f", (long long)L->iteration,
          L->seconds_before + (now - L->t0), L->m[M_UPD] / dt, steps / dt, us / dt,
          (double)d[REPLAY_SERVER_C_INSERTED] / dt, (double)d[REPLAY_SERVER_C_SAMPLED] / dt);
  for (int k = M_CRIT; k <= M_GN; k++) fprintf(L->metrics, "\t%.6g", L->m[k] / nu);
  for (int j = 0; j < L->n_mlc; j++) fprintf(L->metrics, "\t%.6g", L->m[M_W0 + j] / nu);
  if (ep > 0) fprintf(L->metrics, "\t%.0f\t%.6g\t%.6g", ep, er / ep, ed / ep);
  else fprintf(L->metrics, "\t0\tnan\tnan");
  double ln = L->m[M_LAGN];
  fprintf(L->metrics, "\t%.0f\t%.3f\t%.0f\t%lld\t%lld\t%lld\t%lld", ln > 0 ? L->m[M_LAGMIN] : 0.0,
          ln > 0 ? L->m[M_LAGSUM] / ln : 0.0, ln > 0 ? L->m[M_LAGMAX] : 0.0, (long long)size,
          (long long)d[REPLAY_SERVER_C_SAMPLE_WAITS], (long long)d[REPLAY_SERVER_C_INSERT_WAITS],
          (long long)d[REPLAY_SERVER_C_QUEUE_FULL]);
  if (L->sel.every > 0) fprintf(L->metrics, "\t%.6g", L->sel.last_reward);
  fputc('\n', L->metrics);
  fflush(L->metrics);
  memset(L->m, 0, sizeof L->m);
  L->t_int = now;
}

static hsrl_status ld_update(ldist *L, const replay_rows *r) {
  const int64_t B = L->s->train.batch, k = L->iteration + 1;
  agent_batch b;
  memset(&b, 0, sizeof b);
  b.B = B, b.users = r->users, b.history = r->history, b.slate = r->slate, b.tokens = r->tokens;
  b.clicks = r->clicks, b.reward = r->reward, b.done = r->done, b.next_users = r->next_users;
  b.next_history = r->next_history;
  /* the acting policy's log-probs of the stored tokens (importance weights; NULL without SIDs) */
  b.behaviour_logp = r->behaviour_logp;
  HSRL_CHECK(!L->shape.with_logp || b.behaviour_logp != NULL);
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
    double lag = (double)(k - 1 - r->policy_version[i]);
    if (m[M_LAGN] == 0 || lag < m[M_LAGMIN]) m[M_LAGMIN] = lag;
    if (m[M_LAGN] == 0 || lag > m[M_LAGMAX]) m[M_LAGMAX] = lag;
    m[M_LAGSUM] += lag, m[M_LAGN] += 1.0;
  }
  return HSRL_OK;
}

static hsrl_status ld_loop(ldist *L) {
  const hsrl_settings *s = L->s;
  const int64_t N = s->train.iterations, every = s->train.checkpoint_every;
  /* the actors start from version 0, or from the checkpoint's last broadcast */
  hsrl_watchdog_mark("learner: first broadcast and request");
  LD_TRY(ld_broadcast(L, L->bc_version, L->iteration == 0));
  if (L->iteration < N) LD_TRY(ld_request(L, L->iteration + 1));
  L->t0 = L->t_int = hsrl_time_now();
  while (L->iteration < N) {
    const int64_t k = L->iteration + 1;
    const int sig = learner_train_stop_signal();
    const int last = k == N || sig;
    /* a checkpoint is a cut at k: no request beyond k goes out before it */
    const int ckpt = last || (every > 0 && k % every == 0);
    hsrl_watchdog_mark("learner: requesting and gathering a batch");
    if (!ckpt) LD_TRY(ld_request(L, k + 1)); /* one ahead */
    replay_rows r;
    if (L->R > 0) LD_TRY(ld_gather_shards(L, k, &r));
    else LD_TRY(ld_gather_local(L, k, &r));
    hsrl_watchdog_mark("learner: update (agent_learn), broadcast, report");
    LD_TRY(ld_update(L, &r));
    LD_TRY(ld_drain_stats(L));
    if (k % s->dist.broadcast_every == 0) LD_TRY(ld_broadcast(L, k, 1));
    if (learner_select_due(&L->sel, k)) {
      /* local work that waits for no peer: not watched (the actors go on meanwhile) */
      hsrl_watchdog_disarm("learner: validating the policy (train.val_every; not watched)");
      LD_TRY(learner_select_validate(&L->sel, L->a, k));
    }
    if (k % s->train.report_every == 0 || last) ld_report(L);
    if (!L->opt->quiet) hsrl_progress_update(&L->progress, k - L->progress_from, NULL);
    if (ckpt) LD_TRY(ld_checkpoint(L));
    if (sig && k < N) {
      learner_train_set_stopped(sig);
      HSRL_WARN("stopped by %s at iteration %lld of %lld: wrote %s/step-%lld.h5 and the replay "
                "snapshots; continue with mpirun ... hsrl train --resume %s",
                learner_train_signal_name(sig), (long long)k, (long long)N, L->ckpt_dir, (long long)k,
                L->run_dir);
      break;
    }
    if (ckpt && k < N) LD_TRY(ld_request(L, k + 1));
  }
  if (!L->opt->quiet) hsrl_progress_finish(&L->progress, NULL);
  /* stop: the last broadcast must finish (members take every one in order) */
  hsrl_watchdog_mark("learner: stopping: the last broadcast");
  if (L->bc_busy) {
    LD_TRY(comm_bcast_wait(L->bc, L->deadline, NULL));
    L->bc_busy = 0;
  }
  for (int r = 1; r < comm_size(L->ep); r++) {
    hsrl_watchdog_mark("learner: stopping: STOP to every rank");
    LD_TRY(comm_send(L->ep, r, COMM_KIND_STOP, L->iteration, NULL, 0, L->deadline));
  }
  if (L->R == 0)
    LD_TRY(replay_server_drain_actors(L->ep, L->in_buf, L->in_cap, L->n_actors, L->deadline, ld_on_other, L));
  return HSRL_OK;
}

/* Resume: temporaries ("<name>.h5.tmp-<pid>") of a writer that was killed are incomplete files. */
static void ld_remove_temporaries(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) return;
  struct dirent *de;
  char path[LEARNER_PATH_MAX + 300];
  while ((de = readdir(dp)) != NULL)
    if (strstr(de->d_name, ".h5.tmp-")) {
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      if (remove(path) == 0) HSRL_INFO("removed %s (left by a writer that did not finish)", path);
    }
  closedir(dp);
}

static hsrl_status learner_dist_learner(comm *ep, const learner_train_options *opt, const char *run_dir) {
  hsrl_status st = HSRL_OK;
  ldist *L = hsrl_calloc(1, sizeof *L);
  const hsrl_settings *s = &opt->settings;
  L->ep = ep, L->opt = opt, L->s = s, L->run_dir = run_dir, L->sync = s->dist.sync ? 1 : 0;
  L->R = (int)s->dist.replay_shards;
  L->n_actors = comm_size(ep) - 1 - L->R;
  L->deadline = learner_dist_deadline(opt);
  L->n_pre = learner_dist_prefill_steps(s, L->n_actors);
  snprintf(L->ckpt_dir, sizeof L->ckpt_dir, "%s/ckpt", run_dir);
  HSRL_TRY(learner_train_mkdirs(L->ckpt_dir));
  const int64_t Bt = s->train.batch;
  HSRL_TRY(learner_train_world_load(&L->w, s, learner_dist_sim_path(s), s->env.batch));
  HSRL_TRY(learner_train_make_agent(&L->a, s, &L->w, Bt,
                                    hsrl_rng_derive(hsrl_settings_train_seed(s), LEARNER_DIST_PURPOSE_AGENT), 0));
  int64_t max_vocab = 0;
  learner_dist_shape(&L->w, s, &L->shape, &max_vocab);
  L->n_mlc = strcmp(s->agent.kind, "sl") ? (int)L->shape.n_levels + 1 : 0;
  {
    replay_block_config bc = {L->shape, Bt, max_vocab, learner_train_resume_hash(s), IO_ZSTD_DEFAULT_LEVEL};
    HSRL_TRY(replay_block_init(&L->block, &bc));
    L->in_cap = (int64_t)replay_block_bound(L->block) + REPLAY_SERVER_N_COUNTERS * 8;
    if (L->R == 0) {
      /* the actors' blocks come here */
      replay_block_config ic = bc;
      ic.max_rows = s->dist.block_rows;
      replay_block *probe = NULL;
      HSRL_TRY(replay_block_init(&probe, &ic));
      int64_t need = (int64_t)replay_block_bound(probe) + 64;
      replay_block_free(probe);
      if (need > L->in_cap) L->in_cap = need;
      if (L->in_cap < (int64_t)sizeof(learner_dist_actor_stats)) L->in_cap = sizeof(learner_dist_actor_stats);
    }
    L->in_buf = hsrl_alloc_aligned((size_t)L->in_cap);
  }
  if (L->R > 0) {
    replay_rows_buf_init(&L->rows, &L->shape, Bt);
  } else {
    replay_shard_config sc;
    replay_server_shard_config(&sc, s, 0, 0, &L->shape, max_vocab, learner_train_resume_hash(s));
    HSRL_TRY(replay_shard_init(&L->local, &sc));
    L->taken = hsrl_calloc((size_t)comm_size(ep), sizeof(int64_t));
    int n = replay_server_actors_of(comm_size(ep), 0, 0, L->actors, LD_MAX_ACTORS);
    HSRL_CHECK(n == L->n_actors && n <= LD_MAX_ACTORS);
  }
  L->n_params = L->a->vt->n_policy_params(L->a);
  L->params_out = hsrl_alloc_aligned((size_t)L->n_params * sizeof(float));
  {
    /* validation acts on at most the agent's rows (train.batch here) and the simulator's (env.batch) */
    sim_env_config vc;
    HSRL_TRY(sim_env_config_make(&vc, &s->env, L->w.data.slate_size, L->w.data.history_len, 0, 0));
    if (vc.batch > Bt) vc.batch = Bt;
    learner_select_init(&L->sel, s, &L->w, &vc, L->n_params, hsrl_settings_train_seed(s));
  }
  if (L->n_actors > 0) {
    int members[LD_MAX_ACTORS], n = 0;
    for (int r = 1 + L->R; r < comm_size(ep) && n < LD_MAX_ACTORS; r++) members[n++] = r;
    HSRL_TRY(comm_bcast_open(&L->bc, ep, 0, members, n));
  }
  {
    char mpath[LEARNER_PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/metrics.tsv", run_dir);
    const int64_t k0 = opt->start_iteration;
    if (k0 > 0) {
      char rdir[LEARNER_PATH_MAX + 16];
      snprintf(rdir, sizeof rdir, "%s/replay", run_dir);
      ld_remove_temporaries(L->ckpt_dir);
      ld_remove_temporaries(rdir);
      HSRL_TRY(ld_restore(L, k0));
      if (L->R == 0) {
        char spath[LEARNER_PATH_MAX + 64];
        HSRL_TRY(replay_server_snapshot_path(spath, sizeof spath, run_dir, 0, k0));
        HSRL_TRY(replay_snapshot_restore(L->local, spath));
        if (L->sync) L->steps_in = L->n_pre + k0;
      }
      HSRL_TRY(learner_train_metrics_truncate(mpath, k0, &L->seconds_before));
      L->metrics = fopen(mpath, "a");
      if (L->metrics && ftell(L->metrics) == 0) ld_metrics_header(L);
      HSRL_INFO("resuming %s from iteration %lld (%s/step-%lld.h5): %d replay shard(s), %d actor(s)",
                  run_dir, (long long)k0, L->ckpt_dir, (long long)k0, L->R, L->n_actors);
    } else {
      L->metrics = fopen(mpath, "w");
      if (L->metrics) ld_metrics_header(L);
    }
    if (!L->metrics) {
      st = hsrl_err(HSRL_E_IO, mpath, 0, NULL, "cannot write: %s", strerror(errno));
      goto done;
    }
    HSRL_TRY(learner_train_write_config(run_dir, s));
  }
  if (!opt->quiet) {
    L->progress_from = L->iteration;
    hsrl_progress_init_resumed(&L->progress, "train", L->iteration, s->train.iterations);
  }
  st = ld_loop(L);
  if (st == HSRL_OK && !opt->quiet)
    HSRL_INFO("distributed run %s: %lld updates, %d replay shards, %d actors", run_dir,
              (long long)L->iteration, L->R, L->n_actors);
done:
  if (st != HSRL_OK && comm_size(ep) > 1) {
    /* best effort: the others stop now instead of at their deadlines */
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", hsrl_err_message());
    for (int r = 1; r < comm_size(ep); r++) comm_send(ep, r, COMM_KIND_STOP, L->iteration, NULL, 0, 0);
    hsrl_err(st, NULL, 0, NULL, "%s", keep);
  }
  if (L->metrics) fclose(L->metrics);
  learner_select_free(&L->sel);
  comm_bcast_free(L->bc);
  agent_free(L->a);
  learner_train_world_free(&L->w);
  replay_rows_buf_free(&L->rows);
  replay_block_free(L->block);
  replay_shard_free(L->local);
  hsrl_free(L->in_buf), hsrl_free(L->params_out), hsrl_free(L->taken);
  hsrl_free(L);
  return st;
}

/* ---------------------------------------------------------------- roles and launcher */

typedef struct ld_role {
  comm *ep;
  const learner_train_options *opt;
  const char *run_dir;
  learner_dist_actor_fn actor_fn;
  hsrl_watchdog *wd; /* limit 2 x deadline, bound by the thread that runs the role */
  int in_process;
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
  c.config_hash = learner_train_resume_hash(s);
  c.run_dir = run_dir;
  c.n_prefill_steps = learner_dist_prefill_steps(s, comm_size(ep) - 1 - s->dist.replay_shards);
  c.deadline_s = learner_dist_deadline(opt);
  c.start_iteration = opt->start_iteration;
  return replay_server_run(ep, &c);
}

static void *ld_role_main(void *arg) {
  ld_role *r = arg;
  hsrl_watchdog_bind(r->wd);
  switch (comm_my_role(r->ep)) {
    case COMM_ROLE_LEARNER: r->st = learner_dist_learner(r->ep, r->opt, r->run_dir); break;
    case COMM_ROLE_REPLAY: r->st = ld_replay_role(r->ep, r->opt, r->run_dir); break;
    default: r->st = r->actor_fn(r->ep, r->opt); break;
  }
  if (r->st != HSRL_OK) {
    snprintf(r->msg, sizeof r->msg, "%s", hsrl_err_message());
    HSRL_ERROR("rank %d (%s): %s", comm_rank(r->ep), comm_role_name(comm_my_role(r->ep)), r->msg);
  }
  /* Under MPI the close is watched too (a short barrier, then the transport); a finished
   * in-process role waits for the other threads, which may take longer than the limit. */
  if (r->in_process) hsrl_watchdog_disarm("finished");
  else hsrl_watchdog_mark("closing: barrier with the other ranks");
  return NULL;
}

/* Before any role starts: the newest complete checkpoint of a resumed run (*k0), refusing what
 * cannot be resumed here (learner_dist.h "Resume"); a new run refuses a run directory that holds
 * checkpoints already. Every rank checks the same files, so all fail alike. */
static hsrl_status ld_check_start(const learner_train_options *opt, const char *run_dir, int size,
                                  int64_t *k0) {
  hsrl_status st = HSRL_OK;
  const hsrl_settings *s = &opt->settings;
  char path[LEARNER_PATH_MAX + 64];
  io_h5 *f = NULL;
  *k0 = 0;
  if (!opt->resume) {
    int64_t it = 0;
    if (learner_train_latest_checkpoint(run_dir, path, sizeof path, &it) == HSRL_OK)
      return hsrl_err(HSRL_E_USAGE, run_dir, 0, "run.name",
                      "the run directory holds checkpoints already (%s): continue it with --resume "
                      "or choose another run.name",
                      path);
    hsrl_err_clear();
    return HSRL_OK;
  }
  int64_t k = 0, actors = 0, sync = 0;
  HSRL_TRY(learner_train_latest_checkpoint(run_dir, path, sizeof path, &k));
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(learner_train_check_resume_config(f, path, s));
  if (!io_h5_exists(f, "learner/dist")) {
    st = hsrl_err(HSRL_E_USAGE, path, 0, NULL,
                  "written by a single-process run: resume it without mpirun (one process)");
    goto done;
  }
  HSRL_TRY(io_h5_attr_get_i64(f, "learner/dist", "actors", &actors));
  HSRL_TRY(io_h5_attr_get_i64(f, "learner/dist", "sync", &sync));
  {
    const int64_t now_actors = size - 1 - s->dist.replay_shards;
    if (s->dist.sync && actors != now_actors) {
      st = hsrl_err(HSRL_E_USAGE, path, 0, "dist.sync",
                    "written by a job with %lld actor(s); this one has %lld (%d ranks): a sync run "
                    "resumes only with the same number of ranks",
                    (long long)actors, (long long)now_actors, size);
      goto done;
    }
  }
  for (int r = 0; r < (s->dist.replay_shards > 0 ? (int)s->dist.replay_shards : 1); r++) {
    char sp[LEARNER_PATH_MAX + 64];
    struct stat sb;
    HSRL_TRY(replay_server_snapshot_path(sp, sizeof sp, run_dir, r, k));
    if (stat(sp, &sb) != 0) {
      st = hsrl_err(HSRL_E_INPUT, sp, 0, NULL, "missing: the replay snapshot of checkpoint %s", path);
      goto done;
    }
  }
  *k0 = k;
done:
  io_h5_close(f);
  return st;
}

hsrl_status learner_dist_run(const learner_train_options *opt, comm_transport transport, int n_ranks,
                             learner_dist_actor_fn actor_fn) {
  hsrl_status st = HSRL_OK;
  const hsrl_settings *s = &opt->settings;
  char run_dir[LEARNER_PATH_MAX];
  comm_world *w = NULL;
  ld_role *roles = NULL;
  pthread_t *th = NULL;
  learner_train_options *ro = NULL; /* the roles' options: opt + start_iteration */
  int n_roles = 0;
  const double deadline = learner_dist_deadline(opt);
  if (s->dist.replay_shards > LD_MAX_SHARDS || (s->dist.replay_shards > 0 && s->train.batch < s->dist.replay_shards))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards", "at most %d and at most train.batch",
                    LD_MAX_SHARDS);
  if (opt->run_dir[0]) snprintf(run_dir, sizeof run_dir, "%s", opt->run_dir);
  else if (snprintf(run_dir, sizeof run_dir, "%s/%s", s->run.out_dir, s->run.name) >= (int)sizeof run_dir)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "run.name", "run directory path too long");
  comm_config cc = comm_config_defaults();
  cc.transport = transport;
  cc.n_ranks = n_ranks;
  cc.n_replay_shards = (int)s->dist.replay_shards;
  cc.config_hash = hsrl_settings_hash(s);
  cc.close_deadline_s = deadline < cc.close_deadline_s ? deadline : cc.close_deadline_s;
  {
    /* the largest message: a parameter vector or a batch; in-process inboxes deep enough for
     * what the sync schedule lets the actors send ahead (prefill and a broadcast interval) */
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
    /* inboxes: every actor's credit window (replay_server_window), the learner's requests,
     * checkpoint messages, STATS and STOPs */
    int64_t n_act = transport == COMM_TRANSPORT_INPROC ? n_ranks - 1 - s->dist.replay_shards : 1;
    if (n_act < 1) n_act = 1;
    int64_t msgs = n_act * (replay_server_window(s) + 4) + 32;
    cc.n_slots = msgs > 64 ? (int)(msgs < 4096 ? msgs : 4096) : 64;
  }
  HSRL_TRY(comm_world_open(&w, &cc));
  const int size = comm_world_size(w);
  if (size < 2 + s->dist.replay_shards) {
    st = hsrl_err(HSRL_E_USAGE, NULL, 0, "dist.replay_shards",
                  "%d ranks cannot hold the learner, %lld replay shards and an actor", size,
                  (long long)s->dist.replay_shards);
    goto done;
  }
  ro = hsrl_malloc(sizeof *ro);
  *ro = *opt;
  ro->deadline_s = deadline;
  HSRL_TRY(ld_check_start(opt, run_dir, size, &ro->start_iteration));
  if (comm_world_is_mpi(w)) {
    /* nobody writes before every rank has checked the run directory */
    HSRL_TRY(comm_barrier(comm_world_local(w, 0), deadline));
    if (comm_rank(comm_world_local(w, 0)) == 0) HSRL_TRY(learner_train_mkdirs(run_dir));
  } else {
    HSRL_TRY(learner_train_mkdirs(run_dir));
  }
  {
    const int n = comm_world_n_local(w);
    roles = hsrl_calloc((size_t)n, sizeof *roles);
    th = hsrl_calloc((size_t)n, sizeof *th);
    n_roles = n;
    for (int i = 0; i < n; i++) {
      char who[48];
      roles[i].ep = comm_world_local(w, i), roles[i].opt = ro, roles[i].run_dir = run_dir;
      roles[i].actor_fn = actor_fn;
      roles[i].in_process = n > 1;
      /* every wait between two progress marks is bounded by one deadline (hsrl_watchdog.h) */
      roles[i].wd = hsrl_watchdog_start(comm_peer_name(roles[i].ep, comm_rank(roles[i].ep), who, sizeof who),
                                        2.0 * deadline);
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
    if (st != HSRL_OK && comm_world_is_mpi(w)) {
      /* A failed role may mean a dead peer, and MPI_Finalize can wait forever for one. A barrier
       * that every rank reaches (all failed alike, all alive) lets comm_world_free finalize; one
       * that times out leaves the endpoint broken, so comm_world_free skips MPI_Finalize and the
       * process exits (mpirun then ends the job). */
      char keep[1024];
      snprintf(keep, sizeof keep, "%s", hsrl_err_message());
      comm_barrier(comm_world_local(w, 0), deadline < 5.0 ? deadline : 5.0);
      hsrl_err(st, NULL, 0, NULL, "%s", keep);
    }
    hsrl_watchdog_mark("closing the transport"); /* MPI: the role's watchdog (this thread's) */
  }
done:
  comm_world_free(w);
  for (int i = 0; i < n_roles; i++) hsrl_watchdog_stop(roles[i].wd);
  hsrl_free(roles), hsrl_free(th), hsrl_free(ro);
  return st;
}
