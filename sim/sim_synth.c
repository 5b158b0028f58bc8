/* sim_synth.c: the synthetic world: generation, the ground-truth click model, logged sessions,
 * and its /world group in the prepared-data file. See sim_synth.h for the model and
 * docs/synthetic-world.md for the parameters (datasets.md "The synthetic world"; method.md §1-4).
 *
 * Generation is one pass over the items and one over the users; a logged slate draws
 * behav_cand_mult * K candidates from per-topic item lists and never scans the catalog, so time
 * and memory are linear in N and in the number of records. */
#include "sim/sim_synth.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_config.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_progress.h"
#include "common/hsrl_rng.h"
#include "common/io/io_h5.h"

/* Purposes of the random streams (hsrl_rng_derive(seed, purpose)); never renumber: a change
 * changes every synthetic file. */
enum {
  SYNTH_RNG_TOPICS = 1,   /* topic centres, subtopic offsets, the user projection */
  SYNTH_RNG_ITEMS = 2,    /* items: topic, subtopic, noise, quality */
  SYNTH_RNG_USERS = 3,    /* users: liked topics, weights, preference noise */
  SYNTH_RNG_FEATURES = 4, /* users' observable features */
  SYNTH_RNG_LENGTHS = 5,  /* session lengths */
  SYNTH_RNG_SESSIONS = 6, /* one stream per user: behaviour policy and clicks */
};

#define SYNTH_LOGIT_CLAMP 15.0f /* sigmoid(15) = 1 - 3e-7 < 1 in float32 */
#define SYNTH_TRAIN_FRACTION 0.8 /* datasets.md: each user's first floor(0.8 n) slates train */
#define SYNTH_N_ATTR_A 2         /* uninformative attribute ("gender"-like) */
#define SYNTH_N_ATTR_B 4         /* uninformative attribute ("age band"-like) */

/* ---------------------------------------------------------------------------------------------
 * Config */

#define SYNTH_FIELD(key, type, def, allowed, help)                                              \
  {"synth", #key, HSRL_CONFIG_##type, offsetof(sim_synth_config, key),                        \
   sizeof(((sim_synth_config *)0)->key), def, allowed, help}

/* clang-format off */
static const hsrl_config_field synth_fields[] = {
  SYNTH_FIELD(items,            INT,    "2000", "[1,2000000000]", "N: catalog size"),
  SYNTH_FIELD(users,            INT,    "2000", "[1,2000000000]", "U: number of users"),
  SYNTH_FIELD(item_features,    INT,    "16",   "[1,4096]", "D: item feature width"),
  SYNTH_FIELD(user_features,    INT,    "24",   "[8,4096]", "P: user feature width = topics + 6 + projection (>= 1)"),
  SYNTH_FIELD(topics,           INT,    "8",    "[1,100000]", "T: topics of the item mixture"),
  SYNTH_FIELD(subtopics,        INT,    "4",    "[1,100000]", "S: subtopics per topic"),
  SYNTH_FIELD(slate_size,       INT,    "10",   "[1,256]",  "K: items per slate"),
  SYNTH_FIELD(history_len,      INT,    "50",   "[1,1000]", "H: clicked items kept per state"),
  SYNTH_FIELD(sessions,         INT,    "20",   "[1,100000]", "mean logged slates per user (uniform in [s/2, 3s/2])"),
  SYNTH_FIELD(seed,             INT,    "7",    "[0,inf)",  "seed of the world and its logged sessions"),
  SYNTH_FIELD(topic_scale,      DOUBLE, "1",    "(0,inf)",  "norm of a topic centre"),
  SYNTH_FIELD(subtopic_scale,   DOUBLE, "0.5",  "[0,inf)",  "norm of a subtopic offset"),
  SYNTH_FIELD(item_noise,       DOUBLE, "0.3",  "[0,inf)",  "norm (in expectation) of an item's own noise"),
  SYNTH_FIELD(quality_std,      DOUBLE, "0.25",  "[0,inf)",  "std of item quality (a logit offset)"),
  SYNTH_FIELD(max_pref_topics,  INT,    "3",    "[1,100]",  "a user likes 1..this many topics"),
  SYNTH_FIELD(pref_second_lo,   DOUBLE, "0.2",  "[0,1]",    "weights of a user's extra topics ~ U(lo, hi); the main one has 1"),
  SYNTH_FIELD(pref_second_hi,   DOUBLE, "0.5",  "[0,1]",    "upper end of the extra topics' weights"),
  SYNTH_FIELD(pref_noise,       DOUBLE, "0.3",  "[0,inf)",  "norm of the noise on a user's preference"),
  SYNTH_FIELD(feature_noise,    DOUBLE, "0.5",  "[0,inf)",  "std of the noise on the preference projection in user features"),
  SYNTH_FIELD(attr_reveal,      DOUBLE, "0.5",  "[0,1]",    "probability that the topic attribute names the main topic"),
  SYNTH_FIELD(affinity,         DOUBLE, "5",    "[0,inf)",  "a: weight of <pref, x> in the click logit"),
  SYNTH_FIELD(bias,             DOUBLE, "3", NULL,       "constant of the click logit"),
  SYNTH_FIELD(pos_effect,       DOUBLE, "0.05", "[0,inf)",  "logit lost per slate position"),
  SYNTH_FIELD(sat_memory,       INT,    "20",   "[0,1000]", "M: the last M clicked items satiate"),
  SYNTH_FIELD(item_memory,      INT,    "50",   "[0,1000]", "an item among the last this many clicks is not re-clicked"),
  SYNTH_FIELD(sat_decay,        DOUBLE, "0.8",  "(0,1]",    "weight of the j-th most recent click in the satiation counts is decay^j"),
  SYNTH_FIELD(sat_topic,        DOUBLE, "0.3",  "[0,inf)",  "satiation per recent click of the same topic"),
  SYNTH_FIELD(sat_subtopic,     DOUBLE, "0.2",  "[0,inf)",  "extra satiation per recent click of the same subtopic"),
  SYNTH_FIELD(fatigue,          DOUBLE, "4",    "[0,inf)",  "logit lost by every item when the recent clicks all share one topic (x concentration)"),
  SYNTH_FIELD(sat_item,         DOUBLE, "6",    "[0,inf)",  "penalty for an item among the recent clicks"),
  SYNTH_FIELD(behav_noise,      DOUBLE, "0.6",  "[0,inf)",  "behaviour policy: norm of the noise on its preference estimate"),
  SYNTH_FIELD(behav_topic_beta, DOUBLE, "1",    "[0,inf)",  "behaviour policy: sharpness of its topic choice"),
  SYNTH_FIELD(behav_temp,       DOUBLE, "1",    "[0,inf)",  "behaviour policy: Gumbel temperature of its item choice"),
  SYNTH_FIELD(behav_eps,        DOUBLE, "0.25", "[0,1]",    "behaviour policy: share of uniformly random candidates"),
  SYNTH_FIELD(behav_cand_mult,  INT,    "4",    "[1,64]",   "behaviour policy: candidates per slate = this * K"),
};
/* clang-format on */

