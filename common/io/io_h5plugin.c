/* io_h5plugin.c: the zstd filter of io_h5zstd.c as a loadable HDF5 plugin.
 *
 * Built (by common/io/CMakeLists.txt) into <build>/plugins/libhsrl_h5zstd.so together with
 * io_h5zstd.c, and not into the hsrl_io library. HDF5 programs that do not link our code
 * (h5dump, h5ls, h5py) find it when HDF5_PLUGIN_PATH names that directory:
 *   HDF5_PLUGIN_PATH=build/plugins h5dump -d /records/clicks data.h5
 * HDF5's plugin loader dlopen()s each library in the path and asks these two functions what it
 * provides. The plugin is never built with the sanitizers, since the programs loading it are not. */
#include <H5PLextern.h>

#include "common/io/io_h5zstd.h"

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
const void *H5PLget_plugin_info(void) { return io_h5zstd_class(); }
