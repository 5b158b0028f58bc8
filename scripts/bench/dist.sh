#!/usr/bin/env bash
# Distributed-job benchmark (issue 6 acceptance, "Benchmark scripts/bench/dist.sh"; architecture.md
# "The distributed job"; docs/scaling.md is the written model that uses these figures).
#
# Part 1, the job at three sizes, dist.sync = false, from each run's metrics.tsv (columns found by
# their header names, never by position):
#   (a) one process      `hsrl train` alone: the single-process loop (act, env step, update)
#   (b) learner + shard + 1 actor   `mpirun -np 3`
#   (c) learner + shard + 2 actors  `mpirun -np 4`
# user-steps/s, updates/s, replay inserts/s and samples/s, lag min/mean/max (lag = update k minus
# the behaviour policy version of the sampled rows), the rate limiter's sample/insert waits, queue-full
# counts, and the actor's backlog (its user steps minus the shard's inserts, from the totals of the
# whole run: transitions made but not yet in the ring). Rates are time-weighted over the rows after
# the first (the first train.report_every = 100 updates, start-up and prefill are the warm-up). For
# (a), inserts/s = user-steps/s (every transition enters the ring) and samples/s = updates/s x
# train.batch; it has no lag (one policy). Workloads:
#   synth  the synthetic world (2,000 items, 1,000 users, env.model = world: its ground-truth click
#          model), SIDs of the item features (L 3, V 64), H 50, K 10: REPEATS runs of each case,
#          interleaved (a b c a b c ...), medians, and per-repeat ratios to (a) (same load);
#   ml1m   ML-1M (users 1-2999) at the reference shapes of scripts/bench/train.sh (learned simulator,
#          2 epochs; SIDs L 3, V 64), when ../shared/data/ml-1m-u2999 is present: one run per case.
# Both at d 32, 2 layers, 4 heads, FFN 128, B_env 32, B 64, learning_starts 2000, and the [dist]
# defaults (1 replay shard, samples_per_insert 2, broadcast_every 10, max_lag 32, block_rows 32).
# This machine has 2 cores: (b) runs 3 ranks (the shard mostly sleeps in its spin-yield-sleep wait),
# (c) runs 4, i.e. 3 busy ranks on 2 cores: OVERSUBSCRIBED, so (c) measures contention, not scaling.
# mpirun runs with --bind-to none and OMPI_MCA_rmaps_base_oversubscribe=1.
#
# Part 2, the per-rank costs docs/scaling.md needs, one core (taskset -c 0 when available), one
# OpenBLAS thread, for each workload, for a 1,000,000-item synthetic world with SIDs L 3, V 256
# (m1: the catalog of the scaling model; made here in about 30 s, not timed) and for the 2,000-item
# world with V 256 SIDs (s256: same V as m1, so s256 vs m1 shows what the catalog size N costs):
#   actor alone     bench_train's median CPU ms of act (32 users, EXPLORE) + env step: user-steps/s
#                   of one actor rank = B_env / (act + env);
#   learner alone   bench_train's median ms of sample batch + update (learn): updates/s;
#   wire bytes      bench_replay: bytes per transition of a zstd block of block_rows = 32 rows (what an
#                   actor sends) and of 256 rows, and the raw narrow layout (replay_block's frame);
#   broadcast       n_policy_params (the /actor tables of a checkpoint, each padded to
#                   NN_PARAMS_ALIGN = 16 floats as in nn_params) x 4 bytes;
#   replay rates    bench_replay's pack + zstd (actor), offer + decode + insert (shard) and uniform
#                   sampling rates, transitions/s on one core;
#   memory          peak RSS of the bench_train process (GNU time, when present);
#   batch           the learner at the 1M-item shapes with B 256 as well as B 64 (samples/s per core).
# The machine is shared with other engineers' builds and tests: absolute rates are noisy (the
# load average is printed per run); quote same-run ratios.
# usage: scripts/bench/dist.sh [BUILD_DIR] [UPDATES] [REPEATS]
#   BUILD_DIR  default build-bench (built with scripts/build.sh if hsrl, bench_train or bench_replay
#              is missing; RelWithDebInfo, i.e. -O2 -g, is build.sh's default)
#   UPDATES    timed updates per case after the 100-update warm-up (default 600)
#   REPEATS    runs of each synthetic case (default 3; medians); ML-1M runs once per case
# Exits 0 also when a run fails or hangs (each has a timeout): the table then says "failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build-bench}
updates=${2:-600}
repeats=${3:-3}
ml1m=$root/../shared/data/ml-1m-u2999
hsrl=$root/$dir/hsrl
bench_train=$root/$dir/scripts/bench/bench_train
bench_replay=$root/$dir/scripts/bench/bench_replay
[[ -x "$hsrl" && -x "$bench_train" && -x "$bench_replay" ]] || "$root/scripts/build.sh" "$dir"
for c in mpirun h5ls; do
  command -v "$c" >/dev/null 2>&1 || { echo "dist.sh: needs $c" >&2; exit 2; }
