/* sim_synth_cmd.c: `hsrl data synth`: generates the synthetic world and its logged sessions and
 * writes them as a prepared-data file with the ground truth under /world (sim_synth.h;
 * datasets.md "The synthetic world"; docs/synthetic-world.md). `hsrl data` forwards here with
 * argv[0] = "synth". Exit status: 0 ok, 2 usage or input error, 1 internal or I/O failure. */
#include <stdio.h>
#include <string.h>

#include "common/hsrl_log.h"
#include "common/hsrl_status.h"
#include "common/hsrl_timer.h"
#include "sim/sim_data.h"
#include "sim/sim_synth.h"

/* The named options and the [synth] key each one sets; anything else goes through --set. */
static const struct synth_cmd_alias {
  const char *option, *key;
} synth_cmd_aliases[] = {
    {"--items", "items"},           {"--users", "users"},         {"--seed", "seed"},
    {"--topics", "topics"},         {"--subtopics", "subtopics"}, {"--item-features", "item_features"},
    {"--user-features", "user_features"}, {"--sessions", "sessions"}, {"--slate-size", "slate_size"},
    {"--history-len", "history_len"},
};
#define SYNTH_CMD_N_ALIASES ((int)(sizeof synth_cmd_aliases / sizeof synth_cmd_aliases[0]))

static void synth_cmd_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl data synth --out FILE [--items N] [--users U] [--seed S] [--topics T]\n"
          "                       [--subtopics S] [--item-features D] [--user-features P]\n"
          "                       [--sessions L] [--slate-size K] [--history-len H]\n"
          "                       [--set KEY=VALUE ...] [--show-config] [--quiet]\n"
          "\n"
          "Generates the synthetic world (topics and subtopics of items, item qualities, user\n"
          "preferences, the ground-truth click model with satiation, fatigue and a position effect)\n"
          "and logged sessions of a noisy behaviour policy, and writes them as a prepared-data file\n"
          "(the format 'hsrl data prepare' writes) with the ground truth under /world, so that\n"
          "'hsrl eval --world' can use it as an environment. Same seed, same file contents.\n"
          "Time and memory grow linearly with the number of items and of logged slates.\n"
          "\n"
          "options:\n"
          "  --out FILE           the file to write (required; replaced atomically)\n"
          "  --items N            catalog size (default 2000)\n"
          "  --users U            users, each with one logged session (default 2000)\n"
          "  --seed S             seed of everything generated (default 7)\n"
          "  --topics T, --subtopics S   the two-level item mixture (default 8 x 4)\n"
          "  --item-features D    item feature width (default 16)\n"
          "  --user-features P    user feature width, >= T + 7 (default T + 16)\n"
          "  --sessions L         mean logged slates per user (default 20)\n"
          "  --slate-size K, --history-len H   (default 10 and 50)\n"
          "  --set KEY=VALUE      any parameter of the world by its [synth] key (see --show-config)\n"
          "  --show-config        print every parameter with its value and meaning, then exit\n"
          "  --quiet              no progress display\n"
          "  -h, --help           this text\n"
          "\n"
          "docs/synthetic-world.md explains the parameters and why they have their defaults.\n"
          "Exit status: 0 ok, 2 bad usage or parameter, 1 internal or I/O failure.\n");
}

static int synth_cmd_fail(hsrl_status st) {
  fprintf(stderr, "hsrl data synth: %s\n", hsrl_err_message());
  return hsrl_status_exit_code(st);
}

