#!/usr/bin/env bash
# HSRL learns from rewards: a synthetic world with no satiation or fatigue and a low click bias
# (bias -3: a random slate is clicked ~11% of the time, the myopic oracle's ~84%), so the
# best policy is myopic and the reward says plainly which items a user likes. 500 items, 300
# users, SIDs 3 x 16 on the item features; HSRL trains 1500 updates in the world's ground truth
# and is evaluated greedily there (3 seeds x 200 episodes) beside random, popular and the oracle,
# twice:
#  (a) at the paper's defaults (sampled exploration, clipped slate advantages, entropy 0.1, BC
#      0.1): passes when its click rate is at least twice random's and its Total Reward beats
#      popular's by 0.3 or more. A sign error in the policy gradient, a critic that does not learn
#      or a decoder that ignores the policy fails.
#  (b) with the options configs/demo.ini and configs/ml1m.ini use (agent.off_policy_correction,
#      advantage = normalise, credit = click): passes when its Total Reward is at least 0.8 x the
#      oracle's. Without the importance weights the policy gradient keeps pushing down replayed
#      actions the policy has already left and the policy collapses (0.21 with the other two
#      options alone); a wrong weight (e.g. not truncated, or pi/behaviour inverted) fails.
# Measured when written (run.seed 1 / 2 / 3): (a) 0.66 / 0.74 / 1.98 (click rate 0.31 / 0.33 / 0.56),
# (b) 5.66 / 5.65 / 5.57 (0.82); random 0.04 (0.11), popular 0.10 (0.13), the oracle 6.2 (0.84).
# usage: cli_learning.sh HSRL BUILD_DIR SRC
set -u
hsrl=$1
export OPENBLAS_NUM_THREADS=1
d=$(mktemp -d "${TMPDIR:-/tmp}/hsrl-learning-XXXXXX")
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$d"
"$hsrl" data synth --items 500 --users 300 --seed 7 --user-features 16 --set fatigue=0 --set sat_topic=0 \
  --set sat_subtopic=0 --set bias=-3 --out w.data.h5 --quiet >/dev/null || fail "data synth"
cat >q.ini <<INI
[run]
name = hsrl
out_dir = $d/runs
data = $d/w.data.h5
sim_train =
sid = $d/w.sid.h5
[sid]
vocab = 16
vectors = features
[env]
model = world
exclude_history = true
[train]
iterations = 1500
learning_starts = 1000
checkpoint_every = 1500
[eval]
episodes = 200
seeds = 3
INI
"$hsrl" sid build --config q.ini --data w.data.h5 --out w.sid.h5 >/dev/null 2>&1 || fail "sid build"
timeout 400 "$hsrl" train q.ini --quiet >train.log 2>&1 || { tail -5 train.log; fail "hsrl train"; }
"$hsrl" eval q.ini --checkpoint runs/hsrl/ckpt/step-1500.h5 --json e.json >agent.txt 2>&1 || { cat agent.txt; fail "eval"; }
fixes="--set agent.off_policy_correction=true --set agent.advantage=normalise --set agent.credit=click"
timeout 400 "$hsrl" train q.ini --quiet --set run.name=fixed $fixes >fixed.log 2>&1 || { tail -5 fixed.log; fail "hsrl train (b)"; }
"$hsrl" eval q.ini --set run.name=fixed $fixes --checkpoint runs/fixed/ckpt/step-1500.h5 --json f.json >fixed.txt 2>&1 ||
  { cat fixed.txt; fail "eval (b)"; }
"$hsrl" eval --data w.data.h5 --world --policies random,popular,oracle --episodes 200 --seeds 3 --batch 32 \
  --set env.exclude_history=true --json r.json >ref.txt 2>&1 || { cat ref.txt; fail "eval of random, popular, oracle"; }
# columns of the table: policy seeds episodes TR +- sd depth +- sd click +- sd coverage +- sd
read -r h_tr h_cr < <(awk '/^hsrl@/ { print $4, $10 }' agent.txt)
read -r f_tr f_cr < <(awk '/^hsrl@/ { print $4, $10 }' fixed.txt)
read -r r_tr r_cr < <(awk '$1 == "random" { print $4, $10 }' ref.txt)
read -r p_tr p_cr < <(awk '$1 == "popular" { print $4, $10 }' ref.txt)
read -r o_tr o_cr < <(awk '$1 == "oracle" { print $4, $10 }' ref.txt)
echo "HSRL (a) paper defaults $h_tr (click rate $h_cr); (b) with the corrections $f_tr ($f_cr);"
echo "random $r_tr ($r_cr); popular $p_tr ($p_cr); oracle $o_tr ($o_cr)"
[[ -n $h_tr && -n $f_tr && -n $r_tr && -n $p_tr && -n $o_tr ]] || fail "could not read the tables"
awk -v h="$h_tr" -v hc="$h_cr" -v rc="$r_cr" -v p="$p_tr" -v f="$f_tr" -v o="$o_tr" 'BEGIN {
  bad = 0
  if (hc < 2 * rc) { print "FAIL: (a) click rate " hc " is not twice random'"'"'s " rc; bad = 1 }
  if (h < p + 0.3) { print "FAIL: (a) Total Reward " h " does not beat popular'"'"'s " p " by 0.3"; bad = 1 }
  if (f < 0.8 * o) { print "FAIL: (b) Total Reward " f " is below 0.8 x the oracle'"'"'s " o; bad = 1 }
  exit bad }' || exit 1
echo "ok: HSRL learned what users like"
