/* learner_train.c: the single-process training loop (see learner_train.h; method.md section 8,
 * reference-hsrl.md sections 7.3-7.6). */
#include "learner/learner_train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_config.h"
#include "common/hsrl_log.h"
#include "common/hsrl_progress.h"
#include "common/hsrl_timer.h"
#include "common/io/io_h5.h"
#include "learner/agents/agent_hsrl.h"
#include "learner/agents/agent_sl.h"
#include "learner/learner_ring.h"
#include "learner/learner_select.h"
#include "sim/sim_env.h"
#include "sim/sim_holdout.h"
#include "sim/sim_urm_train.h"

/* Purposes of the derived seeds (hsrl_rng_derive(train seed, purpose); hsrl_settings_train_seed). */
enum {
  PURPOSE_AGENT = 0x4a01,
  PURPOSE_ENV = 0x4a02,
  PURPOSE_ACT = 0x4a03,
  PURPOSE_SAMPLE = 0x4a04,
  PURPOSE_RECORDS = 0x4a05,
  PURPOSE_HELDOUT = 0x4a06,
};

/* The open report interval's sums (also saved in checkpoints). */
enum {
  ACC_UPDATES, ACC_CRITIC, ACC_ACTOR, ACC_ENTROPY, ACC_BC, ACC_ADV, ACC_VALUE, ACC_TD, ACC_GNORM,
  ACC_W0, /* .. ACC_W0 + AGENT_MAX_LEVELS */
  ACC_EPISODES = ACC_W0 + AGENT_MAX_LEVELS + 1, ACC_EP_REWARD, ACC_EP_DEPTH, ACC_USER_STEPS,
  ACC_N
};

struct learner {
  learner_train_options opt;
  const hsrl_settings *s;
  char run_dir[LEARNER_PATH_MAX], ckpt_dir[LEARNER_PATH_MAX + 8];
  learner_world w;
  sim_env_config env_cfg;
  sim_env *env;
  uint64_t env_seed;
  int64_t env_started_at;
  agent *a;
  int replay;
  int n_levels; /* L of the agent's SIDs (0: no tokens) */
  int n_mlc;    /* level-weight columns of metrics.tsv */
  learner_ring *ring;
  int64_t Benv, Bt, K, H;
  /* the state acted on and the action */
  int32_t *s_users, *s_hist, *slate;
  uint16_t *tokens;
  float *logp;
  /* SL record batches */
  int32_t *r_users, *r_hist, *r_slate;
  uint8_t *r_clicks;
  agent_batch rb;
  int64_t *rec_idx;        /* the train split's record ids: the first n_val held out (SL early stopping) */
  int64_t n_val, n_fit;
  double heldout_last;     /* the latest held-out loss (NaN before the first) */
  learner_select sel;      /* train.val_every: the policy handed to evaluation (replay agents) */
  int64_t *perm;           /* (n_fit) the epoch's order of the fitted records */
  int64_t rec_epoch, rec_pos;
  uint64_t rec_seed;
  hsrl_rng act_rng, sample_rng;
  int64_t iteration;
  /* metrics */
  FILE *metrics;
  double acc[ACC_N];
  double seconds_before; /* training seconds of earlier processes (resume) */
  double t_open, t_interval;
  hsrl_progress progress;
  int64_t progress_from; /* the iteration this process started at: the progress line counts from it */
};

/* ---------------------------------------------------------------- small helpers */

hsrl_status learner_train_mkdirs(const char *path) {
  char buf[LEARNER_PATH_MAX + 16];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return hsrl_err(HSRL_E_USAGE, path, 0, NULL, "path too long");
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return hsrl_err(HSRL_E_IO, buf, 0, NULL, "cannot create directory: %s", strerror(errno));
      *p = c;
      if (c == '\0') break;
    }
  }
  return HSRL_OK;
}

/* ---------------------------------------------------------------- stop on a signal */

/* The stop request: written by the signal handler, read by the training loops (both roles of a
 * process see the same one). */
static volatile sig_atomic_t learner_stop_signo;
/* the signal that ended a run before train.iterations (set by the loops, read by hsrl train) */
static int learner_stopped_by;

void learner_train_set_stopped(int signo) { learner_stopped_by = signo; }
int learner_train_stopped(void) { return learner_stopped_by; }

void learner_train_request_stop(int signo) {
  if (signo <= 0) learner_stop_signo = 0; /* tests: clear */
  else if (learner_stop_signo == 0) learner_stop_signo = signo;
}

static void learner_on_signal(int signo) { learner_train_request_stop(signo); }

void learner_train_stop_on_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = learner_on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND; /* one-shot: a second signal has its default effect (ends it) */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int learner_train_stop_signal(void) { return (int)learner_stop_signo; }

const char *learner_train_signal_name(int signo) {
  static char other[32];
  if (signo == SIGTERM) return "SIGTERM";
  if (signo == SIGINT) return "SIGINT";
  snprintf(other, sizeof other, "signal %d", signo);
  return other;
}

static int learner_isfinite_stats(const agent_stats *st) {
  return isfinite(st->critic_loss) && isfinite(st->actor_loss) && isfinite(st->grad_norm) &&
         isfinite(st->entropy) && isfinite(st->bc_loss);
}

