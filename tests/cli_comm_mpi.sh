#!/usr/bin/env bash
# The MPI transport under `mpirun -np 3` (tests/test_comm_mpi.c): all-to-all exchange, zero
# allocations in the steady state, a float-vector broadcast equal on every rank, a corrupt frame
# rejected, and rank 2 exiting early: rank 0 must report the timeout within seconds. A hang is the
# failure this test exists to catch, hence the hard timeout. usage: cli_comm_mpi.sh HSRL BUILD_DIR SRC
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
rm -f "$out"
