/* replay_cmd.c: `hsrl replay inspect FILE [--rows N]` (see replay_cmd.h). */
#include "replay/replay_cmd.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io/io_h5.h"
#include "common/hsrl_status.h"
#include "replay/replay_snapshot.h"

#define INSPECT_MAX_ROWS 1000

static void replay_cmd_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl replay inspect FILE [--rows N]\n"
          "\n"
          "Replay shards of the distributed job keep transitions and write them as HDF5 snapshots\n"
          "(runs/<name>/replay/shard-<r>-step-<k>.h5).\n"
          "\n"
          "  inspect  summarise a snapshot: counts, rate limiter, per-field min/mean/max, click\n"
          "           rate, reward, policy versions and lag, and a few decoded transitions;\n"
          "           see 'hsrl replay inspect --help'\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or a bad/corrupt file (the message names it), 1 internal.\n");
}

static void replay_cmd_inspect_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl replay inspect FILE [--rows N]\n"
          "\n"
          "Reads a replay shard snapshot (HDF5, kind \"replay-shard\") and prints its format and\n"
          "config hash, layout (capacity, H, K, L, token width), counters (held, inserted,\n"
          "sampled, waits, queued blocks), the rate limiter's state, min / mean / max of every\n"
          "field, click and done rates, the reward mean, the policy versions held and their lag\n"
          "behind the newest, bytes per transition in the file, and the N oldest transitions\n"
          "held, decoded.\n"
          "\n"
          "options:\n"
          "  --rows N     transitions to decode (default 3, 0..%d)\n"
          "  -h, --help   this text\n"
          "\n"
          "The file's datasets are zstd-compressed (HDF5 filter 32015): h5dump and h5py read\n"
          "them with HDF5_PLUGIN_PATH=<build>/plugins (the zstd plugin built with hsrl).\n"
          "Exit status: 0 ok, 2 bad usage or a bad/corrupt file (the message names it), 1 internal.\n",
          INSPECT_MAX_ROWS);
}

/* Running min / mean / max of one field. */
typedef struct field_stat {
  double lo, hi, sum;
  int64_t n;
} field_stat;

static void stat_init(field_stat *s) { s->lo = DBL_MAX, s->hi = -DBL_MAX, s->sum = 0, s->n = 0; }
static void stat_add(field_stat *s, double v) {
  if (v < s->lo) s->lo = v;
  if (v > s->hi) s->hi = v;
  s->sum += v;
  s->n++;
}
static void stat_print(const char *name, const field_stat *s, const char *note) {
  if (!s->n) {
    printf("    %-22s (none)%s%s\n", name, note ? "  " : "", note ? note : "");
    return;
  }
  printf("    %-22s %12.6g %12.6g %12.6g%s%s\n", name, s->lo, s->sum / (double)s->n, s->hi,
         note ? "  " : "", note ? note : "");
}

/* Bytes the transitions datasets occupy in the file (0 when unknown). */
static int64_t inspect_file_bytes(const char *path) {
  static const char *names[] = {"user",   "history",        "slate",          "tokens",
                                "clicks", "done",           "reward",         "behaviour_logp",
                                "policy_version", "next_user", "next_history"};
  io_h5 *f = NULL;
  int64_t total = 0;
  if (io_h5_open(&f, path) != HSRL_OK) return 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char name[96];
    int64_t b = 0;
    snprintf(name, sizeof name, "transitions/%s", names[i]);
    if (io_h5_exists(f, name) && io_h5_storage_size(f, name, &b) == HSRL_OK) total += b;
  }
  io_h5_close(f);
  return total;
}

