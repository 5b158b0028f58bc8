#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole pipeline on the embedded synthetic default:
#   hsrl run configs/demo.ini     the synthetic world, its user-response simulator, Semantic IDs,
#                                 HSRL and the SL baseline trained in the world's ground truth,
#                                 then one table: random, popular, greedy-by-simulator, SL, HSRL
#                                 and the world's myopic oracle (runs/demo/hsrl/results.tsv)
#   hsrl plot runs/demo/hsrl      training curves and the table as PNGs (runs/demo/hsrl/plots/)
# Arguments are passed to `hsrl run` (e.g. --set train.iterations=5000, --force all). Running it
# again reruns only the stages whose config keys or inputs changed (each line says why). A few
# minutes on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/build.sh build
export OPENBLAS_NUM_THREADS=1
hsrl=build/hsrl
$hsrl --version
$hsrl run configs/demo.ini "$@"
echo
$hsrl plot runs/demo/hsrl
echo "demo: the table is in runs/demo/hsrl/results.tsv (.json: every seed), the plots in runs/demo/hsrl/plots/."
