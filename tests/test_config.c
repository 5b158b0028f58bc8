/* test_config.c: the INI config engine (common/hsrl_config) and hsrl's settings table
 * (common/hsrl_settings): defaults, precedence defaults < file < --set (last wins), the exact
 * error messages (unknown section/key with the closest valid name, bad values with file:line and
 * field), `config show` text reading back to the same settings and hash, and a hash that depends
 * on values only (not on comments, whitespace, order or spelling of numbers); relative paths
 * (against the config file's directory, or the working directory for --set and defaults) and the
 * rule that every string fits on a config line. */
#define _XOPEN_SOURCE 700 /* realpath() */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_config.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"
#include "tests/test_harness.h"

#define MAX_FILES 64
static char written[MAX_FILES][512]; /* the paths write_file returns */
static int n_written;

/* Writes text to <tmpdir>/name and returns the path. */
static const char *write_file(const char *name, const char *text) {
  if (n_written == MAX_FILES) return NULL;
  char *p = written[n_written++];
  snprintf(p, 512, "%s/%s", test_tmpdir(), name);
  FILE *f = fopen(p, "wb");
  if (!f) return NULL;
  fputs(text, f);
  fclose(f);
  return p;
}

/* Loads text as a file and returns the status; the message is hsrl_err_message(). */
static hsrl_status load_text(hsrl_settings *s, const char *name, const char *text) {
  const char *path = write_file(name, text);
  if (!path) return HSRL_E_INTERNAL;
  return hsrl_settings_load(s, path, 0, NULL);
}

static int message_has(const char *needle) { return strstr(hsrl_err_message(), needle) != NULL; }

/* ------------------------------------------------------------------------ engine basics */

static void test_edit_distance(void) {
  TEST_ASSERT(hsrl_config_edit_distance("kitten", "sitting") == 3);
  TEST_ASSERT(hsrl_config_edit_distance("", "abc") == 3);
  TEST_ASSERT(hsrl_config_edit_distance("abc", "") == 3);
  TEST_ASSERT(hsrl_config_edit_distance("lr", "lr") == 0);
  TEST_ASSERT(hsrl_config_edit_distance("lrr", "lr") == 1);
  TEST_ASSERT(hsrl_config_edit_distance("flaw", "lawn") == 2);
}

/* The X-macro table: every field is found by name, members do not overlap and lie inside the
 * struct, and every default is what the struct holds after hsrl_settings_defaults. */
static void test_table_layout(void) {
  const hsrl_config_schema *schema = hsrl_settings_schema();
  TEST_ASSERT(schema->n_fields > 60);
  for (int64_t i = 0; i < schema->n_fields; i++) {
    const hsrl_config_field *f = &schema->fields[i];
    TEST_ASSERTF(hsrl_config_field_find(schema, f->section, f->key) == f, "%s.%s", f->section, f->key);
    TEST_ASSERTF(f->offset + f->size <= sizeof(hsrl_settings), "%s.%s", f->section, f->key);
    for (int64_t j = 0; j < i; j++) {
      const hsrl_config_field *g = &schema->fields[j];
      int overlap = f->offset < g->offset + g->size && g->offset < f->offset + f->size;
      TEST_ASSERTF(!overlap, "%s.%s overlaps %s.%s", f->section, f->key, g->section, g->key);
    }
  }
  TEST_ASSERT(hsrl_config_field_find(schema, "sim", "nope") == NULL);
  TEST_ASSERT(hsrl_config_field_find(schema, "nope", "lr") == NULL);
}

