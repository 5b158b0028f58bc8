/* replay_limiter.c: Reverb's SampleToInsertRatio rate limiter (see replay_limiter.h). */
#include "replay/replay_limiter.h"

#include <math.h>

#include "common/hsrl_check.h"

hsrl_status replay_limiter_init(replay_limiter *l, const replay_limiter_config *cfg) {
  const double spi = cfg->samples_per_insert;
  if (!(spi > 0.0) || !isfinite(spi))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "samples_per_insert", "%g: must be a finite value > 0", spi);
  if (cfg->min_size_to_sample < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "min_size_to_sample", "%lld: must be >= 1",
                    (long long)cfg->min_size_to_sample);
  const double floor_buffer = spi > 1.0 ? spi : 1.0;
  if (!(cfg->error_buffer >= floor_buffer) || !isfinite(cfg->error_buffer))
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "error_buffer",
                    "%g: must be >= max(1, samples_per_insert) = %g, or inserts and samples can "
                    "both be blocked",
                    cfg->error_buffer, floor_buffer);
  const double offset = spi * (double)cfg->min_size_to_sample;
  l->cfg = *cfg;
  l->min_diff = offset - cfg->error_buffer;
  l->max_diff = offset + cfg->error_buffer;
  l->inserts = l->samples = l->deletes = 0;
  return HSRL_OK;
}

double replay_limiter_min_error_buffer(double samples_per_insert, int64_t n_insert, int64_t n_sample) {
  double b = 0.5 * ((double)n_insert * samples_per_insert + (double)n_sample);
  double floor_buffer = samples_per_insert > 1.0 ? samples_per_insert : 1.0;
  return b > floor_buffer ? b : floor_buffer;
}

int replay_limiter_can_insert(const replay_limiter *l, int64_t n) {
  HSRL_CHECK(n >= 1);
  if (l->inserts + n - l->deletes <= l->cfg.min_size_to_sample) return 1;
  return (double)(l->inserts + n) * l->cfg.samples_per_insert - (double)l->samples <= l->max_diff;
}

int replay_limiter_can_sample(const replay_limiter *l, int64_t n) {
  HSRL_CHECK(n >= 1);
  if (l->inserts - l->deletes < l->cfg.min_size_to_sample) return 0;
  return (double)l->inserts * l->cfg.samples_per_insert - (double)l->samples - (double)n >= l->min_diff;
}

void replay_limiter_insert(replay_limiter *l, int64_t n) { l->inserts += n; }
void replay_limiter_sample(replay_limiter *l, int64_t n) { l->samples += n; }
void replay_limiter_delete(replay_limiter *l, int64_t n) {
  HSRL_CHECK(l->deletes + n <= l->inserts);
  l->deletes += n;
}

double replay_limiter_diff(const replay_limiter *l) {
  return (double)l->inserts * l->cfg.samples_per_insert - (double)l->samples;
}
int64_t replay_limiter_size(const replay_limiter *l) { return l->inserts - l->deletes; }

hsrl_status replay_limiter_set_counts(replay_limiter *l, int64_t inserts, int64_t samples,
                                      int64_t deletes, const char *source) {
  if (inserts < 0 || samples < 0 || deletes < 0 || deletes > inserts)
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "limiter",
                    "inconsistent counters: inserts %lld, samples %lld, deletes %lld",
                    (long long)inserts, (long long)samples, (long long)deletes);
  l->inserts = inserts, l->samples = samples, l->deletes = deletes;
  return HSRL_OK;
}
