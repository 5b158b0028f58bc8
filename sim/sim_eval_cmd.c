/* sim_eval_cmd.c: `hsrl eval` for the reference policies (method.md section 9; sim_eval.h).
 *
 *   hsrl eval --data F.data.h5 (--sim F.sim-all.h5 | --world) [--policies random,popular,greedy,
 *             oracle] [--episodes E] [--seeds S] [--batch B] [--seed N] [--json OUT]
 *             [--config CONFIG] [--set section.key=value]...
 * The environment's click model is the learned simulator of --sim (inference mode) or, with
 * --world, the synthetic world's ground truth stored in the data file. Environment settings come
 * from the [env] section, defaults of --episodes / --seeds from [eval], --seed from run.seed.
 * Prints the table on stdout; --json writes every number. Exit: 0 ok, 2 usage/input, 1 internal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "sim/sim_click_adapters.h"
#include "sim/sim_data.h"
#include "sim/sim_eval.h"
#include "sim/sim_policy_simple.h"
#include "sim/sim_synth.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"

#define EVAL_CMD_MAX_POLICIES 8

static void eval_cmd_usage(FILE *f) {
  fprintf(
      f,
      "usage: hsrl eval --data F.data.h5 (--sim F.sim-all.h5 | --world)\n"
      "                 [--policies random,popular,greedy,oracle] [--episodes E] [--seeds S]\n"
      "                 [--batch B] [--seed N] [--json OUT] [--config CONFIG]\n"
      "                 [--greedy-sim F.sim-train.h5] [--sid F.sid.h5] [--set section.key=value]...\n"
      "\n"
      "Evaluates reference policies in a simulated environment (method.md section 9): users start\n"
      "from the test split's logged histories; each seed runs until every one of E episodes has\n"
      "finished; Total Reward and Depth (mean +- std over episodes), click rate and catalog\n"
      "coverage per seed; the table shows mean +- std across seeds.\n"
      "\n"
      "options:\n"
      "  --data F        prepared-data file (hsrl data prepare / hsrl data synth)\n"
      "  --sim F         click model: the learned simulator (use the one trained on all records)\n"
      "  --greedy-sim F  greedy ranks by this simulator instead (the one trained on the train split:\n"
      "                  'greedy by the training simulator', named greedy-by-other-sim in the table)\n"
      "  --world         click model: the synthetic world's ground truth stored in --data\n"
      "  --policies L    comma-separated: random, popular (most clicked in the train split),\n"
      "                  greedy (top K of the click model's own probabilities, or of\n"
      "                  --greedy-sim's), oracle (top K of the click model's own: the myopic\n"
      "                  oracle of the world, the one-step oracle of --sim)\n"
      "                  default: random,popular,greedy (+ oracle with --world or --greedy-sim);\n"
      "                  popular, greedy and oracle also as NAME-capC (C >= 1): at most C items\n"
      "                  per level-1 SID token of --sid, best first (HSRL's agent.prefix_cap rule);\n"
      "                  greedy and oracle also as NAME-hpn: one item per level-1 token, the slate\n"
      "                  HSRL's factorised policy p(i|s) = prod_l pi_l[z_l(i)] can express that\n"
      "                  the click model likes best, searched per state (catalogs <= 4096 items;\n"
      "                  slow: about 6 ms per state at 500 items and 16 tokens a level, growing\n"
      "                  with items x tokens^2: a minute per 1000 episodes there, hours at ML-1M's);\n"
      "                  popular-hpn: the same form's slate the click counts like best, searched\n"
      "                  once (it does not depend on the state; the same size limit)\n"
      "  --sid F         Semantic-ID file whose level-1 tokens NAME-capC and NAME-hpn use\n"
      "  --episodes E    episodes per seed (default eval.episodes)\n"
      "  --seeds S       seeds (default eval.seeds)\n"
      "  --batch B       simulated users at once (default env.batch)\n"
      "  --seed N        base seed (default run.seed)\n"
      "  --json OUT      write every number as JSON to OUT\n"
      "  --config C      INI config (its [env], [eval] and [run] sections are used)\n"
      "  --set s.k=v     override one config field (repeatable)\n"
      "  -h, --help      this text\n"
      "\n"
      "Exit status: 0 ok, 2 bad usage or input, 1 internal failure.\n");
}

static int eval_cmd_fail(const char *what, hsrl_status st) {
  fprintf(stderr, "hsrl eval: %s%s%s\n", what ? what : "", what ? ": " : "", hsrl_err_message());
  return hsrl_status_exit_code(st);
}

static void eval_cmd_act(void *ctx, int64_t b, const int32_t *user_ids, const int32_t *histories,
                         const uint8_t *active, int32_t *slates) {
  (void)active;
  sim_policy_simple_act(ctx, b, user_ids, histories, slates);
}

static void eval_cmd_reset(void *ctx, uint64_t seed) { sim_policy_simple_reset(ctx, seed); }

/* Parses a positive integer option value; 0 on error (message printed). */
static int eval_cmd_int(const char *opt, const char *text, int64_t lo, int64_t hi, int64_t *out) {
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (!text[0] || *end || v < lo || v > hi) {
    fprintf(stderr, "hsrl eval: %s: '%s' is not an integer in [%lld, %lld]\n", opt, text,
            (long long)lo, (long long)hi);
    return 0;
  }
  *out = v;
  return 1;
}

