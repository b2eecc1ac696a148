#!/usr/bin/env bash
# The CPU benchmark: minigrad's generic path and the PyTorch original (Debian's python3-torch, one
# thread) in the same run, then the ratio and the Iris example's peak memory.
# Usage: bench/run_cpu.sh   (builds the "cpu" preset: g++ only, as a CPU-only user gets)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/cpu
scripts/install-deps.sh python3-torch python3-sklearn
cmake --preset cpu >/dev/null
cmake --build "$build" --target iris_bench iris -j"$(nproc)" >/dev/null
python=/usr/bin/python3  # Debian's, where python3-torch is
mine=$("$build/bench/iris_bench" --device cpu --repeats 5)
echo "$mine"
theirs=$(OMP_NUM_THREADS=1 "$python" bench/torch_iris.py --device cpu --mode item --repeats 3)
echo "$theirs"
theirs_log=$(OMP_NUM_THREADS=1 "$python" bench/torch_iris.py --device cpu --mode log --repeats 3)
echo "$theirs_log"
m=$(sed -E 's/.*median ([0-9.]+) us.*/\1/' <<<"$mine")
t=$(sed -E 's/.*median ([0-9.]+) us.*/\1/' <<<"$theirs")
echo "ratio: PyTorch (item every epoch) / minigrad = $(awk -v t="$t" -v m="$m" 'BEGIN{printf "%.1fx", t/m}')"
"$build/examples/iris" --print-every 0 --out "$build/bench-out" | grep -E "Peak resident|us/epoch"
