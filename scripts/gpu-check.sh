#!/usr/bin/env bash
# Everything GPU-side in one device call, on a fresh H100/H200 (CUDA Toolkit, CMake, Python with
# PyTorch, nothing from Debian: scripts/gpu-deps.sh brings fmt, doctest, CLI11 and nlohmann-json
# as .deb files in .gpudeps/, which the call must carry). See docs/benchmarks.md, "GPU".
#
# In order, each stage built and run before the next build starts, so that a slow build costs the
# stages after it and never the results before it:
#   1. the GPU suite (and device_info): every test case in a process of its own with its own limit
#      (scripts/doctest-each.sh), so a hang costs one case; CPU/CUDA parity read from its cases
#   2. the benchmarks: Iris in every mode (eager, graph, compiled, compiled k=100, on a grid, CPU)
#      beside PyTorch on the same GPU, digits, cuBLAS against GemmElement, scaling, three CNNs
#      beside PyTorch (conv_bench, torch_conv.py), and the
#      hand-fused reference limits (.gpudeps/reference)
#   3. compute-sanitizer memcheck, racecheck and synccheck over the suite (no build)
#   4. the examples: Iris on CUDA with and without the graph
#   5. mg::dist's NCCL transport as one rank, its own build (where Open MPI is installed)
#
# It checks first every tool and file it needs and says what is missing, one line each. Every step
# has its own time limit; the whole run has a budget (GPU_CHECK_BUDGET s, 450 by default: give the
# device call a timeout_s of at least 480), and a step the budget no longer covers is reported as not
# reached. The table always lists every row: ok, FAILED, TIMED OUT, skipped (and why) or not
# reached. It is rewritten after every step, and once more on exit or on SIGTERM/SIGINT.
# Logs are line-buffered and go to a work folder (GPU_CHECK_WORK, else a new one under /tmp); $OUT
# (the device tool's folder, else out/gpu-check) gets summary.txt and logs.tar.gz, nothing else.
# tests/gpu_check_selftest.sh runs it here with fake tools and checks all of that.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=${OUT:-$repo/out/gpu-check}
work=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
bin=${GPU_CHECK_BUILD:-$repo/build/gpu}
budget=${GPU_CHECK_BUDGET:-450}
reserve=${GPU_CHECK_RESERVE:-10}      # seconds kept for the table and the archive
min_step=${GPU_CHECK_MIN_STEP:-15}    # no step starts with less than this left
case_limit=${GPU_CHECK_CASE_LIMIT:-60}
cuda_home=${CUDA_HOME:-/usr/local/cuda}
logs=$work/logs
mkdir -p "$out" "$logs" || exit 2
rm -f "$out/summary.txt" "$out/logs.tar.gz"
start=$(date +%s)
deadline=$((start + budget - reserve))
[ -d "$cuda_home/bin" ] && export PATH="$cuda_home/bin:$PATH"
export PYTHONUNBUFFERED=1
jobs=$(nproc 2>/dev/null || echo 4)

# Every row of the table, in the order the steps run. A row no step set is a bug of this script,
# and the table says so.
rows=(tools deps configure
  build_suite device_info gpu_tests parity
  build_bench bench_minigrad bench_minigrad_graph bench_minigrad_compiled bench_minigrad_compiled_k100
  bench_minigrad_compiled_grid_k100 bench_minigrad_cpu bench_minigrad_cpu_graph
  bench_torch_item bench_torch_log bench_torch_graph bench_torch_cpu
  digits_cuda gemm_bench scaling_minigrad scaling_minigrad_graph scaling_torch scaling_torch_graph
  conv_minigrad conv_torch seq_minigrad seq_torch
  limit_gpu_fused limit_gpu_persistent limit_cpu
  memcheck racecheck synccheck
  build_examples iris_cuda iris_cuda_nograph
  dist_nccl)
declare -A result numbers
stopped=""
finished=""

# ---- the tools and files, each missing one said on a line of its own ---------------------------
header=()
missing() { header+=("missing: $1"); }
have() { command -v "$1" >/dev/null 2>&1; }
for tool in timeout stdbuf tar gzip date mktemp; do have $tool || missing "$tool (coreutils): the script itself needs it"; done
have cmake || missing "cmake: nothing is built"
have nvcc || missing "nvcc (not in PATH nor $cuda_home/bin): nothing is built"
have c++ || have g++ || missing "a host C++ compiler (c++ or g++): nothing is built"
generator="Unix Makefiles" keep_going="-k"
if ! have make; then
  if have ninja; then generator=Ninja keep_going="-k0"; else missing "make or ninja: nothing is built"; fi
