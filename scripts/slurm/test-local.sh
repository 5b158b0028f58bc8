#!/usr/bin/env bash
# scripts/slurm/test-local.sh: the real-Slurm test of scripts/slurm/hsrl.sbatch (docs/cluster.md,
# "Testing the script on one machine"). Not run by ctest or CI: it needs root, apt and daemons.
#
#   scripts/slurm/test-local.sh [--keep] [--iterations N] [--checkpoint-every C] [--ntasks T]
#                               [--set section.key=value]...
#
# 1. scripts/slurm/setup-local.sh (slurm-wlm + munge, slurmctld + slurmd on this host);
# 2. the demo world in a temporary directory (hsrl data synth, sim train, sid build with the
#    settings of configs/demo.ini) and a copy of configs/demo.ini whose paths point there;
# 3. sbatch --ntasks=T scripts/slurm/hsrl.sbatch CONFIG --set train.iterations=N
#    --set train.checkpoint_every=C [--set ...] (default T 1, N 3000, C 250: about a minute of
#    training; T 2 with --set dist.replay_shards=0 is the distributed job on a 2-core node:
#    learner (with the replay inside) + one actor);
# 4. once a checkpoint >= N/4 exists: `scontrol requeue` (Slurm kills the job and queues it
#    again), `scontrol update StartTime=now` (skips the two-minute wait), the job resumes;
# 5. once a checkpoint >= N/2 exists: `scancel --batch --signal=USR1` (what --signal=B:USR1@T sends
#    before the time limit): the script waits for the next checkpoint, stops hsrl and requeues
#    the job itself; StartTime=now again; the job resumes and runs to its end.
# Asserted: the job COMPLETED with exit code 0 after 2 restarts; the newest checkpoint is step-N;
# the log shows one new run and two resumes, each from a checkpoint >= the newest one seen before
# that requeue; checkpoints up to each resume point were not rewritten (same size and mtime) and
# metrics.tsv kept its rows up to there, its iterations strictly increasing up to N: nothing was
# redone from 0. Prints PASS or FAIL, the iterations redone after each requeue and the timings.
# The binary is $HSRL_BINARY, else build-slurm/hsrl (built by scripts/build.sh if missing).
# The daemons are stopped at the end if this script started them; --keep keeps the temporary
# directory (it is printed).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
iters=3000
every=250
keep=0
ntasks=1
extra=()
while (($#)); do
  case $1 in
    --keep) keep=1; shift ;;
    --iterations) iters=$2; shift 2 ;;
    --checkpoint-every) every=$2; shift 2 ;;
    --ntasks) ntasks=$2; shift 2 ;;
    --set) extra+=(--set "$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test-local: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
((iters >= 8 * every)) || { echo "test-local: need --iterations >= 8 x --checkpoint-every" >&2; exit 2; }

say() { printf 'test-local %s: %s\n' "$(date +%T)" "$*"; }
failures=0
check() { # check DESCRIPTION COMMAND...: runs the command, records PASS/FAIL
  local what=$1
  shift
  if "$@"; then
    say "ok   $what"
  else
    say "FAIL $what"
    failures=$((failures + 1))
  fi
}
die() {
  say "FAIL $*"
  [[ -n ${log:-} && -f ${log:-} ]] && { echo "---- job log ($log), last 40 lines"; tail -40 "$log"; }
  exit 1
}

[[ $(id -u) -eq 0 ]] || { echo "test-local: needs root (installs and starts Slurm)" >&2; exit 2; }
t_start=$SECONDS

# ---- Slurm
started_daemons=1
if [[ -s /run/slurmctld.pid ]] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then started_daemons=0; fi
"$root/scripts/slurm/setup-local.sh" || die "setup-local.sh"

# ---- the binary
hsrl=${HSRL_BINARY:-$root/build-slurm/hsrl}
if [[ ! -x $hsrl ]]; then
  say "building $hsrl"
  "$root/scripts/build.sh" build-slurm >/dev/null || die "build"
  hsrl=$root/build-slurm/hsrl
fi
hsrl=$(cd "$(dirname "$hsrl")" && pwd)/$(basename "$hsrl")
export OPENBLAS_NUM_THREADS=1

# ---- the world and the config
T=$(mktemp -d /tmp/hsrl-slurm-test.XXXXXX)
job=
cleanup() {
  if [[ -n $job ]] && squeue -h -j "$job" 2>/dev/null | grep -q .; then scancel "$job" 2>/dev/null; fi
  if ((keep)); then say "kept $T"; else rm -rf "$T"; fi
  if ((started_daemons)); then "$root/scripts/slurm/setup-local.sh" --stop >/dev/null; fi
}
trap cleanup EXIT
say "world and config in $T"
cfg=$T/demo.ini
# configs/demo.ini with its ../runs/demo/ paths made local to $T (paths are relative to the file)
sed -e 's|\.\./runs/demo/||g' -e 's|^\(out_dir *= *\)\.\./runs/demo|\1.|' "$root/configs/demo.ini" >"$cfg"
shown=$("$hsrl" config show "$cfg" --plain) || die "hsrl config show $cfg"
grep -qx "out_dir = $T" <<<"$shown" || die "the config copy's run.out_dir is not $T"
grep -qx "data = $T/demo.data.h5" <<<"$shown" || die "the config copy's run.data is not $T/demo.data.h5"
synth() { awk -v k="$1" '/^\[/ {s = $0} s == "[synth]" && $1 == k {print $3; exit}' <<<"$shown"; }
"$hsrl" data synth --items "$(synth items)" --users "$(synth users)" --seed "$(synth seed)" \
  --user-features "$(synth user_features)" --out "$T/demo.data.h5" >"$T/world.log" 2>&1 &&
  "$hsrl" sim train --config "$cfg" --data "$T/demo.data.h5" --split train \
    --out "$T/demo.sim-train.h5" >>"$T/world.log" 2>&1 &&
  "$hsrl" sid build --config "$cfg" --data "$T/demo.data.h5" --sim "$T/demo.sim-train.h5" \
    --out "$T/demo.sid.h5" >>"$T/world.log" 2>&1 || { cat "$T/world.log"; die "making the world"; }
run_dir=$T/hsrl
log=$T/job.out

# ---- helpers
newest_ckpt() {
  local f n best=-1
  for f in "$run_dir"/ckpt/step-*.h5; do
    n=${f##*/step-}
    n=${n%.h5}
    [[ $n =~ ^[0-9]+$ ]] && ((10#$n > best)) && best=$((10#$n))
  done
  echo "$best"
}
job_field() { scontrol -o show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2 t=$SECONDS
  shift 2
  until "$@"; do
    ((SECONDS - t < limit)) || die "timeout after ${limit}s waiting for: $what (job state $(job_field JobState))"
    sleep 1
  done
}
state_is() { [[ $(job_field JobState) == "$1" ]]; }
ckpt_at_least() { (($(newest_ckpt) >= $1)); }
job_done() { case $(job_field JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) return 0 ;; esac; return 1; }
snapshot() { # snapshot NAME: metrics.tsv and the checkpoints' size and mtime
  cp "$run_dir/metrics.tsv" "$T/metrics.$1"
  (cd "$run_dir/ckpt" && stat -c '%n %s %Y' step-*.h5 | sort -t- -k2 -n) >"$T/ckpts.$1"
}
last_metrics_iter() { tail -1 "$1" | cut -f1; }
# resumes from the job log, in order: "resuming RUN from iteration N"
resume_points() { sed -n 's/.*resuming .* from iteration \([0-9]*\).*/\1/p' "$log"; }
# kept CKPTS_FILE POINT METRICS_FILE: checkpoints <= POINT unchanged, metrics rows <= POINT kept
kept() {
  local ck=$1 point=$2 me=$3 name size mtime n
  while read -r name size mtime; do
    n=${name#step-}
    n=${n%.h5}
    ((n <= point)) || continue
    [[ $(stat -c '%s %Y' "$run_dir/ckpt/$name" 2>/dev/null) == "$size $mtime" ]] || { say "  $name was rewritten"; return 1; }
  done <"$ck"
  # rows up to the resume point that the snapshot has (a report may have followed the snapshot)
  n=$(last_metrics_iter "$me")
  ((n < point)) || n=$point
  diff <(awk -v p="$n" 'NR == 1 || $1 <= p' "$me") <(awk -v p="$n" 'NR == 1 || $1 <= p' "$run_dir/metrics.tsv") >/dev/null ||
    { say "  metrics.tsv rows <= $point differ"; return 1; }
}
requeue_wait_and_start() { # after a requeue: wait for PENDING, StartTime=now, wait for RUNNING
  local want=$1
  wait_for 120 "restart count $want" bash -c "scontrol -o show job $job | grep -q ' Restarts=$want '"
  wait_for 120 "job pending again" state_is PENDING
  # Slurm holds a requeued job ~2 minutes; skipping the hold entirely is a race: a restart within
  # the second of the requeue finds the job's credential revoked on the node and the job FAILS
  # ("Killing non-startable batch JobId=..: Job credential revoked" in slurmctld.log)
  sleep 3
  scontrol update jobid="$job" StartTime=now || die "scontrol update StartTime=now"
  wait_for 120 "job running again" state_is RUNNING
}

# ---- 1: submit
cd "$root" || die "cd $root"
t0=$SECONDS
job=$(HSRL_BINARY=$hsrl sbatch --parsable --ntasks="$ntasks" --time=30 --output="$log" \
  scripts/slurm/hsrl.sbatch "$cfg" --set train.iterations="$iters" --set train.checkpoint_every="$every" \
  "${extra[@]}") ||
  die "sbatch"
job=${job%%;*}
say "submitted job $job: $ntasks task(s), $iters iterations, a checkpoint every $every ${extra[*]}"
wait_for 120 "job running" state_is RUNNING
t_run=$SECONDS
q1=$((iters / 4))
wait_for 300 "checkpoint >= $q1" ckpt_at_least "$q1"
snapshot 1
c1=$(newest_ckpt)
m1=$(last_metrics_iter "$T/metrics.1")
t1=$SECONDS
say "newest checkpoint step-$c1, metrics at $m1: scontrol requeue $job"
kill1=$(date +%s)
scontrol requeue "$job" || die "scontrol requeue"
requeue_wait_and_start 1
t1b=$SECONDS
say "job $job running again ($((t1b - t1))s after the requeue)"

# ---- 2: the time-limit warning (USR1 to the batch script)
q2=$((iters / 2))
wait_for 300 "checkpoint >= $q2" ckpt_at_least "$q2"
c2=$(newest_ckpt)
t2=$SECONDS
say "newest checkpoint step-$c2: scancel --batch --signal=USR1 $job"
scancel --batch --signal=USR1 "$job" || die "scancel --signal=USR1"
wait_for 180 "the job's own requeue" bash -c "scontrol -o show job $job | grep -q ' Restarts=2 '"
snapshot 2
m2=$(last_metrics_iter "$T/metrics.2")
requeue_wait_and_start 2
t2b=$SECONDS
say "job $job running again ($((t2b - t2))s after USR1)"

# ---- 3: to the end
wait_for 600 "job end" job_done
t_end=$SECONDS
state=$(job_field JobState)
exit_code=$(job_field ExitCode)
restarts=$(job_field Restarts)

# ---- checks
mapfile -t points < <(resume_points)
r1=${points[0]:--1}
r2=${points[1]:--1}
final=$(newest_ckpt)
check "job state COMPLETED, exit code 0:0 (got $state, $exit_code)" test "$state" = COMPLETED -a "$exit_code" = 0:0
check "2 restarts (got $restarts)" test "$restarts" = 2
check "final checkpoint step-$iters (got step-$final)" test "$final" -eq "$iters"
check "one new run in the log" test "$(grep -c 'hsrl.sbatch.*: new run$' "$log")" -eq 1
check "two resumes in the log (got ${#points[@]}: ${points[*]})" test "${#points[@]}" -eq 2
check "restart 1 resumed from step-$r1 >= step-$c1 (the newest before the requeue)" test "$r1" -ge "$c1" -a "$r1" -gt 0
check "restart 2 resumed from step-$r2 > step-$c2 (USR1 waited for a fresh checkpoint)" test "$r2" -gt "$c2"
check "the self-requeue was logged" grep -q "requeueing job $job (it resumes from step-$r2)" "$log"
check "checkpoints and metrics up to step-$r1 untouched after restart 1" kept "$T/ckpts.1" "$r1" "$T/metrics.1"
check "checkpoints and metrics up to step-$r2 untouched after restart 2" kept "$T/ckpts.2" "$r2" "$T/metrics.2"
check "metrics.tsv iterations strictly increasing to $iters" \
  awk -v n="$iters" 'NR > 1 { if ($1 <= prev) bad = 1; prev = $1 } END { exit bad || prev != n }' "$run_dir/metrics.tsv"

# ---- summary
# seconds of training lost at a stop: from the resume point's checkpoint to the kill
ckpt_mtime() { stat -c %Y "$run_dir/ckpt/step-$1.h5" 2>/dev/null || echo 0; }
kill2=$(date -d "$(sed -n 's/^\[hsrl.sbatch \([^]]*\)\] stopping mpirun.*/\1/p' "$log" | head -1)" +%s 2>/dev/null || echo 0)
lost1=$((kill1 - $(ckpt_mtime "$r1")))
lost2=$((kill2 - $(ckpt_mtime "$r2")))
rate=$(awk -F'\t' 'NR > 1 && $5 > 0 { s += $5; n++ } END { if (n) printf "%.1f", s / n; else print "?" }' "$run_dir/metrics.tsv")
secs=$(tail -1 "$run_dir/metrics.tsv" | cut -f2)
echo "---- summary (job $job, log $log)"
echo "training: $iters iterations, checkpoint every $every, $rate updates/s (mean of metrics.tsv), $secs s of training (metrics.tsv)"
echo "requeue 1 (scontrol requeue): at metrics iteration $m1, newest checkpoint $c1, resumed from $r1 (killed ${lost1} s after that checkpoint; that much training is redone); back running $((t1b - t1)) s later"
echo "requeue 2 (USR1, self-requeue): signalled at checkpoint $c2, stopped at metrics iteration $m2, resumed from $r2 (stopped ${lost2} s after that checkpoint); back running $((t2b - t2)) s later"
echo "wall time: submit to end $((t_end - t0)) s (first start $((t_run - t0)) s after submit); whole test $((SECONDS - t_start)) s"
if ((failures)); then
  echo "FAIL ($failures check(s) failed)"
  echo "---- job log, last 40 lines"
  tail -40 "$log"
  exit 1
fi
echo "PASS"
