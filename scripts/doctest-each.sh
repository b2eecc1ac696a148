#!/usr/bin/env bash
# doctest-each.sh DEADLINE CASE_LIMIT BINARY [DOCTEST OPTION...]: runs each test case of a doctest
# binary in a process of its own, under its own time limit (CASE_LIMIT seconds), so that a case
# that hangs (a cooperative kernel that never returns, say) costs its limit and the cases after it
# still run. DEADLINE is the epoch second after which no case starts; the rest are "not reached".
# The options (filters such as --test-case-exclude=...) go to the listing and to every run.
# Output is line-buffered: a case's own output, then "case ok: NAME (S s)", "case FAILED (rc N):
# NAME", "case TIMED OUT after S s: NAME" or "case not reached: NAME"; last, one "cases:" line.
# Exit: 0 when every case passed, 77 when the binary skipped (no GPU: it prints why), else 1.
set -uo pipefail
deadline=$1 case_limit=$2 binary=$3
shift 3
list=$(timeout -k 5 60 "$binary" --list-test-cases "$@" </dev/null 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  printf '%s\n' "$list"
  [ $rc -eq 77 ] && exit 77
  echo "cases: listing them failed (rc $rc)"
  exit 1
fi
mapfile -t names < <(printf '%s\n' "$list" | grep -v -e '^\[doctest\]' -e '^===' -e '^[[:space:]]*$')
if [ ${#names[@]} -eq 0 ]; then
  printf '%s\n' "$list"
  echo "cases: the binary listed none"
  exit 1
fi
passed=0 failed=0 timed_out=0 not_reached=0
scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT
for name in "${names[@]}"; do
  left=$((deadline - $(date +%s)))
  if [ "$left" -lt 1 ]; then
    echo "case not reached: $name"
    not_reached=$((not_reached + 1))
    continue
  fi
  limit=$case_limit
  [ "$limit" -gt "$left" ] && limit=$left
  # doctest's filters split at commas unless escaped; the name is otherwise matched whole
  filter=${name//\\/\\\\}
  filter=${filter//,/\\,}
  echo "=== case: $name"
  start=$(date +%s)
  timeout -k 5 "$limit" stdbuf -oL -eL "$binary" "--test-case=$filter" --duration=true "$@" </dev/null 2>&1 | tee "$scratch"
  rc=${PIPESTATUS[0]}
  took=$(($(date +%s) - start))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "case TIMED OUT after $limit s: $name"
    timed_out=$((timed_out + 1))
  elif [ $rc -ne 0 ]; then
    echo "case FAILED (rc $rc): $name"
    failed=$((failed + 1))
  elif ! grep -qE 'test cases: +1 \| +1 passed' "$scratch"; then  # a filter that matched nothing passes too
    echo "case FAILED (the run did not report one passed case): $name"
    failed=$((failed + 1))
  else
    echo "case ok: $name ($took s)"
    passed=$((passed + 1))
  fi
done
echo "cases: ${#names[@]}, $passed passed, $failed failed, $timed_out timed out, $not_reached not reached"
[ $((failed + timed_out + not_reached)) -eq 0 ]
