/* learner_cmd.c: `hsrl train` and `hsrl eval CONFIG --checkpoint FILE` (see learner_cmd.h;
 * method.md sections 8-9). */
#include "learner/learner_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_log.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_threads.h"
#include "learner/learner_train.h"
#include "learner/learner_dist.h"
#include "sim/sim_eval.h"

/* The actor role `hsrl train` runs on actor ranks: actor/ sits above learner/ (architecture.md
 * floors), so hsrl.c hands it in at start (learner_cmd_set_actor_role). */
static learner_dist_actor_fn cmd_actor_role;

void learner_cmd_set_actor_role(learner_dist_actor_fn fn) { cmd_actor_role = fn; }

/* ---------------------------------------------------------------- shared parsing */

/* The input flags and the --set overrides they stand for. */
static const struct {
  const char *flag, *set; /* "--data" -> "run.data=" + value */
  int takes_value;        /* 0: a switch with a fixed assignment */
} cmd_flag_sets[] = {
    {"--data", "run.data=", 1},
    {"--sim-train", "run.sim_train=", 1},
    {"--sim-all", "run.sim_all=", 1},
    {"--sid", "run.sid=", 1},
    {"--agent", "agent.kind=", 1},
    {"--item-id-embedding", "agent.item_id_embedding=true", 0},
    {"--replay", "agent.sl_source=replay", 0},
};
enum { CMD_N_FLAG_SETS = (int)(sizeof cmd_flag_sets / sizeof cmd_flag_sets[0]) };

typedef struct cmd_args {
  const char *config, *resume, *checkpoint, *json;
  int quiet, world, last;
  int given[CMD_N_FLAG_SETS]; /* how often each input flag was given */
  int64_t episodes, seeds, batch, seed;
  double deadline; /* train --deadline (0: not given) */
  const char **sets; /* --set arguments and the flags' assignments, in command-line order */
  int64_t n_sets;
  char **owned; /* the flags' assignment strings (freed by cmd_args_free) */
  int64_t n_owned;
} cmd_args;

static void cmd_args_free(cmd_args *a) {
  for (int64_t i = 0; i < a->n_owned; i++) hsrl_free(a->owned[i]);
  hsrl_free(a->owned);
  hsrl_free(a->sets);
}

static int cmd_int(const char *cmd, const char *opt, const char *text, int64_t lo, int64_t hi,
                   int64_t *out) {
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (!text[0] || *end || v < lo || v > hi) {
    fprintf(stderr, "hsrl %s: %s: '%s' is not an integer in [%lld, %lld]\n", cmd, opt, text,
            (long long)lo, (long long)hi);
    return 0;
  }
  *out = v;
  return 1;
}

