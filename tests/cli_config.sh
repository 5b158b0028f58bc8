#!/usr/bin/env bash
# cli_config.sh: the `hsrl config` command line (exit codes, stdout/stderr, show output).
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

if [ "$n_fail" -ne 0 ]; then echo "cli_config: $n_fail failure(s)"; exit 1; fi
echo "cli_config: all checks passed"
