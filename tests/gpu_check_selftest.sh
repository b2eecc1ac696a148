#!/usr/bin/env bash
# tests/gpu_check_selftest.sh REPO SCRATCH: runs scripts/gpu-check.sh here, with no GPU, in seconds,
# with fake tools in a PATH of its own (a fake cmake "builds" stub programs, a fake suite has a case
# that hangs and one that fails), and checks what a device call needs of it: the table has every row
# of the list below, once, whatever happened (tools missing, a hang, a failed step, a build past the
# budget, a SIGTERM); the run ends within its budget; $OUT holds summary.txt and logs.tar.gz alone.
# The list is this test's own: a step dropped from gpu-check.sh fails it.
set -uo pipefail
repo=$1 scratch=$2
rm -rf "$scratch" && mkdir -p "$scratch" || exit 2
rows=(tools deps configure build_suite device_info gpu_tests parity build_bench bench_minigrad bench_minigrad_graph
  bench_minigrad_compiled bench_minigrad_compiled_k100 bench_minigrad_compiled_grid_k100 bench_minigrad_cpu
  bench_minigrad_cpu_graph bench_torch_item bench_torch_log bench_torch_graph bench_torch_cpu digits_cuda gemm_bench
  scaling_minigrad scaling_minigrad_graph scaling_torch scaling_torch_graph conv_minigrad conv_torch seq_minigrad seq_torch limit_gpu_fused limit_gpu_persistent
  limit_cpu memcheck racecheck synccheck build_examples iris_cuda iris_cuda_nograph dist_nccl)
failures=0
fail() { echo "FAIL ($scenario): $*"; failures=$((failures + 1)); }

# The basic tools alone: no cmake, nvcc, python3, make or compiler unless a fake is put first.
base=$scratch/base
mkdir -p "$base"
for tool in bash sh env date mkdir mktemp rm cp mv cat ls tee sleep timeout stdbuf head tail tr cut grep sed tar gzip \
  nproc dirname basename chmod wc sort ln touch git; do
  path=$(command -v $tool) && ln -s "$path" "$base/$tool"
done

fakes=$scratch/fakes
mkdir -p "$fakes"
program=$scratch/fake_program  # every built program: what it does follows from its name
cat >"$program" <<'EOF'
#!/bin/bash
previous=""
for arg; do  # writes where --out says, as the examples do
  [ "$previous" = --out ] && mkdir -p "$arg" && echo 0.5 >"$arg/losses.csv"
  previous=$arg
done
case $(basename "$0") in
  minigrad_gpu_tests)
    cases=("passes" "a name, with a comma" "hangs" "fails"
      "Iris: CPU and CUDA loss curves agree to 1e-4 relative at every recorded point over 20000 epochs" "passes after the hang")
    filter=""
    for arg; do
      case $arg in
        --list-test-cases) printf '[doctest] listing all test case names\n=====\n'; printf '%s\n' "${cases[@]}"; echo =====; exit 0 ;;
        --test-case=*) filter=${arg#--test-case=}; filter=${filter//\\,/,} ;;
      esac
    done
    [ -z "$filter" ] && { echo "[doctest] test cases: 4 | 4 passed"; exit 0; }  # the whole suite (the sanitizers)
    case $filter in
      hangs) exec sleep 100 ;;
      fails) echo "ERROR: CHECK( 1 == 2 ) is NOT correct!"; exit 1 ;;
      Iris*) echo "MESSAGE: Iris CPU/CUDA max relative difference over 100 recorded losses: 1e-06" ;;
    esac
    for c in "${cases[@]}"; do [ "$c" = "$filter" ] && { echo "[doctest] test cases: 1 | 1 passed | 0 failed"; exit 0; }; done
    echo "[doctest] test cases: 0 | 0 passed | 0 failed"; exit 0 ;;
  iris_bench)
    for arg; do [ "$arg" = --block-max-work ] && { echo "cooperative launch failed"; exit 3; }; done
    echo "minigrad fake: median 1.00 us/epoch" ;;
  *) echo "$(basename "$0"): median 2.00 us/epoch" ;;
esac
EOF
cat >"$fakes/cmake" <<'EOF'
#!/bin/bash
if [ "$1" = -S ]; then mkdir -p "$4" && touch "$4/CMakeCache.txt"; echo "-- fake configure of $4"; exit 0; fi
[ "$1" = --build ] || exit 2
dir=$2
[ -n "${FAKE_BUILD_SLEEP:-}" ] && sleep "$FAKE_BUILD_SLEEP"
while [ $# -gt 0 ] && [ "$1" != --target ]; do shift; done
shift
for target; do
  case $target in --) break ;; minigrad_gpu_tests) sub=tests ;; device_info | iris) sub=examples ;; *) sub=bench ;; esac
  mkdir -p "$dir/$sub" && ln -sf "$FAKE_PROGRAM" "$dir/$sub/$target" && echo "built $target"