static void inspect_summary(replay_shard *s, const char *path) {
  const replay_shard_config *c = replay_shard_get_config(s);
  const replay_shard_counters *n = replay_shard_get_counters(s);
  const replay_limiter *l = replay_shard_get_limiter(s);
  const replay_shard_store *m = replay_shard_get_store(s);
  const int64_t size = replay_shard_size(s), H = c->shape.history_len, K = c->shape.slate_size;
  const int64_t L = c->shape.n_levels, KL = K * L;
  const int u16 = replay_shard_tokens_u16(s);
  printf("replay shard snapshot %s\n", path);
  printf("  format      %s v%d, config hash %016llx\n", REPLAY_SNAPSHOT_KIND, REPLAY_SNAPSHOT_VERSION,
         (unsigned long long)c->config_hash);
  printf("  layout      capacity %lld, H %lld, K %lld, L %lld (tokens %s, vocabulary %lld), "
         "log-probs %s, next history %s\n",
         (long long)c->capacity, (long long)H, (long long)K, (long long)L,
         L ? (u16 ? "uint16" : "uint8") : "none", (long long)c->max_vocab,
         c->shape.with_logp ? "yes" : "no", c->store_next_history ? "stored" : "derived");
  printf("  counts      held %lld of %lld; inserted %lld, sampled %lld in %lld batches (%.3f per "
         "insert), deleted %lld\n",
         (long long)size, (long long)c->capacity, (long long)n->inserted, (long long)n->sampled,
         (long long)n->sample_calls, n->inserted ? (double)n->sampled / (double)n->inserted : 0.0,
         (long long)l->deletes);
  printf("  limiter     samples_per_insert %g, min_size_to_sample %lld, error_buffer %g: diff %g "
         "in [%g, %g]\n",
         c->limiter.samples_per_insert, (long long)c->limiter.min_size_to_sample,
         c->limiter.error_buffer, replay_limiter_diff(l), l->min_diff, l->max_diff);
  printf("  waits       insert %lld, sample %lld, queue full %lld; blocks received %lld, rejected "
         "%lld, queued %lld (front: %lld rows in)\n",
         (long long)n->insert_waits, (long long)n->sample_waits, (long long)n->queue_full,
         (long long)n->blocks_received, (long long)n->blocks_rejected,
         (long long)replay_shard_queued(s), (long long)replay_shard_head_rows_done(s));
  int64_t file_bytes = inspect_file_bytes(path);
  if (size && file_bytes)
    printf("  file        transitions take %lld bytes: %.1f bytes per transition\n",
           (long long)file_bytes, (double)file_bytes / (double)size);
  if (!size) {
    printf("  (no transitions held)\n");
    return;
  }

  field_stat st;
  int64_t n_pad = 0, n_clicks = 0, n_done = 0;
  printf("  %-24s %12s %12s %12s\n", "fields", "min", "mean", "max");
  stat_init(&st);
  for (int64_t i = 0; i < size; i++) stat_add(&st, m->users[i]);
  stat_print("user", &st, NULL);
  stat_init(&st);
  for (int64_t j = 0; j < size * H; j++) {
    if (m->history[j]) stat_add(&st, m->history[j]);
    else n_pad++;
  }
  char note[96];
  snprintf(note, sizeof note, "(ids; %.1f%% padding)", 100.0 * (double)n_pad / (double)(size * H));
  stat_print("history", &st, note);
  stat_init(&st);
  for (int64_t j = 0; j < size * K; j++) stat_add(&st, m->slate[j]);
  stat_print("slate", &st, NULL);
  for (int64_t lv = 0; lv < L; lv++) {
    stat_init(&st);
    for (int64_t j = lv; j < size * KL; j += L)
      stat_add(&st, m->tokens16 ? m->tokens16[j] : m->tokens8[j]);
    char name[48];
    snprintf(name, sizeof name, "tokens level %lld", (long long)lv);
    stat_print(name, &st, NULL);
  }
  stat_init(&st);
  for (int64_t i = 0; i < size; i++) stat_add(&st, (double)m->reward[i]);
  stat_print("reward", &st, NULL);
  if (m->logp) {
    stat_init(&st);
    for (int64_t j = 0; j < size * KL; j++) stat_add(&st, (double)m->logp[j]);
    stat_print("behaviour_logp", &st, "(per token)");
  }
  int32_t v_max = INT32_MIN;
  stat_init(&st);
  for (int64_t i = 0; i < size; i++) {
    stat_add(&st, m->policy_version[i]);
    if (m->policy_version[i] > v_max) v_max = m->policy_version[i];
  }
  stat_print("policy_version", &st, NULL);
  stat_init(&st);
  for (int64_t i = 0; i < size; i++) stat_add(&st, (double)v_max - m->policy_version[i]);
  stat_print("lag", &st, "(newest version held - row's)");
  int64_t n_moved = 0;
  for (int64_t i = 0; i < size; i++) {
    n_done += m->done[i];
    n_moved += m->next_users[i] != m->users[i];
    for (int64_t k = 0; k < K; k++) n_clicks += (m->clicks[i * m->clicks_bytes + (k >> 3)] >> (k & 7)) & 1;
  }
  printf("  clicks      rate %.4f (%lld of %lld shown), %.3f per slate\n",
         (double)n_clicks / (double)(size * K), (long long)n_clicks, (long long)(size * K),
         (double)n_clicks / (double)size);
  printf("  done        rate %.4f (%lld transitions end an episode); next user differs in %lld\n",
         (double)n_done / (double)size, (long long)n_done, (long long)n_moved);
}

