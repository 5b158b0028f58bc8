/* bench_sid_decode.c: decode throughput of the Semantic-ID decoders (sim_sid_decode.h; method.md
 * §6 "trie decoding ... touching O(K L V) numbers, independent of N"), issue 4 benchmark.
 *
 * For each catalog size N (default 1 million and 10 million) it draws N random SIDs (L = 3,
 * V = 256 per level, uniform tokens: collisions as chance makes them), builds the index and trie,
 * and measures in the same run, on the same states:
 *   - top-K by best-first trie search (sim_sid_decode_topk), K = 10, states/s;
 *   - top-K by brute-force scoring of every live item (sim_sid_decode_topk_list with the whole
 *     catalog), states/s, on a subset of the states (it is slow), whose slates must equal the
 *     trie's (checked; a mismatch fails the run);
 *   - K = 10 distinct items sampled along the trie (sim_sid_decode_sample), states/s.
 * States: per-level log-softmax of Gaussian logits with scale sigma (1: flat distributions, the
 * hard case for a best-first search; 3: peaked, like a trained policy). Times are process CPU
 * seconds (one thread). Also printed: numbers read per state, heap pops, the largest heap, heap
 * fallbacks, sampling proposals per item and exact-sweep draws, and the build time and size.
 *
 * With --sid FILE it instead times trie sampling alone on a real catalog (a <dataset>.sid.h5, e.g.
 * ML-1M: 3,615 items, L = 3, V = 64, a few thousand live SIDs out of 262,144), K = 10, in calls of
 * 32 states as the agent acts (agent_hsrl.c, env.batch = 32), for states from near uniform (an
 * untrained policy: most of the mass on SIDs no item has) to peaked: microseconds per state, the
 * proposals per item, the share of draws made from the leaf table, exact sweeps, and the live
 * mass (the acceptance of a proposal, measured on the same states); then each way of drawing
 * forced (ws.sample_path): proposals only (ns per proposal) and the leaf table only (ns per SID,
 * everything else of a state included), whose ratio is what TABLE_COST_PER_SID in
 * sim_sid_decode.c stands for.
 * usage: bench_sid_decode [N ...]   (catalog sizes; default 1000000 10000000)
 *        bench_sid_decode --sid FILE [REPEATS]   (default 20 passes over 2,000 states) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "sim/sim_sid_decode.h"
#include "sim/sim_sid_file.h"

enum { L = 3, V = 256, K = 10, N_STATES = 2000, SID_CALL = 32 };

/* L blocks of (n_states, v) log-softmax rows of Gaussian logits with scale sigma; with idx, every
 * state also adds `bias` to the logits of the tokens of one random live item (a policy that leans
 * towards an item of the catalog, as a trained one does). */
static float *make_states_v(int64_t n_states, int64_t v_n, double sigma, uint64_t seed, const sim_sid_index *idx,
                            double bias) {
  float *lp = hsrl_malloc((size_t)(L * n_states * v_n) * sizeof(float)); /* [l] (B, V) */
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  double *t = hsrl_malloc((size_t)v_n * sizeof(double));
  for (int64_t b = 0; b < n_states; b++) {
    const int64_t item = idx ? idx->bucket_items[hsrl_rng_below(&r, (uint64_t)idx->n_live)] : 0;
    for (int l = 0; l < L; l++) {
      float *row = lp + (l * n_states + b) * v_n;
      double m = -HUGE_VAL, z = 0.0;
      for (int64_t v = 0; v < v_n; v++) {
        t[v] = sigma * hsrl_rng_normal(&r) + (idx && v == idx->tokens[item * L + l] ? bias : 0.0);
        m = t[v] > m ? t[v] : m;
      }
      for (int64_t v = 0; v < v_n; v++) z += exp(t[v] - m);
      for (int64_t v = 0; v < v_n; v++) row[v] = (float)(t[v] - m - log(z));
    }
  }
  hsrl_free(t);
  return lp;
}

static float *make_states(int64_t n_states, double sigma, uint64_t seed) {
  float *lp = hsrl_malloc((size_t)(L * n_states * V) * sizeof(float)); /* [l] (B, V) */
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  double t[V];
  for (int64_t row = 0; row < L * n_states; row++) {
    double m = -HUGE_VAL, z = 0.0;
    for (int v = 0; v < V; v++) t[v] = sigma * hsrl_rng_normal(&r), m = t[v] > m ? t[v] : m;
    for (int v = 0; v < V; v++) z += exp(t[v] - m);
    for (int v = 0; v < V; v++) lp[row * V + v] = (float)(t[v] - m - log(z));
  }
  return lp;
}