fi
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
[ -n "$gpu" ] || missing "nvidia-smi or a GPU it can see: every GPU step fails"
have compute-sanitizer || missing "compute-sanitizer: memcheck, racecheck and synccheck are skipped"
have mpirun || missing "mpirun (Open MPI): the NCCL step is skipped"
if ! have python3; then missing "python3: the PyTorch steps fail"
else
  python3 -c 'import torch' 2>/dev/null || missing "python3 module torch: the PyTorch steps fail"
  python3 -c 'import sklearn' 2>/dev/null || missing "python3 module sklearn: bench/torch_iris.py fails"
fi
for f in data/iris.csv data/digits.csv bench/torch_iris.py bench/torch_scaling.py bench/torch_conv.py bench/torch_models.py scripts/doctest-each.sh; do
  [ -f "$f" ] || missing "$f: its steps fail"
done
deb_packages="libfmt-dev libfmt9 doctest-dev libcli11-dev nlohmann-json3-dev"
system_deps=""
for h in fmt/format.h doctest/doctest.h CLI/CLI.hpp nlohmann/json.hpp; do [ -f /usr/include/$h ] || system_deps=no; done
if [ -n "$system_deps" ]; then
  for p in $deb_packages; do compgen -G ".gpudeps/${p}_*.deb" >/dev/null || missing ".gpudeps/${p}_*.deb (scripts/gpu-deps.sh here, then carry .gpudeps): configure fails"; done
  have dpkg-deb || { have ar && have tar; } || missing "dpkg-deb, or ar and tar: the .deb files cannot be unpacked"
fi
for f in limit_gpu_fused.cu limit_gpu_persistent.cu limit_cpu.cpp; do
  [ -f .gpudeps/reference/$f ] || missing ".gpudeps/reference/$f (scripts/gpu-deps.sh): its limit step is skipped"
done

