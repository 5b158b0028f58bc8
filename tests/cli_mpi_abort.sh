#!/usr/bin/env bash
# A check failing on rank 1 of an mpirun job must end the job through MPI_Abort (not a bare
# abort() or a hang), with the rank, role, file:line
# and condition in the message, well before the timeout. usage: cli_mpi_abort.sh HSRL BUILD_DIR SRC
set -u
build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
out=$(mktemp)
start=$(date +%s)
timeout 60 mpirun -np 2 "$build/tests/test_comm_abort" under-mpirun >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
fail() { echo "FAIL: $*"; cat "$out"; rm -f "$out"; exit 1; }
[[ $rc -eq 124 ]] && fail "the job hung until the 60 s timeout"
[[ $rc -eq 0 ]] && fail "the job exited 0 although a check failed"
grep -q "\[hsrl 1/actor\] check failed at .*test_comm_abort.c:[0-9]*: rank != 1: deliberate failure on rank 1" "$out" \
  || fail "the check message lacks rank/role, file:line or the condition"
grep -q "barrier passed" "$out" && fail "a rank got past the barrier"
# Through the hook the job ends by MPI_Abort(code 1); a bare abort() gives 134 (SIGABRT). (Open
# MPI's "MPI_ABORT was invoked" banner is not checked: its help printer sometimes fails under load.)
[[ $rc -eq 1 ]] || fail "exit status $rc, expected 1 from MPI_Abort (134 means a bare abort())"
echo "ok: job aborted with status $rc in ${elapsed}s"
rm -f "$out"
