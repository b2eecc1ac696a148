#!/usr/bin/env bash
# Everything GPU-side in one call, for a lent H100/H200 (see docs/benchmarks.md): build with nvcc;
# the GPU tests, also under compute-sanitizer memcheck, racecheck and synccheck; the Iris example on
# CUDA with and without the graph; the Iris benchmark in every mode (eager, graph, compiled, compiled
# 100 steps per launch, on one block and on a cooperative grid) and the digits benchmark beside
# PyTorch on the same GPU;
# mg::dist's NCCL transport as one rank (where Open MPI is installed);
# the hand-fused reference limits (../shared/reference, copied into .gpudeps/reference by
# scripts/gpu-deps.sh); cuBLAS against GemmElement; the scaling benchmark; then the table.
#
# It always finishes and prints its whole table: no step is skipped because another failed (a step
# whose program did not build says so), every step has a time limit, and the whole run has a time
# budget (GPU_CHECK_BUDGET seconds, default 330, so that a rerun fits a 15-minute device budget):
# steps are ordered by importance and those the budget no longer covers are reported as skipped.
# Logs go to $OUT (the device tool's folder) or out/gpu-check. Runs here too: without a GPU the GPU
# steps report failures or "skipped", and the table still prints.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/gpu-check}
mkdir -p "$out"
start=$(date +%s)
budget=${GPU_CHECK_BUDGET:-330}
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"

