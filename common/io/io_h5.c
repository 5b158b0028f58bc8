/* io_h5.c: checked HDF5 helpers. See io_h5.h for the contracts (names, status classes, the file
 * format choices, compression).
 *
 * Every HDF5 call is checked. On failure the reason is taken from HDF5's error stack (h5_reason:
 * the innermost descriptions, which say what actually went wrong, e.g. "truncated file" or our zstd
 * filter's message) and the stack is cleared. Each function owning HDF5 handles releases them at
 * one `done:` exit; H5Xclose on a negative id is skipped by the close_* helpers. */
#include "common/io/io_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/io/io_h5zstd.h"

#ifndef HSRL_VERSION
#define HSRL_VERSION "unknown"
#endif

#define IO_H5_NAME_MAX 1024

struct io_h5 {
  hid_t file;
  char *path;      /* as given by the caller: the name in every message */
  char *tmp_path;  /* created files: where the data lives until commit; NULL when opened read-only */
  hid_t rows_dset; /* the dataset of the last io_h5_*_rows call, kept open (-1: none) */
  char *rows_name;
};

/* ---- library state, errors ---- */

static hsrl_status h5_lib_init(const char *path) {
  static int done = 0;
  if (done) return HSRL_OK;
  if (H5open() < 0) return hsrl_err(HSRL_E_INTERNAL, path, 0, NULL, "cannot initialise the HDF5 library");
  /* We report every failure ourselves, with the file and object named; HDF5's automatic
   * printing of its stack would only add noise on stderr. */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  if (io_h5zstd_register() != HSRL_OK)
    return hsrl_err(HSRL_E_INTERNAL, path, 0, NULL, "cannot register the zstd HDF5 filter (id %d)",
                    IO_H5ZSTD_FILTER_ID);
  done = 1;
  return HSRL_OK;
}

typedef struct h5_reason_acc {
  char *buf;
  size_t cap, len;
  int n;
} h5_reason_acc;

static herr_t h5_reason_walk(unsigned n, const H5E_error2_t *e, void *client) {
  (void)n;
  h5_reason_acc *acc = client;
  if (acc->n >= 3 || !e->desc || !e->desc[0] || acc->len + 1 >= acc->cap) return 0;
  /* the same description repeats as the error climbs the call chain: keep one copy */
  if (acc->len > 0 && strstr(acc->buf, e->desc)) return 0;
  int w = snprintf(acc->buf + acc->len, acc->cap - acc->len, "%s%s", acc->len ? "; " : "", e->desc);
  if (w > 0) acc->len += (size_t)w < acc->cap - acc->len ? (size_t)w : acc->cap - acc->len - 1;
  acc->n++;
  return 0;
}

/* The innermost (most specific) descriptions on HDF5's error stack, then clears it. */
static void h5_reason(char *buf, size_t cap) {
  h5_reason_acc acc = {buf, cap, 0, 0};
  buf[0] = '\0';
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_reason_walk, &acc);
  H5Eclear2(H5E_DEFAULT);
}

/* Records "<path>: <what> '<name>': <action>[: <hdf5 reason>]" and returns code. what/name may be
 * NULL for file-level failures. */
