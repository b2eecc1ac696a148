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
# num LINE PATTERN: the number PATTERN's group captures in LINE; stops the script, showing LINE,
# when there is none (a crashed or changed benchmark must not print a ratio of nothing).
num() {
  local v
  v=$(sed -nE "s/$2/\1/p" <<<"$1" | head -1)
  if [[ ! $v =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "bench/run_cpu.sh: no number in: ${1:-(empty output)}" >&2
    return 1
  fi
  echo "$v"
}
median=".*median ([0-9.]+) us.*"
per_epoch=".* ([0-9.]+) us\/epoch.*"
mine=$("$build/bench/iris_bench" --device cpu --repeats 5)
echo "$mine"
mine_graph=$("$build/bench/iris_bench" --device cpu --graph --repeats 5)
echo "$mine_graph"
theirs=$(OMP_NUM_THREADS=1 "$python" bench/torch_iris.py --device cpu --mode item --repeats 3)
echo "$theirs"
theirs_log=$(OMP_NUM_THREADS=1 "$python" bench/torch_iris.py --device cpu --mode log --repeats 3)
echo "$theirs_log"
m=$(num "$mine" "$median")
t=$(num "$theirs" "$median")
g=$(num "$mine_graph" "$median")
echo "ratio: PyTorch (item every epoch) / minigrad = $(awk -v t="$t" -v m="$m" 'BEGIN{printf "%.1fx", t/m}'), / minigrad graph = $(awk -v t="$t" -v m="$g" 'BEGIN{printf "%.1fx", t/m}')"
reference=../shared/reference/limit_cpu.cpp
if [ -f "$reference" ]; then  # the yardstick, built as its README says (never copied into the repo)
  g++ -O3 -march=native -ffast-math -std=c++20 "$reference" -o /tmp/minigrad_limit_cpu
  # soa_lines: one run of the limit, its SoA lines (three); stops the script, showing what the
  # limit printed, when it fails or prints fewer
  soa_lines() {
    local out lines
    out=$(/tmp/minigrad_limit_cpu 2>&1) || { echo "bench/run_cpu.sh: the limit failed: $out" >&2; return 1; }
    lines=$(grep SoA <<<"$out" || true)
    if [ "$(grep -c . <<<"$lines")" -lt 3 ]; then
      echo "bench/run_cpu.sh: fewer than 3 SoA lines from the limit: $out" >&2
      return 1
    fi
    echo "$lines"
  }
  limit=$(soa_lines | tail -1)
  echo "$limit"
  l=$(num "$limit" "$per_epoch")
  echo "distance to the limit: minigrad graph / SoA limit = $(awk -v g="$g" -v l="$l" 'BEGIN{printf "%.1fx", g/l}'), eager / limit = $(awk -v m="$m" -v l="$l" 'BEGIN{printf "%.1fx", m/l}')"
  # The numbers above are a minute apart, and this machine's speed moves by tens of percent from
  # minute to minute. So also in pairs, each measured within a second: one graph run (its median of
  # 3) and one run of the limit (its median of 3 SoA lines), five times; the median of the ratios.
  ratios=()
  for round in 1 2 3 4 5; do
    pg=$(num "$("$build/bench/iris_bench" --device cpu --graph --repeats 3)" "$median")
    soa=$(soa_lines)
    pl=$(num "$(sed -nE "s/$per_epoch/\1/p" <<<"$soa" | sort -g | sed -n 2p)" "^([0-9.]+)$")
    r=$(awk -v g="$pg" -v l="$pl" 'BEGIN{printf "%.2f", g/l}')
    echo "pair $round: graph $pg us/epoch, limit $pl us/epoch, ratio ${r}x"
    ratios+=("$r")
  done
  echo "distance to the limit, paired: median graph / limit = $(printf '%s\n' "${ratios[@]}" | sort -g | sed -n 3p)x"
fi
"$build/examples/iris" --print-every 0 --out "$build/bench-out" | grep -E "Peak resident|us/epoch"
