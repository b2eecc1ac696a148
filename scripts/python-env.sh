#!/usr/bin/env bash
# The Python that the tests run (tests/torch_interop.sh): a virtual environment, build/pyenv by
# default, over Debian's /usr/bin/python3 with its packages visible (--system-site-packages:
# python3-torch and python3-numpy come from apt; scripts/test.sh installs them), plus what Debian
# does not package, pinned in scripts/python-env.txt, from PyPI. Does nothing (in about 0.1 s) when
# the environment already holds exactly those pins; otherwise (re)creates it.
# Usage: scripts/python-env.sh [DIR]   (MINIGRAD_PYTHON: the interpreter to build on)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
env_dir=${1:-$root/build/pyenv}
requirements=$root/scripts/python-env.txt
base=${MINIGRAD_PYTHON:-/usr/bin/python3}
stamp=$env_dir/minigrad-python-env.txt  # the requirements it was made with

current() { [ -x "$env_dir/bin/python" ] && cmp -s "$requirements" "$stamp" && "$env_dir/bin/python" -c "import safetensors" 2>/dev/null; }
current && exit 0
mkdir -p "$(dirname "$env_dir")"
# One maker at a time (two builds' ctest runs may share the environment); the second finds it made.
exec 9>"$env_dir.lock"
flock 9
current && exit 0

command -v "$base" >/dev/null || { echo "error: no $base to build the Python environment on (apt-get install python3)" >&2; exit 1; }
"$base" -c "import ensurepip" 2>/dev/null || { echo "error: $base has no venv support (apt-get install python3-venv)" >&2; exit 1; }
echo "Creating the Python environment $env_dir (on $base, with its site packages; from PyPI: $(grep -v '^#' "$requirements" | xargs))"
"$base" -m venv --clear --system-site-packages "$env_dir"
"$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
