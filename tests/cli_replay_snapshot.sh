#!/usr/bin/env bash
# cli_replay_snapshot.sh: a replay shard snapshot (replay/replay_snapshot.h) outside hsrl:
#   1. h5dump reads a transitions dataset through our zstd plugin (HDF5_PLUGIN_PATH=<build>/plugins),
#      shows filter 32015, and fails without the plugin (so the data really is compressed);
#   2. /usr/bin/python3 with h5py + hdf5plugin (HDF5_PLUGIN_PATH=<build>/plugins too: Debian's
#      hdf5plugin has no zstd filter) reads every dataset, and its own figures (shapes,
#      click rate, reward mean, next histories derived from the documented rule) agree with the
#      file's attributes and with `hsrl replay inspect`;
#   3. `hsrl replay inspect`: summary, decoded rows, exit 2 with the file named for a truncated and
#      a missing file. Until hsrl.c lists the command, the same code runs through the test
#      program (test_replay_snapshot replay ...) and a SKIP line says so.
# The sample snapshot is written by `test_replay_snapshot --write FILE` (500 slots, H 20, K 6,
# L 3, log-probs, a wrapped ring, blocks queued).
# usage: bash tests/cli_replay_snapshot.sh HSRL_BINARY BUILD_DIR SOURCE_DIR   (as ctest runs it)
set -u
hsrl=$1
build=$2
writer=$build/tests/test_replay_snapshot
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-cli-replay-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n_fail=0
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stderr: $(head -c 400 "$tmp/err")"; }
expect_in() { grep -qF -- "$2" "$tmp/$1" || fail "expected in $1: '$2'; got: $(head -c 600 "$tmp/$1")"; }

snap=$tmp/shard-0.h5
if [ ! -x "$writer" ]; then
  echo "FAIL: $writer is missing (build the tests first)"
  exit 1
fi
"$writer" --write "$snap" || { echo "FAIL: could not write the sample snapshot"; exit 1; }

# 1. h5dump through the plugin
if command -v h5dump >/dev/null 2>&1; then
  run env HDF5_PLUGIN_PATH="$build/plugins" h5dump -p -d /transitions/reward "$snap"
  expect_rc 0 "h5dump -d /transitions/reward with the plugin"
  expect_in out "FILTER_ID 32015"
  expect_in out "( 500 )"
  expect_in out "DATA {"
  run env HDF5_PLUGIN_PATH="$build/plugins" h5dump -d /transitions/history -s "3,0" -c "1,20" "$snap"
  expect_rc 0 "h5dump a history row"
  run env -u HDF5_PLUGIN_PATH h5dump -d /transitions/reward "$snap"
  [ "$rc" -ne 0 ] || fail "h5dump read the zstd dataset without the plugin: is it compressed?"
  run h5dump -A -g /shard "$snap"
  expect_rc 0 "h5dump -A /shard"
  expect_in out '"capacity"'
  run h5dump -a /hsrl_kind "$snap"
  expect_in out "replay-shard"
else
  echo "SKIP: h5dump is not installed (apt-get install hdf5-tools)"
fi

# 2. h5py + hdf5plugin
py_ok=0
if /usr/bin/python3 -c 'import h5py, hdf5plugin' >/dev/null 2>&1; then
  py_ok=1
  # Debian's hdf5plugin registers no zstd filter of its own: h5py finds ours on the plugin path
  run env HDF5_PLUGIN_PATH="$build/plugins" /usr/bin/python3 - "$snap" <<'EOF'
import sys
import h5py, hdf5plugin  # noqa: F401  (the filters it has; zstd 32015 comes from the plugin path)
import numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["hsrl_kind"] in (b"replay-shard", "replay-shard"), f.attrs["hsrl_kind"]
s, c, t = f["shard"].attrs, f["counters"].attrs, f["transitions"]
n, H, K, L = int(c["size"]), int(s["history_len"]), int(s["slate_size"]), int(s["n_levels"])
assert t["user"].shape == (n,) and t["history"].shape == (n, H) and t["slate"].shape == (n, K)
assert t["tokens"].shape == (n, K, L) and t["behaviour_logp"].shape == (n, K, L)
assert t["tokens"].dtype == (np.uint8 if int(s["token_bytes"]) == 1 else np.uint16)
clicks = t["clicks"][()]
assert set(np.unique(clicks)) <= {0, 1}
assert int(c["inserted"]) >= n and int(f["limiter"].attrs["inserts"]) == int(c["inserted"])
assert int(f["queue"].attrs["n_blocks"]) == len([k for k in f["queue"] if k.startswith("block-")])
# next histories are derived by the documented rule: last H of (history ++ clicked slate items)
hist, slate = t["history"][()], t["slate"][()]
nh = [np.concatenate([hist[i], slate[i][clicks[i] == 1]])[-H:] for i in range(n)]
rule = t.attrs["next_history"]
rule = rule.decode() if isinstance(rule, bytes) else str(rule)
assert "next_history" not in t and rule.startswith("derived"), rule
oldest = (int(c["inserted"]) - n) % int(s["capacity"])  # slot order: transition t in slot t % capacity
print("rows %d click_rate %.4f reward_mean %.6g nh0 %s" % (
    n, clicks.mean(), float(np.mean(t["reward"][()].astype(np.float64))),
    " ".join(str(x) for x in nh[oldest][-5:])))
EOF
  expect_rc 0 "h5py reads the snapshot"
  cp "$tmp/out" "$tmp/py.out"
  grep -q "^rows 500 click_rate" "$tmp/py.out" || fail "h5py: unexpected output: $(cat "$tmp/py.out") $(cat "$tmp/err")"
else
  echo "SKIP: /usr/bin/python3 has no h5py + hdf5plugin (apt-get install python3-h5py python3-hdf5plugin)"
fi

# 3. hsrl replay inspect (or the same command through the test program)
if "$hsrl" replay --help >/dev/null 2>&1; then
  cmd=("$hsrl" replay)
else
  echo "SKIP: this hsrl binary has no 'replay' command yet (hsrl.c must list replay_command);" \
    "running the command through test_replay_snapshot instead"
  cmd=("$writer" replay)
fi
run "${cmd[@]}" inspect "$snap" --rows 2
expect_rc 0 "replay inspect"
expect_in out "held 500 of 500"
expect_in out "tokens uint8"
expect_in out "the 2 oldest transitions held:"
expect_in out "[1] slot"
expect_in out "lag"
if [ "$py_ok" -eq 1 ]; then
  rate=$(awk '{print $4}' "$tmp/py.out")
  expect_in out "rate $rate ("
  nh=$(sed 's/.* nh0 //' "$tmp/py.out")
  grep -A12 '^    \[0\]' "$tmp/out" | grep -A1 ' next ' | tail -n 1 | grep -qF -- "$nh" ||
    fail "inspect's first next history does not end in h5py's derived '$nh'"
fi
head -c 3000 "$snap" >"$tmp/cut.h5"
run "${cmd[@]}" inspect "$tmp/cut.h5"
expect_rc 2 "inspect a truncated file"
expect_in err "hsrl replay inspect: "
expect_in err "cut.h5"
run "${cmd[@]}" inspect "$tmp/none.h5"
expect_rc 2 "inspect a missing file"
expect_in err "none.h5"
run "${cmd[@]}" inspect
expect_rc 2 "inspect without FILE"
run "${cmd[@]}" inspect --help
expect_rc 0 "inspect --help"
expect_in out "--rows N"

if [ "$n_fail" -gt 0 ]; then
  echo "$n_fail check(s) failed"
  exit 1
fi
echo "all checks passed"