# ---- the table -------------------------------------------------------------------------------
row_text() {
  local row=$1
  if [ -n "${result[$row]:-}" ]; then echo "${result[$row]}"
  elif [ -n "$stopped" ]; then echo "not reached: gpu-check.sh was stopped ($stopped)"
  elif [ -n "$finished" ]; then echo "NOT SET (a bug of gpu-check.sh: no step wrote this row)"
  else echo "pending (the run had not reached it when this was written)"; fi
}
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
write_summary() {
  {
    echo "gpu-check at $commit: GPU ${gpu:-none found}"
    if [ ${#header[@]} -eq 0 ]; then echo "tools and files: all present"; else printf '%s\n' "${header[@]}"; fi
    echo "run: $(($(date +%s) - start)) s of a ${budget} s budget${finished:+, finished}${stopped:+, stopped ($stopped)}"
    echo
    echo "| step | result | numbers |"
    echo "| --- | --- | --- |"
    local row
    for row in "${rows[@]}"; do echo "| $row | $(row_text "$row") | ${numbers[$row]:-} |"; done
  } >"$work/summary.txt"
  cp "$work/summary.txt" "$logs/summary.txt"
  tar -czf "$work/logs.tar.gz" -C "$work" logs $(cd "$work" && ls -d iris iris-nograph 2>/dev/null) 2>/dev/null
  cp "$work/summary.txt" "$out/summary.txt"
  cp "$work/logs.tar.gz" "$out/logs.tar.gz"
}
current="" current_row="" current_start=0
finish() {
  [ -n "$finished" ] && return
  if [ -n "$current" ]; then  # stopped during a step: it ends too, and its row says so
    kill -TERM "$current" 2>/dev/null && wait "$current" 2>/dev/null
    result[$current_row]="STOPPED (${stopped:-gpu-check.sh ended}) after $(($(date +%s) - current_start)) s (logs/$current_row.log)"
  fi
  finished=yes
  write_summary
  echo
  cat "$work/summary.txt"
}
trap finish EXIT
trap 'stopped=SIGTERM; exit 143' TERM
trap 'stopped=SIGINT; exit 130' INT

set_row() {  # set_row ROW TEXT (the summary and the archive are rewritten after each step that ran)
  result[$1]=$2
  echo "== $1: $2 ($(($(date +%s) - start)) s so far)"
}
# step ROW LIMIT_S COMMAND...: the command, line-buffered into logs/ROW.log, within its limit and
# the budget. Sets the row; returns the command's status (1 where it did not run).
step() {
  local row=$1 limit=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  if [ "$left" -lt "$min_step" ]; then
    set_row "$row" "not reached: the ${budget} s budget is spent"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0
  t0=$(date +%s)
  timeout -k 5 "$limit" stdbuf -oL -eL "$@" >"$logs/$row.log" 2>&1 </dev/null &
  current=$! current_row=$row current_start=$t0
  wait "$current"
  local rc=$?
  current="" current_row=""
  local took=$(($(date +%s) - t0))
  row_numbers "$row"
  case $rc in
    0) set_row "$row" "ok ($took s)" ;;
    77) set_row "$row" "skipped: $(grep -v '^[[:space:]]*$' "$logs/$row.log" | tail -1 | cut -c1-200)" ;;
    124 | 137) set_row "$row" "TIMED OUT after $limit s (logs/$row.log)" ;;
    *) set_row "$row" "FAILED (rc $rc, $took s, logs/$row.log)" ;;
  esac
  write_summary
  return $rc
}
skip() { set_row "$1" "skipped: $2"; }
# run_with ROW LIMIT_S NEEDS COMMAND...: a step that needs NEEDS, a program a build made (skipped
# where it did not); run ROW LIMIT_S PROGRAM ARGS...: that program itself
run_with() {
  local row=$1 limit=$2 needs=$3
  shift 3
  if [ -x "$needs" ]; then step "$row" "$limit" "$@"
  elif [ $((deadline - $(date +%s))) -lt "$min_step" ]; then set_row "$row" "not reached: the ${budget} s budget is spent"
  else skip "$row" "${needs#"$bin"/} was not built (see ${built_by[$needs]:-its build step})"; fi
}
run() { run_with "$1" "$2" "$3" "${@:3}"; }
declare -A built_by
build() {  # build ROW LIMIT_S TARGET...: one stage's targets, every core, going on past a failed one
  local row=$1 limit=$2
  shift 2
  if [ ! -f "$bin/CMakeCache.txt" ]; then skip "$row" "not configured (see configure)"; return 1; fi
  step "$row" "$limit" cmake --build "$bin" -j"$jobs" --target "$@" -- $keep_going
}
numbers_from() {  # numbers_from ROW EXTENDED-REGEX [LAST-N]: the matching lines of the row's log, joined
  numbers[$1]=$(grep -E "$2" "$logs/$1.log" 2>/dev/null | tail -"${3:-1}" | tr '\n' ';' | sed 's/;$//; s/|/\//g' | cut -c1-400)
}
row_numbers() {  # the numbers of a row, from its log
  case $1 in
    gpu_tests) numbers_from $1 "^cases:|^case (FAILED|TIMED OUT|not reached)" 6 ;;
    memcheck | racecheck | synccheck) numbers_from $1 "ERROR SUMMARY|RACECHECK SUMMARY|^case|test cases:" 2 ;;
    iris_cuda*) numbers_from $1 "us/epoch|Final loss|Test accuracy|Host syncs" 4 ;;
    bench_* | digits_cuda) numbers_from $1 "median" ;;
    dist_nccl) numbers_from $1 "agree|skipped|expected" ;;
    limit_*) numbers_from $1 "." 4 ;;
    gemm_bench) numbers_from $1 "measured crossover" ;;
    scaling_*) numbers_from $1 "." 8 ;;
    conv_*) numbers_from $1 "median" 3 ;;
    device_info) numbers_from $1 "." 3 ;;
  esac
}

