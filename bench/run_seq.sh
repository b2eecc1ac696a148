#!/usr/bin/env bash
# The sequence-model benchmark: one training step of examples/charlm's GPT (batch 64, context 16:
# forward, backward, clipping, AdamW), causal scaled_dot_product_attention forward and backward at
# B=8, H=4, T=256, D=32, and one LSTM layer over N=32, T=64, 128 -> 256 forward and backward, in
# minigrad (bench/seq_bench.cpp) and in PyTorch (bench/torch_seq.py, Debian's
# python3-torch 1.13, whose attention is the math form), one thread each and then all cores,
# interleaved in one run: each median and the ratio minigrad / PyTorch. Then peak resident memory
# of one process per T from 256 to 4096 (B=1, H=4), which for minigrad grows linearly in T (no
# T x T matrix is held) and for PyTorch's math form quadratically.
# Usage: bench/run_seq.sh [rounds] (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
build=build/cpu
scripts/install-deps.sh python3-torch
cmake --preset cpu >/dev/null
cmake --build "$build" --target seq_bench -j"$(nproc)" >/dev/null
python=/usr/bin/python3  # Debian's, where python3-torch is
median() { sed -E 's/.*median ([0-9.]+) us.*/\1/'; }
peak() { sed -E 's/.*peak rss ([0-9.]+) MB.*/\1/'; }
mid() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
cores=$(nproc)
table=$(mktemp)
printf '| row | threads | minigrad us | PyTorch us | minigrad / PyTorch |\n| --- | --- | --- | --- | --- |\n' > "$table"
for threads in 1 "$cores"; do
  for what in gpt sdpa lstm; do
    mine=() theirs=()
    for ((r = 1; r <= rounds; ++r)); do
      m=$(OPENBLAS_NUM_THREADS=1 "$build/bench/seq_bench" --what "$what" --threads "$threads")
      t=$(OMP_NUM_THREADS="$threads" "$python" bench/torch_seq.py --what "$what" --threads "$threads")
      echo "$m"
      echo "$t"
      mine+=("$(median <<<"$m")")
      theirs+=("$(median <<<"$t")")
    done
    a=$(mid "${mine[@]}") b=$(mid "${theirs[@]}")
    row="sdpa B=8 H=4 T=256 D=32 causal, fwd+bwd"
    [ "$what" = lstm ] && row="one LSTM layer N=32 T=64 128->256, fwd+bwd"
    [ "$what" = gpt ] && row="charlm GPT step, batch 64 (fwd, bwd, clip, AdamW)"
    awk -v row="$row" -v t="$threads" -v a="$a" -v b="$b" 'BEGIN{printf "| %s | %s | %.1f | %.1f | %.2fx |\n", row, t, a, b, a/b}' >> "$table"
  done
done
echo "medians of $rounds rounds:"
cat "$table"
printf '\n| T | minigrad peak MB | PyTorch peak MB |\n| --- | --- | --- |\n'
for T in 256 512 1024 2048 4096; do
  m=$("$build/bench/seq_bench" --batch 1 --T "$T" --steps 2 --threads "$cores")
  t=$("$python" bench/torch_seq.py --batch 1 --T "$T" --steps 2 --threads "$cores")
  printf '| %s | %s | %s |\n' "$T" "$(peak <<<"$m")" "$(peak <<<"$t")"
done
rm -f "$table"
