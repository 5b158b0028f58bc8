/* test_learner_select.c: the policy a run hands to evaluation, chosen by validation in the training
 * environment (learner/learner_select.h; train.val_every), on the tiny synthetic world of
 * fixture_world.h (80 items, 40 users, K 4, H 10; HSRL learns in its ground truth).
 *
 *  - validation takes nothing from the training streams: 100 updates with and without it give
 *    bit-identical losses and gradient norms;
 *  - metrics.tsv's val_reward column holds each validation's mean Total Reward (nan before the
 *    first); the same policy validated twice scores the same (common random numbers);
 *  - the checkpoint keeps the parameters of the best validation (the iteration and reward of the
 *    column's maximum), learner_train_load_policy acts with them, and they are the actor of the
 *    checkpoint written at that iteration; LEARNER_POLICY_LAST (hsrl eval --last) acts with the
 *    last parameters;
 *  - a run resumed in the middle keeps the same selection as the uninterrupted run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "learner/learner_select.h"
#include "learner/learner_train.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

#define ITERATIONS 100
#define VAL_EVERY 20

static char g_data[200], g_sid[200];

typedef struct losses {
  double actor[ITERATIONS + 1], critic[ITERATIONS + 1], gnorm[ITERATIONS + 1];
} losses;

static void record(void *ctx, int64_t it, const agent_stats *st) {
  losses *l = ctx;
  if (it > ITERATIONS) return;
  l->actor[it] = st->actor_loss, l->critic[it] = st->critic_loss, l->gnorm[it] = st->grad_norm;
}

/* HSRL in the world: checkpoints every 20 updates, validation every val_every (0: off). */
static hsrl_status train(const char *dir, int64_t iterations, int64_t val_every, int resume, losses *l) {
  learner_train_options o;
  memset(&o, 0, sizeof o);
  hsrl_settings *s = &o.settings;
  hsrl_settings_defaults(s);
  s->run.seed = 4;
  s->data.slate_size = 4, s->data.history_len = 10;
  s->agent.d = 16, s->agent.layers = 1, s->agent.heads = 2, s->agent.ffn = 32;
  snprintf(s->agent.critic_hidden, sizeof s->agent.critic_hidden, "16");
  s->agent.actor_lr = 3e-3;
  s->env.batch = 8;
  s->train.batch = 16, s->train.buffer = 300, s->train.learning_starts = 64;
  s->train.report_every = 10, s->train.checkpoint_every = 20, s->train.iterations = iterations;
  s->train.val_every = val_every, s->train.val_episodes = 40;
  snprintf(s->run.data, sizeof s->run.data, "%s", g_data);
  snprintf(s->run.sid, sizeof s->run.sid, "%s", g_sid);
  snprintf(o.run_dir, sizeof o.run_dir, "%s/%s", test_tmpdir(), dir);
  o.quiet = 1;
  o.resume = resume;
  o.on_update = record;
  o.on_update_ctx = l;
  return learner_train_run(&o);
}

/* metrics.tsv's val_reward column (the last one) into v[row]; returns the number of rows. */
static int val_column(const char *dir, double *v, int cap) {
  char path[700], line[4096];
  snprintf(path, sizeof path, "%s/%s/metrics.tsv", test_tmpdir(), dir);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0;
  if (!fgets(line, sizeof line, f) || !strstr(line, "\tval_reward\n")) n = -1;
  while (n >= 0 && n < cap && fgets(line, sizeof line, f)) {
    const char *tab = strrchr(line, '\t');
    v[n++] = tab ? strtod(tab + 1, NULL) : (double)NAN;
  }
  fclose(f);
  return n;
}