done
export OPENBLAS_NUM_THREADS=1 HSRL_PROGRESS_SECONDS=1000 OMPI_MCA_rmaps_base_oversubscribe=1
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then pin=(taskset -c 0); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
report=100
iters=$((updates + report))
run_timeout=$((120 + updates / 5)) # generous: (c) oversubscribed runs near 20 updates/s when loaded
load() { cut -d' ' -f1 /proc/loadavg; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "shared machine: other builds and tests run at the same time; absolute rates are noisy, compare same-run ratios"
echo "$(mpirun --version 2>/dev/null | head -1); mpirun --bind-to none, OMPI_MCA_rmaps_base_oversubscribe=1"

# ------------------------------------------------------------------ configs
# write_ini FILE section.key=value ...: a config with the shared benchmark keys then these.
write_ini() {
  local f=$1 kv sec rest
  shift
  {
    echo "[run]"
    echo "name = bench"
    echo "out_dir = $tmp/runs"
    for kv in "env.batch=32" "agent.kind=hsrl" "agent.d=32" "agent.layers=2" "agent.heads=4" \
      "agent.ffn=128" "train.batch=64" "train.learning_starts=2000" "train.iterations=$iters" \
      "train.report_every=$report" "train.checkpoint_every=0" "dist.sync=false" "dist.replay_shards=1" "$@"; do
      sec=${kv%%.*}
      rest=${kv#*.}
      echo "[$sec]"
      echo "${rest%%=*} = ${rest#*=}"
    done
  } >"$f"
}

echo
echo "== prepare (not timed)"
workloads=(synth)
"$hsrl" data synth --items 2000 --users 1000 --out "$tmp/synth.data.h5" --quiet >/dev/null
"$hsrl" sid build --data "$tmp/synth.data.h5" --vectors features --out "$tmp/synth.sid.h5" \
  --levels 3 --vocab 64 --quiet >/dev/null
synth_sets=("run.data=$tmp/synth.data.h5" "run.sid=$tmp/synth.sid.h5" "data.format=synth" "env.model=world"
  "data.slate_size=10" "data.history_len=50")
write_ini "$tmp/synth.ini" "${synth_sets[@]}"
echo "synth: hsrl data synth --items 2000 --users 1000; hsrl sid build --vectors features --levels 3 --vocab 64"
if [[ -f "$ml1m/ratings.dat" ]]; then
  workloads+=(ml1m)
  "$hsrl" data prepare --format ml1m --input "$ml1m" --out "$tmp/ml1m.data.h5" --quiet >/dev/null
  "$hsrl" sim train --data "$tmp/ml1m.data.h5" --split train --out "$tmp/ml1m.sim-train.h5" --epochs 2 \
    --quiet >/dev/null
  "$hsrl" sid build --data "$tmp/ml1m.data.h5" --sim "$tmp/ml1m.sim-train.h5" --out "$tmp/ml1m.sid.h5" \
    --levels 3 --vocab 64 --quiet >/dev/null
  ml1m_sets=("run.data=$tmp/ml1m.data.h5" "run.sim_train=$tmp/ml1m.sim-train.h5" "run.sid=$tmp/ml1m.sid.h5"
    "data.format=ml1m" "data.input=$ml1m" "data.slate_size=10" "data.history_len=50")
  write_ini "$tmp/ml1m.ini" "${ml1m_sets[@]}"
  echo "ml1m: hsrl data prepare --format ml1m; sim train --split train --epochs 2; sid build --levels 3 --vocab 64"
else
  echo "ml1m: no ML-1M ratings.dat in $ml1m (see docs/datasets.md): skipped"
fi
# the scaling model's catalog: 1,000,000 items, SIDs L 3, V 256 (per-rank costs only)
"$hsrl" data synth --items 1000000 --users 2000 --out "$tmp/m1.data.h5" --quiet >/dev/null
"$hsrl" sid build --data "$tmp/m1.data.h5" --vectors features --out "$tmp/m1.sid.h5" \
  --levels 3 --vocab 256 --quiet >/dev/null
m1_sets=("run.data=$tmp/m1.data.h5" "run.sid=$tmp/m1.sid.h5" "data.format=synth" "env.model=world"
  "data.slate_size=10" "data.history_len=50")
write_ini "$tmp/m1.ini" "${m1_sets[@]}"
echo "synth-1M: hsrl data synth --items 1000000 --users 2000; hsrl sid build --vectors features --levels 3 --vocab 256"
# the same V 256 SIDs on the 2,000-item world: separates the catalog size N from V in the per-rank costs
"$hsrl" sid build --data "$tmp/synth.data.h5" --vectors features --out "$tmp/s256.sid.h5" \
  --levels 3 --vocab 256 --quiet >/dev/null
s256_sets=("run.data=$tmp/synth.data.h5" "run.sid=$tmp/s256.sid.h5" "data.format=synth" "env.model=world"
  "data.slate_size=10" "data.history_len=50")
write_ini "$tmp/s256.ini" "${s256_sets[@]}"
echo "synth-V256: the 2,000-item world with hsrl sid build --vectors features --levels 3 --vocab 256"

# ------------------------------------------------------------------ part 1: the job
# summarize METRICS MODE(one|dist) BATCH -> "us ups ins smp lag_min lag_mean lag_max swait iwait qfull backlog"
summarize() {
  awk -F'\t' -v mode="$2" -v B="$3" '
    function col(name) {
      if (!(name in c)) { print "dist.sh: metrics.tsv has no column " name > "/dev/stderr"; bad = 1; exit 3 }
      return c[name]
    }
    NR == 1 {
      for (i = 1; i <= NF; i++) c[$i] = i
      cs = col("seconds"); cu = col("updates_per_s"); cus = col("user_steps_per_s")
      if (mode == "dist") {
        ci = col("replay_inserts_per_s"); cm = col("replay_samples_per_s")
        cl0 = col("lag_min"); cl1 = col("lag_mean"); cl2 = col("lag_max")
        cw0 = col("sample_waits"); cw1 = col("insert_waits"); cq = col("queue_full")
      }
      next
    }
    {
      dt = $cs - prev; prev = $cs
      if (mode == "dist") { made += $cus * dt; ins_all += $ci * dt }
      if (NR == 2) next # warm-up row
      T += dt; n++
      us += $cus * dt; ups += $cu * dt
      if (mode == "dist") {
        ins += $ci * dt; smp += $cm * dt
        if (n == 1 || $cl0 < lmin) lmin = $cl0
        if ($cl2 > lmax) lmax = $cl2
        lsum += $cl1; sw += $cw0; iw += $cw1; qf += $cq
      }
    }
    END {
      if (bad) exit 3
      if (n < 1 || T <= 0) { print "dist.sh: too few metrics rows" > "/dev/stderr"; exit 3 }
      if (mode == "one")
        printf "%.1f %.2f %.1f %.1f - - - - - - -\n", us / T, ups / T, us / T, ups / T * B
      else
        printf "%.1f %.2f %.1f %.1f %.0f %.1f %.0f %d %d %d %.0f\n", us / T, ups / T, ins / T, smp / T,
               lmin, lsum / n, lmax, sw, iw, qf, made - ins_all
    }' "$1"
}

# run_case WORKLOAD CASE(a|b|c) REP: runs it, appends its summary to $tmp/res.WORKLOAD.CASE
run_case() {
  local w=$1 k=$2 rep=$3 name="$1-$2-$3" np cmd ld rc=0 mode=dist
  case "$k" in
    a) np=1; mode=one; cmd=("$hsrl" train "$tmp/$w.ini" --quiet --set "run.name=$name") ;;
    b) np=3 ;;
    c) np=4 ;;
  esac
  if [[ $np -gt 1 ]]; then
    cmd=(mpirun -np "$np" --bind-to none -x OPENBLAS_NUM_THREADS -x HSRL_PROGRESS_SECONDS
      "$hsrl" train "$tmp/$w.ini" --quiet --set "run.name=$name")
  fi
  ld=$(load)
  timeout -k 10 "$run_timeout" "${cmd[@]}" >"$tmp/$name.log" 2>&1 || rc=$?
  local m="$tmp/runs/$name/metrics.tsv" line
  if [[ $rc -ne 0 || ! -f $m ]]; then
    [[ $rc -eq 124 ]] && rc="timeout after ${run_timeout} s (hang?)"
    echo "  $w ($k) run $rep: FAILED ($rc); log tail:"
    tail -5 "$tmp/$name.log" | sed 's/^/      /'
    return 0
  fi
  if ! line=$(summarize "$m" "$mode" 64); then
    echo "  $w ($k) run $rep: FAILED (metrics.tsv unreadable)"
    return 0
  fi
  echo "$line" >>"$tmp/res.$w.$k"
  echo "$rep $line" >>"$tmp/rep.$w.$k"
  local us ups ins smp l0 l1 l2 rest
  read -r us ups ins smp l0 l1 l2 rest <<<"$line"
  printf '  %-6s (%s) run %d: load %5s -> user-steps/s %s, updates/s %s, inserts/s %s, samples/s %s, lag %s/%s/%s\n' \
    "$w" "$k" "$rep" "$ld" "$us" "$ups" "$ins" "$smp" "$l0" "$l1" "$l2"
  local cka=("$tmp/runs/$name/ckpt/"step-*.h5)
  if [[ $k == a && ! -s "$tmp/$w.ckpt" && -f ${cka[0]} ]]; then echo "${cka[0]}" >"$tmp/$w.ckpt"; fi
  return 0
}

