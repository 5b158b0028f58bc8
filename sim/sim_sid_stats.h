/* sim_sid_stats.h: statistics of a Semantic-ID assignment (method.md §5; docs/semantic-ids.md):
 * per level token usage, entropy and perplexity (the "hourglass" effect: a middle level whose
 * codes are used far less evenly than its neighbours'), reconstruction error after each level,
 * collisions (items sharing a full SID) and items per prefix.
 *
 * Computed over the live items only (live[i] != 0; every row when live is NULL). Entropies are in
 * bits; perplexity = 2^H (the number of equally used codes with the same entropy). */
#ifndef SIM_SID_STATS_H
#define SIM_SID_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "sim/sim_sid_codebook.h"

typedef struct sim_sid_level_stats {
  int64_t vocab;            /* V_l */
  int64_t used;             /* distinct codes at this level */
  double entropy_bits;      /* of the level's marginal code distribution */
  double perplexity;        /* 2^entropy */
  double cond_perplexity;   /* 2^H(z_l | z_1..z_{l-1}): codes effectively used per prefix */
  /* prefixes z_1..z_l (length l+1): how many, and items per prefix */
  int64_t n_prefixes;
  double prefix_mean;
  int64_t prefix_median, prefix_p90, prefix_p99, prefix_max;
  double mse;               /* mean |r_l|^2 after this level (NAN without vectors) */
  double rel_mse;           /* mse / total variance of the vectors (NAN without vectors) */
} sim_sid_level_stats;

typedef struct sim_sid_stats {
  int n_levels;
  int64_t n_items;          /* live items counted */
  int64_t n_distinct;       /* distinct full SIDs */
  int64_t n_colliding;      /* items sharing their full SID with another item */
  double collision_rate;    /* n_colliding / n_items */
  int64_t largest_bucket;   /* most items on one full SID */
  double mean_sq_norm;      /* mean |x|^2 (NAN without vectors) */
  double total_variance;    /* mean |x - mean x|^2 (NAN without vectors) */
  sim_sid_level_stats level[SIM_SID_MAX_LEVELS];
} sim_sid_stats;

/* tokens (n_rows, L) with L = cb->n_levels; live (n_rows) or NULL; vectors (n_rows, cb->dim) or
 * NULL (then no reconstruction error; cb is only read when vectors are given, except n_levels and
 * vocab). Allocates its work memory per call. */
void sim_sid_stats_compute(sim_sid_stats *s, const sim_sid_codebook *cb, const uint16_t *tokens,
                           const uint8_t *live, int64_t n_rows, const float *vectors);

/* A readable table on f (the `hsrl sid stats` output). */
void sim_sid_stats_print(const sim_sid_stats *s, FILE *f);

#endif
