/* bench_replay.c: bytes per transition and rates of the replay shard (issue 6 item 4: "compression
 * ratio vs the naive float layout (history as feature vectors) and vs our raw narrow layout";
 * architecture.md "The distributed job": transitions are stored narrow and sent as zstd blocks).
 *
 * Transitions come from real environment steps: the world and the HSRL agent are built exactly as
 * `hsrl train` builds them (learner_train_world_load, learner_train_make_agent) from an effective
 * config given as "section.key=value" arguments; env.batch users act (EXPLORE: sampled SID tokens
 * and their behaviour log-probs) for --steps env steps over the train split, with a policy version
 * that advances every dist.broadcast_every steps, as an actor's would.
 *
 * Layouts, bytes per transition (H history, K slate, L levels, D item features, P user features):
 *   naive float   every field float32, users and items as their feature vectors:
 *                 state (P + H D) + slate (K D) + tokens (K L) + clicks (K) + reward + done +
 *                 next state (P + H D) + behaviour log-probs (K L) + policy version
 *   learner ring  today's in-learner ring (learner_ring.c): int32 ids, uint16 tokens, uint8
 *                 clicks and done, next history stored
 *   shard ring    replay_shard's narrow storage: tokens uint8 (V <= 256), clicks as bits, next
 *                 history derived
 *   block raw     replay_block's narrow wire layout before zstd (header amortised)
 *   block zstd    the framed zstd block (what an actor sends), for blocks of dist.block_rows and
 *                 larger blocks
 *   snapshot      the HDF5 snapshot of a full shard (shuffle + zstd per field)
 * Rates (wall time, medians of 3 runs): pack + compress (actor side), offer + decode + insert
 * (shard side), sample of train.batch rows (uniform, decoded), with a limiter that never refuses.
 * usage: bench_replay [--steps N] section.key=value ... (run through scripts/bench/replay.sh) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_timer.h"
#include "learner/learner_train.h"
#include "replay/replay_block.h"
#include "replay/replay_shard.h"
#include "replay/replay_snapshot.h"
#include "sim/sim_env.h"

static void die(const char *what) {
  fprintf(stderr, "bench_replay: %s: %s\n", what, hsrl_err_message());
  exit(2);
}

static double median3(double a, double b, double c) {
  if (a > b) { double t = a; a = b; b = t; }
  if (b > c) { double t = b; b = c; c = t; }
  return a > b ? a : b;
}

/* Sizes of packing all n rows of `all` in blocks of `rows` rows; returns the seconds it took. */
static double pack_all(const replay_rows_buf *all, int64_t n, int64_t rows, int64_t max_vocab,
                       uint64_t hash, int64_t *raw, int64_t *framed, int64_t *nh_stored) {
  replay_block_config bc = {all->shape, rows, max_vocab, hash, 3};
  replay_block *b = NULL;
  if (replay_block_init(&b, &bc) != HSRL_OK) die("block");
  size_t cap = replay_block_bound(b), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  *raw = *framed = *nh_stored = 0;
  double t0 = hsrl_time_now();
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    int64_t k = n - r0 < rows ? n - r0 : rows;
    replay_rows v = replay_rows_buf_view(all, r0, k);
    replay_block_stats st;
    if (replay_block_pack(b, frame, cap, &v, &size, &st) != HSRL_OK) die("pack");
    *raw += st.raw_bytes, *framed += st.framed_bytes, *nh_stored += st.n_next_history_stored;
  }
  double t = hsrl_time_now() - t0;
  hsrl_free(frame);
  replay_block_free(b);
  return t;
}