# medians FILE: the median of each column (non-numeric columns: "-")
medians() {
  awk '{ for (j = 1; j <= NF; j++) v[NR, j] = $j; nf = NF }
    END {
      for (j = 1; j <= nf; j++) {
        m = 0
        for (i = 1; i <= NR; i++) if (v[i, j] != "-") a[++m] = v[i, j] + 0
        for (i = 2; i <= m; i++) { x = a[i]; for (p = i - 1; p >= 1 && a[p] > x; p--) a[p + 1] = a[p]; a[p + 1] = x }
        out = m ? (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2) : "-"
        printf "%s%s", (j > 1 ? " " : ""), out
      }
      printf "\n"
    }' "$1"
}

echo
echo "== part 1: the job, $updates timed updates per run after $report warm-up updates, dist.sync = false"
echo "   (a) hsrl train alone; (b) mpirun -np 3: learner + shard + 1 actor (3 ranks on 2 cores, the shard"
echo "   mostly idle); (c) mpirun -np 4: learner + shard + 2 actors (OVERSUBSCRIBED: 3 busy ranks on 2 cores)"
for w in "${workloads[@]}"; do
  n=$repeats
  [[ $w == ml1m ]] && n=1
  for rep in $(seq 1 "$n"); do
    for k in a b c; do run_case "$w" "$k" "$rep"; done
  done
