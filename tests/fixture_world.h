/* fixture_world.h: a tiny synthetic world and a two-level Semantic-ID file for learner tests.
 *
 * Writes a prepared-data file from sim_synth (4 topics x 2 subtopics, K 4, H 10, 8 item and 12
 * user features, 10 sessions per user) and a SID file whose tokens are (item topic, id mod
 * sid_vocab2), with all-zero codebooks of width sid_dim; every item live. Returns 1 on success. */
#ifndef FIXTURE_WORLD_H
#define FIXTURE_WORLD_H

#include <stdint.h>

typedef struct fixture_world_spec {
  int64_t items, users;
  uint64_t seed;
  int64_t sid_vocab2; /* vocabulary of the second SID level */
  int64_t sid_dim;    /* width of the (zero) codebook centres */
} fixture_world_spec;

int fixture_world_write(const fixture_world_spec *spec, const char *data_path, const char *sid_path);

#endif