static const hsrl_config_schema synth_schema = {synth_fields,
                                                 (int64_t)(sizeof synth_fields / sizeof synth_fields[0])};

void sim_synth_config_defaults(sim_synth_config *c) { hsrl_config_defaults(&synth_schema, c); }

hsrl_status sim_synth_config_set(sim_synth_config *c, const char *key, const char *value) {
  char assignment[512];
  int n = snprintf(assignment, sizeof assignment, "synth.%s=%s", key, value);
  if (n < 0 || (size_t)n >= sizeof assignment)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, key, "value too long");
  return hsrl_config_set(&synth_schema, c, assignment);
}

void sim_synth_config_print(const sim_synth_config *c, void *f) {
  (void)hsrl_config_fprint(&synth_schema, c, HSRL_CONFIG_WRITE_HELP, (FILE *)f);
}

uint64_t sim_synth_config_hash(const sim_synth_config *c) { return hsrl_config_hash(&synth_schema, c); }

hsrl_status sim_synth_config_from_settings(sim_synth_config *c, const struct hsrl_settings *s) {
  sim_synth_config_defaults(c);
  c->items = s->synth.items;
  c->users = s->synth.users;
  c->topics = s->synth.topics;
  c->subtopics = s->synth.subtopics;
  c->item_features = s->synth.item_features;
  c->user_features = s->synth.user_features;
  c->sessions = s->synth.sessions;
  c->seed = s->synth.seed;
  c->slate_size = s->data.slate_size;
  c->history_len = s->data.history_len;
  return sim_synth_config_check(c);
}

hsrl_status sim_synth_config_check(const sim_synth_config *c) {
  /* Ranges first (the same rules as a config file), then the rules that tie fields together. */
  for (int64_t i = 0; i < synth_schema.n_fields; i++) {
    char text[64];
    hsrl_config_field_format(&synth_fields[i], c, text, sizeof text);
    sim_synth_config copy = *c;
    hsrl_status st = hsrl_config_field_parse(&synth_fields[i], &copy, text, NULL, 0);
    if (st != HSRL_OK) return st;
  }
  if (c->user_features < c->topics + SYNTH_N_ATTR_A + SYNTH_N_ATTR_B + 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "synth.user_features",
                    "%lld is too small: it holds the topic attribute (%lld), two attributes (%d) "
                    "and at least 1 dim of preference projection, so >= %lld",
                    (long long)c->user_features, (long long)c->topics, SYNTH_N_ATTR_A + SYNTH_N_ATTR_B,
                    (long long)(c->topics + SYNTH_N_ATTR_A + SYNTH_N_ATTR_B + 1));
  if (c->slate_size > c->items)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "synth.slate_size",
                    "a slate of %lld distinct items needs at least that many items (items = %lld)",
                    (long long)c->slate_size, (long long)c->items);
  if (c->sat_memory > c->history_len || c->item_memory > c->history_len)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "synth.sat_memory",
                    "sat_memory (%lld) and item_memory (%lld) count entries of the history, so "
                    "neither may exceed history_len (%lld)",
                    (long long)c->sat_memory, (long long)c->item_memory, (long long)c->history_len);
  if (c->pref_second_lo > c->pref_second_hi)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "synth.pref_second_lo", "%g exceeds pref_second_hi (%g)",
                    c->pref_second_lo, c->pref_second_hi);
  if (c->topics * c->subtopics > INT32_MAX)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "synth.subtopics", "topics * subtopics exceeds int32");
  return HSRL_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The click model */

static float synth_dot(const float *a, const float *b, int64_t d) {
  float s = 0.0f;
  for (int64_t j = 0; j < d; j++) s += a[j] * b[j];
  return s;
}

static void synth_check_item(const sim_synth_world *w, int32_t item) {
  HSRL_CHECKF(item >= 1 && item <= w->n_items, "item id %d outside 1..%lld", (int)item,
              (long long)w->n_items);
}

/* A history entry indexes the item tables: an id above N is a caller's bug. */
#define SYNTH_CHECK_HISTORY(w, h) \
  HSRL_CHECKF((h) <= (w)->n_items, "history holds item id %d > N = %lld", (int)(h), (long long)(w)->n_items)

float sim_synth_satiation(const sim_synth_world *w, const int32_t *history, int32_t item) {
  synth_check_item(w, item);
  const sim_synth_config *c = &w->cfg;
  const int64_t h_len = c->history_len;
  const int32_t topic = w->item_topic[item], sub = w->item_subtopic[item];
  const float decay = (float)c->sat_decay;
  float n_topic = 0.0f, n_sub = 0.0f, weight = 1.0f;
  int n_item = 0;
  /* History is left-padded, clicks in time order: its last entries are the most recent clicks.
   * The j-th most recent click counts decay^j (j = 0..M-1): recent clicks satiate most. */
  for (int64_t j = h_len - 1; j >= h_len - c->sat_memory; j--) {
    const int32_t h = history[j];
    if (h <= 0) break; /* padding: no older clicks */
    SYNTH_CHECK_HISTORY(w, h);
    n_topic += w->item_topic[h] == topic ? weight : 0.0f;
    n_sub += w->item_subtopic[h] == sub ? weight : 0.0f;
    weight *= decay;
  }
  for (int64_t j = h_len - c->item_memory; j < h_len; j++) n_item |= history[j] == item;
  return (float)c->sat_topic * n_topic + (float)c->sat_subtopic * n_sub + (float)c->sat_item * (float)n_item;
}

void sim_synth_satiation_tables(const sim_synth_world *w, const int32_t *history, float *topic_sat,
                                float *subtopic_sat) {
  const sim_synth_config *c = &w->cfg;
  const int64_t h_len = c->history_len, t_len = c->topics, ts_len = c->topics * c->subtopics;
  memset(topic_sat, 0, (size_t)t_len * sizeof(float));
  memset(subtopic_sat, 0, (size_t)ts_len * sizeof(float));
  const float decay = (float)c->sat_decay;
  float weight = 1.0f;
  /* The same sums in the same order as sim_synth_satiation, so the results are bit-identical. */
  for (int64_t j = h_len - 1; j >= h_len - c->sat_memory; j--) {
    const int32_t h = history[j];
    if (h <= 0) break;
    SYNTH_CHECK_HISTORY(w, h);
    topic_sat[w->item_topic[h]] += weight;
    subtopic_sat[w->item_subtopic[h]] += weight;
    weight *= decay;
  }
  for (int64_t t = 0; t < t_len; t++) topic_sat[t] *= (float)c->sat_topic;
  for (int64_t ts = 0; ts < ts_len; ts++) subtopic_sat[ts] *= (float)c->sat_subtopic;
}

