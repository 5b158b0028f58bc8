#!/usr/bin/env bash
# cli_run.sh: `hsrl run CONFIG`, the pipeline with stage records (learner/learner_run.h), on a tiny
# synthetic world written into a temporary directory: the first run runs every stage and prints
# the table; a second run skips every stage; a changed train key reruns only the training stages
# and eval; a changed sid.vocab reruns sid, train (not the SL baseline, which reads no SIDs) and
# eval; raised train.iterations resumes; a deleted data file is remade bit for bit and the later
# stages stay current, while a changed world (synth.seed) reruns everything; a damaged output, a
# damaged checkpoint, a damaged stage record and a run directory not made by hsrl run are each
# rebuilt or moved aside, never used; --dry-run writes nothing; --force; a dataset read from files
# (ml100k fixture) reruns when a source file changes; bad usage and configs exit 2 naming the field.
# usage: bash tests/cli_run.sh HSRL_BINARY BUILD_DIR SOURCE_DIR   (as ctest runs it)
set -u
hsrl=$1
src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-cli-run-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
n_fail=0
fail() { echo "FAIL: $*"; n_fail=$((n_fail + 1)); }

# run CMD...: sets rc, and the files $tmp/out, $tmp/err
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1; stderr: $(head -c 600 "$tmp/err")"; }
expect_in() { grep -qF -- "$2" "$tmp/$1" || fail "$3: expected in $1: '$2'; got: $(head -c 1500 "$tmp/$1")"; }
# expect_stages "data:run sim-train:skip ..." WHAT: each stage's line says run or skip
expect_stages() {
  local pair stage want
  for pair in $1; do
    stage=${pair%%:*}
    want=${pair##*:}
    if [ "$want" = run ]; then
      grep -qE "^run $stage( \(sl\))?: " "$tmp/out" || fail "$2: '$stage' did not run; out: $(grep -E '^(run|skip)' "$tmp/out")"
    else
      grep -qE "^skip $stage( \(sl\))? \(current: " "$tmp/out" || fail "$2: '$stage' was not skipped; out: $(grep -E '^(run|skip)' "$tmp/out")"
    fi
  done
}
sum() { cksum <"$1" | awk '{print $1}'; }

p=$tmp/p
mkdir -p "$p"
cat >"$p/tiny.ini" <<'EOF'
; a tiny world and tiny networks: every stage in well under a second
[run]
name = hsrl
out_dir = runs
data = runs/tiny.data.h5
sim_train = runs/tiny.sim-train.h5
sim_all =
sid = runs/tiny.sid.h5
baselines = sl
compare = random,popular,greedy,oracle
[data]
format = synth
[synth]
items = 60
users = 40
sessions = 6
[sim]
max_epochs = 2
hidden = 32
[sid]
vocab = 4
levels = 2
[env]
model = world
batch = 8
[agent]
d = 16
ffn = 32
critic_hidden = 32,16
[train]
iterations = 20
batch = 16
learning_starts = 32
report_every = 5
checkpoint_every = 10
buffer = 1000
[eval]
episodes = 10
seeds = 2
EOF
all_run="data:run sim-train:run sid:run train:run baselines:run eval:run"
all_skip="data:skip sim-train:skip sid:skip train:skip baselines:skip eval:skip"
r=$p/runs
cd "$p" # paths in the lines are shown relative to the working directory

# 1. the first run: every stage runs, the table has every policy, the files and records exist
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "first run"
expect_stages "$all_run" "first run"
for pol in random popular greedy sl hsrl oracle; do
  grep -qE "^$pol +2 +10 " "$tmp/out" || fail "first run: no table row for $pol: $(cat "$tmp/out")"
done
expect_in out "click model world (ground truth)" "first run"
for f in tiny.data.h5 tiny.sim-train.h5 tiny.sid.h5; do
  [ -s "$r/$f" ] || fail "first run: no $f"
  grep -q "^stage_hash = [0-9a-f]\{16\}$" "$r/$f.stage" || fail "first run: no stage record for $f"
done
[ -s "$r/hsrl/ckpt/step-20.h5" ] && [ -s "$r/hsrl-sl/ckpt/step-20.h5" ] || fail "first run: no final checkpoints"
[ -s "$r/hsrl/results.tsv" ] && [ -s "$r/hsrl/results.json" ] || fail "first run: no results.tsv / results.json"
head -2 "$r/hsrl/results.tsv" | tail -1 | grep -q "^policy	seeds	episodes	total_reward_mean	total_reward_std	depth_mean" ||
  fail "results.tsv header: $(head -2 "$r/hsrl/results.tsv")"
[ "$(grep -c '"policy": ' "$r/hsrl/results.json")" -eq 6 ] || fail "results.json should hold 6 policies"
grep -q "^complete = 1$" "$r/hsrl/train.stage" || fail "train.stage not complete"
table1=$(sed -n '/^policy /,/^(mean/p' "$tmp/out")
res1=$(sum "$r/hsrl/results.tsv")

# 1b. scripts/curve.sh: every checkpoint of the run evaluated, the stability line
run env HSRL="$hsrl" bash "$src/scripts/curve.sh" tiny.ini runs/hsrl
expect_rc 0 "curve.sh"
[ "$(cut -f1 "$r/hsrl/curve.tsv" | tr '\n' ' ')" = "step 10 20 " ] || fail "curve.sh: curve.tsv steps: $(cat "$r/hsrl/curve.tsv")"
awk -F'\t' 'NR > 1 && !($2 > -10 && $2 < 100) { exit 1 }' "$r/hsrl/curve.tsv" || fail "curve.sh: a total reward is not a number"
expect_in out "last quarter (steps > 15, 1 checkpoints) mean" "curve.sh"
run env HSRL="$hsrl" bash "$src/scripts/curve.sh" tiny.ini runs/none
expect_rc 2 "curve.sh without a run"
expect_in err "no checkpoints in 'runs/none'" "curve.sh without a run"

# 2. the same again: every stage is current, nothing is rewritten, the same table is printed
sid_sum=$(sum "$r/tiny.sid.h5")
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "second run"
expect_stages "$all_skip" "second run"
[ "$(sed -n '/^policy /,/^(mean/p' "$tmp/out")" = "$table1" ] || fail "second run printed another table"
[ "$(sum "$r/hsrl/results.tsv")" = "$res1" ] || fail "second run rewrote results.tsv"
[ "$(sum "$r/tiny.sid.h5")" = "$sid_sum" ] || fail "second run rewrote the SID file"
expect_in out "0 stage(s) ran, 6 current" "second run"

# 3. a train key changes: only the training stages and eval rerun, and the line says why
sed -i 's/^batch = 16$/batch = 8/' tiny.ini
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "train.batch changed"
expect_stages "data:skip sim-train:skip sid:skip train:run baselines:run eval:run" "train.batch changed"
expect_in out "run train: train.batch changed (16 -> 8)" "train.batch changed"
expect_in out "run eval: input agent/hsrl changed" "train.batch changed"

# 3b. train.seed trains again on the same simulators and SIDs (evaluated on the same users);
# train.seed = run.seed trains the default run (-1) bit for bit
losses() { cut -f1,3,6- "$r/$1/metrics.tsv"; } # without the timing columns
losses3=$(losses hsrl)
losses3_sl=$(losses hsrl-sl)
run "$hsrl" run tiny.ini --quiet --set train.seed=5
expect_rc 0 "train.seed 5"
expect_stages "data:skip sim-train:skip sid:skip train:run baselines:run eval:run" "train.seed 5"
expect_in out "run train: train.seed changed (-1 -> 5)" "train.seed 5"
[ "$(losses hsrl)" != "$losses3" ] || fail "train.seed 5 trained the same HSRL run as run.seed 1"
[ "$(losses hsrl-sl)" != "$losses3_sl" ] || fail "train.seed 5 trained the same SL run as run.seed 1"
run "$hsrl" run tiny.ini --quiet --set train.seed=1
expect_rc 0 "train.seed = run.seed"
[ "$(losses hsrl)" = "$losses3" ] || fail "train.seed = run.seed did not train the default HSRL run"
[ "$(losses hsrl-sl)" = "$losses3_sl" ] || fail "train.seed = run.seed did not train the default SL run"
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "train.seed back to the default"
expect_stages "data:skip sim-train:skip sid:skip train:run baselines:run eval:run" "train.seed back to the default"
[ "$(losses hsrl)" = "$losses3" ] || fail "train.seed back to -1 did not train the same HSRL run"

# 4. sid.vocab changes: sid, train and eval rerun; the SL baseline reads no SIDs and stays
run "$hsrl" run tiny.ini --quiet --set sid.vocab=3
expect_rc 0 "sid.vocab changed"
expect_stages "data:skip sim-train:skip sid:run train:run baselines:skip eval:run" "sid.vocab changed"
expect_in out "run sid: sid.vocab changed (4 -> 3)" "sid.vocab changed"
expect_in out "run train: input sid changed" "sid.vocab changed"
# and back: the old SIDs are rebuilt bit for bit (seeded, deterministic)
run "$hsrl" run tiny.ini --quiet
expect_stages "sid:run train:run" "sid.vocab back"
[ "$(sum "$r/tiny.sid.h5")" = "$sid_sum" ] || fail "sid.vocab back: the rebuilt SID file differs from the first"

# 5. train.iterations raised: both agents resume from their checkpoints (no retraining)
run "$hsrl" run tiny.ini --quiet --set train.iterations=30
expect_rc 0 "iterations raised"
expect_in out "run train: train.iterations raised (20 -> 30): resuming from runs/hsrl/ckpt/step-20.h5" "iterations raised"
[ -s "$r/hsrl/ckpt/step-30.h5" ] || fail "iterations raised: no step-30 checkpoint"
[ "$(awk 'NR > 1 {print $1}' "$r/hsrl/metrics.tsv" | tr '\n' ' ')" = "5 10 15 20 25 30 " ] ||
  fail "iterations raised: metrics.tsv rows $(awk 'NR > 1 {print $1}' "$r/hsrl/metrics.tsv" | tr '\n' ' ')"
# an interrupted run (its final checkpoint never written) resumes from the newest one
rm "$r/hsrl/ckpt/step-30.h5"
run "$hsrl" run tiny.ini --quiet --set train.iterations=30
expect_in out "run train: an interrupted run: resuming from runs/hsrl/ckpt/step-20.h5 (iteration 20 of 30)" "interrupted"
expect_stages "baselines:skip" "interrupted"
# train.iterations lowered below the run: retrained from scratch
run "$hsrl" run tiny.ini --quiet
expect_in out "run train: train.iterations lowered (30 -> 20)" "iterations lowered"
[ -e "$r/hsrl/ckpt/step-30.h5" ] && fail "iterations lowered: the old step-30 checkpoint is still there"
[ -s "$r/hsrl/ckpt/step-20.h5" ] || fail "iterations lowered: no step-20 checkpoint"

# 6. the data file deleted: remade bit for bit from the same config, so the later stages stay
#    current; a different world (synth.seed) reruns every stage
cp "$r/tiny.data.h5" "$tmp/data.copy"
rm "$r/tiny.data.h5"
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "data deleted"
expect_stages "data:run sim-train:skip sid:skip train:skip baselines:skip eval:skip" "data deleted"
expect_in out "run data: output missing (runs/tiny.data.h5)" "data deleted"
cmp -s "$r/tiny.data.h5" "$tmp/data.copy" || fail "data deleted: the remade file differs"
run "$hsrl" run tiny.ini --quiet --set synth.seed=8
expect_rc 0 "synth.seed changed"
expect_stages "$all_run" "synth.seed changed"
expect_in out "run data: synth.seed changed (7 -> 8)" "synth.seed changed"
expect_in out "run sim-train: input data changed" "synth.seed changed"
run "$hsrl" run tiny.ini --quiet
expect_stages "$all_run" "synth.seed back"

# 7. damage: an output changed behind hsrl run's back is rebuilt, never used
sid_sum=$(sum "$r/tiny.sid.h5")
printf 'XXXXXXXX' | dd of="$r/tiny.sid.h5" bs=1 seek=2000 conv=notrunc 2>/dev/null
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "damaged sid"
expect_in out "run sid: output changed since hsrl run wrote it" "damaged sid"
"$hsrl" sid stats "$r/tiny.sid.h5" >/dev/null 2>&1 || fail "damaged sid: the rebuilt file does not read"
[ "$(sum "$r/tiny.sid.h5")" = "$sid_sum" ] || fail "damaged sid: the rebuilt file differs from the first build"
expect_stages "train:skip" "damaged sid (rebuilt identical)"
# a truncated simulator file
head -c 5000 "$r/tiny.sim-train.h5" >"$tmp/trunc" && cp "$tmp/trunc" "$r/tiny.sim-train.h5"
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "truncated sim"
expect_in out "run sim-train: output changed since hsrl run wrote it" "truncated sim"
# a damaged final checkpoint: the run is retrained
printf 'XXXXXXXX' | dd of="$r/hsrl-sl/ckpt/step-20.h5" bs=1 seek=3000 conv=notrunc 2>/dev/null
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "damaged checkpoint"
expect_in out "run baselines (sl): checkpoint runs/hsrl-sl/ckpt/step-20.h5 changed since hsrl run wrote it" "damaged checkpoint"
# a stage record that does not parse: the stage reruns
echo "garbage" >"$r/tiny.data.h5.stage"
run "$hsrl" run tiny.ini --quiet
expect_in out "run data: its stage record" "damaged record"
expect_in out "does not parse" "damaged record"
# results.tsv edited by hand
echo "edited" >>"$r/hsrl/results.tsv"
run "$hsrl" run tiny.ini --quiet
expect_in out "run eval: runs/hsrl/results.tsv missing or changed since hsrl run wrote it" "edited results"
# a file made by hand (no record) is remade
rm "$r/tiny.sim-train.h5.stage"
run "$hsrl" run tiny.ini --quiet
expect_in out "run sim-train: no stage record (the file was not made by hsrl run)" "no record"

# 8. a run directory not made by hsrl run is moved aside, never deleted
rm "$r/hsrl-sl/train.stage"
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "foreign run dir"
expect_in out "run baselines (sl): runs/hsrl-sl holds a run not made by hsrl run (no train.stage)" "foreign run dir"
expect_in out "moved runs/hsrl-sl to runs/hsrl-sl.old-1" "foreign run dir"
[ -s "$r/hsrl-sl.old-1/ckpt/step-20.h5" ] || fail "foreign run dir: the old run is gone"
[ -s "$r/hsrl-sl/ckpt/step-20.h5" ] || fail "foreign run dir: no new run"

# a train.stage that does not parse: the run is hsrl run's own, so it is retrained in place
echo "garbage" >"$r/hsrl/train.stage"
run "$hsrl" run tiny.ini --quiet
expect_rc 0 "damaged train.stage"
expect_in out "run train: its stage record" "damaged train.stage"
[ -e "$r/hsrl.old-1" ] && fail "damaged train.stage: hsrl run's own run was moved aside"
run "$hsrl" run tiny.ini --quiet
expect_stages "$all_skip" "after the damaged train.stage"

# 9. --dry-run says what would run and writes nothing; --force reruns a stage
before=$(ls -lR --time-style=full-iso "$r" | sum /dev/stdin)
run "$hsrl" run tiny.ini --dry-run --set sim.lr=0.002
expect_rc 0 "dry run"
expect_in out "would run sim-train: sim.lr changed (0.001 -> 0.002)" "dry run"
expect_in out "would run sid if the rebuilt sim-train differs (else it stays current)" "dry run"
expect_in out "skip data (current: runs/tiny.data.h5)" "dry run"
grep -q "^run " "$tmp/out" && fail "dry run ran a stage: $(cat "$tmp/out")"
[ "$(ls -lR --time-style=full-iso "$r" | sum /dev/stdin)" = "$before" ] || fail "dry run changed files"
run "$hsrl" run tiny.ini --quiet --force eval
expect_in out "run eval: --force eval" "--force eval"
expect_stages "data:skip train:skip" "--force eval"
run "$hsrl" run tiny.ini --quiet --force all
expect_stages "$all_run" "--force all"

# 10. a dataset read from files: a changed source file reruns the data stage and what follows
mkdir -p "$tmp/ml"
cp -r "$src/tests/fixtures/ml100k" "$tmp/ml/src"
cat >"$tmp/ml/ml.ini" <<'EOF'
[run]
out_dir = out
data = out/ml.data.h5
sim_train = out/ml.sim-train.h5
sim_all = out/ml.sim-all.h5
sid = out/ml.sid.h5
baselines =
compare = random,popular,greedy,oracle
[data]
format = ml100k
input = src
[sim]
max_epochs = 1
hidden = 16
[sid]
vocab = 2
levels = 2
[env]
batch = 4
[agent]
d = 8
heads = 2
ffn = 16
critic_hidden = 16
[train]
iterations = 4
batch = 4
learning_starts = 8
report_every = 2
checkpoint_every = 2
[eval]
episodes = 4
seeds = 1
EOF
run "$hsrl" run "$tmp/ml/ml.ini" --quiet
expect_rc 0 "ml100k run"
expect_stages "data:run sim-train:run sim-all:run sid:run train:run eval:run" "ml100k run"
# without a ground truth the oracle is greedy by the evaluation's own simulator (sim-all)
grep -qE "^oracle " "$tmp/out" || fail "ml100k run: no oracle row (greedy by the evaluation's simulator)"
awk -F'\t' '$1 == "oracle"' "$tmp/ml/out/demo/results.tsv" | grep -q "ml.sim-all.h5" ||
  fail "ml100k run: the oracle row does not name the sim-all file as its source"
grep -q "^key data.format = ml100k$" "$tmp/ml/out/ml.data.h5.stage" || fail "ml100k: the record lacks data.format"
grep -q "^input source/u.data = fnv1a64:" "$tmp/ml/out/ml.data.h5.stage" || fail "ml100k: the record lacks the source files"
echo "6|other" >>"$tmp/ml/src/u.occupation"
run "$hsrl" run "$tmp/ml/ml.ini" --quiet
expect_in out "run data: input source/u.occupation changed" "ml100k source changed"

# 10a. hsrl eval of a checkpoint may change how slates are decoded (agent.prefix_cap), nothing else
run "$hsrl" eval tiny.ini --checkpoint runs/hsrl/ckpt/step-20.h5 --json "$tmp/e0.json"
expect_rc 0 "eval"
plain=$(grep "^hsrl@20 " "$tmp/out")
run "$hsrl" eval tiny.ini --checkpoint runs/hsrl/ckpt/step-20.h5 --set agent.prefix_cap=1 --json "$tmp/e1.json"
expect_rc 0 "eval with agent.prefix_cap"
capped=$(grep "^hsrl@20 " "$tmp/out")
[ -n "$plain" ] && [ -n "$capped" ] && [ "$plain" != "$capped" ] ||
  fail "eval --set agent.prefix_cap=1 did not change the greedy slates: '$plain' vs '$capped'"

# 10b. ablations of HSRL as baselines: each trains the run's HSRL config with one switch off, in
# runs/hsrl-<ablation>, and gets its row in the table
run "$hsrl" run tiny.ini --quiet --set run.baselines=sl,hsrl-no-bc,hsrl-no-hierarchy
expect_rc 0 "ablations"
expect_in out "run baselines (hsrl-no-bc): no run yet (runs/hsrl-no-bc)" "ablations"
expect_in out "skip baselines (sl) (current: " "ablations"
grep -q "^key agent.bc = false$" runs/hsrl-no-bc/train.stage || fail "ablations: hsrl-no-bc did not train with agent.bc = false"
grep -q "^key agent.hierarchy = false$" runs/hsrl-no-hierarchy/train.stage || fail "ablations: hsrl-no-hierarchy has hierarchy on"
grep -q "^key agent.bc = true$" runs/hsrl/train.stage || fail "ablations: the main run changed"
for row in sl hsrl-no-bc hsrl-no-hierarchy hsrl oracle; do
  grep -q "^$row	" runs/hsrl/results.tsv || fail "ablations: no '$row' row in results.tsv"
done
run "$hsrl" run tiny.ini --dry-run --set run.baselines=hsrl-no-entropy --set agent.entropy=false
expect_in out "note: run.baselines: hsrl-no-entropy is the run's own hsrl config (agent.entropy=false already)" \
  "an ablation that changes nothing"
run "$hsrl" run tiny.ini --quiet --set run.baselines=sl,hsrl-no-x
expect_rc 2 "unknown ablation"
expect_in err "field 'run.baselines': unknown agent 'hsrl-no-x' (sl, sl-id, hsrl, hsrl-paper, hsrl-no-bc" "unknown ablation"
# SL with the item-id embedding, and HSRL with the paper's pg weights beside a run that chose others
run "$hsrl" run tiny.ini --dry-run --set run.baselines=sl-id,hsrl-paper --set agent.credit=click
expect_rc 0 "sl-id, hsrl-paper"
expect_in out "(sl-id): no run yet (runs/hsrl-sl-id)" "sl-id"
expect_in out "(hsrl-paper): no run yet (runs/hsrl-paper)" "hsrl-paper"
run "$hsrl" run tiny.ini --dry-run --set run.baselines=hsrl-paper
expect_in out "note: run.baselines: hsrl-paper is the run's own hsrl config (agent.credit=slate, agent.advantage=clip already)" \
  "hsrl-paper on the paper's config"

# 10b. reference policies under the agent's diversity rule (NAME-capC): their rows; only eval reruns
# and the best slates of HSRL's own form (NAME-hpn)
run "$hsrl" run tiny.ini --quiet --set run.compare=random,oracle,oracle-cap1,popular-cap2,oracle-hpn,greedy-hpn,popular-hpn
expect_rc 0 "capped compare"
expect_in out "run.compare changed (random,popular,greedy,oracle -> random,oracle,oracle-cap1,popular-cap2,oracle-hpn,greedy-hpn,popular-hpn); input sid is new" "capped compare"
grep -qE "^run (data|sim-train|sid|train)" "$tmp/out" && fail "capped compare: a stage other than eval ran"
for pol in random oracle oracle-cap1 popular-cap2 oracle-hpn greedy-hpn popular-hpn; do
  grep -qE "^$pol +2 +10 " "$tmp/out" || fail "capped compare: no table row for $pol: $(cat "$tmp/out")"
done
# the largest table: 8 agents (agent.kind and 7 baselines) and 8 reference policies
all_agents=sl,sl-id,hsrl-paper,hsrl-no-bc,hsrl-no-mlc,hsrl-no-hierarchy,hsrl-no-entropy
all_refs=random,popular,popular-cap1,greedy,greedy-cap1,oracle,oracle-cap1,oracle-cap2
run "$hsrl" run tiny.ini --quiet --set run.baselines=$all_agents --set run.compare=$all_refs
expect_rc 0 "8 agents and 8 reference policies"
[ "$(sed -n '/^policy /,/^(mean/p' "$tmp/out" | grep -cE '^[a-z0-9-]+ +2 +10 ')" -eq 16 ] ||
  fail "8 agents and 8 reference policies: not 16 rows: $(cat "$tmp/out")"
run "$hsrl" run tiny.ini --quiet --set run.compare=$all_refs,random,popular,greedy,oracle,popular-cap3
expect_rc 2 "13 reference policies"
expect_in err "at most 12" "13 reference policies"

# 11. bad usage and configs: exit 2 with the field named; nothing is made
run "$hsrl" run
expect_rc 2 "no config"
run "$hsrl" run tiny.ini --force nonsense
expect_rc 2 "bad --force"
expect_in err "unknown stage 'nonsense'" "bad --force"
run "$hsrl" run tiny.ini --frobnicate
expect_rc 2 "unknown option"
run "$hsrl" run "$tmp/none.ini"
expect_rc 2 "missing config"
sed 's/^data = .*/data =/' tiny.ini >"$tmp/nodata.ini"
run "$hsrl" run "$tmp/nodata.ini"
expect_rc 2 "empty run.data"
expect_in err "field 'run.data'" "empty run.data"
run "$hsrl" run tiny.ini --set run.compare=random,best
expect_rc 2 "bad run.compare"
expect_in err "field 'run.compare': unknown policy 'best'" "bad run.compare"
run "$hsrl" run tiny.ini --set run.compare=random,oracle-cap0
expect_rc 2 "run.compare cap 0"
expect_in err "unknown policy 'oracle-cap0'" "run.compare cap 0"
run "$hsrl" run tiny.ini --set run.sid= --set agent.kind=sl --set run.baselines= --set run.compare=greedy-cap1
expect_rc 2 "capped run.compare without SIDs"
expect_in err "'greedy-cap1' caps the items per level-1 SID token, but run.sid is empty" "capped run.compare without SIDs"
run "$hsrl" train tiny.ini --set agent.explore_cap=true --set agent.prefix_cap=0 --set run.name=capless
expect_rc 2 "agent.explore_cap without a cap"
expect_in err "field 'agent.explore_cap': true needs agent.prefix_cap >= 1" "agent.explore_cap without a cap"
[ -e runs/capless ] && fail "agent.explore_cap without a cap made a run directory"
sed 's/^sim_train = .*/sim_train =/' tiny.ini >"$tmp/nosim.ini"
run "$hsrl" run "$tmp/nosim.ini" --set run.out_dir=$tmp/x
expect_rc 2 "sid.vectors = sim without sim_train"
expect_in err "field 'sid.vectors'" "sid.vectors = sim without sim_train"
run "$hsrl" run "$tmp/ml/ml.ini" --set data.input=$tmp/nowhere --set run.data=$tmp/x/d.h5
expect_rc 2 "missing dataset directory"
expect_in err "field 'data.input'" "missing dataset directory"
[ -e "$tmp/x" ] && fail "a failed run made files: $(ls -R "$tmp/x")"
run "$hsrl" run --help
expect_rc 0 "--help"
expect_in out "usage: hsrl run CONFIG" "--help"

if [ "$n_fail" -ne 0 ]; then echo "cli_run: $n_fail failure(s)"; exit 1; fi
echo "cli_run: all checks passed"
