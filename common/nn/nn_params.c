/* nn_params.c: see nn_params.h. Entries live in one array that may grow until finalize; lookups
 * are linear scans (tables hold tens of tensors and are searched at model set-up, not per step). */
#include "common/nn/nn_params.h"

#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

struct nn_params {
  nn_param_entry *entries; /* (capacity) */
  int64_t n_entries, capacity;
  int64_t size;       /* floats per buffer, a multiple of NN_PARAMS_ALIGN */
  int64_t n_elements; /* sum of entry sizes */
  int finalized;
  int64_t adam_step;
  float *values, *grads, *m, *v; /* (size) each */
};

nn_params *nn_params_init(int64_t capacity) {
  HSRL_CHECK(capacity >= 0);
  nn_params *p = hsrl_calloc(1, sizeof *p);
  p->capacity = capacity > 0 ? capacity : 16;
  p->entries = hsrl_calloc((size_t)p->capacity, sizeof *p->entries);
  return p;
}

void nn_params_free(nn_params *p) {
  if (!p) return;
  hsrl_free(p->values);
  hsrl_free(p->grads);
  hsrl_free(p->m);
  hsrl_free(p->v);
  hsrl_free(p->entries);
  hsrl_free(p);
}

static int params_name_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '/';
}

/* 1 if name is a valid tensor path (see the header). */
static int params_name_ok(const char *name) {
  size_t len = strnlen(name, NN_PARAMS_NAME_MAX);
  if (len == 0 || len >= NN_PARAMS_NAME_MAX) return 0;
  if (strncmp(name, "optim/", 6) == 0 || strncmp(name, "grad/", 5) == 0) return 0;
  const char *comp = name; /* start of the current component */
  for (size_t i = 0; i <= len; i++) {
    char c = name[i];
    if (c == '/' || c == '\0') {
      size_t n = (size_t)(name + i - comp);
      if (n == 0) return 0; /* leading, trailing or doubled '/' */
      if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.')) return 0;
      comp = name + i + 1;
    } else if (!params_name_char_ok(c)) {
      return 0;
    }
  }
  return 1;
}

int64_t nn_params_add(nn_params *p, const char *name, int ndim, const int64_t *dims) {
  HSRL_CHECK(p != NULL && name != NULL);
  HSRL_CHECKF(!p->finalized, "nn_params_add('%s') after finalize", name);
  HSRL_CHECKF(params_name_ok(name), "bad parameter name '%.*s'", NN_PARAMS_NAME_MAX, name);
  HSRL_CHECKF(nn_params_find(p, name) == NULL, "duplicate parameter name '%s'", name);
  HSRL_CHECKF(ndim >= 1 && ndim <= NN_PARAMS_MAX_DIMS, "parameter '%s': ndim %d", name, ndim);
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    HSRL_CHECKF(dims[d] >= 0, "parameter '%s': dim %d is %lld", name, d, (long long)dims[d]);
    HSRL_CHECKF(dims[d] == 0 || n <= INT64_MAX / 4 / dims[d], "parameter '%s' is too large", name);
    n *= dims[d];
  }
  if (p->n_entries == p->capacity) {
    p->capacity *= 2;
    p->entries = hsrl_realloc(p->entries, (size_t)p->capacity * sizeof *p->entries);
  }
  nn_param_entry *e = &p->entries[p->n_entries++];
  memset(e, 0, sizeof *e);
  memcpy(e->name, name, strlen(name) + 1);
  e->ndim = ndim;
  for (int d = 0; d < ndim; d++) e->dims[d] = dims[d];
  e->n = n;
  e->offset = p->size;
  HSRL_CHECKF(n <= INT64_MAX / 4 - p->size, "parameter table too large at '%s'", name);
  p->size += (n + NN_PARAMS_ALIGN - 1) / NN_PARAMS_ALIGN * NN_PARAMS_ALIGN;
  p->n_elements += n;
  return e->offset;
}

int64_t nn_params_add1(nn_params *p, const char *name, int64_t d0) {
  int64_t dims[1] = {d0};
  return nn_params_add(p, name, 1, dims);
}

int64_t nn_params_add2(nn_params *p, const char *name, int64_t d0, int64_t d1) {
  int64_t dims[2] = {d0, d1};
  return nn_params_add(p, name, 2, dims);
}

int64_t nn_params_add3(nn_params *p, const char *name, int64_t d0, int64_t d1, int64_t d2) {
  int64_t dims[3] = {d0, d1, d2};
  return nn_params_add(p, name, 3, dims);
}

void nn_params_finalize(nn_params *p) {
  HSRL_CHECK(p != NULL);
  HSRL_CHECKF(!p->finalized, "nn_params_finalize called twice");
  /* At least one block each, so that an empty table still has valid (zero) buffers. */
  size_t n_bytes = (size_t)(p->size > 0 ? p->size : NN_PARAMS_ALIGN) * sizeof(float);
  p->values = hsrl_alloc_aligned(n_bytes);
  p->grads = hsrl_alloc_aligned(n_bytes);
  p->m = hsrl_alloc_aligned(n_bytes);
  p->v = hsrl_alloc_aligned(n_bytes);
  p->finalized = 1;
  p->adam_step = 0;
}

