#!/usr/bin/env bash
# The ctest charlm: examples/charlm as a user runs it, then its parity with PyTorch.
# - A short run exits 0 and writes loss.csv, steps.csv, loss.svg and model.safetensors, and prints
#   its samples; bad flags and a bad word list end with "error: ..." and a non-zero exit, never a
#   signal.
# - Parity (bench/torch_charlm.py parity): from PyTorch's initial weights, written to a safetensors
#   file and loaded by the example, the first 50 steps' losses agree within 1e-4 relative.
# Usage: tests/charlm.sh CHARLM WORK_DIR PYTHON_ENV_DIR
set -uo pipefail
charlm=$1 work=$2 env_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
words=/usr/share/dict/words
rm -rf "$work" && mkdir -p "$work"
if [ ! -s "$words" ]; then
  echo "FAIL: no word list at $words: scripts/install-deps.sh installs Debian's wamerican"
  exit 1
fi
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect <exit code: 0, or "nonzero"> <a line stderr must hold exactly, or ""> <args...>
expect() {
  local want_rc=$1 want_err=$2
  shift 2
  "$charlm" "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$? ok=1
  if [ "$want_rc" = nonzero ]; then [ "$rc" -ne 0 ] || ok=0; else [ "$rc" -eq "$want_rc" ] || ok=0; fi
  [ "$rc" -lt 128 ] || ok=0  # a signal (abort, segfault) is never acceptable
  if [ -n "$want_err" ] && ! grep -Fxq -- "$want_err" "$work/stderr"; then ok=0; fi
  if [ "$ok" -eq 0 ]; then
    fail "charlm $* -> exit $rc (expected $want_rc), stderr:"
    sed 's/^/  | /' "$work/stderr"
    [ -z "$want_err" ] || echo "  expected the line: $want_err"
  else
    echo "ok: charlm $* -> exit $rc"
  fi
}

out=$work/short
expect 0 "" --steps 20 --eval-every 10 --samples 3 --out "$out"
for f in loss.csv steps.csv loss.svg model.safetensors; do [ -s "$out/$f" ] || fail "the short run did not write $out/$f"; done
[ "$(wc -l <"$out/loss.csv" 2>/dev/null)" = 3 ] || fail "--steps 20 --eval-every 10: loss.csv should hold the header and 2 rows"
[ "$(wc -l <"$out/steps.csv" 2>/dev/null)" = 21 ] || fail "--steps 20: steps.csv should hold the header and 20 steps"
[ "$(grep -c '^step ' "$work/stdout")" = 2 ] || fail "--eval-every 10: expected 2 progress lines"
grep -q '^3 sampled words' "$work/stdout" || fail "--samples 3: no sample list"
[ "$(grep -Ec '^  [a-z]* +(new|in the training set|a validation word)$' "$work/stdout")" = 3 ] || fail "--samples 3: expected 3 sampled words"
sed 's/^/  | /' "$work/stdout"

expect nonzero "" --steps 0 --out "$out"
expect nonzero "" --lr -1 --out "$out"
expect nonzero "" --device tpu --out "$out"
expect 1 "error: cannot open the word list '$work/none' (Debian's wamerican package installs /usr/share/dict/words)" --data "$work/none" --out "$out"
printf 'Cat\ndog\nit'"'"'s\n' >"$work/few.txt"
expect 1 "error: '$work/few.txt' holds 2 words of the letters a-z; at least 20 are needed" --data "$work/few.txt" --out "$out"
expect 1 "error: load_safetensors: 'nope.safetensors' cannot open it: No such file or directory" --init nope.safetensors --steps 1 --out "$out"

# Parity with PyTorch, in the environment of scripts/python-env.sh (Debian's torch, safetensors from PyPI)
if "$here/../scripts/python-env.sh" "$env_dir"; then
  "$env_dir/bin/python" "$here/../bench/torch_charlm.py" parity "$charlm" "$work/parity" || fail "parity with PyTorch"
else
  fail "could not make the Python environment $env_dir"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "charlm: all checks passed"