static void test_defaults_filled(void) {
  hsrl_settings s;
  memset(&s, 0xAB, sizeof s); /* garbage must not survive */
  hsrl_settings_defaults(&s);
  TEST_ASSERT(!strcmp(s.run.name, "demo"));
  TEST_ASSERT(s.run.seed == 1);
  TEST_ASSERT(!strcmp(s.data.format, "synth"));
  TEST_ASSERT(s.data.input[0] == '\0');
  TEST_ASSERT(s.data.history_len == 50);
  TEST_ASSERT(s.sim.f == 16 && s.sim.hidden == 256 && s.sim.heads == 2 && s.sim.batch == 128);
  TEST_NEAR(s.sim.dropout, 0.2, 0);
  TEST_NEAR(s.sim.lr, 1e-3, 0);
  TEST_NEAR(s.sim.l2, 3e-4, 0);
  TEST_ASSERT(s.sim.item_id_embedding == true);
  TEST_ASSERT(s.sid.levels == 3 && !strcmp(s.sid.vectors, "sim") && s.sid.balanced == false);
  TEST_ASSERT(s.env.batch == 32 && !strcmp(s.env.reward, "mean_with_cost") && !s.env.sweet_point);
  TEST_NEAR(s.env.temper, 20.0, 0);
  TEST_NEAR(s.env.sweet_value, 0.9, 0);
  TEST_ASSERT(s.agent.d == 32 && s.agent.layers == 2 && s.agent.heads == 4 && s.agent.ffn == 128);
  TEST_ASSERT(!strcmp(s.agent.critic_hidden, "256,64"));
  TEST_NEAR(s.agent.gamma, 0.9, 0);
  TEST_NEAR(s.agent.target_tau, 0.01, 0);
  TEST_NEAR(s.agent.entropy_weight, 0.1, 0);
  TEST_NEAR(s.agent.weight_decay, 1e-5, 0);
  TEST_ASSERT(s.agent.hierarchy && s.agent.mlc && s.agent.entropy && s.agent.bc);
  TEST_ASSERT(s.train.iterations == 50000 && s.train.batch == 64 && s.train.buffer == 100000);
  TEST_ASSERT(s.train.learning_starts == 2000);
  TEST_ASSERT(s.dist.replay_shards == 0 && !s.dist.sync);
  TEST_ASSERT(s.eval.episodes == 1000 && s.eval.seeds == 3);
  /* the inputs and the agent's kind */
  TEST_ASSERT(!strcmp(s.run.out_dir, "runs") && s.run.blas_threads == 1);
  TEST_ASSERT(!s.run.data[0] && !s.run.sim_train[0] && !s.run.sim_all[0] && !s.run.sid[0]);
  TEST_ASSERT(!strcmp(s.agent.kind, "hsrl") && !s.agent.item_id_embedding &&
              !strcmp(s.agent.sl_source, "records"));
  TEST_ASSERT(s.agent.explore_temp == 1.0 && s.agent.critic_to_actor && s.agent.grad_clip == 0.0);
  TEST_ASSERT(hsrl_settings_validate(&s, NULL) == HSRL_OK);
  /* loading with no file and no --set is the defaults, with the relative default path made
   * absolute against the working directory */
  hsrl_settings t;
  TEST_ASSERT(hsrl_settings_load(&t, NULL, 0, NULL) == HSRL_OK);
  char expect[PATH_MAX + 8];
  TEST_ASSERT(getcwd(expect, PATH_MAX) != NULL);
  strcat(expect, "/runs");
  TEST_ASSERTF(!strcmp(t.run.out_dir, expect), "%s vs %s", t.run.out_dir, expect);
  memcpy(t.run.out_dir, s.run.out_dir, sizeof t.run.out_dir);
  TEST_ASSERT(!memcmp(&s, &t, sizeof s));
}

/* ------------------------------------------------------------------------ precedence */

static void test_file_overrides_defaults(void) {
  hsrl_settings s;
  hsrl_status st = load_text(&s, "file.ini",
                             "; a comment\n"
                             "# another\n"
                             "[sim]\n"
                             "lr = 0.01\n"
                             "   batch = 256   \n" /* indented: a key, not a continuation line */
                             "item_id_embedding = no\n"
                             "[data]\n"
                             "format = ml1m ; inline comment\n"
                             "input = /data/ml-1m # another inline comment\n"
                             "[sim]\n"
                             "heads = 4\n"
                             "heads = 8\n"); /* a repeated key: the later one wins */
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_NEAR(s.sim.lr, 0.01, 0);
  TEST_ASSERT(s.sim.batch == 256);
  TEST_ASSERT(s.sim.item_id_embedding == false);
  TEST_ASSERT(!strcmp(s.data.format, "ml1m"));
  TEST_ASSERT(!strcmp(s.data.input, "/data/ml-1m"));
  TEST_ASSERT(s.sim.heads == 8);
  /* untouched fields keep their defaults */
  TEST_ASSERT(s.sim.f == 16 && s.agent.d == 32);
  TEST_NEAR(s.sim.l2, 3e-4, 0);
}

static void test_set_overrides_file_last_wins(void) {
  const char *path = write_file("prec.ini", "[sim]\nlr = 0.01\nbatch = 256\n[run]\nname = fromfile\n");
  TEST_ASSERT(path);
  const char *sets[] = {"sim.lr=0.02", " sim.lr = 0.03 ", "run.name=fromset", "agent.mlc=off"};
  hsrl_settings s;
  hsrl_status st = hsrl_settings_load(&s, path, 4, sets);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_NEAR(s.sim.lr, 0.03, 0);
  TEST_ASSERT(s.sim.batch == 256); /* from the file, not overridden */
  TEST_ASSERT(!strcmp(s.run.name, "fromset"));
  TEST_ASSERT(s.agent.mlc == false);
  /* a shorter string over a longer one leaves no stale bytes: equal configs are equal bytes */
  hsrl_settings a, b;
  const char *long_then_short[] = {"run.name=a-long-name", "run.name=ab"};
  const char *just_short[] = {"run.name=ab"};
  TEST_ASSERT(hsrl_settings_load(&a, NULL, 2, long_then_short) == HSRL_OK);
  TEST_ASSERT(hsrl_settings_load(&b, NULL, 1, just_short) == HSRL_OK);
  TEST_ASSERT(!memcmp(&a, &b, sizeof a));
}