/* Returns 1 ok, 0 usage error (printed), -1 --help. a must be zeroed. */
static int cmd_parse(const char *cmd, int argc, char **argv, cmd_args *a) {
  a->episodes = a->seeds = a->batch = a->seed = -1;
  a->sets = hsrl_calloc((size_t)argc + 1, sizeof *a->sets);
  a->owned = hsrl_calloc((size_t)argc + 1, sizeof *a->owned);
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) return -1;
    if (!strcmp(o, "--quiet")) {
      a->quiet = 1;
      continue;
    }
    if (!strcmp(o, "--world")) {
      a->world = 1;
      continue;
    }
    if (!strcmp(o, "--last")) {
      a->last = 1;
      continue;
    }
    if (o[0] != '-') {
      if (a->config) {
        fprintf(stderr, "hsrl %s: more than one CONFIG ('%s', '%s')\n", cmd, a->config, o);
        return 0;
      }
      a->config = o;
      continue;
    }
    int fs = 0;
    while (fs < CMD_N_FLAG_SETS && strcmp(cmd_flag_sets[fs].flag, o)) fs++;
    if (fs < CMD_N_FLAG_SETS) { /* an input flag: the --set it stands for, in its place */
      const char *value = "";
      if (cmd_flag_sets[fs].takes_value) {
        if (!v) {
          fprintf(stderr, "hsrl %s: %s needs a value\n", cmd, o);
          return 0;
        }
        value = v;
        i++;
      }
      size_t n = strlen(cmd_flag_sets[fs].set) + strlen(value) + 1;
      char *text = hsrl_malloc(n);
      snprintf(text, n, "%s%s", cmd_flag_sets[fs].set, value);
      a->owned[a->n_owned++] = text;
      a->sets[a->n_sets++] = text;
      a->given[fs]++;
      continue;
    }
    const char *const takes[] = {"--config", "--resume", "--checkpoint", "--json", "--set",
                                 "--episodes", "--seeds", "--batch", "--seed", "--deadline", NULL};
    int k = 0;
    while (takes[k] && strcmp(takes[k], o)) k++;
    if (!takes[k]) {
      fprintf(stderr, "hsrl %s: unknown argument '%s'; see 'hsrl %s --help'\n", cmd, o, cmd);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "hsrl %s: %s needs a value\n", cmd, o);
      return 0;
    }
    i++;
    if (!strcmp(o, "--config")) {
      if (a->config) {
        fprintf(stderr, "hsrl %s: more than one CONFIG ('%s', '%s')\n", cmd, a->config, v);
        return 0;
      }
      a->config = v;
    } else if (!strcmp(o, "--resume")) a->resume = v;
    else if (!strcmp(o, "--checkpoint")) a->checkpoint = v;
    else if (!strcmp(o, "--json")) a->json = v;
    else if (!strcmp(o, "--set")) a->sets[a->n_sets++] = v;
    else if (!strcmp(o, "--episodes")) {
      if (!cmd_int(cmd, o, v, 1, INT32_MAX, &a->episodes)) return 0;
    } else if (!strcmp(o, "--seeds")) {
      if (!cmd_int(cmd, o, v, 1, SIM_EVAL_MAX_SEEDS, &a->seeds)) return 0;
    } else if (!strcmp(o, "--batch")) {
      if (!cmd_int(cmd, o, v, 1, 1 << 20, &a->batch)) return 0;
    } else if (!strcmp(o, "--seed")) {
      if (!cmd_int(cmd, o, v, 0, INT64_MAX, &a->seed)) return 0;
    } else if (!strcmp(o, "--deadline")) {
      char *end = NULL;
      double d = strtod(v, &end);
      if (!v[0] || *end || !(d > 0.0 && d <= 86400.0)) {
        fprintf(stderr, "hsrl %s: --deadline: '%s' is not a number of seconds in (0, 86400]\n", cmd, v);
        return 0;
      }
      a->deadline = d;
    }
  }
  return 1;
}

/* 1 if any of the input flags named (by their --flag) was given. */
static int cmd_given(const cmd_args *a, const char *flag) {
  for (int i = 0; i < CMD_N_FLAG_SETS; i++)
    if (!strcmp(cmd_flag_sets[i].flag, flag)) return a->given[i] > 0;
  return 0;
}

static int cmd_fail(const char *cmd, hsrl_status st) {
  fprintf(stderr, "hsrl %s: %s\n", cmd, hsrl_err_message());
  return hsrl_status_exit_code(st);
}

/* run.blas_threads, unless OPENBLAS_NUM_THREADS is set (nn_threads.h). */
static void cmd_threads(const char *cmd, const hsrl_settings *s) {
  int n = nn_threads_configure(s->run.blas_threads);
  HSRL_DEBUG("hsrl %s: OpenBLAS runs %d thread(s) (%s)", cmd, n,
             getenv("OPENBLAS_NUM_THREADS") && getenv("OPENBLAS_NUM_THREADS")[0]
                 ? "OPENBLAS_NUM_THREADS"
                 : "run.blas_threads");
}

/* ---------------------------------------------------------------- train */

