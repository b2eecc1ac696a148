#!/usr/bin/env bash
# Everything GPU-side in one call, for a lent H100/H200 (see docs/benchmarks.md):
#   build with nvcc; the GPU tests, also under compute-sanitizer memcheck; the Iris example on CUDA;
#   the GPU benchmark beside PyTorch on the same GPU; then a short table. Logs go to $OUT (the
#   device tool's folder) or out/gpu-check. Needs .gpudeps/ from scripts/gpu-deps.sh where fmt,
#   doctest and CLI11 are not installed. Runs here too: without a GPU the GPU steps say "skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/gpu-check}
mkdir -p "$out"
prefix_path=""
if [ -d .gpudeps ] && ! dpkg-query -W libfmt-dev >/dev/null 2>&1; then
  root=$PWD/.gpudeps/root
  for deb in .gpudeps/*.deb; do dpkg -x "$deb" "$root"; done
  prefix_path="$root/usr"
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
declare -A result
step() {  # step NAME LOG COMMAND...: runs, records ok/FAILED(rc)/skipped
  local name=$1 log=$2; shift 2
  "$@" >"$out/$log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then result[$name]=ok; elif [ $rc -eq 77 ]; then result[$name]=skipped; else result[$name]="FAILED (rc $rc, see $log)"; fi
  echo "== $name: ${result[$name]}"
}
gpu=$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
echo "GPU: ${gpu:-none}" | tee "$out/summary.txt"

step configure configure.log cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_CUDA=ON -DCMAKE_PREFIX_PATH="$prefix_path"
step build build.log cmake --build build/gpu -j"$(nproc)" --target minigrad_gpu_tests minigrad_tests iris iris_bench device_info
step device_info device_info.log build/gpu/examples/device_info
cat "$out/device_info.log"
step cpu_tests cpu_tests.log build/gpu/tests/minigrad_tests
step gpu_tests gpu_tests.log build/gpu/tests/minigrad_gpu_tests
if command -v compute-sanitizer >/dev/null && [ "${result[gpu_tests]}" = ok ]; then
  # The 20000-epoch curve comparison is left out: under memcheck it would take minutes.
  step memcheck memcheck.log compute-sanitizer --tool memcheck --error-exitcode 3 build/gpu/tests/minigrad_gpu_tests -tce='*20000*'
else
  result[memcheck]=skipped
fi
if [ "${result[gpu_tests]}" = ok ]; then
  step iris_cuda iris_cuda.log build/gpu/examples/iris --device cuda --print-every 5000 --out "$out/iris"
  step iris_cuda_nograph iris_cuda_nograph.log build/gpu/examples/iris --device cuda --no-graph --print-every 0 --out "$out/iris-nograph"
  step bench_minigrad bench_minigrad.log build/gpu/bench/iris_bench --device cuda --repeats 3
  step bench_minigrad_graph bench_minigrad_graph.log build/gpu/bench/iris_bench --device cuda --graph --repeats 3
  step bench_minigrad_cpu bench_minigrad_cpu.log build/gpu/bench/iris_bench --device cpu --repeats 3
  for mode in item log graph; do
    step "bench_torch_$mode" "bench_torch_$mode.log" python3 bench/torch_iris.py --device cuda --mode "$mode" --repeats 3
  done
  step bench_torch_cpu bench_torch_cpu.log python3 bench/torch_iris.py --device cpu --mode item --repeats 1 --threads 1
fi

{
  echo
  echo "| step | result | numbers |"
  echo "| --- | --- | --- |"
  for name in configure build device_info cpu_tests gpu_tests memcheck iris_cuda iris_cuda_nograph bench_minigrad bench_minigrad_graph \
              bench_minigrad_cpu bench_torch_item bench_torch_log bench_torch_graph bench_torch_cpu; do
    [ -n "${result[$name]:-}" ] || continue
    numbers=""
    log="$out/$name.log"
    case $name in
      gpu_tests|cpu_tests) numbers=$(grep -E "test cases:|skipped:" "$log" 2>/dev/null | head -1) ;;
      memcheck) numbers=$(grep -E "ERROR SUMMARY" "$log" 2>/dev/null | tail -1) ;;
      iris_cuda*) numbers=$(grep -E "us/epoch|Final loss|Test accuracy|Host syncs" "$log" 2>/dev/null | tr '\n' ' ') ;;
      bench_*) numbers=$(grep -E "median" "$log" 2>/dev/null | tail -1) ;;
    esac
    echo "| $name | ${result[$name]} | ${numbers} |"
  done
} | tee -a "$out/summary.txt"
