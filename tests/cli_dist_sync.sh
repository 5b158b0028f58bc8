#!/usr/bin/env bash
# Sync mode of the distributed job (learner_dist.h): the SAME config (tiny world, 300 updates,
# learner + 1 replay shard + 1 actor) run as in-process role threads and under `mpirun -np 3`
# must give bit-identical checkpoints (h5diff of every dataset: agent tables and optimiser
# moments), while checkpoints of different iterations must differ (the comparison can fail).
# The same with R = 0 (the replay inside the learner): in-process 2 ranks vs `mpirun -np 2`.
# Then an async run with 2 actors (mpirun -np 4) must train and every rank exit 0.
# A hang is a failure: hard timeouts. usage: cli_dist_sync.sh HSRL BUILD_DIR SRC
set -u
hsrl=$1 build=$2
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.sh"
d=$(mktemp -d)
fail() { echo "FAIL: $*"; rm -rf "$d"; exit 1; }
"$build/tests/test_dist_sync" setup "$d" || fail "setup"
timeout 35 "$build/tests/test_dist_sync" inproc "$d/sync.ini" "$d/inproc/run" || fail "in-process run"
timeout 35 mpirun -np 3 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train "$d/sync.ini" --quiet \
  >"$d/mpi.log" 2>&1 || { cat "$d/mpi.log"; fail "mpirun -np 3 (exit $?)"; }
for it in 50 300; do
  a="$d/inproc/run/ckpt/step-$it.h5" b="$d/mpi/run/ckpt/step-$it.h5"
  [[ -f $a && -f $b ]] || fail "missing step-$it.h5"
  h5diff "$a" "$b" >"$d/diff.txt" 2>&1 || { head -20 "$d/diff.txt"; fail "step-$it.h5 differs (in-process vs mpirun)"; }
done
h5diff "$d/mpi/run/ckpt/step-50.h5" "$d/mpi/run/ckpt/step-300.h5" >/dev/null 2>&1 \
  && fail "step-50 and step-300 are identical: the comparison proves nothing"
echo "ok: sync in-process == mpirun -np 3 (bit-identical checkpoints at 50 and 300)"
# R = 0: learner + 1 actor
mkdir -p "$d/r0"; "$build/tests/test_dist_sync" setup "$d/r0" 0 || fail "setup R = 0"
timeout 35 "$build/tests/test_dist_sync" inproc "$d/r0/sync.ini" "$d/r0/inproc/run" 2 || fail "in-process run, R = 0"
timeout 35 mpirun -np 2 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train "$d/r0/sync.ini" --quiet \
  >"$d/r0.log" 2>&1 || { cat "$d/r0.log"; fail "mpirun -np 2, R = 0 (exit $?)"; }
for f in ckpt/step-300.h5 replay/shard-0-step-300.h5; do
  a="$d/r0/inproc/run/$f" b="$d/r0/mpi/run/$f"
  [[ -f $a && -f $b ]] || fail "R = 0: missing $f"
  h5diff "$a" "$b" >"$d/diff.txt" 2>&1 || { head -20 "$d/diff.txt"; fail "R = 0: $f differs (in-process vs mpirun)"; }
done
echo "ok: R = 0 sync in-process == mpirun -np 2 (bit-identical step-300 and replay snapshot)"
# async, 2 actors
timeout 35 mpirun -np 4 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train "$d/sync.ini" --quiet \
  --set dist.sync=false --set run.name=async >"$d/async.log" 2>&1 \
  || { cat "$d/async.log"; fail "async mpirun -np 4 (exit $?)"; }
[[ -f "$d/mpi/async/ckpt/step-300.h5" ]] || fail "async run left no final checkpoint"
rows=$(($(wc -l <"$d/mpi/async/metrics.tsv") - 1))
[[ $rows -eq 15 ]] || fail "async metrics.tsv has $rows rows, expected 15"
echo "ok: async run with 2 actors finished; last metrics row:"; tail -1 "$d/mpi/async/metrics.tsv"
rm -rf "$d"