int main(int argc, char **argv) {
  int64_t n_steps = 1000;
  int first = 1;
  if (argc > 2 && !strcmp(argv[1], "--steps")) n_steps = atoll(argv[2]), first = 3;
  if (n_steps < 10) n_steps = 10;
  hsrl_settings s;
  if (hsrl_settings_load(&s, NULL, argc - first, (const char *const *)(argv + first)) != HSRL_OK)
    die("config");
  const int64_t Benv = s.env.batch, Bt = s.train.batch;
  learner_world w;
  memset(&w, 0, sizeof w);
  if (learner_train_world_load(&w, &s, s.run.sim_train, Benv) != HSRL_OK) die("world");
  agent *a = NULL;
  if (learner_train_make_agent(&a, &s, &w, Benv, 12345, 1) != HSRL_OK) die("agent");
  const sim_dataset *data = &w.data;
  const int64_t H = data->history_len, K = data->slate_size, L = w.index.n_levels, KL = K * L;
  const int64_t D = data->item_dim, P = data->user_dim;
  int64_t V = 0;
  for (int l = 0; l < L; l++) V = w.index.vocab[l] > V ? w.index.vocab[l] : V;
  sim_env_config ec;
  if (sim_env_config_make(&ec, &s.env, K, H, 777, 0) != HSRL_OK) die("env");
  sim_env *env = sim_env_init(&ec, data, data->train_idx, data->n_train, &w.model);

  /* ---- transitions from real env steps ---- */
  replay_rows_shape shape = {H, K, L, L > 0};
  replay_rows_buf all;
  replay_rows_buf_init(&all, &shape, n_steps * Benv);
  int32_t *users = hsrl_calloc((size_t)Benv, sizeof(int32_t));
  int32_t *hist = hsrl_calloc((size_t)(Benv * H), sizeof(int32_t));
  int32_t *slate = hsrl_calloc((size_t)(Benv * K), sizeof(int32_t));
  uint16_t *tokens = hsrl_calloc((size_t)(Benv * KL), sizeof(uint16_t));
  float *logp = hsrl_calloc((size_t)(Benv * KL), sizeof(float));
  agent_act_out out = {slate, tokens, logp};
  hsrl_rng act_rng;
  hsrl_rng_init(&act_rng, 4242, 0);
  sim_env_step_result res;
  int64_t n = 0;
  double t_env = hsrl_time_now();
  for (int64_t step = 0; step < n_steps; step++) {
    memcpy(users, sim_env_users(env), (size_t)Benv * sizeof(int32_t));
    memcpy(hist, sim_env_histories(env), (size_t)(Benv * H) * sizeof(int32_t));
    agent_act(a, Benv, users, hist, AGENT_ACT_EXPLORE, &act_rng, &out);
    sim_env_step(env, slate, &res);
    for (int64_t b = 0; b < Benv; b++) {
      if (!res.active[b]) continue;
      all.users[n] = users[b];
      memcpy(all.history + n * H, hist + b * H, (size_t)H * 4);
      memcpy(all.slate + n * K, slate + b * K, (size_t)K * 4);
      memcpy(all.tokens + n * KL, tokens + b * KL, (size_t)KL * 2);
      memcpy(all.logp + n * KL, logp + b * KL, (size_t)KL * 4);
      memcpy(all.clicks + n * K, res.clicks + b * K, (size_t)K);
      all.reward[n] = res.reward[b];
      all.done[n] = res.done[b];
      all.next_users[n] = res.next_users[b];
      memcpy(all.next_history + n * H, res.next_histories + b * H, (size_t)H * 4);
      all.policy_version[n] = (int32_t)(step / s.dist.broadcast_every);
      n++;
    }
  }
  t_env = hsrl_time_now() - t_env;
  int64_t n_clicks = 0, n_done = 0;
  for (int64_t j = 0; j < n * K; j++) n_clicks += all.clicks[j];
  for (int64_t i = 0; i < n; i++) n_done += all.done[i];
  printf("transitions: %lld from %lld env steps of %lld users (%.1f s with acting), H %lld, K %lld, "
         "L %lld (V %lld), D %lld, P %lld; click rate %.3f, done rate %.3f\n",
         (long long)n, (long long)n_steps, (long long)Benv, t_env, (long long)H, (long long)K,
         (long long)L, (long long)V, (long long)D, (long long)P, (double)n_clicks / (double)(n * K),
         (double)n_done / (double)n);

  /* ---- bytes per transition ---- */
  const uint64_t hash = hsrl_settings_hash(&s);
  const double naive = 4.0 * (double)(2 * P + 2 * H * D + K * D + 2 * KL + K + 3);
  const double lring = (double)(4 + 4 * H + 4 * K + 2 * KL + K + 4 + 1 + 4 + 4 * H + 4 * KL);
  replay_shard_config sc;
  replay_shard_config_from_settings(&sc, &s, 0, 0, &shape, V, hash);
  sc.capacity = n < sc.capacity ? n : sc.capacity;
  sc.block_rows = 1024;
  sc.limiter = (replay_limiter_config){1.0, 1, 1e15}; /* never refuses: raw speed */
  if (sc.capacity < 2) sc.capacity = 2;
  replay_shard *sh = NULL;
  if (replay_shard_init(&sh, &sc) != HSRL_OK) die("shard");
  const int tb = replay_shard_tokens_u16(sh) ? 2 : 1;
  const double sring = (double)(4 + 4 * H + 4 * K + tb * KL + (K + 7) / 8 + 1 + 4 + 4 * KL + 4 + 4);
  printf("\nbytes per transition               bytes   naive/x     x/zstd(%lld)\n",
         (long long)s.dist.block_rows);
  int64_t raw = 0, framed = 0, nh = 0;
  pack_all(&all, n, s.dist.block_rows, V, hash, &raw, &framed, &nh);
  const double zb = (double)framed / (double)n;
  printf("  naive float (features)       %9.1f   %7.2f   %9.2f\n", naive, 1.0, naive / zb);
  printf("  learner ring (today)         %9.1f   %7.2f   %9.2f\n", lring, naive / lring, lring / zb);
  printf("  shard ring (narrow, memory)  %9.1f   %7.2f   %9.2f\n", sring, naive / sring, sring / zb);
  printf("  block raw narrow (wire)      %9.1f   %7.2f   %9.2f   (%lld of %lld next histories stored)\n",
         (double)raw / (double)n, naive / ((double)raw / (double)n), ((double)raw / (double)n) / zb,
         (long long)nh, (long long)n);
  int64_t sizes[3] = {s.dist.block_rows, 256, 1024};
  for (int i = 0; i < 3; i++) {
    if (i > 0 && (sizes[i] <= s.dist.block_rows || sizes[i] > n)) continue;
    int64_t r2 = 0, f2 = 0, nh2 = 0;
    pack_all(&all, n, sizes[i], V, hash, &r2, &f2, &nh2);
    double z = (double)f2 / (double)n;
    printf("  block zstd, %5lld rows        %9.1f   %7.2f   %9.2f   (raw narrow / zstd %.2f)\n",
           (long long)sizes[i], z, naive / z, zb / z, ((double)r2 / (double)n) / z);
  }

  /* ---- rates ---- */
  replay_block_config bc = {shape, s.dist.block_rows, V, hash, 3};
  replay_block *blk = NULL;
  if (replay_block_init(&blk, &bc) != HSRL_OK) die("block");
  const size_t cap = replay_block_bound(blk);
  const int64_t n_blocks = (n + s.dist.block_rows - 1) / s.dist.block_rows;
  uint8_t *frames = hsrl_malloc((size_t)n_blocks * cap);
  size_t *fsize = hsrl_calloc((size_t)n_blocks, sizeof(size_t));
  double t_pack[3], t_ins[3], t_smp[3];
  const int64_t n_samples = n / Bt > 200 ? n / Bt : 200;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = hsrl_time_now();
    for (int64_t bi = 0; bi < n_blocks; bi++) {
      int64_t r0 = bi * s.dist.block_rows, k = n - r0 < s.dist.block_rows ? n - r0 : s.dist.block_rows;
      replay_rows v = replay_rows_buf_view(&all, r0, k);
      if (replay_block_pack(blk, frames + (size_t)bi * cap, cap, &v, &fsize[bi], NULL) != HSRL_OK) die("pack");
    }
    t_pack[rep] = hsrl_time_now() - t0;
    t0 = hsrl_time_now();
    for (int64_t bi = 0; bi < n_blocks; bi++) {
      int acc = 0;
      if (replay_shard_offer(sh, frames + (size_t)bi * cap, fsize[bi], &acc) != HSRL_OK || !acc) die("offer");
      if (replay_shard_pump(sh, NULL) != HSRL_OK) die("pump");
    }
    t_ins[rep] = hsrl_time_now() - t0;
    t0 = hsrl_time_now();
    replay_rows o;
    for (int64_t i = 0; i < n_samples; i++)
      if (!replay_shard_sample(sh, Bt, &o)) die("sample");
    t_smp[rep] = hsrl_time_now() - t0;
  }
  const double tp = median3(t_pack[0], t_pack[1], t_pack[2]), ti = median3(t_ins[0], t_ins[1], t_ins[2]);
  const double ts = median3(t_smp[0], t_smp[1], t_smp[2]);
  printf("\nrates (wall, median of 3; blocks of %lld rows, batches of %lld)\n", (long long)s.dist.block_rows,
         (long long)Bt);
  printf("  pack + zstd (actor)          %12.0f transitions/s  (%.1f MB/s of raw narrow)\n",
         (double)n / tp, (double)raw / tp / 1e6);
  printf("  offer + decode + insert      %12.0f transitions/s\n", (double)n / ti);
  printf("  sample (uniform, decoded)    %12.0f transitions/s  (%.0f batches/s)\n",
         (double)(n_samples * Bt) / ts, (double)n_samples / ts);

  /* ---- snapshot ---- */
  char path[512];
  snprintf(path, sizeof path, "%s/bench-replay-%d.h5", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  double t0 = hsrl_time_now();
  if (replay_snapshot_write(sh, path) != HSRL_OK) die("snapshot");
  double t_snap = hsrl_time_now() - t0;
  FILE *f = fopen(path, "rb");
  long fbytes = 0;
  if (f) fseek(f, 0, SEEK_END), fbytes = ftell(f), fclose(f);
  remove(path);
  const int64_t held = replay_shard_size(sh);
  printf("\nsnapshot of %lld transitions: %ld bytes = %.1f bytes per transition (naive / snapshot %.2f), "
         "written in %.2f s\n",
         (long long)held, fbytes, (double)fbytes / (double)held, naive / ((double)fbytes / (double)held), t_snap);

  hsrl_free(frames), hsrl_free(fsize);
  hsrl_free(users), hsrl_free(hist), hsrl_free(slate), hsrl_free(tokens), hsrl_free(logp);
  replay_block_free(blk);
  replay_shard_free(sh);
  replay_rows_buf_free(&all);
  sim_env_free(env);
  agent_free(a);
  learner_train_world_free(&w);
  return 0;
}
