/* test_sim_kmeans.c: the k-means of the Semantic IDs (sim_kmeans.h): nearest centre against a
 * naive exact argmin (ties, blocks, badly conditioned data), separable clusters found, balanced
 * capacities respected (sizes reset every pass, unlike the reference), empty clusters re-seeded,
 * determinism, and the returned assignment consistent with the returned centres. */
#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "sim/sim_kmeans.h"
#include "tests/test_harness.h"

/* n points in `k_true` Gaussian blobs (dim), blob b around a centre of scale `spread`, noise std
 * `noise`; label (n) gets the blob. sizes[b] points in blob b when sizes != NULL, else round robin. */
static void make_blobs(float *x, int32_t *label, int64_t n, int64_t dim, int64_t k_true, const int64_t *sizes,
                       double spread, double noise, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  float *mu = hsrl_malloc((size_t)(k_true * dim) * sizeof *mu);
  for (int64_t i = 0; i < k_true * dim; i++) mu[i] = (float)(spread * hsrl_rng_normal(&r));
  int64_t b = 0, left = sizes ? sizes[0] : 0;
  for (int64_t i = 0; i < n; i++) {
    if (sizes) {
      while (left == 0) left = sizes[++b];
      left--;
    } else {
      b = i % k_true;
    }
    label[i] = (int32_t)b;
    for (int64_t d = 0; d < dim; d++) x[i * dim + d] = mu[b * dim + d] + (float)(noise * hsrl_rng_normal(&r));
  }
  hsrl_free(mu);
}

/* Naive exact nearest: double distances, ties -> lowest index. */
static int32_t naive_nearest(const float *x, const float *c, int64_t k, int64_t dim) {
  int32_t best = 0;
  double bd = -1.0;
  for (int64_t j = 0; j < k; j++) {
    double d = sim_kmeans_dist2(x, c + j * dim, dim);
    if (bd < 0.0 || d < bd) {
      bd = d;
      best = (int32_t)j;
    }
  }
  return best;
}

/* Every true blob maps to exactly one found cluster and vice versa (a perfect clustering). */
static int clustering_is_perfect(const int32_t *label, const int32_t *assign, int64_t n, int64_t k) {
  int32_t *map = hsrl_malloc((size_t)k * sizeof *map), *inv = hsrl_malloc((size_t)k * sizeof *inv);
  for (int64_t j = 0; j < k; j++) map[j] = inv[j] = -1;
  int ok = 1;
  for (int64_t i = 0; i < n && ok; i++) {
    int32_t t = label[i], a = assign[i];
    if (map[t] < 0 && inv[a] < 0) {
      map[t] = a;
      inv[a] = t;
    }
    ok = map[t] == a && inv[a] == t;
  }
  hsrl_free(map);
  hsrl_free(inv);
  return ok;
}

static void test_nearest_matches_naive_exact(void) {
  const int64_t n = 2 * SIM_KMEANS_BLOCK + 37, dim = 13, k = 41;
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x), *c = hsrl_malloc((size_t)(k * dim) * sizeof *c);
  float *cn = hsrl_malloc((size_t)k * sizeof *cn), *d2 = hsrl_malloc((size_t)n * sizeof *d2);
  float *scratch = hsrl_malloc((size_t)sim_kmeans_nearest_scratch_floats(k, n) * sizeof *scratch);
  int32_t *a = hsrl_malloc((size_t)n * sizeof *a), one;
  for (int round = 0; round < 2; round++) {
    /* round 1: far from the origin with tiny spreads, where |x|^2 - 2x.c + |c|^2 cancels badly in
     * float and only the exact re-scoring gets the order right */
    float offset = round ? 1000.0f : 0.0f, scale = round ? 0.01f : 1.0f;
    test_fill_uniform(x, n * dim, -scale, scale, 11 + (uint64_t)round);
    test_fill_uniform(c, k * dim, -scale, scale, 12 + (uint64_t)round);
    for (int64_t i = 0; i < n * dim; i++) x[i] += offset;
    for (int64_t i = 0; i < k * dim; i++) c[i] += offset;
    memcpy(c + 7 * dim, c + 3 * dim, (size_t)dim * sizeof *c); /* a duplicate centre: 3 wins ties */
    memcpy(x + 5 * dim, c + 3 * dim, (size_t)dim * sizeof *c); /* a point exactly on it */
    sim_kmeans_center_norms(cn, c, k, dim);
    int64_t before = hsrl_alloc_count();
    sim_kmeans_nearest(a, d2, x, n, dim, c, cn, k, scratch);
    TEST_ASSERT(hsrl_alloc_count() == before);
    TEST_ASSERT(a[5] == 3 && d2[5] == 0.0f);
    for (int64_t i = 0; i < n; i++) {
      int32_t want = naive_nearest(x + i * dim, c, k, dim);
      TEST_ASSERTF(a[i] == want, "round %d row %lld: %d, naive %d", round, (long long)i, a[i], want);
      TEST_ASSERT(a[i] != 7);
      TEST_NEAR(d2[i], sim_kmeans_dist2(x + i * dim, c + (int64_t)want * dim, dim), 1e-6 * (1.0 + (double)d2[i]));
      if (i % 97 == 0) { /* one row alone (a block of 1) gives the same answer */
        sim_kmeans_nearest(&one, NULL, x + i * dim, 1, dim, c, cn, k, scratch);
        TEST_ASSERT(one == a[i]);
      }
    }
  }
  hsrl_free(x); hsrl_free(c); hsrl_free(cn); hsrl_free(d2); hsrl_free(scratch); hsrl_free(a);
}

