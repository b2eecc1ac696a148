#!/usr/bin/env bash
# The digits CNN recipe (examples/digits_cnn) in minigrad and in PyTorch (bench/torch_examples.py
# cnn, Debian's python3-torch) on the same split (seed 42), each trained with seeds 1..N: prints
# every test accuracy, each framework's mean, and the mean training epoch time (test evaluation
# included, as the example prints it). PyTorch runs with its default threads (torch.get_num_threads()).
# Usage: bench/run_digits_cnn.sh [seeds] (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-5}
build=build/cpu
scripts/install-deps.sh python3-torch
cmake --preset cpu >/dev/null
cmake --build "$build" --target digits_cnn -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/examples/digits_cnn" --print-every 0 --epochs 1 --out "$work/split-run" --write-split "$work/split.csv" >/dev/null
accuracies=() times=()
for ((s = 1; s <= seeds; ++s)); do
  out=$("$build/examples/digits_cnn" --seed "$s" --split-seed 42 --print-every 0 --out "$work/seed$s")
  a=$(sed -nE 's/^Test accuracy: ([0-9.]+) .*/\1/p' <<<"$out")
  t=$(sed -nE 's/^Training time: .* \(([0-9.]+) s\/epoch.*/\1/p' <<<"$out")
  echo "digits_cnn, minigrad, seed $s: test accuracy $a, $(awk -v t="$t" 'BEGIN{printf "%.1f", t * 1000}') ms/epoch"
  accuracies+=("$a") times+=("$t")
done
printf '%s\n' "${accuracies[@]}" | awk -v n="$seeds" '{s += $1} END {printf "digits_cnn, minigrad: mean test accuracy %.4f over %d seeds, ", s / n, n}'
printf '%s\n' "${times[@]}" | awk -v n="$seeds" '{s += $1} END {printf "mean %.1f ms/epoch\n", s / n * 1000}'
/usr/bin/python3 bench/torch_examples.py cnn "$work/split.csv" $(seq 1 "$seeds")
