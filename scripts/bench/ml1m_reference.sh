# Sourced by scripts/bench/train.sh and arith_bound.sh: ML-1M at issue 5's reference shapes.
# ml1m_reference_prepare HSRL DIR DATA prepares (not timed) DATA's ratings, a simulator (2 epochs)
# and SIDs (3 x 64) into DIR with the binary HSRL, then sets the array `sets`: the KEY=VALUE
# settings of the reference's shapes on those files (d 32, 2 layers, 4 heads, FFN 128, L 3, V 64,
# B_env 32, B 64, H 50, K 10), the same for hsrl train (as a config file) and bench_train (as
# arguments).
ml1m_reference_prepare() {
  local hsrl=$1 dir=$2 data=$3
  echo "== prepare (not timed): data prepare, sim train --epochs 2, sid build --levels 3 --vocab 64"
  "$hsrl" data prepare --format ml1m --input "$data" --out "$dir/ml1m.data.h5" --quiet >/dev/null
  "$hsrl" sim train --data "$dir/ml1m.data.h5" --split train --out "$dir/ml1m.sim-train.h5" --epochs 2 \
    --quiet >/dev/null
  "$hsrl" sid build --data "$dir/ml1m.data.h5" --sim "$dir/ml1m.sim-train.h5" --out "$dir/ml1m.sid.h5" \
    --levels 3 --vocab 64 --quiet >/dev/null
  sets=(
    "run.data=$dir/ml1m.data.h5" "run.sim_train=$dir/ml1m.sim-train.h5" "run.sid=$dir/ml1m.sid.h5"
    "data.format=ml1m" "data.input=$data" "data.slate_size=10" "data.history_len=50"
    "env.batch=32" "agent.kind=hsrl" "agent.d=32" "agent.layers=2" "agent.heads=4" "agent.ffn=128"
    "train.batch=64" "train.learning_starts=2000"
  )
}
