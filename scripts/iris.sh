#!/usr/bin/env bash
# Quick start: installs what is missing, builds the Iris example and trains it.
# Arguments go to the example (try --help); by default it trains on the CPU and writes out/loss.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target iris -j"$(nproc)"
exec build/release/examples/iris "$@"
