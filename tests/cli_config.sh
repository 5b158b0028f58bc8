#!/usr/bin/env bash
# cli_config.sh: the `hsrl config` command line (exit codes, stdout/stderr, show output), how
# relative paths of a config file resolve, and configs/demo.ini driving train, resume and eval
# with the input files its comments say how to make.
# usage: bash tests/cli_config.sh HSRL_BINARY BUILD_DIR SOURCE_DIR   (as ctest runs it)
set -u
hsrl=$1
src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-cli-config-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n_fail=0
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }

# run CMD...: sets rc, and the files $tmp/out, $tmp/err
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stderr: $(head -c 400 "$tmp/err")"; }
expect_in() { grep -qF -- "$2" "$tmp/$1" || fail "expected in $1: '$2'; got: $(head -c 400 "$tmp/$1")"; }

# 1. show the demo config: exit 0, known keys, the demo's values, the hash line last
run "$hsrl" config show "$src/configs/demo.ini"
expect_rc 0 "config show demo.ini"
expect_in out "[sim]"
expect_in out "lr = 0.001"
expect_in out "items = 500"
expect_in out "format = synth"
tail -n 1 "$tmp/out" | grep -qE '^# config hash: [0-9a-f]{16}$' || fail "last line is not the hash: $(tail -n 1 "$tmp/out")"
[ -s "$tmp/err" ] && fail "show wrote to stderr: $(cat "$tmp/err")"
cp "$tmp/out" "$tmp/shown.ini"
hash_demo=$(tail -n 1 "$tmp/shown.ini" | awk '{print $4}')

# 2. the shown text is itself a config with the same hash
run "$hsrl" config hash "$tmp/shown.ini"
expect_rc 0 "config hash of the shown text"
[ "$(cat "$tmp/out")" = "$hash_demo" ] || fail "shown text hashes to $(cat "$tmp/out"), demo to $hash_demo"

# 3. --set overrides the file, the last --set wins, both spellings; the hash changes
run "$hsrl" config show "$src/configs/demo.ini" --set sim.lr=0.5 --set=sim.lr=0.25 --plain
expect_rc 0 "show with --set"
expect_in out "lr = 0.25"
grep -q "lr = 0.5" "$tmp/out" && fail "an earlier --set won"
grep -q "^# [A-Za-z]" <(grep -v '^# hsrl effective config' "$tmp/out" | grep -v '^# config hash') && fail "--plain printed help"
hash_set=$(tail -n 1 "$tmp/out" | awk '{print $4}')
[ "$hash_set" != "$hash_demo" ] || fail "the hash did not change with a value"

# 4. without CONFIG: the defaults
run "$hsrl" config show
expect_rc 0 "show defaults"
expect_in out "iterations = 50000"

# 5. an unknown key: exit 2, the message on stderr with file:line, field and the closest key
printf '[sim]\nlr = 0.01\nlrr = 3\n' >"$tmp/bad.ini"
run "$hsrl" config show "$tmp/bad.ini"
expect_rc 2 "unknown key"
expect_in err "bad.ini:3: field 'sim.lrr': unknown key 'lrr' in [sim]; did you mean 'sim.lr'?"
[ -s "$tmp/out" ] && fail "an error printed a config on stdout"

# 6. an unknown section, a bad value, a bad --set, a missing file: exit 2 with the message
printf '[agnet]\nd = 3\n' >"$tmp/sec.ini"
run "$hsrl" config check "$tmp/sec.ini"
expect_rc 2 "unknown section"
expect_in err "sec.ini:1: unknown section [agnet]; did you mean [agent]?"
printf '[train]\nbatch = abc\n' >"$tmp/val.ini"
run "$hsrl" config check "$tmp/val.ini"
expect_rc 2 "bad value"
expect_in err "val.ini:2: field 'train.batch': expected an integer"
run "$hsrl" config show --set sim.lr=fast
expect_rc 2 "bad --set"
expect_in err "--set sim.lr=fast: field 'sim.lr': expected a number"
run "$hsrl" config show "$tmp/none.ini"
expect_rc 2 "missing file"
expect_in err "none.ini: cannot open"

# 7. check: ok line
run "$hsrl" config check "$src/configs/demo.ini"
expect_rc 0 "check demo.ini"
expect_in out "demo.ini: ok (config hash $hash_demo)"

# 8. help and usage errors
run "$hsrl" --help
expect_rc 0 "hsrl --help"
grep -qE '^  config ' "$tmp/out" || fail "hsrl --help does not list config"
run "$hsrl" config --help
expect_rc 0 "config --help"
expect_in out "usage: hsrl config show"
run "$hsrl" config show --help
expect_rc 0 "config show --help"
expect_in out "--set section.key=value"
run "$hsrl" config
expect_rc 2 "config without a subcommand"
run "$hsrl" config frobnicate
expect_rc 2 "unknown subcommand"
run "$hsrl" config show --frob
expect_rc 2 "unknown option"
run "$hsrl" config show a.ini b.ini
expect_rc 2 "two configs"
run "$hsrl" config show --set
expect_rc 2 "--set without a value"