static void test_separable_clusters_found(void) {
  const int64_t n = 1201, dim = 7, k = 6;
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x), *c = hsrl_malloc((size_t)(k * dim) * sizeof *c);
  int32_t *label = hsrl_malloc((size_t)n * sizeof *label), *a = hsrl_malloc((size_t)n * sizeof *a);
  make_blobs(x, label, n, dim, k, NULL, 10.0, 0.3, 5);
  for (int variant = 0; variant < 3; variant++) {
    sim_kmeans_config cfg;
    sim_kmeans_config_default(&cfg, k);
    cfg.seed = 100 + (uint64_t)variant;
    if (variant == 1) cfg.sample = 150; /* seeding and warm-up on a sample, then full passes */
    if (variant == 2) cfg.balanced = 1; /* equal blobs: the balanced solution is the same */
    sim_kmeans_report rep;
    sim_kmeans_fit(c, a, x, n, dim, &cfg, &rep);
    TEST_ASSERTF(clustering_is_perfect(label, a, n, k), "variant %d: blobs not recovered", variant);
    TEST_ASSERT(rep.converged && rep.n_empty == 0);
    TEST_ASSERT(variant != 1 || rep.warm_iters >= 1);
    TEST_ASSERT(variant == 1 || rep.warm_iters == 0);
    /* the centres are the blob means: inertia close to dim * noise^2 */
    TEST_NEAR(rep.inertia, (double)dim * 0.09, 0.02);
    double mean_d2 = 0.0;
    for (int64_t i = 0; i < n; i++) mean_d2 += sim_kmeans_dist2(x + i * dim, c + (int64_t)a[i] * dim, dim);
    TEST_NEAR(mean_d2 / (double)n, rep.inertia, 1e-6);
  }
  hsrl_free(x); hsrl_free(c); hsrl_free(label); hsrl_free(a);
}

/* Plain mode: the returned assignment is the nearest-centre assignment of the returned centres,
 * also when max_iter stops the fit early, and more passes never end worse than one. */
static void test_assignment_consistent_with_centres(void) {
  const int64_t n = 900, dim = 5, k = 17;
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x), *c = hsrl_malloc((size_t)(k * dim) * sizeof *c);
  int32_t *a = hsrl_malloc((size_t)n * sizeof *a);
  test_fill_uniform(x, n * dim, -1.0f, 1.0f, 21);
  double inertia[2];
  for (int v = 0; v < 2; v++) {
    sim_kmeans_config cfg;
    sim_kmeans_config_default(&cfg, k);
    cfg.seed = 3;
    cfg.max_iter = v ? 50 : 1;
    cfg.tol = 0.0;
    sim_kmeans_report rep;
    sim_kmeans_fit(c, a, x, n, dim, &cfg, &rep);
    TEST_ASSERT(v != 0 || (rep.iters == 1 && !rep.converged));
    for (int64_t i = 0; i < n; i++) TEST_ASSERT(a[i] == naive_nearest(x + i * dim, c, k, dim));
    inertia[v] = rep.inertia;
  }
  TEST_ASSERTF(inertia[1] < inertia[0], "50 passes %g, 1 pass %g", inertia[1], inertia[0]);
  hsrl_free(x); hsrl_free(c); hsrl_free(a);
}