static void train_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl train CONFIG [--set section.key=value]... [--data F] [--sim-train F]\n"
          "                  [--sim-all F] [--sid F] [--agent hsrl|sl] [--item-id-embedding]\n"
          "                  [--replay] [--quiet] [--deadline S]\n"
          "       hsrl train [CONFIG] --resume RUN_DIR [--set section.key=value]... [--data F] ...\n"
          "\n"
          "Trains an agent (method.md section 8) in runs/<run.name>/ under run.out_dir: metrics.tsv\n"
          "(one row per train.report_every iterations), ckpt/step-<n>.h5 (every\n"
          "train.checkpoint_every iterations and at the end), config.ini. CONFIG names the inputs:\n"
          "[run] data (the prepared-data file), sim_train (the simulator the agent learns in,\n"
          "trained on the train split; empty: the synthetic world's ground truth in the data file),\n"
          "sim_all (recorded for hsrl eval), sid (Semantic IDs, needed by HSRL), and the agent:\n"
          "[agent] kind = hsrl|sl, item_id_embedding and sl_source = records|replay (SL). Users\n"
          "start from the train split. Relative paths in CONFIG are relative to CONFIG's\n"
          "directory; relative paths on the command line to the working directory; the effective\n"
          "config (stored in config.ini and every checkpoint) holds them as absolute paths.\n"
          "OpenBLAS runs run.blas_threads threads unless OPENBLAS_NUM_THREADS is set.\n"
          "\n"
          "options (each input flag is the --set shown, applied in command-line order):\n"
          "  --data F            --set run.data=F\n"
          "  --sim-train F       --set run.sim_train=F\n"
          "  --sim-all F         --set run.sim_all=F\n"
          "  --sid F             --set run.sid=F\n"
          "  --agent A           --set agent.kind=A (hsrl or sl)\n"
          "  --item-id-embedding --set agent.item_id_embedding=true (sl only)\n"
          "  --replay            --set agent.sl_source=replay (sl only: learn from the agent's own\n"
          "                      replayed transitions instead of the logged records)\n"
          "  --resume RUN_DIR    continue from RUN_DIR's newest complete checkpoint with its config\n"
          "                      (CONFIG and --set may change train.iterations, run.blas_threads\n"
          "                      and file paths only); under mpirun: a distributed run's newest\n"
          "                      complete checkpoint with its replay shards' snapshots\n"
          "  --deadline S        under mpirun: seconds a rank waits for a peer before it stops\n"
          "                      with an error naming it (default 60; not part of the config)\n"
          "  --quiet             no progress display\n"
          "  --set s.k=v         override one config field (repeatable)\n"
          "  -h, --help          this text\n"
          "\n"
          "Under mpirun with N >= 2 ranks: rank 0 is the learner, ranks 1..dist.replay_shards the\n"
          "replay shards, the rest actors (docs/cluster.md); alone: every role in this process.\n"
          "\n"
          "SIGTERM or SIGINT (to the process, or to the learner rank under mpirun): the update in\n"
          "progress finishes, a checkpoint of that iteration is written, and hsrl exits with\n"
          "128 + the signal (143 SIGTERM, 130 SIGINT); --resume continues it. A second signal\n"
          "ends it at once.\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or input, 1 internal failure (e.g. a non-finite loss:\n"
          "the newest checkpoint is then the last good one), 143/130 stopped by a signal after\n"
          "writing a checkpoint.\n");
}

