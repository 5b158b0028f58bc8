/* test_sim_sid_trie.c: the Semantic-ID item index and prefix tree (sim_sid_index.h, sim_sid_trie.h;
 * method.md §5): buckets hold every live item once with collisions counted, the tie rule orders
 * buckets, bad tokens and bad churn lists are rejected without changing the index, an updated
 * index equals one built from scratch, and the trie answers every prefix query exactly (compared
 * with a scan over all items). */
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "sim/sim_sid_index.h"
#include "sim/sim_sid_trie.h"
#include "tests/test_harness.h"

/* A random catalog: tokens (N+1, L) drawn from the first `used` tokens of each level (few used
 * tokens force collisions), live with probability p_live. */
typedef struct catalog {
  int L;
  int64_t vocab[SIM_SID_MAX_LEVELS];
  int64_t n;
  uint16_t *tokens;
  uint8_t *live;
} catalog;

static void catalog_random(catalog *c, int L, const int64_t *vocab, const int64_t *used, int64_t n, double p_live,
                           uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  c->L = L, c->n = n;
  for (int l = 0; l < L; l++) c->vocab[l] = vocab[l];
  c->tokens = hsrl_calloc((size_t)(n + 1) * (size_t)L, sizeof(uint16_t));
  c->live = hsrl_calloc((size_t)(n + 1), 1);
  for (int64_t i = 1; i <= n; i++) {
    for (int l = 0; l < L; l++) c->tokens[i * L + l] = (uint16_t)hsrl_rng_below(&r, (uint64_t)used[l]);
    c->live[i] = hsrl_rng_uniform_double(&r) < p_live;
  }
}

static void catalog_free(catalog *c) {
  hsrl_free(c->tokens);
  hsrl_free(c->live);
}

static int same_sid(const uint16_t *a, const uint16_t *b, int L) { return !memcmp(a, b, (size_t)L * sizeof(uint16_t)); }

/* Checks an index against its tables by brute force: TEST_ASSERT returns, so this sets *ok. */
static void check_index(const sim_sid_index *idx, const catalog *c, int *ok) {
  *ok = 0;
  const int L = c->L;
  int64_t n_live = 0;
  for (int64_t i = 1; i <= c->n; i++) n_live += c->live[i];
  TEST_ASSERT(idx->n_live == n_live && idx->n_items == c->n);
  TEST_ASSERT(idx->bucket_start[0] == 0 && idx->bucket_start[idx->n_sids] == n_live);
  int64_t *seen = hsrl_calloc((size_t)(c->n + 1), sizeof(int64_t));
  int64_t n_coll_sids = 0, n_coll_items = 0, max_bucket = 0;
  int fail = 0;
  for (int64_t j = 0; j < idx->n_sids && !fail; j++) {
    uint16_t sid[SIM_SID_MAX_LEVELS];
    sim_sid_index_sid(idx, j, sid);
    if (j > 0 && idx->sid_key[j] <= idx->sid_key[j - 1]) fail = 1;       /* ascending and distinct */
    if (sim_sid_index_find(idx, sid) != j) fail = 2;
    int64_t m = idx->bucket_start[j + 1] - idx->bucket_start[j];
    if (m < 1) fail = 3;
    for (int64_t p = idx->bucket_start[j]; p < idx->bucket_start[j + 1]; p++) {
      int32_t item = idx->bucket_items[p];
      if (item < 1 || item > c->n || !c->live[item] || !same_sid(c->tokens + item * L, sid, L)) fail = 4;
      else seen[item]++;
      if (p > idx->bucket_start[j] &&
          sim_sid_index_tie_key(idx, idx->bucket_items[p - 1]) >= sim_sid_index_tie_key(idx, item))
        fail = 5; /* tie order inside the bucket */
    }
    /* brute force: the live items with this SID */
    int64_t naive = 0;
    for (int64_t i = 1; i <= c->n; i++) naive += c->live[i] && same_sid(c->tokens + i * L, sid, L);
    if (naive != m) fail = 6;
    if (m > 1) n_coll_sids++, n_coll_items += m;
    if (m > max_bucket) max_bucket = m;
  }
  for (int64_t i = 1; i <= c->n && !fail; i++)
    if (seen[i] != c->live[i]) fail = 7;
  hsrl_free(seen);
  TEST_ASSERTF(!fail, "index inconsistent (check %d)", fail);
  TEST_ASSERT(idx->n_colliding_sids == n_coll_sids && idx->n_colliding_items == n_coll_items &&
              idx->max_bucket == max_bucket);
  *ok = 1;
}

