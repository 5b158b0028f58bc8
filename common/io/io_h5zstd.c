/* io_h5zstd.c: the zstd HDF5 filter (id 32015). See io_h5zstd.h for the stored format and the
 * conventions shared with hdf5plugin.
 *
 * An HDF5 filter is one callback, called per chunk: with H5Z_FLAG_REVERSE clear it compresses
 * (on write), with it set it decompresses (on read). It receives the chunk in *buf (nbytes valid
 * of *buf_size allocated), must replace *buf with a buffer holding its output, and returns the
 * output length, or 0 for failure. Buffers cross the library boundary, so they are allocated and
 * freed with H5allocate_memory / H5resize_memory / H5free_memory (HDF5 >= 1.8.15), never malloc,
 * as a plugin loaded into a foreign program must. On failure *buf is left untouched and the reason
 * is pushed on HDF5's error stack, where io_h5 (or h5dump) reports it.
 *
 * The filter cannot keep zstd contexts between calls (the plugin has no place to own them and
 * chunks arrive from whichever thread HDF5 uses), so each call makes its own; HDF5 allocates per
 * chunk as well, so this is not the cost that matters. */
#include "common/io/io_h5zstd.h"

#include <hdf5.h>
#include <stdint.h>
#include <zstd.h>
#include <zstd_errors.h>

/* An HDF5 chunk is smaller than 4 GiB; a frame claiming more is damaged. */
#define ZSTD_FILTER_MAX_CHUNK ((unsigned long long)UINT32_MAX)

