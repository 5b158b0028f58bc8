/* io_h5zstd.h: the zstd HDF5 filter, id 32015, registered in-process and built as a plugin.
 *
 * 32015 is the filter id registered with The HDF Group for Zstandard; h5py reads it through
 * hdf5plugin (hdf5plugin.Zstd) and h5dump through a plugin found on HDF5_PLUGIN_PATH. Its
 * conventions, which we follow so that files move freely between those tools and ours:
 *   - each chunk is stored as one plain zstd frame holding the chunk's bytes (content size
 *     recorded in the frame header), nothing else;
 *   - cd_values[0], when present, is the compression level used when writing (default 3);
 *     readers ignore it;
 *   - byte-shuffle is not part of this filter: io_h5 puts HDF5's own shuffle filter (id 2) before
 *     it in the pipeline, and a reader undoes the two in reverse order by itself.
 * We additionally set zstd's frame checksum flag when writing, so that a damaged chunk is
 * reported as an error on reading instead of decoding to wrong numbers; plain zstd decoders
 * (hdf5plugin's included) check it when present and accept frames without it.
 *
 * Reading is defensive: a frame that does not decode, whose size is not what its header claims,
 * or that claims more than HDF5's 4 GiB chunk limit makes the filter fail, and HDF5 then fails the
 * read (io_h5 reports HSRL_E_CORRUPT naming the file and dataset); nothing aborts.
 *
 * This file depends only on HDF5 and zstd (not on the rest of common/), because io_h5plugin.c
 * links it into the loadable plugin libhsrl_h5zstd.so (built into <build>/plugins/):
 *   HDF5_PLUGIN_PATH=<build>/plugins h5dump -d /records/clicks data.h5
 * Architecture.md, "Files a user sees". */
#ifndef IO_H5ZSTD_H
#define IO_H5ZSTD_H

#include "common/hsrl_status.h"

#define IO_H5ZSTD_FILTER_ID 32015
#define IO_H5ZSTD_DEFAULT_LEVEL 3

/* The filter's H5Z_class2_t (as const void *, so that this header needs no HDF5 include). */
const void *io_h5zstd_class(void);

/* Registers the filter with the HDF5 library in this process (replacing any zstd plugin HDF5 may
 * have loaded for the same id). Idempotent; not thread-safe (neither is serial HDF5). Returns
 * HSRL_OK or HSRL_E_INTERNAL without recording a message: the caller (io_h5) adds the context. */
hsrl_status io_h5zstd_register(void);

#endif