done
EOF
printf '#!/bin/bash\necho "Fake GPU, 0.0"\n' >"$fakes/nvidia-smi"
printf '#!/bin/bash\n[ "$1" = -c ] && exit 0\necho "torch fake: median 3.00 us/epoch"\n' >"$fakes/python3"
printf '#!/bin/bash\nshift 4\necho "========= ERROR SUMMARY: 0 errors"\nexec "$@"\n' >"$fakes/compute-sanitizer"
for tool in nvcc make c++; do printf '#!/bin/bash\nexit 1\n' >"$fakes/$tool"; done
chmod +x "$program" "$fakes"/*

# gpu-check SCENARIO BUDGET PATH [VAR=VALUE...]: runs it; its stdout in SCENARIO/stdout, its seconds in took
gpu_check() {
  scenario=$1
  local budget=$2 path=$3 dir=$scratch/$1
  shift 3
  mkdir -p "$dir/out"
  local t0
  t0=$(date +%s)
  env -i HOME="$dir" PATH="$path" OUT="$dir/out" GPU_CHECK_WORK="$dir/work" GPU_CHECK_BUILD="$dir/build" CUDA_HOME=/nonexistent \
    GPU_CHECK_BUDGET="$budget" GPU_CHECK_RESERVE=2 GPU_CHECK_MIN_STEP=3 GPU_CHECK_CASE_LIMIT=2 FAKE_PROGRAM="$program" "$@" \
    bash "$repo/scripts/gpu-check.sh" >"$dir/stdout" 2>&1 &
  local pid=$!
  [ -n "${send_term_after:-}" ] && sleep "$send_term_after" && kill -TERM $pid
  wait $pid
  took=$(($(date +%s) - t0))
  [ "$took" -le $((budget + 5)) ] || fail "took $took s, over its budget of $budget s"
}
# The checks every run must pass.
check_common() {
  local dir=$scratch/$scenario summary=$scratch/$scenario/out/summary.txt row
  [ "$(cd "$dir/out" && ls -A | tr '\n' ' ')" = "logs.tar.gz summary.txt " ] ||
    fail "\$OUT holds $(cd "$dir/out" && ls -A | tr '\n' ' '), not summary.txt and logs.tar.gz alone"
  for row in "${rows[@]}"; do
    [ "$(grep -c "^| $row | " "$summary")" = 1 ] || fail "row $row is not in the table once"
    grep -q "^| $row | " "$dir/stdout" || fail "row $row is not in the table printed"
  done
  [ "$(grep -c '^| ' "$summary")" = $((${#rows[@]} + 2)) ] || fail "the table has $(($(grep -c '^| ' "$summary") - 2)) rows, this test's list ${#rows[@]}"
  grep -E "NOT SET|pending" "$summary" && fail "a row was left unset"
  # the listing whole, then the search: `tar | grep -q` fails under pipefail whenever grep exits
  # before tar has written its last line (SIGPIPE), which a loaded machine makes likely
  local listing
  listing=$(tar -tzf "$dir/out/logs.tar.gz") || fail "the archive cannot be listed"
  grep -qx "logs/summary.txt" <<<"$listing" || fail "the archive has no logs/summary.txt"
}
row() { grep "^| $1 | " "$scratch/$scenario/out/summary.txt"; }
expect() {  # expect ROW EXTENDED-REGEX
  row "$1" | grep -qE "$2" || fail "row $1 is '$(row "$1")', expected /$2/"
}

# 1. Nothing there: every tool missing is said, one line each, and every row is still there.
gpu_check bare 60 "$base"
check_common
for tool in "cmake" "nvcc" "make or ninja" "nvidia-smi" "compute-sanitizer" "python3"; do
  grep -q "^missing: $tool" "$scratch/bare/out/summary.txt" || fail "no 'missing: $tool' line"
done
expect configure "FAILED"
expect gpu_tests "skipped: tests/minigrad_gpu_tests was not built"

# 2. Fakes: a suite case hangs (its 2 s limit, and the cases after it run), one fails, a benchmark fails.
gpu_check fakes 120 "$fakes:$base"
check_common
expect build_suite "^\| build_suite \| ok"
expect gpu_tests "FAILED.*6, 4 passed, 1 failed, 1 timed out, 0 not reached"
expect gpu_tests "TIMED OUT after 2 s: hangs"
expect parity "ok .*max relative difference"
expect bench_minigrad "ok .*median 1.00 us/epoch"
expect bench_minigrad_compiled_grid_k100 "FAILED \(rc 3"
expect bench_torch_graph "ok .*median 3.00"
expect memcheck "ok .*ERROR SUMMARY: 0 errors"
expect iris_cuda_nograph "^\| iris_cuda_nograph \| ok"
expect dist_nccl "skipped: no mpirun"
log=$(tar -xzOf "$scratch/fakes/out/logs.tar.gz" logs/gpu_tests.log)
for line in "case ok: a name, with a comma" "case ok: passes after the hang"; do
  grep -q "^$line" <<<"$log" || fail "the suite's log has no '$line'"
done

# 3. A build that outlasts the budget: it times out, the rest is not reached, the run ends in time.
gpu_check budget 12 "$fakes:$base" FAKE_BUILD_SLEEP=100
check_common
expect build_suite "TIMED OUT"
expect bench_minigrad "not reached: the 12 s budget is spent"
expect dist_nccl "not reached: the 12 s budget is spent|skipped: no mpirun"

# 4. SIGTERM during a build: the table is still written, the rest marked as stopped.
send_term_after=4 gpu_check sigterm 100 "$fakes:$base" FAKE_BUILD_SLEEP=100
check_common
expect build_suite "STOPPED \(SIGTERM\) after"
expect bench_minigrad "not reached: gpu-check.sh was stopped \(SIGTERM\)"

[ $failures -eq 0 ] && echo "gpu-check self-test: every scenario passed" || echo "gpu-check self-test: $failures failures"
[ $failures -eq 0 ]
