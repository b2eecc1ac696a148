#!/usr/bin/env bash
# The speed guard: instructions per Iris epoch (eager and on the captured tape) and per digits
# training step, counted by callgrind (deterministic, unlike time), against the baseline kept in
# bench/instruction_baseline.txt. Fails where a count rose more than 10% over it. A change may
# lower a baseline (write the new counts there); one that raises it must say why in its commit.
# Each count is a difference of two runs (more epochs minus fewer) over the epochs or steps
# between them, so that start-up (reading the data) cancels. The runs are short (a count is
# deterministic: 500 and 1500 Iris epochs give the per-epoch counts of 2000 and 6000 within 0.1%,
# 2 and 4 digits epochs those of 3 and 6 within 0.02%), so that the test takes about 25 s of callgrind.
# Usage: tests/instruction_counts.sh IRIS DIGITS_BENCH DATA_DIR BASELINE WORK_DIR
#   IRIS: the Iris example; DIGITS_BENCH: bench/digits_bench.cpp's program; both compiled by the
#   C++ compiler at the release flags (not nvcc: its host pass counts differently).
set -euo pipefail
iris=$1 digits=$2 data=$3 baseline=$4 work=$5
command -v valgrind >/dev/null || { echo "error: valgrind is not installed (scripts/install-deps.sh installs it)" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"

# the counts depend on which loops the CPU dispatch picks: AVX2+FMA or the baseline
isa=baseline
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && isa=avx2
expected_isa=$(awk '$1 == "isa" { print $2 }' "$baseline")
if [ "$isa" != "$expected_isa" ]; then
  echo "skipped: the baseline was counted on a CPU with the $expected_isa loops; this one runs the $isa loops"
  exit 77
fi

# instructions of one run: callgrind's total
count() {
  local out="$work/callgrind.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$work/last_output.txt" 2>"$work/valgrind.txt" ||
    { cat "$work/valgrind.txt" "$work/last_output.txt" >&2; return 1; }
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}
# (count of the longer run - count of the shorter) / units between them
per_unit() {
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (b - a) / n }'
}

declare -A measured
for mode in graph no-graph; do
  short=$(count "$iris" --$mode --epochs 500 --print-every 0 --data "$data/iris.csv" --out "$work/iris")
  long=$(count "$iris" --$mode --epochs 1500 --print-every 0 --data "$data/iris.csv" --out "$work/iris")
  name=iris_epoch_tape
  [ "$mode" = no-graph ] && name=iris_epoch_eager
  measured[$name]=$(per_unit "$short" "$long" 1000)
done
# digits_bench runs --epochs E as one warm-up epoch and E - 1 timed ones, all training steps
short=$(count "$digits" --epochs 2 --threads 1 --data "$data/digits.csv")
long=$(count "$digits" --epochs 4 --threads 1 --data "$data/digits.csv")
steps=$(sed -nE 's/.*\(([0-9]+) steps\/epoch\).*/\1/p' "$work/last_output.txt")
[ -n "$steps" ] || { echo "error: digits_bench printed no steps/epoch:" >&2; cat "$work/last_output.txt" >&2; exit 1; }
measured[digits_step]=$(per_unit "$short" "$long" $((2 * steps)))

failed=0
printf '%-18s %12s %12s %8s\n' count measured baseline ratio
for name in iris_epoch_tape iris_epoch_eager digits_step; do
  base=$(awk -v n="$name" '$1 == n { print $2 }' "$baseline")
  [ -n "$base" ] || { echo "error: $baseline has no line for $name" >&2; exit 1; }
  ratio=$(awk -v m="${measured[$name]}" -v b="$base" 'BEGIN { printf "%.3f", m / b }')
  verdict=""
  if awk -v r="$ratio" 'BEGIN { exit !(r > 1.10) }'; then verdict="  more than 10% over the baseline"; failed=1; fi
  printf '%-18s %12s %12s %8s%s\n' "$name" "${measured[$name]}" "$base" "$ratio" "$verdict"
done
exit $failed
