#!/usr/bin/env bash
# Semantic-ID benchmark (method.md section 5, docs/semantic-ids.md).
#
# Build: `hsrl sid build` (RQ-k-means, L = 3, V = 256, dedup on: the defaults) on the synthetic
# world's 64-dim item features at 100 thousand and 1 million items; reports the build time, the
# time of the whole command (load + build + write) and its peak memory (max RSS), the collision
# rate and the per-level perplexity. One OpenBLAS thread. Data generation is not timed.
#
# usage: scripts/bench/sid.sh [BUILD_DIR] [ITEM_COUNTS]
#   BUILD_DIR    default build (built if its hsrl binary is missing)
#   ITEM_COUNTS  default "100000 1000000"
# The 1M run needs about 1 GB of memory and a minute of one core for the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
counts=${2:-"100000 1000000"}
hsrl=${HSRL_BINARY:-$root/$dir/hsrl}
[[ -x "$hsrl" ]] || "$root/scripts/build.sh" "$dir"
if ! "$hsrl" sid build --help >/dev/null 2>&1; then
  echo "sid.sh: this hsrl binary has no 'sid build' command yet" >&2
  exit 2
fi
export OPENBLAS_NUM_THREADS=1 HSRL_PROGRESS_SECONDS=1000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- build: time, peak memory, collisions ----------------------------------------------------
printf '%-9s %9s %9s %9s %10s %12s  %s\n' items build_s total_s peak_MB collision moved_dedup perplexity_per_level
for n in $counts; do
  "$hsrl" data synth --items "$n" --item-features 64 --users 2000 --out "$tmp/w$n.data.h5" --quiet >/dev/null
  t0=$(date +%s.%N)
  "$hsrl" sid build --data "$tmp/w$n.data.h5" --vectors features --levels 3 --vocab 256 \
    --no-store-vectors --out "$tmp/w$n.sid.h5" >"$tmp/out$n.txt" 2>"$tmp/err$n.txt"
  t1=$(date +%s.%N)
  build=$(sed -n 's/.*build \([0-9.]*\) s,.*/\1/p' "$tmp/out$n.txt")
  peak=$(sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p' "$tmp/out$n.txt")
  coll=$(sed -n 's/.*collision rate \([0-9.]*\).*/\1/p' "$tmp/out$n.txt")
  moved=$(sed -n 's/.*dedup *\([0-9]*\) items moved.*/\1/p' "$tmp/out$n.txt")
  perp=$(awk '/^ +level +vocab/ {on=1; next} on && NF > 5 {printf "%s%s", sep, $6; sep=","}' "$tmp/out$n.txt")
  printf '%-9s %9s %9.2f %9s %10s %12s  %s\n' "$n" "$build" "$(echo "$t1 - $t0" | bc)" "$peak" \
    "$coll" "${moved:-0}" "$perp"
done
echo "(build_s: RQ-k-means only; total_s: the whole command with loading and writing;"
echo " peak_MB: max RSS of the command, the prepared-data file included)"

# ---- decode throughput ----------------------------------------------------------------------
# Top-K by the trie vs brute-force scoring at 1M and 10M items, in the same run.
"$(dirname "$0")/sid_decode.sh" "${1:-build}"
