#!/usr/bin/env bash
# Runs a job that must fail: passes when it ends within BOUND seconds (not killed by the bound:
# that would be a hang), with a non-zero status, and with EXPECTED in its output.
# Usage: expect_failure.sh BOUND EXPECTED command...
set -uo pipefail
bound=$1 expected=$2
shift 2
output=$(timeout "$bound" "$@" 2>&1)
status=$?
printf '%s\n' "$output"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "FAIL: the job was still running after ${bound} s (a hang)"; exit 1
fi
if [ "$status" -eq 0 ]; then
  echo "FAIL: the job ended with status 0; a failed rank must fail the job"; exit 1
fi
if ! grep -qF -- "$expected" <<<"$output"; then
  echo "FAIL: the output does not say: ${expected}"; exit 1
fi
echo "PASS: ended with status ${status} within ${bound} s, saying: ${expected}"
