#!/usr/bin/env bash
# Runs every test: installs what is missing (Debian packages, and the Python environment of
# scripts/python-env.sh), then builds and runs the suite twice, as a release
# build (with the CUDA parts compiled when nvcc is there) and under ASan + UBSan (a Debug build:
# unoptimised, which compiles about three times faster than -O2, with minigrad's assertions on; the
# optimised code is the release build's, tested without sanitizers; the unit tests also run on the
# baseline loops, as an x86-64 CPU without AVX2 runs them), then, side by side, the thread tests
# alone under ThreadSanitizer (their own build: TSan cannot share a binary with ASan) and the
# digits example built without MPI, then runs each libFuzzer harness for 60 seconds
# (scripts/fuzz.sh).
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
for preset in release asan; do
  echo "=== ${preset}"
  t=$SECONDS
  cmake --preset "${preset}"
  cmake --build --preset "${preset}" -j"${jobs}"
  stage_done "${preset}: build" "$t"
  t=$SECONDS
  ctest --preset "${preset}" -j"${jobs}"
  stage_done "${preset}: tests" "$t"
done
# Then, side by side, the thread tests under TSan and a build without MPI (libopenmpi-dev is
# optional: the digits example, the one program that uses mg::dist, built with MINIGRAD_MPI=OFF
# and trained for an epoch). Each is mostly one long translation unit, so the two share the cores
# (about 60 s where one after the other took 96 s). Each one's output is printed when both are done.
tsan_stage() {
  cmake --preset tsan && cmake --build --preset tsan -j"${jobs}" && ctest --preset tsan -j"${jobs}"
}
no_mpi_stage() {
  cmake -S . -B build/no-mpi -DCMAKE_BUILD_TYPE=Release -DMINIGRAD_MPI=OFF -DMINIGRAD_CUDA=OFF \
    -DMINIGRAD_BUILD_TESTS=OFF -DMINIGRAD_BUILD_BENCH=OFF >/dev/null &&
    cmake --build build/no-mpi -j"${jobs}" --target digits &&
    build/no-mpi/examples/digits --device cpu --epochs 1 --data data/digits.csv --out build/no-mpi/out
}
echo "=== tsan, and without MPI (side by side)"
t=$SECONDS
mkdir -p build
tsan_stage >build/tsan-stage.log 2>&1 & tsan_pid=$!
no_mpi_stage >build/no-mpi-stage.log 2>&1 & no_mpi_pid=$!
trap 'kill "$tsan_pid" "$no_mpi_pid" 2>/dev/null' EXIT  # an interrupted run leaves neither running
side_failed=()
wait "$tsan_pid" || side_failed+=(tsan)
wait "$no_mpi_pid" || side_failed+=("without MPI")
trap - EXIT
echo "--- tsan:" && cat build/tsan-stage.log
echo "--- without MPI:" && cat build/no-mpi-stage.log
if [ ${#side_failed[@]} -ne 0 ]; then
  printf 'error: failed: %s\n' "${side_failed[@]}" >&2
  exit 1
fi
stage_done "tsan + no MPI" "$t"
echo "=== fuzz"
t=$SECONDS
scripts/fuzz.sh 60
stage_done "fuzz (build and runs)" "$t"
echo "=== time per stage"
printf '%s\n' "${times[@]}"
printf '%-22s %4d s\n' "total" $((SECONDS - start))