float sim_synth_position_effect(const sim_synth_world *w, int64_t k) {
  return (float)w->cfg.pos_effect * (float)k;
}

void sim_synth_base_logits(const sim_synth_world *w, int32_t user_id, const int32_t *items,
                           int64_t n, float *out_logit) {
  HSRL_CHECKF(user_id >= 1 && user_id <= w->n_users, "user id %d outside 1..%lld", (int)user_id,
              (long long)w->n_users);
  const int64_t d = w->item_dim;
  const float *pref = w->user_pref + (int64_t)user_id * d;
  const float a = (float)w->cfg.affinity, bias = (float)w->cfg.bias;
  for (int64_t k = 0; k < n; k++) {
    const int32_t i = items[k];
    synth_check_item(w, i);
    out_logit[k] = a * synth_dot(pref, w->item_features + (int64_t)i * d, d) + w->item_quality[i] + bias;
  }
}

float sim_synth_fatigue(const sim_synth_world *w, const int32_t *history) {
  const sim_synth_config *c = &w->cfg;
  const int64_t h_len = c->history_len;
  if (c->fatigue == 0.0) return 0.0f;
  /* Herfindahl concentration of the topics of the last M clicks, recency-weighted:
   * sum_t share_t^2 = sum_j sum_k w_j w_k [t_j == t_k] / (sum_j w_j)^2; 1 when they all share
   * one topic, about 1/T when they are spread evenly. O(M^2) with M small, no table of T. */
  float same = 0.0f, total = 0.0f, wj = 1.0f;
  const float decay = (float)c->sat_decay;
  for (int64_t j = h_len - 1; j >= h_len - c->sat_memory && history[j] > 0; j--) {
    SYNTH_CHECK_HISTORY(w, history[j]);
    const int32_t tj = w->item_topic[history[j]];
    float wk = 1.0f, row = 0.0f;
    for (int64_t k = h_len - 1; k >= h_len - c->sat_memory && history[k] > 0; k--) {
      row += w->item_topic[history[k]] == tj ? wk : 0.0f;
      wk *= decay;
    }
    same += wj * row;
    total += wj;
    wj *= decay;
  }
  return total > 0.0f ? (float)c->fatigue * same / (total * total) : 0.0f;
}

void sim_synth_item_logits(const sim_synth_world *w, int32_t user_id, const int32_t *history,
                           const int32_t *items, int64_t n, float *out_logit) {
  sim_synth_base_logits(w, user_id, items, n, out_logit);
  const float fatigue = sim_synth_fatigue(w, history);
  for (int64_t k = 0; k < n; k++) out_logit[k] -= sim_synth_satiation(w, history, items[k]) + fatigue;
}

static float synth_sigmoid_clamped(float logit) {
  if (logit > SYNTH_LOGIT_CLAMP) logit = SYNTH_LOGIT_CLAMP;
  if (logit < -SYNTH_LOGIT_CLAMP) logit = -SYNTH_LOGIT_CLAMP;
  return 1.0f / (1.0f + expf(-logit));
}

void sim_synth_click_probs(const sim_synth_world *w, int32_t user_id, const int32_t *history,
                           const int32_t *slate, float *out_p) {
  const int64_t k_len = w->cfg.slate_size;
  sim_synth_item_logits(w, user_id, history, slate, k_len, out_p);
  for (int64_t k = 0; k < k_len; k++)
    out_p[k] = synth_sigmoid_clamped(out_p[k] - sim_synth_position_effect(w, k));
}

void sim_synth_click_probs_batch(const sim_synth_world *w, int64_t b, const int32_t *user_ids,
                                 const int32_t *histories, const int32_t *slates, float *out_p) {
  const int64_t h_len = w->cfg.history_len, k_len = w->cfg.slate_size;
  for (int64_t u = 0; u < b; u++)
    sim_synth_click_probs(w, user_ids[u], histories + u * h_len, slates + u * k_len, out_p + u * k_len);
}

/* ---------------------------------------------------------------------------------------------
 * Generation */

/* v += sigma * n / sqrt(d), n ~ N(0, I): a noise vector of expected squared norm sigma^2. */
static void synth_add_noise(hsrl_rng *r, float *v, int64_t d, double sigma) {
  const double s = sigma / sqrt((double)d);
  for (int64_t j = 0; j < d; j++) v[j] += (float)(s * hsrl_rng_normal(r));
}

/* v = scale * n / |n|: a uniformly random direction of norm `scale`. */
static void synth_random_direction(hsrl_rng *r, float *v, int64_t d, double scale) {
  double norm2;
  do {
    norm2 = 0.0;
    for (int64_t j = 0; j < d; j++) {
      const double x = hsrl_rng_normal(r);
      v[j] = (float)x;
      norm2 += x * x;
    }
  } while (norm2 < 1e-12);
  const double f = scale / sqrt(norm2);
  for (int64_t j = 0; j < d; j++) v[j] = (float)((double)v[j] * f);
}

static void synth_world_alloc(sim_synth_world *w, const sim_synth_config *c) {
  memset(w, 0, sizeof *w);
  w->cfg = *c;
  w->n_items = c->items;
  w->n_users = c->users;
  w->item_dim = c->item_features;
  const int64_t n1 = c->items + 1, u1 = c->users + 1, d = c->item_features;
  const int64_t proj = c->user_features - c->topics - SYNTH_N_ATTR_A - SYNTH_N_ATTR_B;
  w->item_features = hsrl_alloc_aligned((size_t)(n1 * d) * sizeof(float));
  w->item_topic = hsrl_malloc((size_t)n1 * sizeof(int32_t));
  w->item_subtopic = hsrl_malloc((size_t)n1 * sizeof(int32_t));
  w->item_quality = hsrl_calloc((size_t)n1, sizeof(float));
  w->user_pref = hsrl_alloc_aligned((size_t)(u1 * d) * sizeof(float));
  w->user_main_topic = hsrl_malloc((size_t)u1 * sizeof(int32_t));
  w->topic_centres = hsrl_calloc((size_t)(c->topics * d), sizeof(float));
  w->subtopic_offsets = hsrl_calloc((size_t)(c->topics * c->subtopics * d), sizeof(float));
  w->user_proj = hsrl_calloc((size_t)(proj * d), sizeof(float));
  w->topic_start = hsrl_calloc((size_t)c->topics + 1, sizeof(int64_t));
  w->topic_items = hsrl_malloc((size_t)c->items * sizeof(int32_t));
  w->item_topic[0] = w->item_subtopic[0] = -1;
  w->user_main_topic[0] = -1;
}

