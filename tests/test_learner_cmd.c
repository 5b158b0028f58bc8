/* test_learner_cmd.c: `hsrl train` and `hsrl eval CONFIG --checkpoint FILE`
 * (learner/learner_cmd.h), called in-process through their entry points on a tiny synthetic
 * world: a run writes config.ini, metrics.tsv and ckpt/step-<n>.h5; --resume extends it from the
 * stored inputs alone; eval of the checkpoint (SL and HSRL) prints the table and writes
 * <run>/eval.json; eval without --checkpoint is the reference policies' command; bad usage and
 * missing files exit 2. The inputs come from CONFIG (relative to its directory) with the flags as
 * ordered --set overrides, stored absolute in config.ini; eval runs with fewer episodes than
 * env.batch; run.blas_threads reaches OpenBLAS unless OPENBLAS_NUM_THREADS is set. */
#define _XOPEN_SOURCE 700 /* realpath() */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/hsrl_status.h"
#include "common/nn/nn_threads.h"
#include "learner/learner_cmd.h"
#include "tests/fixture_world.h"
#include "tests/test_harness.h"

static char g_data[400], g_sid[400], g_config[400], g_runs[400];

static int world_make(void) {
  const char *t = test_tmpdir();
  snprintf(g_data, sizeof g_data, "%.300s/cmd.data.h5", t);
  snprintf(g_sid, sizeof g_sid, "%.300s/cmd.sid.h5", t);
  snprintf(g_config, sizeof g_config, "%.300s/cmd.ini", t);
  snprintf(g_runs, sizeof g_runs, "%.300s/runs", t);
  fixture_world_spec spec = {.items = 60, .users = 30, .seed = 9, .sid_vocab2 = 4, .sid_dim = 1};
  int ok = fixture_world_write(&spec, g_data, g_sid);
  FILE *cf = fopen(g_config, "w");
  if (!cf) return 0;
  fprintf(cf,
          "[run]\nname = cmdrun\nout_dir = %s\nseed = 4\n"
          "[data]\nslate_size = 4\nhistory_len = 10\n"
          "[agent]\nd = 16\nlayers = 1\nheads = 2\nffn = 32\ncritic_hidden = 32,16\n"
          "[env]\nbatch = 8\n"
          "[train]\niterations = 30\nbatch = 16\nbuffer = 200\nlearning_starts = 32\n"
          "report_every = 10\ncheckpoint_every = 10\n"
          "[eval]\nepisodes = 40\nseeds = 2\n",
          g_runs);
  return fclose(cf) == 0 && ok;
}

/* Runs fn with the NULL-terminated argument list. */
static int call(int (*fn)(int, char **), const char *a0, ...) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = (char *)a0;
  va_list ap;
  va_start(ap, a0);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL && argc < 31;) argv[argc++] = (char *)s;
  va_end(ap);
  argv[argc] = NULL;
  return fn(argc, argv);
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static int file_has(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return strstr(buf, needle) != NULL;
}

static void test_train_resume_eval_sl(void) {
  char run[600], p[700];
  snprintf(run, sizeof run, "%s/cmdrun", g_runs);
  int rc = call(learner_train_command, "train", g_config, "--data", g_data, "--agent", "sl",
                "--item-id-embedding", "--quiet", NULL);
  TEST_ASSERT(rc == 0);
  snprintf(p, sizeof p, "%s/ckpt/step-30.h5", run);
  TEST_ASSERT(file_exists(p));
  snprintf(p, sizeof p, "%s/config.ini", run);
  TEST_ASSERT(file_has(p, "iterations = 30") && file_has(p, "\nkind = sl\n") &&
              file_has(p, "\nitem_id_embedding = true\n") && file_has(p, "\nsl_source = records\n"));
  char line[700];
  snprintf(line, sizeof line, "\ndata = %s\n", g_data); /* the flag, stored as run.data */
  TEST_ASSERT(file_has(p, line));
  snprintf(p, sizeof p, "%s/metrics.tsv", run);
  TEST_ASSERT(file_has(p, "\n30\t"));
  /* the same run again without --resume is refused */
  rc = call(learner_train_command, "train", g_config, "--data", g_data, "--agent", "sl", "--quiet",
            NULL);
  TEST_ASSERT(rc == 2);
  /* extended from the checkpoint alone: no CONFIG, no inputs */
  rc = call(learner_train_command, "train", "--resume", run, "--set", "train.iterations=40",
            "--quiet", NULL);
  TEST_ASSERT(rc == 0);
  snprintf(p, sizeof p, "%s/ckpt/step-40.h5", run);
  TEST_ASSERT(file_exists(p));
  snprintf(p, sizeof p, "%s/metrics.tsv", run);
  TEST_ASSERT(file_has(p, "\n40\t"));
  /* another network on resume is refused */
  rc = call(learner_train_command, "train", "--resume", run, "--set", "agent.d=32", "--set",
            "train.iterations=50", "--quiet", NULL);
  TEST_ASSERT(rc == 2);
  /* eval: the ground truth of the world (the checkpoint names no all-records simulator) */
  snprintf(p, sizeof p, "%s/ckpt/step-40.h5", run);
  rc = call(learner_eval_command, "eval", g_config, "--checkpoint", p, "--episodes", "30",
            "--seeds", "2", NULL);
  TEST_ASSERT(rc == 0);
  snprintf(p, sizeof p, "%s/eval.json", run);
  TEST_ASSERT(file_has(p, "\"policy\": \"sl@40\"") && file_has(p, "\"total_reward_mean\"") &&
              file_has(p, "\"split\": \"test\"") && file_has(p, "\"episodes\": 30"));
}