int sim_synth_command(int argc, char **argv) {
  sim_synth_config cfg;
  sim_synth_config_defaults(&cfg);
  const char *out = NULL;
  int show_config = 0, user_features_set = 0;
  hsrl_status st;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      synth_cmd_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--quiet")) {
      hsrl_log_set_level(HSRL_LOG_WARN);
      continue;
    }
    if (!strcmp(a, "--show-config")) {
      show_config = 1;
      continue;
    }
    /* "--name VALUE" or "--name=VALUE" */
    const char *eq = strchr(a, '='), *value = NULL;
    size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
    const char *key = NULL;
    int is_out = 0, is_set = 0;
    if (name_len == 5 && !strncmp(a, "--out", 5)) is_out = 1;
    else if (name_len == 5 && !strncmp(a, "--set", 5)) is_set = 1;
    else
      for (int k = 0; k < SYNTH_CMD_N_ALIASES; k++)
        if (strlen(synth_cmd_aliases[k].option) == name_len && !strncmp(a, synth_cmd_aliases[k].option, name_len))
          key = synth_cmd_aliases[k].key;
    if (!is_out && !is_set && !key) {
      fprintf(stderr, "hsrl data synth: unknown argument '%s'; see 'hsrl data synth --help'\n", a);
      return 2;
    }
    if (eq) value = eq + 1;
    else if (i + 1 < argc) value = argv[++i];
    else {
      fprintf(stderr, "hsrl data synth: %s needs a value; see 'hsrl data synth --help'\n", a);
      return 2;
    }
    if (is_out) {
      out = value;
      continue;
    }
    char set_key[128];
    if (is_set) { /* KEY=VALUE */
      const char *e = strchr(value, '=');
      if (!e || e == value || (size_t)(e - value) >= sizeof set_key) {
        fprintf(stderr, "hsrl data synth: --set expects KEY=VALUE, got '%s'\n", value);
        return 2;
      }
      memcpy(set_key, value, (size_t)(e - value));
      set_key[e - value] = '\0';
      key = set_key;
      value = e + 1;
    }
    if (!strcmp(key, "user_features")) user_features_set = 1;
    if ((st = sim_synth_config_set(&cfg, key, value)) != HSRL_OK) return synth_cmd_fail(st);
  }
  /* The user features hold a topic attribute (T wide): follow T unless P was given. */
  if (!user_features_set) cfg.user_features = cfg.topics + 16;
  if ((st = sim_synth_config_check(&cfg)) != HSRL_OK) return synth_cmd_fail(st);
  if (show_config) {
    sim_synth_config_print(&cfg, stdout);
    return 0;
  }
  if (!out) {
    fprintf(stderr, "hsrl data synth: --out is required; see 'hsrl data synth --help'\n");
    return 2;
  }

  sim_synth_world world;
  sim_dataset data;
  memset(&world, 0, sizeof world);
  memset(&data, 0, sizeof data);
  double t0 = hsrl_time_now();
  st = sim_synth_generate(&world, &data, &cfg);
  double t_gen = hsrl_time_now() - t0;
  if (st == HSRL_OK) st = sim_synth_write(&world, &data, out);
  double t_all = hsrl_time_now() - t0;
  if (st != HSRL_OK) {
    sim_synth_free(&world);
    sim_dataset_free(&data);
    return synth_cmd_fail(st);
  }
  printf("hsrl data synth: seed %lld -> %s\n", (long long)cfg.seed, out);
  printf("  items    %lld (item features %lld; %lld topics x %lld subtopics)\n", (long long)data.n_items,
         (long long)data.item_dim, (long long)cfg.topics, (long long)cfg.subtopics);
  printf("  users    %lld (user features %lld)\n", (long long)data.n_users, (long long)data.user_dim);
  printf("  records  %lld (slate size K %lld, history length H %lld)\n", (long long)data.n_records,
         (long long)data.slate_size, (long long)data.history_len);
  printf("  split    train %lld, test %lld\n", (long long)data.n_train, (long long)data.n_test);
  printf("  positive rate  train %.3f, test %.3f\n", sim_dataset_click_rate(&data, data.train_idx, data.n_train),
         sim_dataset_click_rate(&data, data.test_idx, data.n_test));
  printf("  time     %.3f s (generate %.3f s, write %.3f s)\n", t_all, t_gen, t_all - t_gen);
  sim_synth_free(&world);
  sim_dataset_free(&data);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsrl data synth: cannot write to stdout\n");
    return 1;
  }
  return 0;
}
