/* replay_server.c: the replay-shard role loop and the ingest functions it shares with the
 * learner's in-process replay (see replay_server.h). */
#include "replay/replay_server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_timer.h"
#include "common/hsrl_watchdog.h"
#include "common/io/io_zstd.h"
#include "replay/replay_block.h"
#include "replay/replay_snapshot.h"

#define SRV_MAX_PENDING 8
#define SRV_TRY(expr) \
  do { hsrl_status s_ = (expr); if (s_ != HSRL_OK) return s_; } while (0)

typedef struct srv {
  comm *ep;
  const replay_server_config *cfg;
  int shard; /* 0-based */
  int actors[4096];
  int n_actors;
  replay_shard *sh;
  replay_block *out_block; /* packs sampled batches */
  uint8_t *in_buf, *out_buf;
  int64_t in_cap, out_cap;
  int64_t pending[SRV_MAX_PENDING][2];
  int n_pending;
  int64_t steps_in; /* sync: actor steps ingested */
  int64_t *taken;   /* (size) messages taken from each rank (credits) */
  int stop;         /* the learner said STOP */
} srv;

int replay_server_actors_of(int size, int n_shards, int shard, int *out, int cap) {
  int n = 0;
  for (int r = 1 + n_shards; r < size; r++)
    if (n_shards == 0 || (r - 1 - n_shards) % n_shards == shard) {
      if (n < cap) out[n] = r;
      n++;
    }
  return n;
}

void replay_server_shard_config(replay_shard_config *c, const hsrl_settings *s, int n_shards,
                                int shard, const replay_rows_shape *shape, int64_t max_vocab,
                                uint64_t config_hash) {
  replay_shard_config_from_settings(c, s, n_shards, shard, shape, max_vocab, config_hash);
  if (s->dist.sync) {
    /* lock-step: the schedule, not the limiter, paces inserts and samples */
    c->limiter.min_size_to_sample = 1;
    c->limiter.error_buffer = 1e15;
  }
}

hsrl_status replay_server_snapshot_path(char *out, size_t cap, const char *run_dir, int shard,
                                        int64_t iteration) {
  if (snprintf(out, cap, "%s/replay/shard-%d-step-%lld.h5", run_dir, shard, (long long)iteration) >=
      (int)cap)
    return hsrl_err(HSRL_E_USAGE, run_dir, 0, NULL, "run directory path too long");
  return HSRL_OK;
}

hsrl_status replay_server_snapshot(replay_shard *sh, const char *run_dir, int shard, int64_t iteration) {
  char dir[1100], path[1200];
  snprintf(dir, sizeof dir, "%s/replay", run_dir);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return hsrl_err(HSRL_E_IO, dir, 0, NULL, "cannot create directory: %s", strerror(errno));
  SRV_TRY(replay_server_snapshot_path(path, sizeof path, run_dir, shard, iteration));
  return replay_snapshot_write(sh, path);
}

int64_t replay_server_window(const hsrl_settings *s) {
  int64_t per_step = (s->env.batch + s->dist.block_rows - 1) / s->dist.block_rows + 1;
  return s->dist.queue_blocks > per_step ? s->dist.queue_blocks : per_step;
}

/* Credits message number taken[a] + 1 of actor rank a. */
static hsrl_status srv_credit(comm *ep, int a, int64_t *taken, double deadline_s) {
  taken[a]++;
  return comm_send(ep, a, COMM_KIND_PING, 0, &taken[a], sizeof taken[a], deadline_s);
}