if [ ${#header[@]} -eq 0 ]; then set_row tools "ok: all present"
else set_row tools "${#header[@]} missing (listed above the table)"; fi
printf '%s\n' "${header[@]}"

# The Debian packages, unpacked into the work folder where they are not installed.
prefix_path=""
if [ -z "$system_deps" ]; then skip deps "fmt, doctest, CLI11 and nlohmann-json are installed"
elif ! compgen -G ".gpudeps/*.deb" >/dev/null; then set_row deps "FAILED: no .gpudeps/*.deb (scripts/gpu-deps.sh here, then carry .gpudeps)"
else
  unpack() {
    local deb
    for deb in .gpudeps/*.deb; do
      if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$deb" "$1" || return
      else (cd "$(mktemp -d)" && ar x "$OLDPWD/$deb" && tar -xf data.tar.* -C "$1") || return; fi
    done
  }
  export -f unpack
  mkdir -p "$work/deps"
  step deps 60 bash -c 'unpack "$1"' _ "$work/deps"
  prefix_path=$work/deps/usr
  export LD_LIBRARY_PATH="$prefix_path/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi

step configure 90 cmake -S . -B "$bin" -G "$generator" -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_CUDA=ON -DMINIGRAD_MPI=OFF \
  -DCMAKE_PREFIX_PATH="$prefix_path"

# ---- 1. the GPU suite ------------------------------------------------------------------------
suite=$bin/tests/minigrad_gpu_tests
built_by[$suite]=build_suite built_by[$bin/examples/device_info]=build_suite
build build_suite 240 minigrad_gpu_tests device_info
run device_info 30 "$bin/examples/device_info"
suite_limit=150
cases_deadline=$(($(date +%s) + suite_limit - 5))
[ $cases_deadline -gt $((deadline - 5)) ] && cases_deadline=$((deadline - 5))
run_with gpu_tests $suite_limit "$suite" bash scripts/doctest-each.sh $cases_deadline "$case_limit" "$suite"
# CPU/CUDA parity: the suite's two Iris curve cases, and the differences they print
parity_cases='^case .*: (Iris: CPU and CUDA loss curves agree|Iris in every mode)'
if grep -qE "$parity_cases" "$logs/gpu_tests.log" 2>/dev/null; then
  # not grep -q: under pipefail its early exit would SIGPIPE the first grep and read as "ok"
  if grep -E "$parity_cases" "$logs/gpu_tests.log" | grep -v '^case ok' >/dev/null; then r="FAILED (see gpu_tests)"; else r=ok; fi
  numbers[parity]=$(grep -oE "(Iris mode .*: )?CPU/CUDA max relative difference.*" "$logs/gpu_tests.log" | tr '\n' ';' | sed 's/;$//' | cut -c1-400)
  set_row parity "$r"
else
  set_row parity "skipped: its cases did not run (see gpu_tests: ${result[gpu_tests]%% (*})"
fi

# ---- 2. the benchmarks -----------------------------------------------------------------------
for p in iris_bench digits_bench gemm_bench scaling conv_bench seq_bench; do built_by[$bin/bench/$p]=build_bench; done
build build_bench 240 iris_bench digits_bench gemm_bench scaling conv_bench seq_bench
# Iris beside PyTorch on the same GPU (PyTorch's eager runs once: about 20 s each)
iris_bench=$bin/bench/iris_bench
run bench_minigrad 60 "$iris_bench" --device cuda --repeats 3
run bench_minigrad_graph 60 "$iris_bench" --device cuda --graph --repeats 3
# the compiled step: one launch per step, then 100 steps per launch (the log says if it fell back)
run bench_minigrad_compiled 60 "$iris_bench" --device cuda --mode compiled --repeats 3
run bench_minigrad_compiled_k100 60 "$iris_bench" --device cuda --mode compiled --steps-per-launch 100 --repeats 3
# the same program on a cooperative grid (every block of the GPU), which larger steps take
run bench_minigrad_compiled_grid_k100 60 "$iris_bench" --device cuda --mode compiled --steps-per-launch 100 --block-max-work 0 --repeats 3
run bench_minigrad_cpu 60 "$iris_bench" --device cpu --repeats 3
run bench_minigrad_cpu_graph 60 "$iris_bench" --device cpu --graph --repeats 3
step bench_torch_item 60 python3 bench/torch_iris.py --device cuda --mode item --repeats 1
step bench_torch_log 60 python3 bench/torch_iris.py --device cuda --mode log --repeats 1
step bench_torch_graph 60 python3 bench/torch_iris.py --device cuda --mode graph --repeats 3
step bench_torch_cpu 60 python3 bench/torch_iris.py --device cpu --mode item --repeats 1 --threads 1
run digits_cuda 60 "$bin/bench/digits_bench" --device cuda --epochs 50
run gemm_bench 90 "$bin/bench/gemm_bench" --repeats 5
# The scaling benchmark on CUDA beside PyTorch (bench/scaling.cpp, bench/torch_scaling.py), eager
# and graph on both sides, each line of a log one shape.
scaling_shapes=${SCALING_SHAPES:-"120x4x10x3 1797x64x64x10 1024x784x1024x10 8192x1024x4096x10"}
scaling_all() {  # scaling_all COMMAND...: runs it for every shape, fails if any run fails
  local rc=0 shape
  for shape in $scaling_shapes; do "$@" --shape "$shape" --repeats 3 || rc=$?; done
  return $rc
}
export -f scaling_all
export scaling_shapes
run_with scaling_minigrad 90 "$bin/bench/scaling" bash -c 'scaling_all "$@"' _ "$bin/bench/scaling" --device cuda
run_with scaling_minigrad_graph 90 "$bin/bench/scaling" bash -c 'scaling_all "$@"' _ "$bin/bench/scaling" --device cuda --graph
step scaling_torch 90 bash -c 'scaling_all "$@"' _ python3 bench/torch_scaling.py --device cuda --mode eager
step scaling_torch_graph 90 bash -c 'scaling_all "$@"' _ python3 bench/torch_scaling.py --device cuda --mode graph
# One training step of three CNNs (bench/conv_bench.cpp, bench/torch_conv.py: LeNet-5, two
# 64-channel conv + BatchNorm blocks, the digits CNN), each line of a log one model.
conv_all() {  # conv_all COMMAND...: runs it for every model, fails if any run fails
  local rc=0 model
  for model in lenet blocks digits; do "$@" --model "$model" --steps 30 || rc=$?; done
  return $rc
}
export -f conv_all
run_with conv_minigrad 60 "$bin/bench/conv_bench" bash -c 'conv_all "$@"' _ "$bin/bench/conv_bench" --device cuda
step conv_torch 60 bash -c 'conv_all "$@"' _ python3 bench/torch_conv.py --device cuda
# Causal attention forward and backward (B=8 H=4 T=256 D=32), one LSTM layer (N=32 T=64
# 128->256) and one training step of examples/charlm's GPT (batch 64), eager,
# bench/seq_bench.cpp beside bench/torch_seq.py (PyTorch 2's fused attention there)
seq_all() {  # seq_all COMMAND...: both rows, fails if either run fails
  local rc=0 what
  for what in sdpa lstm gpt; do "$@" --what "$what" --steps 20 || rc=$?; done
  return $rc
}
export -f seq_all
run_with seq_minigrad 60 "$bin/bench/seq_bench" bash -c 'seq_all "$@"' _ "$bin/bench/seq_bench" --device cuda
step seq_torch 60 bash -c 'seq_all "$@"' _ python3 bench/torch_seq.py --device cuda
# The hand-fused limits, yardsticks built from the copies (.gpudeps/reference), never from the repo
ref=.gpudeps/reference
for limit in limit_gpu_fused limit_gpu_persistent limit_cpu; do
  if [ "$limit" = limit_cpu ]; then source_file=$ref/$limit.cpp compile="c++ -O3 -march=native -ffast-math -std=c++20"
  else source_file=$ref/$limit.cu compile="nvcc -O3 -arch=sm_90"; fi
  if [ -f "$source_file" ]; then step $limit 90 bash -c "$compile $source_file -o '$work/$limit' && '$work/$limit'"
  else skip $limit "no $source_file (scripts/gpu-deps.sh)"; fi
done

# ---- 3. the sanitizers over the suite (its build; no case a sanitizer would take minutes over,
# the 20000-epoch curves and the [large] shapes, nor the one that fails on purpose) ----------------
sanitized_cases='*20000*,*large*,*out of device memory*'
for tool in memcheck racecheck synccheck; do
  if have compute-sanitizer; then
    run_with $tool 90 "$suite" compute-sanitizer --tool $tool --error-exitcode 3 "$suite" --duration=true "--test-case-exclude=$sanitized_cases"
  else skip $tool "no compute-sanitizer"; fi
done

# ---- 4. the examples -------------------------------------------------------------------------
built_by[$bin/examples/iris]=build_examples
build build_examples 180 iris
run iris_cuda 60 "$bin/examples/iris" --device cuda --print-every 5000 --out "$work/iris"
run iris_cuda_nograph 60 "$bin/examples/iris" --device cuda --no-graph --print-every 0 --out "$work/iris-nograph"

# ---- 5. mg::dist's NCCL transport on one GPU, as one rank (its own build: the others are without MPI)
if have mpirun; then
  step dist_nccl 150 bash -c "cmake -S . -B '$bin-dist' -G '$generator' -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_CUDA=ON -DMINIGRAD_MPI=ON \
    -DCMAKE_PREFIX_PATH='$prefix_path' && cmake --build '$bin-dist' -j$jobs --target dist_nccl && \
    mpirun --allow-run-as-root -np 1 '$bin-dist/tests/dist_nccl'"
else skip dist_nccl "no mpirun (Open MPI) on this machine"; fi

exit 0