/* ------------------------------------------------------------------------ error messages */

static void test_unknown_key_names_closest(void) {
  hsrl_settings s;
  hsrl_status st = load_text(&s, "key.ini", "[sim]\nlr = 0.01\nlrr = 3\n");
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERT(hsrl_status_exit_code(st) == 2);
  TEST_ASSERTF(message_has("key.ini:3: field 'sim.lrr': unknown key 'lrr' in [sim]; did you mean 'sim.lr'?"),
               "%s", hsrl_err_message());
  /* a key of another section is found there */
  st = load_text(&s, "key2.ini", "[train]\n\ngamma = 0.5\n");
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("key2.ini:3: field 'train.gamma': unknown key 'gamma' in [train]; did you mean 'agent.gamma'?"),
               "%s", hsrl_err_message());
  /* a tie between a same-section typo and an exact key elsewhere goes to the same section */
  st = load_text(&s, "key4.ini", "[run]\nseeds = 2\n");
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("key4.ini:2: field 'run.seeds': unknown key 'seeds' in [run]; did you mean 'run.seed'?"),
               "%s", hsrl_err_message());
  /* a key before any section */
  st = load_text(&s, "key3.ini", "seed = 3\n");
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("key3.ini:1: field 'seed': key 'seed' is outside any [section]; did you mean 'run.seed'?"),
               "%s", hsrl_err_message());
  /* the same through --set */
  const char *sets[] = {"sim.lr=3", "sim.lrr=3"};
  st = hsrl_settings_load(&s, NULL, 2, sets);
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(!strcmp(hsrl_err_message(),
                       "--set sim.lrr=3: field 'sim.lrr': unknown key 'lrr' in [sim]; did you mean 'sim.lr'?"),
               "%s", hsrl_err_message());
}

static void test_unknown_section(void) {
  hsrl_settings s;
  hsrl_status st = load_text(&s, "sec.ini", "[run]\nseed = 2\n\n[simm]\nlr = 3\n");
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("sec.ini:4: unknown section [simm]; did you mean [sim]?"), "%s", hsrl_err_message());
  /* an unknown section that is empty is still an error (caught on its header line) */
  st = load_text(&s, "sec2.ini", "[agnet]\n");
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("sec2.ini:1: unknown section [agnet]; did you mean [agent]?"), "%s", hsrl_err_message());
  const char *sets[] = {"evl.seeds=2"};
  st = hsrl_settings_load(&s, NULL, 1, sets);
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("--set evl.seeds=2: unknown section [evl]; did you mean [eval]?"), "%s", hsrl_err_message());
}

typedef struct bad_value_case {
  const char *text;   /* file contents */
  const char *expect; /* substring of the message after "FILE:" */
} bad_value_case;