static void srv_nap(void) {
  struct timespec ts = {0, 200000}; /* 0.2 ms: an idle shard must not steal a core */
  nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- ingest (shared with R = 0) */

hsrl_status replay_server_ingest_steps(comm *ep, replay_shard *sh, const int *actors, int n_actors,
                                       uint8_t *buf, int64_t cap, double deadline_s,
                                       int64_t *steps_in, int64_t upto, int64_t *taken,
                                       replay_server_other_fn other, void *ctx) {
  comm_header h;
  while (*steps_in < upto) {
    for (int i = 0; i < n_actors; i++) {
      for (;;) {
        SRV_TRY(comm_recv(ep, actors[i], COMM_ANY, buf, cap, deadline_s, &h));
        hsrl_watchdog_mark("replay: ingesting actor steps (sync)");
        if (h.kind == COMM_KIND_PING || h.kind == COMM_KIND_TRANSITIONS)
          SRV_TRY(srv_credit(ep, h.sender, taken, deadline_s));
        if (h.kind == COMM_KIND_PING) break;
        if (h.kind == COMM_KIND_TRANSITIONS) {
          int accepted = 0;
          SRV_TRY(replay_shard_offer(sh, buf, (size_t)h.bytes, &accepted));
          HSRL_CHECK(accepted); /* the queue is empty between blocks in sync mode */
          SRV_TRY(replay_shard_pump(sh, NULL));
          if (replay_shard_queued(sh) != 0)
            return hsrl_err(HSRL_E_INTERNAL, NULL, 0, "limiter", "sync replay could not insert a block");
          continue;
        }
        if (other) {
          SRV_TRY(other(ctx, &h, buf));
          continue;
        }
        return hsrl_err(HSRL_E_INPUT, NULL, 0, "kind", "sync replay got %s from rank %d mid-step",
                        comm_kind_name(h.kind), h.sender);
      }
    }
    (*steps_in)++;
  }
  return HSRL_OK;
}

hsrl_status replay_server_ingest_waiting(comm *ep, replay_shard *sh, uint8_t *buf, int64_t cap,
                                         double deadline_s, int64_t *taken, int *progress) {
  comm_header h;
  const int64_t qcap = replay_shard_get_config(sh)->queue_blocks;
  while (replay_shard_queued(sh) < qcap) {
    int found = 0;
    SRV_TRY(comm_poll(ep, COMM_ANY, COMM_KIND_TRANSITIONS, &found, NULL));
    if (!found) break;
    SRV_TRY(comm_recv(ep, COMM_ANY, COMM_KIND_TRANSITIONS, buf, cap, deadline_s, &h));
    SRV_TRY(srv_credit(ep, h.sender, taken, deadline_s));
    int accepted = 0;
    SRV_TRY(replay_shard_offer(sh, buf, (size_t)h.bytes, &accepted));
    *progress = 1;
  }
  int64_t n_in = 0;
  SRV_TRY(replay_shard_pump(sh, &n_in));
  if (n_in > 0) *progress = 1;
  return HSRL_OK;
}

hsrl_status replay_server_drain_actors(comm *ep, uint8_t *buf, int64_t cap, int n_actors,
                                       double deadline_s, replay_server_other_fn other, void *ctx) {
  comm_header h;
  int n_stopped = 0;
  while (n_stopped < n_actors) {
    SRV_TRY(comm_recv(ep, COMM_ANY, COMM_ANY, buf, cap, deadline_s, &h));
    hsrl_watchdog_mark("draining the actors until each sent STOP");
    if (h.kind == COMM_KIND_STOP && h.sender != 0) n_stopped++;
    else if (h.kind == COMM_KIND_STATS && other) SRV_TRY(other(ctx, &h, buf));
  }
  return HSRL_OK;
}

/* ---------------------------------------------------------------- the shard role */

static hsrl_status srv_serve(srv *S, int64_t k, int64_t n, int *served) {
  *served = 0;
  replay_rows rows;
  if (n < 1 || n > replay_shard_get_config(S->sh)->max_batch)
    return hsrl_err(HSRL_E_INPUT, NULL, 0, "SAMPLE_REQUEST", "request of %lld rows (1..%lld)",
                    (long long)n, (long long)replay_shard_get_config(S->sh)->max_batch);
  if (!replay_shard_sample(S->sh, n, &rows)) return HSRL_OK;
  const replay_shard_counters *c = replay_shard_get_counters(S->sh);
  int64_t *head = (int64_t *)S->out_buf;
  head[REPLAY_SERVER_C_INSERTED] = c->inserted, head[REPLAY_SERVER_C_SAMPLED] = c->sampled;
  head[REPLAY_SERVER_C_SAMPLE_WAITS] = c->sample_waits;
  head[REPLAY_SERVER_C_INSERT_WAITS] = c->insert_waits;
  head[REPLAY_SERVER_C_QUEUE_FULL] = c->queue_full;
  head[REPLAY_SERVER_C_BLOCKS] = c->blocks_received;
  head[REPLAY_SERVER_C_SIZE] = replay_shard_size(S->sh);
  head[REPLAY_SERVER_C_QUEUED] = replay_shard_queued(S->sh);
  const size_t off = REPLAY_SERVER_N_COUNTERS * sizeof(int64_t);
  size_t nb = 0;
  SRV_TRY(replay_block_pack(S->out_block, S->out_buf + off, (size_t)S->out_cap - off, &rows, &nb, NULL));
  *served = 1;
  return comm_send(S->ep, 0, COMM_KIND_SAMPLE_BATCH, k, S->out_buf, (int64_t)(off + nb),
                   S->cfg->deadline_s);
}

static hsrl_status srv_checkpoint(srv *S, int64_t it) {
  /* local I/O that waits for no peer: not watched (the learner waits for it with its deadline) */
  hsrl_watchdog_disarm("replay: writing a snapshot (not watched)");
  SRV_TRY(replay_server_snapshot(S->sh, S->cfg->run_dir, S->shard, it));
  hsrl_watchdog_mark("replay: snapshot written, sending CHECKPOINT_DONE");
  return comm_send(S->ep, 0, COMM_KIND_CHECKPOINT_DONE, it, &it, sizeof it, S->cfg->deadline_s);
}

static hsrl_status srv_learner_msg(srv *S, const comm_header *h) {
  const int64_t *p = (const int64_t *)S->in_buf;
  switch (h->kind) {
    case COMM_KIND_SAMPLE_REQUEST:
      if (h->bytes != 2 * (int64_t)sizeof(int64_t) || S->n_pending == SRV_MAX_PENDING)
        return hsrl_err(HSRL_E_INPUT, NULL, 0, "SAMPLE_REQUEST", "bad request (%lld bytes, %d pending)",
                        (long long)h->bytes, S->n_pending);
      S->pending[S->n_pending][0] = p[0], S->pending[S->n_pending][1] = p[1];
      S->n_pending++;
      return HSRL_OK;
    case COMM_KIND_CHECKPOINT_REQUEST:
      if (h->bytes != (int64_t)sizeof(int64_t))
        return hsrl_err(HSRL_E_INPUT, NULL, 0, "CHECKPOINT_REQUEST", "%lld bytes", (long long)h->bytes);
      return srv_checkpoint(S, p[0]);
    case COMM_KIND_STOP:
      S->stop = 1;
      return HSRL_OK;
    default:
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "kind", "replay shard got %s from the learner",
                      comm_kind_name(h->kind));
  }
}

