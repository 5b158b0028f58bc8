/* test_learner_train.c: the single-process training loop (learner/learner_train.h) on a tiny
 * synthetic world (sim_synth: 80 items, 40 users, K 4, H 10; its ground truth is the click model).
 *
 *  - golden curve: a deterministic 200-iteration SL run (logged records) whose per-update loss and
 *    gradient norm are committed in tests/golden/learner_tiny_sl.csv and compared with a
 *    tolerance (|a - b| <= 1e-5 + 1e-3 |b|). Regenerate after an intended change with
 *        HSRL_REGEN_GOLDEN=1 build/tests/test_learner_train
 *    (it rewrites the CSV in the source tree; review the diff before committing it);
 *  - checkpoint -> resume gives the same next 100 losses, bit for bit, as an uninterrupted run:
 *    SL on its replay ring (prefill, exploration, ring and every random stream restored) and the
 *    HSRL agent; metrics.tsv rows agree too, and an incomplete checkpoint (a temporary file) is
 *    ignored;
 *  - zero allocations in the steady-state iteration (SL logged, SL replay, HSRL);
 *  - refusals: a fresh run into a directory with checkpoints, a resume with another config
 *    (another network, another agent.sl_source); a resume with a moved data file and another
 *    run.blas_threads is accepted;
 *  - the [agent] keys critic_to_actor, explore_temp and grad_clip reach the HSRL agent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_config.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_params.h"
#include "learner/agents/agent_hsrl.h"
#include "learner/agents/agent_sl.h"
#include "learner/learner_train.h"
#include "sim/sim_synth.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

#define MAX_IT 400

static char g_data[400], g_sid[400];

/* The synthetic data file and a two-level SID file (topic, id mod 8) in the temporary directory. */
static int world_make(void) {
  snprintf(g_data, sizeof g_data, "%s/tiny.data.h5", test_tmpdir());
  snprintf(g_sid, sizeof g_sid, "%s/tiny.sid.h5", test_tmpdir());
  fixture_world_spec spec = {.items = 80, .users = 40, .seed = 5, .sid_vocab2 = 8, .sid_dim = 2};
  return fixture_world_write(&spec, g_data, g_sid);
}

/* dst (LEARNER_PATH_MAX) <- a + b */
static void path_set(char *dst, const char *a, const char *b) {
  size_t na = strlen(a), nb = b ? strlen(b) : 0;
  if (na + nb + 2 > LEARNER_PATH_MAX) abort();
  memcpy(dst, a, na);
  if (b) {
    dst[na] = '/';
    memcpy(dst + na + 1, b, nb + 1);
  } else {
    dst[na] = '\0';
  }
}

static void options(learner_train_options *o, const char *agent_name, int replay, const char *dir,
                    int64_t iterations, int64_t ckpt_every) {
  memset(o, 0, sizeof *o);
  hsrl_settings *s = &o->settings;
  hsrl_settings_defaults(s);
  s->run.seed = 3;
  s->data.slate_size = 4, s->data.history_len = 10;
  s->agent.d = 16, s->agent.layers = 2, s->agent.heads = 2, s->agent.ffn = 32;
  snprintf(s->agent.critic_hidden, sizeof s->agent.critic_hidden, "32,16");
  s->env.batch = 8;
  s->train.batch = 16, s->train.buffer = 300, s->train.learning_starts = 64;
  s->train.report_every = 10, s->train.checkpoint_every = ckpt_every, s->train.iterations = iterations;
  snprintf(s->agent.kind, sizeof s->agent.kind, "%s", agent_name);
  snprintf(s->agent.sl_source, sizeof s->agent.sl_source, "%s", replay ? "replay" : "records");
  s->agent.sl_val_every = 10; /* SL from records: a held-out loss every 10 updates */
  path_set(s->run.data, g_data, NULL);
  path_set(s->run.sid, g_sid, NULL);
  path_set(o->run_dir, test_tmpdir(), dir);
  o->quiet = 1;
}

typedef struct curve {
  int64_t n;
  double actor[MAX_IT + 1], critic[MAX_IT + 1], gnorm[MAX_IT + 1];
} curve;