static void test_bad_values(void) {
  static const bad_value_case cases[] = {
      {"[train]\nbatch = abc\n", "2: field 'train.batch': expected an integer in [1,inf), got 'abc'"},
      {"[train]\nbatch = 12x\n", "2: field 'train.batch': expected an integer in [1,inf), got '12x'"},
      {"[train]\nbatch = 1.5\n", "2: field 'train.batch': expected an integer in [1,inf), got '1.5'"},
      {"[train]\nbatch = 0\n", "2: field 'train.batch': expected an integer in [1,inf), got '0'"},
      {"[train]\nbatch = 99999999999999999999\n", "2: field 'train.batch': expected an integer in [1,inf), got '99999999999999999999'"},
      {"[train]\nbatch =\n", "2: field 'train.batch': expected an integer in [1,inf), got ''"},
      {"[sim]\n\nlr = fast\n", "3: field 'sim.lr': expected a number in (0,inf), got 'fast'"},
      {"[sim]\nlr = 0\n", "2: field 'sim.lr': expected a number in (0,inf), got '0'"},
      {"[sim]\nlr = nan\n", "2: field 'sim.lr': expected a number in (0,inf), got 'nan'"},
      {"[sim]\ndropout = 1\n", "2: field 'sim.dropout': expected a number in [0,1), got '1'"},
      {"[env]\nsweet_value = inf\n", "2: field 'env.sweet_value': expected a finite number, got 'inf'"},
      {"[sim]\nitem_id_embedding = maybe\n", "2: field 'sim.item_id_embedding': expected true or false, got 'maybe'"},
      {"[data]\nformat = ml2m\n", "2: field 'data.format': expected one of synth|ml1m|ml100k|rl4rs, got 'ml2m'"},
      {"[data]\nformat = ML1M\n", "2: field 'data.format': expected one of synth|ml1m|ml100k|rl4rs, got 'ML1M'"},
      {"[run]\nthis line has no equals sign\n", "2: expected '[section]', 'key = value' or a comment, got 'this line has no equals sign'"},
      {"[run\nseed = 1\n", "1: expected '[section]', 'key = value' or a comment, got '[run'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hsrl_settings s;
    char name[32], expect[512];
    snprintf(name, sizeof name, "bad%zu.ini", i);
    hsrl_status st = load_text(&s, name, cases[i].text);
    TEST_ASSERTF(st == HSRL_E_USAGE, "case %zu: status %d", i, (int)st);
    snprintf(expect, sizeof expect, "%s:%s", name, cases[i].expect);
    TEST_ASSERTF(message_has(expect), "case %zu: expected \"%s\", got \"%s\"", i, expect, hsrl_err_message());
  }
  /* bool spellings */
  hsrl_settings s;
  TEST_ASSERT(load_text(&s, "bools.ini", "[dist]\nsync = YES\n[sid]\nbalanced = On\n[agent]\nbc = 0\n") == HSRL_OK);
  TEST_ASSERT(s.dist.sync && s.sid.balanced && !s.agent.bc);
}

static void test_other_errors(void) {
  hsrl_settings s;
  char path[600];
  /* missing file */
  snprintf(path, sizeof path, "%s/does-not-exist.ini", test_tmpdir());
  hsrl_status st = hsrl_settings_load(&s, path, 0, NULL);
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("does-not-exist.ini: cannot open the config file"), "%s", hsrl_err_message());
  /* a line longer than inih's buffer is an error, not two half lines */
  char text[400];
  memset(text, 'x', sizeof text);
  memcpy(text, "[run]\nname = ", 13);
  text[sizeof text - 2] = '\n';
  text[sizeof text - 1] = '\0';
  st = load_text(&s, "long.ini", text);
  TEST_ASSERT(st == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("long.ini:2: line is longer than"), "%s", hsrl_err_message());
  /* malformed --set, a string over its capacity, comment markers */
  const char *no_eq[] = {"sim.lr"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, no_eq) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("--set sim.lr: expected section.key=value"), "%s", hsrl_err_message());
  const char *no_dot[] = {"lr=3"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, no_dot) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("--set lr=3: expected section.key=value"), "%s", hsrl_err_message());
  char big[HSRL_SETTINGS_STR_MAX + 32];
  snprintf(big, sizeof big, "run.name=");
  memset(big + 9, 'd', HSRL_SETTINGS_STR_MAX);
  big[9 + HSRL_SETTINGS_STR_MAX] = '\0';
  const char *too_long[] = {big};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, too_long) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'run.name': expected at most 255 bytes (this value has 256)"), "%s",
               hsrl_err_message());
  const char *marker[] = {"run.name=a #b"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, marker) == HSRL_E_USAGE);
  /* the engine takes the longest string that fits its capacity ... */
  big[9 + HSRL_SETTINGS_STR_MAX - 1] = '\0';
  hsrl_settings_defaults(&s);
  TEST_ASSERTF(hsrl_config_set(hsrl_settings_schema(), &s, big) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(strlen(s.run.name) == HSRL_SETTINGS_STR_MAX - 1);
  /* ... but an effective config must fit on config lines, to read back from a checkpoint */
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, too_long) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'run.name': the line 'name = <255 bytes>' would be longer than the 197 "
                           "characters"),
               "%s", hsrl_err_message());
  big[9 + HSRL_CONFIG_LINE_MAX - 7] = '\0'; /* "name = " + 190 bytes: exactly a full line */
  TEST_ASSERTF(hsrl_settings_load(&s, NULL, 1, too_long) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(strlen(s.run.name) == HSRL_CONFIG_LINE_MAX - 7);
  {
    char *shown = hsrl_malloc(1 << 16);
    hsrl_settings back;
    hsrl_settings_write(&s, HSRL_CONFIG_WRITE_HELP, shown, 1 << 16);
    TEST_ASSERTF(hsrl_settings_load_string(&back, shown, "full-line") == HSRL_OK, "%s", hsrl_err_message());
    TEST_ASSERT(!strcmp(back.run.name, s.run.name));
    hsrl_free(shown);
  }
  /* the new [agent] keys' values */
  const char *kind[] = {"agent.kind=dqn"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, kind) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'agent.kind': expected one of hsrl|sl, got 'dqn'"), "%s", hsrl_err_message());
  const char *source[] = {"agent.sl_source=ring"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, source) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'agent.sl_source': expected one of records|replay"), "%s", hsrl_err_message());
  const char *temp[] = {"agent.explore_temp=0"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, temp) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'agent.explore_temp': expected a number in (0,inf)"), "%s", hsrl_err_message());
  const char *clip[] = {"agent.grad_clip=-1"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, clip) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'agent.grad_clip': expected a number in [0,inf)"), "%s", hsrl_err_message());
  const char *threads[] = {"run.blas_threads=0"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, threads) == HSRL_E_USAGE);
  /* cross-field rules */
  const char *heads[] = {"agent.heads=5"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, heads) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'agent.heads': 5 does not divide agent.d = 32"), "%s", hsrl_err_message());
  const char *critic[] = {"agent.critic_hidden=256,,64"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, critic) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'agent.critic_hidden'"), "%s", hsrl_err_message());
  const char *no_input[] = {"data.format=rl4rs"};
  TEST_ASSERT(hsrl_settings_load(&s, NULL, 1, no_input) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("field 'data.input': required when data.format = rl4rs"), "%s", hsrl_err_message());
  /* the earliest error wins: a syntax error on line 2 before an unknown key on line 3 */
  TEST_ASSERT(load_text(&s, "order.ini", "[sim]\njunk\nlrr = 1\n") == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("order.ini:2: expected"), "%s", hsrl_err_message());
  TEST_ASSERT(load_text(&s, "order2.ini", "[sim]\nlrr = 1\njunk\n") == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("order2.ini:2: field 'sim.lrr'"), "%s", hsrl_err_message());
}

