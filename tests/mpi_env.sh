# tests/mpi_env.sh: the environment of the tests that start mpirun (cli_dist_*.sh), sourced after
# they set `build` (their BUILD_DIR argument; unset: no plugin path). Not a test itself (ctest runs
# tests/cli_*.sh only).
#  - Open MPI as root (CI containers) and with more ranks than cores (the tests oversubscribe 2 cores);
#  - one OpenBLAS thread per rank;
#  - h5dump and h5diff find the zstd filter in the build's plugins/;
#  - no leak report under ASan: Open MPI's own allocations are never freed.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
if [[ -n ${build:-} ]]; then export HDF5_PLUGIN_PATH="$build/plugins"; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
