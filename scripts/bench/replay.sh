#!/usr/bin/env bash
# Replay benchmark (issue 6 item 4; architecture.md "The distributed job": transitions are stored
# narrow and sent to the replay shards as zstd blocks): bytes per transition of the naive float
# layout (users and history items as feature vectors), today's in-learner ring, the shard's narrow
# ring, the narrow block before zstd and the zstd block an actor sends (blocks of dist.block_rows
# = 32 rows, one env step, and larger), the HDF5 snapshot, their ratios; and the rates of packing
# (actor), offer + decode + insert (shard) and uniform sampling (learner), in transitions/s.
# Transitions come from real env steps of the HSRL agent (EXPLORE: sampled SID tokens and their
# log-probs) in
#   ml1m   ML-1M (users 1-2999) with a learned simulator (1 epoch) and SIDs (L 3, V 64), when
#          ../shared/data/ml-1m-u2999 is present (the default then);
#   synth  the synthetic world (2,000 items, its ground-truth click model), SIDs of the item
#          features (L 3, V 64), H 50, K 10 (otherwise).
# Preparation is not timed. One core (taskset -c 0 when available), one OpenBLAS thread.
# usage: scripts/bench/replay.sh [BUILD_DIR] [ml1m|synth] [STEPS]
#   BUILD_DIR  default build (built if its hsrl or bench_replay is missing)
#   STEPS      env steps of 32 users (default 1000: 32,000 transitions)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build}
ml1m=$root/../shared/data/ml-1m-u2999
source=${2:-}
steps=${3:-1000}
if [[ -z "$source" ]]; then
  if [[ -f "$ml1m/ratings.dat" ]]; then source=ml1m; else source=synth; fi
fi
hsrl=$root/$dir/hsrl
bench=$root/$dir/scripts/bench/bench_replay
[[ -x "$hsrl" && -x "$bench" ]] || "$root/scripts/build.sh" "$dir"
export OPENBLAS_NUM_THREADS=1 HSRL_PROGRESS_SECONDS=1000
pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then pin=(taskset -c 0); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
case "$source" in
  ml1m)
    if [[ ! -f "$ml1m/ratings.dat" ]]; then
      echo "replay.sh: no ML-1M ratings.dat in $ml1m (see docs/datasets.md)" >&2
      exit 2
    fi
    echo "== prepare (not timed): ML-1M u2999, sim train --epochs 1, sid build --levels 3 --vocab 64"
    "$hsrl" data prepare --format ml1m --input "$ml1m" --out "$tmp/d.data.h5" --quiet >/dev/null
    "$hsrl" sim train --data "$tmp/d.data.h5" --split train --out "$tmp/d.sim-train.h5" --epochs 1 \
      --quiet >/dev/null
    "$hsrl" sid build --data "$tmp/d.data.h5" --sim "$tmp/d.sim-train.h5" --out "$tmp/d.sid.h5" \
      --levels 3 --vocab 64 --quiet >/dev/null
    sets=("run.data=$tmp/d.data.h5" "run.sim_train=$tmp/d.sim-train.h5" "run.sid=$tmp/d.sid.h5"
      "data.format=ml1m" "data.input=$ml1m")
    ;;
  synth)
    echo "== prepare (not timed): synthetic world (2,000 items, 1,000 users), sid build of the features"
    "$hsrl" data synth --items 2000 --users 1000 --out "$tmp/d.data.h5" --quiet >/dev/null
    "$hsrl" sid build --data "$tmp/d.data.h5" --vectors features --out "$tmp/d.sid.h5" \
      --levels 3 --vocab 64 --quiet >/dev/null
    sets=("run.data=$tmp/d.data.h5" "run.sid=$tmp/d.sid.h5" "data.format=synth" "env.model=world")
    ;;
  *)
    echo "replay.sh: unknown source '$source' (ml1m or synth)" >&2
    exit 2
    ;;
esac
echo "== bench_replay: $source, $steps env steps of 32 users, agent hsrl (EXPLORE)"
"${pin[@]}" "$bench" --steps "$steps" "${sets[@]}" "agent.kind=hsrl" "env.batch=32" "train.batch=64"