/* Philox stream state <-> 11 int64 (key 2, counter 4, buffer 4, words left). */
static hsrl_status learner_rng_write(io_h5 *f, const char *name, const hsrl_rng *r) {
  int64_t v[11], dims[1] = {11};
  for (int i = 0; i < 2; i++) v[i] = r->key[i];
  for (int i = 0; i < 4; i++) v[2 + i] = r->ctr[i], v[6 + i] = r->buf[i];
  v[10] = r->n_buf;
  return io_h5_write_i64(f, name, v, 1, dims, 0);
}
static hsrl_status learner_rng_read(io_h5 *f, const char *name, hsrl_rng *r) {
  int64_t v[11];
  hsrl_status st = io_h5_read_i64(f, name, v, 11);
  if (st != HSRL_OK) return st;
  if (v[10] < 0 || v[10] > 4) return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, name, "bad stream state");
  for (int i = 0; i < 2; i++) r->key[i] = (uint32_t)v[i];
  for (int i = 0; i < 4; i++) r->ctr[i] = (uint32_t)v[2 + i], r->buf[i] = (uint32_t)v[6 + i];
  r->n_buf = (int)v[10];
  return HSRL_OK;
}

/* ---------------------------------------------------------------- world and agent */

hsrl_status learner_train_world_load(learner_world *w, const hsrl_settings *s, const char *sim_path,
                                     int64_t max_batch) {
  hsrl_status st = HSRL_OK;
  memset(w, 0, sizeof *w);
  const char *data_path = s->run.data;
  if (!data_path[0])
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "run.data",
                    "no prepared-data file given (the config key, or --data FILE)");
  HSRL_TRY(sim_dataset_read(&w->data, data_path));
  if (sim_path && sim_path[0]) {
    HSRL_TRY(sim_urm_load(&w->urm, sim_path, &w->data));
    w->adapter = sim_click_adapters_urm_init(w->urm, max_batch);
    w->model = sim_click_adapters_urm_model(w->adapter);
  } else {
    st = sim_synth_load(&w->synth, data_path);
    if (st != HSRL_OK) {
      hsrl_err_context(st, "no simulator file given, so the click model must be the synthetic "
                           "world stored in the data file");
      goto done;
    }
    if (w->synth.n_items != w->data.n_items || w->synth.cfg.slate_size != w->data.slate_size ||
        w->synth.cfg.history_len != w->data.history_len) {
      st = hsrl_err(HSRL_E_INPUT, data_path, 0, "world", "the world's sizes differ from the data's");
      goto done;
    }
    w->has_synth = 1;
    w->model = sim_click_adapters_synth(&w->synth);
  }
  if (!strcmp(s->agent.kind, "hsrl")) {
    if (!s->run.sid[0]) {
      st = hsrl_err(HSRL_E_USAGE, NULL, 0, "run.sid",
                    "the HSRL agent needs a SID file (the config key, or --sid FILE)");
      goto done;
    }
    HSRL_TRY(sim_sid_file_read(&w->sid, s->run.sid));
    w->has_sid = 1;
    if (w->sid.n_items != w->data.n_items) {
      st = hsrl_err(HSRL_E_INPUT, s->run.sid, 0, "n_items", "%lld items, the data file %s has %lld",
                    (long long)w->sid.n_items, data_path, (long long)w->data.n_items);
      goto done;
    }
    HSRL_TRY(sim_sid_index_init(&w->index, w->sid.cb.n_levels, w->sid.cb.vocab, w->sid.n_items,
                                w->sid.tokens, w->sid.live, 0));
    sim_sid_trie_build(&w->trie, &w->index);
  }
done:
  if (st != HSRL_OK) learner_train_world_free(w);
  return st;
}

void learner_train_world_free(learner_world *w) {
  if (!w) return;
  sim_sid_trie_free(&w->trie);
  sim_sid_index_free(&w->index);
  if (w->has_sid) sim_sid_file_free(&w->sid);
  sim_click_adapters_urm_free(w->adapter);
  sim_urm_free(w->urm);
  sim_synth_free(&w->synth);
  sim_dataset_free(&w->data);
  memset(w, 0, sizeof *w);
}

hsrl_status learner_train_make_agent(agent **out, const hsrl_settings *s, const learner_world *w,
                                     int64_t max_batch, uint64_t seed, int act_only) {
  *out = NULL;
  if (w->data.n_items < w->data.slate_size)
    return hsrl_err(HSRL_E_INPUT, s->run.data, 0, "n_items", "%lld items cannot fill a slate of %lld",
                    (long long)w->data.n_items, (long long)w->data.slate_size);
  if (s->data.slate_size != w->data.slate_size || s->data.history_len != w->data.history_len)
    return hsrl_err(HSRL_E_USAGE, s->run.data, 0, "data.slate_size",
                    "the config says K = %lld, H = %lld; the data file has K = %lld, H = %lld",
                    (long long)s->data.slate_size, (long long)s->data.history_len,
                    (long long)w->data.slate_size, (long long)w->data.history_len);
  if (!strcmp(s->agent.kind, "sl")) {
    if (s->agent.d % s->agent.heads != 0)
      return hsrl_err(HSRL_E_USAGE, NULL, 0, "agent.heads", "%lld does not divide agent.d = %lld",
                      (long long)s->agent.heads, (long long)s->agent.d);
    agent_sl_config c = agent_sl_config_make(s, &w->data, s->agent.item_id_embedding ? 1 : 0,
                                             max_batch, seed);
    *out = agent_sl_init(&c);
    return HSRL_OK;
  }
  if (!strcmp(s->agent.kind, "hsrl")) {
    if (!w->has_sid)
      return hsrl_err(HSRL_E_USAGE, NULL, 0, "run.sid", "the HSRL agent needs a SID file");
    if (s->agent.explore_cap && s->agent.prefix_cap < 1)
      return hsrl_err(HSRL_E_USAGE, NULL, 0, "agent.explore_cap", "true needs agent.prefix_cap >= 1 (the cap it keeps)");
    agent_hsrl_config c;
    agent_hsrl_config_defaults(&c, s, max_batch);
    /* agent_hsrl_config_defaults sets these three as constants (1, 1, 0); the [agent] keys win */
    c.explore_temp = s->agent.explore_temp;
    c.critic_to_actor = s->agent.critic_to_actor ? 1 : 0;
    c.grad_clip = s->agent.grad_clip;
    c.seed = seed;
    c.act_only = act_only;
    agent_hsrl_world aw = agent_hsrl_world_of(&w->data, &w->index, &w->trie);
    return agent_hsrl_init(out, &c, &aw);
  }
  return hsrl_err(HSRL_E_USAGE, NULL, 0, "agent.kind", "unknown agent '%s' (sl, hsrl)", s->agent.kind);
}