static void test_train_eval_hsrl(void) {
  char run[600], p[700];
  snprintf(run, sizeof run, "%s/cmdhsrl", g_runs);
  int rc = call(learner_train_command, "train", g_config, "--data", g_data, "--sid", g_sid,
                "--set", "run.name=cmdhsrl", "--set", "train.iterations=20", "--quiet", NULL);
  TEST_ASSERT(rc == 0);
  snprintf(p, sizeof p, "%s/ckpt/step-20.h5", run);
  char json[700];
  snprintf(json, sizeof json, "%s/hsrl-eval.json", test_tmpdir());
  rc = call(learner_eval_command, "eval", "--checkpoint", p, "--world", "--episodes", "20",
            "--seeds", "1", "--json", json, NULL);
  TEST_ASSERT(rc == 0);
  TEST_ASSERT(file_has(json, "\"policy\": \"hsrl@20\"") && file_has(json, "\"agent\": \"hsrl\""));
}

/* The inputs from CONFIG alone, relative to CONFIG's directory; input flags are --set
 * overrides in command-line order; eval with fewer episodes than env.batch rows; run.blas_threads
 * reaches OpenBLAS unless OPENBLAS_NUM_THREADS is set. */
static void test_config_inputs(void) {
  char dir[600], cfg[700], root[PATH_MAX], p[PATH_MAX + 128], missing[700];
  snprintf(dir, sizeof dir, "%s/configs", test_tmpdir());
  snprintf(cfg, sizeof cfg, "%s/rel.ini", dir);
  snprintf(missing, sizeof missing, "%s/none.data.h5", test_tmpdir());
  TEST_ASSERT(mkdir(dir, 0777) == 0 && realpath(test_tmpdir(), root) != NULL);
  FILE *f = fopen(cfg, "w");
  TEST_ASSERT(f != NULL);
  fprintf(f,
          "[run]\nname = relrun\nout_dir = ../runs\nseed = 4\ndata = ../cmd.data.h5\n"
          "sid = ./../cmd.sid.h5\n"
          "[data]\nslate_size = 4\nhistory_len = 10\n"
          "[agent]\nkind = hsrl\nd = 16\nlayers = 1\nheads = 2\nffn = 32\ncritic_hidden = 32,16\n"
          "[env]\nbatch = 8\n"
          "[train]\niterations = 10\nbatch = 16\nbuffer = 200\nlearning_starts = 32\n"
          "report_every = 10\ncheckpoint_every = 10\n");
  TEST_ASSERT(fclose(f) == 0);
  /* a later override wins, whether a flag or a --set */
  char set_data[700];
  snprintf(set_data, sizeof set_data, "run.data=%s", g_data);
  int rc = call(learner_train_command, "train", cfg, "--set", "run.name=order1", "--set", set_data,
                "--data", missing, "--quiet", NULL);
  TEST_ASSERT(rc == 2);
  TEST_ASSERTF(strstr(hsrl_err_message(), "none.data.h5") != NULL, "%s", hsrl_err_message());
  rc = call(learner_train_command, "train", cfg, "--data", missing, "--set", set_data, "--set",
            "run.name=order2", "--quiet", NULL);
  TEST_ASSERT(rc == 0);
  rc = call(learner_train_command, "train", cfg, "--quiet", "--data", NULL);
  TEST_ASSERT(rc == 2); /* --data without a value */
  rc = call(learner_train_command, "train", cfg, "--quiet", NULL);
  TEST_ASSERT(rc == 0);
  snprintf(p, sizeof p, "%s/runs/relrun/config.ini", root);
  char line[PATH_MAX + 160];
  snprintf(line, sizeof line, "\ndata = %s/cmd.data.h5\n", root);
  TEST_ASSERTF(file_has(p, line), "%s lacks %s", p, line);
  snprintf(line, sizeof line, "\nsid = %s/cmd.sid.h5\n", root);
  TEST_ASSERT(file_has(p, line));
  snprintf(line, sizeof line, "\nout_dir = %s/runs\n", root);
  TEST_ASSERT(file_has(p, line) && file_has(p, "\nkind = hsrl\n"));
  /* eval: 3 episodes on 8 rows with the world's click model (rows without a user idle) */
  char ckpt[PATH_MAX + 64], json[700];
  snprintf(ckpt, sizeof ckpt, "%s/runs/relrun/ckpt/step-10.h5", root);
  snprintf(json, sizeof json, "%s/few.json", test_tmpdir());
  rc = call(learner_eval_command, "eval", cfg, "--checkpoint", ckpt, "--world", "--episodes", "3",
            "--seeds", "2", "--json", json, NULL);
  TEST_ASSERT(rc == 0);
  TEST_ASSERT(file_has(json, "\"episodes\": 3") && file_has(json, "\"batch\": 8"));
  /* run.blas_threads reaches OpenBLAS, unless OPENBLAS_NUM_THREADS is set */
  const char *env = getenv("OPENBLAS_NUM_THREADS");
  char saved[64] = "";
  if (env) snprintf(saved, sizeof saved, "%s", env);
  unsetenv("OPENBLAS_NUM_THREADS");
  nn_threads_set(2);
  int threaded = nn_threads_get() == 2;
  nn_threads_set(1);
  if (threaded) {
    rc = call(learner_eval_command, "eval", "--checkpoint", ckpt, "--episodes", "2", "--seeds", "1",
              "--json", json, "--set", "run.blas_threads=2", NULL);
    TEST_ASSERT(rc == 0 && nn_threads_get() == 2);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    nn_threads_set(1);
    rc = call(learner_eval_command, "eval", "--checkpoint", ckpt, "--episodes", "2", "--seeds", "1",
              "--json", json, "--set", "run.blas_threads=2", NULL);
    TEST_ASSERT(rc == 0 && nn_threads_get() == 1);
  } else {
    printf("  OpenBLAS is single-threaded here: run.blas_threads not observable\n");
  }
  if (saved[0])
    setenv("OPENBLAS_NUM_THREADS", saved, 1);
  else
    unsetenv("OPENBLAS_NUM_THREADS");
  nn_threads_set(1);
}