static hsrl_status h5_fail(io_h5 *f, hsrl_status code, const char *what, const char *name,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static hsrl_status h5_fail(io_h5 *f, hsrl_status code, const char *what, const char *name,
                           const char *fmt, ...) {
  char action[512], reason[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(action, sizeof action, fmt, ap);
  va_end(ap);
  h5_reason(reason, sizeof reason);
  const char *sep = reason[0] ? ": " : "";
  if (what)
    return hsrl_err(code, f->path, 0, NULL, "%s '%s': %s%s%s", what, name, action, sep, reason);
  return hsrl_err(code, f->path, 0, NULL, "%s%s%s", action, sep, reason);
}

static void close_dataset(hid_t *id) { if (*id >= 0) H5Dclose(*id); *id = -1; }
static void close_space(hid_t *id) { if (*id >= 0) H5Sclose(*id); *id = -1; }
static void close_type(hid_t *id) { if (*id >= 0) H5Tclose(*id); *id = -1; }
static void close_plist(hid_t *id) { if (*id >= 0) H5Pclose(*id); *id = -1; }
static void close_attr(hid_t *id) { if (*id >= 0) H5Aclose(*id); *id = -1; }
static void close_object(hid_t *id) { if (*id >= 0) H5Oclose(*id); *id = -1; }

static void rows_forget(io_h5 *f) {
  close_dataset(&f->rows_dset);
  hsrl_free(f->rows_name);
  f->rows_name = NULL;
}

static hsrl_status need_writable(io_h5 *f, const char *name) {
  if (f->tmp_path) return HSRL_OK;
  return hsrl_err(HSRL_E_INTERNAL, f->path, 0, NULL, "'%s': cannot write: file was opened read-only", name);
}

/* ---- types ---- */

static hid_t type_file(io_h5_type t) {
  switch (t) {
    case IO_H5_F32: return H5T_IEEE_F32LE;
    case IO_H5_F64: return H5T_IEEE_F64LE;
    case IO_H5_I32: return H5T_STD_I32LE;
    case IO_H5_I64: return H5T_STD_I64LE;
    case IO_H5_U8: return H5T_STD_U8LE;
    case IO_H5_U16: return H5T_STD_U16LE;
  }
  return -1;
}

static hid_t type_mem(io_h5_type t) {
  switch (t) {
    case IO_H5_F32: return H5T_NATIVE_FLOAT;
    case IO_H5_F64: return H5T_NATIVE_DOUBLE;
    case IO_H5_I32: return H5T_NATIVE_INT32;
    case IO_H5_I64: return H5T_NATIVE_INT64;
    case IO_H5_U8: return H5T_NATIVE_UINT8;
    case IO_H5_U16: return H5T_NATIVE_UINT16;
  }
  return -1;
}

static size_t type_size(io_h5_type t) {
  switch (t) {
    case IO_H5_F32: return 4;
    case IO_H5_F64: return 8;
    case IO_H5_I32: return 4;
    case IO_H5_I64: return 8;
    case IO_H5_U8: return 1;
    case IO_H5_U16: return 2;
  }
  return 0;
}

static const char *type_name(io_h5_type t) {
  switch (t) {
    case IO_H5_F32: return "float32";
    case IO_H5_F64: return "float64";
    case IO_H5_I32: return "int32";
    case IO_H5_I64: return "int64";
    case IO_H5_U8: return "uint8";
    case IO_H5_U16: return "uint16";
  }
  return "?";
}

static int type_is_float(io_h5_type t) { return t == IO_H5_F32 || t == IO_H5_F64; }

/* Describes a stored HDF5 type as "float32", "int64", "uint8", or its class. */
static void stored_type_name(hid_t tid, char *buf, size_t cap) {
  H5T_class_t c = H5Tget_class(tid);
  size_t bits = H5Tget_size(tid) * 8;
  if (c == H5T_FLOAT) snprintf(buf, cap, "float%zu", bits);
  else if (c == H5T_INTEGER) snprintf(buf, cap, "%sint%zu", H5Tget_sign(tid) == H5T_SGN_NONE ? "u" : "", bits);
  else if (c == H5T_STRING) snprintf(buf, cap, "string");
  else if (c == H5T_COMPOUND) snprintf(buf, cap, "compound");
  else if (c == H5T_ENUM) snprintf(buf, cap, "enum");
  else snprintf(buf, cap, "HDF5 type class %d", (int)c);
}

/* A read of type t from a dataset of type tid is allowed within a class (see io_h5.h). */
static hsrl_status check_read_type(io_h5 *f, const char *name, hid_t dset, io_h5_type t) {
  hid_t tid = H5Dget_type(dset);
  if (tid < 0) return h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot get its type");
  H5T_class_t c = H5Tget_class(tid);
  hsrl_status st = HSRL_OK;
  if ((type_is_float(t) && c != H5T_FLOAT) || (!type_is_float(t) && c != H5T_INTEGER)) {
    char stored[64];
    stored_type_name(tid, stored, sizeof stored);
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': stored as %s, cannot be read as %s", name,
                  stored, type_name(t));
  }
  H5Tclose(tid);
  return st;
}

/* Conversion exceptions while reading: a value out of range for the requested type aborts the
 * read (HDF5 would otherwise clip it silently) and sets the flag so the message says why. */
static H5T_conv_ret_t conv_range_abort(H5T_conv_except_t except, hid_t src, hid_t dst, void *src_buf,
                                       void *dst_buf, void *flag) {
  (void)src, (void)dst, (void)src_buf, (void)dst_buf;
  if (except == H5T_CONV_EXCEPT_RANGE_HI || except == H5T_CONV_EXCEPT_RANGE_LOW) {
    *(int *)flag = 1;
    return H5T_CONV_ABORT;
  }
  return H5T_CONV_UNHANDLED;
}

/* ---- names and objects ---- */

static int is_root(const char *name) { return name[0] == '\0' || strcmp(name, "/") == 0; }

/* 1 if object `name` exists, 0 if not, -1 if HDF5 failed to look (a damaged file; the reason is
 * left on HDF5's error stack for h5_fail). H5Lexists fails, rather than returning 0, when a group
 * on the path is missing, so walk the path one component at a time, and stop at a component that
 * is a dataset rather than a group. */
static int exists_checked(io_h5 *f, const char *name) {
  if (is_root(name)) return 1;
  char buf[IO_H5_NAME_MAX];
  size_t n = strlen(name);
  HSRL_CHECKF(n < sizeof buf, "HDF5 object name of %zu characters", n);
  memcpy(buf, name, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    if (buf[i - 1] == '/') continue; /* "a//b" */
    char saved = buf[i];
    buf[i] = '\0';
    htri_t r = H5Lexists(f->file, buf, H5P_DEFAULT);
    if (r <= 0) return r < 0 ? -1 : 0;
    if (i < n) {
      hid_t o = H5Oopen(f->file, buf, H5P_DEFAULT);
      if (o < 0) return -1;
      int is_group = H5Iget_type(o) == H5I_GROUP;
      H5Oclose(o);
      if (!is_group) return 0;
    }
    buf[i] = saved;
  }
  htri_t r = H5Oexists_by_name(f->file, name, H5P_DEFAULT);
  return r < 0 ? -1 : r > 0;
}

int io_h5_exists(io_h5 *f, const char *name) {
  int r = exists_checked(f, name);
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

/* exists_checked as a status: HSRL_OK with *found set, or HSRL_E_CORRUPT naming the object. */
static hsrl_status lookup(io_h5 *f, const char *what, const char *name, int *found) {
  int r = exists_checked(f, name);
  *found = r > 0;
  if (r < 0) return h5_fail(f, HSRL_E_CORRUPT, what, name, "cannot look it up");
  return HSRL_OK;
}

/* Opens dataset `name`: HSRL_E_INPUT if it does not exist or is not a dataset. */
static hsrl_status open_dataset(io_h5 *f, const char *name, hid_t *dset) {
  int found = 0;
  *dset = -1;
  hsrl_status st = lookup(f, "dataset", name, &found);
  if (st != HSRL_OK) return st;
  if (!found) return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': not found", name);
  hid_t obj = H5Oopen(f->file, name, H5P_DEFAULT);
  if (obj < 0) return h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot open");
  if (H5Iget_type(obj) != H5I_DATASET) {
    H5Oclose(obj);
    return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "'%s': is a group, not a dataset", name);
  }
  *dset = obj;
  return HSRL_OK;
}

/* Creates every missing group on the way to `name` (not `name` itself), each without modification
 * times, so that files with equal content have equal bytes (HDF5's own intermediate-group
 * creation would stamp them with the time). */
static hsrl_status create_parents(io_h5 *f, const char *name) {
  char buf[IO_H5_NAME_MAX];
  size_t n = strlen(name);
  HSRL_CHECKF(n < sizeof buf, "HDF5 object name of %zu characters", n);
  memcpy(buf, name, n + 1);
  hsrl_status st = HSRL_OK;
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0) {
    st = h5_fail(f, HSRL_E_INTERNAL, "group", name, "cannot make a group property list");
    goto done;
  }
  for (size_t i = 1; i < n; i++) {
    if (buf[i] != '/' || buf[i - 1] == '/') continue;
    buf[i] = '\0';
    htri_t r = H5Lexists(f->file, buf, H5P_DEFAULT);
    if (r < 0) {
      st = h5_fail(f, HSRL_E_CORRUPT, "group", buf, "cannot look it up");
      goto done;
    }
    if (r == 0) {
      hid_t g = H5Gcreate2(f->file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
      if (g < 0) {
        st = h5_fail(f, HSRL_E_IO, "group", buf, "cannot create");
        goto done;
      }
      H5Gclose(g);
    }
    buf[i] = '/';
  }
done:
  close_plist(&gcpl);
  return st;
}

/* Opens (creating a group there if missing and `create`) the object attributes hang on. */
static hsrl_status open_object(io_h5 *f, const char *obj, int create, hid_t *out) {
  *out = -1;
  hsrl_status st = HSRL_OK;
  hid_t gcpl = -1, g = -1;
  if (is_root(obj)) {
    *out = H5Oopen(f->file, "/", H5P_DEFAULT);
    if (*out < 0) return h5_fail(f, HSRL_E_CORRUPT, "group", "/", "cannot open");
    return HSRL_OK;
  }
  int found = 0;
  if ((st = lookup(f, "object", obj, &found)) != HSRL_OK) return st;
  if (found) {
    *out = H5Oopen(f->file, obj, H5P_DEFAULT);
    if (*out < 0) return h5_fail(f, HSRL_E_CORRUPT, "object", obj, "cannot open");
    return HSRL_OK;
  }
  if (!create) return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "object '%s': not found", obj);
  if ((st = create_parents(f, obj)) != HSRL_OK) goto done;
  gcpl = H5Pcreate(H5P_GROUP_CREATE); /* the group's own creation properties: no times */
  if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0) {
    st = h5_fail(f, HSRL_E_INTERNAL, "group", obj, "cannot make a group property list");
    goto done;
  }
  g = H5Gcreate2(f->file, obj, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (g < 0) {
    st = h5_fail(f, HSRL_E_IO, "group", obj, "cannot create");
    goto done;
  }
  *out = g;
  g = -1;
done:
  if (g >= 0) H5Gclose(g);
  close_plist(&gcpl);
  return st;
}

