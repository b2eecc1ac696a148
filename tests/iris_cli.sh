#!/usr/bin/env bash
# The Iris example as a user runs it: bad flags and a bad --out end with "error: ..." on stderr and
# a non-zero exit before any training; a short good run exits 0 and writes loss.csv.
# Usage: tests/iris_cli.sh <iris binary> <iris.csv> <scratch folder>
set -uo pipefail
iris=$1 data=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
failures=0

# expect <exit code: 0, or "nonzero"> <a line stderr must hold exactly, or ""> <args...>
expect() {
  local want_rc=$1 want_err=$2
  shift 2
  local data_args=(--data "$data")
  [[ " $* " == *" --data "* ]] && data_args=()
  "$iris" "${data_args[@]}" "$@" >"$scratch/stdout" 2>"$scratch/stderr"
  local rc=$?
  local ok=1
  if [ "$want_rc" = nonzero ]; then [ "$rc" -ne 0 ] || ok=0; else [ "$rc" -eq "$want_rc" ] || ok=0; fi
  # 128+ is a signal (abort, segfault): never acceptable.
  [ "$rc" -lt 128 ] || ok=0
  if [ -n "$want_err" ] && ! grep -Fxq -- "$want_err" "$scratch/stderr"; then ok=0; fi
  if [ "$ok" -eq 0 ]; then
    echo "FAIL: iris $* -> exit $rc (expected $want_rc), stderr:"
    sed 's/^/  | /' "$scratch/stderr"
    echo "  expected the line: $want_err"
    failures=$((failures + 1))
  else
    echo "ok: iris $* -> exit $rc"
  fi
}

out="$scratch/out"
expect nonzero "error: --epochs: Value 0 not in range 1 to 10000000" --epochs 0 --out "$out"
expect nonzero "error: --epochs: Value 20000000 not in range 1 to 10000000" --epochs 20000000 --out "$out"
expect nonzero "error: --lr: 1e39 must be positive and finite as a float (at most 3.4028235e+38)" --lr 1e39 --out "$out"
expect nonzero "error: --lr: nan must be positive and finite as a float (at most 3.4028235e+38)" --lr nan --out "$out"
expect nonzero "error: a flag's value could not be read (stoll); run with --help for the flags" --no-graph=800000000000000000000 --out "$out"
expect nonzero "error: --lr: -0.1 must be positive and finite as a float (at most 3.4028235e+38)" --lr -0.1 --out "$out"
expect nonzero "error: --hidden: Value 10000000000 not in range 1 to 100000" --hidden 10000000000 --out "$out"
# CLI11's Range called these "not in range", and its conversion read hexadecimal.
expect nonzero "error: --epochs: '1e3' is not a whole number" --epochs 1e3 --out "$out"
expect nonzero "error: --epochs: '' is not a whole number" --epochs "" --out "$out"
expect nonzero "error: --hidden: '1.5' is not a whole number" --hidden 1.5 --out "$out"
expect nonzero "error: --seed: '0x10' is not a whole number" --seed 0x10 --out "$out"
expect nonzero "error: --lr: '0x10' is not a decimal number" --lr 0x10 --out "$out"
# Positive, but 0 as a float: training would silently not move.
expect nonzero "error: --lr: 1e-46 underflows to 0 as a float" --lr 1e-46 --out "$out"
expect nonzero "error: --lr: 1e-400 underflows to 0 as a float" --lr 1e-400 --out "$out"
expect nonzero "error: --lr: -1e-400 must be positive and finite as a float (at most 3.4028235e+38)" --lr -1e-400 --out "$out"
expect nonzero "error: --log-every: Value 0 not in range 1 to 10000000" --log-every 0 --out "$out"
expect nonzero "error: --print-every 300 must be a multiple of --log-every 200 (progress lines show the last recorded loss)" \
  --print-every 300 --out "$out"
