/* sim_synth.h: the synthetic world (datasets.md "The synthetic world"; method.md §1-4, §9).
 *
 * A generator with a known ground truth. It serves in two ways:
 *  - as data: `hsrl data synth` writes the prepared-data format of sim_data.h (item features,
 *    user features, logged records from a noisy behaviour policy, split per user by time), so a
 *    simulator is learned from it exactly as from real data;
 *  - as a ground-truth environment: sim_synth_click_probs() is a pure function of the same
 *    inputs the learned simulator takes (user, history, slate), so the environment can call it in
 *    place of the simulator and a policy's true return can be measured.
 *
 * The world (docs/synthetic-world.md explains every parameter and why it has its value):
 *  - catalog: N items, each in one of T topics and one of S subtopics of it;
 *    x_i = centre(t) + offset(t, s) + item_noise * n_i / sqrt(D)    (D dims), quality q_i;
 *  - users: a preference vector, a weighted mix of 1..max_pref_topics topic centres plus noise,
 *    and observable features that reveal it only partly (a noisy projection of the preference and
 *    a few one-hot attributes, one of which names the main topic with some probability);
 *  - click model, for the item i shown at slate position k (0-based) to user u with history h:
 *      logit = affinity * <pref_u, x_i> + q_i + bias - pos_effect * k - satiation(h, i) - fatigue(h)
 *      satiation(h, i) = sat_topic * n_t + sat_subtopic * n_s + sat_item * n_i
 *      fatigue(h) = fatigue * sum_t share_t^2
 *    where the j-th most recent click of h (j = 0, 1, ..., among its last sat_memory entries; h
 *    holds clicked items only, left-padded with 0) counts decay^j: n_t, n_s are the weighted counts
 *    of recent clicks of i's topic and subtopic, share_t the weighted share of topic t among the
 *    recent clicks (so sum_t share_t^2 is 1 when they all share a topic, about 1/T when spread),
 *    and n_i is 1 when i itself is among the last item_memory entries of h. p = sigmoid(logit),
 *    the logit clamped to [-15, 15] so that p stays strictly inside (0, 1) in float32.
 *    Satiation and fatigue make the task sequential: a myopic policy that fills the slate with the
 *    favourite topic wins this step and makes the next ones worse (satiated topic, monotone
 *    recent clicks); docs/synthetic-world.md measures it (a topic-varying policy beats the myopic
 *    oracle by about 30% Total Reward at the demo size).
 *  - logged sessions: per user a session of slates from a noisy behaviour policy, clicks drawn
 *    from the click model, the history updated with the clicks, a per-user increasing clock; the
 *    first floor(0.8 n) slates of a user train, the rest test.
 *
 * Ids follow sim_data.h: items 1..N, users 1..U, 0 = padding (row 0 of every table is zero; its
 * topic and subtopic are -1). Subtopic ids are global: t * S + s.
 * Randomness: hsrl_rng streams keyed by (hsrl_rng_derive(seed, purpose), stream), users' sessions
 * on one stream per user, so the same seed gives the same file whatever the order of work.
 * The world is a plain struct: read-only after generation/load, safe to share between threads. */
#ifndef SIM_SYNTH_H
#define SIM_SYNTH_H

#include <stdint.h>

#include "common/hsrl_status.h"
#include "sim/sim_data.h"

#define SIM_SYNTH_FORMAT_VERSION 1
#define SIM_SYNTH_MAX_SLATE 256 /* K bound: per-call buffers live on the stack */

/* Every field is a key of the [synth] config section (the names of hsrl_settings' [synth] keys
 * where they exist there), so `--set key=value` reaches any of them. Defaults and the reasons
 * for them: docs/synthetic-world.md. */
typedef struct sim_synth_config {
  /* sizes */
  int64_t items, users;             /* N, U */
  int64_t item_features;            /* D */
  int64_t user_features;            /* P = T (topic attribute) + 6 (two attributes) + projection */
  int64_t topics, subtopics;        /* T, S (subtopics per topic) */
  int64_t slate_size, history_len;  /* K, H */
  int64_t sessions;                 /* mean logged slates per user (uniform in [s/2, 3s/2]) */
  int64_t seed;
  /* catalog */
  double topic_scale, subtopic_scale, item_noise, quality_std;
  /* users */
  int64_t max_pref_topics;          /* a user likes 1..max_pref_topics topics */
  double pref_second_lo, pref_second_hi; /* weights of the extra topics ~ U(lo, hi); main: 1 */
  double pref_noise, feature_noise; /* preference noise; noise of the observable projection */
  double attr_reveal;               /* P(the topic attribute names the main topic) */
  /* click model */
  double affinity, bias, pos_effect;
  int64_t sat_memory, item_memory;  /* M: recent clicks that satiate; recent clicks not re-clicked */
  double sat_decay;                 /* weight of the j-th most recent click: decay^j */
  double sat_topic, sat_subtopic, sat_item;
  double fatigue;                   /* weight of the topic concentration of the recent clicks */
  /* behaviour policy of the logged sessions */
  double behav_noise;               /* noise on its estimate of the preference */
  double behav_topic_beta;          /* sharpness of its topic choice */
  double behav_temp;                /* Gumbel temperature of its item choice */
  double behav_eps;                 /* fraction of uniformly random candidates */
  int64_t behav_cand_mult;          /* candidates drawn per slate = mult * K */
} sim_synth_config;

/* The demo defaults (N = U = 2000, D = 16, T = 8, S = 4, K = 10, H = 50). */
void sim_synth_config_defaults(sim_synth_config *c);
/* HSRL_E_USAGE naming the field when a value is out of range or fields disagree. */
hsrl_status sim_synth_config_check(const sim_synth_config *c);
/* Sets the field called `key` ("sat_topic", "items", ...) from text; HSRL_E_USAGE for an unknown
 * key (naming the closest valid one) or a malformed value. */
