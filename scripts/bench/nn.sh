#!/usr/bin/env bash
# Numerical-core benchmark: forward+backward GFLOP/s of the transformer layer (B=64, H=50, d=32,
# 4 heads, FFN 128; full and last-position-only) and of linear layers at the policy's shapes, next
# to cblas_sgemm at the same products, one OpenBLAS thread. usage: scripts/bench/nn.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
[[ -x "$root/$dir/scripts/bench/bench_nn" ]] || "$root/scripts/build.sh" "$dir"
export OPENBLAS_NUM_THREADS=1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$root/$dir/scripts/bench/bench_nn"
