#!/bin/sh
# Runs the PyTorch side of the safetensors interop check with the first Python that has torch and
# safetensors (Debian's python3-torch lives under /usr/bin/python3, which a pyenv may shadow).
# Exits 77 (ctest: skipped) where none has them.
script="$1"
for python in "${PYTHON:-}" python3 /usr/bin/python3; do
  [ -n "$python" ] || continue
  if "$python" -c "import torch, safetensors" 2>/dev/null; then
    exec "$python" "$script" --check
  fi
done
echo "skipped: no python3 with torch and safetensors (pip install safetensors; apt-get install python3-torch)"
exit 77
