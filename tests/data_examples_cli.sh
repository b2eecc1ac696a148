#!/usr/bin/env bash
# The digits, digits_cnn and diabetes examples as a user runs them: a short run exits 0 and writes
# loss.csv, loss.svg, model.safetensors and the split; a bad flag ends with "error: ..." and a
# non-zero exit (never a signal) before any training. digits_cnn also trains its 30 epochs and must
# reach the test accuracy the README states (0.97).
# Usage: tests/data_examples_cli.sh <digits binary> <diabetes binary> <data folder> <scratch folder> <digits_cnn binary>
set -uo pipefail
digits=$1 diabetes=$2 data=$3 scratch=$4 digits_cnn=$5
rm -rf "$scratch" && mkdir -p "$scratch"
failures=0

# expect <name> <binary> <csv> <exit code: 0, or "nonzero"> <a line stderr must hold exactly, or ""> <args...>
expect() {
  local name=$1 bin=$2 csv=$3 want_rc=$4 want_err=$5
  shift 5
  "$bin" --data "$csv" "$@" >"$scratch/stdout" 2>"$scratch/stderr"
  local rc=$? ok=1
  if [ "$want_rc" = nonzero ]; then [ "$rc" -ne 0 ] || ok=0; else [ "$rc" -eq "$want_rc" ] || ok=0; fi
  [ "$rc" -lt 128 ] || ok=0  # a signal (abort, segfault) is never acceptable
  if [ -n "$want_err" ] && ! grep -Fxq -- "$want_err" "$scratch/stderr"; then ok=0; fi
  if [ "$ok" -eq 0 ]; then
    echo "FAIL: $name $* -> exit $rc (expected $want_rc), stderr:"
    sed 's/^/  | /' "$scratch/stderr"
    echo "  expected the line: $want_err"
    failures=$((failures + 1))
  else
    echo "ok: $name $* -> exit $rc"
  fi
}

for name in digits digits_cnn diabetes; do
  bin=${!name} csv="$data/${name%_cnn}.csv" out="$scratch/$name-out"
  expect "$name" "$bin" "$csv" 0 "" --device cpu --epochs 2 --print-every 1 --out "$out" --write-split "$scratch/$name-split.csv"
  for f in loss.csv loss.svg model.safetensors; do
    [ -s "$out/$f" ] || { echo "FAIL: $name did not write $out/$f"; failures=$((failures + 1)); }
  done
  [ "$(wc -l <"$out/loss.csv")" = 3 ] || { echo "FAIL: $name --epochs 2: loss.csv should hold the header and 2 epochs"; failures=$((failures + 1)); }
  [ "$(grep -c '^epoch ' "$scratch/stdout")" = 2 ] || { echo "FAIL: $name --epochs 2 --print-every 1: expected 2 progress lines"; failures=$((failures + 1)); }
  grep -q '^Test ' "$scratch/stdout" || { echo "FAIL: $name printed no test result"; failures=$((failures + 1)); }
  [ "$(grep -c '^t' "$scratch/$name-split.csv")" = "$(($(wc -l <"$csv") - 1))" ] ||
    { echo "FAIL: $name --write-split should list every row once"; failures=$((failures + 1)); }

  expect "$name" "$bin" "$csv" nonzero "error: --epochs: Value 0 not in range 1 to 1000000" --epochs 0 --out "$out"
  expect "$name" "$bin" "$csv" nonzero "error: --epochs: '1e3' is not a whole number" --epochs 1e3 --out "$out"
  expect "$name" "$bin" "$csv" nonzero "error: --lr: -0.1 must be positive and finite as a float (at most 3.4028235e+38)" --lr -0.1 --out "$out"
  expect "$name" "$bin" "$csv" nonzero "error: --device: gpu not in {cpu,cuda,auto}" --device gpu --out "$out"
  expect "$name" "$bin" "$csv" nonzero "error: The following argument was not expected: --no-such-flag" --no-such-flag --out "$out"
  expect "$name" "$bin" "$csv" nonzero "error: --out '/dev/null' exists and is not a folder" --out /dev/null
  expect "$name" "$bin" "$scratch" nonzero "error: read_csv: '$scratch' is a directory, expected a CSV file" --out "$out"
  # The other example's file: the label column it needs is not there.
  other=$([ "$name" = diabetes ] && echo digits || echo diabetes)
  expect "$name" "$bin" "$data/$other.csv" nonzero "" --epochs 1 --out "$out"
  expect "$name" "$bin" "$csv" 0 "" --help
done

# A label the model has no output for (12, of 10 classes) in a row of the test split, as the run
# above wrote it: refused before training, as one in a training row is. (It used to train and
# report a test accuracy, counting the row as a miss.)
test_row=$(awk -F, '$1 == "test" { print $2; exit }' "$scratch/digits-split.csv")
awk -F, -v OFS=, -v line=$((test_row + 2)) 'NR == line { $NF = 12 } { print }' "$data/digits.csv" >"$scratch/digits-label12.csv"
expect digits "$digits" "$scratch/digits-label12.csv" nonzero \
  "error: $scratch/digits-label12.csv: row $test_row has class 12, expected a class in [0, 10) (the model has 10 outputs)" \
  --epochs 1 --out "$scratch/digits-label12-out"

# A test target far outside a narrow training range: the other targets alternate 0 and 1e-30
# (standard deviation about 5e-31), one test row's is 1e10, which standardises to 2e40, past float.
# It is refused before training; it used to train and print "Test MSE: inf" (exit 0).
test_row=$(awk -F, '$1 == "test" { print $2; exit }' "$scratch/diabetes-split.csv")
awk -F, -v OFS=, -v line=$((test_row + 2)) 'NR > 1 { $NF = NR == line ? "1e10" : NR % 2 ? "0" : "1e-30" } { print }' \
  "$data/diabetes.csv" >"$scratch/diabetes-target-far.csv"
expect diabetes "$diabetes" "$scratch/diabetes-target-far.csv" nonzero \
  "error: test target #0 is 10000000000, which standardises to inf as a float (the training targets have mean 5.13e-31 and standard deviation 5e-31)" \
  --epochs 1 --out "$scratch/diabetes-target-far-out"

# The CNN's full default run (30 epochs, seed 42): the README's accuracy, at least 0.97 on the test rows.
expect digits_cnn "$digits_cnn" "$data/digits.csv" 0 "" --print-every 0 --out "$scratch/digits_cnn-full"
accuracy=$(sed -nE 's/^Test accuracy: ([0-9.]+) .*/\1/p' "$scratch/stdout")
if awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.97) }'; then
  echo "ok: digits_cnn's 30 epochs reach test accuracy $accuracy (>= 0.97)"
else
  echo "FAIL: digits_cnn's 30 epochs reach test accuracy '$accuracy', below 0.97"
  failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed"; exit 1; }
