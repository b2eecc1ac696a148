#!/usr/bin/env bash
# Data-parallel scaling of the Cpu backend: dist_bench on 1 and 2 ranks for the digits MLP and a
# wide MLP, one thread per rank (MINIGRAD_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1) so that 2 ranks
# on 2 cores do not fight over cores. docs/distributed.md holds the output.
# Usage: bench/run_dist.sh [build dir, default build/release] [timed epochs, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release} epochs=${2:-20}
cmake --build "$build" --target dist_bench -j1 >/dev/null
export MINIGRAD_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for model in digits wide; do
  for ranks in 1 2; do
    mpirun --oversubscribe --allow-run-as-root -np "$ranks" "$build/bench/dist_bench" --model "$model" --epochs "$epochs"
  done
done
