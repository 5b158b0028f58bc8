#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on the embedded synthetic default.
# Until the pipeline (`hsrl run`) exists, it runs what exists: it makes the synthetic world,
# evaluates the simple policies and the world's myopic oracle in it, and runs the nn benchmark.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/build.sh build
export OPENBLAS_NUM_THREADS=1
build/hsrl --version
mkdir -p runs/demo
build/hsrl data synth --items 2000 --users 2000 --seed 7 --out runs/demo/synth.data.h5
build/hsrl eval --data runs/demo/synth.data.h5 --world --policies random,popular,oracle \
  --episodes 1000 --seeds 3 --json runs/demo/eval.json
echo "demo: agents and the training pipeline (hsrl run) are not built yet; numerical-core benchmark:"
scripts/bench/nn.sh build