static void record(void *ctx, int64_t it, const agent_stats *st) {
  curve *c = ctx;
  if (it > MAX_IT) return;
  c->actor[it] = st->actor_loss, c->critic[it] = st->critic_loss, c->gnorm[it] = st->grad_norm;
  if (it > c->n) c->n = it;
}

static hsrl_status run(learner_train_options *o, curve *c) {
  o->on_update = record;
  o->on_update_ctx = c;
  return learner_train_run(o);
}

/* The rows of a metrics.tsv without the timing columns (seconds, user_steps_per_s,
 * updates_per_s: wall clock), joined into buf; returns the number of rows. */
static int metrics_rows(const char *run_dir, char *buf, size_t cap) {
  char path[700], line[4096];
  snprintf(path, sizeof path, "%s/metrics.tsv", run_dir);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t o = 0;
  int rows = 0;
  buf[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    int col = 0;
    for (char *tok = strtok(line, "\t\n"); tok; tok = strtok(NULL, "\t\n"), col++) {
      if (col == 1 || col == 3 || col == 4) continue;
      o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "%s ", tok);
    }
    o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "\n");
    rows++;
  }
  fclose(f);
  return rows - 1;
}

/* ---------------------------------------------------------------- golden curve */

static void test_golden_curve_sl(void) {
  learner_train_options o;
  options(&o, "sl", 0, "golden", 200, 0);
  o.settings.agent.sl_val_fraction = 0; /* the curve of fitting every train record */
  static curve c;
  memset(&c, 0, sizeof c);
  hsrl_status st = run(&o, &c);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(c.n == 200);
  double first = 0, last = 0;
  for (int i = 1; i <= 20; i++) first += c.actor[i] / 20, last += c.actor[180 + i] / 20;
  printf("  SL BCE on logged records: first 20 updates %.4f, last 20 %.4f\n", first, last);
  TEST_ASSERT(last < first - 0.02);
  static char rows[1 << 16];
  TEST_ASSERT(metrics_rows(o.run_dir, rows, sizeof rows) == 20);
  TEST_ASSERT(strstr(rows, "iteration user_steps critic_loss actor_loss") == rows);
  TEST_ASSERT(strstr(rows, "episodes total_reward depth replay_size") != NULL);

  char path[600];
  snprintf(path, sizeof path, "%s/learner_tiny_sl.csv", HSRL_GOLDEN_DIR);
  if (getenv("HSRL_REGEN_GOLDEN")) {
    FILE *f = fopen(path, "w");
    TEST_ASSERT(f != NULL);
    fprintf(f, "# hsrl golden v1: test_learner_train tiny SL run (regenerate: HSRL_REGEN_GOLDEN=1 "
               "test_learner_train)\niteration,actor_loss,grad_norm\n");
    for (int i = 1; i <= 200; i++) fprintf(f, "%d,%.9g,%.9g\n", i, c.actor[i], c.gnorm[i]);
    TEST_ASSERT(fclose(f) == 0);
    printf("  wrote %s\n", path);
    return;
  }
  FILE *f = fopen(path, "r");
  if (!f) TEST_SKIP("no golden file; run with HSRL_REGEN_GOLDEN=1 to create it");
  char line[256];
  TEST_ASSERT(fgets(line, sizeof line, f) && !strncmp(line, "# hsrl golden v1:", 17));
  TEST_ASSERT(fgets(line, sizeof line, f) && !strcmp(line, "iteration,actor_loss,grad_norm\n"));
  int n = 0;
  double worst = 0;
  int it;
  double a, g;
  while (fscanf(f, "%d,%lf,%lf", &it, &a, &g) == 3) {
    TEST_ASSERT(it == n + 1 && it <= 200);
    double ea = fabs(c.actor[it] - a) / (1e-5 + 1e-3 * fabs(a));
    double eg = fabs(c.gnorm[it] - g) / (1e-5 + 1e-3 * fabs(g));
    worst = fmax(worst, fmax(ea, eg));
    TEST_ASSERTF(ea <= 1.0 && eg <= 1.0, "iteration %d: loss %.9g (golden %.9g), grad norm %.9g "
                 "(golden %.9g)", it, c.actor[it], a, c.gnorm[it], g);
    n++;
  }
  fclose(f);
  printf("  golden curve: %d iterations, worst scaled difference %.3g (1 = tolerance)\n", n, worst);
  TEST_ASSERT(n == 200);
}

