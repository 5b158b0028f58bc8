#!/usr/bin/env bash
# Data preparation benchmark (datasets.md "MovieLens"; method.md section 2): `hsrl data prepare
# --format ml1m` on ML-1M users 1-2999 (487,650 ratings -> 47,426 records), run 3 times; prints
# each run and the median of the time, records/s and ratings/s (reading, sorting, building the
# records and writing the compressed HDF5 file; the figures are the command's own summary line).
# usage: scripts/bench/prepare.sh [BUILD_DIR] [ML1M_DIR] [RUNS]
#   BUILD_DIR  default build (built if its hsrl binary is missing)
#   ML1M_DIR   default ../shared/data/ml-1m-u2999 beside the checkout
#   RUNS       default 3
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
data=${2:-$root/../shared/data/ml-1m-u2999}
runs=${3:-3}
hsrl=$root/$dir/hsrl
[[ -x "$hsrl" ]] || "$root/scripts/build.sh" "$dir"
if [[ ! -f "$data/ratings.dat" ]]; then
  echo "prepare.sh: no ML-1M ratings.dat in $data (see docs/datasets.md)" >&2
  exit 2
fi
if ! "$hsrl" data prepare --help >/dev/null 2>&1; then
  echo "prepare.sh: this hsrl binary has no 'data prepare' command yet" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $data ($(du -sh "$data" | cut -f1))"
: >"$tmp/runs"
for i in $(seq 1 "$runs"); do
  "$hsrl" data prepare --format ml1m --input "$data" --out "$tmp/ml1m.data.h5" --quiet >"$tmp/out"
  # "  time     1.234 s: 38432 records/s, 395181 ratings/s"
  line=$(grep -E '^  time ' "$tmp/out")
  secs=$(echo "$line" | awk '{print $2}')
  recs=$(echo "$line" | awk '{print $4}')
  rats=$(echo "$line" | awk '{print $6}')
  echo "run $i: $secs s, $recs records/s, $rats ratings/s"
  echo "$secs $recs $rats" >>"$tmp/runs"
done
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "records: $(grep -E '^  records ' "$tmp/out" | sed 's/^  records *//')"
echo "file: $(du -h "$tmp/ml1m.data.h5" | cut -f1)"
echo "median of $runs: $(cut -d' ' -f1 "$tmp/runs" | median) s," \
  "$(cut -d' ' -f2 "$tmp/runs" | median) records/s, $(cut -d' ' -f3 "$tmp/runs" | median) ratings/s"