static void format_shape(char *buf, size_t cap, int ndims, const hsize_t *dims) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndims && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Shape of an open dataset; fails on non-simple (null) dataspaces. */
static hsrl_status dataset_shape(io_h5 *f, const char *name, hid_t dset, int *ndims,
                                 hsize_t dims[IO_H5_MAX_DIMS]) {
  hid_t space = H5Dget_space(dset);
  if (space < 0) return h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot get its shape");
  hsrl_status st = HSRL_OK;
  int nd = H5Sget_simple_extent_ndims(space);
  if (nd < 0) st = h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot get its shape");
  else if (nd > IO_H5_MAX_DIMS)
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': %d dimensions, at most %d supported", name, nd,
                  IO_H5_MAX_DIMS);
  else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0)
    st = h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot get its shape");
  else *ndims = nd;
  H5Sclose(space);
  return st;
}

hsrl_status io_h5_shape(io_h5 *f, const char *name, int *ndims, int64_t dims[IO_H5_MAX_DIMS]) {
  hid_t dset = -1;
  hsize_t hd[IO_H5_MAX_DIMS];
  int nd = 0;
  hsrl_status st;
  HSRL_TRY(open_dataset(f, name, &dset));
  HSRL_TRY(dataset_shape(f, name, dset, &nd, hd));
  *ndims = nd;
  for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
done:
  close_dataset(&dset);
  return st;
}

typedef struct list_ctx {
  io_h5_list_fn fn;
  void *ctx;
} list_ctx;

static herr_t list_visit(hid_t group, const char *name, const H5L_info_t *info, void *op) {
  (void)info;
  list_ctx *lc = op;
  int is_group = 0;
  hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj >= 0) {
    is_group = H5Iget_type(obj) == H5I_GROUP;
    H5Oclose(obj);
  }
  return lc->fn(lc->ctx, name, is_group) ? 1 : 0;
}

hsrl_status io_h5_list(io_h5 *f, const char *group, io_h5_list_fn fn, void *ctx) {
  hid_t g = -1;
  hsrl_status st = HSRL_OK;
  const char *gname = is_root(group) ? "/" : group;
  int found = 0;
  if ((st = lookup(f, "group", gname, &found)) != HSRL_OK) return st;
  if (!found) return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "group '%s': not found", gname);
  g = H5Oopen(f->file, gname, H5P_DEFAULT);
  if (g < 0) return h5_fail(f, HSRL_E_CORRUPT, "group", gname, "cannot open");
  if (H5Iget_type(g) != H5I_GROUP) {
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "'%s': is a dataset, not a group", gname);
    goto done;
  }
  list_ctx lc = {fn, ctx};
  hsize_t idx = 0;
  if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_visit, &lc) < 0)
    st = h5_fail(f, HSRL_E_CORRUPT, "group", gname, "cannot list its members");
done:
  close_object(&g);
  return st;
}

hsrl_status io_h5_storage_size(io_h5 *f, const char *name, int64_t *n_bytes) {
  hid_t dset = -1;
  hsrl_status st;
  HSRL_TRY(open_dataset(f, name, &dset));
  *n_bytes = (int64_t)H5Dget_storage_size(dset);
done:
  close_dataset(&dset);
  return st;
}

/* ---- files ---- */

/* File access properties shared by open and create (see io_h5.h: format bounds, no locking). */
static hid_t make_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return -1;
  int ok = H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) >= 0 &&
           H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0;
#if (H5_VERSION_GE(1, 10, 7) && !H5_VERSION_GE(1, 12, 0)) || H5_VERSION_GE(1, 12, 1)
  ok = ok && H5Pset_file_locking(fapl, 0, 1) >= 0;
#endif
  if (!ok) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

static io_h5 *h5_new(const char *path) {
  io_h5 *f = hsrl_calloc(1, sizeof *f);
  f->file = -1;
  f->rows_dset = -1;
  f->path = hsrl_strdup(path);
  return f;
}

static void h5_free(io_h5 *f) {
  hsrl_free(f->path);
  hsrl_free(f->tmp_path);
  hsrl_free(f->rows_name);
  hsrl_free(f);
}

/* Whether the file starts with the HDF5 signature (to tell "not HDF5" from "damaged HDF5"). */
static int has_hdf5_signature(const char *path) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  FILE *fp = fopen(path, "rb");
  if (!fp) return 0;
  size_t n = fread(head, 1, sizeof head, fp);
  fclose(fp);
  return n == sizeof head && memcmp(head, sig, sizeof sig) == 0;
}