done

echo
echo "== part 1 table (synth: median of $repeats runs; ml1m: single run). lag = update - behaviour version"
echo "   of sampled rows; waits = rate-limiter sample/insert waits; backlog = actor user steps not yet"
echo "   inserted at the end (made by the actors but held in queues/transport)"
printf '%-6s %-28s %12s %9s %10s %10s %16s %13s %6s %8s\n' workload case user-steps/s updates/s \
  inserts/s samples/s "lag min/mean/max" "waits s/i" qfull backlog
label() {
  case "$1" in
    a) echo "(a) one process" ;;
    b) echo "(b) learner+shard+1 actor" ;;
    c) echo "(c) learner+shard+2 actors*" ;;
  esac
}
for w in "${workloads[@]}"; do
  for k in a b c; do
    if [[ ! -s "$tmp/res.$w.$k" ]]; then
      printf '%-6s %-28s %s\n' "$w" "$(label "$k")" "failed (see above)"
      continue
    fi
    read -r us ups ins smp l0 l1 l2 sw iw qf bl <<<"$(medians "$tmp/res.$w.$k")"
    printf '%-6s %-28s %12.0f %9.1f %10.0f %10.0f %16s %13s %6s %8s\n' "$w" "$(label "$k")" "$us" "$ups" \
      "$ins" "$smp" "$l0/$l1/$l2" "$sw/$iw" "$qf" "$bl"
  done