static void greedy_policy_act(void *ctx, int64_t b, const int32_t *users, const int32_t *histories,
                              const uint8_t *active, int32_t *slates) {
  (void)active;
  agent_act_out out = {slates, NULL, NULL};
  agent_act((agent *)ctx, b, users, histories, AGENT_ACT_GREEDY, NULL, &out);
}

sim_eval_policy learner_train_greedy_policy(agent *a, const char *name) {
  sim_eval_policy p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "%s", name);
  p.ctx = a;
  p.act = greedy_policy_act;
  return p;
}

hsrl_status learner_train_load_policy(agent **out, const hsrl_settings *s, const learner_world *w,
                                      int64_t max_batch, const char *path) {
  return learner_train_load_policy_as(out, s, w, max_batch, path, LEARNER_POLICY_KEPT);
}

hsrl_status learner_train_load_policy_as(agent **out, const hsrl_settings *s, const learner_world *w,
                                         int64_t max_batch, const char *path, learner_policy_which which) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  *out = NULL;
  /* a policy acts greedily: agent.explore_cap does not apply, so an evaluation may set
   * agent.prefix_cap = 0 (the exact top-K) for a checkpoint trained with both */
  hsrl_settings *greedy = hsrl_malloc(sizeof *greedy);
  *greedy = *s;
  greedy->agent.explore_cap = false;
  /* the checkpoint's architecture; its seed does not matter (the tables are loaded) */
  HSRL_TRY(learner_train_make_agent(out, greedy, w, max_batch, 0, 1));
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY((*out)->vt->load(*out, f));
  if (which == LEARNER_POLICY_KEPT) {
    agent_use_best(*out);
    HSRL_TRY(learner_select_apply(*out, f, path));
  }
done:
  hsrl_free(greedy);
  io_h5_close(f);
  if (st != HSRL_OK) {
    agent_free(*out);
    *out = NULL;
  }
  return st;
}

/* ---------------------------------------------------------------- environment and data */

static void learner_env_start(learner *L, int64_t at_iteration) {
  sim_env_free(L->env);
  L->env_cfg.seed = hsrl_rng_derive(L->env_seed, (uint64_t)at_iteration);
  L->env_cfg.stream = 0;
  L->env = sim_env_init(&L->env_cfg, &L->w.data, L->w.data.train_idx, L->w.data.n_train,
                        &L->w.model);
  L->env_started_at = at_iteration;
}

/* One step of every env user with the agent's slates; the transitions go to the ring when push. */
static void learner_env_step(learner *L, agent_act_mode mode, int push) {
  const int64_t B = L->Benv, H = L->H;
  memcpy(L->s_users, sim_env_users(L->env), (size_t)B * sizeof(int32_t));
  memcpy(L->s_hist, sim_env_histories(L->env), (size_t)(B * H) * sizeof(int32_t));
  agent_act_out out = {L->slate, L->tokens, L->logp};
  agent_act(L->a, B, L->s_users, L->s_hist, mode, &L->act_rng, &out);
  sim_env_step_result res;
  sim_env_step(L->env, L->slate, &res);
  if (push) {
    agent_batch t;
    memset(&t, 0, sizeof t);
    t.B = B;
    t.users = L->s_users, t.history = L->s_hist, t.slate = L->slate, t.tokens = L->tokens;
    t.clicks = res.clicks, t.reward = res.reward, t.done = res.done;
    t.next_users = res.next_users, t.next_history = res.next_histories;
    t.behaviour_logp = L->logp;
    learner_ring_push(L->ring, &t, res.active);
  }
  L->acc[ACC_USER_STEPS] += (double)res.n_active;
  for (int64_t b = 0; b < B; b++)
    if (res.done[b]) {
      L->acc[ACC_EPISODES] += 1.0;
      L->acc[ACC_EP_REWARD] += (double)res.episode_reward[b];
      L->acc[ACC_EP_DEPTH] += (double)res.episode_depth[b];
    }
}

static void learner_records_shuffle(learner *L) {
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive(L->rec_seed, (uint64_t)L->rec_epoch), 0);
  hsrl_rng_permutation(&r, L->perm, L->n_fit);
}

/* Row j of the records batch = logged record r. */
static void learner_record_row(learner *L, int64_t j, int64_t r) {
  const sim_dataset *d = &L->w.data;
  const int64_t H = L->H, K = L->K;
  L->r_users[j] = d->rec_user[r];
  memcpy(L->r_hist + j * H, d->rec_history + r * H, (size_t)H * sizeof(int32_t));
  memcpy(L->r_slate + j * K, d->rec_slate + r * K, (size_t)K * sizeof(int32_t));
  memcpy(L->r_clicks + j * K, d->rec_clicks + r * K, (size_t)K);
}

/* The next train.batch fitted records of the train split (SL). */
static const agent_batch *learner_records_batch(learner *L) {
  for (int64_t j = 0; j < L->Bt; j++) {
    if (L->rec_pos == L->n_fit) {
      L->rec_epoch++;
      L->rec_pos = 0;
      learner_records_shuffle(L);
    }
    learner_record_row(L, j, L->rec_idx[L->n_val + L->perm[L->rec_pos++]]);
  }
  L->rb.B = L->Bt;
  return &L->rb;
}

