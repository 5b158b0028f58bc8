/* io_h5.h: checked HDF5 helpers: files, groups, attributes, (chunked, compressed) datasets.
 *
 * Every file hsrl writes is HDF5 (architecture.md, "Files a user sees"); this is the only module
 * that includes <hdf5.h>. Everything returns an hsrl_status, with a message that names the file
 * and the object and, where HDF5 said why, its reason, e.g.
 *   runs/x/ckpt.h5: dataset 'actor/w': has 120 elements (shape [10, 12]), expected 100
 *   runs/x/ckpt.h5: dataset 'actor/w': cannot read: zstd filter: cannot decompress chunk: ...
 * HDF5's own printing of its error stack is switched off for the whole process.
 *
 * Status classes: a missing file, a file that is not HDF5, a missing object, a wrong shape, type
 * or stamp give HSRL_E_INPUT; a file that is HDF5 but damaged (truncated, a bad checksum, a chunk
 * that does not decompress) gives HSRL_E_CORRUPT; both are exit code 2. Failing to write or commit
 * is HSRL_E_IO. Misuse that can only be a bug (writing to a file opened read-only, ndims > 8, a bad
 * type) is HSRL_E_INTERNAL.
 *
 * Files:
 *   - io_h5_create() writes to "<path>.tmp-<pid>"; io_h5_commit() flushes, closes, fsyncs and
 *     renames it to <path>, so a reader sees either the old file or the complete new one, never a
 *     partial one (architecture.md, "Fault tolerance"). io_h5_close() on an uncommitted file
 *     deletes the temporary.
 *   - Files are written in the HDF5 1.10 format (readable by HDF5 >= 1.10, h5py, h5dump): all of
 *     its metadata carries checksums, so a damaged file is reported, not misread. Strings are
 *     stored as fixed-length attributes for the same reason (variable-length ones would live in
 *     the unchecksummed global heap); h5py returns them as bytes. Object timestamps are off, so the
 *     same content gives the same bytes.
 *   - File locking is off: files are complete when they get their name, and locks fail on some
 *     cluster file systems.
 *
 * Names: "a/b/c" (a leading "/" is allowed) relative to the root; "/" is the root. Writers create
 * the groups on the path as needed. Arrays are row-major, dims are int64_t, at most
 * IO_H5_MAX_DIMS of them; ndims == 0 is a scalar (one element).
 *
 * Compression: the `compress` argument is a zstd level (1..22); 0 stores the data contiguous and
 * uncompressed. A compressed dataset is chunked along its leading dimension (chunks of about
 * IO_H5_CHUNK_BYTES) with HDF5's byte-shuffle followed by the zstd filter, id 32015
 * (io_h5zstd.h), which h5py reads through hdf5plugin and h5dump through our plugin:
 *   HDF5_PLUGIN_PATH=<build>/plugins h5dump -d /name file.h5
 * zstd frames carry a checksum; uncompressed data carries none (compress what must be verified).
 *
 * Types: the stored type is the requested one, little-endian. Reading converts within a class
 * (int8..int64 and uint8..uint64 to any integer type, float32/64 to float32/64) and fails with
 * HSRL_E_INPUT when a value does not fit the requested type; reading integers as floats or the
 * reverse is refused.
 *
 * Stamps (style.md: every file carries a magic, a format version and its writer's config hash):
 * io_h5_stamp() writes root attributes hsrl_kind, hsrl_format_version, hsrl_config_hash and
 * hsrl_version; io_h5_check_stamp() rejects a file of another kind or an unsupported version.
 *
 * Not thread-safe (serial HDF5 is not): use HDF5 from one thread per process. */
#ifndef IO_H5_H
#define IO_H5_H

#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_status.h"

#define IO_H5_MAX_DIMS 8
#define IO_H5_CHUNK_BYTES (256 * 1024) /* target size of one chunk of a compressed dataset */
#define IO_H5_ZSTD 3                   /* a good default for `compress`: zstd level 3 */

