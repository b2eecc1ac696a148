#!/usr/bin/env bash
# Run here, before a GPU check on a lent machine (which has CMake, nvcc and PyTorch but cannot
# fetch anything): downloads the Debian packages of fmt, doctest and CLI11 into .gpudeps/, an
# ignored folder to name in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpudeps
cd .gpudeps
apt-get download libfmt-dev libfmt9 doctest-dev libcli11-dev >/dev/null
ls -1 *.deb