/* The mean BCE of the held-out records' logged clicks (SL), offered to the agent to keep. */
static void learner_sl_heldout(learner *L) {
  double sum = 0.0;
  for (int64_t b0 = 0; b0 < L->n_val; b0 += L->Bt) {
    const int64_t B = L->n_val - b0 < L->Bt ? L->n_val - b0 : L->Bt;
    for (int64_t j = 0; j < B; j++) learner_record_row(L, j, L->rec_idx[b0 + j]);
    L->rb.B = B;
    sum += agent_sl_heldout_loss(L->a, &L->rb) * (double)B;
  }
  L->heldout_last = sum / (double)L->n_val;
  agent_sl_offer_heldout(L->a, L->heldout_last);
}

/* ---------------------------------------------------------------- metrics.tsv */

static void learner_metrics_header(learner *L) {
  fprintf(L->metrics,
          "iteration\tseconds\tuser_steps\tuser_steps_per_s\tupdates_per_s\tcritic_loss\tactor_loss"
          "\tentropy\tbc_loss\tadvantage\tvalue\ttd_target\tgrad_norm");
  for (int j = 0; j < L->n_mlc; j++) fprintf(L->metrics, "\tmlc_w%d", j);
  fprintf(L->metrics, "\tepisodes\ttotal_reward\tdepth\treplay_size%s%s\n", L->n_val > 0 ? "\theldout_loss" : "",
          L->sel.every > 0 ? "\tval_reward" : "");
  fflush(L->metrics);
}

static void learner_report(learner *L) {
  double now = hsrl_time_now(), dt = now - L->t_interval;
  if (dt <= 0.0) dt = 1e-9;
  const double *a = L->acc;
  double nu = a[ACC_UPDATES] > 0 ? a[ACC_UPDATES] : 1.0, ne = a[ACC_EPISODES];
  fprintf(L->metrics, "%lld\t%.3f\t%.0f\t%.1f\t%.2f", (long long)L->iteration,
          L->seconds_before + (now - L->t_open), a[ACC_USER_STEPS], a[ACC_USER_STEPS] / dt,
          a[ACC_UPDATES] / dt);
  for (int k = ACC_CRITIC; k <= ACC_GNORM; k++) fprintf(L->metrics, "\t%.6g", a[k] / nu);
  for (int j = 0; j < L->n_mlc; j++) fprintf(L->metrics, "\t%.6g", a[ACC_W0 + j] / nu);
  if (ne > 0)
    fprintf(L->metrics, "\t%.0f\t%.6g\t%.6g", ne, a[ACC_EP_REWARD] / ne, a[ACC_EP_DEPTH] / ne);
  else
    fprintf(L->metrics, "\t0\tnan\tnan");
  fprintf(L->metrics, "\t%lld", (long long)(L->ring ? learner_ring_size(L->ring) : 0));
  if (L->n_val > 0) fprintf(L->metrics, "\t%.6g", L->heldout_last);
  if (L->sel.every > 0) fprintf(L->metrics, "\t%.6g", L->sel.last_reward);
  fputc('\n', L->metrics);
  fflush(L->metrics);
  if (!L->opt.quiet) {
    char note[96];
    snprintf(note, sizeof note, "reward %.3f depth %.2f loss %.4g", ne > 0 ? a[ACC_EP_REWARD] / ne : 0.0,
             ne > 0 ? a[ACC_EP_DEPTH] / ne : 0.0, (a[ACC_ACTOR] + a[ACC_CRITIC]) / nu);
    hsrl_progress_update(&L->progress, L->iteration - L->progress_from, note);
  }
  memset(L->acc, 0, sizeof L->acc);
  L->t_interval = now;
}

/* Keeps the header and the rows of iterations <= upto (a resumed run rewrites what followed). */
hsrl_status learner_train_metrics_truncate(const char *path, int64_t upto, double *last_seconds) {
  if (last_seconds) *last_seconds = 0.0;
  FILE *in = fopen(path, "r");
  if (!in) return HSRL_OK; /* nothing to keep: a fresh header follows */
  char tmp[2 * LEARNER_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  FILE *out = fopen(tmp, "w");
  if (!out) {
    fclose(in);
    return hsrl_err(HSRL_E_IO, tmp, 0, NULL, "cannot write: %s", strerror(errno));
  }
  char line[4096];
  int first = 1;
  while (fgets(line, sizeof line, in)) {
    char *end = NULL;
    if (first || strtoll(line, &end, 10) <= upto) {
      fputs(line, out);
      /* the second column is the seconds since the run started */
      if (!first && last_seconds && end && *end == '\t') *last_seconds = strtod(end + 1, NULL);
    }
    first = 0;
  }
  fclose(in);
  if (fclose(out) != 0 || rename(tmp, path) != 0) {
    remove(tmp);
    return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot rewrite: %s", strerror(errno));
  }
  return HSRL_OK;
}

/* ---------------------------------------------------------------- checkpoints */

static char *learner_config_text(const hsrl_settings *s) {
  size_t n = hsrl_settings_write(s, 0, NULL, 0) + 1;
  char *t = hsrl_malloc(n);
  hsrl_settings_write(s, 0, t, n);
  return t;
}

hsrl_status learner_train_checkpoint(learner *L) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  char path[LEARNER_PATH_MAX + 64];
  char *text = learner_config_text(L->s);
  snprintf(path, sizeof path, "%s/step-%lld.h5", L->ckpt_dir, (long long)L->iteration);
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, LEARNER_TRAIN_CKPT_KIND, LEARNER_TRAIN_CKPT_VERSION,
                       hsrl_settings_hash(L->s)));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "iteration", L->iteration));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "config", text));
  HSRL_TRY(L->a->vt->save(L->a, f));
  if (L->ring) HSRL_TRY(learner_ring_write(L->ring, f, "learner/ring"));
  HSRL_TRY(learner_rng_write(f, "learner/rng/act", &L->act_rng));
  HSRL_TRY(learner_rng_write(f, "learner/rng/sample", &L->sample_rng));
  HSRL_TRY(io_h5_attr_set_i64(f, "learner/records", "epoch", L->rec_epoch));
  HSRL_TRY(io_h5_attr_set_i64(f, "learner/records", "position", L->rec_pos));
  HSRL_TRY(io_h5_attr_set_f64(f, "learner/records", "heldout_loss", L->heldout_last));
  HSRL_TRY(learner_select_write(&L->sel, f));
  {
    int64_t dims[1] = {ACC_N};
    HSRL_TRY(io_h5_write_f64(f, "learner/metrics/interval_sums", L->acc, 1, dims, 0));
  }
  HSRL_TRY(io_h5_attr_set_f64(f, "learner/metrics", "seconds",
                              L->seconds_before + (hsrl_time_now() - L->t_open)));
  HSRL_TRY(io_h5_attr_set_i64(f, "learner/env", "started_at", L->env_started_at));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  hsrl_free(text);
  if (st != HSRL_OK) hsrl_err_context(st, "writing checkpoint %s", path);
  return st;
}