static void test_validation_leaves_training_unchanged(void) {
  static losses a, b;
  TEST_ASSERTF(train("plain", ITERATIONS, 0, 0, &a) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(train("validated", ITERATIONS, VAL_EVERY, 0, &b) == HSRL_OK, "%s", hsrl_err_message());
  for (int i = 1; i <= ITERATIONS; i++)
    TEST_ASSERTF(a.actor[i] == b.actor[i] && a.critic[i] == b.critic[i] && a.gnorm[i] == b.gnorm[i],
                 "update %d: actor %.9g vs %.9g, critic %.9g vs %.9g", i, a.actor[i], b.actor[i], a.critic[i],
                 b.critic[i]);
  TEST_ASSERT(a.actor[50] != a.actor[51]); /* the losses move: the equality is not vacuous */
  double v[16];
  TEST_ASSERT(val_column("plain", v, 16) == -1); /* no column without validation */
  TEST_ASSERT(val_column("validated", v, 16) == ITERATIONS / 10);
  printf("  val_reward per report row:");
  for (int r = 0; r < ITERATIONS / 10; r++) {
    printf(" %.3f", v[r]);
    if (r == 0) TEST_ASSERT(isnan(v[r])); /* update 10: before the first validation */
    else TEST_ASSERT(isfinite(v[r]) && v[r] > 0.0);
  }
  printf("\n");
}

/* The checkpoint of the last update keeps the best validation's parameters. */
static void test_selected_is_the_best_validated(void) {
  double v[16];
  TEST_ASSERT(val_column("validated", v, 16) == ITERATIONS / 10);
  int64_t best_at = 0;
  double best = -INFINITY;
  for (int r = 1; r < ITERATIONS / 10; r += 2) /* rows of updates 20, 40, ...: fresh validations */
    if (v[r] > best) best = v[r], best_at = 10 * (r + 1);
  char path[700], at[700];
  snprintf(path, sizeof path, "%s/validated/ckpt/step-%d.h5", test_tmpdir(), ITERATIONS);
  snprintf(at, sizeof at, "%s/validated/ckpt/step-%lld.h5", test_tmpdir(), (long long)best_at);
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  int64_t it = 0;
  double reward = 0.0;
  TEST_ASSERT(io_h5_attr_get_i64(f, "learner/selected/params", "iteration", &it) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_get_f64(f, "learner/selected/params", "val_reward", &reward) == HSRL_OK);
  io_h5_close(f);
  printf("  selected update %lld (validation %.4f); the column's best: update %lld (%.4f)\n", (long long)it, reward,
         (long long)best_at, best);
  TEST_ASSERT(it == best_at);
  TEST_NEAR(reward, best, 1e-5 * fabs(best));

  hsrl_settings *s = hsrl_malloc(sizeof *s);
  TEST_ASSERT(learner_train_checkpoint_info(path, s, &it) == HSRL_OK);
  learner_world w;
  memset(&w, 0, sizeof w);
  TEST_ASSERTF(learner_train_world_load(&w, s, "", 8) == HSRL_OK, "%s", hsrl_err_message());
  agent *pol = NULL, *then = NULL, *last = NULL;
  TEST_ASSERT(learner_train_load_policy(&pol, s, &w, 8, path) == HSRL_OK);
  TEST_ASSERT(learner_train_make_agent(&then, s, &w, 8, 0, 1) == HSRL_OK);
  TEST_ASSERT(learner_train_make_agent(&last, s, &w, 8, 0, 1) == HSRL_OK);
  TEST_ASSERT(io_h5_open(&f, at) == HSRL_OK && then->vt->load(then, f) == HSRL_OK);
  io_h5_close(f);
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK && last->vt->load(last, f) == HSRL_OK);
  io_h5_close(f);
  const int64_t n = pol->vt->n_policy_params(pol);
  TEST_ASSERT(memcmp(pol->vt->policy_params(pol), then->vt->policy_params(then), (size_t)n * sizeof(float)) == 0);
  if (best_at != ITERATIONS) /* then the last parameters are not what evaluation acts with */
    TEST_ASSERT(memcmp(pol->vt->policy_params(pol), last->vt->policy_params(last), (size_t)n * sizeof(float)) != 0);
  /* hsrl eval --last: the checkpoint's last parameters */
  agent *as_last = NULL;
  TEST_ASSERT(learner_train_load_policy_as(&as_last, s, &w, 8, path, LEARNER_POLICY_LAST) == HSRL_OK);
  TEST_ASSERT(memcmp(as_last->vt->policy_params(as_last), last->vt->policy_params(last), (size_t)n * sizeof(float)) == 0);
  agent_free(as_last);
  agent_free(pol), agent_free(then), agent_free(last);
  learner_train_world_free(&w);
  hsrl_free(s);
}

/* Stopped at 40 and resumed to 100: the same validations and the same selection. */
static void test_resume_keeps_the_selection(void) {
  static losses c;
  TEST_ASSERTF(train("resumed", 40, VAL_EVERY, 0, &c) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(train("resumed", ITERATIONS, VAL_EVERY, 1, &c) == HSRL_OK, "%s", hsrl_err_message());
  double a[16], b[16];
  TEST_ASSERT(val_column("validated", a, 16) == ITERATIONS / 10);
  TEST_ASSERT(val_column("resumed", b, 16) == ITERATIONS / 10);
  for (int r = 1; r < ITERATIONS / 10; r++) TEST_ASSERTF(a[r] == b[r], "row %d: %.9g vs %.9g", r, a[r], b[r]);
  char pa[700], pb[700];
  snprintf(pa, sizeof pa, "%s/validated/ckpt/step-%d.h5", test_tmpdir(), ITERATIONS);
  snprintf(pb, sizeof pb, "%s/resumed/ckpt/step-%d.h5", test_tmpdir(), ITERATIONS);
  io_h5 *fa = NULL, *fb = NULL;
  TEST_ASSERT(io_h5_open(&fa, pa) == HSRL_OK && io_h5_open(&fb, pb) == HSRL_OK);
  int64_t ia = 0, ib = 0;
  TEST_ASSERT(io_h5_attr_get_i64(fa, "learner/selected/params", "iteration", &ia) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_get_i64(fb, "learner/selected/params", "iteration", &ib) == HSRL_OK);
  io_h5_close(fa), io_h5_close(fb);
  TEST_ASSERT(ia == ib);
}

int main(void) {
  snprintf(g_data, sizeof g_data, "%s/select.data.h5", test_tmpdir());
  snprintf(g_sid, sizeof g_sid, "%s/select.sid.h5", test_tmpdir());
  fixture_world_spec spec = {.items = 80, .users = 40, .seed = 5, .sid_vocab2 = 8, .sid_dim = 2};
  if (!fixture_world_write(&spec, g_data, g_sid)) {
    fprintf(stderr, "cannot make the tiny world: %s\n", hsrl_err_message());
    return 1;
  }
  TEST_RUN(test_validation_leaves_training_unchanged);
  TEST_RUN(test_selected_is_the_best_validated);
  TEST_RUN(test_resume_keeps_the_selection);
  return test_summary();
}