static void test_int_list(void) {
  int64_t w[8];
  TEST_ASSERT(hsrl_settings_parse_int_list("256,64", w, 8) == 2 && w[0] == 256 && w[1] == 64);
  TEST_ASSERT(hsrl_settings_parse_int_list(" 7 , 5 ,3", w, 8) == 3 && w[2] == 3);
  TEST_ASSERT(hsrl_settings_parse_int_list("", w, 8) == -1);
  TEST_ASSERT(hsrl_settings_parse_int_list("1,", w, 8) == -1);
  TEST_ASSERT(hsrl_settings_parse_int_list("0", w, 8) == -1);
  TEST_ASSERT(hsrl_settings_parse_int_list("1,2,3", w, 2) == -1);
  TEST_ASSERT(hsrl_settings_parse_int_list("4x", w, 8) == -1);
}

/* ------------------------------------------------------------------------ paths */

/* Relative PATH values: in a file against the file's directory (canonical: through a symlinked
 * directory, ".." is the real parent), from --set and defaults against the working directory;
 * absolute and empty values as they are; the effective config reads back the same from anywhere;
 * config text (a checkpoint's) is not resolved. */
static void test_paths(void) {
  char root[PATH_MAX], cwd[PATH_MAX], dir[512], sub[600], path[700];
  char expect[PATH_MAX + 128];
  TEST_ASSERT(realpath(test_tmpdir(), root) != NULL && getcwd(cwd, sizeof cwd) != NULL);
  snprintf(dir, sizeof dir, "%s/cfgdir", test_tmpdir());
  snprintf(sub, sizeof sub, "%s/sub", dir);
  TEST_ASSERT(mkdir(dir, 0777) == 0 && mkdir(sub, 0777) == 0);
  snprintf(path, sizeof path, "%s/p.ini", sub);
  FILE *f = fopen(path, "w");
  TEST_ASSERT(f != NULL);
  fputs("[run]\ndata = ../d.data.h5\nsid = ./s.sid.h5\nsim_all = /abs/x.sim.h5\nsim_train =\n"
        "out_dir = out\n[data]\nformat = ml1m\ninput = ../../ml-1m\n", f);
  TEST_ASSERT(fclose(f) == 0);
  const char *sets[] = {"run.sim_train=rel/t.sim.h5", "run.sid = ../up.sid.h5"};
  hsrl_settings s;
  hsrl_status st = hsrl_settings_load(&s, path, 1, sets);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  snprintf(expect, sizeof expect, "%s/cfgdir/d.data.h5", root);
  TEST_ASSERTF(!strcmp(s.run.data, expect), "%s", s.run.data);
  snprintf(expect, sizeof expect, "%s/cfgdir/sub/s.sid.h5", root);
  TEST_ASSERTF(!strcmp(s.run.sid, expect), "%s", s.run.sid);
  TEST_ASSERT(!strcmp(s.run.sim_all, "/abs/x.sim.h5"));
  snprintf(expect, sizeof expect, "%s/cfgdir/sub/out", root);
  TEST_ASSERTF(!strcmp(s.run.out_dir, expect), "%s", s.run.out_dir);
  snprintf(expect, sizeof expect, "%s/ml-1m", root);
  TEST_ASSERTF(!strcmp(s.data.input, expect), "%s", s.data.input);
  snprintf(expect, sizeof expect, "%s/rel/t.sim.h5", cwd); /* --set: the working directory */
  TEST_ASSERTF(!strcmp(s.run.sim_train, expect), "%s", s.run.sim_train);
  TEST_ASSERT(!strcmp(s.run.name, "demo")); /* a STRING that is not a path: as written */
  /* a later --set wins over the file, against the working directory with ".." folded */
  hsrl_settings t;
  TEST_ASSERT(hsrl_settings_load(&t, path, 2, sets) == HSRL_OK);
  snprintf(expect, sizeof expect, "%s", cwd);
  *strrchr(expect, '/') = '\0';
  strcat(expect, "/up.sid.h5");
  TEST_ASSERTF(!strcmp(t.run.sid, expect), "%s vs %s", t.run.sid, expect);
  /* the same file through a relative path from another working directory */
  TEST_ASSERT(chdir(test_tmpdir()) == 0);
  st = hsrl_settings_load(&t, "cfgdir/sub/p.ini", 1, sets);
  TEST_ASSERT(chdir(cwd) == 0);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(!strcmp(t.run.data, s.run.data) && !strcmp(t.run.out_dir, s.run.out_dir));
  snprintf(expect, sizeof expect, "%s/rel/t.sim.h5", root); /* --set: that directory */
  TEST_ASSERTF(!strcmp(t.run.sim_train, expect), "%s", t.run.sim_train);
  /* through a symlinked directory: ".." is the real parent of the real directory */
  char link[600], via[700];
  snprintf(link, sizeof link, "%s/link", test_tmpdir());
  TEST_ASSERT(symlink(sub, link) == 0);
  snprintf(via, sizeof via, "%s/p.ini", link);
  TEST_ASSERTF(hsrl_settings_load(&t, via, 0, NULL) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERTF(!strcmp(t.run.data, s.run.data) && !strcmp(t.run.sid, s.run.sid), "%s %s", t.run.data,
               t.run.sid);
  remove(link);
  /* the shown effective config, saved elsewhere, reads back to the same values and hash */
  char *text = hsrl_malloc(1 << 16);
  TEST_ASSERT(hsrl_settings_write(&s, HSRL_CONFIG_WRITE_HELP, text, 1 << 16) < (1 << 16));
  const char *shown = write_file("shown-paths.ini", text);
  TEST_ASSERT(shown && hsrl_settings_load(&t, shown, 0, NULL) == HSRL_OK);
  TEST_ASSERT(!memcmp(&s, &t, sizeof s) && hsrl_settings_hash(&s) == hsrl_settings_hash(&t));
  /* config text is taken as it is */
  TEST_ASSERT(hsrl_settings_load_string(&t, "[run]\ndata = rel.h5\n", "text") == HSRL_OK);
  TEST_ASSERT(!strcmp(t.run.data, "rel.h5"));
  /* ... and overrides on top of it resolve like hsrl_settings_load's */
  const char *one[] = {"run.sid=x.sid.h5"};
  TEST_ASSERT(hsrl_settings_apply_sets(&t, 1, one) == HSRL_OK);
  snprintf(expect, sizeof expect, "%s/x.sid.h5", cwd);
  TEST_ASSERT(!strcmp(t.run.sid, expect));
  snprintf(expect, sizeof expect, "%s/rel.h5", cwd);
  TEST_ASSERTF(!strcmp(t.run.data, expect), "%s", t.run.data);
  const char *bad[] = {"run.nope=1"};
  TEST_ASSERT(hsrl_settings_apply_sets(&t, 1, bad) == HSRL_E_USAGE);
  /* a file with an error leaves no internal marker behind in a path */
  const char *broken = write_file("broken-paths.ini", "[run]\ndata = x.h5\nbogus = 1\n");
  TEST_ASSERT(broken && hsrl_settings_load(&t, broken, 0, NULL) == HSRL_E_USAGE);
  const hsrl_config_schema *schema = hsrl_settings_schema();
  int n_paths = 0;
  for (int64_t i = 0; i < schema->n_fields; i++) {
    if (!hsrl_settings_field_is_path(&schema->fields[i])) continue;
    n_paths++;
    const char *v = (const char *)&t + schema->fields[i].offset;
    TEST_ASSERTF(strchr(v, '\x01') == NULL, "%s.%s", schema->fields[i].section, schema->fields[i].key);
  }
  TEST_ASSERT(n_paths == 6); /* out_dir, data, sim_train, sim_all, sid, data.input */
  TEST_ASSERT(!hsrl_settings_field_is_path(hsrl_config_field_find(schema, "run", "name")));
  TEST_ASSERT(hsrl_settings_field_is_path(hsrl_config_field_find(schema, "run", "sid")));
  /* a relative value too long once resolved names the file and field */
  char longtext[300];
  snprintf(longtext, sizeof longtext, "[run]\ndata = ");
  size_t o = strlen(longtext);
  memset(longtext + o, 'x', 185);
  snprintf(longtext + o + 185, sizeof longtext - o - 185, "\n");
  char deep[600];
  snprintf(deep, sizeof deep, "%s/%0100d", test_tmpdir(), 0); /* a 100-character directory name */
  TEST_ASSERT(mkdir(deep, 0777) == 0);
  char deep_file[700];
  snprintf(deep_file, sizeof deep_file, "%s/long.ini", deep);
  f = fopen(deep_file, "w");
  TEST_ASSERT(f != NULL);
  fputs(longtext, f);
  fclose(f);
  TEST_ASSERT(hsrl_settings_load(&t, deep_file, 0, NULL) == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("long.ini: field 'run.data': 'xxx") && message_has("is longer than 255 bytes"),
               "%s", hsrl_err_message());
  remove(deep_file);
  rmdir(deep);
  hsrl_free(text);
  remove(path);
  rmdir(sub);
  rmdir(dir);
}

/* ------------------------------------------------------------------------ show and hash */

static char *settings_text(const hsrl_settings *s, int flags) {
  size_t n = hsrl_settings_write(s, flags, NULL, 0);
  char *text = hsrl_malloc(n + 1);
  size_t m = hsrl_settings_write(s, flags, text, n + 1);
  return m == n && strlen(text) == n ? text : NULL;
}

static void test_show_reads_back(void) {
  const char *sets[] = {"sim.lr=0.0123456789", "run.name=round trip", "agent.bc=false",
                        "data.format=ml100k", "data.input=/x/ml-100k", "env.temper=17.25",
                        "synth.items=123456789012", "agent.epsilon=0.1", "env.sweet_value=1e22"};
  hsrl_settings s, back, back_plain;
  TEST_ASSERTF(hsrl_settings_load(&s, NULL, 9, sets) == HSRL_OK, "%s", hsrl_err_message());
  char *with_help = settings_text(&s, HSRL_CONFIG_WRITE_HELP);
  char *plain = settings_text(&s, 0);
  TEST_ASSERT(with_help && plain);
  TEST_ASSERT(strstr(with_help, "[sim]\n") && strstr(with_help, "\nlr = 0.0123456789\n"));
  TEST_ASSERT(strstr(with_help, "# default: 0.001\nlr = 0.0123456789\n"));
  TEST_ASSERT(strstr(with_help, "# Adam learning rate; range (0,inf)\n"));
  TEST_ASSERT(strstr(plain, "#") == NULL);
  TEST_ASSERT(strstr(plain, "\nname = round trip\n"));
  TEST_ASSERT(strstr(plain, "\ntemper = 17.25\n") && strstr(plain, "\nitems = 123456789012\n"));
  TEST_ASSERT(strstr(plain, "\nsweet_value = 1e+22\n"));
  TEST_ASSERT(strstr(plain, "\nl2 = 0.0003\n") && strstr(plain, "\nweight_decay = 1e-05\n"));
  hsrl_status st = hsrl_settings_load_string(&back, with_help, "shown");
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  st = hsrl_settings_load_string(&back_plain, plain, "plain");
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(!memcmp(&s, &back, sizeof s));
  TEST_ASSERT(!memcmp(&s, &back_plain, sizeof s));
  TEST_ASSERT(hsrl_settings_hash(&s) == hsrl_settings_hash(&back));
  /* every field appears exactly as "key = value" in its section */
  const hsrl_config_schema *schema = hsrl_settings_schema();
  for (int64_t i = 0; i < schema->n_fields; i++) {
    char line[400], value[300];
    hsrl_config_field_format(&schema->fields[i], &s, value, sizeof value);
    snprintf(line, sizeof line, "\n%s =%s%s\n", schema->fields[i].key, value[0] ? " " : "", value);
    TEST_ASSERTF(strstr(plain, line), "missing %s", line);
  }
  /* size then place: a short buffer gets a NUL-terminated prefix and the full length */
  char small[16];
  size_t n = hsrl_settings_write(&s, 0, small, sizeof small);
  TEST_ASSERT(n == strlen(plain));
  TEST_ASSERT(strlen(small) == sizeof small - 1 && !strncmp(small, plain, sizeof small - 1));
  hsrl_free(with_help);
  hsrl_free(plain);
}

static uint64_t hash_of_text(const char *text) {
  hsrl_settings s;
  hsrl_status st = hsrl_settings_load_string(&s, text, "hash-test");
  if (st != HSRL_OK) {
    fprintf(stderr, "%s\n", hsrl_err_message());
    return 0;
  }
  return hsrl_settings_hash(&s);
}

static void test_hash(void) {
  uint64_t a = hash_of_text("[sim]\nlr = 0.002\nbatch = 64\n[run]\nname = x\n[dist]\nsync = true\n");
  uint64_t same = hash_of_text("; comments and blank lines\n\n[run]\n  name=x   # trailing\n[dist]\nsync = yes\n"
                               "[sim]\n\tbatch   =   64\nlr = 2e-3 ; same number, other spelling\n");
  uint64_t other_value = hash_of_text("[sim]\nlr = 0.002\nbatch = 65\n[run]\nname = x\n[dist]\nsync = true\n");
  uint64_t other_name = hash_of_text("[sim]\nlr = 0.002\nbatch = 64\n[run]\nname = y\n[dist]\nsync = true\n");
  uint64_t other_bool = hash_of_text("[sim]\nlr = 0.002\nbatch = 64\n[run]\nname = x\n[dist]\nsync = false\n");
  TEST_ASSERT(a != 0);
  TEST_ASSERT(a == same);
  TEST_ASSERT(a != other_value && a != other_name && a != other_bool);
  TEST_ASSERT(other_value != other_name);
  /* the defaults written out explicitly hash like the defaults */
  hsrl_settings d;
  hsrl_settings_defaults(&d);
  char *defaults_text = settings_text(&d, HSRL_CONFIG_WRITE_HELP);
  TEST_ASSERT(defaults_text);
  TEST_ASSERT(strstr(defaults_text, "\ntemper = 20\n")); /* not "2e+01" */
  TEST_ASSERT(hash_of_text(defaults_text) == hsrl_settings_hash(&d));
  TEST_ASSERT(hash_of_text("") == hsrl_settings_hash(&d));
  hsrl_free(defaults_text);
  /* the hash is FNV-1a 64 of the comment-free canonical text */
  char *canon = settings_text(&d, 0);
  TEST_ASSERT(canon);
  uint64_t fnv = 14695981039346656037ull;
  for (const char *p = canon; *p; p++) fnv = (fnv ^ (uint8_t)*p) * 1099511628211ull;
  TEST_ASSERT(fnv == hsrl_settings_hash(&d));
  hsrl_free(canon);
  /* hex form; hashing allocates nothing */
  char hex[17];
  hsrl_config_hash_hex(0x0123456789abcdefull, hex);
  TEST_ASSERT(!strcmp(hex, "0123456789abcdef"));
  int64_t before = hsrl_alloc_count();
  uint64_t h = hsrl_settings_hash(&d);
  TEST_ASSERT(hsrl_alloc_count() == before);
  TEST_ASSERT(h == hsrl_settings_hash(&d));
}

/* ------------------------------------------------------------------------ a schema of its own */

typedef struct toy {
  int64_t n;
  double x;
  bool on;
  char word[8];
  char mode[4];
} toy;

static const hsrl_config_field toy_fields[] = {
    {"a", "n", HSRL_CONFIG_INT, offsetof(toy, n), sizeof(int64_t), "-3", "[-10,10]", "an int"},
    {"a", "x", HSRL_CONFIG_DOUBLE, offsetof(toy, x), sizeof(double), "0.5", NULL, "a double"},
    {"b", "on", HSRL_CONFIG_BOOL, offsetof(toy, on), sizeof(bool), "true", NULL, "a bool"},
    {"b", "word", HSRL_CONFIG_STRING, offsetof(toy, word), 8, "hi", NULL, "a short string"},
    {"b", "mode", HSRL_CONFIG_ENUM, offsetof(toy, mode), 4, "up", "up|dn", "an enum"},
};
static const hsrl_config_schema toy_schema = {toy_fields, 5};

static void test_generic_engine(void) {
  toy t;
  hsrl_config_defaults(&toy_schema, &t);
  TEST_ASSERT(t.n == -3 && t.on && !strcmp(t.word, "hi") && !strcmp(t.mode, "up"));
  TEST_NEAR(t.x, 0.5, 0);
  TEST_ASSERT(hsrl_config_load_string(&toy_schema, &t, "[a]\nn = 10\nx = -1e300\n[b]\nword = 1234567\nmode = dn\n",
                                      "toy") == HSRL_OK);
  TEST_ASSERT(t.n == 10 && t.x == -1e300 && !strcmp(t.word, "1234567") && !strcmp(t.mode, "dn"));
  TEST_ASSERT(hsrl_config_load_string(&toy_schema, &t, "[a]\nn = 11\n", "toy") == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("toy:2: field 'a.n': expected an integer in [-10,10], got '11'"), "%s", hsrl_err_message());
  TEST_ASSERT(hsrl_config_load_string(&toy_schema, &t, "[b]\nword = 12345678\n", "toy") == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("expected at most 7 bytes (this value has 8)"), "%s", hsrl_err_message());
  TEST_ASSERT(hsrl_config_set(&toy_schema, &t, "b.wrd=3") == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("did you mean 'b.word'?"), "%s", hsrl_err_message());
  TEST_ASSERT(hsrl_config_set(&toy_schema, &t, "a.mode=up") == HSRL_E_USAGE);
  TEST_ASSERTF(message_has("unknown key 'mode' in [a]; did you mean 'b.mode'?"), "%s", hsrl_err_message());
  char text[256];
  size_t n = hsrl_config_write(&toy_schema, &t, 0, text, sizeof text);
  TEST_ASSERTF(n < sizeof text && !strcmp(text, "[a]\nn = 10\nx = -1e+300\n\n[b]\non = true\nword = 1234567\nmode = dn\n"),
               "%s", text);
  hsrl_config_defaults(&toy_schema, &t);
  TEST_ASSERT(t.n == -3);
}

int main(void) {
  TEST_RUN(test_edit_distance);
  TEST_RUN(test_table_layout);
  TEST_RUN(test_defaults_filled);
  TEST_RUN(test_file_overrides_defaults);
  TEST_RUN(test_set_overrides_file_last_wins);
  TEST_RUN(test_unknown_key_names_closest);
  TEST_RUN(test_unknown_section);
  TEST_RUN(test_bad_values);
  TEST_RUN(test_other_errors);
  TEST_RUN(test_int_list);
  TEST_RUN(test_paths);
  TEST_RUN(test_show_reads_back);
  TEST_RUN(test_hash);
  TEST_RUN(test_generic_engine);
  return test_summary();
}