int learner_train_resume_may_change(const hsrl_config_field *f) {
  if (hsrl_settings_field_is_path(f)) return 1;
  return (!strcmp(f->section, "train") && !strcmp(f->key, "iterations")) ||
         (!strcmp(f->section, "run") && !strcmp(f->key, "blas_threads"));
}

uint64_t learner_train_resume_hash(const hsrl_settings *s) {
  hsrl_settings *cmp = hsrl_malloc(sizeof *cmp), *def = hsrl_malloc(sizeof *def);
  *cmp = *s;
  hsrl_settings_defaults(def);
  const hsrl_config_schema *sc = hsrl_settings_schema();
  for (int64_t i = 0; i < sc->n_fields; i++)
    if (learner_train_resume_may_change(&sc->fields[i]))
      memcpy((char *)cmp + sc->fields[i].offset, (const char *)def + sc->fields[i].offset,
             sc->fields[i].size);
  uint64_t h = hsrl_settings_hash(cmp);
  hsrl_free(cmp), hsrl_free(def);
  return h;
}

hsrl_status learner_train_checkpoint_info(const char *path, hsrl_settings *s, int64_t *iteration) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  char *text = hsrl_malloc(1 << 16);
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(io_h5_check_stamp(f, LEARNER_TRAIN_CKPT_KIND, LEARNER_TRAIN_CKPT_VERSION,
                             LEARNER_TRAIN_CKPT_VERSION, NULL, NULL));
  HSRL_TRY(io_h5_attr_get_str(f, "/", "config", text, 1 << 16));
  HSRL_TRY(hsrl_settings_load_string(s, text, path));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "iteration", iteration));
done:
  io_h5_close(f);
  hsrl_free(text);
  return st;
}

hsrl_status learner_train_latest_checkpoint(const char *run_dir, char *path, size_t cap,
                                            int64_t *iteration) {
  char dir[LEARNER_PATH_MAX + 8];
  snprintf(dir, sizeof dir, "%s/ckpt", run_dir);
  DIR *dp = opendir(dir);
  if (!dp) return hsrl_err(HSRL_E_INPUT, dir, 0, NULL, "no checkpoint directory: %s", strerror(errno));
  int64_t best = -1;
  struct dirent *de;
  while ((de = readdir(dp)) != NULL) {
    /* exactly "step-<digits>.h5": temporaries ("step-N.h5.tmp-PID") are incomplete */
    const char *nm = de->d_name;
    if (strncmp(nm, "step-", 5) != 0) continue;
    char *end = NULL;
    long long n = strtoll(nm + 5, &end, 10);
    if (end == nm + 5 || strcmp(end, ".h5") != 0 || n < 0) continue;
    if (n > best) best = n;
  }
  closedir(dp);
  if (best < 0) return hsrl_err(HSRL_E_INPUT, dir, 0, NULL, "no complete checkpoint (step-<n>.h5)");
  if (snprintf(path, cap, "%s/step-%lld.h5", dir, (long long)best) >= (int)cap)
    return hsrl_err(HSRL_E_USAGE, dir, 0, NULL, "path too long");
  *iteration = best;
  return HSRL_OK;
}

hsrl_status learner_train_check_resume_config(io_h5 *f, const char *path, const hsrl_settings *s) {
  hsrl_status st = HSRL_OK;
  uint64_t hash = 0;
  HSRL_TRY(io_h5_check_stamp(f, LEARNER_TRAIN_CKPT_KIND, LEARNER_TRAIN_CKPT_VERSION,
                             LEARNER_TRAIN_CKPT_VERSION, NULL, &hash));
  /* the run's config must be the checkpoint's but for what may change on resume (the agent's
   * kind and sizes are config fields, so another agent is refused here too) */
  hsrl_settings *cmp = hsrl_malloc(sizeof *cmp);
  *cmp = *s;
  char *text = hsrl_malloc(1 << 16);
  hsrl_settings *stored = hsrl_malloc(sizeof *stored);
  st = io_h5_attr_get_str(f, "/", "config", text, 1 << 16);
  if (st == HSRL_OK) st = hsrl_settings_load_string(stored, text, path);
  if (st == HSRL_OK) {
    const hsrl_config_schema *sc = hsrl_settings_schema();
    for (int64_t i = 0; i < sc->n_fields; i++)
      if (learner_train_resume_may_change(&sc->fields[i]))
        memcpy((char *)cmp + sc->fields[i].offset, (const char *)stored + sc->fields[i].offset,
               sc->fields[i].size);
    if (hsrl_settings_hash(cmp) != hash) {
      /* name the first field that differs */
      char va[HSRL_SETTINGS_STR_MAX + 8] = "", vb[HSRL_SETTINGS_STR_MAX + 8] = "", field[96] = "config";
      for (int64_t i = 0; i < sc->n_fields; i++) {
        hsrl_config_field_format(&sc->fields[i], cmp, va, sizeof va);
        hsrl_config_field_format(&sc->fields[i], stored, vb, sizeof vb);
        if (strcmp(va, vb)) {
          snprintf(field, sizeof field, "%s.%s", sc->fields[i].section, sc->fields[i].key);
          break;
        }
      }
      st = hsrl_err(HSRL_E_USAGE, path, 0, field,
                    "the run's config says '%s', the checkpoint's '%s' (only train.iterations, "
                    "run.blas_threads and the file paths may change on --resume)",
                    va, vb);
    }
  }
  hsrl_free(cmp), hsrl_free(text), hsrl_free(stored);
done:
  return st;
}