static void print_ids(const char *label, const int32_t *v, int64_t n, int64_t show) {
  int64_t from = n > show ? n - show : 0;
  printf("      %-8s", label);
  if (from) printf(" ...(%lld more)", (long long)from);
  for (int64_t j = from; j < n; j++) printf(" %d", (int)v[j]);
  printf("\n");
}

static void inspect_rows(replay_shard *s, int64_t n_rows) {
  const replay_shard_config *c = replay_shard_get_config(s);
  const int64_t size = replay_shard_size(s), H = c->shape.history_len, K = c->shape.slate_size;
  const int64_t L = c->shape.n_levels;
  if (n_rows > size) n_rows = size;
  if (n_rows <= 0) return;
  int32_t v_max = INT32_MIN;
  for (int64_t i = 0; i < size; i++)
    if (replay_shard_get_store(s)->policy_version[i] > v_max)
      v_max = replay_shard_get_store(s)->policy_version[i];
  printf("  the %lld oldest transitions held:\n", (long long)n_rows);
  for (int64_t a = 0; a < n_rows; a++) {
    int64_t slot = replay_shard_slot_of_age(s, a);
    replay_rows r = replay_shard_get(s, slot);
    printf("    [%lld] slot %lld: user %d, policy version %d (lag %lld), reward %.6g, done %d\n",
           (long long)a, (long long)slot, (int)r.users[0], (int)r.policy_version[0],
           (long long)v_max - r.policy_version[0], (double)r.reward[0], (int)r.done[0]);
    print_ids("history", r.history, H, 12);
    print_ids("slate", r.slate, K, K);
    printf("      %-8s ", "clicks");
    for (int64_t k = 0; k < K; k++) putchar(r.clicks[k] ? '1' : '0');
    printf("\n");
    if (L) {
      printf("      %-8s", "tokens");
      for (int64_t k = 0; k < K; k++)
        for (int64_t l = 0; l < L; l++)
          printf("%s%d", l ? "." : " ", (int)r.tokens[k * L + l]);
      printf("\n");
    }
    if (r.behaviour_logp) {
      printf("      %-8s", "logp");
      for (int64_t k = 0; k < K; k++) {
        double sum = 0;
        for (int64_t l = 0; l < L; l++) sum += (double)r.behaviour_logp[k * L + l];
        printf(" %.3g", sum);
      }
      printf("  (per item, summed over levels)\n");
    }
    printf("      %-8s user %d\n", "next", (int)r.next_users[0]);
    print_ids("", r.next_history, H, 12);
  }
}

static int replay_cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  long long n_rows = 3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      replay_cmd_inspect_usage(stdout);
      return 0;
    }
    const char *val = NULL;
    if (!strcmp(a, "--rows")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hsrl replay inspect: --rows needs a value; see 'hsrl replay inspect --help'\n");
        return 2;
      }
      val = argv[++i];
    } else if (!strncmp(a, "--rows=", 7)) {
      val = a + 7;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "hsrl replay inspect: unknown option '%s'; see 'hsrl replay inspect --help'\n", a);
      return 2;
    } else if (path) {
      fprintf(stderr, "hsrl replay inspect: one FILE only (got '%s' and '%s')\n", path, a);
      return 2;
    } else {
      path = a;
      continue;
    }
    char *end = NULL;
    n_rows = strtoll(val, &end, 10);
    if (!*val || *end || n_rows < 0 || n_rows > INSPECT_MAX_ROWS) {
      fprintf(stderr, "hsrl replay inspect: --rows '%s': expected an integer in 0..%d\n", val,
              INSPECT_MAX_ROWS);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "hsrl replay inspect: FILE is missing; see 'hsrl replay inspect --help'\n");
    return 2;
  }
  replay_shard *s = NULL;
  hsrl_status st = replay_snapshot_read(&s, path);
  if (st != HSRL_OK) {
    fprintf(stderr, "hsrl replay inspect: %s\n", hsrl_err_message());
    return hsrl_status_exit_code(st);
  }
  inspect_summary(s, path);
  inspect_rows(s, (int64_t)n_rows);
  replay_shard_free(s);
  return 0;
}

int replay_command(int argc, char **argv) {
  if (argc < 2) {
    replay_cmd_usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    replay_cmd_usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "inspect")) return replay_cmd_inspect(argc - 1, argv + 1);
  fprintf(stderr, "hsrl replay: '%s' is not a replay command; see 'hsrl replay --help'\n", argv[1]);
  return 2;
}