void sim_synth_free(sim_synth_world *w) {
  if (!w) return;
  hsrl_free(w->item_features);
  hsrl_free(w->item_topic);
  hsrl_free(w->item_subtopic);
  hsrl_free(w->item_quality);
  hsrl_free(w->user_pref);
  hsrl_free(w->user_main_topic);
  hsrl_free(w->topic_centres);
  hsrl_free(w->subtopic_offsets);
  hsrl_free(w->user_proj);
  hsrl_free(w->topic_start);
  hsrl_free(w->topic_items);
  memset(w, 0, sizeof *w);
}

/* Per-topic item lists by counting sort: O(N + T), items ascending within a topic. */
static void synth_build_topic_lists(sim_synth_world *w) {
  const int64_t t_len = w->cfg.topics;
  memset(w->topic_start, 0, (size_t)(t_len + 1) * sizeof(int64_t));
  for (int64_t i = 1; i <= w->n_items; i++) w->topic_start[w->item_topic[i] + 1]++;
  for (int64_t t = 0; t < t_len; t++) w->topic_start[t + 1] += w->topic_start[t];
  /* topic_start[t] doubles as the fill cursor, then is restored by one shift. */
  for (int64_t i = 1; i <= w->n_items; i++) w->topic_items[w->topic_start[w->item_topic[i]]++] = (int32_t)i;
  for (int64_t t = t_len; t > 0; t--) w->topic_start[t] = w->topic_start[t - 1];
  w->topic_start[0] = 0;
}

static void synth_generate_topics(sim_synth_world *w) {
  const sim_synth_config *c = &w->cfg;
  const int64_t d = w->item_dim, t_len = c->topics, s_len = c->subtopics;
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive((uint64_t)c->seed, SYNTH_RNG_TOPICS), 0);
  /* Topic centres: random directions, made orthogonal when T <= D (Gram-Schmidt), so that a
   * user's liking of one topic says nothing about another; with T > D they are only nearly so. */
  for (int64_t t = 0; t < t_len; t++) {
    float *ct = w->topic_centres + t * d;
    for (;;) {
      synth_random_direction(&r, ct, d, 1.0);
      if (t >= d) break;
      for (int64_t u = 0; u < t; u++) {
        const float *cu = w->topic_centres + u * d;
        const float proj = synth_dot(ct, cu, d) / synth_dot(cu, cu, d);
        for (int64_t j = 0; j < d; j++) ct[j] -= proj * cu[j];
      }
      if (synth_dot(ct, ct, d) > 1e-4f) break;
    }
    const double f = c->topic_scale / sqrt((double)synth_dot(ct, ct, d));
    for (int64_t j = 0; j < d; j++) ct[j] = (float)((double)ct[j] * f);
  }
  /* Subtopic offsets: random directions orthogonal to every topic centre when T < D, so that a
   * subtopic never leans towards another topic (affinity to topics stays clean); of norm
   * subtopic_scale. */
  for (int64_t ts = 0; ts < t_len * s_len; ts++) {
    float *o = w->subtopic_offsets + ts * d;
    for (;;) {
      synth_random_direction(&r, o, d, 1.0);
      if (t_len >= d) break;
      for (int64_t u = 0; u < t_len; u++) { /* the centres are orthogonal: one pass projects out */
        const float *cu = w->topic_centres + u * d;
        const float proj = synth_dot(o, cu, d) / synth_dot(cu, cu, d);
        for (int64_t j = 0; j < d; j++) o[j] -= proj * cu[j];
      }
      if (synth_dot(o, o, d) > 1e-4f) break;
    }
    const double f = c->subtopic_scale / sqrt((double)synth_dot(o, o, d));
    for (int64_t j = 0; j < d; j++) o[j] = (float)((double)o[j] * f);
  }
  const int64_t proj = c->user_features - c->topics - SYNTH_N_ATTR_A - SYNTH_N_ATTR_B;
  for (int64_t p = 0; p < proj; p++) synth_random_direction(&r, w->user_proj + p * d, d, 1.0);
}

static void synth_generate_items(sim_synth_world *w) {
  const sim_synth_config *c = &w->cfg;
  const int64_t d = w->item_dim;
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive((uint64_t)c->seed, SYNTH_RNG_ITEMS), 0);
  memset(w->item_features, 0, (size_t)d * sizeof(float)); /* the padding row */
  for (int64_t i = 1; i <= w->n_items; i++) {
    const int64_t t = (int64_t)hsrl_rng_below(&r, (uint64_t)c->topics);
    const int64_t s = (int64_t)hsrl_rng_below(&r, (uint64_t)c->subtopics);
    float *x = w->item_features + i * d;
    const float *ct = w->topic_centres + t * d, *os = w->subtopic_offsets + (t * c->subtopics + s) * d;
    for (int64_t j = 0; j < d; j++) x[j] = ct[j] + os[j];
    synth_add_noise(&r, x, d, c->item_noise);
    w->item_topic[i] = (int32_t)t;
    w->item_subtopic[i] = (int32_t)(t * c->subtopics + s);
    w->item_quality[i] = (float)(c->quality_std * hsrl_rng_normal(&r));
  }
  synth_build_topic_lists(w);
}

static void synth_generate_users(sim_synth_world *w) {
  const sim_synth_config *c = &w->cfg;
  const int64_t d = w->item_dim;
  const int64_t max_liked = c->max_pref_topics < c->topics ? c->max_pref_topics : c->topics;
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive((uint64_t)c->seed, SYNTH_RNG_USERS), 0);
  memset(w->user_pref, 0, (size_t)d * sizeof(float));
  int64_t liked[100];
  for (int64_t u = 1; u <= w->n_users; u++) {
    float *pref = w->user_pref + u * d;
    memset(pref, 0, (size_t)d * sizeof(float));
    const int64_t n_liked = 1 + (int64_t)hsrl_rng_below(&r, (uint64_t)max_liked);
    for (int64_t j = 0; j < n_liked; j++) {
      int64_t t, dup;
      do { /* distinct topics by rejection: n_liked <= T and small */
        t = (int64_t)hsrl_rng_below(&r, (uint64_t)c->topics);
        dup = 0;
        for (int64_t m = 0; m < j; m++) dup |= liked[m] == t;
      } while (dup);
      liked[j] = t;
      const double weight =
          j == 0 ? 1.0 : c->pref_second_lo + (c->pref_second_hi - c->pref_second_lo) * hsrl_rng_uniform_double(&r);
      const float *ct = w->topic_centres + t * d;
      for (int64_t m = 0; m < d; m++) pref[m] += (float)(weight * (double)ct[m]);
    }
    synth_add_noise(&r, pref, d, c->pref_noise);
    w->user_main_topic[u] = (int32_t)liked[0];
  }
}

