#!/usr/bin/env bash
# The convolution benchmark: one training step of three CNNs (bench/conv_bench.cpp says which) in
# minigrad and in PyTorch (bench/torch_conv.py, Debian's python3-torch), one thread each and then
# all cores, interleaved in one run. Prints each median, the ratio minigrad / PyTorch, and
# minigrad's storage allocations per step after the first. Usage: bench/run_conv.sh [rounds] (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
build=build/cpu
scripts/install-deps.sh python3-torch
cmake --preset cpu >/dev/null
cmake --build "$build" --target conv_bench -j"$(nproc)" >/dev/null
python=/usr/bin/python3  # Debian's, where python3-torch is
median() { sed -E 's/.*median ([0-9.]+) us.*/\1/'; }
mid() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
cores=$(nproc)
printf '| model | threads | minigrad us/step | PyTorch us/step | minigrad / PyTorch | allocations per step |\n| --- | --- | --- | --- | --- | --- |\n' > /tmp/run_conv_table.$$
for threads in 1 "$cores"; do
  for model in lenet blocks digits; do
    mine=() theirs=() allocs=
    for ((r = 1; r <= rounds; ++r)); do
      m=$(OPENBLAS_NUM_THREADS=1 "$build/bench/conv_bench" --model "$model" --threads "$threads" --steps 50)
      t=$(OMP_NUM_THREADS="$threads" "$python" bench/torch_conv.py --model "$model" --threads "$threads" --steps 50)
      echo "$m"
      echo "$t"
      mine+=("$(median <<<"$m")")
      theirs+=("$(median <<<"$t")")
      allocs=$(sed -E 's/.*storage allocations per step after the first 3: ([0-9.]+).*/\1/' <<<"$m")
    done
    a=$(mid "${mine[@]}") b=$(mid "${theirs[@]}")
    awk -v model="$model" -v t="$threads" -v a="$a" -v b="$b" -v al="$allocs" \
      'BEGIN{printf "| %s | %s | %.1f | %.1f | %.2fx | %s |\n", model, t, a, b, a/b, al}' >> /tmp/run_conv_table.$$
  done
done
echo "medians of $rounds rounds:"
cat /tmp/run_conv_table.$$
rm -f /tmp/run_conv_table.$$