typedef struct io_h5 io_h5;

typedef enum io_h5_type {
  IO_H5_F32,
  IO_H5_F64,
  IO_H5_I32,
  IO_H5_I64,
  IO_H5_U8,
  IO_H5_U16,
} io_h5_type;

/* ---- files ---- */

hsrl_status io_h5_open(io_h5 **out, const char *path);   /* read-only */
hsrl_status io_h5_create(io_h5 **out, const char *path); /* writes "<path>.tmp-<pid>" */
hsrl_status io_h5_commit(io_h5 *f); /* flush, close, fsync, rename to path; frees f (even on error) */
void io_h5_close(io_h5 *f);         /* without commit: a created file is deleted; NULL ok */
const char *io_h5_path(const io_h5 *f); /* the path given to open/create */

/* Number of HDF5 objects (files, groups, datasets, types, attributes) open in this process; a
 * test asserts it returns to its old value, since HDF5 frees leaked handles at exit, where a leak
 * checker cannot see them. */
int64_t io_h5_open_handles(void);

/* ---- objects ---- */

int io_h5_exists(io_h5 *f, const char *name); /* 1 if a dataset or group "a/b/c" exists, else 0 */
hsrl_status io_h5_shape(io_h5 *f, const char *name, int *ndims, int64_t dims[IO_H5_MAX_DIMS]);

/* Calls fn(ctx, child_name, is_group) for each child of `group` in name order; a nonzero return
 * from fn stops the walk (io_h5_list still returns HSRL_OK). */
typedef int (*io_h5_list_fn)(void *ctx, const char *name, int is_group);
hsrl_status io_h5_list(io_h5 *f, const char *group, io_h5_list_fn fn, void *ctx);

/* Bytes the dataset's data occupy in the file (after compression). */
hsrl_status io_h5_storage_size(io_h5 *f, const char *name, int64_t *n_bytes);

/* ---- whole datasets ---- */

/* Writes a dataset of shape dims[0..ndims) from data (all elements, row-major). If the dataset
 * exists already with the same shape and type, its contents are replaced; otherwise an existing
 * name is an error. */
hsrl_status io_h5_write(io_h5 *f, const char *name, io_h5_type type, const void *data, int ndims,
                        const int64_t *dims, int compress);
hsrl_status io_h5_write_f32(io_h5 *f, const char *name, const float *data, int ndims, const int64_t *dims, int compress);
hsrl_status io_h5_write_f64(io_h5 *f, const char *name, const double *data, int ndims, const int64_t *dims, int compress);
hsrl_status io_h5_write_i32(io_h5 *f, const char *name, const int32_t *data, int ndims, const int64_t *dims, int compress);
hsrl_status io_h5_write_i64(io_h5 *f, const char *name, const int64_t *data, int ndims, const int64_t *dims, int compress);
hsrl_status io_h5_write_u8(io_h5 *f, const char *name, const uint8_t *data, int ndims, const int64_t *dims, int compress);
hsrl_status io_h5_write_u16(io_h5 *f, const char *name, const uint16_t *data, int ndims, const int64_t *dims, int compress);

/* Reads the whole dataset into data, which holds n_expected elements; a dataset with another
 * element count is an error (HSRL_E_INPUT naming both counts and the stored shape). */
hsrl_status io_h5_read(io_h5 *f, const char *name, io_h5_type type, void *data, int64_t n_expected);
hsrl_status io_h5_read_f32(io_h5 *f, const char *name, float *data, int64_t n_expected);
hsrl_status io_h5_read_f64(io_h5 *f, const char *name, double *data, int64_t n_expected);
hsrl_status io_h5_read_i32(io_h5 *f, const char *name, int32_t *data, int64_t n_expected);
hsrl_status io_h5_read_i64(io_h5 *f, const char *name, int64_t *data, int64_t n_expected);
hsrl_status io_h5_read_u8(io_h5 *f, const char *name, uint8_t *data, int64_t n_expected);
hsrl_status io_h5_read_u16(io_h5 *f, const char *name, uint16_t *data, int64_t n_expected);