# 9. relative paths in a config file are relative to its directory: the demo config shows the
#    repository's runs/demo/ files as absolute paths from any working directory; --set paths are
#    relative to the working directory
src_real=$(cd "$src" && pwd -P)
tmp_real=$(cd "$tmp" && pwd -P)
(cd "$tmp" && "$hsrl" config show "$src/configs/demo.ini" --set run.sim_all=here.sim-all.h5) >"$tmp/out" 2>"$tmp/err"
rc=$?
expect_rc 0 "show demo.ini from another directory"
expect_in out "data = $src_real/runs/demo/demo.data.h5"
expect_in out "sid = $src_real/runs/demo/demo.sid.h5"
expect_in out "out_dir = $src_real/runs/demo"
expect_in out "sim_all = $tmp_real/here.sim-all.h5"

# 10. the demo config drives the whole chain: the commands its comments give make the inputs
#     (sim train shortened to 1 epoch), then train (a few iterations), resume and eval (fewer
#     episodes than env.batch), run from yet another directory
mkdir -p "$tmp/proj/configs" "$tmp/elsewhere"
cp "$src/configs/demo.ini" "$tmp/proj/configs/demo.ini"
# the commented commands between "made by these commands" and "(the [synth]", joined at "\"
sed -n '/made by these commands/,/^; (the \[synth\]/p' "$src/configs/demo.ini" | sed -n 's/^;   //p' |
  sed -e ':a' -e '/\\$/N; s/\\\n *//; ta' >"$tmp/cmds"
[ "$(grep -c '^hsrl ' "$tmp/cmds")" -eq 3 ] || fail "demo.ini should document 3 hsrl commands; got: $(cat "$tmp/cmds")"
while IFS= read -r line; do
  case "$line" in
  "mkdir "*) (cd "$tmp/proj" && eval "$line") || fail "demo command: $line" ;;
  "hsrl sim train"*) (cd "$tmp/proj" && eval "\"\$hsrl\" ${line#hsrl } --epochs 1 --quiet") >/dev/null 2>"$tmp/err" || fail "demo command: $line: $(cat "$tmp/err")" ;;
  "hsrl "*) (cd "$tmp/proj" && eval "\"\$hsrl\" ${line#hsrl } --quiet") >/dev/null 2>"$tmp/err" || fail "demo command: $line: $(cat "$tmp/err")" ;;
  esac
done <"$tmp/cmds"
for f in demo.data.h5 demo.sim-train.h5 demo.sid.h5; do
  [ -s "$tmp/proj/runs/demo/$f" ] || fail "the demo commands did not make runs/demo/$f"
done
cd "$tmp/elsewhere"
quick=(--set train.iterations=8 --set train.learning_starts=64 --set train.checkpoint_every=4 --quiet)
run "$hsrl" train ../proj/configs/demo.ini "${quick[@]}"
expect_rc 0 "train configs/demo.ini"
run_dir="$tmp_real/proj/runs/demo/hsrl"
[ -s "$run_dir/ckpt/step-8.h5" ] || fail "no checkpoint in $run_dir"
grep -qF "data = $tmp_real/proj/runs/demo/demo.data.h5" "$run_dir/config.ini" || fail "config.ini lacks the absolute data path"
run "$hsrl" train --resume "$run_dir" --set train.iterations=12 --quiet
expect_rc 0 "train --resume"
[ -s "$run_dir/ckpt/step-12.h5" ] || fail "resume wrote no step-12 checkpoint"
run "$hsrl" eval ../proj/configs/demo.ini --checkpoint "$run_dir/ckpt/step-12.h5" --episodes 5 --seeds 1
expect_rc 0 "eval with 5 episodes on 32 rows"
expect_in out "hsrl@12"
expect_in out "world (ground truth)"
[ -s "$run_dir/eval.json" ] || fail "eval wrote no eval.json"
# demo.ini trains with agent.explore_cap; evaluating its checkpoint with the exact top-K still works
run "$hsrl" eval ../proj/configs/demo.ini --checkpoint "$run_dir/ckpt/step-12.h5" --episodes 5 --seeds 1 \
  --set agent.prefix_cap=0
expect_rc 0 "eval with agent.prefix_cap=0 of an explore_cap checkpoint"
cd "$tmp"

if [ "$n_fail" -ne 0 ]; then echo "cli_config: $n_fail failure(s)"; exit 1; fi
echo "cli_config: all checks passed"