int sim_eval_command(int argc, char **argv) {
  int rc = 2, world_mode = 0;
  const char *data_path = NULL, *sim_path = NULL, *json_path = NULL, *config = NULL, *greedy_sim = NULL;
  const char *policies = NULL, *sid_path = NULL;
  int64_t episodes = -1, seeds = -1, batch = -1, seed = -1, n_sets = 0;
  const char **sets = hsrl_calloc((size_t)argc + 1, sizeof *sets);
  hsrl_settings *s = hsrl_calloc(1, sizeof *s);
  sim_dataset data;
  sim_synth_world world;
  memset(&data, 0, sizeof data);
  memset(&world, 0, sizeof world);
  sim_urm *urm = NULL, *greedy_urm = NULL;
  sim_click_adapters_urm *adapter = NULL, *greedy_adapter = NULL;
  sim_policy_simple *pol[EVAL_CMD_MAX_POLICIES] = {0};
  sim_eval_summary *sum = NULL;
  int64_t n_pol = 0;
  char names[EVAL_CMD_MAX_POLICIES][32], base[EVAL_CMD_MAX_POLICIES][8];
  int64_t cap[EVAL_CMD_MAX_POLICIES] = {0}, n_capped = 0;
  sim_sid_file sid;
  memset(&sid, 0, sizeof sid);
  hsrl_status st = HSRL_OK;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      eval_cmd_usage(stdout);
      rc = 0;
      goto done;
    }
    if (!strcmp(a, "--world")) {
      world_mode = 1;
      continue;
    }
    int takes = !strcmp(a, "--data") || !strcmp(a, "--sim") || !strcmp(a, "--policies") ||
                !strcmp(a, "--episodes") || !strcmp(a, "--seeds") || !strcmp(a, "--batch") ||
                !strcmp(a, "--seed") || !strcmp(a, "--json") || !strcmp(a, "--config") ||
                !strcmp(a, "--set") || !strcmp(a, "--greedy-sim") || !strcmp(a, "--sid");
    if (!takes) {
      fprintf(stderr, "hsrl eval: unknown argument '%s'; see 'hsrl eval --help'\n", a);
      goto done;
    }
    if (!v) {
      fprintf(stderr, "hsrl eval: %s needs a value\n", a);
      goto done;
    }
    i++;
    if (!strcmp(a, "--data"))
      data_path = v;
    else if (!strcmp(a, "--sim"))
      sim_path = v;
    else if (!strcmp(a, "--policies"))
      policies = v;
    else if (!strcmp(a, "--json"))
      json_path = v;
    else if (!strcmp(a, "--config"))
      config = v;
    else if (!strcmp(a, "--set"))
      sets[n_sets++] = v;
    else if (!strcmp(a, "--greedy-sim"))
      greedy_sim = v;
    else if (!strcmp(a, "--sid"))
      sid_path = v;
    else if (!strcmp(a, "--episodes")) {
      if (!eval_cmd_int(a, v, 1, INT32_MAX, &episodes)) goto done;
    } else if (!strcmp(a, "--seeds")) {
      if (!eval_cmd_int(a, v, 1, SIM_EVAL_MAX_SEEDS, &seeds)) goto done;
    } else if (!strcmp(a, "--batch")) {
      if (!eval_cmd_int(a, v, 1, 1 << 20, &batch)) goto done;
    } else if (!strcmp(a, "--seed")) {
      if (!eval_cmd_int(a, v, 0, INT64_MAX, &seed)) goto done;
    }
  }
  if (!data_path) {
    fprintf(stderr, "hsrl eval: --data is required; see 'hsrl eval --help'\n");
    goto done;
  }
  if (!!sim_path == world_mode) {
    fprintf(stderr, "hsrl eval: give exactly one click model: --sim FILE or --world\n");
    goto done;
  }
  if (!policies)
    policies = world_mode || greedy_sim ? "random,popular,greedy,oracle" : "random,popular,greedy";
  /* policy names */
  for (const char *p = policies; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == 0 || len >= sizeof names[0]) {
      fprintf(stderr, "hsrl eval: --policies: empty or overlong name in '%s'\n", policies);
      goto done;
    }
    if (n_pol == EVAL_CMD_MAX_POLICIES) {
      fprintf(stderr, "hsrl eval: --policies: at most %d\n", EVAL_CMD_MAX_POLICIES);
      goto done;
    }
    memcpy(names[n_pol], p, len);
    names[n_pol][len] = '\0';
    const char *n = names[n_pol];
    if (!sim_policy_simple_parse_name(n, base[n_pol], sizeof base[0], &cap[n_pol])) {
      fprintf(stderr, "hsrl eval: --policies: unknown policy '%s' (" SIM_POLICY_SIMPLE_NAMES ")\n", n);
      goto done;
    }
    if (cap[n_pol] && !sid_path) {
      fprintf(stderr, "hsrl eval: --policies: '%s' caps the items per level-1 SID token: give --sid F.sid.h5\n", n);
      goto done;
    }
    n_capped += cap[n_pol] != 0;
    n_pol++;
    p = comma ? comma + 1 : p + len;
  }

  if ((st = hsrl_settings_load(s, config, n_sets, sets)) != HSRL_OK) {
    rc = eval_cmd_fail(NULL, st);
    goto done;
  }
  if (episodes < 0) episodes = s->eval.episodes;
  if (seeds < 0) seeds = s->eval.seeds;
  if (batch < 0) batch = s->env.batch;
  if (seed < 0) seed = s->run.seed;
  if (seeds > SIM_EVAL_MAX_SEEDS) {
    fprintf(stderr, "hsrl eval: at most %d seeds\n", SIM_EVAL_MAX_SEEDS);
    goto done;
  }
  if ((st = sim_dataset_read(&data, data_path)) != HSRL_OK) {
    rc = eval_cmd_fail(NULL, st);
    goto done;
  }
  if (data.n_test < 1) {
    fprintf(stderr, "hsrl eval: %s: the test split is empty\n", data_path);
    goto done;
  }
  sim_click_model model;
  if (world_mode) {
    if ((st = sim_synth_load(&world, data_path)) != HSRL_OK) {
      rc = eval_cmd_fail("--world", st);
      goto done;
    }
    if (world.n_items != data.n_items || world.cfg.slate_size != data.slate_size ||
        world.cfg.history_len != data.history_len) {
      fprintf(stderr, "hsrl eval: %s: the world's sizes differ from the data's\n", data_path);
      goto done;
    }
    model = sim_click_adapters_synth(&world);
  } else {
    if ((st = sim_urm_load(&urm, sim_path, &data)) != HSRL_OK) {
      rc = eval_cmd_fail(NULL, st);
      goto done;
    }
    adapter = sim_click_adapters_urm_init(urm, 512);
    model = sim_click_adapters_urm_model(adapter);
  }
  if (n_capped) {
    if ((st = sim_sid_file_read(&sid, sid_path)) != HSRL_OK) {
      rc = eval_cmd_fail("--sid", st);
      goto done;
    }
    if (sid.n_items != data.n_items) {
      fprintf(stderr, "hsrl eval: --sid %s: SIDs of %lld items, but %s has %lld\n", sid_path,
              (long long)sid.n_items, data_path, (long long)data.n_items);
      goto done;
    }
    for (int64_t j = 0; j < n_pol; j++)
      if (cap[j] == SIM_POLICY_SIMPLE_HPN && data.n_items > SIM_POLICY_SIMPLE_BLOCK) {
        fprintf(stderr, "hsrl eval: --policies: '%s' searches the whole catalog: at most %d items, %s has %lld\n",
                names[j], SIM_POLICY_SIMPLE_BLOCK, data_path, (long long)data.n_items);
        goto done;
      }
  }
  sim_click_model greedy_model = model; /* greedy ranks by the environment's model unless --greedy-sim */
  if (greedy_sim) {
    if ((st = sim_urm_load(&greedy_urm, greedy_sim, &data)) != HSRL_OK) {
      rc = eval_cmd_fail("--greedy-sim", st);
      goto done;
    }
    greedy_adapter = sim_click_adapters_urm_init(greedy_urm, 512);
    greedy_model = sim_click_adapters_urm_model(greedy_adapter);
  }
  hsrl_settings_env env_s = s->env;
  env_s.batch = batch;
  sim_env_config cfg;
  if ((st = sim_env_config_make(&cfg, &env_s, data.slate_size, data.history_len, 0, 0)) !=
      HSRL_OK) {
    rc = eval_cmd_fail(NULL, st);
    goto done;
  }
  if (data.n_items < data.slate_size) {
    fprintf(stderr, "hsrl eval: %s: %lld items cannot fill a slate of %lld\n", data_path,
            (long long)data.n_items, (long long)data.slate_size);
    goto done;
  }
  sum = hsrl_calloc((size_t)n_pol, sizeof *sum);
  for (int64_t j = 0; j < n_pol; j++) {
    const char *n = base[j];
    if (!strcmp(n, "random"))
      pol[j] = sim_policy_simple_random(data.n_items, data.slate_size, (uint64_t)seed);
    else if (!strcmp(n, "popular"))
      pol[j] = sim_policy_simple_popular(&data, data.train_idx, data.n_train, data.slate_size);
    else if (!strcmp(n, "greedy"))
      pol[j] = sim_policy_simple_greedy(&greedy_model, batch);
    else if (world_mode)
      pol[j] = sim_policy_simple_oracle(&world, batch);
    else /* the --sim model's own top K */
      pol[j] = sim_policy_simple_greedy(&model, batch);
    if (s->env.exclude_history) sim_policy_simple_exclude_history(pol[j], data.history_len);
    if (cap[j]) sim_policy_simple_cap_sid(pol[j], &sid, cap[j]);
    sim_eval_policy ep;
    memset(&ep, 0, sizeof ep);
    if (!strcmp(n, "greedy") && greedy_sim)
      snprintf(ep.name, sizeof ep.name, "greedy-by-other-sim%s", names[j] + strlen(n));
    else
      snprintf(ep.name, sizeof ep.name, "%.31s", names[j]);
    ep.ctx = pol[j];
    ep.act = eval_cmd_act;
    ep.reset = eval_cmd_reset;
    if ((st = sim_eval_seeds(&sum[j], &cfg, &data, &model, &ep, episodes, seeds, (uint64_t)seed)) !=
        HSRL_OK) {
      rc = eval_cmd_fail(ep.name, st);
      goto done;
    }
  }
  printf("# %s, click model %s, %lld episodes x %lld seeds, B %lld, reward %s%s\n", data_path,
         world_mode ? "world (ground truth)" : sim_path, (long long)episodes, (long long)seeds,
         (long long)batch, s->env.reward, s->env.sweet_point ? " + sweet point" : "");
  sim_eval_print_table(stdout, sum, n_pol);
  if (json_path) {
    FILE *f = fopen(json_path, "w");
    if (!f) {
      fprintf(stderr, "hsrl eval: cannot write %s\n", json_path);
      rc = 1;
      goto done;
    }
    char about[2048], jd[700], jm[700];
    sim_eval_json_str(jd, sizeof jd, data_path);
    sim_eval_json_str(jm, sizeof jm, world_mode ? "world" : sim_path);
    snprintf(about, sizeof about,
             "{\"data\": \"%s\", \"click_model\": \"%s\", \"episodes\": %lld, \"seeds\": %lld, "
             "\"batch\": %lld, \"base_seed\": %lld, \"reward\": \"%s\", \"sweet_point\": %s, "
             "\"temper\": %g, \"std\": \"sample (n-1)\"}",
             jd, jm, (long long)episodes, (long long)seeds, (long long)batch, (long long)seed,
             s->env.reward, s->env.sweet_point ? "true" : "false", s->env.temper);
    sim_eval_write_json(f, sum, n_pol, about);
    if (fclose(f) != 0) {
      fprintf(stderr, "hsrl eval: cannot write %s\n", json_path);
      rc = 1;
      goto done;
    }
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsrl eval: cannot write to stdout\n");
    rc = 1;
    goto done;
  }
  rc = 0;
done:
  for (int64_t j = 0; j < EVAL_CMD_MAX_POLICIES; j++) sim_policy_simple_free(pol[j]);
  hsrl_free(sum);
  sim_click_adapters_urm_free(adapter);
  sim_urm_free(urm);
  sim_click_adapters_urm_free(greedy_adapter);
  sim_urm_free(greedy_urm);
  sim_synth_free(&world);
  sim_sid_file_free(&sid);
  sim_dataset_free(&data);
  hsrl_free(sets);
  hsrl_free(s);
  return rc;
}
