#!/usr/bin/env bash
# A consumer with no CMake: tests/consumer/main.cpp built by the C++ compiler with only the flags
# `pkg-config --cflags --libs` gives for the installed minigrad.pc (the headers) and
# minigrad-prebuilt.pc (with libminigrad_prebuilt.a), then run. The prefix the .pc files report
# must be the install prefix, which is not the one minigrad was configured with.
# Usage: tests/consumer/pkg_config.sh PKG_CONFIG CXX INSTALL_PREFIX PC_DIR WORK_DIR
set -euo pipefail
pkg_config=$1 cxx=$2 prefix=$3 pc_dir=$4 work=$5
if ! command -v "$pkg_config" >/dev/null 2>&1; then
  echo "skipped: no pkg-config found when minigrad was configured (apt-get install pkgconf)"
  exit 77
fi
source=$(cd "$(dirname "$0")" && pwd)/main.cpp
export PKG_CONFIG_PATH=$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
rm -rf "$work" && mkdir -p "$work"
reported=$(cd "$("$pkg_config" --variable=prefix minigrad)" && pwd -P)
[ "$reported" = "$(cd "$prefix" && pwd -P)" ] || { echo "error: minigrad.pc reports the prefix $reported, expected $prefix" >&2; exit 1; }
for package in minigrad minigrad-prebuilt; do
  flags=$("$pkg_config" --cflags --libs "$package")
  echo "$package: $cxx -O1 main.cpp $flags"
  # shellcheck disable=SC2086  # the flags are words
  "$cxx" -O1 "$source" $flags -o "$work/$package"
  "$work/$package"
done