hsrl_status io_h5_open(io_h5 **out, const char *path) {
  *out = NULL;
  hsrl_status st = h5_lib_init(path);
  if (st != HSRL_OK) return st;
  struct stat sb;
  if (stat(path, &sb) != 0)
    return hsrl_err(errno == ENOENT || errno == ENOTDIR ? HSRL_E_INPUT : HSRL_E_IO, path, 0, NULL,
                    "cannot open: %s", strerror(errno));
  if (S_ISDIR(sb.st_mode)) return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "cannot open: is a directory");
  if (!has_hdf5_signature(path))
    return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "not an HDF5 file (no HDF5 signature at its start; %lld bytes)",
                    (long long)sb.st_size);
  io_h5 *f = h5_new(path);
  hid_t fapl = make_fapl();
  if (fapl < 0) {
    st = h5_fail(f, HSRL_E_INTERNAL, NULL, NULL, "cannot make file access properties");
    goto done;
  }
  f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  if (f->file < 0) {
    st = h5_fail(f, HSRL_E_CORRUPT, NULL, NULL, "cannot open (damaged or truncated HDF5 file?)");
    goto done;
  }
  *out = f;
  f = NULL;
done:
  close_plist(&fapl);
  if (f) h5_free(f);
  return st;
}

hsrl_status io_h5_create(io_h5 **out, const char *path) {
  *out = NULL;
  hsrl_status st = h5_lib_init(path);
  if (st != HSRL_OK) return st;
  io_h5 *f = h5_new(path);
  size_t n = strlen(path) + 32;
  f->tmp_path = hsrl_malloc(n);
  snprintf(f->tmp_path, n, "%s.tmp-%ld", path, (long)getpid());
  hid_t fapl = make_fapl(), fcpl = H5Pcreate(H5P_FILE_CREATE);
  if (fapl < 0 || fcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0) {
    st = h5_fail(f, HSRL_E_INTERNAL, NULL, NULL, "cannot make file properties");
    goto done;
  }
  f->file = H5Fcreate(f->tmp_path, H5F_ACC_TRUNC, fcpl, fapl);
  if (f->file < 0) {
    st = h5_fail(f, HSRL_E_IO, NULL, NULL, "cannot create %s", f->tmp_path);
    goto done;
  }
  *out = f;
  f = NULL;
done:
  close_plist(&fapl);
  close_plist(&fcpl);
  if (f) h5_free(f);
  return st;
}

const char *io_h5_path(const io_h5 *f) { return f->path; }

int64_t io_h5_open_handles(void) {
  ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  H5Eclear2(H5E_DEFAULT);
  return (int64_t)n;
}

/* fsync of the directory holding path, so the rename itself is durable. Some file systems refuse
 * fsync on a directory; the data is already safe by then, so that is not an error. */
static void fsync_parent_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (n >= sizeof dir) return;
  if (slash && n == 0) n = 1; /* "/file" */
  memcpy(dir, slash ? path : ".", slash ? n : 1);
  dir[slash ? n : 1] = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

hsrl_status io_h5_commit(io_h5 *f) {
  hsrl_status st = HSRL_OK;
  if (!f->tmp_path) {
    st = hsrl_err(HSRL_E_INTERNAL, f->path, 0, NULL, "cannot commit: file was opened read-only");
    io_h5_close(f);
    return st;
  }
  rows_forget(f);
  if (H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0) {
    st = h5_fail(f, HSRL_E_IO, NULL, NULL, "cannot flush %s", f->tmp_path);
    goto done;
  }
  herr_t closed = H5Fclose(f->file);
  f->file = -1;
  if (closed < 0) {
    st = h5_fail(f, HSRL_E_IO, NULL, NULL, "cannot close %s", f->tmp_path);
    goto done;
  }
  int fd = open(f->tmp_path, O_RDONLY);
  if (fd < 0 || fsync(fd) != 0) {
    st = hsrl_err(HSRL_E_IO, f->path, 0, NULL, "cannot fsync %s: %s", f->tmp_path, strerror(errno));
    if (fd >= 0) close(fd);
    goto done;
  }
  close(fd);
  if (rename(f->tmp_path, f->path) != 0) {
    st = hsrl_err(HSRL_E_IO, f->path, 0, NULL, "cannot rename %s to it: %s", f->tmp_path, strerror(errno));
    goto done;
  }
  fsync_parent_dir(f->path);
  hsrl_free(f->tmp_path);
  f->tmp_path = NULL;
done:
  io_h5_close(f); /* on failure: closes and removes the temporary */
  return st;
}

void io_h5_close(io_h5 *f) {
  if (!f) return;
  rows_forget(f);
  if (f->file >= 0) H5Fclose(f->file);
  H5Eclear2(H5E_DEFAULT);
  if (f->tmp_path) remove(f->tmp_path);
  h5_free(f);
}

/* ---- writing ---- */

static hsrl_status check_args(io_h5 *f, const char *name, io_h5_type type, int ndims,
                              const int64_t *dims, int compress, hsize_t hd[IO_H5_MAX_DIMS], int64_t *n) {
  if (type_size(type) == 0)
    return hsrl_err(HSRL_E_INTERNAL, f->path, 0, NULL, "dataset '%s': unknown element type %d", name, (int)type);
  if (ndims < 0 || ndims > IO_H5_MAX_DIMS)
    return hsrl_err(HSRL_E_INTERNAL, f->path, 0, NULL, "dataset '%s': %d dimensions (0..%d supported)", name,
                    ndims, IO_H5_MAX_DIMS);
  if (compress < 0 || compress > 22)
    return hsrl_err(HSRL_E_USAGE, f->path, 0, NULL, "dataset '%s': compression level %d (0 = none, 1..22 zstd)",
                    name, compress);
  *n = 1;
  for (int i = 0; i < ndims; i++) {
    if (dims[i] < 0)
      return hsrl_err(HSRL_E_INTERNAL, f->path, 0, NULL, "dataset '%s': negative dimension %lld", name,
                      (long long)dims[i]);
    hd[i] = (hsize_t)dims[i];
    *n *= dims[i];
  }
  return HSRL_OK;
}

/* Chunk shape for a compressed dataset: whole trailing dimensions and as many leading indices as
 * fit IO_H5_CHUNK_BYTES, descending into the next dimension only when one slice of the current
 * one is already too big. All dims are >= 1 here. */
static void chunk_shape(hsize_t chunk[IO_H5_MAX_DIMS], int ndims, const hsize_t *dims, size_t elem) {
  const uint64_t target = IO_H5_CHUNK_BYTES;
  uint64_t inner = elem; /* bytes of one slice dims[i+1..] */
  for (int i = 1; i < ndims; i++) inner *= dims[i];
  for (int i = 0; i < ndims; i++) chunk[i] = dims[i];
  for (int i = 0; i < ndims; i++) {
    if (inner * chunk[i] <= target) break;
    uint64_t c = target / inner;
    chunk[i] = c < 1 ? 1 : c;
    if (inner <= target || i + 1 == ndims) break;
    inner /= dims[i + 1];
  }
}