/* CPU seconds per state of `passes` passes of trie sampling over the N_STATES states of lp (calls
 * of SID_CALL states) along `path`; ws->stats holds the counts of these passes. */
static double time_sample(sim_sid_decode_ws *ws, sim_sid_sample_path path, const float *lp, int64_t v_n, int passes,
                          const sim_sid_index *idx, const sim_sid_trie *trie, int32_t *items) {
  hsrl_rng rs;
  hsrl_rng_init(&rs, 5, 0);
  memset(&ws->stats, 0, sizeof ws->stats);
  ws->sample_path = path;
  const double t0 = hsrl_time_cpu();
  for (int rep = 0; rep < passes; rep++)
    for (int64_t b0 = 0; b0 < N_STATES; b0 += SID_CALL) {
      sim_sid_logp view;
      memset(&view, 0, sizeof view);
      for (int l = 0; l < L; l++) view.level[l] = lp + (l * N_STATES + b0) * v_n;
      const int64_t nb = N_STATES - b0 < SID_CALL ? N_STATES - b0 : SID_CALL;
      sim_sid_decode_sample(items + b0 * K, NULL, NULL, idx, trie, &view, nb, K, 0.0f, &rs, ws);
    }
  const double t = hsrl_time_cpu() - t0;
  ws->sample_path = SIM_SID_SAMPLE_AUTO;
  return t / ((double)passes * N_STATES);
}

/* --sid FILE: trie sampling alone on a real catalog (see the file comment). */
static int run_sid_file(const char *path, int repeats) {
  sim_sid_file f;
  memset(&f, 0, sizeof f);
  if (sim_sid_file_read(&f, path) != HSRL_OK) {
    fprintf(stderr, "bench_sid_decode: %s\n", hsrl_err_message());
    return 1;
  }
  const int n_lev = f.cb.n_levels;
  const int64_t v_n = f.cb.vocab[0];
  for (int l = 0; l < n_lev; l++)
    if (n_lev != L || f.cb.vocab[l] != v_n) {
      fprintf(stderr, "bench_sid_decode: --sid wants L = %d levels of one vocabulary size\n", L);
      sim_sid_file_free(&f);
      return 1;
    }
  sim_sid_index idx;
  if (sim_sid_index_init(&idx, n_lev, f.cb.vocab, f.n_items, f.tokens, f.live, 0) != HSRL_OK) {
    fprintf(stderr, "bench_sid_decode: %s\n", hsrl_err_message());
    sim_sid_file_free(&f);
    return 1;
  }
  sim_sid_trie trie;
  memset(&trie, 0, sizeof trie);
  sim_sid_trie_build(&trie, &idx);
  printf("%s: %lld live items, %lld distinct SIDs of %lld, largest bucket %lld; L = %d, V = %lld, K = %d, "
         "calls of %d states, one thread, CPU time\n",
         path, (long long)idx.n_live, (long long)idx.n_sids, (long long)(v_n * v_n * v_n), (long long)idx.max_bucket,
         n_lev, (long long)v_n, K, SID_CALL);
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, K, n_lev, v_n, 0);
  int32_t *items = hsrl_malloc((size_t)(N_STATES * K) * sizeof(int32_t));
  /* (sigma, bias): near uniform, spread at random, leaning towards a live item, peaked on it */
  const double cases[][2] = {{0.3, 0.0}, {1.0, 0.0}, {3.0, 0.0}, {1.0, 2.0}, {1.0, 4.0}, {1.0, 8.0}};
  for (size_t si = 0; si < sizeof cases / sizeof cases[0]; si++) {
    float *lp = make_states_v(N_STATES, v_n, cases[si][0], 7 + si, &idx, cases[si][1]);
    /* live mass: the share of the product distribution on live SIDs, i.e. the acceptance of a
     * proposal (before the bucket-size factor) */
    double live = 0.0;
    for (int64_t b = 0; b < N_STATES; b++) {
      for (int64_t j = 0; j < idx.n_sids; j++) {
        uint16_t z[L];
        sim_sid_index_sid(&idx, j, z);
        double s = 0.0;
        for (int l = 0; l < L; l++) s += (double)lp[(l * N_STATES + b) * v_n + z[l]];
        live += exp(s);
      }
    }
    live /= N_STATES;
    const double t = time_sample(&ws, SIM_SID_SAMPLE_AUTO, lp, v_n, repeats, &idx, &trie, items);
    const double n_draws = (double)repeats * N_STATES * K;
    printf("  sigma %3.1f bias %3.1f: live mass %.4f | %6.2f us/state (%5.1f us per call of %d) | %5.1f "
           "proposals/item, %3.0f%% table draws, %lld sweeps\n",
           cases[si][0], cases[si][1], live, 1e6 * t, 1e6 * t * SID_CALL, SID_CALL,
           (double)ws.stats.n_proposals / n_draws, 100.0 * (double)ws.stats.n_table_draws / n_draws,
           (long long)ws.stats.n_sweep_draws);
    /* each path forced (one pass: proposals alone are slow), for the cost ratio of the choice */
    const double t_prop = time_sample(&ws, SIM_SID_SAMPLE_PROPOSE, lp, v_n, 1, &idx, &trie, items);
    const double per_prop = t_prop * N_STATES / (double)ws.stats.n_proposals;
    const long long prop_sweeps = (long long)ws.stats.n_sweep_draws;
    const double t_table = time_sample(&ws, SIM_SID_SAMPLE_TABLE, lp, v_n, 1, &idx, &trie, items);
    const double per_sid = t_table / (double)idx.n_sids;
    printf("            proposals only %7.2f us/state (%.0f ns per proposal, %lld sweeps) | table only %6.2f "
           "us/state (%.2f ns per SID) | ratio %.4f\n",
           1e6 * t_prop, 1e9 * per_prop, prop_sweeps, 1e6 * t_table, 1e9 * per_sid,
           per_sid / per_prop);
    hsrl_free(lp);
  }
  hsrl_free(items);
  sim_sid_decode_ws_free(&ws);
  sim_sid_trie_free(&trie);
  sim_sid_index_free(&idx);
  sim_sid_file_free(&f);
  return 0;
}