int64_t nn_params_count(const nn_params *p) { return p->n_entries; }
int64_t nn_params_size(const nn_params *p) { return p->size; }
int64_t nn_params_n_elements(const nn_params *p) { return p->n_elements; }

const nn_param_entry *nn_params_entry(const nn_params *p, int64_t i) {
  HSRL_CHECKF(i >= 0 && i < p->n_entries, "entry %lld of %lld", (long long)i,
              (long long)p->n_entries);
  return &p->entries[i];
}

const nn_param_entry *nn_params_find(const nn_params *p, const char *name) {
  for (int64_t i = 0; i < p->n_entries; i++)
    if (strcmp(p->entries[i].name, name) == 0) return &p->entries[i];
  return NULL;
}

int nn_params_same_layout(const nn_params *a, const nn_params *b) {
  if (a->n_entries != b->n_entries || a->size != b->size) return 0;
  for (int64_t i = 0; i < a->n_entries; i++) {
    const nn_param_entry *x = &a->entries[i], *y = &b->entries[i];
    if (strcmp(x->name, y->name) != 0 || x->ndim != y->ndim || x->offset != y->offset) return 0;
    for (int d = 0; d < x->ndim; d++)
      if (x->dims[d] != y->dims[d]) return 0;
  }
  return 1;
}

static void params_check_finalized(const nn_params *p) {
  HSRL_CHECKF(p != NULL && p->finalized, "parameter table used before nn_params_finalize");
}

float *nn_params_values(const nn_params *p) { params_check_finalized(p); return p->values; }
float *nn_params_grads(const nn_params *p) { params_check_finalized(p); return p->grads; }
float *nn_params_adam_m(const nn_params *p) { params_check_finalized(p); return p->m; }
float *nn_params_adam_v(const nn_params *p) { params_check_finalized(p); return p->v; }

static const nn_param_entry *params_must_find(const nn_params *p, const char *name) {
  const nn_param_entry *e = nn_params_find(p, name);
  HSRL_CHECKF(e != NULL, "no parameter named '%s'", name);
  return e;
}

float *nn_params_value_of(const nn_params *p, const char *name) {
  params_check_finalized(p);
  return p->values + params_must_find(p, name)->offset;
}

float *nn_params_grad_of(const nn_params *p, const char *name) {
  params_check_finalized(p);
  return p->grads + params_must_find(p, name)->offset;
}

void nn_params_zero_grads(nn_params *p) {
  params_check_finalized(p);
  memset(p->grads, 0, (size_t)p->size * sizeof(float));
}

int64_t nn_params_adam_step(const nn_params *p) { return p->adam_step; }

void nn_params_adam_update(nn_params *p, const nn_adam_config *cfg) {
  params_check_finalized(p);
  p->adam_step++;
  nn_adam_step(p->values, p->grads, p->m, p->v, p->size, p->adam_step, cfg);
}

/* ---- HDF5 checkpoints ---- */

/* The sections of a checkpoint: dataset prefix, buffer, and the flag that selects it. */
enum { PARAMS_VALUES, PARAMS_M, PARAMS_V, PARAMS_GRADS, PARAMS_N_SECTIONS };
static const char *const params_prefix[PARAMS_N_SECTIONS] = {"", "optim/m/", "optim/v/", "grad/"};
static const int params_section_flag[PARAMS_N_SECTIONS] = {0, NN_PARAMS_OPTIM, NN_PARAMS_OPTIM,
                                                           NN_PARAMS_GRADS};
#define PARAMS_STEP_ATTR "adam_step"
#define PARAMS_PATH_MAX (NN_PARAMS_NAME_MAX + 16)

static float *params_section_buffer(const nn_params *p, int s) {
  float *const buf[PARAMS_N_SECTIONS] = {p->values, p->m, p->v, p->grads};
  return buf[s];
}

static int params_section_used(int s, int flags) {
  return params_section_flag[s] == 0 || (flags & params_section_flag[s]) != 0;
}

/* "(4,3)" */
static void params_shape_str(char *buf, size_t cap, int ndim, const int64_t *dims) {
  size_t n = (size_t)snprintf(buf, cap, "(");
  for (int d = 0; d < ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, d ? ",%lld" : "%lld", (long long)dims[d]);
  if (n < cap) snprintf(buf + n, cap - n, ")");
}