/* Reads a dataset of any shape into a new hsrl_malloc'd array (*data, freed by the caller with
 * hsrl_free; NULL on error) and reports its shape (ndims/dims may be NULL). */
hsrl_status io_h5_read_alloc(io_h5 *f, const char *name, io_h5_type type, void **data, int *ndims,
                             int64_t dims[IO_H5_MAX_DIMS]);
hsrl_status io_h5_read_f32_alloc(io_h5 *f, const char *name, float **data, int64_t *n);

/* ---- datasets written and read by row ranges (millions of rows, streamed) ---- */

/* Creates a dataset of shape dims[0..ndims) (ndims >= 1; dims[0] is the number of rows) whose
 * rows are then written with io_h5_write_rows in any order; rows never written read as 0. */
hsrl_status io_h5_create_rows(io_h5 *f, const char *name, io_h5_type type, int ndims, const int64_t *dims,
                              int compress);
/* Rows [row0, row0 + n_rows) from/to data (n_rows full rows, row-major). The type must be the
 * stored type for writing; reading converts as io_h5_read does. The last dataset used stays open
 * in f between calls (with its chunk cache), so a stream of small row blocks compresses each chunk
 * once. A range outside the dataset is HSRL_E_INPUT. */
hsrl_status io_h5_write_rows(io_h5 *f, const char *name, io_h5_type type, const void *data, int64_t row0,
                             int64_t n_rows);
hsrl_status io_h5_read_rows(io_h5 *f, const char *name, io_h5_type type, void *data, int64_t row0,
                            int64_t n_rows);

/* ---- attributes: on obj = "/" (the root) or a group/dataset path ---- */

/* Setting replaces an existing attribute of the same name; a missing obj is created as a group. */
hsrl_status io_h5_attr_set_str(io_h5 *f, const char *obj, const char *attr, const char *value);
hsrl_status io_h5_attr_set_i64(io_h5 *f, const char *obj, const char *attr, int64_t value);
hsrl_status io_h5_attr_set_u64(io_h5 *f, const char *obj, const char *attr, uint64_t value);
hsrl_status io_h5_attr_set_f64(io_h5 *f, const char *obj, const char *attr, double value);
/* Getting: a missing attribute is HSRL_E_INPUT. Strings may be fixed or variable length (as h5py
 * writes them); a string that does not fit buf (cap bytes with its terminating 0) is an error. */
hsrl_status io_h5_attr_get_str(io_h5 *f, const char *obj, const char *attr, char *buf, size_t cap);
hsrl_status io_h5_attr_get_i64(io_h5 *f, const char *obj, const char *attr, int64_t *value);
hsrl_status io_h5_attr_get_u64(io_h5 *f, const char *obj, const char *attr, uint64_t *value);
hsrl_status io_h5_attr_get_f64(io_h5 *f, const char *obj, const char *attr, double *value); /* ints too */
int io_h5_attr_exists(io_h5 *f, const char *obj, const char *attr);

/* ---- stamps ---- */

/* Root attributes: hsrl_kind = kind (e.g. "checkpoint", "replay-shard", "data"),
 * hsrl_format_version = version, hsrl_config_hash = config_hash, hsrl_version = HSRL_VERSION. */
hsrl_status io_h5_stamp(io_h5 *f, const char *kind, int64_t version, uint64_t config_hash);
/* HSRL_E_INPUT unless the file is stamped as `kind` with min_version <= version <= max_version.
 * Reports the stored version and config hash (either pointer may be NULL); comparing the hash
 * with the reader's own is the caller's decision. */
hsrl_status io_h5_check_stamp(io_h5 *f, const char *kind, int64_t min_version, int64_t max_version,
                              int64_t *version, uint64_t *config_hash);

#endif
