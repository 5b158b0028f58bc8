/* actor_loop.c: the actor role (see actor_loop.h). */
#include "actor/actor_loop.h"

#include <string.h>
#include <time.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "common/hsrl_watchdog.h"
#include "common/io/io_zstd.h"
#include "learner/learner_dist.h"
#include "replay/replay_block.h"
#include "replay/replay_server.h"
#include "sim/sim_env.h"

#define ACTOR_TRY(expr) \
  do { hsrl_status s_ = (expr); if (s_ != HSRL_OK) return s_; } while (0)

typedef struct actor {
  comm *ep;
  const hsrl_settings *s;
  int index, dest, sync;
  double deadline;
  sim_env_config env_cfg;
  uint64_t env_seed, act_seed; /* rekeyed by the iteration of a (re)start */
  learner_world w;
  agent *a;
  sim_env *env;
  hsrl_rng rng;
  comm_bcast *bc;
  float *params_in; /* broadcast receive buffer */
  int64_t n_params, version, learner_version;
  replay_rows_shape shape;
  replay_rows_buf stage; /* rows of the block being filled */
  int64_t n_stage;
  replay_block *block;
  uint8_t *send_buf;
  size_t send_cap;
  int32_t *s_users, *s_hist, *slate;
  uint16_t *tokens;
  float *logp;
  int64_t n_sent, n_taken, window; /* credits: messages to the replay, taken by it, at most un-taken */
  learner_dist_actor_stats stats;
  double t0, heard; /* heard: when the learner was last heard from (a message or a broadcast) */
  int stop;
} actor;

static void actor_nap(void) {
  struct timespec ts = {0, 200000};
  nanosleep(&ts, NULL);
}

/* STOP from the learner? Also takes the learner's version PINGs (no payload) and the replay's
 * credits (PING {int64 taken}, from the shard, or from the learner when R = 0). */
static hsrl_status actor_poll_learner(actor *A) {
  for (int pass = 0; pass < 2; pass++) {
    const int src = pass == 0 ? 0 : A->dest;
    if (pass == 1 && src == 0) break;
    for (;;) {
      int found = 0;
      comm_probe pr;
      ACTOR_TRY(comm_poll(A->ep, src, pass == 0 ? COMM_ANY : COMM_KIND_PING, &found, &pr));
      if (!found) break;
      comm_header h;
      int64_t v = 0;
      ACTOR_TRY(comm_recv(A->ep, src, pr.kind, &v, sizeof v, A->deadline, &h));
      if (h.kind == COMM_KIND_STOP && src == 0) {
        A->stop = 1;
        return HSRL_OK;
      }
      if (h.kind != COMM_KIND_PING)
        return hsrl_err(HSRL_E_INPUT, NULL, 0, "kind", "actor got %s from rank %d", comm_kind_name(h.kind), src);
      if (src == 0) A->heard = hsrl_time_now();
      if (h.bytes == (int64_t)sizeof v && src == A->dest) {
        if (v > A->n_taken) A->n_taken = v; /* a credit */
        continue;
      }
      if (h.policy_version > A->learner_version) A->learner_version = h.policy_version;
    }
  }
  return HSRL_OK;
}

/* Takes a finished broadcast if there is one (*got = 1): swaps it in, starts the next receive. */
static hsrl_status actor_take_params(actor *A, int *got) {
  int done = 0;
  comm_header h;
  *got = 0;
  ACTOR_TRY(comm_bcast_test(A->bc, &done, &h));
  if (!done) return HSRL_OK;
  memcpy(A->a->vt->policy_params(A->a), A->params_in, (size_t)A->n_params * sizeof(float));
  A->version = h.policy_version;
  A->heard = hsrl_time_now();
  if (A->version > A->learner_version) A->learner_version = A->version;
  *got = 1;
  return comm_bcast_start(A->bc, A->params_in, A->n_params * (int64_t)sizeof(float), 0);
}