static void test_index_buckets_and_collisions(void) {
  const int64_t vocab[3] = {8, 8, 8}, used[3] = {3, 4, 2}; /* 24 SIDs for 300 items: many collisions */
  for (int rep = 0; rep < 4; rep++) {
    catalog c;
    catalog_random(&c, 3, vocab, used, 300, rep == 3 ? 1.0 : 0.8, 11 + (uint64_t)rep);
    sim_sid_index idx;
    TEST_ASSERT(sim_sid_index_init(&idx, 3, vocab, c.n, c.tokens, c.live, rep == 2 ? 77 : 0) == HSRL_OK);
    int ok;
    check_index(&idx, &c, &ok);
    TEST_ASSERT(ok);
    TEST_ASSERT(idx.n_colliding_sids > 0 && idx.max_bucket > 1);
    /* absent SIDs: tokens outside the used range */
    uint16_t absent[3] = {5, 0, 0};
    const int32_t *items;
    TEST_ASSERT(sim_sid_index_find(&idx, absent) == -1 && sim_sid_index_items(&idx, absent, &items) == 0 && !items);
    /* a present SID's items, through the lookup */
    uint16_t sid[3];
    sim_sid_index_sid(&idx, 0, sid);
    int64_t m = sim_sid_index_items(&idx, sid, &items);
    TEST_ASSERT(m == idx.bucket_start[1] && items == idx.bucket_items);
    sim_sid_index_free(&idx);
    catalog_free(&c);
  }
}

static void test_index_tie_rule(void) {
  const int64_t vocab[2] = {2, 2}, used[2] = {1, 2}; /* 2 SIDs: big buckets */
  catalog c;
  catalog_random(&c, 2, vocab, used, 200, 1.0, 5);
  sim_sid_index a, b;
  TEST_ASSERT(sim_sid_index_init(&a, 2, vocab, c.n, c.tokens, NULL, 0) == HSRL_OK);
  TEST_ASSERT(sim_sid_index_init(&b, 2, vocab, c.n, c.tokens, NULL, 12345) == HSRL_OK);
  /* seed 0: lowest id first */
  for (int64_t j = 0; j < a.n_sids; j++)
    for (int64_t p = a.bucket_start[j] + 1; p < a.bucket_start[j + 1]; p++)
      TEST_ASSERT(a.bucket_items[p - 1] < a.bucket_items[p]);
  /* seeded: a different order of the same items, reproducible */
  TEST_ASSERT(a.n_sids == b.n_sids && a.bucket_start[1] == b.bucket_start[1]);
  int64_t n_moved = 0;
  for (int64_t p = 0; p < a.n_live; p++) n_moved += a.bucket_items[p] != b.bucket_items[p];
  TEST_ASSERTF(n_moved > a.n_live / 2, "seeded order moved only %lld of %lld", (long long)n_moved, (long long)a.n_live);
  sim_sid_index b2;
  TEST_ASSERT(sim_sid_index_init(&b2, 2, vocab, c.n, c.tokens, NULL, 12345) == HSRL_OK);
  TEST_ASSERT(!memcmp(b.bucket_items, b2.bucket_items, (size_t)b.n_live * sizeof(int32_t)));
  /* tie keys are unique */
  for (int64_t i = 2; i <= c.n; i++) TEST_ASSERT(sim_sid_index_tie_key(&b, i) != sim_sid_index_tie_key(&b, i - 1));
  int ok;
  check_index(&b, &c, &ok);
  TEST_ASSERT(ok);
  sim_sid_index_free(&a);
  sim_sid_index_free(&b);
  sim_sid_index_free(&b2);
  catalog_free(&c);
}