static void test_balanced_respects_capacities(void) {
  const int64_t dim = 6, k = 7;
  /* very unequal blobs: one holds 80% of the points */
  int64_t sizes[2][8] = {{560, 40, 40, 20, 20, 10, 10, 0}, {800, 60, 60, 30, 30, 10, 10, 0}};
  int64_t ns[2] = {700, 1000};
  for (int v = 0; v < 2; v++) {
    int64_t n = ns[v], cap = (n + k - 1) / k;
    float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x), *c = hsrl_malloc((size_t)(k * dim) * sizeof *c);
    int32_t *label = hsrl_malloc((size_t)n * sizeof *label), *a = hsrl_malloc((size_t)n * sizeof *a);
    int64_t size[7];
    make_blobs(x, label, n, dim, k, sizes[v], 5.0, 1.0, 40 + (uint64_t)v);
    for (int balanced = 0; balanced < 2; balanced++) {
      sim_kmeans_config cfg;
      sim_kmeans_config_default(&cfg, k);
      cfg.seed = 9;
      cfg.balanced = balanced;
      sim_kmeans_report rep;
      sim_kmeans_fit(c, a, x, n, dim, &cfg, &rep);
      memset(size, 0, sizeof size);
      for (int64_t i = 0; i < n; i++) size[a[i]]++;
      int64_t mx = 0;
      for (int64_t j = 0; j < k; j++) mx = size[j] > mx ? size[j] : mx;
      TEST_ASSERT(mx == rep.max_size);
      if (!balanced) {
        TEST_ASSERTF(mx > cap, "plain k-means already balanced (%lld <= %lld): the test shows nothing",
                     (long long)mx, (long long)cap);
      } else {
        TEST_ASSERTF(mx <= cap, "n %lld: a cluster of %lld > capacity %lld", (long long)n, (long long)mx,
                     (long long)cap);
        /* n = 700 = 7 * 100: every cluster exactly full (the reference's pass leaves cluster 0 with
         * the last points in data order and never rebalances) */
        if (n % k == 0)
          for (int64_t j = 0; j < k; j++) TEST_ASSERT(size[j] == cap);
        /* no point sits in a cluster worse than its nearest while that nearest had room to spare */
        for (int64_t i = 0; i < n; i++) {
          int32_t near = naive_nearest(x + i * dim, c, k, dim);
          TEST_ASSERT(near == a[i] || size[near] == cap);
        }
      }
    }
    hsrl_free(x); hsrl_free(c); hsrl_free(label); hsrl_free(a);
  }
}

static void test_empty_clusters_reseeded(void) {
  const int64_t dim = 3, per = 50;
  /* 4 distinct points, each repeated 50 times, one far away */
  const float pts[4][3] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {30, 30, 30}};
  int64_t n = 4 * per;
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x), *c = hsrl_malloc((size_t)(6 * dim) * sizeof *c);
  int32_t *a = hsrl_malloc((size_t)n * sizeof *a);
  for (int64_t i = 0; i < n; i++) memcpy(x + i * dim, pts[i % 4], sizeof pts[0]);
  for (int64_t k = 4; k <= 6; k++) {
    sim_kmeans_config cfg;
    sim_kmeans_config_default(&cfg, k);
    cfg.seed = 77;
    sim_kmeans_report rep;
    sim_kmeans_fit(c, a, x, n, dim, &cfg, &rep);
    TEST_NEAR(rep.inertia, 0.0, 1e-12);        /* every distinct point has its own centre */
    TEST_ASSERT(rep.n_empty == k - 4);          /* the rest cannot be filled */
    TEST_ASSERT(rep.converged);
  }
  /* seeding on a one-point sample puts all k centres on one point: the full passes start with
   * k - 1 empty clusters, which must be re-seeded until every distinct point has its centre */
  sim_kmeans_config cfg;
  sim_kmeans_config_default(&cfg, 4);
  cfg.seed = 1;
  cfg.sample = 1;
  sim_kmeans_report rep;
  sim_kmeans_fit(c, a, x, n, dim, &cfg, &rep);
  TEST_ASSERTF(rep.n_reseeded >= 3, "%lld re-seeded", (long long)rep.n_reseeded);
  TEST_ASSERT(rep.n_empty == 0);
  TEST_NEAR(rep.inertia, 0.0, 1e-12);
  hsrl_free(x); hsrl_free(c); hsrl_free(a);
}

static void test_deterministic(void) {
  const int64_t n = 3000, dim = 9, k = 32;
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x);
  float *c1 = hsrl_malloc((size_t)(k * dim) * sizeof *c1), *c2 = hsrl_malloc((size_t)(k * dim) * sizeof *c2);
  int32_t *a1 = hsrl_malloc((size_t)n * sizeof *a1), *a2 = hsrl_malloc((size_t)n * sizeof *a2);
  test_fill_uniform(x, n * dim, -1.0f, 1.0f, 31);
  for (int balanced = 0; balanced < 2; balanced++) {
    sim_kmeans_config cfg;
    sim_kmeans_config_default(&cfg, k);
    cfg.seed = 1234;
    cfg.sample = 700;
    cfg.balanced = balanced;
    sim_kmeans_fit(c1, a1, x, n, dim, &cfg, NULL);
    sim_kmeans_fit(c2, a2, x, n, dim, &cfg, NULL);
    TEST_ASSERT(memcmp(c1, c2, (size_t)(k * dim) * sizeof *c1) == 0);
    TEST_ASSERT(memcmp(a1, a2, (size_t)n * sizeof *a1) == 0);
    cfg.seed = 1235;
    sim_kmeans_fit(c2, a2, x, n, dim, &cfg, NULL);
    TEST_ASSERT(memcmp(c1, c2, (size_t)(k * dim) * sizeof *c1) != 0);
  }
  hsrl_free(x); hsrl_free(c1); hsrl_free(c2); hsrl_free(a1); hsrl_free(a2);
}

int main(void) {
  TEST_RUN(test_nearest_matches_naive_exact);
  TEST_RUN(test_separable_clusters_found);
  TEST_RUN(test_assignment_consistent_with_centres);
  TEST_RUN(test_balanced_respects_capacities);
  TEST_RUN(test_empty_clusters_reseeded);
  TEST_RUN(test_deterministic);
  return test_summary();
}