hsrl_status nn_params_write(const nn_params *p, io_h5 *f, int flags) {
  params_check_finalized(p);
  HSRL_CHECKF((flags & ~(NN_PARAMS_OPTIM | NN_PARAMS_GRADS)) == 0, "flags %d", flags);
  hsrl_status st = HSRL_OK;
  char path[PARAMS_PATH_MAX];
  for (int s = 0; s < PARAMS_N_SECTIONS; s++) {
    if (!params_section_used(s, flags)) continue;
    const float *buf = params_section_buffer(p, s);
    for (int64_t i = 0; i < p->n_entries; i++) {
      const nn_param_entry *e = &p->entries[i];
      snprintf(path, sizeof path, "%s%s", params_prefix[s], e->name);
      /* compressed for zstd's frame checksum: damaged data fails to load, never loads wrong */
      st = io_h5_write_f32(f, path, buf + e->offset, e->ndim, e->dims, IO_H5_ZSTD);
      if (st != HSRL_OK) return st;
      if (s == PARAMS_M) { /* the step travels with the moments it belongs to */
        st = io_h5_attr_set_i64(f, path, PARAMS_STEP_ATTR, p->adam_step);
        if (st != HSRL_OK) return st;
      }
    }
  }
  return HSRL_OK;
}

/* Checks that every dataset the read needs exists with the table's shape, and finds the step. */
static hsrl_status params_read_check(const nn_params *p, io_h5 *f, const char *file, int flags,
                                     int64_t *step) {
  char path[PARAMS_PATH_MAX], have[256], want[256];
  hsrl_status st = HSRL_OK;
  for (int s = 0; s < PARAMS_N_SECTIONS; s++) {
    if (!params_section_used(s, flags)) continue;
    for (int64_t i = 0; i < p->n_entries; i++) {
      const nn_param_entry *e = &p->entries[i];
      snprintf(path, sizeof path, "%s%s", params_prefix[s], e->name);
      if (!io_h5_exists(f, path))
        return hsrl_err(HSRL_E_INPUT, file, 0, NULL, "tensor '%s' is missing", path);
      int ndim = 0;
      int64_t dims[IO_H5_MAX_DIMS] = {0};
      st = io_h5_shape(f, path, &ndim, dims);
      if (st != HSRL_OK) return st;
      int same = ndim == e->ndim;
      for (int d = 0; same && d < ndim; d++) same = dims[d] == e->dims[d];
      if (!same) {
        params_shape_str(have, sizeof have, ndim, dims);
        params_shape_str(want, sizeof want, e->ndim, e->dims);
        return hsrl_err(HSRL_E_INPUT, file, 0, NULL, "tensor '%s' has shape %s, expected %s", path,
                        have, want);
      }
      if (s == PARAMS_M) {
        int64_t t = 0;
        st = io_h5_attr_get_i64(f, path, PARAMS_STEP_ATTR, &t);
        if (st != HSRL_OK) return st;
        if (t < 0 || (i > 0 && t != *step))
          return hsrl_err(HSRL_E_INPUT, file, 0, NULL,
                          "tensor '%s': %s = %lld, but %lld for the tensors before it", path,
                          PARAMS_STEP_ATTR, (long long)t, (long long)*step);
        *step = t;
      }
    }
  }
  return HSRL_OK;
}

hsrl_status nn_params_read(nn_params *p, io_h5 *f, const char *file_label, int flags) {
  params_check_finalized(p);
  HSRL_CHECKF((flags & ~(NN_PARAMS_OPTIM | NN_PARAMS_GRADS)) == 0, "flags %d", flags);
  hsrl_status st = HSRL_OK;
  /* (PARAMS_N_SECTIONS, size): the table itself changes only once every read has worked */
  float *staged = NULL;
  int64_t step = p->adam_step;
  char path[PARAMS_PATH_MAX];
  HSRL_TRY(params_read_check(p, f, file_label ? file_label : io_h5_path(f), flags, &step));
  staged = hsrl_alloc_aligned((size_t)(PARAMS_N_SECTIONS * p->size + 1) * sizeof(float));
  for (int s = 0; s < PARAMS_N_SECTIONS; s++) {
    if (!params_section_used(s, flags)) continue;
    for (int64_t i = 0; i < p->n_entries; i++) {
      const nn_param_entry *e = &p->entries[i];
      snprintf(path, sizeof path, "%s%s", params_prefix[s], e->name);
      HSRL_TRY(io_h5_read_f32(f, path, staged + s * p->size + e->offset, e->n));
    }
  }
  for (int s = 0; s < PARAMS_N_SECTIONS; s++)
    if (params_section_used(s, flags))
      memcpy(params_section_buffer(p, s), staged + s * p->size, (size_t)p->size * sizeof(float));
  if (flags & NN_PARAMS_OPTIM) p->adam_step = step;
done:
  hsrl_free(staged);
  return st;
}

hsrl_status nn_params_save(const nn_params *p, const char *path, int flags) {
  io_h5 *f = NULL;
  hsrl_status st = HSRL_OK;
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, NN_PARAMS_KIND, NN_PARAMS_VERSION, 0));
  HSRL_TRY(nn_params_write(p, f, flags));
  st = io_h5_commit(f); /* frees f, even on error */
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

hsrl_status nn_params_load(nn_params *p, const char *path, int flags) {
  io_h5 *f = NULL;
  hsrl_status st = HSRL_OK;
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(io_h5_check_stamp(f, NN_PARAMS_KIND, NN_PARAMS_VERSION, NN_PARAMS_VERSION, NULL, NULL));
  HSRL_TRY(nn_params_read(p, f, NULL, flags));
done:
  io_h5_close(f);
  return st;
}