static void test_index_rejects_bad_input(void) {
  const int64_t vocab[2] = {4, 3}, used[2] = {4, 3};
  catalog c;
  catalog_random(&c, 2, vocab, used, 20, 1.0, 9);
  c.tokens[7 * 2 + 1] = 3; /* == V_1 */
  sim_sid_index idx;
  TEST_ASSERT(sim_sid_index_init(&idx, 2, vocab, c.n, c.tokens, NULL, 0) == HSRL_E_INPUT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "item 7") != NULL, "message: %s", hsrl_err_message());
  c.live[7] = 0; /* a dead item's tokens are not checked */
  TEST_ASSERT(sim_sid_index_init(&idx, 2, vocab, c.n, c.tokens, c.live, 0) == HSRL_OK);
  uint64_t gen = idx.generation;
  const uint16_t tok_ok[2] = {1, 1}, tok_bad[2] = {4, 0};
  const int32_t live_id = 3, dead_id = 7, new_id = 25;
  TEST_ASSERT(sim_sid_index_update(&idx, &live_id, tok_ok, 1, NULL, 0) == HSRL_E_INPUT);  /* already live */
  TEST_ASSERT(sim_sid_index_update(&idx, &new_id, tok_bad, 1, NULL, 0) == HSRL_E_INPUT);  /* token >= V */
  TEST_ASSERT(sim_sid_index_update(&idx, NULL, NULL, 0, &dead_id, 1) == HSRL_E_INPUT);    /* not live */
  const int32_t twice[2] = {25, 25};
  const uint16_t tok2[4] = {1, 1, 1, 1};
  TEST_ASSERT(sim_sid_index_update(&idx, twice, tok2, 2, NULL, 0) == HSRL_E_INPUT);
  TEST_ASSERT(sim_sid_index_update(&idx, &dead_id, tok_ok, 1, &dead_id, 1) == HSRL_E_INPUT); /* both */
  const int32_t zero = 0;
  TEST_ASSERT(sim_sid_index_update(&idx, &zero, tok_ok, 1, NULL, 0) == HSRL_E_INPUT);
  TEST_ASSERT(idx.generation == gen && idx.n_items == 20 && idx.n_live == 19); /* unchanged */
  int ok;
  check_index(&idx, &c, &ok);
  TEST_ASSERT(ok);
  sim_sid_index_free(&idx);
  catalog_free(&c);
}

/* Naive prefix query: the tokens at level len continuing prefix to a live item (mask), and the
 * number of live items with that prefix. */
static int64_t naive_continuations(const catalog *c, const uint16_t *prefix, int len, uint8_t *mask, int64_t *n_below) {
  memset(mask, 0, (size_t)(len < c->L ? c->vocab[len] : 1));
  int64_t n = 0;
  *n_below = 0;
  for (int64_t i = 1; i <= c->n; i++) {
    if (!c->live[i] || memcmp(c->tokens + i * c->L, prefix, (size_t)len * sizeof(uint16_t))) continue;
    (*n_below)++;
    if (len < c->L && !mask[c->tokens[i * c->L + len]]) mask[c->tokens[i * c->L + len]] = 1, n++;
  }
  return n;
}

