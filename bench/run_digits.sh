#!/usr/bin/env bash
# The digits benchmark: the examples/digits training epoch in minigrad (bench/digits_bench.cpp) and
# in PyTorch (bench/torch_digits.py, Debian's python3-torch), one thread each, interleaved in one
# run; prints each median and the ratios. Usage: bench/run_digits.sh [rounds] (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
build=build/cpu
scripts/install-deps.sh python3-torch
cmake --preset cpu >/dev/null
cmake --build "$build" --target digits_bench -j"$(nproc)" >/dev/null
python=/usr/bin/python3  # Debian's, where python3-torch is
median() { sed -E 's/.*median ([0-9.]+) us.*/\1/'; }
mine=() loader=() index=()
for ((r = 1; r <= rounds; ++r)); do
  m=$(OPENBLAS_NUM_THREADS=1 "$build/bench/digits_bench" --epochs 200 --threads 1)
  t=$(OMP_NUM_THREADS=1 "$python" bench/torch_digits.py --epochs 100 --threads 1)
  echo "$m"
  echo "$t"
  mine+=("$(median <<<"$m")")
  loader+=("$(grep ' loader ' <<<"$t" | median)")
  index+=("$(grep ' index ' <<<"$t" | median)")
done
mid() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
m=$(mid "${mine[@]}") l=$(mid "${loader[@]}") i=$(mid "${index[@]}")
echo "medians of the $rounds rounds: minigrad $m us/epoch, PyTorch DataLoader $l, PyTorch index $i"
awk -v m="$m" -v l="$l" -v i="$i" 'BEGIN{printf "ratio: PyTorch DataLoader / minigrad = %.1fx, PyTorch index / minigrad = %.1fx\n", l/m, i/m}'