/* Dataset creation properties: no timestamps; when compressing, chunks + shuffle + zstd. */
static hid_t make_dcpl(io_h5_type type, int ndims, const hsize_t *dims, int64_t n, int compress) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0) return -1;
  int ok = H5Pset_obj_track_times(dcpl, 0) >= 0;
  if (ok && compress > 0 && ndims > 0 && n > 0) {
    hsize_t chunk[IO_H5_MAX_DIMS];
    unsigned level = (unsigned)compress;
    chunk_shape(chunk, ndims, dims, type_size(type));
    ok = H5Pset_chunk(dcpl, ndims, chunk) >= 0 && H5Pset_shuffle(dcpl) >= 0 &&
         H5Pset_filter(dcpl, (H5Z_filter_t)IO_H5ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &level) >= 0;
  }
  if (!ok) {
    H5Pclose(dcpl);
    return -1;
  }
  return dcpl;
}

/* Creates dataset `name` (groups on the way as needed); *dset receives it. */
static hsrl_status create_dataset(io_h5 *f, const char *name, io_h5_type type, int ndims, const hsize_t *hd,
                                  int64_t n, int compress, hid_t *dset) {
  hsrl_status st = HSRL_OK;
  hid_t space = -1, dcpl = -1;
  *dset = -1;
  space = ndims == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndims, hd, NULL);
  dcpl = make_dcpl(type, ndims, hd, n, compress);
  if (space < 0 || dcpl < 0) {
    st = h5_fail(f, HSRL_E_INTERNAL, "dataset", name, "cannot make its properties");
    goto done;
  }
  if ((st = create_parents(f, name)) != HSRL_OK) goto done;
  *dset = H5Dcreate2(f->file, name, type_file(type), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (*dset < 0) st = h5_fail(f, HSRL_E_IO, "dataset", name, "cannot create");
done:
  close_space(&space);
  close_plist(&dcpl);
  return st;
}

/* An existing dataset may be rewritten only with the same shape and stored type. */
static hsrl_status check_same(io_h5 *f, const char *name, hid_t dset, io_h5_type type, int ndims,
                              const hsize_t *hd) {
  int nd = 0;
  hsize_t cur[IO_H5_MAX_DIMS];
  hsrl_status st = dataset_shape(f, name, dset, &nd, cur);
  if (st != HSRL_OK) return st;
  int same = nd == ndims;
  for (int i = 0; same && i < nd; i++) same = cur[i] == hd[i];
  hid_t tid = H5Dget_type(dset);
  if (tid < 0) return h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot get its type");
  same = same && H5Tequal(tid, type_file(type)) > 0;
  if (!same) {
    char stored[64], shape_old[160], shape_new[160];
    stored_type_name(tid, stored, sizeof stored);
    format_shape(shape_old, sizeof shape_old, nd, cur);
    format_shape(shape_new, sizeof shape_new, ndims, hd);
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': exists as %s %s, cannot rewrite it as %s %s", name,
                  stored, shape_old, type_name(type), shape_new);
  }
  H5Tclose(tid);
  return st;
}