/* Every prefix (all of them when the space is small, else the existing ones plus random ones). */
static void check_trie(const sim_sid_trie *t, const catalog *c, uint64_t seed, int *ok) {
  *ok = 0;
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 1);
  uint8_t mask_naive[256], mask_trie[256];
  for (int len = 0; len <= c->L; len++) {
    int64_t space = 1;
    for (int l = 0; l < len; l++) space *= c->vocab[l];
    int64_t n_queries = space <= 4096 ? space : 4096;
    for (int64_t q = 0; q < n_queries + c->n; q++) {
      uint16_t prefix[SIM_SID_MAX_LEVELS] = {0};
      if (q < n_queries && space <= 4096) { /* enumerate */
        int64_t x = q;
        for (int l = len - 1; l >= 0; l--) prefix[l] = (uint16_t)(x % c->vocab[l]), x /= c->vocab[l];
      } else if (q < n_queries) {
        for (int l = 0; l < len; l++) prefix[l] = (uint16_t)hsrl_rng_below(&r, (uint64_t)c->vocab[l]);
      } else { /* the prefix of an item (live or not) */
        memcpy(prefix, c->tokens + (q - n_queries + 1) * c->L, (size_t)len * sizeof(uint16_t));
      }
      int64_t n_below;
      int64_t n_naive = naive_continuations(c, prefix, len, mask_naive, &n_below);
      int64_t node = sim_sid_trie_find(t, prefix, len);
      TEST_ASSERTF((node >= 0) == (n_below > 0), "len %d: node %lld, %lld items below", len, (long long)node,
                   (long long)n_below);
      if (node >= 0) TEST_ASSERT(sim_sid_trie_items_below(t, len, node) == n_below);
      if (len == c->L) continue;
      const uint16_t *tok;
      int64_t n = sim_sid_trie_continuations(t, prefix, len, &tok);
      TEST_ASSERTF(n == n_naive, "len %d: %lld continuations, naive %lld", len, (long long)n, (long long)n_naive);
      for (int64_t j = 0; j < n; j++) {
        TEST_ASSERT(mask_naive[tok[j]]);
        if (j > 0) TEST_ASSERT(tok[j] > tok[j - 1]);
      }
      TEST_ASSERT(sim_sid_trie_mask(t, prefix, len, mask_trie) == n_naive);
      TEST_ASSERT(!memcmp(mask_trie, mask_naive, (size_t)c->vocab[len]));
    }
  }
  *ok = 1;
}

