#!/usr/bin/env bash
# The quality table of issue 5 over training seeds: runs `hsrl run CONFIG` once per seed (each seed
# trains every agent afresh: run.seed keys the networks' initialisation, dropout, exploration and the
# evaluation episodes), with SL (features; and sl-id, with item ids), hsrl-paper (the paper's pg
# weights, where the config chose others) and the paper's ablations of HSRL beside it (the agents of
# HSRL_QUALITY_BASELINES, default sl,sl-id,hsrl-paper,hsrl-no-bc,hsrl-no-mlc,hsrl-no-hierarchy,
# hsrl-no-entropy), then prints one table: per
# policy the mean +- std ACROSS TRAINING SEEDS of each seed's mean Total Reward (and Depth, click
# rate), from the runs' results.tsv files.
#
#   scripts/quality.sh CONFIG [SEEDS] [-- hsrl run args...]
#   scripts/quality.sh configs/demo.ini "1 2 3"
#   scripts/quality.sh configs/ml1m.ini "1 2 3" -- --set train.iterations=5000
#
# Run directories: run.out_dir/q<seed> (and q<seed>-sl, q<seed>-no-bc, ...). run.seed also keys
# the learned simulators and the Semantic IDs, so each seed remakes them (the spread across seeds is
# the whole protocol's: simulators, SIDs, agents and evaluation episodes) in the config's shared
# files, which hold the last seed's afterwards (`hsrl run CONFIG` remakes its own when next run);
# each seed's table is kept in q<seed>/results.tsv. Output: the table on stdout and in
# run.out_dir/quality.tsv. Stability: every checkpoint of each seed's HSRL run is evaluated the
# same way (scripts/curve.sh: q<seed>/curve.tsv) and the mean over the last quarter of training
# is compared with the best checkpoint (issue 5: within 2%); one line per seed at the end, and
# run.out_dir/stability.txt. Needs build/hsrl (scripts/build.sh build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hsrl=${HSRL:-$root/build/hsrl}
[ $# -ge 1 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
config=$1
seeds=${2:-1 2 3}
shift $(($# >= 2 ? 2 : 1))
[ "${1:-}" = "--" ] && shift
[ -x "$hsrl" ] || { echo "quality.sh: no $hsrl (scripts/build.sh build)" >&2; exit 2; }
[ -f "$config" ] || { echo "quality.sh: no config file '$config'" >&2; exit 2; }
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
ablations=${HSRL_QUALITY_BASELINES:-sl,sl-id,hsrl-paper,hsrl-no-bc,hsrl-no-mlc,hsrl-no-hierarchy,hsrl-no-entropy}

out_dir=$("$hsrl" config show "$config" "$@" | sed -n 's/^out_dir = //p')
[ -n "$out_dir" ] || { echo "quality.sh: could not read run.out_dir of $config" >&2; exit 2; }
files=()
mkdir -p "$out_dir"
: >"$out_dir/stability.txt.tmp"
for s in $seeds; do
  echo "== seed $s: hsrl run $config --set run.seed=$s --set run.name=q$s --set run.baselines=$ablations $*"
  "$hsrl" run "$config" --quiet --set run.seed="$s" --set run.name="q$s" --set run.baselines="$ablations" "$@"
  files+=("$out_dir/q$s/results.tsv")
  echo "== seed $s: every checkpoint of $out_dir/q$s evaluated (scripts/curve.sh)"
  HSRL=$hsrl "$root/scripts/curve.sh" "$config" "$out_dir/q$s" -- --set run.seed="$s" "$@" | tee /dev/stderr |
    tail -1 >>"$out_dir/stability.txt.tmp"
done
mv "$out_dir/stability.txt.tmp" "$out_dir/stability.txt"

# policy -> per-seed means (columns by name: total_reward_mean, depth_mean, click_rate_mean)
awk -F'\t' -v n_files="${#files[@]}" '
  FNR == 1 && /^#/ { next }
  $1 == "policy" { for (i = 1; i <= NF; i++) col[$i] = i; next }
  {
    p = $1
    if (!(p in seen)) { seen[p] = 1; order[n++] = p }
    k[p]++
    tr[p, k[p]] = $(col["total_reward_mean"]); dp[p, k[p]] = $(col["depth_mean"])
    cr[p, k[p]] = $(col["click_rate_mean"])
  }
  function stat(a, p, m,   i, s, v) {
    s = 0; for (i = 1; i <= m; i++) s += a[p, i]
    mean = s / m; v = 0
    for (i = 1; i <= m; i++) v += (a[p, i] - mean) ^ 2
    sd = m > 1 ? sqrt(v / (m - 1)) : 0
  }
  END {
    printf "policy\tseeds\ttotal_reward_mean\ttotal_reward_std\tdepth_mean\tdepth_std\tclick_rate_mean\tclick_rate_std\tper_seed_total_reward\n"
    for (j = 0; j < n; j++) {
      p = order[j]; m = k[p]
      stat(tr, p, m); t1 = mean; t2 = sd
      stat(dp, p, m); d1 = mean; d2 = sd
      stat(cr, p, m); c1 = mean; c2 = sd
      list = ""; for (i = 1; i <= m; i++) list = list (i > 1 ? "," : "") tr[p, i]
      printf "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.4f\t%.4f\t%s\n", p, m, t1, t2, d1, d2, c1, c2, list
    }
  }' "${files[@]}" >"$out_dir/quality.tsv"
echo
echo "Total Reward, Depth and click rate: mean +- std across training seeds ($seeds) of each seed's"
echo "evaluation mean ($config; $out_dir/quality.tsv):"
awk -F'\t' 'NR == 1 { printf "%-18s %5s  %-17s %-17s %-17s %s\n", "policy", "seeds", "total reward", "depth", "click rate", "per seed"; next }
  { printf "%-18s %5s  %7.3f +- %-6.3f %7.3f +- %-6.3f %7.4f +- %-6.4f %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' \
  "$out_dir/quality.tsv"
echo
echo "Stability of HSRL (mean of the last quarter of training's checkpoints / the best checkpoint):"
cat "$out_dir/stability.txt"
