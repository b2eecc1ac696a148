#!/usr/bin/env bash
# Installs the Debian 12 packages minigrad's build needs, skipping those already there.
# Usage: scripts/install-deps.sh [extra package...]
set -euo pipefail
packages=(cmake g++ make pkgconf libfmt-dev nlohmann-json3-dev doctest-dev libcli11-dev libopenblas-dev libopenmpi-dev openmpi-bin valgrind wamerican "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing Debian packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
