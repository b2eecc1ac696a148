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
failed=()
for name in "${harnesses[@]}"; do
  corpus="$build/corpus/$name" findings="$build/findings/$name"
  rm -rf "$findings" && mkdir -p "$corpus" "$findings"
  echo "=== fuzz_${name}: ${seconds} s"
  if ! "$build/tests/fuzz/fuzz_${name}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" "tests/fuzz/corpus/$name" 2>"$build/fuzz_${name}.log" ||
    grep -qE 'runtime error|ERROR: (Address|Leak|Undefined)Sanitizer' "$build/fuzz_${name}.log"; then
    tail -n 60 "$build/fuzz_${name}.log"
    failed+=("$name")
  else
    grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz_${name}.log" || true
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "error: fuzzing found a problem in: ${failed[*]} (reproducers in $build/findings/)" >&2
  exit 1
fi
echo "fuzzing: ${harnesses[*]}: nothing found"
