#!/usr/bin/env bash
# Installs what is missing, builds hsrl twice (warnings as errors; address + undefined
# sanitizers) and runs every test under ctest in both builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HSRL_PROGRESS_SECONDS=30

echo "== build (warnings as errors)"
scripts/build.sh build -DHSRL_WERROR=ON -DHSRL_SANITIZE=OFF
echo "== tests (normal build)"
(cd build && ctest --output-on-failure -j 2)

echo "== build (address + undefined sanitizers)"
scripts/build.sh build-asan -DHSRL_WERROR=ON -DHSRL_SANITIZE=ON
echo "== tests (sanitizer build)"
# OpenBLAS and Open MPI keep allocations for the process lifetime; leaks in our code are still
# reported for the tests that never touch them.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j 2)