/* ---------------------------------------------------------------- exact resume */

static void resume_case(const char *agent_name, int replay, const char *tag) {
  char da[64], db[64];
  snprintf(da, sizeof da, "%s-a", tag);
  snprintf(db, sizeof db, "%s-b", tag);
  static curve ca, cb;
  memset(&ca, 0, sizeof ca);
  memset(&cb, 0, sizeof cb);
  learner_train_options o;
  /* A: 150 iterations uninterrupted, checkpoints at 50, 100, 150 */
  options(&o, agent_name, replay, da, 150, 50);
  hsrl_status st = run(&o, &ca);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  /* B: stopped after 50, then resumed to 150 */
  options(&o, agent_name, replay, db, 50, 50);
  TEST_ASSERTF(run(&o, &cb) == HSRL_OK, "%s", hsrl_err_message());
  char junk[700];
  snprintf(junk, sizeof junk, "%s/ckpt/step-99.h5.tmp-12345", o.run_dir); /* a crashed write */
  FILE *jf = fopen(junk, "w");
  TEST_ASSERT(jf != NULL);
  fputs("not hdf5", jf);
  fclose(jf);
  options(&o, agent_name, replay, db, 150, 50);
  o.resume = 1;
  TEST_ASSERTF(run(&o, &cb) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(ca.n == 150 && cb.n == 150);
  int same = 0;
  for (int i = 1; i <= 150; i++)
    same += ca.actor[i] == cb.actor[i] && ca.critic[i] == cb.critic[i] && ca.gnorm[i] == cb.gnorm[i];
  printf("  %s: %d of 150 updates bit-identical (resumed at 50)\n", tag, same);
  for (int i = 51; i <= 150; i++)
    TEST_ASSERTF(ca.actor[i] == cb.actor[i] && ca.critic[i] == cb.critic[i] &&
                     ca.gnorm[i] == cb.gnorm[i],
                 "iteration %d: actor %.9g vs %.9g, critic %.9g vs %.9g", i, ca.actor[i],
                 cb.actor[i], ca.critic[i], cb.critic[i]);
  static char ra[1 << 16], rb[1 << 16];
  snprintf(junk, sizeof junk, "%s/%s", test_tmpdir(), da);
  TEST_ASSERT(metrics_rows(junk, ra, sizeof ra) == 15);
  TEST_ASSERT(metrics_rows(o.run_dir, rb, sizeof rb) == 15);
  TEST_ASSERTF(!strcmp(ra, rb), "metrics differ:\n%s\nvs\n%s", ra, rb);
  /* the losses are not constant, so equality above is not vacuous */
  TEST_ASSERT(ca.actor[60] != ca.actor[61] || ca.critic[60] != ca.critic[61]);
}

/* ---------------------------------------------------------------- SL early stopping */

/* SL from records holds out each train user's latest records (agent.sl_val_fraction), writes their
 * loss every agent.sl_val_every updates to metrics.tsv, keeps the parameters of the lowest one in
 * the checkpoint, and a checkpoint's policy (learner_train_load_policy) acts with those. */
static void test_sl_heldout_keeps_best(void) {
  learner_train_options o;
  options(&o, "sl", 0, "sl-heldout", 120, 0);
  o.settings.agent.sl_val_fraction = 0.3;
  o.settings.agent.actor_lr = 0.05; /* overfits the few fitted records, so the held-out loss turns */
  static curve c;
  memset(&c, 0, sizeof c);
  TEST_ASSERTF(run(&o, &c) == HSRL_OK, "%s", hsrl_err_message());
  /* the held-out column: nan before update 10, then the loss of the latest multiple of 10 */
  char path[700];
  snprintf(path, sizeof path, "%s/metrics.tsv", o.run_dir);
  FILE *f = fopen(path, "r");
  TEST_ASSERT(f != NULL);
  char line[4096];
  TEST_ASSERT(fgets(line, sizeof line, f) && strstr(line, "\treplay_size\theldout_loss\n"));
  double best = INFINITY, heldout[13];
  int64_t best_at = 0, n = 0;
  while (fgets(line, sizeof line, f)) {
    const char *tab = strrchr(line, '\t');
    TEST_ASSERT(tab != NULL && n < 12);
    heldout[n] = strtod(tab + 1, NULL);
    TEST_ASSERTF(isfinite(heldout[n]) && heldout[n] > 0.0, "row %lld: %s", (long long)n, line);
    if (heldout[n] < best) best = heldout[n], best_at = 10 * (n + 1);
    n++;
  }
  fclose(f);
  TEST_ASSERT(n == 12);
  printf("  held-out BCE every 10 updates: %.4f ... best %.4f at %lld ... last %.4f\n", heldout[0], best,
         (long long)best_at, heldout[11]);
  TEST_ASSERTF(best_at < 120 && heldout[11] > best, "the held-out loss never turned (best at %lld)",
               (long long)best_at);
  /* the checkpoint keeps that update's parameters; its policy acts with them */
  snprintf(path, sizeof path, "%s/ckpt/step-120.h5", o.run_dir);
  learner_world w;
  memset(&w, 0, sizeof w);
  TEST_ASSERTF(learner_train_world_load(&w, &o.settings, "", 8) == HSRL_OK, "%s", hsrl_err_message());
  agent *last = NULL, *pol = NULL;
  TEST_ASSERT(learner_train_make_agent(&last, &o.settings, &w, 16, 0, 1) == HSRL_OK);
  io_h5 *h = NULL;
  TEST_ASSERT(io_h5_open(&h, path) == HSRL_OK && last->vt->load(last, h) == HSRL_OK);
  io_h5_close(h);
  double kept_loss = 0.0;
  TEST_ASSERT(agent_sl_kept_update(last, &kept_loss) == best_at);
  TEST_NEAR(kept_loss, best, 1e-5 * best);
  TEST_ASSERT(learner_train_load_policy(&pol, &o.settings, &w, 16, path) == HSRL_OK);
  const int64_t np = last->vt->n_policy_params(last);
  const float *vl = last->vt->policy_params(last), *vp = pol->vt->policy_params(pol);
  int64_t differ = 0;
  for (int64_t i = 0; i < np; i++) differ += vl[i] != vp[i];
  TEST_ASSERTF(differ > np / 2, "the kept parameters equal the last ones in %lld of %lld", (long long)(np - differ),
               (long long)np);
  /* the kept copy is the parameters of update best_at: an uninterrupted run to it ends there */
  learner_train_options o2;
  options(&o2, "sl", 0, "sl-heldout-short", best_at, 0);
  o2.settings.agent.sl_val_fraction = 0.3;
  o2.settings.agent.actor_lr = 0.05;
  memset(&c, 0, sizeof c);
  TEST_ASSERTF(run(&o2, &c) == HSRL_OK, "%s", hsrl_err_message());
  agent *shorter = NULL;
  snprintf(path, sizeof path, "%s/ckpt/step-%lld.h5", o2.run_dir, (long long)best_at);
  TEST_ASSERT(learner_train_make_agent(&shorter, &o2.settings, &w, 16, 0, 1) == HSRL_OK);
  TEST_ASSERT(io_h5_open(&h, path) == HSRL_OK && shorter->vt->load(shorter, h) == HSRL_OK);
  io_h5_close(h);
  TEST_ASSERT(memcmp(shorter->vt->policy_params(shorter), vp, (size_t)np * sizeof(float)) == 0);
  agent_free(shorter);
  agent_free(pol);
  agent_free(last);
  learner_train_world_free(&w);
}

static void test_resume_exact_sl_replay(void) { resume_case("sl", 1, "sl-replay"); }
static void test_resume_exact_sl_records(void) { resume_case("sl", 0, "sl-records"); }
static void test_resume_exact_hsrl(void) { resume_case("hsrl", 0, "hsrl"); }

/* ---------------------------------------------------------------- allocations */

static void no_alloc_case(const char *agent_name, int replay, const char *dir) {
  learner_train_options o;
  options(&o, agent_name, replay, dir, 1000, 0);
  learner *L = NULL;
  TEST_ASSERTF(learner_train_open(&L, &o) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(learner_train_prefill(L) == HSRL_OK);
  for (int i = 0; i < 3; i++) TEST_ASSERT(learner_train_step(L) == HSRL_OK);
  int64_t before = hsrl_alloc_count();
  for (int i = 0; i < 30; i++) TEST_ASSERT(learner_train_step(L) == HSRL_OK); /* 3 report rows */
  int64_t n = hsrl_alloc_count() - before;
  learner_train_close(L);
  TEST_ASSERTF(n == 0, "%s: %lld allocations in 30 iterations", dir, (long long)n);
}

static void test_steady_state_no_allocation(void) {
  no_alloc_case("sl", 0, "alloc-sl");
  no_alloc_case("sl", 1, "alloc-sl-replay");
  no_alloc_case("hsrl", 0, "alloc-hsrl");
}

/* ---------------------------------------------------------------- refusals and HSRL figures */

static void test_refusals(void) {
  learner_train_options o;
  options(&o, "sl", 0, "refuse", 20, 10);
  static curve c;
  TEST_ASSERT(run(&o, &c) == HSRL_OK);
  hsrl_status st = run(&o, &c); /* again without --resume: the checkpoints would be lost */
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "--resume"), "%s", hsrl_err_message());
  o.resume = 1;
  o.settings.agent.d = 32; /* another network */
  o.settings.train.iterations = 30;
  st = run(&o, &c);
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "config"), "%s", hsrl_err_message());
  options(&o, "hsrl", 0, "refuse", 30, 10);
  o.resume = 1;
  st = run(&o, &c);
  TEST_ASSERTF(st == HSRL_E_USAGE, "%s", hsrl_err_message());
  options(&o, "sl", 1, "refuse", 30, 10); /* SL from its replay instead of the records */
  o.resume = 1;
  st = run(&o, &c);
  TEST_ASSERTF(st == HSRL_E_USAGE && strstr(hsrl_err_message(), "agent.sl_source"), "%s",
               hsrl_err_message());
  options(&o, "sl", 0, "refuse", 30, 10);
  o.resume = 1;
  o.settings.run.blas_threads = 2; /* may change, like the paths: the data file moved */
  {
    char moved[LEARNER_PATH_MAX + 16];
    snprintf(moved, sizeof moved, "%s/moved.data.h5", test_tmpdir());
    TEST_ASSERT(rename(g_data, moved) == 0);
    path_set(o.settings.run.data, moved, NULL);
    st = run(&o, &c); /* extending is allowed */
    TEST_ASSERT(rename(moved, g_data) == 0);
    TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  }
  TEST_ASSERT(c.n == 30);
  {
    const hsrl_config_schema *sc = hsrl_settings_schema();
    TEST_ASSERT(learner_train_resume_may_change(hsrl_config_field_find(sc, "train", "iterations")));
    TEST_ASSERT(learner_train_resume_may_change(hsrl_config_field_find(sc, "run", "sim_train")));
    TEST_ASSERT(!learner_train_resume_may_change(hsrl_config_field_find(sc, "agent", "kind")));
    TEST_ASSERT(!learner_train_resume_may_change(hsrl_config_field_find(sc, "run", "seed")));
  }
  /* a missing input names the file */
  options(&o, "sl", 0, "refuse-missing", 5, 0);
  path_set(o.settings.run.data, test_tmpdir(), "nope.data.h5");
  st = run(&o, &c);
  TEST_ASSERTF(st != HSRL_OK && strstr(hsrl_err_message(), "nope.data.h5"), "%s", hsrl_err_message());
}