/* Restores everything but the environment (restarted by the caller at the checkpoint's
 * iteration) from the checkpoint at path. */
static hsrl_status learner_restore(learner *L, const char *path) {
  hsrl_status st = HSRL_OK;
  io_h5 *f = NULL;
  int64_t it = 0;
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(learner_train_check_resume_config(f, path, L->s));
  if (io_h5_exists(f, "learner/dist")) {
    st = hsrl_err(HSRL_E_USAGE, path, 0, NULL,
                  "written by a distributed run (learner, replay shards and actors under mpirun): "
                  "resume it under mpirun with the same number of ranks");
    goto done;
  }
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "iteration", &it));
  HSRL_TRY(L->a->vt->load(L->a, f));
  if (L->ring) HSRL_TRY(learner_ring_read(L->ring, f, "learner/ring"));
  HSRL_TRY(learner_rng_read(f, "learner/rng/act", &L->act_rng));
  HSRL_TRY(learner_rng_read(f, "learner/rng/sample", &L->sample_rng));
  HSRL_TRY(io_h5_attr_get_i64(f, "learner/records", "epoch", &L->rec_epoch));
  HSRL_TRY(io_h5_attr_get_i64(f, "learner/records", "position", &L->rec_pos));
  if (io_h5_attr_exists(f, "learner/records", "heldout_loss"))
    HSRL_TRY(io_h5_attr_get_f64(f, "learner/records", "heldout_loss", &L->heldout_last));
  HSRL_TRY(learner_select_read(&L->sel, f, path));
  if (L->rec_epoch < 0 || L->rec_pos < 0 || L->rec_pos > L->n_fit) {
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, "learner/records", "position out of range");
    goto done;
  }
  HSRL_TRY(io_h5_read_f64(f, "learner/metrics/interval_sums", L->acc, ACC_N));
  HSRL_TRY(io_h5_attr_get_f64(f, "learner/metrics", "seconds", &L->seconds_before));
  L->iteration = it;
  learner_records_shuffle(L);
done:
  io_h5_close(f);
  if (st != HSRL_OK) hsrl_err_context(st, "resuming from %s", path);
  return st;
}

/* ---------------------------------------------------------------- open / step / close */