int learner_train_command(int argc, char **argv) {
  int rc = 2;
  cmd_args a;
  memset(&a, 0, sizeof a);
  learner_train_options *opt = hsrl_calloc(1, sizeof *opt);
  hsrl_settings *stored = hsrl_calloc(1, sizeof *stored);
  hsrl_settings *s = &opt->settings;
  hsrl_status st = HSRL_OK;
  int p = cmd_parse("train", argc, argv, &a);
  if (p < 0) {
    train_usage(stdout);
    rc = 0;
    goto done;
  }
  if (!p) goto done;
  if (a.checkpoint || a.json || a.world || a.last || a.episodes >= 0 || a.seeds >= 0 || a.batch >= 0 ||
      a.seed >= 0) {
    fprintf(stderr, "hsrl train: --checkpoint, --json, --world, --last, --episodes, --seeds, --batch and "
                    "--seed are options of hsrl eval\n");
    goto done;
  }
  opt->quiet = a.quiet;
  opt->deadline_s = a.deadline;
  if (a.resume) {
    char path[2 * LEARNER_PATH_MAX];
    int64_t it = 0;
    if ((st = learner_train_latest_checkpoint(a.resume, path, sizeof path, &it)) != HSRL_OK ||
        (st = learner_train_checkpoint_info(path, stored, &it)) != HSRL_OK) {
      rc = cmd_fail("train", st);
      goto done;
    }
    /* the checkpoint's config (or CONFIG) + overrides; learner_train_open refuses changes other
     * than learner_train_resume_may_change's */
    if (a.config)
      st = hsrl_settings_load(s, a.config, a.n_sets, a.sets);
    else
      *s = *stored, st = hsrl_settings_apply_sets(s, a.n_sets, a.sets);
    if (st != HSRL_OK) {
      rc = cmd_fail("train", st);
      goto done;
    }
    if (snprintf(opt->run_dir, sizeof opt->run_dir, "%s", a.resume) >= (int)sizeof opt->run_dir) {
      fprintf(stderr, "hsrl train: --resume: path longer than %zu bytes\n", sizeof opt->run_dir - 1);
      goto done;
    }
    opt->resume = 1;
  } else {
    if (!a.config) {
      fprintf(stderr, "hsrl train: CONFIG is required (or --resume RUN_DIR); see 'hsrl train --help'\n");
      goto done;
    }
    if ((st = hsrl_settings_load(s, a.config, a.n_sets, a.sets)) != HSRL_OK) {
      rc = cmd_fail("train", st);
      goto done;
    }
    if (!s->run.data[0]) {
      fprintf(stderr, "hsrl train: %s: field 'run.data': no prepared-data file; set it in the "
                      "config or give --data FILE\n", a.config);
      goto done;
    }
  }
  if (strcmp(s->agent.kind, "sl") && (cmd_given(&a, "--item-id-embedding") || cmd_given(&a, "--replay"))) {
    fprintf(stderr, "hsrl train: --item-id-embedding and --replay are options of the SL agent "
                    "(agent.kind = %s)\n", s->agent.kind);
    goto done;
  }
  cmd_threads("train", s);
  learner_train_stop_on_signals();
  /* under mpirun/srun with >= 2 ranks: the roles by rank (learner_dist.h); alone: one process */
  if (learner_dist_launched_size() >= 2 && !cmd_actor_role)
    st = hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL, "this program has no actor role (learner_cmd_set_actor_role)");
  else if (learner_dist_launched_size() >= 2)
    st = learner_dist_run(opt, COMM_TRANSPORT_MPI, 0, cmd_actor_role);
  else
    st = learner_train_run(opt);
  if (st != HSRL_OK) {
    rc = cmd_fail("train", st);
    goto done;
  }
  /* stopped by a signal after its checkpoint: 128 + signal, as a shell reports a signal */
  rc = learner_train_stopped() ? 128 + learner_train_stopped() : 0;
done:
  cmd_args_free(&a);
  hsrl_free(opt);
  hsrl_free(stored);
  return rc;
}

/* ---------------------------------------------------------------- eval */

static void eval_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl eval [CONFIG] --checkpoint FILE [--episodes E] [--seeds S] [--batch B]\n"
          "                 [--seed N] [--data F] [--sim-all F | --world] [--sid F] [--json OUT]\n"
          "                 [--last] [--set section.key=value]...\n"
          "       (without --checkpoint: the reference policies, see below)\n"
          "\n"
          "Evaluates a trained agent (method.md section 9): greedy slates in the environment of\n"
          "the simulator trained on ALL records, users from the TEST split's histories; each seed\n"
          "runs until every one of E episodes has finished; Total Reward and Depth (mean +- std\n"
          "over episodes), click rate and coverage per seed, mean +- std across seeds.\n"
          "The agent is built from the checkpoint's own config; of [agent], only how slates are\n"
          "decoded may change: --set agent.decoder=... or agent.prefix_cap=... [env], [eval],\n"
          "run.seed and run.blas_threads come from CONFIG + --set (without CONFIG: the checkpoint's\n"
          "config + --set). The files run.data, run.sid and run.sim_all come from there too; an empty one\n"
          "falls back to the checkpoint's; with run.sim_all empty in both (or --world) the click\n"
          "model is the synthetic world's ground truth stored in the data file.\n"
          "\n"
          "options:\n"
          "  --checkpoint F  runs/<name>/ckpt/step-<n>.h5\n"
          "  --episodes E    episodes per seed (default eval.episodes)\n"
          "  --seeds S       seeds (default eval.seeds)\n"
          "  --batch B       simulated users at once (default env.batch)\n"
          "  --seed N        base seed (default run.seed)\n"
          "  --data F        --set run.data=F\n"
          "  --sim-all F     --set run.sim_all=F\n"
          "  --world         the synthetic world's ground truth as the click model\n"
          "  --sid F         --set run.sid=F\n"
          "  --json OUT      where to write the JSON (default: <run dir>/eval.json)\n"
          "  --last          act with the checkpoint's last parameters, not those it kept for\n"
          "                  evaluation (train.val_every's best validation, SL's best held-out loss)\n"
          "  --set s.k=v     override one config field (repeatable)\n"
          "  -h, --help      this text\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or input, 1 internal failure.\n"
          "\n");
}