done
echo "   * (c) is oversubscribed on this 2-core machine"
echo "ratios to (a) in the same repeat (median over repeats): updates/s, user-steps/s"
for w in "${workloads[@]}"; do
  for k in b c; do
    [[ -s "$tmp/rep.$w.a" && -s "$tmp/rep.$w.$k" ]] || continue
    # rows "rep us ups ...": the ratio of (k) to (a) of the same repeat
    awk 'NR == FNR { us[$1] = $2; ups[$1] = $3; next }
      ($1 in ups) && ups[$1] > 0 && us[$1] > 0 { printf "%.3f %.3f\n", $3 / ups[$1], $2 / us[$1] }' \
      "$tmp/rep.$w.a" "$tmp/rep.$w.$k" >"$tmp/ratio.$w.$k"
    [[ -s "$tmp/ratio.$w.$k" ]] || continue
    read -r ru rs <<<"$(medians "$tmp/ratio.$w.$k")"
    printf '  %-6s %-28s updates/s x%.2f, user-steps/s x%.2f\n' "$w" "$(label "$k")" "$ru" "$rs"
  done
done

# ------------------------------------------------------------------ part 2: per-rank costs
# n_params CHECKPOINT: floats of the /actor tables, each padded to 16 floats (nn_params layout)
n_params() {
  h5ls -r "$1" | awk '$1 ~ /^\/actor\// && $2 == "Dataset" {
      s = $0; sub(/.*\{/, "", s); sub(/\}.*/, "", s)
      k = split(s, d, ", "); p = 1; for (i = 1; i <= k; i++) p *= d[i]
      tot += int((p + 15) / 16) * 16 }
    END { print tot + 0 }'
}
echo
echo "== part 2: per-rank costs, one core ($([[ ${#pin[@]} -gt 0 ]] && echo "taskset -c 0" || echo "not pinned")), one OpenBLAS thread"
# timed CMD...: runs it with its peak RSS (KB) written to $tmp/rss when GNU time is there
timed() {
  echo 0 >"$tmp/rss"
  if [[ -x /usr/bin/time ]]; then /usr/bin/time -f %M -o "$tmp/rss" "$@"; else "$@"; fi
}
# bt_ms FILE: "act env sample update" median ms from bench_train's phase table (median = 3rd from last)
bt_ms() {
  awk '/^  act /{a = $(NF-2)} /^  env step/{e = $(NF-2)} /^  sample batch/{s = $(NF-2)}
    /^  update \(learn\)/{u = $(NF-2)} END {print a + 0, e + 0, s + 0, u + 0}' "$1"
}
printf '%-9s %-12s %13s %13s %11s %10s %11s %12s %11s %8s\n' workload "N, V" "actor u-st/s" "learner upd/s" \
  "act+env ms" "update ms" "B/tr zstd32" "B/tr zstd256" "B/broadcast" "RSS MB"