/* Serves pending requests in order while possible. */
static hsrl_status srv_serve_pending(srv *S, int *progress) {
  while (S->n_pending > 0) {
    int served = 0;
    if (S->cfg->settings->dist.sync)
      SRV_TRY(replay_server_ingest_steps(S->ep, S->sh, S->actors, S->n_actors, S->in_buf, S->in_cap,
                                         S->cfg->deadline_s, &S->steps_in,
                                         S->cfg->n_prefill_steps + S->pending[0][0], S->taken, NULL,
                                         NULL));
    SRV_TRY(srv_serve(S, S->pending[0][0], S->pending[0][1], &served));
    if (!served) {
      if (S->cfg->settings->dist.sync)
        return hsrl_err(HSRL_E_INTERNAL, NULL, 0, "limiter", "sync replay shard refused a sample");
      return HSRL_OK;
    }
    memmove(S->pending[0], S->pending[1], (size_t)(S->n_pending - 1) * sizeof S->pending[0]);
    S->n_pending--;
    *progress = 1;
  }
  return HSRL_OK;
}

static hsrl_status srv_loop(srv *S) {
  comm_header h;
  const int sync = S->cfg->settings->dist.sync;
  double idle_since = hsrl_time_now();
  while (!S->stop) {
    int found = 0, progress = 0;
    hsrl_watchdog_mark("replay: loop");
    SRV_TRY(comm_poll(S->ep, 0, COMM_ANY, &found, NULL));
    if (found) {
      SRV_TRY(comm_recv(S->ep, 0, COMM_ANY, S->in_buf, S->in_cap, S->cfg->deadline_s, &h));
      SRV_TRY(srv_learner_msg(S, &h));
      progress = 1;
    }
    if (!sync)
      SRV_TRY(replay_server_ingest_waiting(S->ep, S->sh, S->in_buf, S->in_cap, S->cfg->deadline_s,
                                           S->taken, &progress));
    SRV_TRY(srv_serve_pending(S, &progress));
    if (progress) {
      idle_since = hsrl_time_now();
    } else {
      if (hsrl_time_now() - idle_since > S->cfg->deadline_s)
        return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                        "nothing from the learner or its actors for %.3g s",
                        S->cfg->deadline_s);
      srv_nap();
    }
  }
  /* drain: every actor of this shard says STOP (their blocks are dropped) */
  return replay_server_drain_actors(S->ep, S->in_buf, S->in_cap, S->n_actors, S->cfg->deadline_s,
                                    NULL, NULL);
}