hsrl_status io_h5_write(io_h5 *f, const char *name, io_h5_type type, const void *data, int ndims,
                        const int64_t *dims, int compress) {
  hsrl_status st;
  hid_t dset = -1;
  hsize_t hd[IO_H5_MAX_DIMS];
  int64_t n = 0;
  HSRL_TRY(need_writable(f, name));
  HSRL_TRY(check_args(f, name, type, ndims, dims, compress, hd, &n));
  int found = 0;
  HSRL_TRY(lookup(f, "dataset", name, &found));
  if (found) {
    HSRL_TRY(open_dataset(f, name, &dset));
    HSRL_TRY(check_same(f, name, dset, type, ndims, hd));
  } else {
    HSRL_TRY(create_dataset(f, name, type, ndims, hd, n, compress, &dset));
  }
  if (n > 0 && H5Dwrite(dset, type_mem(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    st = h5_fail(f, HSRL_E_IO, "dataset", name, "cannot write");
done:
  close_dataset(&dset);
  return st;
}

hsrl_status io_h5_write_f32(io_h5 *f, const char *name, const float *data, int ndims, const int64_t *dims, int compress) {
  return io_h5_write(f, name, IO_H5_F32, data, ndims, dims, compress);
}
hsrl_status io_h5_write_f64(io_h5 *f, const char *name, const double *data, int ndims, const int64_t *dims, int compress) {
  return io_h5_write(f, name, IO_H5_F64, data, ndims, dims, compress);
}
hsrl_status io_h5_write_i32(io_h5 *f, const char *name, const int32_t *data, int ndims, const int64_t *dims, int compress) {
  return io_h5_write(f, name, IO_H5_I32, data, ndims, dims, compress);
}
hsrl_status io_h5_write_i64(io_h5 *f, const char *name, const int64_t *data, int ndims, const int64_t *dims, int compress) {
  return io_h5_write(f, name, IO_H5_I64, data, ndims, dims, compress);
}
hsrl_status io_h5_write_u8(io_h5 *f, const char *name, const uint8_t *data, int ndims, const int64_t *dims, int compress) {
  return io_h5_write(f, name, IO_H5_U8, data, ndims, dims, compress);
}
hsrl_status io_h5_write_u16(io_h5 *f, const char *name, const uint16_t *data, int ndims, const int64_t *dims, int compress) {
  return io_h5_write(f, name, IO_H5_U16, data, ndims, dims, compress);
}

/* ---- reading ---- */

/* H5Dread with range checking; mspace/fspace as for H5Dread. */
static hsrl_status read_checked(io_h5 *f, const char *name, hid_t dset, io_h5_type type, hid_t mspace,
                                hid_t fspace, void *data) {
  int out_of_range = 0;
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (dxpl < 0 || H5Pset_type_conv_cb(dxpl, conv_range_abort, &out_of_range) < 0) {
    close_plist(&dxpl);
    return h5_fail(f, HSRL_E_INTERNAL, "dataset", name, "cannot make transfer properties");
  }
  hsrl_status st = HSRL_OK;
  if (H5Dread(dset, type_mem(type), mspace, fspace, dxpl, data) < 0) {
    if (out_of_range) {
      H5Eclear2(H5E_DEFAULT);
      st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': holds values out of range for %s", name,
                    type_name(type));
    } else {
      st = h5_fail(f, HSRL_E_CORRUPT, "dataset", name, "cannot read");
    }
  }
  H5Pclose(dxpl); /* after h5_fail: every HDF5 call starts by clearing the error stack */
  return st;
}

hsrl_status io_h5_read(io_h5 *f, const char *name, io_h5_type type, void *data, int64_t n_expected) {
  hsrl_status st;
  hid_t dset = -1;
  hsize_t hd[IO_H5_MAX_DIMS];
  int nd = 0;
  HSRL_TRY(open_dataset(f, name, &dset));
  HSRL_TRY(check_read_type(f, name, dset, type));
  HSRL_TRY(dataset_shape(f, name, dset, &nd, hd));
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= (int64_t)hd[i];
  if (n != n_expected) {
    char shape[160];
    format_shape(shape, sizeof shape, nd, hd);
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': has %lld elements (shape %s), expected %lld",
                  name, (long long)n, shape, (long long)n_expected);
    goto done;
  }
  if (n > 0) HSRL_TRY(read_checked(f, name, dset, type, H5S_ALL, H5S_ALL, data));
done:
  close_dataset(&dset);
  return st;
}

hsrl_status io_h5_read_f32(io_h5 *f, const char *name, float *data, int64_t n_expected) {
  return io_h5_read(f, name, IO_H5_F32, data, n_expected);
}
hsrl_status io_h5_read_f64(io_h5 *f, const char *name, double *data, int64_t n_expected) {
  return io_h5_read(f, name, IO_H5_F64, data, n_expected);
}
hsrl_status io_h5_read_i32(io_h5 *f, const char *name, int32_t *data, int64_t n_expected) {
  return io_h5_read(f, name, IO_H5_I32, data, n_expected);
}
hsrl_status io_h5_read_i64(io_h5 *f, const char *name, int64_t *data, int64_t n_expected) {
  return io_h5_read(f, name, IO_H5_I64, data, n_expected);
}
hsrl_status io_h5_read_u8(io_h5 *f, const char *name, uint8_t *data, int64_t n_expected) {
  return io_h5_read(f, name, IO_H5_U8, data, n_expected);
}
hsrl_status io_h5_read_u16(io_h5 *f, const char *name, uint16_t *data, int64_t n_expected) {
  return io_h5_read(f, name, IO_H5_U16, data, n_expected);
}

hsrl_status io_h5_read_alloc(io_h5 *f, const char *name, io_h5_type type, void **data, int *ndims,
                             int64_t dims[IO_H5_MAX_DIMS]) {
  hsrl_status st;
  hid_t dset = -1;
  hsize_t hd[IO_H5_MAX_DIMS];
  int nd = 0;
  void *buf = NULL;
  *data = NULL;
  HSRL_TRY(open_dataset(f, name, &dset));
  HSRL_TRY(check_read_type(f, name, dset, type));
  HSRL_TRY(dataset_shape(f, name, dset, &nd, hd));
  uint64_t n = 1;
  for (int i = 0; i < nd; i++) n *= hd[i];
  if (n > (uint64_t)(SIZE_MAX / 2) / type_size(type)) {
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': %llu elements do not fit in memory", name,
                  (unsigned long long)n);
    goto done;
  }
  buf = hsrl_malloc((size_t)n * type_size(type));
  if (n > 0) HSRL_TRY(read_checked(f, name, dset, type, H5S_ALL, H5S_ALL, buf));
  if (ndims) *ndims = nd;
  for (int i = 0; dims && i < nd; i++) dims[i] = (int64_t)hd[i];
  *data = buf;
  buf = NULL;
done:
  hsrl_free(buf);
  close_dataset(&dset);
  return st;
}

hsrl_status io_h5_read_f32_alloc(io_h5 *f, const char *name, float **data, int64_t *n) {
  int nd = 0;
  int64_t dims[IO_H5_MAX_DIMS];
  void *p = NULL;
  hsrl_status st = io_h5_read_alloc(f, name, IO_H5_F32, &p, &nd, dims);
  *data = p;
  if (n) {
    *n = 1;
    for (int i = 0; i < nd; i++) *n *= dims[i];
    if (st != HSRL_OK) *n = 0;
  }
  return st;
}

/* ---- row ranges ---- */

hsrl_status io_h5_create_rows(io_h5 *f, const char *name, io_h5_type type, int ndims, const int64_t *dims,
                              int compress) {
  hsrl_status st;
  hid_t dset = -1;
  hsize_t hd[IO_H5_MAX_DIMS];
  int64_t n = 0;
  HSRL_TRY(need_writable(f, name));
  HSRL_TRY(check_args(f, name, type, ndims, dims, compress, hd, &n));
  if (ndims < 1) {
    st = hsrl_err(HSRL_E_INTERNAL, f->path, 0, NULL, "dataset '%s': a row dataset needs ndims >= 1", name);
    goto done;
  }
  int found = 0;
  HSRL_TRY(lookup(f, "dataset", name, &found));
  if (found) {
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': exists already", name);
    goto done;
  }
  HSRL_TRY(create_dataset(f, name, type, ndims, hd, n, compress, &dset));
  rows_forget(f); /* keep the new dataset open for the writes that follow */
  f->rows_dset = dset;
  f->rows_name = hsrl_strdup(name);
  dset = -1;
done:
  close_dataset(&dset);
  return st;
}

/* The dataset for a row operation: the one kept open if it is `name`, else opened and kept. */
static hsrl_status rows_dataset(io_h5 *f, const char *name, hid_t *dset) {
  if (f->rows_dset >= 0 && strcmp(f->rows_name, name) == 0) {
    *dset = f->rows_dset;
    return HSRL_OK;
  }
  rows_forget(f);
  hsrl_status st = open_dataset(f, name, dset);
  if (st != HSRL_OK) return st;
  f->rows_dset = *dset;
  f->rows_name = hsrl_strdup(name);
  return HSRL_OK;
}

