#!/usr/bin/env bash
# Simulator training benchmark (method.md section 3): training samples/s (records per second of
# Adam updates, evaluation excluded) of the user-response model on ML-1M (users 1-2999), batch
# 128, f 16, one OpenBLAS thread, with and without the item-id embedding, 2 epochs each.
# Prints the samples/s and the test metrics of each run.
# usage: scripts/bench/sim_train.sh [BUILD_DIR] [ML1M_DIR]
#   BUILD_DIR  default build (built if its hsrl binary is missing)
#   ML1M_DIR   default ../shared/data/ml-1m-u2999 beside the checkout
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
data=${2:-$root/../shared/data/ml-1m-u2999}
hsrl=$root/$dir/hsrl
[[ -x "$hsrl" ]] || "$root/scripts/build.sh" "$dir"
if [[ ! -f "$data/ratings.dat" ]]; then
  echo "sim_train.sh: no ML-1M ratings.dat in $data (see docs/datasets.md)" >&2
  exit 2
fi
if ! "$hsrl" sim train --help >/dev/null 2>&1; then
  echo "sim_train.sh: this hsrl binary has no 'sim train' command yet" >&2
  exit 2
fi
export OPENBLAS_NUM_THREADS=1 HSRL_PROGRESS_SECONDS=1000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$hsrl" data prepare --format ml1m --input "$data" --out "$tmp/ml1m.data.h5" --quiet >/dev/null
for variant in id-embedding features-only; do
  extra=()
  [[ $variant == features-only ]] && extra=(--no-item-id)
  echo "== $variant: hsrl sim train --split train --epochs 2 ${extra[*]}"
  "$hsrl" sim train --data "$tmp/ml1m.data.h5" --split train --out "$tmp/$variant.sim.h5" \
    --epochs 2 --quiet "${extra[@]}" | sed -n 's/^  //p'
done