hsrl_status replay_server_run(comm *ep, const replay_server_config *cfg) {
  hsrl_status st = HSRL_OK;
  const hsrl_settings *s = cfg->settings;
  const int R = (int)s->dist.replay_shards;
  srv *S = hsrl_calloc(1, sizeof *S);
  S->ep = ep, S->cfg = cfg;
  HSRL_CHECK(comm_my_role(ep) == COMM_ROLE_REPLAY);
  S->shard = comm_rank(ep) - 1;
  S->n_actors = replay_server_actors_of(comm_size(ep), R, S->shard, S->actors, 4096);
  HSRL_CHECK(S->n_actors <= 4096);
  S->taken = hsrl_calloc((size_t)comm_size(ep), sizeof(int64_t));
  replay_shard_config sc;
  replay_server_shard_config(&sc, s, R, S->shard, &cfg->shape, cfg->max_vocab, cfg->config_hash);
  HSRL_TRY(replay_shard_init(&S->sh, &sc));
  if (cfg->start_iteration > 0) {
    char path[1200];
    HSRL_TRY(replay_server_snapshot_path(path, sizeof path, cfg->run_dir, S->shard, cfg->start_iteration));
    HSRL_TRY(replay_snapshot_restore(S->sh, path));
    if (s->dist.sync) S->steps_in = cfg->n_prefill_steps + cfg->start_iteration;
  }
  {
    replay_block_config bc = {cfg->shape, s->train.batch, cfg->max_vocab, cfg->config_hash, IO_ZSTD_DEFAULT_LEVEL};
    HSRL_TRY(replay_block_init(&S->out_block, &bc));
    replay_block_config ic = bc;
    ic.max_rows = s->dist.block_rows;
    replay_block *probe = NULL;
    HSRL_TRY(replay_block_init(&probe, &ic));
    S->in_cap = (int64_t)replay_block_bound(probe) + 64;
    replay_block_free(probe);
    S->out_cap = (int64_t)replay_block_bound(S->out_block) + REPLAY_SERVER_N_COUNTERS * 8;
    S->in_buf = hsrl_malloc((size_t)S->in_cap);
    S->out_buf = hsrl_alloc_aligned((size_t)S->out_cap);
  }
  st = srv_loop(S);
done:
  if (st != HSRL_OK) hsrl_err_context(st, "replay shard %d", S->shard);
  replay_shard_free(S->sh);
  replay_block_free(S->out_block);
  hsrl_free(S->in_buf), hsrl_free(S->out_buf), hsrl_free(S->taken);
  hsrl_free(S);
  return st;
}
