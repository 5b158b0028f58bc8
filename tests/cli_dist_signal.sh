#!/usr/bin/env bash
# SIGTERM / SIGINT in `hsrl train` (learner_train.h "Stopping on a signal"): the update in
# progress finishes, a checkpoint of that iteration is written, hsrl exits with 128 + signal
# (143 SIGTERM, 130 SIGINT) and a message naming the iteration and how to continue; nothing is
# lost: the newest checkpoint is the stop iteration, and --resume continues from it to the end.
#   (a) single process, SIGTERM; its resume shows a progress line that counts only the
#       iterations of the resumed process ("train (resumed at N): 100/100");
#   (b) single process, SIGINT;
#   (c) the learner rank of `mpirun -np 3` (learner, replay shard, actor), SIGTERM: every rank
#       ends cleanly, mpirun exits 143, the replay snapshot of the stop iteration exists, and
#       the resume under mpirun finishes.
# Hard timeouts: a run that ignores the signal is the failure. usage: cli_dist_signal.sh HSRL BUILD_DIR SRC
set -u
hsrl=$1 build=$2
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.sh"
d=$(mktemp -d)
bg=
fail() {
  echo "FAIL: $*"
  [[ -n $bg ]] && kill -9 "$bg" 2>/dev/null
  rm -rf "$d"
  exit 1
}
"$build/tests/test_dist_sync" setup "$d" || fail "setup"

newest() { # RUN_DIR -> the newest complete checkpoint's iteration (0: none)
  local best=0 f n
  for f in "$1"/ckpt/step-*.h5; do
    [[ -e $f ]] || continue
    n=${f##*/step-}; n=${n%.h5}
    ((n > best)) && best=$n
  done
  echo "$best"
}

wait_for() { # FILE: until it exists (the background job must still run), at most 60 s
  local t=0
  while [[ ! -f $1 ]]; do
    sleep 0.05
    t=$((t + 1))
    ((t < 1200)) || fail "no $1 within 60 s"
    kill -0 "$bg" 2>/dev/null || fail "the run ended before $1"
  done
}

wait_bg() { # -> exit status of the background job, which must end within 30 s
  local t=0
  while kill -0 "$bg" 2>/dev/null; do
    sleep 0.1
    t=$((t + 1))
    ((t < 300)) || fail "still running 30 s after the signal"
  done
  wait "$bg"
  local rc=$?
  bg=
  return $rc
}

# the message "stopped by SIG... at iteration N" -> N, checked against the files
check_stop() { # NAME LOG RUN_DIR SIGNAME RC EXPECTED_RC
  local n
  [[ $5 -eq $6 ]] || { cat "$2"; fail "$1: exit status $5, expected $6"; }
  n=$(sed -n "s/.*stopped by $4 at iteration \([0-9]*\) of.*/\1/p" "$2" | head -1)
  [[ -n $n ]] || { cat "$2"; fail "$1: no 'stopped by $4 at iteration N' message"; }
  [[ $(newest "$3") -eq $n ]] || fail "$1: stopped at $n but the newest checkpoint is $(newest "$3")"
  h5dump -H "$3/ckpt/step-$n.h5" >/dev/null 2>&1 || fail "$1: step-$n.h5 does not open"
  ((n >= 100)) || fail "$1: stopped at $n, before the checkpoint it waited for"
  echo "$n"
}

# (a) single process, SIGTERM
run="$d/mpi/single"
"$hsrl" train "$d/sync.ini" --quiet --set run.name=single --set train.iterations=100000 >"$d/a.log" 2>&1 &
bg=$!
wait_for "$run/ckpt/step-100.h5"
kill -TERM "$bg"
wait_bg
rc=$?
n=$(check_stop single "$d/a.log" "$run" SIGTERM $rc 143) || exit 1
echo "ok: (a) single process, SIGTERM: exit 143, checkpoint step-$n written: $(grep -o 'stopped by.*' "$d/a.log")"
target=$((n + 100))
HSRL_PROGRESS_SECONDS=100000 timeout 60 "$hsrl" train --resume "$run" --set train.iterations=$target \
  >"$d/a2.log" 2>&1 || { cat "$d/a2.log"; fail "(a) resume"; }
[[ -f $run/ckpt/step-$target.h5 ]] || fail "(a) the resume did not finish"
grep -q "train (resumed at $n): 100/100 (100.0%)" "$d/a2.log" \
  || { cat "$d/a2.log"; fail "(a) the resumed progress line does not count only its own 100 iterations"; }
echo "ok: (a) resumed to $target; progress: $(grep -o 'train (resumed.*' "$d/a2.log")"

# (b) single process, SIGINT
run="$d/mpi/single-int"
"$hsrl" train "$d/sync.ini" --quiet --set run.name=single-int --set train.iterations=100000 >"$d/b.log" 2>&1 &
bg=$!
wait_for "$run/ckpt/step-100.h5"
kill -INT "$bg"
wait_bg
rc=$?
n=$(check_stop single-int "$d/b.log" "$run" SIGINT $rc 130) || exit 1
echo "ok: (b) single process, SIGINT: exit 130, checkpoint step-$n written"

# (c) the learner rank under mpirun
run="$d/mpi/dist"
mpirun -np 3 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train "$d/sync.ini" --quiet --deadline 10 \
  --set run.name=dist --set train.iterations=100000 >"$d/c.log" 2>&1 &
bg=$!
wait_for "$run/ckpt/step-100.h5"
learner=
for k in $(pgrep -P "$bg"); do
  r=$(tr '\0' '\n' </proc/"$k"/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
  [[ $r == 0 ]] && learner=$k
done
[[ -n $learner ]] || fail "(c) no rank 0 under mpirun $bg"
kill -TERM "$learner"
wait_bg
rc=$?
n=$(check_stop dist "$d/c.log" "$run" SIGTERM $rc 143) || exit 1
[[ -f $run/replay/shard-0-step-$n.h5 ]] || fail "(c) no replay snapshot of the stop iteration $n"
grep -q "error" "$d/c.log" && { cat "$d/c.log"; fail "(c) a rank reported an error"; }
echo "ok: (c) learner rank, SIGTERM: mpirun exit 143, checkpoint and replay snapshot of step-$n written"
target=$((n + 60))
timeout 60 mpirun -np 3 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train --resume "$run" --quiet \
  --set train.iterations=$target >"$d/c2.log" 2>&1 || { cat "$d/c2.log"; fail "(c) resume under mpirun"; }
[[ -f $run/ckpt/step-$target.h5 ]] || fail "(c) the resume did not finish"
echo "ok: (c) resumed under mpirun from $n to $target"
rm -rf "$d"
