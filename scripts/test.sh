#!/usr/bin/env bash
# Runs every test: installs what is missing, then builds and runs the suite twice, as a release
# build (with the CUDA parts compiled when nvcc is there) and under ASan + UBSan (a Debug build:
# unoptimised, which compiles about three times faster than -O2, with minigrad's assertions on; the
# optimised code is the release build's, tested without sanitizers; the unit tests also run on the
# baseline loops, as an x86-64 CPU without AVX2 runs them), then the thread tests alone
# under ThreadSanitizer (their own build: TSan cannot share a binary with ASan), then runs each
# libFuzzer harness for 60 seconds (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
for preset in release asan tsan; do
  echo "=== ${preset}"
  cmake --preset "${preset}"
  cmake --build --preset "${preset}" -j"${jobs}"
  ctest --preset "${preset}" -j"${jobs}"
done
echo "=== fuzz"
scripts/fuzz.sh 60
