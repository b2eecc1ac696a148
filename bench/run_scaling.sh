#!/usr/bin/env bash
# The MLP scaling benchmark: minigrad (bench/scaling) and PyTorch (bench/torch_scaling.py) on the same
# shapes in the same run, alternating, --rounds times; then bench/scaling_report.py prints the table
# (medians over rounds) and writes the SVG plot.
# Usage:
#   bench/run_scaling.sh [--device cpu|cuda] [--rounds N] [--shapes "BxIxHxC ..."] [--out DIR]
# CPU: each shape with 1 thread on both sides, then all cores on both sides.
# CUDA: each shape eager and with a CUDA graph on both sides (PyTorch: torch.cuda.graphs).
# Builds the "cpu" preset (or "cuda" for --device cuda); Debian's python3 with python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
device=cpu rounds=3 out=docs shapes=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--device cpu|cuda] [--rounds N] [--shapes \"BxIxHxC ...\"] [--out DIR]" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-/usr/bin/python3}
if [ "$device" = cpu ]; then
  preset=cpu
  : "${shapes:=120x4x10x3 64x16x16x10 256x64x128x10 1024x128x128x10 1024x256x512x10 4096x256x256x10 1024x784x1024x10}"
  settings="1 $(nproc)"
else
  preset=cuda
  : "${shapes:=120x4x10x3 1797x64x64x10 1024x784x1024x10 8192x1024x1024x10 8192x1024x4096x10 65536x1024x1024x10 65536x4096x4096x10}"
  settings="eager graph"
fi
cmake --preset "$preset" >/dev/null
cmake --build "build/$preset" --target scaling -j"$(nproc)" >/dev/null
results="build/$preset/scaling-$device.txt"
: >"$results"
for round in $(seq 1 "$rounds"); do
  for shape in $shapes; do
    for setting in $settings; do
      if [ "$device" = cpu ]; then
        mine=(--threads "$setting") theirs=(--threads "$setting")
      else
        mine=() theirs=(--mode "$setting")
        [ "$setting" = graph ] && mine=(--graph)
      fi
      "build/$preset/bench/scaling" --device "$device" --shape "$shape" "${mine[@]}" | tee -a "$results"
      # PyTorch's products run in Debian's OpenBLAS, whose own threads torch.set_num_threads does
      # not hold: without the variable its "1 thread" run took 161% of a core (2026-12-07).
      blas_threads=$([ "$device" = cpu ] && echo "$setting" || nproc)
      OPENBLAS_NUM_THREADS=$blas_threads "$python" bench/torch_scaling.py --device "$device" --shape "$shape" "${theirs[@]}" | tee -a "$results"
    done
  done
done
"$python" bench/scaling_report.py "$results" --svg "$out/scaling-$device.svg"
