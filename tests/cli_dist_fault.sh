#!/usr/bin/env bash
# Faults in the distributed job (learner_dist.h, docs/cluster.md "Faults"): `mpirun -np 3`
# (learner, 1 replay shard, 1 actor; tiny world; checkpoints every 50 updates) is killed with
# kill -9 mid-run, (a) the learner (rank 0) in an async run, (b) the actor (rank 2) in a sync
# run. mpirun runs with orte_enable_recovery so that the survivors are not killed by mpirun but
# must end by themselves: they exit with deadline errors (`--deadline 3`; the first to report
# may make mpirun end the rest), well within the test's hard timeout (a hang is the failure this test exists
# to catch), and not by their watchdogs (2 x the deadline: a watchdog exit means a wait without a
# deadline, a bug). Then: every complete file in ckpt/ and replay/ opens in h5dump; `hsrl train
# --resume` (a new mpirun) continues from the newest complete checkpoint, which is at most one
# checkpoint interval behind the last metrics row written before the kill, removes the killed
# writer's temporaries, and finishes; after it every file in ckpt/ and replay/ opens.
# usage: cli_dist_fault.sh HSRL BUILD_DIR SRC
set -u
hsrl=$1 build=$2
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.sh"
d=$(mktemp -d)
mp=
fail() {
  echo "FAIL: $*"
  if [[ -n $mp ]]; then # the job we started: its ranks, then mpirun
    local kids
    kids=$(pgrep -P "$mp")
    [[ -n $kids ]] && ps -o pid,stat,etime,args -p "$(echo $kids | tr ' ' ',')"
    for k in $kids; do kill -9 "$k" 2>/dev/null; done
    kill -9 "$mp" 2>/dev/null
  fi
  for f in "$d"/*.log; do [[ -f $f ]] && { echo "--- $f"; cat "$f"; }; done
  rm -rf "$d"
  exit 1
}
"$build/tests/test_dist_sync" setup "$d" || fail "setup"
every=50

# every complete file (no temporaries) under the run directory opens in h5dump
check_files() { # RUN_DIR WHEN
  local f n=0
  for f in "$1"/ckpt/* "$1"/replay/*; do
    [[ -e $f ]] || continue
    [[ $f == *.tmp-* && $2 == "after the kill" ]] && continue
    [[ $f == *.tmp-* ]] && fail "$2: temporary $f is still there"
    h5dump -H "$f" >/dev/null 2>&1 || fail "$2: h5dump cannot open $f"
    n=$((n + 1))
  done
  echo "  $2: all $n files in ckpt/ and replay/ open in h5dump"
}

newest() { # RUN_DIR -> the newest complete checkpoint's iteration (0: none)
  local best=0 f n
  for f in "$1"/ckpt/step-*.h5; do
    [[ -e $f ]] || continue
    n=${f##*/step-}; n=${n%.h5}
    ((n > best)) && best=$n
  done
  echo "$best"
}

scenario() { # NAME RANK_TO_KILL EXPECTED_ERROR_REGEX [--set ...]
  local name=$1 victim=$2 expect=$3
  shift 3
  local run="$d/mpi/$name" log="$d/$name.log"
  mpirun --mca orte_enable_recovery 1 -np 3 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train \
    "$d/sync.ini" --quiet --deadline 3 --set run.name="$name" --set train.iterations=20000 "$@" \
    >"$log" 2>&1 &
  mp=$!
  local t=0
  while [[ ! -f $run/ckpt/step-100.h5 ]]; do
    sleep 0.05
    t=$((t + 1))
    ((t < 1200)) || fail "$name: no step-100.h5 within 60 s"
    kill -0 "$mp" 2>/dev/null || { cat "$log"; fail "$name: the job ended before step-100"; }
  done
  local pid= k r
  for k in $(pgrep -P "$mp"); do
    r=$(tr '\0' '\n' </proc/"$k"/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
    [[ $r == "$victim" ]] && pid=$k
  done
  [[ -n $pid ]] || fail "$name: no process of rank $victim under mpirun $mp"
  kill -9 "$pid"
  local killed_at=$SECONDS
  local last_row
  last_row=$(tail -1 "$run/metrics.tsv" | cut -f1)
  # the survivors must end by themselves (deadline 3 s), not hang
  local waited=0
  while kill -0 "$mp" 2>/dev/null; do
    sleep 0.2
    waited=$((waited + 1))
    ((waited < 150)) || fail "$name: the job still runs 30 s after kill -9 of rank $victim (a hang)"
  done
  wait "$mp"
  mp=
  echo "$name: kill -9 of rank $victim at metrics row $last_row; the job ended $((SECONDS - killed_at)) s later"
  ! grep "watchdog" "$log" || fail "$name: a watchdog ended a rank (a wait without a deadline)"
  grep -E "$expect" "$log" || { cat "$log"; fail "$name: no deadline error matching '$expect'"; }
  check_files "$run" "after the kill"
  local before
  before=$(newest "$run")
  ((before >= 100)) || fail "$name: newest checkpoint $before"
  ((last_row - before <= every)) \
    || fail "$name: newest complete checkpoint $before is more than one interval behind row $last_row"
  # resume: from the newest complete checkpoint, to 100 updates past it
  local target=$((before + 100))
  timeout 60 mpirun -np 3 -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$hsrl" train --resume "$run" \
    --deadline 10 --set train.iterations=$target >"$log.resume" 2>&1 \
    || { cat "$log.resume"; fail "$name: --resume after the kill (exit $?)"; }
  grep -q "resuming .* from iteration $before " "$log.resume" \
    || { cat "$log.resume"; fail "$name: did not resume from step-$before"; }
  [[ -f $run/ckpt/step-$target.h5 ]] || fail "$name: the resumed run did not finish (no step-$target.h5)"
  check_files "$run" "after the resume"
  local rows
  rows=$(cut -f1 "$run/metrics.tsv" | tail -n +2 | tr '\n' ' ')
  sort -n -c <(cut -f1 "$run/metrics.tsv" | tail -n +2) 2>/dev/null \
    || fail "$name: metrics.tsv iterations not increasing: $rows"
  echo "ok: $name: resumed from step-$before (killed at row $last_row; at most one interval lost), finished at $target"
}

# a survivor's own deadline error, naming itself (which survivor reports first depends on timing:
# with recovery on, mpirun may still end the job when the first survivor exits with an error)
scenario learner 0 "error: rank [12] \((replay|actor)\): .*(within 3 s|for 3 s|before its deadline)" --set dist.sync=false
scenario actor 2 "error: rank [01] \((learner|replay)\): .*(within 3 s|for 3 s|before its deadline)"
rm -rf "$d"