/* Selects rows [row0, row0 + n_rows) of the dataset: *fspace in the file, *mspace in memory. */
static hsrl_status rows_select(io_h5 *f, const char *name, hid_t dset, int64_t row0, int64_t n_rows,
                               hid_t *fspace, hid_t *mspace) {
  hsize_t hd[IO_H5_MAX_DIMS], start[IO_H5_MAX_DIMS] = {0}, count[IO_H5_MAX_DIMS];
  int nd = 0;
  *fspace = *mspace = -1;
  hsrl_status st = dataset_shape(f, name, dset, &nd, hd);
  if (st != HSRL_OK) return st;
  if (nd < 1) return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': a scalar has no rows", name);
  if (row0 < 0 || n_rows < 0 || (uint64_t)row0 > hd[0] || (uint64_t)n_rows > hd[0] - (uint64_t)row0)
    return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': rows [%lld, %lld) outside its %llu rows", name,
                    (long long)row0, (long long)(row0 + n_rows), (unsigned long long)hd[0]);
  start[0] = (hsize_t)row0;
  count[0] = (hsize_t)n_rows;
  for (int i = 1; i < nd; i++) count[i] = hd[i];
  *fspace = H5Dget_space(dset);
  *mspace = H5Screate_simple(nd, count, NULL);
  if (*fspace < 0 || *mspace < 0 || H5Sselect_hyperslab(*fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
    close_space(fspace);
    close_space(mspace);
    return h5_fail(f, HSRL_E_INTERNAL, "dataset", name, "cannot select rows [%lld, %lld)", (long long)row0,
                   (long long)(row0 + n_rows));
  }
  return HSRL_OK;
}

hsrl_status io_h5_write_rows(io_h5 *f, const char *name, io_h5_type type, const void *data, int64_t row0,
                             int64_t n_rows) {
  hsrl_status st;
  hid_t dset = -1, fspace = -1, mspace = -1, tid = -1;
  HSRL_TRY(need_writable(f, name));
  HSRL_TRY(rows_dataset(f, name, &dset));
  tid = H5Dget_type(dset);
  if (tid < 0 || H5Tequal(tid, type_file(type)) <= 0) {
    char stored[64] = "?";
    if (tid >= 0) stored_type_name(tid, stored, sizeof stored);
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "dataset '%s': stored as %s, cannot write %s rows", name, stored,
                  type_name(type));
    goto done;
  }
  HSRL_TRY(rows_select(f, name, dset, row0, n_rows, &fspace, &mspace));
  if (n_rows > 0 && H5Dwrite(dset, type_mem(type), mspace, fspace, H5P_DEFAULT, data) < 0)
    st = h5_fail(f, HSRL_E_IO, "dataset", name, "cannot write rows [%lld, %lld)", (long long)row0,
                 (long long)(row0 + n_rows));
done:
  close_type(&tid);
  close_space(&fspace);
  close_space(&mspace);
  return st;
}

hsrl_status io_h5_read_rows(io_h5 *f, const char *name, io_h5_type type, void *data, int64_t row0,
                            int64_t n_rows) {
  hsrl_status st;
  hid_t dset = -1, fspace = -1, mspace = -1;
  HSRL_TRY(rows_dataset(f, name, &dset));
  HSRL_TRY(check_read_type(f, name, dset, type));
  HSRL_TRY(rows_select(f, name, dset, row0, n_rows, &fspace, &mspace));
  if (n_rows > 0) HSRL_TRY(read_checked(f, name, dset, type, mspace, fspace, data));
done:
  close_space(&fspace);
  close_space(&mspace);
  return st;
}

/* ---- attributes ---- */

/* Replaces attribute `attr` of `obj` with a scalar of file type ftype written from memory type mtype. */
static hsrl_status attr_write(io_h5 *f, const char *obj, const char *attr, hid_t ftype, hid_t mtype,
                              const void *value) {
  hsrl_status st;
  hid_t o = -1, space = -1, a = -1;
  HSRL_TRY(need_writable(f, obj));
  HSRL_TRY(open_object(f, obj, 1, &o));
  htri_t exists = H5Aexists(o, attr);
  if (exists < 0 || (exists > 0 && H5Adelete(o, attr) < 0)) {
    st = h5_fail(f, HSRL_E_IO, "object", obj, "cannot replace attribute '%s'", attr);
    goto done;
  }
  space = H5Screate(H5S_SCALAR);
  a = space < 0 ? -1 : H5Acreate2(o, attr, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, mtype, value) < 0) st = h5_fail(f, HSRL_E_IO, "object", obj, "cannot write attribute '%s'", attr);
done:
  close_attr(&a);
  close_space(&space);
  close_object(&o);
  return st;
}

hsrl_status io_h5_attr_set_str(io_h5 *f, const char *obj, const char *attr, const char *value) {
  size_t n = strlen(value);
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0 || H5Tset_size(t, n + 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
    close_type(&t);
    return h5_fail(f, HSRL_E_INTERNAL, "object", obj, "cannot make a string type for attribute '%s'", attr);
  }
  hsrl_status st = attr_write(f, obj, attr, t, t, value);
  H5Tclose(t);
  return st;
}

hsrl_status io_h5_attr_set_i64(io_h5 *f, const char *obj, const char *attr, int64_t value) {
  return attr_write(f, obj, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}
hsrl_status io_h5_attr_set_u64(io_h5 *f, const char *obj, const char *attr, uint64_t value) {
  return attr_write(f, obj, attr, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}
hsrl_status io_h5_attr_set_f64(io_h5 *f, const char *obj, const char *attr, double value) {
  return attr_write(f, obj, attr, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int io_h5_attr_exists(io_h5 *f, const char *obj, const char *attr) {
  if (!io_h5_exists(f, obj)) return 0;
  int found = H5Aexists_by_name(f->file, is_root(obj) ? "/" : obj, attr, H5P_DEFAULT) > 0;
  H5Eclear2(H5E_DEFAULT);
  return found;
}

/* Opens attribute `attr` of `obj`, checks it holds exactly one value, reports its type (caller
 * closes *a and *tid). */
static hsrl_status attr_open(io_h5 *f, const char *obj, const char *attr, hid_t *a, hid_t *tid) {
  hsrl_status st;
  hid_t o = -1, space = -1;
  *a = *tid = -1;
  HSRL_TRY(open_object(f, obj, 0, &o));
  htri_t exists = H5Aexists(o, attr);
  if (exists <= 0) {
    st = exists < 0 ? h5_fail(f, HSRL_E_CORRUPT, "object", obj, "cannot look up attribute '%s'", attr)
                    : hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "object '%s': no attribute '%s'", obj, attr);
    goto done;
  }
  *a = H5Aopen(o, attr, H5P_DEFAULT);
  *tid = *a < 0 ? -1 : H5Aget_type(*a);
  space = *a < 0 ? -1 : H5Aget_space(*a);
  if (*a < 0 || *tid < 0 || space < 0) {
    st = h5_fail(f, HSRL_E_CORRUPT, "object", obj, "cannot open attribute '%s'", attr);
    goto done;
  }
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n != 1)
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "object '%s': attribute '%s' holds %lld values, expected one", obj,
                  attr, (long long)n);
done:
  if (st != HSRL_OK) {
    close_attr(a);
    close_type(tid);
  }
  close_space(&space);
  close_object(&o);
  return st;
}

static hsrl_status attr_wrong_type(io_h5 *f, const char *obj, const char *attr, hid_t tid, const char *want) {
  char stored[64];
  stored_type_name(tid, stored, sizeof stored);
  return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "object '%s': attribute '%s' is %s, expected %s", obj, attr,
                  stored, want);
}

