#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on the embedded synthetic default.
# Until the pipeline (`hsrl run`) exists, it runs what exists: the effective demo config and the
# numerical-core benchmark.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/build.sh build
export OPENBLAS_NUM_THREADS=1
build/hsrl --version
build/hsrl config show configs/demo.ini
echo "demo: the training pipeline (hsrl run) is not built yet; running the numerical-core benchmark"
scripts/bench/nn.sh build
