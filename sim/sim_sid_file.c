/* sim_sid_file.c: reading and writing <dataset>.sid.h5 (sim_sid_file.h; method.md §5). */
#include "sim/sim_sid_file.h"

#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/io/io_h5.h"
#include "sim/sim_sid_stats.h"

void sim_sid_file_free(sim_sid_file *f) {
  if (!f) return;
  sim_sid_codebook_free(&f->cb);
  hsrl_free(f->tokens);
  hsrl_free(f->live);
  memset(f, 0, sizeof *f);
}

/* Shape and content rules shared by the writer (a violation there is a caller's bad input) and the
 * reader (a file that breaks them). */
static hsrl_status sid_file_validate(const sim_sid_file *f, const char *path, hsrl_status code) {
  const sim_sid_codebook *cb = &f->cb;
  if (cb->n_levels < 1 || cb->n_levels > SIM_SID_MAX_LEVELS)
    return hsrl_err(code, path, 0, "n_levels", "%d; 1..%d are supported", cb->n_levels, SIM_SID_MAX_LEVELS);
  if (cb->dim < 1) return hsrl_err(code, path, 0, "dim", "%lld; must be >= 1", (long long)cb->dim);
  if (f->n_items < 0) return hsrl_err(code, path, 0, "n_items", "%lld < 0", (long long)f->n_items);
  for (int l = 0; l < cb->n_levels; l++) {
    if (cb->vocab[l] < 1 || cb->vocab[l] > 65536)
      return hsrl_err(code, path, 0, "vocab", "level %d: %lld; 1..65536 are supported", l,
                      (long long)cb->vocab[l]);
    if (!cb->centers[l]) return hsrl_err(code, path, 0, "codebook", "level %d: no centres", l);
  }
  if (!f->tokens || !f->live) return hsrl_err(code, path, 0, "items", "tokens or live missing");
  if (f->live[0] != 0) return hsrl_err(code, path, 0, "items/live", "row 0 (padding) is marked live");
  int L = cb->n_levels;
  for (int64_t i = 1; i <= f->n_items; i++) {
    if (f->live[i] > 1)
      return hsrl_err(code, path, 0, "items/live", "row %lld: %u; must be 0 or 1", (long long)i,
                      (unsigned)f->live[i]);
    for (int l = 0; l < L; l++)
      if (f->tokens[i * L + l] >= cb->vocab[l])
        return hsrl_err(code, path, 0, "items/tokens", "row %lld, level %d: token %u >= vocabulary %lld",
                        (long long)i, l, (unsigned)f->tokens[i * L + l], (long long)cb->vocab[l]);
  }
  return HSRL_OK;
}

hsrl_status sim_sid_file_write_ex(const sim_sid_file *f, const float *vectors, const char *build_note,
                                  const char *path) {
  hsrl_status st = sid_file_validate(f, path, HSRL_E_INPUT);
  if (st != HSRL_OK) return st;
  if (f->vectors[0] == '\0' || memchr(f->vectors, '\0', sizeof f->vectors) == NULL)
    return hsrl_err(HSRL_E_INPUT, path, 0, "vectors", "the vector source must be a short name");
  const sim_sid_codebook *cb = &f->cb;
  int L = cb->n_levels;
  int64_t rows = f->n_items + 1;
  sim_sid_stats s;
  sim_sid_stats_compute(&s, cb, f->tokens, f->live, rows, vectors);

  io_h5 *h = NULL;
  char vocab[128] = "", name[64];
  size_t used = 0;
  for (int l = 0; l < L; l++)
    used += (size_t)snprintf(vocab + used, sizeof vocab - used, "%s%lld", l ? "," : "", (long long)cb->vocab[l]);
  HSRL_TRY(io_h5_create(&h, path));
  HSRL_TRY(io_h5_stamp(h, "sid", SIM_SID_FORMAT_VERSION, f->config_hash));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "n_levels", L));
  HSRL_TRY(io_h5_attr_set_str(h, "/", "vocab", vocab));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "dim", cb->dim));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "n_items", f->n_items));
  HSRL_TRY(io_h5_attr_set_str(h, "/", "vectors", f->vectors));
  if (build_note) HSRL_TRY(io_h5_attr_set_str(h, "/", "build", build_note));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "n_live", s.n_items));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "n_distinct_sids", s.n_distinct));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "n_colliding", s.n_colliding));
  HSRL_TRY(io_h5_attr_set_f64(h, "/", "collision_rate", s.collision_rate));
  HSRL_TRY(io_h5_attr_set_i64(h, "/", "largest_bucket", s.largest_bucket));
  for (int l = 0; l < L; l++) {
    snprintf(name, sizeof name, "codebook/level%d", l);
    int64_t dims[2] = {cb->vocab[l], cb->dim};
    HSRL_TRY(io_h5_write_f32(h, name, cb->centers[l], 2, dims, IO_H5_ZSTD));
  }
  int64_t tdims[2] = {rows, L};
  HSRL_TRY(io_h5_write_u16(h, "items/tokens", f->tokens, 2, tdims, IO_H5_ZSTD));
  HSRL_TRY(io_h5_write_u8(h, "items/live", f->live, 1, &rows, IO_H5_ZSTD));
  if (vectors) {
    int64_t vdims[2] = {rows, cb->dim};
    HSRL_TRY(io_h5_write_f32(h, "items/vectors", vectors, 2, vdims, IO_H5_ZSTD));
  }
  {
    int64_t used_l[SIM_SID_MAX_LEVELS], pref[SIM_SID_MAX_LEVELS], nl = L;
    double perp[SIM_SID_MAX_LEVELS], mse[SIM_SID_MAX_LEVELS];
    for (int l = 0; l < L; l++) {
      used_l[l] = s.level[l].used;
      pref[l] = s.level[l].n_prefixes;
      perp[l] = s.level[l].perplexity;
      mse[l] = s.level[l].mse;
    }
    HSRL_TRY(io_h5_write_i64(h, "stats/tokens_used", used_l, 1, &nl, IO_H5_ZSTD));
    HSRL_TRY(io_h5_write_f64(h, "stats/perplexity", perp, 1, &nl, IO_H5_ZSTD));
    HSRL_TRY(io_h5_write_i64(h, "stats/n_prefixes", pref, 1, &nl, IO_H5_ZSTD));
    if (vectors) HSRL_TRY(io_h5_write_f64(h, "stats/mse_after", mse, 1, &nl, IO_H5_ZSTD));
  }
  st = io_h5_commit(h);
  h = NULL;
