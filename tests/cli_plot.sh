#!/usr/bin/env bash
# cli_plot.sh: `hsrl plot RUN_DIR` (learner/learner_plot.h): on the run directories of a tiny
# `hsrl run`, the PNGs it must write (PNG magic bytes), the ones it must not (no MLC weights for
# SL), the bar chart from results.tsv and from an `hsrl eval` eval.json, columns found by name
# (a metrics.tsv with its columns shuffled), --out; bad run directories and malformed tables exit
# 2 naming the file and line; without gnuplot on PATH, exit 1 with a message.
# usage: bash tests/cli_plot.sh HSRL_BINARY BUILD_DIR SOURCE_DIR   (as ctest runs it)
set -u
hsrl=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-cli-plot-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
n_fail=0
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stderr: $(head -c 600 "$tmp/err")"; }
expect_in() { grep -qF -- "$2" "$tmp/$1" || fail "$3: expected in $1: '$2'; got: $(head -c 800 "$tmp/$1")"; }
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# without gnuplot on PATH: exit 1 and say what to install (checked first: needs no run)
mkdir -p "$tmp/fake"
printf 'iteration\ttotal_reward\n1\t0.5\n' >"$tmp/fake/metrics.tsv"
run env PATH=/nonexistent "$hsrl" plot "$tmp/fake"
expect_rc 1 "no gnuplot"
expect_in err "gnuplot is not installed" "no gnuplot"
if ! command -v gnuplot >/dev/null; then
  echo "SKIP: gnuplot is not installed (scripts/install-deps.sh installs gnuplot-nox); only the missing-gnuplot path was checked"
  if [ "$n_fail" -ne 0 ]; then exit 1; fi
  exit 0
fi

# a tiny pipeline: HSRL and SL run directories and the results table
cat >"$tmp/tiny.ini" <<'EOF'
[run]
out_dir = runs
data = runs/tiny.data.h5
sim_train = runs/tiny.sim-train.h5
sid = runs/tiny.sid.h5
[data]
format = synth
[synth]
items = 60
users = 40
sessions = 6
[sim]
max_epochs = 1
hidden = 32
[sid]
vocab = 4
levels = 2
[env]
model = world
batch = 8
[agent]
d = 16
ffn = 32
critic_hidden = 32,16
[train]
iterations = 20
batch = 16
learning_starts = 32
report_every = 5
checkpoint_every = 10
[eval]
episodes = 10
seeds = 2
EOF
cd "$tmp"
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "the pipeline"
hsrl_dir=runs/demo
sl_dir=runs/demo-sl

# 1. HSRL's run: every PNG, with the PNG magic; the script names the columns it found
run "$hsrl" plot "$hsrl_dir"
expect_rc 0 "plot hsrl"
for f in total_reward depth losses mlc_weights eval; do
  is_png "$hsrl_dir/plots/$f.png" || fail "plot hsrl: $f.png missing or not a PNG"
  expect_in out "$hsrl_dir/plots/$f.png" "plot hsrl lists $f.png"
