#!/usr/bin/env bash
# How much cheaper arithmetic could buy (issue 5's speed goal; docs/speed.md): the committed tree
# (HEAD) built twice, as it is ("exact") and with scripts/bench/arith_bound.patch ("cheap"), then
# bench_train at the reference's shapes (the same as scripts/bench/train.sh's step 2) on ML-1M,
# the two builds alternating for ROUNDS rounds, one core, one OpenBLAS thread.
# The patch is a bound, not a proposal: it makes every operation that the bit-for-bit results pin
# down as cheap as it could be made, without caring whether the results stay right:
#   * -ffp-contract=fast everywhere (the compiler fuses a*b+c into FMA: attention, layer norm,
#     Adam, every elementwise pass);
#   * the attention's exponential cut to range reduction + a cubic (about 1e-3 relative error,
#     no underflow clamp) instead of a 1-ulp polynomial;
#   * dropout's Philox-4x32 replaced by one multiply and one xor-shift per word (not random).
# The product's own arithmetic stays what it is; the figure says how far that road goes.
# usage: scripts/bench/arith_bound.sh [ROUNDS]   (default 6; about 1 minute per round)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/bench/ml1m_reference.sh
source "$root/scripts/bench/ml1m_reference.sh"
rounds=${1:-6}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "arith_bound.sh: ROUNDS '$rounds' is not a positive integer" >&2; exit 2; }
cpu=${HSRL_BENCH_CPU:-0}
data=$root/../shared/data/ml-1m-u2999
if [[ ! -f "$data/ratings.dat" ]]; then
  echo "arith_bound.sh: no ML-1M ratings.dat in $data (see docs/datasets.md); skipped" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== build HEAD ($(git -C "$root" rev-parse --short HEAD)) twice: exact, and cheap (arith_bound.patch)"
for v in exact cheap; do
  mkdir "$tmp/$v"
  git -C "$root" archive HEAD | tar -x -C "$tmp/$v"
done
if ! patch -s -d "$tmp/cheap" -p1 <"$root/scripts/bench/arith_bound.patch"; then
  echo "arith_bound.sh: scripts/bench/arith_bound.patch no longer applies to HEAD; refresh it" >&2
  exit 2
fi
for v in exact cheap; do
  cmake -S "$tmp/$v" -B "$tmp/$v/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$tmp/$v/build" -j "$(nproc)" --target hsrl bench_train >/dev/null
done
hsrl=$tmp/exact/build/hsrl
ml1m_reference_prepare "$hsrl" "$tmp" "$data"
pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c "$cpu" true 2>/dev/null; then pin=(taskset -c "$cpu"); fi
export OPENBLAS_NUM_THREADS=1
# bench_train's iterations/s from the CPU-time median iteration (act + env step + update)
its() {
  "${pin[@]}" "$tmp/$1/build/scripts/bench/bench_train" --iters 600 "${sets[@]}" |
    awk '/iterations\/s from the CPU-time median iteration/ {print $NF}'
}
echo "== $rounds rounds, bench_train --iters 600 each, the order alternating (iterations/s)"
echo "round  exact  cheap  cheap/exact"
for r in $(seq 1 "$rounds"); do
  if ((r % 2)); then e=$(its exact); c=$(its cheap); else c=$(its cheap); e=$(its exact); fi
  printf "%5d  %5s  %5s  %11.3f\n" "$r" "$e" "$c" "$(awk -v c="$c" -v e="$e" 'BEGIN {print c / e}')" |
    tee -a "$tmp/rounds.txt"
done
awk '{print $4}' "$tmp/rounds.txt" | sort -g |
  awk '{a[NR] = $1} END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "median cheap/exact over %d rounds: %.3f (the most cheaper arithmetic could add)\n", NR, m}'