/* A diverging run stops at the first non-finite loss without writing a checkpoint for it. */
static void test_nonfinite_loss_stops(void) {
  learner_train_options o;
  options(&o, "sl", 0, "diverge", 50, 1);
  o.settings.agent.actor_lr = 1e30; /* every Adam step moves each weight by about 1e30 */
  static curve c;
  memset(&c, 0, sizeof c);
  hsrl_status st = run(&o, &c);
  TEST_ASSERTF(st == HSRL_E_INTERNAL && strstr(hsrl_err_message(), "non-finite"), "%s",
               hsrl_err_message());
  TEST_ASSERT(c.n >= 1 && c.n < 50 && !isfinite(c.actor[c.n]));
  char path[700];
  int64_t it = -1;
  TEST_ASSERT(learner_train_latest_checkpoint(o.run_dir, path, sizeof path, &it) == HSRL_OK);
  printf("  stopped at iteration %lld, newest checkpoint step-%lld\n", (long long)c.n, (long long)it);
  TEST_ASSERT(it == c.n - 1);
}

static void test_hsrl_run_reports_level_weights(void) {
  learner_train_options o;
  options(&o, "hsrl", 0, "hsrl-run", 60, 0);
  static curve c;
  memset(&c, 0, sizeof c);
  TEST_ASSERTF(run(&o, &c) == HSRL_OK, "%s", hsrl_err_message());
  for (int i = 1; i <= 60; i++) TEST_ASSERT(isfinite(c.actor[i]) && isfinite(c.critic[i]) && c.critic[i] > 0);
  static char rows[1 << 16];
  TEST_ASSERT(metrics_rows(o.run_dir, rows, sizeof rows) == 6);
  TEST_ASSERT(strstr(rows, "grad_norm mlc_w0 mlc_w1 mlc_w2 episodes") != NULL);
  char path[700];
  snprintf(path, sizeof path, "%s/ckpt/step-60.h5", o.run_dir);
  hsrl_settings *s = hsrl_malloc(sizeof *s);
  int64_t it = 0;
  TEST_ASSERT(learner_train_checkpoint_info(path, s, &it) == HSRL_OK);
  TEST_ASSERT(it == 60 && !strcmp(s->agent.kind, "hsrl") && !strcmp(s->run.data, g_data) &&
              !strcmp(s->run.sid, g_sid) && s->agent.d == 16 && s->train.iterations == 60);
  TEST_ASSERT(hsrl_settings_hash(s) == hsrl_settings_hash(&o.settings));
  hsrl_free(s);
}