/* User features: [topic attribute one-hot (T) | attribute A (2) | attribute B (4) | projection].
 * The projection is user_proj * pref + noise: it reveals the preference only partly. */
static void synth_generate_user_features(const sim_synth_world *w, sim_dataset *ds) {
  const sim_synth_config *c = &w->cfg;
  const int64_t d = w->item_dim, p_len = c->user_features;
  const int64_t off_a = c->topics, off_b = off_a + SYNTH_N_ATTR_A, off_proj = off_b + SYNTH_N_ATTR_B;
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive((uint64_t)c->seed, SYNTH_RNG_FEATURES), 0);
  for (int64_t u = 1; u <= w->n_users; u++) {
    float *f = ds->user_features + u * p_len;
    memset(f, 0, (size_t)p_len * sizeof(float));
    const int64_t t = hsrl_rng_uniform_double(&r) < c->attr_reveal
                          ? (int64_t)w->user_main_topic[u]
                          : (int64_t)hsrl_rng_below(&r, (uint64_t)c->topics);
    f[t] = 1.0f;
    f[off_a + (int64_t)hsrl_rng_below(&r, SYNTH_N_ATTR_A)] = 1.0f;
    f[off_b + (int64_t)hsrl_rng_below(&r, SYNTH_N_ATTR_B)] = 1.0f;
    const float *pref = w->user_pref + u * d;
    for (int64_t p = 0; p < p_len - off_proj; p++)
      f[off_proj + p] = synth_dot(w->user_proj + p * d, pref, d) +
                        (float)(c->feature_noise * hsrl_rng_normal(&r));
    ds->user_raw_id[u] = u;
  }
}

static int synth_in(const int32_t *ids, int64_t n, int32_t id) {
  for (int64_t j = 0; j < n; j++)
    if (ids[j] == id) return 1;
  return 0;
}

/* Scratch of the session generator, sized once. */
typedef struct synth_session_scratch {
  float *noisy_pref;  /* (D) */
  double *topic_cum;  /* (T) cumulative topic weights */
  int32_t *cand;      /* (C) */
  int32_t *cand_b;    /* (C) the second item of a topic draw, -1 for a uniform draw */
  float *cand_score;  /* (C) */
  int32_t *history;   /* (H) */
  float *p;           /* (K) */
} synth_session_scratch;