# The tools every step needs, and what is missing, said first.
missing=()
command -v nvcc >/dev/null || missing+=("nvcc")
command -v compute-sanitizer >/dev/null || missing+=("compute-sanitizer (memcheck, racecheck, synccheck are skipped)")
python3 -c 'import torch' 2>/dev/null || missing+=("python3 with torch (the PyTorch runs fail)")
python3 -c 'import sklearn' 2>/dev/null || missing+=("python3 with sklearn")
command -v nvidia-smi >/dev/null || missing+=("nvidia-smi (no GPU driver?)")
[ -d .gpudeps/reference ] || missing+=(".gpudeps/reference (run scripts/gpu-deps.sh here and carry .gpudeps: the reference limits are skipped)")
{
  echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)"
  if [ ${#missing[@]} -eq 0 ]; then echo "tools: all present"; else printf 'missing: %s\n' "${missing[@]}"; fi
} | tee "$out/summary.txt"

prefix_path=""
# unpacked unless every package is installed (dpkg-query fails when any one is missing)
if [ -d .gpudeps ] && ! dpkg-query -W libfmt-dev doctest-dev libcli11-dev nlohmann-json3-dev >/dev/null 2>&1; then
  root=$PWD/.gpudeps/root
  for deb in .gpudeps/*.deb; do [ -e "$deb" ] && dpkg -x "$deb" "$root"; done
  prefix_path="$root/usr"
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi

declare -A result
order=()
step() {  # step NAME LIMIT_S LOG COMMAND...: ok / FAILED(rc) / TIMED OUT / skipped, within the budget
  local name=$1 limit=$2 log=$3; shift 3
  order+=("$name")
  local left=$((start + budget - $(date +%s)))
  if [ "$left" -lt 15 ]; then
    result[$name]="skipped: the ${budget} s budget is spent"
  else
    [ "$limit" -gt "$left" ] && limit=$left
    timeout "$limit" "$@" >"$out/$log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then result[$name]=ok; elif [ $rc -eq 77 ]; then result[$name]=skipped
    elif [ $rc -eq 124 ]; then result[$name]="TIMED OUT after ${limit} s (see $log)"
    else result[$name]="FAILED (rc $rc, see $log)"; fi
  fi
  echo "== $name: ${result[$name]} ($(($(date +%s) - start)) s so far)"
}
skip() {  # skip NAME WHY
  order+=("$1")
  result[$1]="skipped: $2"
  echo "== $1: ${result[$1]}"
}
built() { [ -x "$1" ]; }
bin=build/gpu
# the GPU suite without the cases a sanitizer would take minutes over (the 20000-epoch curve, the
# [large] shapes) or that fail on purpose (the 4 TiB allocation)
sanitized_cases='*20000*,*large*,*out of device memory*'

step configure 90 configure.log cmake -S . -B $bin -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_CUDA=ON -DMINIGRAD_MPI=OFF \
  -DCMAKE_PREFIX_PATH="$prefix_path"
# -k: a target that fails to compile does not stop the others (each later step says "not built")
step build 240 build.log cmake --build $bin -j"$(nproc)" --target minigrad_gpu_tests iris iris_bench digits_bench device_info gemm_bench scaling -- -k

if built $bin/examples/device_info; then step device_info 30 device_info.log $bin/examples/device_info; cat "$out/device_info.log"
else skip device_info "not built"; fi
if built $bin/tests/minigrad_gpu_tests; then step gpu_tests 240 gpu_tests.log $bin/tests/minigrad_gpu_tests
else skip gpu_tests "not built"; fi

# Iris: the example and the benchmark beside PyTorch (the eager PyTorch runs once: about 20 s each)
if built $bin/examples/iris; then
  step iris_cuda 60 iris_cuda.log $bin/examples/iris --device cuda --print-every 5000 --out "$out/iris"
  step iris_cuda_nograph 60 iris_cuda_nograph.log $bin/examples/iris --device cuda --no-graph --print-every 0 --out "$out/iris-nograph"
else skip iris_cuda "not built"; skip iris_cuda_nograph "not built"; fi
if built $bin/bench/iris_bench; then
  step bench_minigrad 60 bench_minigrad.log $bin/bench/iris_bench --device cuda --repeats 3
  step bench_minigrad_graph 60 bench_minigrad_graph.log $bin/bench/iris_bench --device cuda --graph --repeats 3
  # the compiled step: one launch per step, then 100 steps per launch (the log says if it fell back)
  step bench_minigrad_compiled 60 bench_minigrad_compiled.log $bin/bench/iris_bench --device cuda --mode compiled --repeats 3
  step bench_minigrad_compiled_k100 60 bench_minigrad_compiled_k100.log $bin/bench/iris_bench --device cuda --mode compiled \
    --steps-per-launch 100 --repeats 3
  # the same program on a cooperative grid (every block of the GPU), which larger steps take
  step bench_minigrad_compiled_grid_k100 60 bench_minigrad_compiled_grid_k100.log $bin/bench/iris_bench --device cuda --mode compiled \
    --steps-per-launch 100 --block-max-work 0 --repeats 3
  step bench_minigrad_cpu 60 bench_minigrad_cpu.log $bin/bench/iris_bench --device cpu --repeats 3
  step bench_minigrad_cpu_graph 60 bench_minigrad_cpu_graph.log $bin/bench/iris_bench --device cpu --graph --repeats 3
else for n in bench_minigrad bench_minigrad_graph bench_minigrad_compiled bench_minigrad_compiled_k100 \
  bench_minigrad_compiled_grid_k100 bench_minigrad_cpu \
  bench_minigrad_cpu_graph; do skip $n "not built"; done; fi
step bench_torch_item 60 bench_torch_item.log python3 bench/torch_iris.py --device cuda --mode item --repeats 1
step bench_torch_log 60 bench_torch_log.log python3 bench/torch_iris.py --device cuda --mode log --repeats 1
step bench_torch_graph 60 bench_torch_graph.log python3 bench/torch_iris.py --device cuda --mode graph --repeats 3
step bench_torch_cpu 60 bench_torch_cpu.log python3 bench/torch_iris.py --device cpu --mode item --repeats 1 --threads 1

# The hand-fused limits, in the same call (they are yardsticks: built from the copies, never from the repo)
ref=.gpudeps/reference
if [ -f $ref/limit_gpu_fused.cu ]; then
  step limit_gpu_fused 90 limit_gpu_fused.log bash -c "nvcc -O3 -arch=sm_90 $ref/limit_gpu_fused.cu -o /tmp/limit_gpu_fused && /tmp/limit_gpu_fused"
  step limit_gpu_persistent 90 limit_gpu_persistent.log bash -c "nvcc -O3 -arch=sm_90 $ref/limit_gpu_persistent.cu -o /tmp/limit_gpu_persistent && /tmp/limit_gpu_persistent"
  step limit_cpu 60 limit_cpu.log bash -c "g++ -O3 -march=native -ffast-math -std=c++20 $ref/limit_cpu.cpp -o /tmp/limit_cpu && /tmp/limit_cpu"
else for n in limit_gpu_fused limit_gpu_persistent limit_cpu; do skip $n "no $ref (scripts/gpu-deps.sh)"; done; fi

if built $bin/bench/digits_bench; then
  step digits_cuda 60 digits_cuda.log $bin/bench/digits_bench --device cuda --epochs 50
else skip digits_cuda "not built"; fi

# Sanitizers on the GPU suite
if command -v compute-sanitizer >/dev/null && built $bin/tests/minigrad_gpu_tests; then
  for tool in memcheck racecheck synccheck; do
    step $tool 120 $tool.log compute-sanitizer --tool $tool --error-exitcode 3 $bin/tests/minigrad_gpu_tests -tce="$sanitized_cases"
  done
else for tool in memcheck racecheck synccheck; do skip $tool "no compute-sanitizer or no GPU suite"; done; fi

# mg::dist's NCCL transport on one GPU, as one rank (its own build: the main one is without MPI).
if command -v mpirun >/dev/null; then
  step dist_nccl 150 dist_nccl.log bash -c "cmake -S . -B build/gpu-dist -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_CUDA=ON -DMINIGRAD_MPI=ON \
    -DCMAKE_PREFIX_PATH='$prefix_path' >/dev/null && cmake --build build/gpu-dist -j$(nproc) --target dist_nccl >/dev/null && \
    mpirun --allow-run-as-root -np 1 build/gpu-dist/tests/dist_nccl"
else skip dist_nccl "no mpirun (Open MPI) on this machine"; fi

if built $bin/bench/gemm_bench; then step gemm_bench 90 gemm_bench.log $bin/bench/gemm_bench --repeats 5
else skip gemm_bench "not built"; fi

# The scaling benchmark on CUDA beside PyTorch (bench/scaling.cpp, bench/torch_scaling.py), eager
# and graph on both sides, one log per system and mode, each line one shape.
scaling_shapes=${SCALING_SHAPES:-"120x4x10x3 1797x64x64x10 1024x784x1024x10 8192x1024x4096x10"}
scaling_all() {  # scaling_all COMMAND...: runs it for every shape, fails if any run fails
  local rc=0
  for shape in $scaling_shapes; do "$@" --shape "$shape" --repeats 3 || rc=$?; done
  return $rc
}
export -f scaling_all
export scaling_shapes
if built $bin/bench/scaling; then
  step scaling_minigrad 90 scaling_minigrad.log bash -c 'scaling_all "$@"' _ $bin/bench/scaling --device cuda
  step scaling_minigrad_graph 90 scaling_minigrad_graph.log bash -c 'scaling_all "$@"' _ $bin/bench/scaling --device cuda --graph
else skip scaling_minigrad "not built"; skip scaling_minigrad_graph "not built"; fi
step scaling_torch 90 scaling_torch.log bash -c 'scaling_all "$@"' _ python3 bench/torch_scaling.py --device cuda --mode eager
step scaling_torch_graph 90 scaling_torch_graph.log bash -c 'scaling_all "$@"' _ python3 bench/torch_scaling.py --device cuda --mode graph

{
  echo
  echo "whole run: $(($(date +%s) - start)) s (budget ${budget} s)"
  echo
  echo "| step | result | numbers |"
  echo "| --- | --- | --- |"
  for name in "${order[@]}"; do
    numbers=""
    log="$out/$name.log"
    case $name in
      gpu_tests) numbers="$(grep -E "test cases:" "$log" 2>/dev/null | head -1); $(grep -oE "(Iris mode .*: )?CPU/CUDA max relative difference.*" "$log" 2>/dev/null | tr '\n' ';')" ;;
      memcheck|racecheck|synccheck) numbers=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" 2>/dev/null | tail -1) ;;
      iris_cuda*) numbers=$(grep -E "us/epoch|Final loss|Test accuracy|Host syncs" "$log" 2>/dev/null | tr '\n' ' ') ;;
      bench_*|digits_cuda) numbers=$(grep -E "median" "$log" 2>/dev/null | tail -1) ;;
      dist_nccl) numbers=$(grep -E "agree|skipped|expected" "$log" 2>/dev/null | tail -1) ;;
      limit_*) numbers=$(grep -v '^$' "$log" 2>/dev/null | tail -4 | tr '\n' ';' | cut -c1-400) ;;
      gemm_bench) numbers=$(grep -E "measured crossover" "$log" 2>/dev/null | tail -1) ;;
      scaling_*) numbers=$(grep -v '^$' "$log" 2>/dev/null | tr '\n' ';' | cut -c1-400) ;;
    esac
    echo "| $name | ${result[$name]} | ${numbers} |"
  done
} | tee -a "$out/summary.txt"
# One archive of every log, for a device call's $OUT (which returns at most 8 files).
tar -czf "$out/logs.tar.gz" -C "$out" --exclude logs.tar.gz . 2>/dev/null || true