done:
  io_h5_close(h);
  return st;
}

hsrl_status sim_sid_file_write(const sim_sid_file *f, const char *path) {
  return sim_sid_file_write_ex(f, NULL, NULL, path);
}

/* An int64 root attribute that must lie in [lo, hi]. */
static hsrl_status sid_file_attr_range(io_h5 *h, const char *path, const char *attr, int64_t lo,
                                       int64_t hi, int64_t *out) {
  hsrl_status st = io_h5_attr_get_i64(h, "/", attr, out);
  if (st != HSRL_OK) return st;
  if (*out < lo || *out > hi)
    return hsrl_err(HSRL_E_INPUT, path, 0, attr, "%lld is outside [%lld, %lld]", (long long)*out,
                    (long long)lo, (long long)hi);
  return HSRL_OK;
}

hsrl_status sim_sid_file_read(sim_sid_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  io_h5 *h = NULL;
  hsrl_status st = HSRL_OK;
  int64_t L = 0, dim = 0, n_items = 0;
  char name[64];
  HSRL_TRY(io_h5_open(&h, path));
  HSRL_TRY(io_h5_check_stamp(h, "sid", SIM_SID_FORMAT_VERSION, SIM_SID_FORMAT_VERSION, NULL, &f->config_hash));
  HSRL_TRY(sid_file_attr_range(h, path, "n_levels", 1, SIM_SID_MAX_LEVELS, &L));
  HSRL_TRY(sid_file_attr_range(h, path, "dim", 1, (int64_t)1 << 24, &dim));
  HSRL_TRY(sid_file_attr_range(h, path, "n_items", 0, (int64_t)1 << 40, &n_items));
  HSRL_TRY(io_h5_attr_get_str(h, "/", "vectors", f->vectors, sizeof f->vectors));
  f->cb.n_levels = (int)L;
  f->cb.dim = dim;
  f->n_items = n_items;
  for (int l = 0; l < (int)L; l++) {
    int nd = 0;
    int64_t dims[IO_H5_MAX_DIMS];
    snprintf(name, sizeof name, "codebook/level%d", l);
    HSRL_TRY(io_h5_shape(h, name, &nd, dims));
    if (nd != 2 || dims[1] != dim || dims[0] < 1 || dims[0] > 65536) {
      st = hsrl_err(HSRL_E_INPUT, path, 0, name, "shape must be (V, %lld) with 1 <= V <= 65536",
                    (long long)dim);
      goto done;
    }
    f->cb.vocab[l] = dims[0];
    f->cb.centers[l] = hsrl_malloc((size_t)(dims[0] * dim) * sizeof(float));
    HSRL_TRY(io_h5_read_f32(h, name, f->cb.centers[l], dims[0] * dim));
  }
  {
    int nd = 0;
    int64_t dims[IO_H5_MAX_DIMS];
    HSRL_TRY(io_h5_shape(h, "items/tokens", &nd, dims));
    if (nd != 2 || dims[0] != n_items + 1 || dims[1] != L) {
      st = hsrl_err(HSRL_E_INPUT, path, 0, "items/tokens", "shape must be (%lld, %lld)",
                    (long long)(n_items + 1), (long long)L);
      goto done;
    }
  }
  f->tokens = hsrl_malloc((size_t)((n_items + 1) * L) * sizeof *f->tokens);
  f->live = hsrl_malloc((size_t)(n_items + 1) * sizeof *f->live);
  HSRL_TRY(io_h5_read_u16(h, "items/tokens", f->tokens, (n_items + 1) * L));
  HSRL_TRY(io_h5_read_u8(h, "items/live", f->live, n_items + 1));
  HSRL_TRY(sid_file_validate(f, path, HSRL_E_INPUT));
done:
  io_h5_close(h);
  if (st != HSRL_OK) sim_sid_file_free(f);
  return st;
}

hsrl_status sim_sid_file_read_vectors(float **vectors, int64_t *n_rows, int64_t *dim, const char *path) {
  *vectors = NULL;
  *n_rows = *dim = 0;
  io_h5 *h = NULL;
  hsrl_status st = HSRL_OK;
  void *data = NULL;
  HSRL_TRY(io_h5_open(&h, path));
  HSRL_TRY(io_h5_check_stamp(h, "sid", SIM_SID_FORMAT_VERSION, SIM_SID_FORMAT_VERSION, NULL, NULL));
  if (!io_h5_exists(h, "items/vectors")) goto done;
  int nd = 0;
  int64_t dims[IO_H5_MAX_DIMS];
  HSRL_TRY(io_h5_read_alloc(h, "items/vectors", IO_H5_F32, &data, &nd, dims));
  if (nd != 2) {
    st = hsrl_err(HSRL_E_INPUT, path, 0, "items/vectors", "has %d dimensions, expected 2", nd);
    goto done;
  }
  *vectors = data;
  data = NULL;
  *n_rows = dims[0];
  *dim = dims[1];
done:
  hsrl_free(data);
  io_h5_close(h);
  return st;
}
