#!/usr/bin/env bash
# cli_configs.sh: the shipped configs (configs/demo.ini, ml1m.ini, rl4rs.ini) pass `hsrl config
# check`, hold the values their comments promise (the demo's synthetic world in the world's ground
# truth, ML-1M's dataset path and paper defaults, RL4RS's slate of 9 and sweet point), resolve
# their dataset paths to ../shared/data beside the checkout, and make a plan `hsrl run --dry-run`
# accepts (with the outputs sent to a temporary directory, so the checkout is not read for them).
# usage: bash tests/cli_configs.sh HSRL_BINARY BUILD_DIR SOURCE_DIR   (as ctest runs it)
set -u
hsrl=$1
src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-cli-configs-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n_fail=0
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stderr: $(head -c 600 "$tmp/err")"; }
expect_in() { grep -qF -- "$2" "$tmp/$1" || fail "$3: expected in $1: '$2'; got: $(head -c 800 "$tmp/$1")"; }

shared_real=""
# hsrl folds "../" lexically after the config directory's realpath (hsrl_settings.h "Paths"), so a
# ../shared that is a symbolic link stays as written: the checkout's parent, then shared/data
[ -d "$src/../shared/data" ] && shared_real="$(cd "$src/.." && pwd -P)/shared/data"

for c in demo ml1m rl4rs; do
  cfg=$src/configs/$c.ini
  [ -f "$cfg" ] || { fail "configs/$c.ini is missing"; continue; }
  run "$hsrl" config check "$cfg"
  expect_rc 0 "config check $c.ini"
  expect_in out "$c.ini: ok (config hash " "config check $c.ini"
  grep -q "hsrl run configs/$c.ini" "$cfg" || fail "configs/$c.ini does not say how to run it (hsrl run configs/$c.ini)"
  run "$hsrl" config show "$cfg" --plain
  expect_rc 0 "config show $c.ini"
  cp "$tmp/out" "$tmp/$c.shown"
done

# what each promises
shown() { grep -qxF -- "$2" "$tmp/$1.shown" || fail "$1.ini: expected '$2' in the effective config"; }
shown demo "format = synth"
shown demo "model = world"
shown demo "sim_all ="
shown demo "items = 500"
shown demo "baselines = sl"
shown ml1m "format = ml1m"
shown ml1m "vocab = 64"
shown ml1m "iterations = 50000"
shown ml1m "episodes = 1000"
shown ml1m "seeds = 3"
shown ml1m "model = sim"
shown rl4rs "format = rl4rs"
shown rl4rs "slate_size = 9"
shown rl4rs "sweet_point = true"
grep -q "^sim_all = /" "$tmp/ml1m.shown" || fail "ml1m.ini: no evaluation simulator (run.sim_all)"
grep -q "^sim_all = /" "$tmp/rl4rs.shown" || fail "rl4rs.ini: no evaluation simulator (run.sim_all)"
grep -qiE "50,000 iterations take about [0-9.]+ minutes" "$src/configs/ml1m.ini" || fail "ml1m.ini: the comment should say how long 50,000 iterations take"
if [ -n "$shared_real" ]; then
  shown ml1m "input = $shared_real/ml-1m-u2999"
  shown rl4rs "input = $shared_real/rl4rs"
fi

# the plan of each: a dry run with every output in a temporary directory
for c in demo ml1m rl4rs; do
  if [ "$c" != demo ] && [ -z "$shared_real" ]; then
    echo "SKIP: $c.ini dry run: ../shared/data is not there (the dataset the config reads)"
    continue
  fi
  o=$tmp/$c
  sim_all=() # (an empty --set value is avoided: hsrl_config_set reads past it, see the report)
  grep -q '^sim_all = /' "$tmp/$c.shown" && sim_all=(--set "run.sim_all=$o/d.sim-all.h5")
  run "$hsrl" run "$src/configs/$c.ini" --dry-run --set run.out_dir=$o --set run.data=$o/d.data.h5 \
    --set run.sim_train=$o/d.sim-train.h5 --set run.sid=$o/d.sid.h5 "${sim_all[@]}"
  expect_rc 0 "dry run $c.ini"
  expect_in out "would run data: output missing" "dry run $c.ini"
  expect_in out "would run train: no run yet" "dry run $c.ini"
  expect_in out "would run baselines (sl): no run yet" "dry run $c.ini"
  [ -e "$o" ] && fail "dry run $c.ini made $o"
done

if [ "$n_fail" -ne 0 ]; then echo "cli_configs: $n_fail failure(s)"; exit 1; fi
echo "cli_configs: all checks passed"
