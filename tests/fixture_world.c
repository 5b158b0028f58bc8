/* fixture_world.c: see fixture_world.h. */
#include "tests/fixture_world.h"

#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "sim/sim_data.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_synth.h"

int fixture_world_write(const fixture_world_spec *spec, const char *data_path, const char *sid_path) {
  sim_synth_config c;
  sim_synth_config_defaults(&c);
  c.items = spec->items, c.users = spec->users, c.item_features = 8, c.user_features = 12;
  c.topics = 4, c.subtopics = 2, c.slate_size = 4, c.history_len = 10, c.sessions = 10;
  c.seed = spec->seed, c.sat_memory = 8, c.item_memory = 10;
  sim_synth_world w;
  sim_dataset d;
  if (sim_synth_generate(&w, &d, &c) != HSRL_OK) return 0;
  int ok = sim_synth_write(&w, &d, data_path) == HSRL_OK;
  sim_sid_file f;
  memset(&f, 0, sizeof f);
  f.cb.n_levels = 2, f.cb.vocab[0] = c.topics, f.cb.vocab[1] = spec->sid_vocab2, f.cb.dim = spec->sid_dim;
  for (int l = 0; l < 2; l++)
    f.cb.centers[l] = hsrl_calloc((size_t)(f.cb.vocab[l] * f.cb.dim), sizeof(float));
  f.n_items = c.items;
  f.tokens = hsrl_calloc((size_t)(c.items + 1) * 2, sizeof(uint16_t));
  f.live = hsrl_calloc((size_t)(c.items + 1), 1);
  for (int64_t i = 1; i <= c.items; i++) {
    f.tokens[i * 2] = (uint16_t)w.item_topic[i];
    f.tokens[i * 2 + 1] = (uint16_t)(i % spec->sid_vocab2);
    f.live[i] = 1;
  }
  snprintf(f.vectors, sizeof f.vectors, "features");
  ok = ok && sim_sid_file_write(&f, sid_path) == HSRL_OK;
  sim_sid_file_free(&f);
  sim_synth_free(&w);
  sim_dataset_free(&d);
  return ok;
}
