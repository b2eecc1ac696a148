#!/usr/bin/env bash
# Runs every test: installs what is missing (Debian packages, and the Python environment of
# scripts/python-env.sh), then builds and runs the suite twice, as a release
# build (with the CUDA parts compiled when nvcc is there) and under ASan + UBSan (a Debug build:
# unoptimised, which compiles about three times faster than -O2, with minigrad's assertions on; the
# optimised code is the release build's, tested without sanitizers; the unit tests also run on the
# baseline loops, as an x86-64 CPU without AVX2 runs them), then the thread tests alone
# under ThreadSanitizer (their own build: TSan cannot share a binary with ASan), then builds the
# digits example without MPI, then runs each libFuzzer harness for 60 seconds (scripts/fuzz.sh).
# Ends with each stage's time.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
times=()
stage_done() { times+=("$(printf '%-22s %4d s' "$1" $((SECONDS - $2)))"); }
t=$SECONDS
# Python for the torch_interop test: Debian's torch and numpy, and venv to build on them the
# environment build/pyenv, which adds safetensors from PyPI (scripts/python-env.sh; the test would
# make it too, but here its download is counted as installing).
scripts/install-deps.sh python3-venv python3-numpy python3-torch
scripts/python-env.sh
stage_done "install" "$t"
jobs=$(nproc)
for preset in release asan tsan; do
  echo "=== ${preset}"
  t=$SECONDS
  cmake --preset "${preset}"
  cmake --build --preset "${preset}" -j"${jobs}"
  stage_done "${preset}: build" "$t"
  t=$SECONDS
  ctest --preset "${preset}" -j"${jobs}"
  stage_done "${preset}: tests" "$t"
done
# A build without MPI must work (libopenmpi-dev is optional): the digits example, the one program
# that uses mg::dist, built with MINIGRAD_MPI=OFF and trained for an epoch.
echo "=== without MPI"
t=$SECONDS
cmake -S . -B build/no-mpi -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_MPI=OFF -DMINIGRAD_CUDA=OFF \
  -DMINIGRAD_BUILD_TESTS=OFF -DMINIGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build build/no-mpi -j"${jobs}" --target digits
build/no-mpi/examples/digits --device cpu --epochs 1 --data data/digits.csv --out build/no-mpi/out
stage_done "no MPI: digits" "$t"
echo "=== fuzz"
t=$SECONDS
scripts/fuzz.sh 60
stage_done "fuzz (build and runs)" "$t"
echo "=== time per stage"
printf '%s\n' "${times[@]}"
printf '%-22s %4d s\n' "total" $((SECONDS - start))