static void test_eval_forwards_without_checkpoint(void) {
  int rc = call(learner_eval_command, "eval", "--data", g_data, "--world", "--policies", "random",
                "--episodes", "40", "--seeds", "1", NULL);
  TEST_ASSERT(rc == 0);
  rc = call(learner_eval_command, "eval", "--data", g_data, NULL); /* no click model */
  TEST_ASSERT(rc == 2);
}

static void test_usage_errors(void) {
  char missing[600];
  snprintf(missing, sizeof missing, "%s/none.h5", test_tmpdir());
  TEST_ASSERT(call(learner_train_command, "train", "--help", NULL) == 0);
  TEST_ASSERT(call(learner_eval_command, "eval", "--checkpoint", "x", "--help", NULL) == 0);
  TEST_ASSERT(call(learner_train_command, "train", NULL) == 2);
  TEST_ASSERT(call(learner_train_command, "train", g_config, NULL) == 2); /* no --data */
  TEST_ASSERT(call(learner_train_command, "train", g_config, "--data", g_data, "--agent", "dqn",
                   "--set", "run.name=bad1", "--quiet", NULL) == 2);
  TEST_ASSERT(call(learner_train_command, "train", g_config, "--data", g_data, "--bogus", NULL) == 2);
  TEST_ASSERT(call(learner_train_command, "train", g_config, "--data", missing, "--set",
                   "run.name=bad2", "--quiet", NULL) == 2);
  TEST_ASSERT(call(learner_train_command, "train", g_config, "--data", g_data, "--set",
                   "agent.nope=1", NULL) == 2);
  TEST_ASSERT(call(learner_train_command, "train", g_config, "--data", g_data, "--agent", "hsrl",
                   "--set", "run.name=bad3", "--quiet", NULL) == 2); /* hsrl without --sid */
  TEST_ASSERT(call(learner_eval_command, "eval", g_config, "--checkpoint", missing, NULL) == 2);
  TEST_ASSERT(call(learner_eval_command, "eval", g_config, "--checkpoint", g_data, NULL) == 2);
  TEST_ASSERT(call(learner_train_command, "train", "--resume", missing, NULL) == 2);
}

int main(void) {
  if (!world_make()) {
    fprintf(stderr, "cannot make the tiny world: %s\n", hsrl_err_message());
    return 1;
  }
  TEST_RUN(test_train_resume_eval_sl);
  TEST_RUN(test_train_eval_hsrl);
  TEST_RUN(test_config_inputs);
  TEST_RUN(test_eval_forwards_without_checkpoint);
  TEST_RUN(test_usage_errors);
  return test_summary();
}
