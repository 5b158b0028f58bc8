/* test_dist_sync.c: the distributed job's sync mode, resume and stop requests over the
 * in-process transport (learner_dist.h, actor_loop.h, replay_server.h; architecture.md "The
 * distributed job", issue 6 items 6 and 7).
 *
 * Without arguments (ctest), on a tiny world (learner + 1 replay shard + 1 actor as threads
 * unless said otherwise, sync mode):
 *   - the job finishes, writes metrics.tsv, checkpoints and per-checkpoint shard snapshots; a
 *     second run with the same seed gives the same per-update losses bit for bit (timing must not
 *     matter), another seed does not;
 *   - resume: 40 updates, then --resume to 60, gives the losses of an uninterrupted 60-update run
 *     bit for bit (updates 41..60), also with R = 0; a resume from update 20 of a run that went on
 *     (its newest checkpoints deleted) too;
 *   - a stop request (what SIGTERM does) at update 33 ends the run after a checkpoint of the
 *     update in progress (33 or 34, not a boundary), learner_train_stopped() says so, and the
 *     run resumes from it to the end;
 *   - R = 0 (the replay inside the learner, 2 ranks) finishes and equals R = 1 bit for bit (the
 *     in-learner shard has the config and stream of shard 0 of 1);
 *   - refusals before any role starts: resume with another dist.replay_shards (named, USAGE),
 *     a sync resume with another number of actors, a new run into a run directory that holds
 *     checkpoints, a distributed checkpoint resumed by the single-process loop.
 * Modes for tests/cli_dist_*.sh:
 *   test_dist_sync setup DIR [R]            writes DIR/world.data.h5, DIR/world.sid.h5, DIR/sync.ini
 *                                           (run.out_dir = DIR/mpi, run.name = run, R shards, 1)
 *   test_dist_sync inproc INI RUN_DIR [N]   runs INI's job as N in-process threads (3) into RUN_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actor/actor_loop.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "learner/learner_dist.h"
#include "replay/replay_server.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

#define MAX_IT 400

typedef struct curve {
  int64_t n, first;
  double actor[MAX_IT + 1], critic[MAX_IT + 1];
  int64_t stop_at; /* > 0: request a stop (as SIGTERM does) after this update */
} curve;

static void record(void *ctx, int64_t it, const agent_stats *st) {
  curve *c = ctx;
  if (it > MAX_IT) return;
  c->actor[it] = st->actor_loss, c->critic[it] = st->critic_loss;
  if (c->first == 0) c->first = it;
  if (it > c->n) c->n = it;
  if (c->stop_at > 0 && it == c->stop_at) learner_train_request_stop(15);
}

static void tiny_settings(hsrl_settings *s, const char *data, const char *sid, int64_t iterations) {
  hsrl_settings_defaults(s);
  s->run.seed = 3;
  s->data.slate_size = 4, s->data.history_len = 10;
  s->agent.d = 16, s->agent.layers = 1, s->agent.heads = 2, s->agent.ffn = 32;
  snprintf(s->agent.critic_hidden, sizeof s->agent.critic_hidden, "32,16");
  s->env.batch = 8;
  s->train.batch = 16, s->train.buffer = 300, s->train.learning_starts = 64;
  s->train.report_every = 20, s->train.checkpoint_every = 50, s->train.iterations = iterations;
  s->dist.replay_shards = 1, s->dist.sync = true, s->dist.broadcast_every = 2;
  s->dist.block_rows = 8;
  snprintf(s->run.data, sizeof s->run.data, "%s", data);
  snprintf(s->run.sid, sizeof s->run.sid, "%s", sid);
}

static int write_world(const char *dir, char *data, char *sid, size_t cap) {
  snprintf(data, cap, "%s/world.data.h5", dir);
  snprintf(sid, cap, "%s/world.sid.h5", dir);
  fixture_world_spec spec = {.items = 80, .users = 40, .seed = 5, .sid_vocab2 = 8, .sid_dim = 2};
  return fixture_world_write(&spec, data, sid);
}