/* ---------------------------------------------------------------- [agent] keys of HSRL */

/* The largest |change| of the actor's parameters over one iteration after prefill. */
static double actor_step_change(learner_train_options *o) {
  learner *L = NULL;
  if (learner_train_open(&L, o) != HSRL_OK || learner_train_prefill(L) != HSRL_OK) {
    learner_train_close(L);
    return -1.0;
  }
  nn_params *p = agent_hsrl_params(learner_train_agent(L), AGENT_HSRL_ACTOR);
  const int64_t n = nn_params_size(p);
  float *before = hsrl_malloc((size_t)n * sizeof(float));
  memcpy(before, nn_params_values(p), (size_t)n * sizeof(float));
  double worst = -1.0;
  if (learner_train_step(L) == HSRL_OK) {
    worst = 0.0;
    const float *after = nn_params_values(p);
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)after[i] - (double)before[i]));
  }
  hsrl_free(before);
  learner_train_close(L);
  return worst;
}

/* agent.critic_to_actor, agent.explore_temp and agent.grad_clip reach the HSRL agent
 * (agent_hsrl_config_defaults sets them as constants; learner_train_make_agent overrides). */
static void test_hsrl_agent_keys(void) {
  learner_train_options o;
  options(&o, "hsrl", 0, "keys-a", 10, 0);
  o.settings.agent.critic_to_actor = false;
  o.settings.agent.explore_temp = 1e6; /* exploration: every level uniform */
  learner *L = NULL;
  TEST_ASSERTF(learner_train_open(&L, &o) == HSRL_OK, "%s", hsrl_err_message());
  agent *a = learner_train_agent(L);
  TEST_ASSERT(agent_hsrl_loss_config_of(a)->critic_to_actor == 0);
  sim_dataset d;
  TEST_ASSERT(sim_dataset_read(&d, g_data) == HSRL_OK);
  enum { B = 6, K = 4, LV = 2 };
  int32_t users[B], slate[B * K];
  int32_t *hist = hsrl_malloc((size_t)(B * d.history_len) * sizeof(int32_t));
  uint16_t tokens[B * K * LV];
  float logp[B * K * LV];
  for (int b = 0; b < B; b++) {
    users[b] = d.rec_user[b];
    memcpy(hist + b * d.history_len, d.rec_history + b * d.history_len,
           (size_t)d.history_len * sizeof(int32_t));
  }
  hsrl_rng rng;
  hsrl_rng_init(&rng, 5, 0);
  agent_act_out out = {slate, tokens, logp};
  agent_act(a, B, users, hist, AGENT_ACT_EXPLORE, &rng, &out);
  double worst = 0.0; /* the SID file has 4 codes at level 0 and 8 at level 1 */
  for (int i = 0; i < B * K; i++)
    for (int l = 0; l < LV; l++)
      worst = fmax(worst, fabs((double)logp[i * LV + l] + log(l == 0 ? 4.0 : 8.0)));
  printf("  explore_temp 1e6: behaviour log-probs within %.2g of uniform\n", worst);
  TEST_ASSERT(worst < 1e-3);
  learner_train_close(L);
  /* the same state with explore_temp 1: not uniform (the test above is not vacuous) */
  options(&o, "hsrl", 0, "keys-b", 10, 0);
  TEST_ASSERTF(learner_train_open(&L, &o) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(agent_hsrl_loss_config_of(learner_train_agent(L))->critic_to_actor == 1);
  hsrl_rng_init(&rng, 5, 0);
  agent_act(learner_train_agent(L), B, users, hist, AGENT_ACT_EXPLORE, &rng, &out);
  double spread = 0.0;
  for (int i = 0; i < B * K; i++)
    for (int l = 0; l < LV; l++)
      spread = fmax(spread, fabs((double)logp[i * LV + l] + log(l == 0 ? 4.0 : 8.0)));
  TEST_ASSERT(spread > 1e-3);
  learner_train_close(L);
  hsrl_free(hist);
  sim_dataset_free(&d);
  /* grad_clip: a gradient clipped to norm 1e-12 makes Adam's first steps tiny (|g| << eps) */
  options(&o, "hsrl", 0, "keys-c", 1000, 0);
  o.settings.agent.weight_decay = 0.0; /* coupled L2 would bypass the clip */
  double free_step = actor_step_change(&o);
  options(&o, "hsrl", 0, "keys-d", 1000, 0);
  o.settings.agent.weight_decay = 0.0;
  o.settings.agent.grad_clip = 1e-12;
  double clipped_step = actor_step_change(&o);
  printf("  largest actor change in one update: %.3g unclipped, %.3g with grad_clip 1e-12\n",
         free_step, clipped_step);
  TEST_ASSERT(free_step > 0.5 * o.settings.agent.actor_lr);
  TEST_ASSERT(clipped_step >= 0.0 && clipped_step < 1e-2 * free_step);
}

int main(void) {
  if (!world_make()) {
    fprintf(stderr, "cannot make the tiny world: %s\n", hsrl_err_message());
    return 1;
  }
  TEST_RUN(test_golden_curve_sl);
  TEST_RUN(test_resume_exact_sl_replay);
  TEST_RUN(test_resume_exact_sl_records);
  TEST_RUN(test_resume_exact_hsrl);
  TEST_RUN(test_sl_heldout_keeps_best);
  TEST_RUN(test_steady_state_no_allocation);
  TEST_RUN(test_refusals);
  TEST_RUN(test_nonfinite_loss_stops);
  TEST_RUN(test_hsrl_run_reports_level_weights);
  TEST_RUN(test_hsrl_agent_keys);
  return test_summary();
}