hsrl_status io_h5_attr_get_str(io_h5 *f, const char *obj, const char *attr, char *buf, size_t cap) {
  hsrl_status st;
  hid_t a = -1, tid = -1, mtype = -1;
  char *vlen = NULL, *fixed = NULL;
  HSRL_CHECK(cap > 0);
  buf[0] = '\0';
  HSRL_TRY(attr_open(f, obj, attr, &a, &tid));
  if (H5Tget_class(tid) != H5T_STRING) {
    st = attr_wrong_type(f, obj, attr, tid, "a string");
    goto done;
  }
  const char *s = NULL;
  size_t len = 0;
  if (H5Tis_variable_str(tid) > 0) { /* h5py's default for str attributes */
    mtype = H5Tcopy(H5T_C_S1);
    /* HDF5 does not convert between ASCII and UTF-8 (h5py writes UTF-8): read as stored */
    if (mtype < 0 || H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Tset_cset(mtype, H5Tget_cset(tid)) < 0 ||
        H5Aread(a, mtype, &vlen) < 0) {
      st = h5_fail(f, HSRL_E_CORRUPT, "object", obj, "cannot read attribute '%s'", attr);
      goto done;
    }
    s = vlen ? vlen : "";
    len = strlen(s);
  } else {
    size_t size = H5Tget_size(tid);
    mtype = H5Tcopy(tid);
    fixed = hsrl_malloc(size + 1);
    if (mtype < 0 || H5Aread(a, mtype, fixed) < 0) {
      st = h5_fail(f, HSRL_E_CORRUPT, "object", obj, "cannot read attribute '%s'", attr);
      goto done;
    }
    fixed[size] = '\0';
    s = fixed;
    len = strlen(s);
    if (H5Tget_strpad(tid) == H5T_STR_SPACEPAD)
      while (len > 0 && s[len - 1] == ' ') len--;
  }
  if (len + 1 > cap) {
    st = hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "object '%s': attribute '%s' is %zu characters, more than %zu",
                  obj, attr, len, cap - 1);
    goto done;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
done:
  if (vlen) H5free_memory(vlen);
  hsrl_free(fixed);
  close_type(&mtype);
  close_type(&tid);
  close_attr(&a);
  return st;
}

/* Reads a one-value numeric attribute of class `cls` (or, for floats, also integers) as mtype. */
static hsrl_status attr_get_number(io_h5 *f, const char *obj, const char *attr, hid_t mtype, int want_float,
                                   void *value) {
  hsrl_status st;
  hid_t a = -1, tid = -1;
  HSRL_TRY(attr_open(f, obj, attr, &a, &tid));
  H5T_class_t c = H5Tget_class(tid);
  if (!(c == H5T_INTEGER || (want_float && c == H5T_FLOAT))) {
    st = attr_wrong_type(f, obj, attr, tid, want_float ? "a number" : "an integer");
    goto done;
  }
  if (H5Aread(a, mtype, value) < 0) st = h5_fail(f, HSRL_E_CORRUPT, "object", obj, "cannot read attribute '%s'", attr);
done:
  close_type(&tid);
  close_attr(&a);
  return st;
}

hsrl_status io_h5_attr_get_i64(io_h5 *f, const char *obj, const char *attr, int64_t *value) {
  return attr_get_number(f, obj, attr, H5T_NATIVE_INT64, 0, value);
}
hsrl_status io_h5_attr_get_u64(io_h5 *f, const char *obj, const char *attr, uint64_t *value) {
  return attr_get_number(f, obj, attr, H5T_NATIVE_UINT64, 0, value);
}
hsrl_status io_h5_attr_get_f64(io_h5 *f, const char *obj, const char *attr, double *value) {
  return attr_get_number(f, obj, attr, H5T_NATIVE_DOUBLE, 1, value);
}

/* ---- stamps ---- */

hsrl_status io_h5_stamp(io_h5 *f, const char *kind, int64_t version, uint64_t config_hash) {
  hsrl_status st;
  HSRL_TRY(io_h5_attr_set_str(f, "/", "hsrl_kind", kind));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "hsrl_format_version", version));
  HSRL_TRY(io_h5_attr_set_u64(f, "/", "hsrl_config_hash", config_hash));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "hsrl_version", HSRL_VERSION));
done:
  return st;
}

hsrl_status io_h5_check_stamp(io_h5 *f, const char *kind, int64_t min_version, int64_t max_version,
                              int64_t *version, uint64_t *config_hash) {
  char stored_kind[128];
  int64_t v = 0;
  uint64_t h = 0;
  if (!io_h5_attr_exists(f, "/", "hsrl_kind"))
    return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "not an hsrl file (no 'hsrl_kind' attribute; expected a '%s' file)",
                    kind);
  hsrl_status st = io_h5_attr_get_str(f, "/", "hsrl_kind", stored_kind, sizeof stored_kind);
  if (st != HSRL_OK) return st;
  if (strcmp(stored_kind, kind) != 0)
    return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "is a '%s' file, expected a '%s' file", stored_kind, kind);
  if ((st = io_h5_attr_get_i64(f, "/", "hsrl_format_version", &v)) != HSRL_OK) return st;
  if ((st = io_h5_attr_get_u64(f, "/", "hsrl_config_hash", &h)) != HSRL_OK) return st;
  if (v < min_version || v > max_version)
    return hsrl_err(HSRL_E_INPUT, f->path, 0, NULL, "'%s' format version %lld, this build reads versions %lld..%lld",
                    kind, (long long)v, (long long)min_version, (long long)max_version);
  if (version) *version = v;
  if (config_hash) *config_hash = h;
  return HSRL_OK;
}