hsrl_status sim_synth_config_set(sim_synth_config *c, const char *key, const char *value);
/* Prints every field as "key = value" with its help to f (a FILE *; void * keeps stdio out). */
void sim_synth_config_print(const sim_synth_config *c, void *f);
uint64_t sim_synth_config_hash(const sim_synth_config *c);
/* For the pipeline: defaults, then the keys of a run config's [synth] section (items, users,
 * topics, subtopics, item_features, user_features, sessions, seed) and [data] slate_size and
 * history_len; then sim_synth_config_check. */
struct hsrl_settings;
hsrl_status sim_synth_config_from_settings(sim_synth_config *c, const struct hsrl_settings *s);

typedef struct sim_synth_world {
  sim_synth_config cfg;
  int64_t n_items, n_users, item_dim; /* N, U, D (copies of cfg's) */
  float *item_features;    /* (N+1, D) */
  int32_t *item_topic;     /* (N+1) -1 at 0 */
  int32_t *item_subtopic;  /* (N+1) global subtopic id t * S + s, -1 at 0 */
  float *item_quality;     /* (N+1) */
  float *user_pref;        /* (U+1, D) */
  int32_t *user_main_topic;/* (U+1) the topic of weight 1, -1 at 0 */
  float *topic_centres;    /* (T, D) */
  float *subtopic_offsets; /* (T * S, D) */
  float *user_proj;        /* (P - T - 6, D) the projection revealed in the user features */
  int64_t *topic_start;    /* (T+1) items of topic t: topic_items[topic_start[t] .. topic_start[t+1]) */
  int32_t *topic_items;    /* (N) ascending within each topic */
} sim_synth_world;

/* Generates the world from cfg; when d is not NULL also the logged sessions into d (allocated
 * here with sim_dataset_alloc; free with sim_dataset_free). Time and memory linear in N and in
 * the number of records; no slate scans the catalog. */
hsrl_status sim_synth_generate(sim_synth_world *w, sim_dataset *d, const sim_synth_config *cfg);
void sim_synth_free(sim_synth_world *w); /* NULL ok; leaves w zeroed */

/* Writes d (sim_dataset_write_into; provenance protocol "synthetic world v1 ...", config hash =
 * sim_synth_config_hash) with the ground truth under /world: item_topic, item_subtopic,
 * item_quality, user_pref, user_main_topic, topic_centres, subtopic_offsets, user_proj, every
 * config field as an attribute of /world, plus world_format_version, world_config_hash and the
 * INI text as "config". Atomic: nothing is left under path on failure. */
hsrl_status sim_synth_write(const sim_synth_world *w, const sim_dataset *d, const char *path);
/* Loads the world of a file written by sim_synth_write (item features from /items/features).
 * HSRL_E_INPUT for a file without /world or of another version; HSRL_E_CORRUPT when the stored
 * parameters fail their checks or their hash, or an id is out of range. w is zeroed on error. */
hsrl_status sim_synth_load(sim_synth_world *w, const char *path);

/* Ground-truth click probabilities of one user: history (H) left-padded with 0, slate (K) item
 * ids (1..N) -> out_p (K). Pure, allocates nothing. */
void sim_synth_click_probs(const sim_synth_world *w, int32_t user_id, const int32_t *history,
                           const int32_t *slate, float *out_p);
/* The same for b users: user_ids (b), histories (b, H), slates (b, K) -> out_p (b, K). The
 * argument order matches sim_click_model's probs callback after its ctx. */
void sim_synth_click_probs_batch(const sim_synth_world *w, int64_t b, const int32_t *user_ids,
                                 const int32_t *histories, const int32_t *slates, float *out_p);

/* Parts of the click model, for policies and tests:
 * the logit at slate position 0 (affinity, quality, bias, satiation, fatigue) of n items
 * (ids 1..N) = base - (satiation + fatigue), bit for bit; the myopic oracle ranks items by it
 * (the position effect is the same for every item). */
void sim_synth_item_logits(const sim_synth_world *w, int32_t user_id, const int32_t *history,
                           const int32_t *items, int64_t n, float *out_logit);
/* The part that does not depend on the history: affinity * <pref, x> + q + bias. */
void sim_synth_base_logits(const sim_synth_world *w, int32_t user_id, const int32_t *items,
                           int64_t n, float *out_logit);
/* sat_topic * n_t + sat_subtopic * n_s + sat_item * n_i for item i after history h. */
float sim_synth_satiation(const sim_synth_world *w, const int32_t *history, int32_t item);
/* The part shared by every item: fatigue * (recency-weighted topic concentration of the last M
 * clicks, in [0, 1]). A myopic policy cannot change it now; its slate sets the next one. */
float sim_synth_fatigue(const sim_synth_world *w, const int32_t *history);
float sim_synth_position_effect(const sim_synth_world *w, int64_t k); /* pos_effect * k */
/* Satiation for many items at once (a catalog-wide oracle): fills topic_sat (T) and
 * subtopic_sat (T * S) so that, bit for bit,
 *   sim_synth_satiation(w, h, i) == topic_sat[topic(i)] + subtopic_sat[subtopic(i)]
 *                                   + sat_item * [i among the last item_memory entries of h]
 * (summed in that order). O(T * S + M). */
void sim_synth_satiation_tables(const sim_synth_world *w, const int32_t *history, float *topic_sat,
                                float *subtopic_sat);

/* `hsrl data synth --items N --users U --seed S --out FILE [...]`; argv[0] is "synth".
 * Returns an exit status (0, 2 usage/input, 1 internal). */
int sim_synth_command(int argc, char **argv);

#endif