static hsrl_status run_inproc(learner_train_options *o, curve *c, int n_ranks) {
  o->on_update = record;
  o->on_update_ctx = c;
  learner_train_request_stop(0);
  learner_train_set_stopped(0);
  hsrl_status st = learner_dist_run(o, COMM_TRANSPORT_INPROC, n_ranks, actor_loop_run);
  learner_train_request_stop(0);
  return st;
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* losses of updates lo..hi equal bit for bit */
static int same_losses(const curve *a, const curve *b, int64_t lo, int64_t hi) {
  int same = 1;
  for (int64_t i = lo; i <= hi; i++)
    same &= memcmp(&a->actor[i], &b->actor[i], sizeof(double)) == 0 &&
            memcmp(&a->critic[i], &b->critic[i], sizeof(double)) == 0;
  return same;
}

static learner_train_options *options(const char *data, const char *sid, int64_t iterations,
                                      const char *name) {
  learner_train_options *o = hsrl_calloc(1, sizeof *o);
  tiny_settings(&o->settings, data, sid, iterations);
  o->quiet = 1;
  o->deadline_s = 20;
  snprintf(o->run_dir, sizeof o->run_dir, "%s/%s", test_tmpdir(), name);
  return o;
}

static char g_data[600], g_sid[600];

static void test_sync_inproc_repeatable(void) {
  char path[800];
  learner_train_options *o = options(g_data, g_sid, 60, "dist-a");
  curve *a = hsrl_calloc(1, sizeof *a), *b = hsrl_calloc(1, sizeof *b), *c = hsrl_calloc(1, sizeof *c);
  hsrl_status st = run_inproc(o, a, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(a->n == 60);
  const char *files[] = {"ckpt/step-60.h5", "ckpt/step-50.h5", "replay/shard-0-step-50.h5",
                         "replay/shard-0-step-60.h5", "config.ini"};
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "%s/dist-a/%s", test_tmpdir(), files[i]);
    TEST_ASSERTF(file_exists(path), "no %s", path);
  }
  snprintf(path, sizeof path, "%s/dist-a/metrics.tsv", test_tmpdir());
  FILE *f = fopen(path, "r");
  TEST_ASSERT(f != NULL);
  int rows = 0;
  char line[4096];
  while (f && fgets(line, sizeof line, f)) rows++;
  if (f) fclose(f);
  TEST_ASSERTF(rows == 1 + 3, "metrics.tsv has %d lines", rows); /* header + 20, 40, 60 */

  snprintf(o->run_dir, sizeof o->run_dir, "%s/dist-b", test_tmpdir());
  st = run_inproc(o, b, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(b->n == 60);
  TEST_ASSERTF(same_losses(a, b, 1, 60), "two sync runs with the same seed differ");

  o->settings.run.seed = 4; /* the check must be able to fail */
  snprintf(o->run_dir, sizeof o->run_dir, "%s/dist-c", test_tmpdir());
  st = run_inproc(o, c, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  int differ = 0;
  for (int64_t i = 1; i <= 60; i++) differ |= a->critic[i] != c->critic[i];
  TEST_ASSERT(differ);
  hsrl_free(o), hsrl_free(a), hsrl_free(b), hsrl_free(c);
}

/* 60 updates straight vs 40 + resume to 60 (checkpoints every 20), with R shards. */
static void resume_exact(int R) {
  char name[64];
  learner_train_options *o = options(g_data, g_sid, 60, "");
  curve *a = hsrl_calloc(1, sizeof *a), *b = hsrl_calloc(1, sizeof *b), *c = hsrl_calloc(1, sizeof *c);
  curve *d = hsrl_calloc(1, sizeof *d);
  const int n_ranks = 2 + R;
  o->settings.dist.replay_shards = R;
  o->settings.train.checkpoint_every = 20;
  o->settings.dist.broadcast_every = 3; /* not a divisor of 20: the stored broadcast matters */
  snprintf(name, sizeof name, "resume-full-%d", R);
  snprintf(o->run_dir, sizeof o->run_dir, "%s/%s", test_tmpdir(), name);
  hsrl_status st = run_inproc(o, a, n_ranks);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(a->n == 60);

  snprintf(o->run_dir, sizeof o->run_dir, "%s/resume-part-%d", test_tmpdir(), R);
  o->settings.train.iterations = 40;
  st = run_inproc(o, b, n_ranks);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(same_losses(a, b, 1, 40), "R = %d: the first 40 updates differ", R);
  o->settings.train.iterations = 60;
  o->resume = 1;
  st = run_inproc(o, c, n_ranks);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(c->first == 41 && c->n == 60, "R = %d: resumed updates %lld..%lld", R, (long long)c->first,
               (long long)c->n);
  TEST_ASSERTF(same_losses(a, c, 41, 60), "R = %d: updates 41..60 after a resume differ", R);

  /* resume from an older checkpoint (20) of a finished run: its newer cuts deleted */
  char path[900];
  snprintf(path, sizeof path, "%s/%s/ckpt/step-40.h5", test_tmpdir(), name);
  TEST_ASSERT(remove(path) == 0);
  snprintf(path, sizeof path, "%s/%s/ckpt/step-60.h5", test_tmpdir(), name);
  TEST_ASSERT(remove(path) == 0);
  snprintf(o->run_dir, sizeof o->run_dir, "%s/%s", test_tmpdir(), name);
  st = run_inproc(o, d, n_ranks);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(d->first == 21 && d->n == 60, "R = %d: resumed updates %lld..%lld", R, (long long)d->first,
               (long long)d->n);
  TEST_ASSERTF(same_losses(a, d, 21, 60), "R = %d: updates 21..60 after a resume from 20 differ", R);
  o->resume = 0;
  hsrl_free(o), hsrl_free(a), hsrl_free(b), hsrl_free(c), hsrl_free(d);
}

static void test_resume_exact_r1(void) { resume_exact(1); }
static void test_resume_exact_r0(void) { resume_exact(0); }

static void test_stop_request(void) {
  learner_train_options *o = options(g_data, g_sid, 60, "stopped");
  curve *a = hsrl_calloc(1, sizeof *a), *b = hsrl_calloc(1, sizeof *b);
  o->settings.train.checkpoint_every = 20;
  a->stop_at = 33;
  hsrl_status st = run_inproc(o, a, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  /* the flag is seen at the top of the next update: 34 (33 when it came before) */
  TEST_ASSERTF(a->n == 34, "stopped after update %lld", (long long)a->n);
  TEST_ASSERTF(learner_train_stopped() == 15, "learner_train_stopped() = %d", learner_train_stopped());
  char path[900];
  snprintf(path, sizeof path, "%s/stopped/ckpt/step-34.h5", test_tmpdir());
  TEST_ASSERTF(file_exists(path), "no %s", path);
  snprintf(path, sizeof path, "%s/stopped/replay/shard-0-step-34.h5", test_tmpdir());
  TEST_ASSERTF(file_exists(path), "no %s", path);
  o->resume = 1;
  st = run_inproc(o, b, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(b->first == 35 && b->n == 60, "resumed updates %lld..%lld", (long long)b->first,
               (long long)b->n);
  TEST_ASSERT(learner_train_stopped() == 0);
  hsrl_free(o), hsrl_free(a), hsrl_free(b);
}

static void test_r0_equals_r1(void) {
  learner_train_options *o = options(g_data, g_sid, 60, "r0");
  curve *a = hsrl_calloc(1, sizeof *a), *b = hsrl_calloc(1, sizeof *b);
  o->settings.dist.replay_shards = 0;
  hsrl_status st = run_inproc(o, a, 2);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(a->n == 60);
  char path[900];
  snprintf(path, sizeof path, "%s/r0/replay/shard-0-step-60.h5", test_tmpdir());
  TEST_ASSERTF(file_exists(path), "no %s", path);
  o->settings.dist.replay_shards = 1;
  snprintf(o->run_dir, sizeof o->run_dir, "%s/r1", test_tmpdir());
  st = run_inproc(o, b, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(same_losses(a, b, 1, 60), "R = 0 and R = 1 differ");
  hsrl_free(o), hsrl_free(a), hsrl_free(b);
}

static void test_refusals(void) {
  learner_train_options *o = options(g_data, g_sid, 20, "refuse");
  curve *a = hsrl_calloc(1, sizeof *a);
  o->settings.train.checkpoint_every = 10;
  hsrl_status st = run_inproc(o, a, 3);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  /* a new run into it */
  st = run_inproc(o, a, 3);
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "--resume"), "%s", hsrl_err_message());
  /* another shard count */
  o->resume = 1;
  o->settings.dist.replay_shards = 2;
  o->settings.train.batch = 16;
  st = run_inproc(o, a, 4);
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "dist.replay_shards"), "%s",
               hsrl_err_message());
  /* another actor count in sync mode */
  o->settings.dist.replay_shards = 1;
  st = run_inproc(o, a, 4);
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "actor"), "%s", hsrl_err_message());
  /* the single-process loop refuses the distributed checkpoint */
  st = learner_train_run(o);
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "distributed"), "%s", hsrl_err_message());
  /* a missing shard snapshot */
  char path[900];
  snprintf(path, sizeof path, "%s/refuse/replay/shard-0-step-20.h5", test_tmpdir());
  TEST_ASSERT(remove(path) == 0);
  st = run_inproc(o, a, 3);
  TEST_ASSERTF(st == HSRL_E_INPUT && strstr(hsrl_err_message(), "shard-0-step-20.h5"), "%s",
               hsrl_err_message());
  hsrl_free(o), hsrl_free(a);
}