static int64_t synth_sample_topic(hsrl_rng *r, const double *cum, int64_t t_len) {
  const double x = hsrl_rng_uniform_double(r) * cum[t_len - 1];
  int64_t lo = 0, hi = t_len - 1; /* first index with cum > x */
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (cum[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/* One user's logged session of n_slates, written to records [rec0, rec0 + n_slates). The
 * behaviour policy: a noisy estimate of the preference picks topics (softmax of its affinity to
 * the topic centres), candidates come from those topics (the better of two random items of the
 * topic: a popularity bias) or, with probability behav_eps, from the whole catalog; the slate is
 * the top K distinct candidates by noisy affinity + quality + Gumbel noise. */
static void synth_generate_session(const sim_synth_world *w, sim_dataset *ds, int32_t u, int64_t rec0,
                                   int64_t n_slates, synth_session_scratch *sc) {
  const sim_synth_config *c = &w->cfg;
  const int64_t d = w->item_dim, t_len = c->topics, k_len = c->slate_size, h_len = c->history_len;
  const int64_t n_cand = c->behav_cand_mult * k_len;
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive((uint64_t)c->seed, SYNTH_RNG_SESSIONS), (uint64_t)u);

  memcpy(sc->noisy_pref, w->user_pref + (int64_t)u * d, (size_t)d * sizeof(float));
  synth_add_noise(&r, sc->noisy_pref, d, c->behav_noise);
  float best = -INFINITY;
  for (int64_t t = 0; t < t_len; t++) {
    const float a = synth_dot(sc->noisy_pref, w->topic_centres + t * d, d);
    sc->topic_cum[t] = (double)a;
    if (a > best) best = a;
  }
  double acc = 0.0;
  for (int64_t t = 0; t < t_len; t++) {
    const int64_t size = w->topic_start[t + 1] - w->topic_start[t];
    acc += size > 0 ? exp(c->behav_topic_beta * (sc->topic_cum[t] - (double)best)) : 0.0;
    sc->topic_cum[t] = acc;
  }

  memset(sc->history, 0, (size_t)h_len * sizeof(int32_t));
  int64_t time = 1000000000 + (int64_t)hsrl_rng_below(&r, 10000000);
  for (int64_t j = 0; j < n_slates; j++) {
    const int64_t rec = rec0 + j;
    int32_t *slate = ds->rec_slate + rec * k_len;
    /* Candidates in passes, so that the random reads of a large catalog (topic lists, qualities,
     * feature rows) are independent of each other and the CPU overlaps their cache misses.
     * Pass 1 draws every random number: positions in the topic lists (or a uniform item, marked
     * by cand_b = -1) and the Gumbel noise. */
    for (int64_t m = 0; m < n_cand; m++) {
      if (hsrl_rng_uniform_double(&r) < c->behav_eps) {
        sc->cand[m] = (int32_t)(1 + hsrl_rng_below(&r, (uint64_t)w->n_items));
        sc->cand_b[m] = -1;
      } else {
        const int64_t t = synth_sample_topic(&r, sc->topic_cum, t_len);
        const int64_t start = w->topic_start[t], size = w->topic_start[t + 1] - start;
        sc->cand[m] = (int32_t)(start + (int64_t)hsrl_rng_below(&r, (uint64_t)size));
        sc->cand_b[m] = (int32_t)(start + (int64_t)hsrl_rng_below(&r, (uint64_t)size));
      }
      const double g = -hsrl_rng_log(-hsrl_rng_log(hsrl_rng_uniform_double(&r) + 1e-300) + 1e-300);
      sc->cand_score[m] = (float)(c->behav_temp * g);
    }
    for (int64_t m = 0; m < n_cand; m++) /* pass 2: list positions -> item ids */
      if (sc->cand_b[m] >= 0) sc->cand[m] = w->topic_items[sc->cand[m]], sc->cand_b[m] = w->topic_items[sc->cand_b[m]];
    for (int64_t m = 0; m < n_cand; m++) /* pass 3: the better of the two (a popularity bias) */
      if (sc->cand_b[m] >= 0 && w->item_quality[sc->cand_b[m]] > w->item_quality[sc->cand[m]]) sc->cand[m] = sc->cand_b[m];
    for (int64_t m = 0; m < n_cand; m++) { /* pass 4: scores */
      const int32_t item = sc->cand[m];
      /* A logged recommender does not re-show what the user clicked recently. */
      sc->cand_score[m] = synth_in(sc->history, h_len, item)
                              ? -INFINITY
                              : (float)c->affinity * synth_dot(sc->noisy_pref, w->item_features + (int64_t)item * d, d) +
                                    w->item_quality[item] + sc->cand_score[m];
    }
    int64_t n_slate = 0;
    while (n_slate < k_len) { /* top K distinct candidates by selection: C is small */
      int64_t arg = -1;
      for (int64_t m = 0; m < n_cand; m++)
        if (sc->cand_score[m] > -INFINITY && (arg < 0 || sc->cand_score[m] > sc->cand_score[arg])) arg = m;
      if (arg < 0) break;
      sc->cand_score[arg] = -INFINITY;
      if (!synth_in(slate, n_slate, sc->cand[arg])) slate[n_slate++] = sc->cand[arg];
    }
    while (n_slate < k_len) { /* too few distinct candidates: random fill */
      const int32_t item = (int32_t)(1 + hsrl_rng_below(&r, (uint64_t)w->n_items));
      if (!synth_in(slate, n_slate, item)) slate[n_slate++] = item;
    }
    sim_synth_click_probs(w, u, sc->history, slate, sc->p);
    uint8_t *clicks = ds->rec_clicks + rec * k_len;
    for (int64_t k = 0; k < k_len; k++) clicks[k] = (uint8_t)(hsrl_rng_uniform(&r) < sc->p[k]);
    ds->rec_user[rec] = u;
    ds->rec_time[rec] = time;
    memcpy(ds->rec_history + rec * h_len, sc->history, (size_t)h_len * sizeof(int32_t));
    for (int64_t k = 0; k < k_len; k++) { /* history <- last H of (history ++ clicked items) */
      if (!clicks[k]) continue;
      memmove(sc->history, sc->history + 1, (size_t)(h_len - 1) * sizeof(int32_t));
      sc->history[h_len - 1] = slate[k];
    }
    time += 30 + (int64_t)hsrl_rng_below(&r, 570);
  }
}

static void synth_generate_sessions(const sim_synth_world *w, sim_dataset *ds) {
  const sim_synth_config *c = &w->cfg;
  const int64_t u_len = w->n_users;
  int64_t *n_slates = hsrl_malloc((size_t)(u_len + 1) * sizeof(int64_t));
  hsrl_rng r;
  hsrl_rng_init(&r, hsrl_rng_derive((uint64_t)c->seed, SYNTH_RNG_LENGTHS), 0);
  const int64_t lo = c->sessions - c->sessions / 2, hi = c->sessions + c->sessions / 2;
  int64_t n_records = 0, n_train = 0;
  for (int64_t u = 1; u <= u_len; u++) {
    n_slates[u] = lo + (int64_t)hsrl_rng_below(&r, (uint64_t)(hi - lo + 1));
    n_records += n_slates[u];
    n_train += (int64_t)floor(SYNTH_TRAIN_FRACTION * (double)n_slates[u]);
  }
  sim_dataset_alloc(ds, w->n_items, w->item_dim, u_len, c->user_features, n_records, c->slate_size,
                    c->history_len);
  snprintf(ds->name, sizeof ds->name, "synth");
  snprintf(ds->source_format, sizeof ds->source_format, "synth");
  memcpy(ds->item_features, w->item_features, (size_t)((w->n_items + 1) * w->item_dim) * sizeof(float));
  for (int64_t i = 0; i <= w->n_items; i++) ds->item_raw_id[i] = i;
  synth_generate_user_features(w, ds);

  synth_session_scratch sc;
  const int64_t n_cand = c->behav_cand_mult * c->slate_size;
  sc.noisy_pref = hsrl_malloc((size_t)w->item_dim * sizeof(float));
  sc.topic_cum = hsrl_malloc((size_t)c->topics * sizeof(double));
  sc.cand = hsrl_malloc((size_t)n_cand * sizeof(int32_t));
  sc.cand_b = hsrl_malloc((size_t)n_cand * sizeof(int32_t));
  sc.cand_score = hsrl_malloc((size_t)n_cand * sizeof(float));
  sc.history = hsrl_malloc((size_t)c->history_len * sizeof(int32_t));
  sc.p = hsrl_malloc((size_t)c->slate_size * sizeof(float));

  /* Split per user by time: the first floor(0.8 n) of a user's slates train, the rest test. */
  if (!ds->train_idx) ds->train_idx = hsrl_malloc((size_t)(n_train > 0 ? n_train : 1) * sizeof(int64_t));
  if (!ds->test_idx)
    ds->test_idx = hsrl_malloc((size_t)(n_records - n_train > 0 ? n_records - n_train : 1) * sizeof(int64_t));
  ds->n_train = n_train;
  ds->n_test = n_records - n_train;

  hsrl_progress prog;
  const int show = n_records >= 100000; /* small worlds (tests, the demo) stay quiet */
  hsrl_progress_init(&prog, "synth sessions", u_len);
  int64_t rec = 0, i_train = 0, i_test = 0;
  for (int64_t u = 1; u <= u_len; u++) {
    synth_generate_session(w, ds, (int32_t)u, rec, n_slates[u], &sc);
    const int64_t n_tr = (int64_t)floor(SYNTH_TRAIN_FRACTION * (double)n_slates[u]);
    for (int64_t j = 0; j < n_slates[u]; j++) {
      if (j < n_tr) ds->train_idx[i_train++] = rec + j;
      else ds->test_idx[i_test++] = rec + j;
    }
    rec += n_slates[u];
    if (show && (u & 1023) == 0) hsrl_progress_update(&prog, u, NULL);
  }
  if (show) hsrl_progress_finish(&prog, NULL);
  HSRL_CHECK(rec == n_records && i_train == n_train && i_test == n_records - n_train);
  hsrl_free(sc.noisy_pref);
  hsrl_free(sc.topic_cum);
  hsrl_free(sc.cand);
  hsrl_free(sc.cand_b);
  hsrl_free(sc.cand_score);
  hsrl_free(sc.history);
  hsrl_free(sc.p);
  hsrl_free(n_slates);
}

hsrl_status sim_synth_generate(sim_synth_world *w, sim_dataset *d, const sim_synth_config *cfg) {
  hsrl_status st = sim_synth_config_check(cfg);
  if (st != HSRL_OK) return st;
  synth_world_alloc(w, cfg);
  synth_generate_topics(w);
  synth_generate_items(w);
  synth_generate_users(w);
  if (d) synth_generate_sessions(w, d);
  return HSRL_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The file: the prepared data (sim_data.h) plus the ground truth under /world */

#define SYNTH_WORLD "world"

static hsrl_status synth_write_world(io_h5 *f, const sim_synth_world *w) {
  hsrl_status st = HSRL_OK;
  const sim_synth_config *c = &w->cfg;
  const int64_t d = w->item_dim, n1 = w->n_items + 1, u1 = w->n_users + 1;
  const int64_t proj = c->user_features - c->topics - SYNTH_N_ATTR_A - SYNTH_N_ATTR_B;
  const int z = IO_H5_ZSTD;
  int64_t dims[2];
  size_t cap = hsrl_config_write(&synth_schema, c, 0, NULL, 0) + 1;
  char *text = hsrl_malloc(cap);
  hsrl_config_write(&synth_schema, c, 0, text, cap);
  /* Every field as an attribute of its own (readable with h5dump), plus the INI text. */
  for (int64_t i = 0; i < synth_schema.n_fields; i++) {
    const hsrl_config_field *fl = &synth_fields[i];
    const char *p = (const char *)c + fl->offset;
    if (fl->type == HSRL_CONFIG_INT) {
      int64_t v;
      memcpy(&v, p, sizeof v);
      HSRL_TRY(io_h5_attr_set_i64(f, SYNTH_WORLD, fl->key, v));
    } else {
      double v;
      memcpy(&v, p, sizeof v);
      HSRL_TRY(io_h5_attr_set_f64(f, SYNTH_WORLD, fl->key, v));
    }
  }
  HSRL_TRY(io_h5_attr_set_i64(f, SYNTH_WORLD, "world_format_version", SIM_SYNTH_FORMAT_VERSION));
  HSRL_TRY(io_h5_attr_set_u64(f, SYNTH_WORLD, "world_config_hash", sim_synth_config_hash(c)));
  HSRL_TRY(io_h5_attr_set_str(f, SYNTH_WORLD, "config", text));
  dims[0] = n1;
  HSRL_TRY(io_h5_write_i32(f, SYNTH_WORLD "/item_topic", w->item_topic, 1, dims, z));
  HSRL_TRY(io_h5_write_i32(f, SYNTH_WORLD "/item_subtopic", w->item_subtopic, 1, dims, z));
  HSRL_TRY(io_h5_write_f32(f, SYNTH_WORLD "/item_quality", w->item_quality, 1, dims, z));
  dims[0] = u1, dims[1] = d;
  HSRL_TRY(io_h5_write_f32(f, SYNTH_WORLD "/user_pref", w->user_pref, 2, dims, z));
  HSRL_TRY(io_h5_write_i32(f, SYNTH_WORLD "/user_main_topic", w->user_main_topic, 1, dims, z));
  dims[0] = c->topics;
  HSRL_TRY(io_h5_write_f32(f, SYNTH_WORLD "/topic_centres", w->topic_centres, 2, dims, 0));
  dims[0] = c->topics * c->subtopics;
  HSRL_TRY(io_h5_write_f32(f, SYNTH_WORLD "/subtopic_offsets", w->subtopic_offsets, 2, dims, z));
  dims[0] = proj;
  HSRL_TRY(io_h5_write_f32(f, SYNTH_WORLD "/user_proj", w->user_proj, 2, dims, 0));
done:
  hsrl_free(text);
  return st;
}

hsrl_status sim_synth_write(const sim_synth_world *w, const sim_dataset *d, const char *path) {
  HSRL_CHECKF(d->n_items == w->n_items && d->n_users == w->n_users && d->item_dim == w->item_dim &&
                  d->slate_size == w->cfg.slate_size && d->history_len == w->cfg.history_len,
              "sim_synth_write: the dataset was not generated from this world");
  hsrl_status st;
  io_h5 *f = NULL;
  sim_provenance prov;
  memset(&prov, 0, sizeof prov);
  snprintf(prov.protocol, sizeof prov.protocol, "synthetic world v%d (sim_synth.h), seed %lld",
           SIM_SYNTH_FORMAT_VERSION, (long long)w->cfg.seed);
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(sim_dataset_write_into(f, d, &prov, sim_synth_config_hash(&w->cfg)));
  HSRL_TRY(synth_write_world(f, w));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

/* The config from /world's attributes: every field must be there (a file of this version writes
 * them all), the result must pass the checks, and its hash must be the stored one (else the
 * attributes were edited or damaged). */
static hsrl_status synth_read_config(io_h5 *f, const char *path, sim_synth_config *c) {
  hsrl_status st;
  int64_t version;
  uint64_t hash;
  sim_synth_config_defaults(c);
  if (!io_h5_exists(f, SYNTH_WORLD))
    return hsrl_err(HSRL_E_INPUT, path, 0, "/world",
                    "no ground truth: not a synthetic-world file (written by 'hsrl data synth')");
  HSRL_TRY(io_h5_attr_get_i64(f, SYNTH_WORLD, "world_format_version", &version));
  if (version != SIM_SYNTH_FORMAT_VERSION)
    return hsrl_err(HSRL_E_INPUT, path, 0, "/world/world_format_version",
                    "version %lld, this build reads version %d", (long long)version, SIM_SYNTH_FORMAT_VERSION);
  for (int64_t i = 0; i < synth_schema.n_fields; i++) {
    const hsrl_config_field *fl = &synth_fields[i];
    char *p = (char *)c + fl->offset;
    if (fl->type == HSRL_CONFIG_INT) {
      int64_t v;
      HSRL_TRY(io_h5_attr_get_i64(f, SYNTH_WORLD, fl->key, &v));
      memcpy(p, &v, sizeof v);
    } else {
      double v;
      HSRL_TRY(io_h5_attr_get_f64(f, SYNTH_WORLD, fl->key, &v));
      memcpy(p, &v, sizeof v);
    }
  }
  HSRL_TRY(io_h5_attr_get_u64(f, SYNTH_WORLD, "world_config_hash", &hash));
  if ((st = sim_synth_config_check(c)) != HSRL_OK) return hsrl_err_context(HSRL_E_CORRUPT, "%s: /world", path);
  if (hash != sim_synth_config_hash(c))
    return hsrl_err(HSRL_E_CORRUPT, path, 0, "/world/world_config_hash",
                    "the stored hash %016llx does not match the stored parameters (%016llx)",
                    (unsigned long long)hash, (unsigned long long)sim_synth_config_hash(c));
done:
  return st;
}

/* Ids read from a file index arrays: check every one before use. */
static hsrl_status synth_check_world(const sim_synth_world *w, const char *path) {
  const sim_synth_config *c = &w->cfg;
  if (w->item_topic[0] != -1 || w->item_subtopic[0] != -1 || w->user_main_topic[0] != -1)
    return hsrl_err(HSRL_E_CORRUPT, path, 0, "/world", "row 0 (padding) must have topic -1");
  for (int64_t i = 1; i <= w->n_items; i++) {
    const int64_t t = w->item_topic[i], s = w->item_subtopic[i];
    if (t < 0 || t >= c->topics || s < t * c->subtopics || s >= (t + 1) * c->subtopics)
      return hsrl_err(HSRL_E_CORRUPT, path, 0, "/world/item_topic",
                      "item %lld: topic %lld / subtopic %lld out of range (T = %lld, S = %lld)",
                      (long long)i, (long long)t, (long long)s, (long long)c->topics, (long long)c->subtopics);
    if (!isfinite(w->item_quality[i]))
      return hsrl_err(HSRL_E_CORRUPT, path, 0, "/world/item_quality", "item %lld: not finite", (long long)i);
  }
  for (int64_t u = 1; u <= w->n_users; u++)
    if (w->user_main_topic[u] < 0 || w->user_main_topic[u] >= c->topics)
      return hsrl_err(HSRL_E_CORRUPT, path, 0, "/world/user_main_topic", "user %lld: topic %d out of range",
                      (long long)u, (int)w->user_main_topic[u]);
  for (int64_t j = 0; j < (w->n_users + 1) * w->item_dim; j++)
    if (!isfinite(w->user_pref[j]))
      return hsrl_err(HSRL_E_CORRUPT, path, 0, "/world/user_pref", "user %lld: not finite",
                      (long long)(j / w->item_dim));
  return HSRL_OK;
}

/* HSRL_E_CORRUPT unless dataset `name` has shape (rows) (cols == 0) or (rows, cols). */
static hsrl_status synth_check_shape(io_h5 *f, const char *path, const char *name, int64_t rows, int64_t cols) {
  int ndims;
  int64_t dims[IO_H5_MAX_DIMS];
  hsrl_status st = io_h5_shape(f, name, &ndims, dims);
  if (st != HSRL_OK) return st;
  if (ndims != (cols ? 2 : 1) || dims[0] != rows || (cols && dims[1] != cols))
    return hsrl_err(HSRL_E_CORRUPT, path, 0, name, "shape does not match the sizes in the attributes "
                    "(%lld rows expected)", (long long)rows);
  return HSRL_OK;
}

hsrl_status sim_synth_load(sim_synth_world *w, const char *path) {
  hsrl_status st;
  io_h5 *f = NULL;
  sim_synth_config c;
  int64_t n_items, n_users, item_dim, k_len, h_len;
  memset(w, 0, sizeof *w);
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(io_h5_check_stamp(f, "data", 1, SIM_DATA_FORMAT_VERSION, NULL, NULL));
  HSRL_TRY(synth_read_config(f, path, &c));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "n_items", &n_items));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "n_users", &n_users));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "item_dim", &item_dim));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "slate_size", &k_len));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "history_len", &h_len));
  if (n_items != c.items || n_users != c.users || item_dim != c.item_features || k_len != c.slate_size ||
      h_len != c.history_len) {
    st = hsrl_err(HSRL_E_CORRUPT, path, 0, "/world",
                  "sizes disagree with the data: items %lld/%lld, users %lld/%lld, D %lld/%lld, K %lld/%lld, "
                  "H %lld/%lld (world/data)",
                  (long long)c.items, (long long)n_items, (long long)c.users, (long long)n_users,
                  (long long)c.item_features, (long long)item_dim, (long long)c.slate_size, (long long)k_len,
                  (long long)c.history_len, (long long)h_len);
    goto done;
  }
  /* Shapes before allocating: a damaged file must not make us allocate what it claims. */
  HSRL_TRY(synth_check_shape(f, path, "items/features", n_items + 1, item_dim));
  HSRL_TRY(synth_check_shape(f, path, SYNTH_WORLD "/item_topic", n_items + 1, 0));
  HSRL_TRY(synth_check_shape(f, path, SYNTH_WORLD "/user_pref", n_users + 1, item_dim));
  synth_world_alloc(w, &c);
  const int64_t d = w->item_dim, n1 = w->n_items + 1, u1 = w->n_users + 1;
  const int64_t proj = c.user_features - c.topics - SYNTH_N_ATTR_A - SYNTH_N_ATTR_B;
  HSRL_TRY(io_h5_read_f32(f, "items/features", w->item_features, n1 * d));
  HSRL_TRY(io_h5_read_i32(f, SYNTH_WORLD "/item_topic", w->item_topic, n1));
  HSRL_TRY(io_h5_read_i32(f, SYNTH_WORLD "/item_subtopic", w->item_subtopic, n1));
  HSRL_TRY(io_h5_read_f32(f, SYNTH_WORLD "/item_quality", w->item_quality, n1));
  HSRL_TRY(io_h5_read_f32(f, SYNTH_WORLD "/user_pref", w->user_pref, u1 * d));
  HSRL_TRY(io_h5_read_i32(f, SYNTH_WORLD "/user_main_topic", w->user_main_topic, u1));
  HSRL_TRY(io_h5_read_f32(f, SYNTH_WORLD "/topic_centres", w->topic_centres, c.topics * d));
  HSRL_TRY(io_h5_read_f32(f, SYNTH_WORLD "/subtopic_offsets", w->subtopic_offsets, c.topics * c.subtopics * d));
  HSRL_TRY(io_h5_read_f32(f, SYNTH_WORLD "/user_proj", w->user_proj, proj * d));
  HSRL_TRY(synth_check_world(w, path));
  for (int64_t j = 0; j < n1 * d; j++)
    if (!isfinite(w->item_features[j])) {
      st = hsrl_err(HSRL_E_CORRUPT, path, 0, "/items/features", "item %lld: not finite", (long long)(j / d));
      goto done;
    }
  synth_build_topic_lists(w);
done:
  io_h5_close(f);
  if (st != HSRL_OK) sim_synth_free(w);
  return st;
}
