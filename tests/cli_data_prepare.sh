#!/usr/bin/env bash
# cli_data_prepare.sh: `hsrl data prepare` from the command line (datasets.md; method.md §2):
# exit codes, the summary, the file (h5dump through the zstd plugin when h5dump is installed),
# and malformed input of each kind in the issue (a short line, a non-number, an unknown item id,
# a wrong field count, an empty file, a missing file, a 10 MB line): exit status 2, a message
# "hsrl data prepare: FILE:LINE: field 'F': ...", and nothing left under --out (nor a temporary).
# With ../shared/data present it also checks the ML-1M u2999 and RL4RS sample figures.
# usage: bash tests/cli_data_prepare.sh HSRL_BINARY BUILD_DIR SOURCE_DIR   (as ctest runs it)
set -u
hsrl=$1
build=$2
src=$3
fixture=$src/tests/fixtures/ml100k
shared=$src/../shared/data
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-cli-data-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n_fail=0
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }

run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stderr: $(head -c 400 "$tmp/err")"; }
expect_in() { grep -qF -- "$2" "$tmp/$1" || fail "expected in $1: '$2'; got: $(head -c 600 "$tmp/$1")"; }

if ! "$hsrl" data --help >/dev/null 2>&1; then
  echo "SKIP: this hsrl binary has no 'data' command yet (hsrl.c must list sim_data_command)"
  exit 0
fi

# 1. help
run "$hsrl" data --help
expect_rc 0 "data --help"
expect_in out "prepare"
run "$hsrl" data prepare --help
expect_rc 0 "data prepare --help"
expect_in out "--format"
run "$hsrl" data prepare --format ml1m
expect_rc 2 "prepare without --input/--out"
run "$hsrl" data prepare --format nope --input "$fixture" --out "$tmp/x.data.h5"
expect_rc 2 "unknown format"
expect_in err "hsrl data prepare: "

# 2. the ML-100K fixture: summary on stdout, a readable file
mkdir -p "$tmp/outdir"
run "$hsrl" data prepare --format ml100k --input "$fixture" --out "$tmp/outdir/fix.data.h5" --quiet
expect_rc 0 "prepare the ML-100K fixture"
expect_in out "users    3 "
expect_in out "items    22 "
expect_in out "records  5 (slate size K 10, history length H 50)"
expect_in out "split    train 2, test 3"
expect_in out "13 dropped"
[ -f "$tmp/outdir/fix.data.h5" ] || fail "no output file"
run "$hsrl" data info "$tmp/outdir/fix.data.h5"
expect_rc 0 "data info"
expect_in out "ml100k data 'ml100k'"
expect_in out "split    train 2, test 3"
if command -v h5dump >/dev/null 2>&1 && [ -d "$build/plugins" ]; then
  HDF5_PLUGIN_PATH=$build/plugins h5dump -d /records/slate "$tmp/outdir/fix.data.h5" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  expect_rc 0 "h5dump /records/slate"
  expect_in out "22, 1, 2, 3, 4, 5, 6, 7, 8, 9"
  h5dump -A "$tmp/outdir/fix.data.h5" >"$tmp/out" 2>&1
  expect_in out "hsrl_kind"
  expect_in out "source_checksums"
fi