expect nonzero "error: --out is empty: name a folder for loss.csv and loss.svg" --out ""
expect nonzero "error: --out '/dev/null' exists and is not a folder" --out /dev/null
touch "$scratch/a-file"
expect nonzero "error: --out '$scratch/a-file' exists and is not a folder" --out "$scratch/a-file"
expect nonzero "error: --out '$scratch/a-file/sub': cannot create the folder: Not a directory" --out "$scratch/a-file/sub"
if [ "$(id -u)" -ne 0 ]; then  # root writes into a read-only folder anyway
  mkdir -p "$scratch/read-only" && chmod 555 "$scratch/read-only"
  expect nonzero "error: --out '$scratch/read-only': cannot create a file in the folder: Permission denied" --out "$scratch/read-only"
else
  echo "skipped: the read-only --out case (running as root)"
fi
expect nonzero "error: read_csv: '$scratch' is a directory, expected a CSV file" --out "$out" --data "$scratch"
# The errno of the create itself (it was a stale one, "No such file or directory", for /sys).
if [ "$(id -u)" -eq 0 ] && [ -d /sys/kernel ]; then
  expect nonzero "error: --out '/sys/kernel': cannot create a file in the folder: Permission denied" --out /sys/kernel
fi
expect nonzero "error: read_csv: '/dev/zero' is a device, expected a CSV file (a regular file or a pipe)" --out "$out" --data /dev/zero
# lr 1e30: the first epoch's loss is finite, the step after it blows the weights up.
expect 0 "" --epochs 1 --lr 1e30 --log-every 1 --print-every 0 --out "$scratch/out-1"
expect nonzero "error: the loss became NaN: first non-finite recorded loss at epoch 2 (losses are recorded every epoch); try a smaller --lr than 1e+30" \
  --epochs 10 --lr 1e30 --log-every 1 --print-every 0 --out "$out"
# Eager steps record every --log-every epochs; a captured step (the default, on either backend) records every epoch.
expect nonzero "error: the loss became NaN: first non-finite recorded loss at epoch 5 (losses are recorded every 5 epochs and at the last epoch); try a smaller --lr than 1e+30" \
  --epochs 12 --lr 1e30 --log-every 5 --print-every 0 --no-graph --out "$out"
expect nonzero "error: the loss became NaN: first non-finite recorded loss at epoch 2 (losses are recorded every epoch); try a smaller --lr than 1e+30" \
  --epochs 12 --lr 1e30 --log-every 5 --print-every 0 --out "$out"
[ ! -e "$out/loss.csv" ] || { echo "FAIL: a refused run wrote $out/loss.csv"; failures=$((failures + 1)); }

expect 0 "" --epochs 10 --out "$out"
if [ "$(wc -l <"$out/loss.csv" 2>/dev/null)" != 2 ] || ! grep -q '^10,' "$out/loss.csv"; then
  echo "FAIL: --epochs 10 should write loss.csv with the header and epoch 10:"; cat "$out/loss.csv"
  failures=$((failures + 1))
fi
grep -q '^Final loss: [0-9]' "$scratch/stdout" || { echo "FAIL: no final loss printed"; failures=$((failures + 1)); }

# loss.csv cannot be written (a folder is in its place): the reason is said.
mkdir -p "$scratch/out-blocked/loss.csv"
expect nonzero "error: cannot write '$scratch/out-blocked/loss.csv': Is a directory" --epochs 2 --print-every 0 --out "$scratch/out-blocked"
# A pipe is a CSV source: read as a stream.
expect 0 "" --epochs 2 --print-every 0 --out "$scratch/out-pipe" --data <(cat "$data")

# A fourth species: a class the three-output model cannot predict is refused before training.
{ cat "$data"; echo "5.0,3.0,1.5,0.2,unknown"; } >"$scratch/iris-4-species.csv"
expect nonzero "error: $scratch/iris-4-species.csv: row 150 has class 3, expected a class in [0, 3) (the model has 3 outputs)" \
  --epochs 2 --print-every 0 --out "$scratch/out-4" --data "$scratch/iris-4-species.csv"

expect 0 "" --help
grep -q -- "--no-graph" "$scratch/stdout" || { echo "FAIL: --help does not list --no-graph"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed"; exit 1; }