static void run_size(int64_t n) {
  hsrl_rng r;
  hsrl_rng_init(&r, 1234, (uint64_t)n);
  uint16_t *tokens = hsrl_calloc((size_t)(n + 1) * L, sizeof(uint16_t));
  for (int64_t j = L; j < (n + 1) * L; j++) tokens[j] = (uint16_t)hsrl_rng_below(&r, V);
  const int64_t vocab[L] = {V, V, V};
  double t0 = hsrl_time_cpu();
  sim_sid_index idx;
  if (sim_sid_index_init(&idx, L, vocab, n, tokens, NULL, 0) != HSRL_OK) {
    fprintf(stderr, "bench_sid_decode: %s\n", hsrl_err_message());
    exit(1);
  }
  double t_index = hsrl_time_cpu() - t0;
  sim_sid_trie trie;
  memset(&trie, 0, sizeof trie);
  t0 = hsrl_time_cpu();
  sim_sid_trie_build(&trie, &idx);
  double t_trie = hsrl_time_cpu() - t0;
  hsrl_free(tokens);
  double mb_index = (double)((n + 1) * (2 * L + 1) + idx.n_sids * 16 + idx.n_live * 4) / 1e6;
  double mb_trie = 0.0;
  for (int d = 0; d < L; d++) mb_trie += (double)(trie.n_nodes[d] * 16 + trie.n_nodes[d + 1] * 2) / 1e6;
  printf("N = %lld: %lld distinct SIDs, %lld colliding items, largest bucket %lld; index %.2f s (%.0f MB), "
         "trie %.2f s (%.0f MB; nodes per level %lld, %lld, %lld)\n",
         (long long)n, (long long)idx.n_sids, (long long)idx.n_colliding_items, (long long)idx.max_bucket, t_index,
         mb_index, t_trie, mb_trie, (long long)trie.n_nodes[1], (long long)trie.n_nodes[2], (long long)trie.n_nodes[3]);
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, K, L, V, 0);
  int32_t *items = hsrl_malloc((size_t)(N_STATES * K) * sizeof(int32_t));
  int32_t *items_bf = hsrl_malloc((size_t)(N_STATES * K) * sizeof(int32_t));
  double *lp_items = hsrl_malloc((size_t)(N_STATES * K) * sizeof(double));
  double *lp_bf = hsrl_malloc((size_t)(N_STATES * K) * sizeof(double));
  const double sigmas[2] = {1.0, 3.0};
  for (int s = 0; s < 2; s++) {
    float *lp = make_states(N_STATES, sigmas[s], 99 + (uint64_t)s);
    sim_sid_logp view = {.level = {lp, lp + N_STATES * V, lp + 2 * N_STATES * V, NULL}};
    memset(&ws.stats, 0, sizeof ws.stats);
    t0 = hsrl_time_cpu();
    sim_sid_decode_topk(items, lp_items, NULL, &idx, &trie, &view, N_STATES, K, &ws);
    double t_trie_topk = hsrl_time_cpu() - t0;
    sim_sid_decode_stats st = ws.stats;
    /* brute force on a subset sized to take about a second */
    int64_t n_bf = (int64_t)(2e7 / (double)n);
    n_bf = n_bf < 5 ? 5 : n_bf > N_STATES ? N_STATES : n_bf;
    t0 = hsrl_time_cpu();
    sim_sid_decode_topk_list(items_bf, lp_bf, NULL, &idx, &view, NULL, 0, n_bf, K, &ws);
    double t_bf = hsrl_time_cpu() - t0;
    if (memcmp(items, items_bf, (size_t)(n_bf * K) * sizeof(int32_t)) ||
        memcmp(lp_items, lp_bf, (size_t)(n_bf * K) * sizeof(double))) {
      fprintf(stderr, "bench_sid_decode: trie top-K differs from brute force at N = %lld\n", (long long)n);
      exit(1);
    }
    memset(&ws.stats, 0, sizeof ws.stats);
    hsrl_rng rs;
    hsrl_rng_init(&rs, 5, 0);
    t0 = hsrl_time_cpu();
    sim_sid_decode_sample(items, NULL, NULL, &idx, &trie, &view, N_STATES, K, 0.0f, &rs, &ws);
    double t_sample = hsrl_time_cpu() - t0;
    double trie_rate = N_STATES / t_trie_topk, bf_rate = (double)n_bf / t_bf;
    printf("  sigma %.0f: top-%d trie %9.0f states/s | brute force %7.1f states/s (%lld states, same slates) | "
           "x%.0f\n",
           sigmas[s], K, trie_rate, bf_rate, (long long)n_bf, trie_rate / bf_rate);
    printf("            trie search: %.0f numbers read/state (K L V = %d), %.0f pops/state, largest heap %lld, "
           "arena %lld, %lld fallbacks\n",
           (double)st.n_touched / N_STATES, K * L * V, (double)st.n_pops / N_STATES, (long long)st.heap_high,
           (long long)st.arena_high, (long long)st.n_heap_fallbacks);
    printf("            sample K = %d along the trie: %9.0f states/s, %.1f proposals/item, %lld exact sweeps\n", K,
           N_STATES / t_sample, (double)ws.stats.n_proposals / (N_STATES * K), (long long)ws.stats.n_sweep_draws);
    hsrl_free(lp);
  }
  hsrl_free(items);
  hsrl_free(items_bf);
  hsrl_free(lp_items);
  hsrl_free(lp_bf);
  sim_sid_decode_ws_free(&ws);
  sim_sid_trie_free(&trie);
  sim_sid_index_free(&idx);
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--sid") == 0) {
    int repeats = argc > 3 ? atoi(argv[3]) : 20;
    if (argc > 4 || repeats < 1) {
      fprintf(stderr, "usage: bench_sid_decode --sid FILE [REPEATS]\n");
      return 2;
    }
    return run_sid_file(argv[2], repeats);
  }
  int64_t sizes[8] = {1000000, 10000000};
  int n_sizes = 2;
  if (argc > 1) {
    n_sizes = 0;
    for (int i = 1; i < argc && n_sizes < 8; i++) {
      char *end;
      long long v = strtoll(argv[i], &end, 10);
      if (*end || v < 1 || v > 500000000) {
        fprintf(stderr, "usage: bench_sid_decode [N ...]   (catalog sizes, 1..5e8)\n");
        return 2;
      }
      sizes[n_sizes++] = v;
    }
  }
  printf("Semantic-ID decoding, L = %d, V = %d, K = %d, random SIDs; one thread, CPU time\n", L, V, K);
  for (int i = 0; i < n_sizes; i++) run_size(sizes[i]);
  return 0;
}
