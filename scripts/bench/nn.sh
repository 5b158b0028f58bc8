#!/usr/bin/env bash
# Numerical-core benchmark: forward+backward GFLOP/s of the transformer layer (B=64, H=50, d=32,
# 4 heads, FFN 128; full and last-position-only; dense and packed, i.e. left padding not
# computed) and of linear layers at the policy's shapes, next to cblas_sgemm at the same products,
# one OpenBLAS thread, one core (taskset -c $HSRL_BENCH_CPU, default 0, when available).
# usage: scripts/bench/nn.sh [BUILD_DIR] [SUBSTRING]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cpu=${HSRL_BENCH_CPU:-0}
dir=${1:-build}
[[ -x "$root/$dir/scripts/bench/bench_nn" ]] || "$root/scripts/build.sh" "$dir"
export OPENBLAS_NUM_THREADS=1
pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c "$cpu" true 2>/dev/null; then pin=(taskset -c "$cpu"); fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)${pin:+, pinned: ${pin[*]}}"
"${pin[@]}" "$root/$dir/scripts/bench/bench_nn" "${@:2}"
