#!/usr/bin/env bash
# Synthetic-world benchmark (datasets.md "The synthetic world"; docs/synthetic-world.md): wall time
# and peak memory (/usr/bin/time -v, "Maximum resident set size") of `hsrl data synth` at
# 1,000,000 items, run RUNS times; prints each run, the command's own time split (generate /
# write), the file size, and the medians. A second line per run at ITEMS / 10 items shows that
# time and memory grow linearly with the catalog.
# usage: scripts/bench/synth.sh [BUILD_DIR] [ITEMS] [USERS] [RUNS]
#   BUILD_DIR  default build (built if its hsrl binary is missing)
#   ITEMS      default 1000000
#   USERS      default 10000 (sessions of 20 slates on average: about 200,000 records)
#   RUNS       default 3
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
items=${2:-1000000}
users=${3:-10000}
runs=${4:-3}
hsrl=$root/$dir/hsrl
[[ -x "$hsrl" ]] || "$root/scripts/build.sh" "$dir"
if ! "$hsrl" data synth --help >/dev/null 2>&1; then
  echo "synth.sh: this hsrl binary has no 'data synth' command yet" >&2
  exit 2
fi
if [[ ! -x /usr/bin/time ]]; then
  echo "synth.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"

# one_run N: runs the command at N items; prints "seconds peak_MB generate_s write_s"
one_run() {
  /usr/bin/time -v "$hsrl" data synth --items "$1" --users "$users" --seed 7 --quiet \
    --out "$tmp/synth.data.h5" >"$tmp/out" 2>"$tmp/time"
  local wall rss gen wr
  # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:06.62"
  wall=$(grep -F 'Elapsed (wall clock)' "$tmp/time" | awk -F': ' '{print $2}' |
    awk -F: '{s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s}')
  rss=$(grep -F 'Maximum resident set size' "$tmp/time" | awk -F': ' '{printf "%.0f", $2 / 1024}')
  # "  time     6.622 s (generate 6.162 s, write 0.460 s)"
  gen=$(grep -E '^  time ' "$tmp/out" | sed 's/.*generate \([0-9.]*\) s.*/\1/')
  wr=$(grep -E '^  time ' "$tmp/out" | sed 's/.*write \([0-9.]*\) s.*/\1/')
  echo "$wall $rss $gen $wr"
}

: >"$tmp/runs"
small=$((items / 10))
for i in $(seq 1 "$runs"); do
  read -r wall rss gen wr <<<"$(one_run "$items")"
  echo "run $i: $items items: $wall s wall (generate $gen s, write $wr s), peak RSS $rss MB"
  echo "$wall $rss" >>"$tmp/runs"
  read -r swall srss sgen swr <<<"$(one_run "$small")"
  echo "       $small items: $swall s wall (generate $sgen s, write $swr s), peak RSS $srss MB"
done
one_run "$items" >/dev/null
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "records: $(grep -E '^  records ' "$tmp/out" | sed 's/^  records *//')"
echo "file: $(du -h "$tmp/synth.data.h5" | cut -f1) ($items items, $users users)"
echo "item feature table: $(awk -v n="$items" 'BEGIN {printf "%.0f", (n + 1) * 16 * 4 / 1048576}') MB (D = 16 float32)"
echo "median of $runs at $items items: $(cut -d' ' -f1 "$tmp/runs" | median) s wall," \
  "peak RSS $(cut -d' ' -f2 "$tmp/runs" | median) MB"