static int mode_setup(const char *dir, int R) {
  char data[600], sid[600], path[800];
  if (!write_world(dir, data, sid, sizeof data)) return 1;
  hsrl_settings *s = hsrl_calloc(1, sizeof *s);
  tiny_settings(s, data, sid, 300);
  s->dist.replay_shards = R;
  snprintf(s->run.out_dir, sizeof s->run.out_dir, "%s/mpi", dir);
  snprintf(s->run.name, sizeof s->run.name, "run");
  size_t n = hsrl_settings_write(s, 0, NULL, 0) + 1;
  char *text = hsrl_malloc(n);
  hsrl_settings_write(s, 0, text, n);
  snprintf(path, sizeof path, "%s/sync.ini", dir);
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  fputs(text, f);
  fclose(f);
  hsrl_free(text), hsrl_free(s);
  return 0;
}

static int mode_inproc(const char *ini, const char *run_dir, int n_ranks) {
  learner_train_options *o = hsrl_calloc(1, sizeof *o);
  hsrl_status st = hsrl_settings_load(&o->settings, ini, 0, NULL);
  if (st == HSRL_OK) {
    snprintf(o->run_dir, sizeof o->run_dir, "%s", run_dir);
    o->quiet = 1;
    st = learner_dist_run(o, COMM_TRANSPORT_INPROC, n_ranks, actor_loop_run);
  }
  if (st != HSRL_OK) fprintf(stderr, "test_dist_sync: %s\n", hsrl_err_message());
  hsrl_free(o);
  return st == HSRL_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  if ((argc == 3 || argc == 4) && !strcmp(argv[1], "setup")) return mode_setup(argv[2], argc == 4 ? atoi(argv[3]) : 1);
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "inproc"))
    return mode_inproc(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : 3);
  if (!write_world(test_tmpdir(), g_data, g_sid, sizeof g_data)) {
    fprintf(stderr, "cannot write the fixture world\n");
    return 1;
  }
  TEST_RUN(test_sync_inproc_repeatable);
  TEST_RUN(test_resume_exact_r1);
  TEST_RUN(test_resume_exact_r0);
  TEST_RUN(test_stop_request);
  TEST_RUN(test_r0_equals_r1);
  TEST_RUN(test_refusals);
  return test_summary();
}