/* <run dir>/eval.json for .../<run>/ckpt/step-n.h5, else eval.json beside the checkpoint. */
static void eval_default_json(char *out, size_t cap, const char *ckpt) {
  char dir[2 * LEARNER_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", ckpt);
  char *slash = strrchr(dir, '/');
  if (!slash) {
    snprintf(out, cap, "eval.json");
    return;
  }
  *slash = '\0';
  const char *base = strrchr(dir, '/');
  base = base ? base + 1 : dir;
  if (!strcmp(base, "ckpt")) {
    if (base == dir)
      snprintf(dir, sizeof dir, ".");
    else
      dir[base - dir - 1] = '\0';
  }
  if (snprintf(out, cap, "%s/eval.json", dir) >= (int)cap) snprintf(out, cap, "eval.json");
}

/* The checkpoint's config with the eval config's files: each of run.data, run.sid and
 * run.sim_all of s when it is set, else the checkpoint's; world: no simulator. */
static void eval_inputs(hsrl_settings *ev, const hsrl_settings *ck, const hsrl_settings *s, int world) {
  *ev = *ck;
  if (s->run.data[0]) memcpy(ev->run.data, s->run.data, sizeof ev->run.data);
  if (s->run.sid[0]) memcpy(ev->run.sid, s->run.sid, sizeof ev->run.sid);
  if (s->run.sim_all[0]) memcpy(ev->run.sim_all, s->run.sim_all, sizeof ev->run.sim_all);
  if (world) ev->run.sim_all[0] = '\0';
}

/* How the policy turns into slates acts at evaluation time only: --set agent.decoder=... and
 * --set agent.prefix_cap=... apply to the checkpoint's agent (nothing else of [agent] may change). */
static hsrl_status eval_decoding_sets(hsrl_settings *ev, int64_t n_sets, const char *const *sets) {
  static const char *const keys[] = {"agent.decoder=", "agent.prefix_cap="};
  for (int64_t i = 0; i < n_sets; i++)
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
      if (!strncmp(sets[i], keys[k], strlen(keys[k]))) {
        hsrl_status st = hsrl_settings_apply_sets(ev, 1, &sets[i]);
        if (st != HSRL_OK) return st;
      }
  return HSRL_OK;
}

int learner_eval_command(int argc, char **argv) {
  int has_ckpt = 0;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--checkpoint")) has_ckpt = 1;
  if (!has_ckpt) {
    int help = 0;
    for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (help) eval_usage(stdout); /* then the reference policies' usage */
    return sim_eval_command(argc, argv);
  }
  int rc = 2;
  cmd_args a;
  memset(&a, 0, sizeof a);
  hsrl_settings *ck = hsrl_calloc(1, sizeof *ck), *s = hsrl_calloc(1, sizeof *s);
  hsrl_settings *ev = hsrl_calloc(1, sizeof *ev);
  sim_eval_summary *sum = hsrl_calloc(1, sizeof *sum);
  learner_world w;
  memset(&w, 0, sizeof w);
  agent *ag = NULL;
  hsrl_status st = HSRL_OK;
  int64_t it = 0;
  int p = cmd_parse("eval", argc, argv, &a);
  if (p < 0) {
    eval_usage(stdout);
    rc = 0;
    goto done;
  }
  if (!p) goto done;
  if (a.resume || a.deadline > 0 || cmd_given(&a, "--sim-train") || cmd_given(&a, "--agent") ||
      cmd_given(&a, "--item-id-embedding") || cmd_given(&a, "--replay")) {
    fprintf(stderr, "hsrl eval: --resume, --deadline, --sim-train, --agent, --item-id-embedding and "
                    "--replay are options of hsrl train (the agent is the checkpoint's)\n");
    goto done;
  }
  if (a.world && cmd_given(&a, "--sim-all")) {
    fprintf(stderr, "hsrl eval: give at most one click model: --sim-all FILE or --world\n");
    goto done;
  }
  if ((st = learner_train_checkpoint_info(a.checkpoint, ck, &it)) != HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  if (a.config)
    st = hsrl_settings_load(s, a.config, a.n_sets, a.sets);
  else
    *s = *ck, st = hsrl_settings_apply_sets(s, a.n_sets, a.sets);
  if (st != HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  eval_inputs(ev, ck, s, a.world);
  if ((st = eval_decoding_sets(ev, a.n_sets, (const char *const *)a.sets)) != HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  cmd_threads("eval", s);
  int64_t episodes = a.episodes >= 0 ? a.episodes : s->eval.episodes;
  int64_t seeds = a.seeds >= 0 ? a.seeds : s->eval.seeds;
  int64_t batch = a.batch >= 0 ? a.batch : s->env.batch;
  int64_t seed = a.seed >= 0 ? a.seed : s->run.seed;
  if ((st = learner_train_world_load(&w, ev, ev->run.sim_all, batch)) != HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  if (w.data.n_test < 1) {
    fprintf(stderr, "hsrl eval: %s: the test split is empty\n", ev->run.data);
    goto done;
  }
  if ((st = learner_train_load_policy_as(&ag, ev, &w, batch, a.checkpoint,
                                         a.last ? LEARNER_POLICY_LAST : LEARNER_POLICY_KEPT)) != HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  sim_env_config cfg;
  hsrl_settings_env env_s = s->env;
  env_s.batch = batch;
  if ((st = sim_env_config_make(&cfg, &env_s, w.data.slate_size, w.data.history_len, 0, 0)) !=
      HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  char pname[32];
  snprintf(pname, sizeof pname, "%.8s@%lld", ck->agent.kind, (long long)it);
  sim_eval_policy pol = learner_train_greedy_policy(ag, pname); /* env batch = the agent's max_batch */
  if ((st = sim_eval_seeds(sum, &cfg, &w.data, &w.model, &pol, episodes, seeds, (uint64_t)seed)) !=
      HSRL_OK) {
    rc = cmd_fail("eval", st);
    goto done;
  }
  const char *model_name = ev->run.sim_all[0] ? ev->run.sim_all : "world (ground truth)";
  printf("# %s, click model %s, %lld episodes x %lld seeds, B %lld, reward %s%s\n", a.checkpoint,
         model_name, (long long)episodes, (long long)seeds, (long long)batch, s->env.reward,
         s->env.sweet_point ? " + sweet point" : "");
  sim_eval_print_table(stdout, sum, 1);
  {
    char jpath[2 * LEARNER_PATH_MAX], tmp[2 * LEARNER_PATH_MAX + 32];
    if (a.json)
      snprintf(jpath, sizeof jpath, "%s", a.json);
    else
      eval_default_json(jpath, sizeof jpath, a.checkpoint);
    snprintf(tmp, sizeof tmp, "%s.tmp", jpath);
    FILE *jf = fopen(tmp, "w");
    if (!jf) {
      fprintf(stderr, "hsrl eval: cannot write %s\n", tmp);
      rc = 1;
      goto done;
    }
    char about[4096], jc[1100], jd[1100], jm[1100];
    snprintf(about, sizeof about,
             "{\"checkpoint\": \"%s\", \"iteration\": %lld, \"agent\": \"%s\", \"data\": \"%s\", "
             "\"click_model\": \"%s\", \"split\": \"test\", \"episodes\": %lld, \"seeds\": %lld, "
             "\"batch\": %lld, \"base_seed\": %lld, \"reward\": \"%s\", \"sweet_point\": %s, "
             "\"temper\": %g, \"std\": \"sample (n-1)\"}",
             sim_eval_json_str(jc, sizeof jc, a.checkpoint), (long long)it, ck->agent.kind,
             sim_eval_json_str(jd, sizeof jd, ev->run.data), sim_eval_json_str(jm, sizeof jm, model_name),
             (long long)episodes, (long long)seeds, (long long)batch, (long long)seed,
             s->env.reward, s->env.sweet_point ? "true" : "false", s->env.temper);
    sim_eval_write_json(jf, sum, 1, about);
    if (fclose(jf) != 0 || rename(tmp, jpath) != 0) {
      remove(tmp);
      fprintf(stderr, "hsrl eval: cannot write %s\n", jpath);
      rc = 1;
      goto done;
    }
    fprintf(stderr, "hsrl eval: wrote %s\n", jpath);
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsrl eval: cannot write to stdout\n");
    rc = 1;
    goto done;
  }
  rc = 0;
done:
  agent_free(ag);
  learner_train_world_free(&w);
  cmd_args_free(&a);
  hsrl_free(ck), hsrl_free(s), hsrl_free(ev), hsrl_free(sum);
  return rc;
}
