#!/usr/bin/env bash
# Environment benchmark (method.md section 4): user-steps/s of the batched environment with the
# learned simulator as click model (inference, one OpenBLAS thread) at B = 32 and B = 256, on
# ML-1M (users 1-2999). A user-step is one user shown one slate: simulator forward, Bernoulli
# clicks, reward, history and temper update, replacement of users who left. The slates come from
# the random policy (negligible cost), through `hsrl eval`, whose JSON has each seed's user-steps
# and seconds (environment and policy only: no file loading). The simulator is trained one epoch
# (its quality does not change its speed). The authors' PyTorch environment does about 3,850
# user-steps/s on one core of this machine.
# usage: scripts/bench/env.sh [BUILD_DIR] [ML1M_DIR]
#   BUILD_DIR  default build (built if its hsrl binary is missing); HSRL=path overrides the binary
#   ML1M_DIR   default ../shared/data/ml-1m-u2999 beside the checkout
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
data=${2:-$root/../shared/data/ml-1m-u2999}
hsrl=${HSRL:-$root/$dir/hsrl}
[[ -x "$hsrl" ]] || "$root/scripts/build.sh" "$dir"
if [[ ! -f "$data/ratings.dat" ]]; then
  echo "env.sh: no ML-1M ratings.dat in $data (see docs/datasets.md)" >&2
  exit 2
fi
for cmd in "data prepare" "sim train" "eval"; do
  # shellcheck disable=SC2086
  if ! "$hsrl" $cmd --help >/dev/null 2>&1; then
    echo "env.sh: this hsrl binary has no '$cmd' command yet" >&2
    exit 2
  fi
done
export OPENBLAS_NUM_THREADS=1 HSRL_PROGRESS_SECONDS=1000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$hsrl" data prepare --format ml1m --input "$data" --out "$tmp/ml1m.data.h5" --quiet >/dev/null
"$hsrl" sim train --data "$tmp/ml1m.data.h5" --split all --out "$tmp/ml1m.sim-all.h5" --epochs 1 \
  --quiet >/dev/null
for B in 32 256; do
  episodes=$((B * 150)) # ~3.3 steps each with random slates; the idle tail is < 1% of the steps
  "$hsrl" eval --data "$tmp/ml1m.data.h5" --sim "$tmp/ml1m.sim-all.h5" --policies random \
    --batch "$B" --episodes "$episodes" --seeds 3 --json "$tmp/env-$B.json" >/dev/null 2>&1
  /usr/bin/python3 - "$tmp/env-$B.json" "$B" <<'EOF'
import json, statistics, sys
doc = json.load(open(sys.argv[1]))
runs = doc["policies"][0]["per_seed"]
rates = [r["user_steps"] / r["seconds"] for r in runs]
print("B = %4s: %s user-steps/s (median of %d runs: %s; %d user-steps each)" % (
    sys.argv[2], format(round(statistics.median(rates)), ","), len(rates),
    ", ".join(format(round(x), ",") for x in rates), runs[0]["user_steps"]))
EOF
done
