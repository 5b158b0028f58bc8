#!/usr/bin/env bash
# Resume of a distributed run (learner_dist.h "Resume"): in sync mode under `mpirun -np 3`
# (learner, 1 replay shard, 1 actor; tiny world; checkpoints every 50), 300 updates in one go vs
# 150 updates then `hsrl train --resume RUN_DIR --set train.iterations=300`: the final checkpoints
# (agent tables, optimiser moments, the stored broadcast) and the shard snapshots at 300 must be
# bit-identical (h5diff: 0 differences), while step-150 and step-300 of one run must differ (the
# comparison can fail); the resumed metrics.tsv has the uninterrupted run's rows (and the first
# part's last row, 150). Both runs validate their policy every 100 updates (train.val_every, on the
# learner rank): the selected policy (learner/selected) is in the compared checkpoints, and
# metrics.tsv has the val_reward column.
# A resume with another shard count (dist.replay_shards=2, -np 4) must be refused by every rank
# with exit status 2 and a message naming the field, at once.
# A hang is a failure: hard timeouts. usage: cli_dist_resume.sh HSRL BUILD_DIR SRC
set -u
hsrl=$1 build=$2
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.sh"
d=$(mktemp -d)
fail() { echo "FAIL: $*"; rm -rf "$d"; exit 1; }
mpi() { local np=$1; shift; timeout 40 mpirun -np "$np" -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS "$@"; }
"$build/tests/test_dist_sync" setup "$d" || fail "setup"
run="$d/mpi/run"
val=(--set train.val_every=100 --set train.val_episodes=20)
# uninterrupted (the same run directory name, so the stored configs are the same text)
mpi 3 "$hsrl" train "$d/sync.ini" --quiet "${val[@]}" >"$d/full.log" 2>&1 || { cat "$d/full.log"; fail "uninterrupted run"; }
mv "$run" "$d/full"
mpi 3 "$hsrl" train "$d/sync.ini" --quiet "${val[@]}" --set train.iterations=150 >"$d/part.log" 2>&1 \
  || { cat "$d/part.log"; fail "first 150 updates"; }
[[ -f $run/ckpt/step-150.h5 && ! -f $run/ckpt/step-200.h5 ]] || fail "the first part did not stop at 150"
mpi 3 "$hsrl" train --resume "$run" --set train.iterations=300 >"$d/resume.log" 2>&1 \
  || { cat "$d/resume.log"; fail "--resume to 300"; }
grep -q "resuming .* from iteration 150" "$d/resume.log" || { cat "$d/resume.log"; fail "no 'resuming ... from iteration 150'"; }
for f in ckpt/step-300.h5 replay/shard-0-step-300.h5 ckpt/step-200.h5; do
  [[ -f $run/$f && -f $d/full/$f ]] || fail "missing $f"
  h5diff "$d/full/$f" "$run/$f" >"$d/diff.txt" 2>&1 || { head -20 "$d/diff.txt"; fail "$f differs (uninterrupted vs 150 + resume)"; }
done
h5diff "$run/ckpt/step-150.h5" "$run/ckpt/step-300.h5" >/dev/null 2>&1 \
  && fail "step-150 and step-300 are identical: the comparison proves nothing"
# the resumed file: the uninterrupted run's rows plus the first part's last row (150)
cmp <(cut -f1 "$d/full/metrics.tsv") <(cut -f1 "$run/metrics.tsv" | grep -vx 150) \
  || fail "metrics.tsv iterations differ after the resume"
grep -q $'^150\t' "$run/metrics.tsv" || fail "metrics.tsv lost the first part's last row"
head -1 "$run/metrics.tsv" | grep -q $'\tval_reward$' || fail "metrics.tsv has no val_reward column"
h5dump -A -a learner/selected/params/iteration "$run/ckpt/step-300.h5" >"$d/sel.txt" 2>&1 \
  || { cat "$d/sel.txt"; fail "step-300.h5 holds no selected policy (learner/selected/params)"; }
echo "ok: sync mpirun -np 3: 300 updates == 150 + --resume to 300 (h5diff: checkpoint and shard snapshot identical)"
# another shard count: refused by every rank before any role starts, exit 2
start=$(date +%s)
mpi 4 "$hsrl" train --resume "$run" --set train.iterations=400 --set dist.replay_shards=2 \
  >"$d/bad.log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
[[ $rc -eq 2 ]] || { cat "$d/bad.log"; fail "a resume with another shard count exited $rc, expected 2"; }
n=$(grep -c "field 'dist.replay_shards'" "$d/bad.log")
[[ $n -ge 1 ]] || { cat "$d/bad.log"; fail "the refusal does not name dist.replay_shards"; }
(( elapsed < 20 )) || fail "the refusal took ${elapsed}s"
[[ ! -f $run/ckpt/step-400.h5 ]] || fail "the refused resume trained"
echo "ok: a resume with dist.replay_shards 1 -> 2 is refused (exit 2, in ${elapsed}s):"
grep -m1 "dist.replay_shards" "$d/bad.log"
rm -rf "$d"
