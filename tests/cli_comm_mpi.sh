#!/usr/bin/env bash
# The MPI transport under `mpirun -np 3` (tests/test_comm_mpi.c): all-to-all exchange, zero
# allocations in the steady state, a float-vector broadcast equal on every rank, a corrupt frame
# rejected, and rank 2 exiting early: rank 0 must report the timeout within seconds. Then twice
# `mpirun --mca orte_enable_recovery 1 -np 2` (the survivor is not killed by mpirun): rank 0 dies
# by SIGKILL in the middle of a 200 KB message (recv) or broadcast (bcast) and rank 1 must end
# its receive by its deadline and close. A hang is the failure this test exists to catch, hence
# the hard timeouts. usage: cli_comm_mpi.sh HSRL BUILD_DIR SRC
set -u
build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# In the sanitizer build, LeakSanitizer would report Open MPI's own allocations at exit; the
# transport's memory is leak-checked by the in-process run of the same scenario (ctest test_comm_mpi).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
out=$(mktemp)
start=$(date +%s)
timeout 60 mpirun -np 3 -x ASAN_OPTIONS "$build/tests/test_comm_mpi" mpi >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
fail() { echo "FAIL: $*"; cat "$out"; rm -f "$out"; exit 1; }
[[ $rc -eq 124 ]] && fail "the job hung until the 60 s timeout"
[[ $rc -eq 0 ]] || fail "exit status $rc"
n_ok=$(grep -c "^1 passed, 0 failed, 0 skipped$" "$out")
[[ $n_ok -eq 3 ]] || fail "$n_ok of 3 ranks passed"
grep -q "^rank 0 saw: rank 0 (learner) got no message from rank 2 (actor) within 1.5 s$" "$out" \
  || fail "rank 0 did not report the early-exiting rank 2 with a timeout naming it"
(( elapsed < 30 )) || fail "took ${elapsed}s (deadlines are 1.5 s; something waited far too long)"
echo "ok: 3 ranks passed in ${elapsed}s"

for c in recv bcast; do
  start=$(date +%s)
  timeout 60 mpirun --mca orte_enable_recovery 1 -np 2 -x ASAN_OPTIONS "$build/tests/test_comm_mpi" \
    mpi-dead "$c" >"$out" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  [[ $rc -eq 124 ]] && fail "$c: a sender killed mid-transfer: the job hung until the 60 s timeout"
  # rank 0 kills itself, so mpirun's status says nothing; rank 1's summary does
  grep -q "^1 passed, 0 failed, 0 skipped$" "$out" || fail "$c: rank 1 did not pass (exit status $rc)"
  (( elapsed < 30 )) || fail "$c: took ${elapsed}s (deadlines are 1 s)"
  echo "ok: $c: rank 1 survived a sender killed mid-transfer in ${elapsed}s"
done
rm -f "$out"