static void filter_error(const char *func, int line, const char *what, const char *detail) {
  H5Epush2(H5E_DEFAULT, __FILE__, func, (unsigned)line, H5E_ERR_CLS, H5E_PLINE, H5E_CANTFILTER,
           "zstd filter: %s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* cd_values[0] is an unsigned int; zstd's "fast" levels are negative, so read it as two's
 * complement and clamp to what the linked zstd offers. */
static int filter_level(size_t cd_nelmts, const unsigned int cd_values[]) {
  if (cd_nelmts < 1) return IO_H5ZSTD_DEFAULT_LEVEL;
  long long v = (long long)cd_values[0];
  if (v > INT32_MAX) v -= 4294967296LL;
  if (v == 0) return IO_H5ZSTD_DEFAULT_LEVEL;
  if (v > ZSTD_maxCLevel()) v = ZSTD_maxCLevel();
  if (v < ZSTD_minCLevel()) v = ZSTD_minCLevel();
  return (int)v;
}

static size_t filter_compress(int level, size_t nbytes, size_t *buf_size, void **buf) {
  size_t cap = ZSTD_compressBound(nbytes);
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  void *out = H5allocate_memory(cap ? cap : 1, 0);
  size_t r = 0;
  if (!cctx || !out) {
    filter_error(__func__, __LINE__, "out of memory", NULL);
    goto fail;
  }
  r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  if (!ZSTD_isError(r)) r = ZSTD_compress2(cctx, out, cap, *buf, nbytes);
  if (ZSTD_isError(r)) {
    filter_error(__func__, __LINE__, "cannot compress", ZSTD_getErrorName(r));
    goto fail;
  }
  ZSTD_freeCCtx(cctx);
  H5free_memory(*buf);
  *buf = out;
  *buf_size = cap ? cap : 1;
  return r;
fail:
  ZSTD_freeCCtx(cctx);
  if (out) H5free_memory(out);
  return 0;
}

/* For frames that do not record their decompressed size (other writers may stream them) or for
 * several concatenated frames: decode as a stream into a buffer that grows by doubling. */
static size_t filter_decompress_stream(size_t nbytes, size_t *buf_size, void **buf) {
  size_t cap = nbytes < ((size_t)1 << 16) / 4 ? (size_t)1 << 16 : nbytes * 4;
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  void *out = H5allocate_memory(cap, 0);
  if (!dctx || !out) {
    filter_error(__func__, __LINE__, "out of memory", NULL);
    goto fail;
  }
  ZSTD_inBuffer in = {*buf, nbytes, 0};
  ZSTD_outBuffer o = {out, cap, 0};
  for (;;) {
    size_t in_before = in.pos, out_before = o.pos;
    size_t r = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(r)) {
      filter_error(__func__, __LINE__, "cannot decompress", ZSTD_getErrorName(r));
      goto fail;
    }
    if (r == 0 && in.pos == in.size) break; /* last frame complete, all input used */
    if (o.pos == o.size) {                   /* output full: grow */
      if ((unsigned long long)cap * 2 > ZSTD_FILTER_MAX_CHUNK) {
        filter_error(__func__, __LINE__, "decompressed chunk larger than 4 GiB", NULL);
        goto fail;
      }
      void *bigger = H5resize_memory(out, cap * 2);
      if (!bigger) {
        filter_error(__func__, __LINE__, "out of memory", NULL);
        goto fail;
      }
      out = bigger, cap *= 2;
      o.dst = out, o.size = cap;
    } else if (in.pos == in.size || (in.pos == in_before && o.pos == out_before)) {
      filter_error(__func__, __LINE__, "truncated zstd frame", NULL);
      goto fail;
    }
  }
  ZSTD_freeDCtx(dctx);
  H5free_memory(*buf);
  *buf = out;
  *buf_size = cap;
  return o.pos;
fail:
  ZSTD_freeDCtx(dctx);
  if (out) H5free_memory(out);
  return 0;
}

static size_t filter_decompress(size_t nbytes, size_t *buf_size, void **buf) {
  unsigned long long n_raw = ZSTD_getFrameContentSize(*buf, nbytes);
  if (n_raw == ZSTD_CONTENTSIZE_ERROR) {
    filter_error(__func__, __LINE__, "chunk is not a zstd frame", NULL);
    return 0;
  }
  if (n_raw == ZSTD_CONTENTSIZE_UNKNOWN) return filter_decompress_stream(nbytes, buf_size, buf);
  if (n_raw > ZSTD_FILTER_MAX_CHUNK) {
    filter_error(__func__, __LINE__, "frame claims more than 4 GiB (damaged chunk)", NULL);
    return 0;
  }
  void *out = H5allocate_memory(n_raw ? (size_t)n_raw : 1, 0);
  if (!out) {
    filter_error(__func__, __LINE__, "out of memory", NULL);
    return 0;
  }
  size_t r = ZSTD_decompress(out, (size_t)n_raw, *buf, nbytes);
  if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
    H5free_memory(out); /* several frames in one chunk: sizes add up, decode as a stream */
    return filter_decompress_stream(nbytes, buf_size, buf);
  }
  if (ZSTD_isError(r) || r != (size_t)n_raw) {
    filter_error(__func__, __LINE__, "cannot decompress chunk",
                 ZSTD_isError(r) ? ZSTD_getErrorName(r) : "size differs from the frame header");
    H5free_memory(out);
    return 0;
  }
  H5free_memory(*buf);
  *buf = out;
  *buf_size = n_raw ? (size_t)n_raw : 1;
  return r;
}

static size_t io_h5zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                               size_t nbytes, size_t *buf_size, void **buf) {
  if (flags & H5Z_FLAG_REVERSE) return filter_decompress(nbytes, buf_size, buf);
  return filter_compress(filter_level(cd_nelmts, cd_values), nbytes, buf_size, buf);
}

static const H5Z_class2_t zstd_filter_class = {
    H5Z_CLASS_T_VERS,                   /* version of this struct */
    (H5Z_filter_t)IO_H5ZSTD_FILTER_ID,  /* id */
    1,                                  /* encoder present */
    1,                                  /* decoder present */
    "Zstandard",                        /* name, shown by h5dump */
    NULL,                               /* can_apply: any type, any chunk */
    NULL,                               /* set_local: cd_values are the caller's */
    io_h5zstd_filter,
};

const void *io_h5zstd_class(void) { return &zstd_filter_class; }

hsrl_status io_h5zstd_register(void) {
  static int registered = 0;
  if (registered) return HSRL_OK;
  if (H5Zregister(&zstd_filter_class) < 0) return HSRL_E_INTERNAL;
  registered = 1;
  return HSRL_OK;
}
