#!/usr/bin/env bash
# Run here, before a GPU check on a lent machine (which has CMake, nvcc and PyTorch but cannot
# fetch anything): downloads the Debian packages of fmt, doctest, CLI11 and nlohmann-json (the unit
# tests read their goldens with it) into .gpudeps/, an
# ignored folder to name in the device call's `carry`, and copies the reference programs of
# ../shared/reference (which does not travel with the checkout) into .gpudeps/reference/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpudeps
if [ -d ../shared/reference ]; then
  mkdir -p .gpudeps/reference
  cp ../shared/reference/*.cpp ../shared/reference/*.cu .gpudeps/reference/ 2>/dev/null || true
fi
cd .gpudeps
apt-get download libfmt-dev libfmt9 doctest-dev libcli11-dev nlohmann-json3-dev >/dev/null
ls -1 *.deb reference/* 2>/dev/null || true
