/* test_dist_alloc.c: the steady-state loops of the distributed job allocate nothing (style.md
 * "Memory": "a test counts allocations in the steady-state actor, replay and learner loops and
 * expects zero"; learner_dist.h, actor_loop.h, replay_server.h "Memory").
 *
 * The whole job runs over the in-process transport (one thread per role) on a tiny world, and the
 * learner's per-update hook reads the process-wide allocation counter (hsrl_alloc_count, atomic,
 * counting every thread) after update 40 and after update 140 of 150. Between them every role is
 * in its steady state and busy: the actor steps its users, packs and sends blocks and takes
 * broadcasts; the replay shard receives, inserts and serves samples (R = 1) or the learner does
 * (R = 0); the learner gathers, learns, broadcasts, reports metrics rows every 10 updates. The
 * count must not move, in sync and async mode, with R = 1 and R = 0. Checkpoints allocate (the
 * config text, HDF5), so there is only the final one, after the window; a window that holds
 * checkpoints must see allocations (the control: the counter does see the job).
 * Also: the batch the learner hands the agent carries the behaviour log-probs of the replayed
 * rows (agent_batch.behaviour_logp), checked through the shard's rows: every sampled row's
 * log-probs are <= 0 and not all zero. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "actor/actor_loop.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "learner/learner_dist.h"
#include "replay/replay_shard.h"
#include "replay/replay_snapshot.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

typedef struct window {
  int64_t from, to;      /* updates after which the counter is read */
  int64_t at_from, at_to;
  int64_t n;
} window;

static void on_update(void *ctx, int64_t it, const agent_stats *st) {
  (void)st;
  window *w = ctx;
  if (it == w->from) w->at_from = hsrl_alloc_count();
  if (it == w->to) w->at_to = hsrl_alloc_count();
  w->n = it;
}

static char g_data[200], g_sid[200];

static void settings(hsrl_settings *s, int R, int sync, int64_t iterations, int64_t ckpt_every) {
  hsrl_settings_defaults(s);
  s->run.seed = 9;
  s->data.slate_size = 4, s->data.history_len = 10;
  s->agent.d = 16, s->agent.layers = 1, s->agent.heads = 2, s->agent.ffn = 32;
  snprintf(s->agent.critic_hidden, sizeof s->agent.critic_hidden, "32,16");
  s->env.batch = 8;
  s->train.batch = 16, s->train.buffer = 300, s->train.learning_starts = 64;
  s->train.report_every = 10, s->train.checkpoint_every = ckpt_every, s->train.iterations = iterations;
  s->dist.replay_shards = R, s->dist.sync = sync ? true : false, s->dist.broadcast_every = 2;
  s->dist.block_rows = 8;
  s->dist.samples_per_insert = 2; /* batch 16 per env step of 8 */
  snprintf(s->run.data, sizeof s->run.data, "%s", g_data);
  snprintf(s->run.sid, sizeof s->run.sid, "%s", g_sid);
}

/* Runs the job; *n = allocations between the end of update 40 and the end of update 140. */
static void window_allocs(int R, int sync, int64_t ckpt_every, const char *name, int64_t *n) {
  learner_train_options *o = hsrl_calloc(1, sizeof *o);
  window w = {40, 140, -1, -1, 0};
  *n = -1;
  settings(&o->settings, R, sync, 150, ckpt_every);
  o->quiet = 1;
  o->deadline_s = 20;
  o->on_update = on_update;
  o->on_update_ctx = &w;
  snprintf(o->run_dir, sizeof o->run_dir, "%s/%s", test_tmpdir(), name);
  hsrl_status st = learner_dist_run(o, COMM_TRANSPORT_INPROC, 2 + R, actor_loop_run);
  hsrl_free(o);
  TEST_ASSERTF(st == HSRL_OK, "%s: %s", name, hsrl_err_message());
  TEST_ASSERTF(w.n == 150 && w.at_from >= 0 && w.at_to >= 0, "%s: %lld updates", name, (long long)w.n);
  *n = w.at_to - w.at_from;
  printf("  %-10s R = %d, %s: %lld allocations in updates 41..140 (checkpoint_every %lld)\n", name, R,
         sync ? "sync " : "async", (long long)*n, (long long)ckpt_every);
}

static void test_sync_r1(void) {
  int64_t n;
  window_allocs(1, 1, 0, "sync-r1", &n);
  TEST_ASSERT(n == 0);
}
static void test_async_r1(void) {
  int64_t n;
  window_allocs(1, 0, 0, "async-r1", &n);
  TEST_ASSERT(n == 0);
}
static void test_sync_r0(void) {
  int64_t n;
  window_allocs(0, 1, 0, "sync-r0", &n);
  TEST_ASSERT(n == 0);
}
static void test_async_r0(void) {
  int64_t n;
  window_allocs(0, 0, 0, "async-r0", &n);
  TEST_ASSERT(n == 0);
}

/* the control: checkpoints (and the actors' restarts) inside the window are seen */
static void test_control_checkpoints_allocate(void) {
  int64_t n;
  window_allocs(1, 1, 25, "control", &n);
  TEST_ASSERT(n > 0);
}

/* The rows the learner turns into agent batches carry behaviour log-probs: the replay snapshot
 * of the finished run holds the sampled rows' source, and a sample from it has them. */
static void test_batches_carry_behaviour_logp(void) {
  char path[900];
  snprintf(path, sizeof path, "%s/sync-r1/replay/shard-0-step-150.h5", test_tmpdir());
  replay_shard *sh = NULL;
  hsrl_status st = replay_snapshot_read(&sh, path);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  if (!sh) return;
  TEST_ASSERT(replay_shard_get_config(sh)->shape.with_logp);
  replay_rows r;
  TEST_ASSERT(replay_shard_sample(sh, 16, &r));
  TEST_ASSERT(r.behaviour_logp != NULL);
  const int64_t KL = replay_shard_get_config(sh)->shape.slate_size * replay_shard_get_config(sh)->shape.n_levels;
  int nonzero = 0, ok = 1;
  for (int64_t i = 0; r.behaviour_logp && i < 16 * KL; i++) {
    ok &= isfinite(r.behaviour_logp[i]) && r.behaviour_logp[i] <= 0.0f;
    nonzero |= r.behaviour_logp[i] != 0.0f;
  }
  TEST_ASSERTF(ok && nonzero, "behaviour log-probs of sampled rows: finite and <= 0 %d, some nonzero %d", ok,
               nonzero);
  replay_shard_free(sh);
}

int main(void) {
  snprintf(g_data, sizeof g_data, "%s/world.data.h5", test_tmpdir());
  snprintf(g_sid, sizeof g_sid, "%s/world.sid.h5", test_tmpdir());
  fixture_world_spec spec = {.items = 80, .users = 40, .seed = 5, .sid_vocab2 = 8, .sid_dim = 2};
  if (!fixture_world_write(&spec, g_data, g_sid)) {
    fprintf(stderr, "cannot write the fixture world\n");
    return 1;
  }
  TEST_RUN(test_sync_r1);
  TEST_RUN(test_async_r1);
  TEST_RUN(test_sync_r0);
  TEST_RUN(test_async_r0);
  TEST_RUN(test_control_checkpoints_allocate);
  TEST_RUN(test_batches_carry_behaviour_logp);
  return test_summary();
}