/* Waits (taking broadcasts, watching for STOP) until the policy version is >= need. */
static hsrl_status actor_wait_version(actor *A, int64_t need) {
  double t0 = hsrl_time_now();
  while (A->version < need && !A->stop) {
    int got = 0;
    ACTOR_TRY(actor_take_params(A, &got));
    if (got) continue;
    ACTOR_TRY(actor_poll_learner(A));
    if (hsrl_time_now() - t0 > A->deadline)
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL, "no policy version %lld from the learner within %.3g s",
                      (long long)need, A->deadline);
    actor_nap();
  }
  return HSRL_OK;
}

/* Sends to the replay with push back: while the credit window is full (or the in-process inbox
 * is), short waits; broadcasts (async), credits and STOP taken meanwhile. */
static hsrl_status actor_send(actor *A, int kind, const void *p, int64_t n) {
  double t0 = hsrl_time_now();
  for (;;) {
    if (A->n_sent - A->n_taken < A->window) {
      hsrl_status st = comm_send(A->ep, A->dest, kind, A->version, p, n, 0.005);
      if (st == HSRL_OK) {
        A->n_sent++;
        hsrl_watchdog_mark("actor: step (sent a message to its replay)");
        return HSRL_OK;
      }
      if (st != HSRL_E_TIMEOUT) return st;
      hsrl_err_clear();
    } else {
      actor_nap();
    }
    if (!A->sync) {
      int got = 0;
      ACTOR_TRY(actor_take_params(A, &got));
    }
    ACTOR_TRY(actor_poll_learner(A));
    if (A->stop) return HSRL_OK; /* the job is over: the block is dropped */
    if (hsrl_time_now() - t0 > A->deadline)
      return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL, "its replay took nothing for %.3g s",
                      A->deadline);
  }
}

static hsrl_status actor_flush(actor *A) {
  if (A->n_stage == 0) return HSRL_OK;
  replay_rows r = replay_rows_buf_view(&A->stage, 0, A->n_stage);
  size_t n = 0;
  ACTOR_TRY(replay_block_pack(A->block, A->send_buf, A->send_cap, &r, &n, NULL));
  A->n_stage = 0;
  return actor_send(A, COMM_KIND_TRANSITIONS, A->send_buf, (int64_t)n);
}

/* A fresh environment and acting stream keyed by (seed, purpose, actor index, iteration key):
 * at the start (key = the iteration resumed from, 0 for a new run) and, in sync mode, at every
 * checkpoint boundary, exactly where a run resumed from that checkpoint starts (learner_dist.h). */
static void actor_restart(actor *A, int64_t key) {
  sim_env_free(A->env);
  A->env_cfg.seed = hsrl_rng_derive(A->env_seed, (uint64_t)key);
  A->env_cfg.stream = 1 + (uint64_t)A->index;
  A->env = sim_env_init(&A->env_cfg, &A->w.data, A->w.data.train_idx, A->w.data.n_train, &A->w.model);
  hsrl_rng_init(&A->rng, hsrl_rng_derive(A->act_seed, (uint64_t)key), 1 + (uint64_t)A->index);
}