hsrl_status learner_train_write_config(const char *run_dir, const hsrl_settings *s) {
  char path[LEARNER_PATH_MAX + 32], tmp[2 * LEARNER_PATH_MAX];
  snprintf(path, sizeof path, "%s/config.ini", run_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return hsrl_err(HSRL_E_IO, tmp, 0, NULL, "cannot write: %s", strerror(errno));
  fprintf(f, "# The effective config of this run (hsrl train): defaults < CONFIG < --set and\n"
             "# command-line flags, paths made absolute. Config hash %016llx.\n",
          (unsigned long long)hsrl_settings_hash(s));
  hsrl_status st = hsrl_config_fprint(hsrl_settings_schema(), s, HSRL_CONFIG_WRITE_HELP, f);
  if (fclose(f) != 0 && st == HSRL_OK) st = hsrl_err(HSRL_E_IO, tmp, 0, NULL, "cannot write");
  if (st == HSRL_OK && rename(tmp, path) != 0)
    st = hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot rename: %s", strerror(errno));
  if (st != HSRL_OK) remove(tmp);
  return st;
}

hsrl_status learner_train_open(learner **out, const learner_train_options *opt) {
  hsrl_status st = HSRL_OK;
  *out = NULL;
  learner *L = hsrl_calloc(1, sizeof *L);
  L->opt = *opt;
  L->s = &L->opt.settings;
  const hsrl_settings *s = L->s;
  int is_sl = !strcmp(s->agent.kind, "sl");
  if (!is_sl && strcmp(s->agent.kind, "hsrl")) {
    st = hsrl_err(HSRL_E_USAGE, NULL, 0, "agent.kind", "unknown agent '%s' (sl, hsrl)", s->agent.kind);
    goto done;
  }
  L->replay = is_sl ? !strcmp(s->agent.sl_source, "replay") : 1;
  if (opt->run_dir[0])
    snprintf(L->run_dir, sizeof L->run_dir, "%s", opt->run_dir);
  else if (snprintf(L->run_dir, sizeof L->run_dir, "%s/%s", s->run.out_dir, s->run.name) >=
           (int)sizeof L->run_dir) {
    st = hsrl_err(HSRL_E_USAGE, NULL, 0, "run.name", "run directory path too long");
    goto done;
  }
  snprintf(L->ckpt_dir, sizeof L->ckpt_dir, "%s/ckpt", L->run_dir);
  L->Benv = s->env.batch, L->Bt = s->train.batch;
  int64_t max_batch = L->Benv > L->Bt ? L->Benv : L->Bt;

  /* env.model = world: the synthetic world's true click model (run.sim_train still names the
   * simulator the Semantic IDs and the greedy baseline came from). */
  HSRL_TRY(learner_train_world_load(&L->w, s, strcmp(s->env.model, "world") ? s->run.sim_train : "",
                                    L->Benv));
  const sim_dataset *d = &L->w.data;
  L->K = d->slate_size, L->H = d->history_len;
  if (d->n_train < 1) {
    st = hsrl_err(HSRL_E_INPUT, s->run.data, 0, "split/train", "the train split is empty");
    goto done;
  }
  uint64_t seed = hsrl_settings_train_seed(s);
  HSRL_TRY(learner_train_make_agent(&L->a, s, &L->w, max_batch,
                                    hsrl_rng_derive(seed, PURPOSE_AGENT), 0));
  L->n_levels = L->w.has_sid && !is_sl ? L->w.index.n_levels : 0;
  L->n_mlc = !is_sl ? L->n_levels + 1 : 0;
  HSRL_TRY(sim_env_config_make(&L->env_cfg, &s->env, L->K, L->H, 0, 0));
  L->env_seed = hsrl_rng_derive(seed, PURPOSE_ENV);
  if (L->replay)
    learner_select_init(&L->sel, s, &L->w, &L->env_cfg, L->a->vt->n_policy_params(L->a), seed);
  hsrl_rng_init(&L->act_rng, hsrl_rng_derive(seed, PURPOSE_ACT), 0);
  hsrl_rng_init(&L->sample_rng, hsrl_rng_derive(seed, PURPOSE_SAMPLE), 0);
  L->rec_seed = hsrl_rng_derive(seed, PURPOSE_RECORDS);

  const int64_t B = L->Benv, K = L->K, H = L->H, KL = K * L->n_levels;
  L->s_users = hsrl_calloc((size_t)B, sizeof(int32_t));
  L->s_hist = hsrl_calloc((size_t)(B * H), sizeof(int32_t));
  L->slate = hsrl_calloc((size_t)(B * K), sizeof(int32_t));
  if (KL > 0) {
    L->tokens = hsrl_calloc((size_t)(B * KL), sizeof(uint16_t));
    L->logp = hsrl_calloc((size_t)(B * KL), sizeof(float));
  }
  if (L->replay) {
    learner_ring_config rc = {s->train.buffer, H, K, L->n_levels, KL > 0, L->Bt};
    L->ring = learner_ring_init(&rc);
  } else {
    const int64_t Bt = L->Bt;
    L->r_users = hsrl_calloc((size_t)Bt, sizeof(int32_t));
    L->r_hist = hsrl_calloc((size_t)(Bt * H), sizeof(int32_t));
    L->r_slate = hsrl_calloc((size_t)(Bt * K), sizeof(int32_t));
    L->r_clicks = hsrl_calloc((size_t)(Bt * K), 1);
    L->rb.users = L->r_users, L->rb.history = L->r_hist, L->rb.slate = L->r_slate;
    L->rb.clicks = L->r_clicks;
  }
  L->rec_idx = hsrl_calloc((size_t)d->n_train, sizeof(int64_t));
  memcpy(L->rec_idx, d->train_idx, (size_t)d->n_train * sizeof(int64_t));
  L->heldout_last = NAN;
  if (!L->replay) {
    int random = 0;
    L->n_val = sim_holdout_latest(d, L->rec_idx, d->n_train, s->agent.sl_val_fraction,
                                  hsrl_rng_derive(seed, PURPOSE_HELDOUT), 0, &random);
    if (L->n_val > 0 && !opt->quiet)
      HSRL_INFO("SL: %lld of the %lld train records held out (%s) for early stopping; checkpoints act "
                "with the parameters of the best held-out loss (agent.sl_val_fraction = 0: the last)",
                (long long)L->n_val, (long long)d->n_train,
                random ? "a uniform random share" : "each user's latest");
  }
  L->n_fit = d->n_train - L->n_val;
  L->perm = hsrl_calloc((size_t)L->n_fit, sizeof(int64_t));
  learner_records_shuffle(L);

  char mpath[LEARNER_PATH_MAX + 32];
  snprintf(mpath, sizeof mpath, "%s/metrics.tsv", L->run_dir);
  if (opt->resume) {
    char cpath[LEARNER_PATH_MAX + 64];
    int64_t cit = 0;
    HSRL_TRY(learner_train_latest_checkpoint(L->run_dir, cpath, sizeof cpath, &cit));
    HSRL_TRY(learner_restore(L, cpath));
    HSRL_TRY(learner_train_metrics_truncate(mpath, L->iteration, NULL));
    HSRL_INFO("resuming %s from iteration %lld (%s)", L->run_dir, (long long)L->iteration, cpath);
  } else {
    char probe[LEARNER_PATH_MAX + 64];
    int64_t cit = 0;
    if (learner_train_latest_checkpoint(L->run_dir, probe, sizeof probe, &cit) == HSRL_OK) {
      st = hsrl_err(HSRL_E_USAGE, L->run_dir, 0, "run.name",
                    "the run directory holds checkpoints already (%s): continue it with --resume "
                    "or choose another run.name",
                    probe);
      goto done;
    }
    hsrl_err_clear();
    HSRL_TRY(learner_train_mkdirs(L->ckpt_dir));
    remove(mpath);
  }
  HSRL_TRY(learner_train_mkdirs(L->ckpt_dir));
  HSRL_TRY(learner_train_write_config(L->run_dir, L->s));
  {
    FILE *probe = fopen(mpath, "r");
    int fresh = probe == NULL;
    if (probe) fclose(probe);
    L->metrics = fopen(mpath, "a");
    if (!L->metrics) {
      st = hsrl_err(HSRL_E_IO, mpath, 0, NULL, "cannot open: %s", strerror(errno));
      goto done;
    }
    if (fresh) learner_metrics_header(L);
  }
  learner_env_start(L, L->iteration);
  L->t_open = L->t_interval = hsrl_time_now();
  if (!opt->quiet) {
    /* a resumed run counts (and rates) only the iterations this process does */
    L->progress_from = L->iteration;
    hsrl_progress_init_resumed(&L->progress, "train", L->iteration, s->train.iterations);
  }
done:
  if (st != HSRL_OK) {
    learner_train_close(L);
    return st;
  }
  *out = L;
  return HSRL_OK;
}

void learner_train_close(learner *L) {
  if (!L) return;
  if (L->metrics) fclose(L->metrics);
  sim_env_free(L->env);
  learner_select_free(&L->sel);
  learner_ring_free(L->ring);
  agent_free(L->a);
  learner_train_world_free(&L->w);
  hsrl_free(L->s_users), hsrl_free(L->s_hist), hsrl_free(L->slate), hsrl_free(L->tokens);
  hsrl_free(L->logp), hsrl_free(L->r_users), hsrl_free(L->r_hist), hsrl_free(L->r_slate);
  hsrl_free(L->r_clicks), hsrl_free(L->perm), hsrl_free(L->rec_idx);
  hsrl_free(L);
}

int64_t learner_train_iteration(const learner *L) { return L->iteration; }
int64_t learner_train_iterations(const learner *L) { return L->s->train.iterations; }
agent *learner_train_agent(learner *L) { return L->a; }
const char *learner_train_run_dir(const learner *L) { return L->run_dir; }

hsrl_status learner_train_prefill(learner *L) {
  if (!L->replay) return HSRL_OK;
  const int64_t need = L->s->train.learning_starts;
  while (learner_ring_pushed(L->ring) < need || learner_ring_pushed(L->ring) == 0)
    learner_env_step(L, AGENT_ACT_EXPLORE, 1);
  /* the first report covers the training iterations only */
  memset(L->acc, 0, sizeof L->acc);
  L->t_interval = hsrl_time_now();
  return HSRL_OK;
}

hsrl_status learner_train_step(learner *L) {
  const hsrl_settings *s = L->s;
  const agent_batch *batch;
  if (L->replay) {
    learner_env_step(L, AGENT_ACT_EXPLORE, 1);
    batch = learner_ring_sample(L->ring, L->Bt, &L->sample_rng);
  } else {
    learner_env_step(L, AGENT_ACT_GREEDY, 0);
    batch = learner_records_batch(L);
  }
  agent_stats st;
  memset(&st, 0, sizeof st);
  agent_learn(L->a, batch, &st);
  const int64_t it = ++L->iteration;
  if (L->opt.on_update) L->opt.on_update(L->opt.on_update_ctx, it, &st);
  if (!learner_isfinite_stats(&st))
    return hsrl_err(HSRL_E_INTERNAL, L->run_dir, 0, "loss",
                    "iteration %lld: non-finite loss or gradient (critic %g, actor %g, grad norm "
                    "%g); stopped without a checkpoint, the newest one in %s is the last good one",
                    (long long)it, st.critic_loss, st.actor_loss, st.grad_norm, L->ckpt_dir);
  double *a = L->acc;
  a[ACC_UPDATES] += 1.0;
  a[ACC_CRITIC] += st.critic_loss, a[ACC_ACTOR] += st.actor_loss, a[ACC_ENTROPY] += st.entropy;
  a[ACC_BC] += st.bc_loss, a[ACC_ADV] += st.advantage, a[ACC_VALUE] += st.value;
  a[ACC_TD] += st.td_target, a[ACC_GNORM] += st.grad_norm;
  for (int j = 0; j < L->n_mlc && j <= AGENT_MAX_LEVELS; j++) a[ACC_W0 + j] += st.level_weight[j];

  const int64_t every = s->train.checkpoint_every, last = s->train.iterations;
  if (L->n_val > 0 && it % s->agent.sl_val_every == 0) learner_sl_heldout(L);
  if (learner_select_due(&L->sel, it)) {
    hsrl_status vs = learner_select_validate(&L->sel, L->a, it);
    if (vs != HSRL_OK) return vs;
  }
  if (it % s->train.report_every == 0 || it == last) learner_report(L);
  int boundary = every > 0 && it % every == 0;
  if (boundary || it == last) {
    hsrl_status cs = learner_train_checkpoint(L);
    if (cs != HSRL_OK) return cs;
  }
  if (boundary && it < last) learner_env_start(L, it);
  return HSRL_OK;
}

hsrl_status learner_train_run(const learner_train_options *opt) {
  learner *L = NULL;
  hsrl_status st = learner_train_open(&L, opt);
  if (st != HSRL_OK) return st;
  HSRL_TRY(learner_train_prefill(L));
  while (L->iteration < L->s->train.iterations) {
    HSRL_TRY(learner_train_step(L));
    int sig = learner_train_stop_signal();
    if (sig && L->iteration < L->s->train.iterations) {
      /* a stop request: the update is done; keep it (step wrote one on a boundary) */
      const int64_t every = L->s->train.checkpoint_every;
      if (!(every > 0 && L->iteration % every == 0)) HSRL_TRY(learner_train_checkpoint(L));
      learner_train_set_stopped(sig);
      if (!opt->quiet) hsrl_progress_finish(&L->progress, NULL);
      HSRL_WARN("stopped by %s at iteration %lld of %lld: wrote %s/step-%lld.h5; continue with "
                "hsrl train --resume %s",
                learner_train_signal_name(sig), (long long)L->iteration,
                (long long)L->s->train.iterations, L->ckpt_dir, (long long)L->iteration, L->run_dir);
      goto done;
    }
  }
  if (!opt->quiet) hsrl_progress_finish(&L->progress, NULL);
done:
  learner_train_close(L);
  return st;
}
