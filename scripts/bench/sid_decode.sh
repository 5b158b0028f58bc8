#!/usr/bin/env bash
# Semantic-ID decode benchmark (method.md section 6, issue 4): states/s of exact top-K (K = 10) by
# best-first search over the trie, next to brute-force scoring of every item in the same run (the
# slates must agree, or the run fails), and of K = 10 items sampled along the trie, at 1 million
# and 10 million random SIDs (L = 3, V = 256), one thread. Also prints the numbers of log-probs the
# search reads per state (method.md: O(K L V), independent of N) and the index and trie build
# times and sizes. The decode section of the Semantic-ID benchmarks; scripts/bench/sid.sh (H11)
# covers codebook building.
# usage: scripts/bench/sid_decode.sh [BUILD_DIR] [N ...]
#        scripts/bench/sid_decode.sh [BUILD_DIR] --sid SID_FILE [REPEATS]
#   BUILD_DIR  default build (built if its bench_sid_decode is missing)
#   N ...      catalog sizes (default 1000000 10000000)
#   --sid      exploration sampling on a real catalog (an `hsrl sid build` file) in calls of 32
#              states, from near-uniform to peaked, automatic and each sampling path forced
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
shift || true
bench=$root/$dir/scripts/bench/bench_sid_decode
[[ -x "$bench" ]] || "$root/scripts/build.sh" "$dir"
export OPENBLAS_NUM_THREADS=1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" "$@"