static hsrl_status actor_step(actor *A) {
  const int64_t B = A->s->env.batch, H = A->shape.history_len, K = A->shape.slate_size;
  const int64_t KL = K * A->shape.n_levels;
  memcpy(A->s_users, sim_env_users(A->env), (size_t)B * sizeof(int32_t));
  memcpy(A->s_hist, sim_env_histories(A->env), (size_t)(B * H) * sizeof(int32_t));
  agent_act_out out = {A->slate, A->tokens, A->logp};
  agent_act(A->a, B, A->s_users, A->s_hist, AGENT_ACT_EXPLORE, &A->rng, &out);
  sim_env_step_result res;
  sim_env_step(A->env, A->slate, &res);
  replay_rows_buf *st = &A->stage;
  for (int64_t b = 0; b < B; b++) {
    if (!res.active[b]) continue;
    int64_t j = A->n_stage++;
    st->users[j] = A->s_users[b];
    memcpy(st->history + j * H, A->s_hist + b * H, (size_t)H * sizeof(int32_t));
    memcpy(st->slate + j * K, A->slate + b * K, (size_t)K * sizeof(int32_t));
    memcpy(st->clicks + j * K, res.clicks + b * K, (size_t)K);
    st->reward[j] = res.reward[b];
    st->done[j] = res.done[b];
    st->next_users[j] = res.next_users[b];
    memcpy(st->next_history + j * H, res.next_histories + b * H, (size_t)H * sizeof(int32_t));
    st->policy_version[j] = (int32_t)A->version;
    if (KL > 0) {
      memcpy(st->tokens + j * KL, A->tokens + b * KL, (size_t)KL * sizeof(uint16_t));
      memcpy(st->logp + j * KL, A->logp + b * KL, (size_t)KL * sizeof(float));
    }
    if (res.done[b]) {
      A->stats.episodes += 1.0;
      A->stats.episode_reward += (double)res.episode_reward[b];
      A->stats.episode_depth += (double)res.episode_depth[b];
    }
    if (A->n_stage == A->stage.capacity) ACTOR_TRY(actor_flush(A));
  }
  A->stats.user_steps += (double)res.n_active;
  A->stats.steps += 1.0;
  return HSRL_OK;
}

static hsrl_status actor_loop(actor *A, int64_t k0) {
  const hsrl_settings *s = A->s;
  const int64_t n_actors = comm_size(A->ep) - 1 - s->dist.replay_shards;
  const int64_t n_pre = learner_dist_prefill_steps(s, n_actors);
  const int64_t every = s->train.checkpoint_every;
  /* a resumed run starts with the step that feeds update k0 + 1 */
  const int64_t j0 = k0 > 0 ? n_pre + k0 : 0;
  hsrl_watchdog_mark("actor: waiting for the first broadcast");
  ACTOR_TRY(actor_wait_version(A, 0)); /* the learner's first broadcast, whatever its version */
  for (int64_t j = j0; !A->stop; j++) {
    hsrl_watchdog_mark("actor: step");
    if (A->sync && every > 0 && j > j0 && j > n_pre && (j - n_pre) % every == 0)
      actor_restart(A, j - n_pre);
    if (A->sync) {
      ACTOR_TRY(actor_wait_version(A, learner_dist_sync_version(s, n_pre, j)));
    } else {
      int got = 0;
      ACTOR_TRY(actor_take_params(A, &got));
      ACTOR_TRY(actor_poll_learner(A));
      if (s->dist.max_lag > 0 && A->learner_version - A->version > s->dist.max_lag)
        ACTOR_TRY(actor_wait_version(A, A->learner_version - s->dist.max_lag));
      /* async sends rarely block (MPI buffers them), so a dead learner shows as silence: it
       * broadcasts (and PINGs) every dist.broadcast_every updates */
      if (hsrl_time_now() - A->heard > A->deadline)
        return hsrl_err(HSRL_E_TIMEOUT, NULL, 0, NULL,
                        "nothing from rank 0 (learner) for %.3g s (no broadcast, no PING)",
                        A->deadline);
    }
    if (A->stop) break;
    ACTOR_TRY(actor_step(A));
    if (A->sync) {
      ACTOR_TRY(actor_flush(A));
      if (!A->stop) ACTOR_TRY(actor_send(A, COMM_KIND_PING, &j, sizeof j));
    }
    if (j % 16 == 15 && !A->stop) {
      A->stats.version = (double)A->version;
      A->stats.seconds = hsrl_time_now() - A->t0;
      hsrl_status st = comm_send(A->ep, 0, COMM_KIND_STATS, A->version, &A->stats, sizeof A->stats, 0);
      if (st == HSRL_E_TIMEOUT) hsrl_err_clear();
      else ACTOR_TRY(st);
    }
    if (!A->stop) ACTOR_TRY(actor_poll_learner(A));
  }
  /* tell the shard nothing more comes (it drains until then) */
  return comm_send(A->ep, A->dest, COMM_KIND_STOP, A->version, NULL, 0, A->deadline);
}

