#!/usr/bin/env bash
# The ctest torch_interop: makes the Python environment of scripts/python-env.sh (or finds it
# current) and runs tests/torch_interop.py in it. Skipped (exit 77) only where there is no Python
# to build it on; anything else missing (venv support, PyPI, torch) is a failure that says what.
# Usage: tests/torch_interop.sh TOOL WORK_DIR ENV_DIR   (MINIGRAD_PYTHON: as scripts/python-env.sh)
set -euo pipefail
tool=$1 work=$2 env_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
base=${MINIGRAD_PYTHON:-/usr/bin/python3}
if ! command -v "$base" >/dev/null; then
  echo "skipped: no $base, so PyTorch's side cannot run (apt-get install python3 python3-venv python3-torch)"
  exit 77
fi
"$here/../scripts/python-env.sh" "$env_dir"
exec "$env_dir/bin/python" "$here/torch_interop.py" "$tool" "$work"
