#!/usr/bin/env bash
# The evaluation curve of one training run and its stability (issue 5: "stable: the mean of the
# last quarter of training within 2% of its best"): every checkpoint of RUN_DIR (ckpt/step-<n>.h5,
# in step order) is evaluated by `hsrl eval CONFIG --checkpoint ...` (method.md section 9: greedy
# slates, the evaluation simulator or the world, eval.episodes x eval.seeds), then
#   RUN_DIR/curve.tsv   step, Total Reward / Depth / click rate (mean over the evaluation seeds)
#   stdout              the curve, the best checkpoint, the mean over the last quarter of training
#                       (the checkpoints with step > 3/4 of the last step) and their ratio.
# A run is called stable when that ratio is >= 0.98. Each checkpoint's JSON is kept in
# RUN_DIR/curve/step-<n>.json; a checkpoint whose JSON is newer than it is not evaluated again.
#
#   scripts/curve.sh CONFIG RUN_DIR [-- hsrl eval args...]
#   scripts/curve.sh configs/ml1m.ini runs/ml1m/hsrl
#
# The evaluation seeds are the same for every checkpoint (run.seed of CONFIG), so the points differ
# by the policy only. A run with train.val_every hands evaluation its best-validated parameters, so
# its curve is of those; `-- --last` evaluates each checkpoint's last parameters instead (give it
# another RUN_DIR holding a link to the same ckpt/, or the JSONs of the other curve are reused).
# Needs build/hsrl (or HSRL=path).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hsrl=${HSRL:-$root/build/hsrl}
[ $# -ge 2 ] || { sed -n '2,19p' "$0" >&2; exit 2; }
config=$1
run=$2
shift 2
[ "${1:-}" = "--" ] && shift
[ -x "$hsrl" ] || { echo "curve.sh: no $hsrl (scripts/build.sh build)" >&2; exit 2; }
[ -f "$config" ] || { echo "curve.sh: no config file '$config'" >&2; exit 2; }
[ -d "$run/ckpt" ] || { echo "curve.sh: no checkpoints in '$run' ($run/ckpt missing)" >&2; exit 2; }
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

mapfile -t ckpts < <(ls "$run"/ckpt/step-*.h5 2>/dev/null | sed 's/.*step-\([0-9]*\)\.h5$/\1 &/' | sort -n | cut -d' ' -f2-)
[ "${#ckpts[@]}" -ge 1 ] || { echo "curve.sh: no step-<n>.h5 in $run/ckpt" >&2; exit 2; }
mkdir -p "$run/curve"
tsv=$run/curve.tsv
printf 'step\ttotal_reward\tdepth\tclick_rate\n' >"$tsv.tmp"
for f in "${ckpts[@]}"; do
  step=$(basename "$f" .h5)
  step=${step#step-}
  json=$run/curve/step-$step.json
  if [ ! -f "$json" ] || [ "$f" -nt "$json" ]; then
    "$hsrl" eval "$config" --checkpoint "$f" --json "$json" --quiet "$@" >"$run/curve/eval.log" 2>&1 ||
      { cat "$run/curve/eval.log" >&2; echo "curve.sh: hsrl eval failed on $f" >&2; exit 1; }
  fi
  # the "mean" object of the (single) policy: one line of the JSON
  grep -m1 '"mean": {' "$json" | awk -v step="$step" '{
      tr = $0; sub(/.*"total_reward_mean": /, "", tr); sub(/,.*/, "", tr)
      dp = $0; sub(/.*"depth_mean": /, "", dp); sub(/,.*/, "", dp)
      cr = $0; sub(/.*"click_rate": /, "", cr); sub(/,.*/, "", cr)
      printf "%s\t%s\t%s\t%s\n", step, tr, dp, cr }' >>"$tsv.tmp"
done
mv "$tsv.tmp" "$tsv"

awk -F'\t' -v run="$run" 'BEGIN { n = 0 }
  NR == 1 { next }
  { step[n] = $1; tr[n] = $2; n++ }
  END {
    last = step[n - 1]; best = 0
    for (i = 0; i < n; i++) if (tr[i] > tr[best]) best = i
    s = 0; m = 0
    for (i = 0; i < n; i++) if (step[i] > 0.75 * last) { s += tr[i]; m++ }
    printf "%-8s %s\n", "step", "total reward"
    for (i = 0; i < n; i++) printf "%-8s %.3f%s\n", step[i], tr[i], i == best ? "  (best)" : ""
    q = s / m
    printf "%s: best %.3f at step %s; last quarter (steps > %g, %d checkpoints) mean %.3f = %.3f of the best: %s\n",
      run, tr[best], step[best], 0.75 * last, m, q, q / tr[best], (q / tr[best] >= 0.98 ? "stable (>= 0.98)" : "NOT stable (< 0.98)")
  }' "$tsv"