static void test_trie_prefix_queries_exact(void) {
  struct {
    int L;
    int64_t vocab[4], used[4], n;
    double p_live;
  } cases[] = {
      {3, {5, 4, 6}, {5, 4, 6}, 120, 0.7},          /* sparse: many prefixes absent */
      {3, {16, 16, 16}, {16, 16, 16}, 3000, 0.9},
      {2, {3, 3}, {3, 3}, 400, 1.0},                /* complete */
      {4, {4, 3, 5, 2}, {4, 2, 5, 2}, 200, 0.5},    /* level 1 uses 2 of 3 tokens */
      {1, {37, 0, 0, 0}, {30, 0, 0, 0}, 25, 0.8},
      {3, {256, 256, 256}, {256, 256, 256}, 5000, 1.0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    catalog c;
    catalog_random(&c, cases[k].L, cases[k].vocab, cases[k].used, cases[k].n, cases[k].p_live, 100 + k);
    sim_sid_index idx;
    TEST_ASSERT(sim_sid_index_init(&idx, c.L, c.vocab, c.n, c.tokens, c.live, 0) == HSRL_OK);
    sim_sid_trie t;
    memset(&t, 0, sizeof t);
    sim_sid_trie_build(&t, &idx);
    TEST_ASSERT(t.n_nodes[0] == 1 && t.n_nodes[c.L] == idx.n_sids && t.generation == idx.generation);
    int ok;
    if (c.vocab[0] <= 64) {
      check_trie(&t, &c, 7 + k, &ok);
      TEST_ASSERTF(ok, "case %zu", k);
    }
    /* children sorted, counts consistent */
    for (int d = 0; d < c.L; d++) {
      int64_t sum = 0;
      for (int64_t u = 0; u < t.n_nodes[d]; u++) {
        for (int64_t ch = t.child_start[d][u]; ch < t.child_start[d][u + 1]; ch++) {
          sum += sim_sid_trie_items_below(&t, d + 1, ch);
          if (ch > t.child_start[d][u]) TEST_ASSERT(t.token[d][ch] > t.token[d][ch - 1]);
          TEST_ASSERT(sim_sid_trie_child(&t, d, u, t.token[d][ch]) == ch);
        }
      }
      TEST_ASSERT(sum == idx.n_live);
    }
    sim_sid_trie_free(&t);
    sim_sid_index_free(&idx);
    catalog_free(&c);
  }
}

static void test_trie_empty_and_single(void) {
  const int64_t vocab[3] = {4, 4, 4};
  uint16_t tokens[3 * 3] = {0, 0, 0, 1, 2, 3, 3, 3, 3};
  uint8_t live[3] = {0, 0, 0};
  sim_sid_index idx;
  TEST_ASSERT(sim_sid_index_init(&idx, 3, vocab, 2, tokens, live, 0) == HSRL_OK);
  sim_sid_trie t;
  memset(&t, 0, sizeof t);
  sim_sid_trie_build(&t, &idx);
  const uint16_t *tok;
  TEST_ASSERT(idx.n_sids == 0 && t.n_nodes[1] == 0);
  TEST_ASSERT(sim_sid_trie_continuations(&t, tokens, 0, &tok) == 0);
  TEST_ASSERT(sim_sid_trie_find(&t, tokens + 3, 2) == -1);
  /* one item */
  const int32_t add = 1;
  TEST_ASSERT(sim_sid_index_update(&idx, &add, tokens + 3, 1, NULL, 0) == HSRL_OK);
  sim_sid_trie_build(&t, &idx);
  TEST_ASSERT(t.n_nodes[1] == 1 && t.n_nodes[2] == 1 && t.n_nodes[3] == 1);
  for (int len = 0; len < 3; len++) {
    TEST_ASSERT(sim_sid_trie_continuations(&t, tokens + 3, len, &tok) == 1 && tok[0] == tokens[3 + len]);
  }
  TEST_ASSERT(sim_sid_trie_find(&t, tokens + 3, 3) == 0);
  TEST_ASSERT(sim_sid_trie_find(&t, tokens + 6, 1) == -1);
  sim_sid_trie_free(&t);
  sim_sid_index_free(&idx);
}

/* 10% of items added (new ids and revived ids) and 10% deleted: the updated index and its trie
 * equal ones built from scratch from the final tables. */
static void test_update_equals_rebuild(void) {
  const int64_t vocab[3] = {6, 5, 4}, used[3] = {6, 5, 4};
  catalog c;
  catalog_random(&c, 3, vocab, used, 500, 0.9, 21);
  sim_sid_index idx;
  TEST_ASSERT(sim_sid_index_init(&idx, 3, vocab, c.n, c.tokens, c.live, 99) == HSRL_OK);
  hsrl_rng r;
  hsrl_rng_init(&r, 3, 0);
  const int64_t n_final = 550;
  int32_t add[60], del[50];
  uint16_t add_tok[60 * 3];
  int64_t n_add = 0, n_del = 0;
  uint8_t *used_id = hsrl_calloc(n_final + 1, 1);
  for (int64_t i = c.n + 1; i <= n_final; i++) add[n_add++] = (int32_t)i, used_id[i] = 1; /* new ids */
  while (n_add < 60) { /* revive dead ids */
    int64_t i = 1 + (int64_t)hsrl_rng_below(&r, (uint64_t)c.n);
    if (!c.live[i] && !used_id[i]) add[n_add++] = (int32_t)i, used_id[i] = 1;
    if (n_add == 60) break;
  }
  while (n_del < 50) {
    int64_t i = 1 + (int64_t)hsrl_rng_below(&r, (uint64_t)c.n);
    if (c.live[i] && !used_id[i]) del[n_del++] = (int32_t)i, used_id[i] = 1;
  }
  for (int64_t j = 0; j < n_add * 3; j++) add_tok[j] = (uint16_t)hsrl_rng_below(&r, 4);
  uint64_t gen = idx.generation;
  TEST_ASSERT(sim_sid_index_update(&idx, add, add_tok, n_add, del, n_del) == HSRL_OK);
  TEST_ASSERT(idx.generation != gen && idx.n_items == n_final);
  /* the final tables */
  catalog f = c;
  f.n = n_final;
  f.tokens = hsrl_calloc((size_t)(n_final + 1) * 3, sizeof(uint16_t));
  f.live = hsrl_calloc((size_t)(n_final + 1), 1);
  memcpy(f.tokens, c.tokens, (size_t)(c.n + 1) * 3 * sizeof(uint16_t));
  memcpy(f.live, c.live, (size_t)(c.n + 1));
  for (int64_t j = 0; j < n_del; j++) f.live[del[j]] = 0;
  for (int64_t j = 0; j < n_add; j++) memcpy(f.tokens + add[j] * 3, add_tok + j * 3, 6), f.live[add[j]] = 1;
  int ok;
  check_index(&idx, &f, &ok);
  TEST_ASSERT(ok);
  sim_sid_index fresh;
  TEST_ASSERT(sim_sid_index_init(&fresh, 3, vocab, f.n, f.tokens, f.live, 99) == HSRL_OK);
  TEST_ASSERT(fresh.n_sids == idx.n_sids && fresh.n_live == idx.n_live && fresh.generation != idx.generation);
  TEST_ASSERT(!memcmp(fresh.sid_key, idx.sid_key, (size_t)idx.n_sids * 8));
  TEST_ASSERT(!memcmp(fresh.bucket_start, idx.bucket_start, (size_t)(idx.n_sids + 1) * 8));
  TEST_ASSERT(!memcmp(fresh.bucket_items, idx.bucket_items, (size_t)idx.n_live * 4));
  TEST_ASSERT(!memcmp(fresh.live, idx.live, (size_t)n_final + 1));
  sim_sid_trie t1, t2;
  memset(&t1, 0, sizeof t1);
  memset(&t2, 0, sizeof t2);
  sim_sid_trie_build(&t1, &idx);
  sim_sid_trie_build(&t2, &fresh);
  for (int d = 0; d <= 3; d++) TEST_ASSERT(t1.n_nodes[d] == t2.n_nodes[d]);
  for (int d = 0; d < 3; d++) {
    TEST_ASSERT(!memcmp(t1.child_start[d], t2.child_start[d], (size_t)(t1.n_nodes[d] + 1) * 8));
    TEST_ASSERT(!memcmp(t1.token[d], t2.token[d], (size_t)t1.n_nodes[d + 1] * 2));
  }
  check_trie(&t1, &f, 5, &ok);
  TEST_ASSERT(ok);
  sim_sid_trie_free(&t1);
  sim_sid_trie_free(&t2);
  sim_sid_index_free(&fresh);
  sim_sid_index_free(&idx);
  hsrl_free(used_id);
  catalog_free(&f);
  catalog_free(&c);
}

static void test_report_names_collisions(void) {
  const int64_t vocab[2] = {2, 2};
  uint16_t tokens[6 * 2] = {0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1};
  sim_sid_index idx;
  TEST_ASSERT(sim_sid_index_init(&idx, 2, vocab, 5, tokens, NULL, 0) == HSRL_OK);
  TEST_ASSERT(idx.n_colliding_sids == 2 && idx.n_colliding_items == 5 && idx.max_bucket == 3);
  char path[512];
  snprintf(path, sizeof path, "%s/report.txt", test_tmpdir());
  FILE *f = fopen(path, "w+");
  TEST_ASSERT(f != NULL);
  sim_sid_index_report(&idx, f, 5);
  rewind(f);
  char buf[2048] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  TEST_ASSERT(n > 0);
  TEST_ASSERTF(strstr(buf, "(1,1): 3 items: 1 2 4") && strstr(buf, "(0,1): 2 items: 3 5") &&
                   strstr(buf, "largest bucket 3"),
               "report:\n%s", buf);
  TEST_ASSERT(strstr(buf, "(1,1)") < strstr(buf, "(0,1)")); /* largest first */
  sim_sid_index_free(&idx);
}

int main(void) {
  TEST_RUN(test_index_buckets_and_collisions);
  TEST_RUN(test_index_tie_rule);
  TEST_RUN(test_index_rejects_bad_input);
  TEST_RUN(test_trie_prefix_queries_exact);
  TEST_RUN(test_trie_empty_and_single);
  TEST_RUN(test_update_equals_rebuild);
  TEST_RUN(test_report_names_collisions);
  return test_summary();
}