# 3. malformed inputs, generated from the fixture: exit 2, file:line and field named, nothing left
bad() { # bad NAME FILE LINE TEXT WANT_LOCATION WANT_FIELD  (LINE 0: the file becomes TEXT; TEXT "-": removed)
  local name=$1 file=$2 line=$3 text=$4 want=$5 field=$6
  local d=$tmp/bad-$name
  rm -rf "$d"
  mkdir -p "$d"
  cp "$fixture"/u.* "$d"/
  if [ "$line" -eq 0 ] && [ "$text" = "-" ]; then
    rm -f "$d/$file"
  elif [ "$line" -eq 0 ]; then
    printf '%s' "$text" >"$d/$file"
  else
    awk -v n="$line" -v t="$text" 'NR == n {print t; next} {print}' "$d/$file" >"$d/$file.new" && mv "$d/$file.new" "$d/$file"
  fi
  run "$hsrl" data prepare --format ml100k --input "$d" --out "$tmp/outdir/bad.data.h5" --quiet
  expect_rc 2 "malformed: $name"
  expect_in err "hsrl data prepare: "
  expect_in err "$want"
  [ -n "$field" ] && expect_in err "field '$field'"
  [ -e "$tmp/outdir/bad.data.h5" ] && fail "$name: a file was left under --out"
  ls "$tmp/outdir" | grep -q 'tmp-' && fail "$name: a temporary was left"
}
bad short u.data 3 "$(printf '1\t5')" "u.data:3:" rating
bad nonnumber u.data 3 "$(printf '1\t5\tx\t881250949')" "u.data:3:" rating
bad unknown-item u.data 3 "$(printf '1\t99\t3\t881250949')" "u.data:3:" "item id"
bad field-count u.data 3 "$(printf '1\t5\t3\t881250949\t7')" "u.data:3:" timestamp
bad empty u.data 0 "" "u.data:1:" "user id"
bad missing u.user 0 "-" "u.user" ""
expect_in err "cannot open"
# a 10 MB line
d=$tmp/bad-long
mkdir -p "$d"
cp "$fixture"/u.* "$d"/
{ head -n 1 "$fixture/u.data"; printf '1\t2\t3\t'; head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' '7'; printf '\n'; tail -n +2 "$fixture/u.data"; } >"$d/u.data"
run "$hsrl" data prepare --format ml100k --input "$d" --out "$tmp/outdir/bad.data.h5" --quiet
expect_rc 2 "a 10 MB line"
expect_in err "u.data:2: field 'timestamp': line is longer than 1048576 bytes"
[ -e "$tmp/outdir/bad.data.h5" ] && fail "10 MB line: a file was left under --out"
[ "$(ls "$tmp/outdir")" = "fix.data.h5" ] || fail "unexpected files in the output directory: $(ls "$tmp/outdir")"

# 4. a small RL4RS directory, then an unknown item id in a slate
r=$tmp/rl4rs
mkdir -p "$r"
head='timestamp@session_id@sequence_id@exposed_items@user_feedback@user_seqfeature@user_protrait@item_feature@behavior_policy_id'
printf 'item_id item_vec price location special_item\n1 0.5,1 1 1 0\n2 1,2 1 1 0\n3 0,0 1 1 0\n' >"$r/item_info.csv"
printf '%s\n1@1@1@1,2,3@1,0,1@0@1,2@x@1\n2@1@2@3,2,1@0,0,1@1,3@0,0@x@1\n' "$head" >"$r/rl4rs_b_train.csv"
printf '%s\n3@2@1@2,3,1@1,1,1@@4,4@x@1' "$head" >"$r/rl4rs_b_test.csv"
run "$hsrl" data prepare --format rl4rs --input "$r" --out "$tmp/outdir/rl.data.h5" --quiet
expect_rc 0 "prepare a small RL4RS directory"
expect_in out "records  3 (slate size K 3, history length H 50)"
expect_in out "split    train 2, test 1"
printf '%s\n3@2@1@2,4,1@1,1,1@@4,4@x@1' "$head" >"$r/rl4rs_b_test.csv"
run "$hsrl" data prepare --format rl4rs --input "$r" --out "$tmp/outdir/rl2.data.h5" --quiet
expect_rc 2 "RL4RS: an unknown item id in a slate"
expect_in err "rl4rs_b_test.csv:2: field 'exposed_items': item 2: 4 is outside 1..3"
[ -e "$tmp/outdir/rl2.data.h5" ] && fail "RL4RS: a file was left under --out"

# 5. the shared data, when present: the figures of datasets.md
if [ -d "$shared/ml-1m-u2999" ]; then
  run "$hsrl" data prepare --format ml1m --input "$shared/ml-1m-u2999" --out "$tmp/ml1m.data.h5" --quiet
  expect_rc 0 "prepare ML-1M u2999"
  expect_in out "items    3615 (item features 27, 795 distinct feature vectors)"
  expect_in out "split    train 36734, test 10692"
  expect_in out "positive rate  train 0.584, test 0.532"
  expect_in out "13390 dropped"
else
  echo "skip: ML-1M u2999 checks (needs $shared/ml-1m-u2999)"
fi
if [ -d "$shared/rl4rs" ]; then
  run "$hsrl" data prepare --format rl4rs --input "$shared/rl4rs" --out "$tmp/rl4rs.data.h5" --quiet
  expect_rc 0 "prepare the RL4RS sample"
  expect_in out "items    283 (item features 40"
  expect_in out "users    63 (user features 42)"
  expect_in out "records  63 (slate size K 9, history length H 50)"
  expect_in out "split    train 46, test 17"
else
  echo "skip: RL4RS sample checks (needs $shared/rl4rs)"
fi

if [ "$n_fail" -ne 0 ]; then
  echo "$n_fail check(s) failed"
  exit 1
fi
echo "all data prepare checks passed"