hsrl_status actor_loop_run(comm *ep, const learner_train_options *opt) {
  hsrl_status st = HSRL_OK;
  actor *A = hsrl_calloc(1, sizeof *A);
  const hsrl_settings *s = &opt->settings;
  A->ep = ep, A->s = s, A->sync = s->dist.sync ? 1 : 0;
  HSRL_CHECK(comm_my_role(ep) == COMM_ROLE_ACTOR);
  const int R = (int)s->dist.replay_shards;
  A->index = comm_rank(ep) - 1 - R;
  A->dest = R > 0 ? 1 + A->index % R : 0;
  A->version = -1;
  A->deadline = learner_dist_deadline(opt);
  A->window = replay_server_window(s);
  A->t0 = A->heard = hsrl_time_now();
  const uint64_t seed = hsrl_settings_train_seed(s);
  const int64_t B = s->env.batch;
  HSRL_TRY(learner_train_world_load(&A->w, s, learner_dist_sim_path(s), B));
  HSRL_TRY(learner_train_make_agent(&A->a, s, &A->w, B, hsrl_rng_derive(seed, LEARNER_DIST_PURPOSE_AGENT), 1));
  int64_t max_vocab = 0;
  learner_dist_shape(&A->w, s, &A->shape, &max_vocab);
  const int64_t K = A->shape.slate_size, H = A->shape.history_len, KL = K * A->shape.n_levels;
  HSRL_TRY(sim_env_config_make(&A->env_cfg, &s->env, K, H, 0, 0));
  A->env_seed = hsrl_rng_derive(seed, LEARNER_DIST_PURPOSE_ENV);
  A->act_seed = hsrl_rng_derive(seed, LEARNER_DIST_PURPOSE_ACT);
  actor_restart(A, opt->start_iteration);
  replay_rows_buf_init(&A->stage, &A->shape, s->dist.block_rows);
  {
    replay_block_config bc = {A->shape, s->dist.block_rows, max_vocab, learner_train_resume_hash(s),
                              IO_ZSTD_DEFAULT_LEVEL};
    HSRL_TRY(replay_block_init(&A->block, &bc));
    A->send_cap = replay_block_bound(A->block);
    A->send_buf = hsrl_malloc(A->send_cap);
  }
  A->s_users = hsrl_calloc((size_t)B, sizeof(int32_t));
  A->s_hist = hsrl_calloc((size_t)(B * H), sizeof(int32_t));
  A->slate = hsrl_calloc((size_t)(B * K), sizeof(int32_t));
  if (KL > 0) {
    A->tokens = hsrl_calloc((size_t)(B * KL), sizeof(uint16_t));
    A->logp = hsrl_calloc((size_t)(B * KL), sizeof(float));
  }
  A->n_params = A->a->vt->n_policy_params(A->a);
  A->params_in = hsrl_alloc_aligned((size_t)A->n_params * sizeof(float));
  {
    int members[4096], n = 0;
    for (int r = 1 + R; r < comm_size(ep) && n < 4096; r++) members[n++] = r;
    HSRL_TRY(comm_bcast_open(&A->bc, ep, 0, members, n));
  }
  HSRL_TRY(comm_bcast_start(A->bc, A->params_in, A->n_params * (int64_t)sizeof(float), 0));
  st = actor_loop(A, opt->start_iteration);
done:
  if (st != HSRL_OK) hsrl_err_context(st, "actor %d (rank %d)", A->index, comm_rank(ep));
  hsrl_watchdog_mark("actor: closing (freeing the broadcast)"); /* it may wait close_deadline_s */
  comm_bcast_free(A->bc);
  sim_env_free(A->env);
  agent_free(A->a);
  learner_train_world_free(&A->w);
  replay_rows_buf_free(&A->stage);
  replay_block_free(A->block);
  hsrl_free(A->send_buf), hsrl_free(A->s_users), hsrl_free(A->s_hist), hsrl_free(A->slate);
  hsrl_free(A->tokens), hsrl_free(A->logp), hsrl_free(A->params_in);
  hsrl_free(A);
  return st;
}
