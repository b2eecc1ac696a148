#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (ASan + UBSan, CUDA off, in build/fuzz)
# and runs each for the given number of seconds on a copy of its seed corpus. Fails if any finds a
# crash, a leak, a timeout, an out-of-memory or a sanitizer report; the reproducer is left in
# build/fuzz/findings/<name>/.
# Usage: scripts/fuzz.sh [seconds per harness, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [seconds per harness]" >&2; exit 2; }
scripts/install-deps.sh clang libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes
cxx=${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}
[ -n "$cxx" ] || { echo "error: scripts/fuzz.sh needs clang++ (scripts/install-deps.sh installs it)" >&2; exit 1; }
build=build/fuzz
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMINIGRAD_CUDA=OFF \
  -DMINIGRAD_BUILD_FUZZERS=ON -DMINIGRAD_BUILD_TESTS=OFF -DMINIGRAD_BUILD_EXAMPLES=OFF -DMINIGRAD_BUILD_BENCH=OFF >/dev/null
IFS=';' read -r -a harnesses <"$build/fuzz_harnesses.txt"
targets=()
for name in "${harnesses[@]}"; do targets+=(--target "fuzz_${name}"); done
cmake --build "$build" -j"${FUZZ_JOBS:-$(nproc)}" "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Each harness is one process on one core: as many run at once as there are cores (FUZZ_JOBS), each
# for the whole time asked, so a 2-core machine fuzzes three harnesses in two rounds, not three.
fuzz_one() {
  local name=$1 corpus="$build/corpus/$1" findings="$build/findings/$1"
  rm -rf "$findings" && mkdir -p "$corpus" "$findings"
  if ! "$build/tests/fuzz/fuzz_${name}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" "tests/fuzz/corpus/$name" 2>"$build/fuzz_${name}.log" ||
    grep -qE 'runtime error|ERROR: (Address|Leak|Undefined)Sanitizer' "$build/fuzz_${name}.log"; then
    return 1
  fi
}
parallel=${FUZZ_JOBS:-$(nproc)}
for name in "${harnesses[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  echo "=== fuzz_${name}: ${seconds} s"
  (if fuzz_one "$name"; then echo ok; else echo failed; fi >"$build/fuzz_${name}.status") &
done
wait
failed=()
for name in "${harnesses[@]}"; do
  if [ "$(cat "$build/fuzz_${name}.status" 2>/dev/null)" = ok ]; then
    echo "--- fuzz_${name}:"
    grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz_${name}.log" || true
  else
    echo "--- fuzz_${name} found a problem:"
    tail -n 60 "$build/fuzz_${name}.log"
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "error: fuzzing found a problem in: ${failed[*]} (reproducers in $build/findings/)" >&2
  exit 1
fi
echo "fuzzing: ${harnesses[*]}: nothing found"