for w in "${workloads[@]}" s256 m1; do
  case "$w" in
    synth) sets=("${synth_sets[@]}") ;;
    s256) sets=("${s256_sets[@]}") ;;
    ml1m) sets=("${ml1m_sets[@]}") ;;
    m1) sets=("${m1_sets[@]}") ;;
  esac
  common=("${sets[@]}" "agent.kind=hsrl" "env.batch=32" "train.batch=64")
  timed "${pin[@]}" "$bench_train" --iters 150 "${common[@]}" "train.learning_starts=2000" >"$tmp/bt.$w" 2>&1 || true
  rss=$(($(tail -1 "$tmp/rss" | tr -cd '0-9' || true) / 1024))
  "${pin[@]}" "$bench_replay" --steps 200 "${common[@]}" >"$tmp/br.$w" 2>&1 || true
  read -r act env smp upd <<<"$(bt_ms "$tmp/bt.$w")"
  # "shapes: N 2000 items, ..., L 3, V 64,64,64, critic ..."
  nv=$(awk '/^shapes:/ { for (i = 1; i < NF; i++) { if ($i == "N") n = $(i + 1); if ($i == "V") v = $(i + 1) }
    sub(/,.*/, "", v); print n ", " v }' "$tmp/bt.$w")
  read -r z32 z256 raw pack ins samp <<<"$(awk '/block zstd, +32 rows/{z = $5} /block zstd, +256 rows/{y = $5}
    /block raw narrow/{r = $5} /pack \+ zstd/{p = $5} /offer \+ decode/{o = $6} /sample \(uniform/{q = $4}
    END {print z + 0, y + 0, r + 0, p + 0, o + 0, q + 0}' "$tmp/br.$w")"
  ck=""
  [[ -f "$tmp/$w.ckpt" ]] && ck=$(cat "$tmp/$w.ckpt")
  if [[ -z $ck ]]; then # s256, m1 (or a failed (a) run): a one-update run just for the checkpoint's tables
    "$hsrl" train "$tmp/$w.ini" --quiet --set "run.name=$w-params" --set train.iterations=1 \
      --set train.learning_starts=64 >"$tmp/$w-params.log" 2>&1 || true
    cks=("$tmp/runs/$w-params/ckpt/"step-*.h5)
    if [[ -f ${cks[0]} ]]; then ck=${cks[0]}; fi
  fi
  np=0
  [[ -n $ck ]] && np=$(n_params "$ck")
  if awk -v a="$act" -v u="$upd" 'BEGIN {exit !(a > 0 && u > 0)}'; then
    printf '%-9s %-12s %13.0f %13.1f %11.3f %10.3f %11.1f %12.1f %11s %8s\n' "$w" "$nv" \
      "$(awk -v a="$act" -v e="$env" 'BEGIN {print 32 * 1000 / (a + e)}')" \
      "$(awk -v s="$smp" -v u="$upd" 'BEGIN {print 1000 / (s + u)}')" \
      "$(awk -v a="$act" -v e="$env" 'BEGIN {print a + e}')" "$upd" "$z32" "$z256" "$((np * 4))" "$rss"
  else
    printf '%-9s %-12s %s\n' "$w" "$nv" "bench_train failed: $(tail -1 "$tmp/bt.$w")"
  fi
  echo "          act $act + env $env ms per 32 users; sample $smp + update $upd ms per batch of 64;" \
    "n_policy_params $np"
  echo "          replay: raw narrow $raw B/transition; pack + zstd $pack/s (actor), offer + decode +" \
    "insert $ins/s (shard), sample $samp/s (transitions, one core)"
done
# The learner's throughput against its batch at the scaling model's shapes (does a bigger batch
# buy samples/s on one core?)
timed "${pin[@]}" "$bench_train" --iters 20 "${m1_sets[@]}" "agent.kind=hsrl" "env.batch=32" "train.batch=256" \
  "train.learning_starts=2000" >"$tmp/bt.m1-256" 2>&1 || true
read -r _ _ smp256 upd256 <<<"$(bt_ms "$tmp/bt.m1-256")"
read -r _ _ smp64 upd64 <<<"$(bt_ms "$tmp/bt.m1")"
if awk -v u="$upd256" -v v="$upd64" 'BEGIN {exit !(u > 0 && v > 0)}'; then
  awk -v s="$smp64" -v u="$upd64" -v s2="$smp256" -v u2="$upd256" 'BEGIN {
    printf "learner at m1 shapes: B 64: %.1f updates/s = %.0f samples/s; B 256 (20 updates): %.1f updates/s = %.0f samples/s (x%.2f)\n",
      1000 / (s + u), 64000 / (s + u), 1000 / (s2 + u2), 256000 / (s2 + u2), (64000 / (s + u)) / (256000 / (s2 + u2)) }'
  echo "  (the second ratio: samples/s at B 64 over B 256; near 1: a bigger batch costs proportionally more on one core)"
else
  echo "learner at m1 shapes, B 256: bench_train failed: $(tail -1 "$tmp/bt.m1-256")"
fi
echo "actor u-st/s = 32 / (act + env): one actor rank alone; learner upd/s = 1 / (sample + update): the"
echo "learner alone (B 64); B/tr = zstd block bytes / rows (replay_block, as scripts/bench/replay.sh);"
echo "B/broadcast = n_policy_params x 4 (one float32 parameter vector per broadcast, per receiving actor);"
echo "RSS = peak resident memory of the bench_train process (world + SIDs + agent + learner; an actor"
echo "rank holds the same world and SID tables)"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