done
col() { awk -F'\t' -v n="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == n) print i}' "$1"; }
x=$(col "$hsrl_dir/metrics.tsv" iteration)
y=$(col "$hsrl_dir/metrics.tsv" total_reward)
grep -qF "using $x:$y skip 1" "$hsrl_dir/plots/plot.gp" || fail "plot.gp does not plot total_reward (column $y)"
[ "$(grep -c . "$hsrl_dir/plots/eval.dat")" -eq 7 ] || fail "eval.dat should hold a comment and 6 policies"
(cd / && gnuplot "$tmp/$hsrl_dir/plots/plot.gp") 2>/dev/null || fail "plot.gp does not rerun from another directory"

# 2. SL's run: no multi-level critic, so no mlc_weights.png; no results table in its directory
run "$hsrl" plot "$sl_dir"
expect_rc 0 "plot sl"
is_png "$sl_dir/plots/total_reward.png" || fail "plot sl: no total_reward.png"
[ -e "$sl_dir/plots/mlc_weights.png" ] && fail "plot sl: an mlc_weights.png without MLC columns"
[ -e "$sl_dir/plots/eval.png" ] && fail "plot sl: an eval.png without a results table"
expect_in err "no results.tsv or eval.json" "plot sl"

# 3. the bar chart from an `hsrl eval --checkpoint` eval.json, and --out
run "$hsrl" eval tiny.ini --checkpoint "$sl_dir/ckpt/step-20.h5" --episodes 5 --seeds 2
expect_rc 0 "hsrl eval"
[ -s "$sl_dir/eval.json" ] || fail "hsrl eval wrote no eval.json"
run "$hsrl" plot "$sl_dir" --out "$tmp/elsewhere"
expect_rc 0 "plot --out"
is_png "$tmp/elsewhere/eval.png" || fail "plot --out: no eval.png from eval.json"
grep -q "^sl@20	" "$tmp/elsewhere/eval.dat" || fail "plot --out: eval.dat lacks the eval.json policy: $(cat "$tmp/elsewhere/eval.dat")"

# 4. columns are found by name: the same table with its columns in another order
mkdir -p shuffled
awk -F'\t' 'BEGIN {OFS = "\t"} {print $(NF - 2), $(NF - 1), $1}' "$hsrl_dir/metrics.tsv" >shuffled/metrics.tsv
run "$hsrl" plot shuffled
expect_rc 0 "shuffled columns"
is_png shuffled/plots/total_reward.png || fail "shuffled columns: no total_reward.png"
grep -qF "using 3:1 skip 1" shuffled/plots/plot.gp || fail "shuffled columns: total_reward is column 1, iteration 3: $(grep using shuffled/plots/plot.gp)"
[ -e shuffled/plots/losses.png ] && fail "shuffled columns: a losses.png without loss columns"

# 5. bad run directories and tables: exit 2 naming the file, line and column
run "$hsrl" plot "$tmp/nowhere"
expect_rc 2 "missing run dir"
expect_in err "no such run directory" "missing run dir"
run "$hsrl" plot tiny.ini
expect_rc 2 "a file, not a directory"
mkdir -p empty
run "$hsrl" plot empty
expect_rc 2 "no metrics.tsv"
expect_in err "metrics.tsv: cannot open" "no metrics.tsv"
mkdir -p bad
printf 'step\tloss\n1\t2\n' >bad/metrics.tsv
run "$hsrl" plot bad
expect_rc 2 "no iteration column"
expect_in err "no 'iteration' column" "no iteration column"
printf 'iteration\ttotal_reward\n1\t0.5\n2\n' >bad/metrics.tsv
run "$hsrl" plot bad
expect_rc 2 "short row"
expect_in err "metrics.tsv:3: 1 fields, the header names 2" "short row"
printf 'iteration\ttotal_reward\n1\tabc\n' >bad/metrics.tsv
run "$hsrl" plot bad
expect_rc 2 "not a number"
expect_in err "metrics.tsv:2: field 'total_reward': 'abc' is not a number" "not a number"
printf 'iteration\ttotal_reward\n' >bad/metrics.tsv
run "$hsrl" plot bad
expect_rc 2 "no rows"
printf 'iteration\ttotal_reward\n1\tnan\n2\t0.5\n' >bad/metrics.tsv
printf 'policy\tseeds\nx\t1\n' >bad/results.tsv
run "$hsrl" plot bad
expect_rc 2 "bad results.tsv"
expect_in err "results.tsv:1: the header row lacks" "bad results.tsv"
rm bad/results.tsv
run "$hsrl" plot bad
expect_rc 0 "nan values are gaps"
is_png bad/plots/total_reward.png || fail "nan values: no total_reward.png"
run "$hsrl" plot
expect_rc 2 "no RUN_DIR"
run "$hsrl" plot "$hsrl_dir" --frob
expect_rc 2 "unknown option"
run "$hsrl" plot --help
expect_rc 0 "--help"
expect_in out "usage: hsrl plot RUN_DIR" "--help"

if [ "$n_fail" -ne 0 ]; then echo "cli_plot: $n_fail failure(s)"; exit 1; fi
echo "cli_plot: all checks passed"
