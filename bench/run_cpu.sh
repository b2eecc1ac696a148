#!/usr/bin/env bash
# The CPU benchmark: minigrad's generic path, eager and as a captured StepGraph (the Cpu tape), and
# the PyTorch original (Debian's python3-torch, one thread) in the same run, then the ratios, the
# hand-fused reference limit where ../shared/reference is beside the checkout, and the Iris
# example's peak memory.
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
mine_graph=$("$build/bench/iris_bench" --device cpu --graph --repeats 5)
echo "$mine_graph"
theirs=$(OMP_NUM_THREADS=1 "$python" bench/torch_iris.py --device cpu --mode item --repeats 3)
echo "$theirs"
theirs_log=$(OMP_NUM_THREADS=1 "$python" bench/torch_iris.py --device cpu --mode log --repeats 3)
echo "$theirs_log"
m=$(sed -E 's/.*median ([0-9.]+) us.*/\1/' <<<"$mine")
t=$(sed -E 's/.*median ([0-9.]+) us.*/\1/' <<<"$theirs")
g=$(sed -E 's/.*median ([0-9.]+) us.*/\1/' <<<"$mine_graph")
echo "ratio: PyTorch (item every epoch) / minigrad = $(awk -v t="$t" -v m="$m" 'BEGIN{printf "%.1fx", t/m}'), / minigrad graph = $(awk -v t="$t" -v m="$g" 'BEGIN{printf "%.1fx", t/m}')"
reference=../shared/reference/limit_cpu.cpp
if [ -f "$reference" ]; then  # the yardstick, built as its README says (never copied into the repo)
  g++ -O3 -march=native -ffast-math -std=c++20 "$reference" -o /tmp/minigrad_limit_cpu
  limit=$(/tmp/minigrad_limit_cpu | grep SoA | tail -1)
  echo "$limit"
  l=$(sed -E 's/.* ([0-9.]+) us\/epoch.*/\1/' <<<"$limit")
  echo "distance to the limit: minigrad graph / SoA limit = $(awk -v g="$g" -v l="$l" 'BEGIN{printf "%.1fx", g/l}'), eager / limit = $(awk -v m="$m" -v l="$l" 'BEGIN{printf "%.1fx", m/l}')"
  # The numbers above are a minute apart, and this machine's speed moves by tens of percent from
  # minute to minute. So also in pairs, each measured within a second: one graph run (its median of
  # 3) and one run of the limit (its median of 3 SoA lines), five times; the median of the ratios.
  ratios=()
  for round in 1 2 3 4 5; do
    pg=$("$build/bench/iris_bench" --device cpu --graph --repeats 3 | sed -E 's/.*median ([0-9.]+) us.*/\1/')
    pl=$(/tmp/minigrad_limit_cpu | grep SoA | sed -E 's/.* ([0-9.]+) us\/epoch.*/\1/' | sort -g | sed -n 2p)
    r=$(awk -v g="$pg" -v l="$pl" 'BEGIN{printf "%.2f", g/l}')
    echo "pair $round: graph $pg us/epoch, limit $pl us/epoch, ratio ${r}x"
    ratios+=("$r")
  done
  echo "distance to the limit, paired: median graph / limit = $(printf '%s\n' "${ratios[@]}" | sort -g | sed -n 3p)x"
fi
"$build/examples/iris" --print-every 0 --out "$build/bench-out" | grep -E "Peak resident|us/epoch"
