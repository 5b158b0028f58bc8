/* test_dist_sync.c: the distributed job's sync mode over the in-process transport (learner_dist.h,
 * actor_loop.h, replay_server.h; architecture.md "The distributed job", issue 6 item 6).
 *
 * Without arguments (ctest): a tiny world, learner + 1 replay shard + 1 actor as threads, sync
 * mode: the job finishes, writes metrics.tsv, checkpoints and a shard snapshot, and a second run
 * with the same seed gives the same per-update losses bit for bit (timing must not matter), while
 * another seed does not. Modes for tests/cli_dist_sync.sh:
 *   test_dist_sync setup DIR          writes DIR/world.data.h5, DIR/world.sid.h5, DIR/sync.ini
 *                                     (run.out_dir = DIR/mpi, run.name = run)
 *   test_dist_sync inproc INI RUN_DIR runs INI's job as in-process threads (3 ranks) into RUN_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "actor/actor_loop.h"
#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "learner/learner_dist.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

#define MAX_IT 400

typedef struct curve {
  int64_t n;
  double actor[MAX_IT + 1], critic[MAX_IT + 1];
} curve;

static void record(void *ctx, int64_t it, const agent_stats *st) {
  curve *c = ctx;
  if (it > MAX_IT) return;
  c->actor[it] = st->actor_loss, c->critic[it] = st->critic_loss;
  if (it > c->n) c->n = it;
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

static hsrl_status run_inproc(learner_train_options *o, curve *c) {
  o->on_update = record;
  o->on_update_ctx = c;
  return learner_dist_run(o, COMM_TRANSPORT_INPROC, 3, actor_loop_run);
}

static void test_sync_inproc_repeatable(void) {
  char data[600], sid[600], path[800];
  TEST_ASSERT(write_world(test_tmpdir(), data, sid, sizeof data));
  learner_train_options *o = hsrl_calloc(1, sizeof *o);
  curve *a = hsrl_calloc(1, sizeof *a), *b = hsrl_calloc(1, sizeof *b), *c = hsrl_calloc(1, sizeof *c);
  tiny_settings(&o->settings, data, sid, 60);
  o->quiet = 1;
  snprintf(o->run_dir, sizeof o->run_dir, "%s/dist-a", test_tmpdir());
  hsrl_status st = run_inproc(o, a);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(a->n == 60);
  struct stat sb;
  snprintf(path, sizeof path, "%s/dist-a/ckpt/step-60.h5", test_tmpdir());
  TEST_ASSERTF(stat(path, &sb) == 0, "no %s", path);
  snprintf(path, sizeof path, "%s/dist-a/ckpt/step-50.h5", test_tmpdir());
  TEST_ASSERTF(stat(path, &sb) == 0, "no %s", path);
  snprintf(path, sizeof path, "%s/dist-a/replay/shard-0.h5", test_tmpdir());
  TEST_ASSERTF(stat(path, &sb) == 0, "no %s", path);
  snprintf(path, sizeof path, "%s/dist-a/metrics.tsv", test_tmpdir());
  FILE *f = fopen(path, "r");
  TEST_ASSERT(f != NULL);
  int rows = 0;
  char line[4096];
  while (f && fgets(line, sizeof line, f)) rows++;
  if (f) fclose(f);
  TEST_ASSERTF(rows == 1 + 3, "metrics.tsv has %d lines", rows); /* header + 20, 40, 60 */

  snprintf(o->run_dir, sizeof o->run_dir, "%s/dist-b", test_tmpdir());
  st = run_inproc(o, b);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(b->n == 60);
  int same = 1;
  for (int64_t i = 1; i <= 60; i++)
    same &= memcmp(&a->actor[i], &b->actor[i], sizeof(double)) == 0 &&
            memcmp(&a->critic[i], &b->critic[i], sizeof(double)) == 0;
  TEST_ASSERTF(same, "two sync runs with the same seed differ");

  o->settings.run.seed = 4; /* the check must be able to fail */
  snprintf(o->run_dir, sizeof o->run_dir, "%s/dist-c", test_tmpdir());
  st = run_inproc(o, c);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  int differ = 0;
  for (int64_t i = 1; i <= 60; i++) differ |= a->critic[i] != c->critic[i];
  TEST_ASSERT(differ);
  hsrl_free(o), hsrl_free(a), hsrl_free(b), hsrl_free(c);
}

static int mode_setup(const char *dir) {
  char data[600], sid[600], path[800];
  if (!write_world(dir, data, sid, sizeof data)) return 1;
  hsrl_settings *s = hsrl_calloc(1, sizeof *s);
  tiny_settings(s, data, sid, 300);
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

static int mode_inproc(const char *ini, const char *run_dir) {
  learner_train_options *o = hsrl_calloc(1, sizeof *o);
  hsrl_status st = hsrl_settings_load(&o->settings, ini, 0, NULL);
  if (st == HSRL_OK) {
    snprintf(o->run_dir, sizeof o->run_dir, "%s", run_dir);
    o->quiet = 1;
    st = learner_dist_run(o, COMM_TRANSPORT_INPROC, 3, actor_loop_run);
  }
  if (st != HSRL_OK) fprintf(stderr, "test_dist_sync: %s\n", hsrl_err_message());
  hsrl_free(o);
  return st == HSRL_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "setup")) return mode_setup(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "inproc")) return mode_inproc(argv[2], argv[3]);
  TEST_RUN(test_sync_inproc_repeatable);
  return test_summary();
}
