#!/usr/bin/env bash
# What minigrad costs to compile: CPU seconds (user + sys) and peak memory of g++ on one
# translation unit each, the median of N runs (default 3), as a Markdown table.
#   - the umbrella header alone, and the README's "Using it" example (its first C++ block), both
#     header-only at -O2, as a plain `g++ -O2` user builds them;
#   - the same example as a file of a CMake project that links minigrad::prebuilt
#     (-DMINIGRAD_PREBUILT: the product kernels and common ops come from the library), and the
#     library's own two files, which such a project compiles once;
#   - the largest unit-test file, alone, with the release tests' flags (-O3, prebuilt);
#   - for scale: fmt with <vector>, and nlohmann/json.
# Usage: bench/compile_time.sh [runs]. Needs g++ and the Debian packages of scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the README's first ```cpp block after "## Using it": the example every user starts from
awk '/^## Using it/{f=1; next} f && /^```cpp/{g=1; next} g && /^```/{exit} g' README.md >"$tmp/readme.cpp"
[ -s "$tmp/readme.cpp" ] || { echo "error: no C++ block under '## Using it' in README.md" >&2; exit 1; }
printf '#include <minigrad/minigrad.hpp>\nint main() { return 0; }\n' >"$tmp/include.cpp"
printf '#include <fmt/format.h>\n#include <vector>\nint main() { std::vector<int> v{1}; return static_cast<int>(fmt::format("{}", v[0]).size()); }\n' >"$tmp/fmt.cpp"
printf '#include <nlohmann/json.hpp>\nint main() { return 0; }\n' >"$tmp/json.cpp"
# the largest file of the unit-test binary (test_kernels_thrust.cpp, larger, needs CUDA's CCCL headers)
biggest=$(wc -l tests/test_*.cpp | grep -v -e ' total$' -e test_kernels_thrust | sort -n | tail -1 | awk '{print $2}')

blas=""  # as the CMake build defines it where OpenBLAS's cblas.h is found
echo '#include <cblas.h>' | g++ -E -x c++ - >/dev/null 2>&1 && blas="-DMINIGRAD_HAS_BLAS=1 -DMINIGRAD_HAS_OPENBLAS=1"
test_flags="-std=gnu++20 -O3 -DNDEBUG -fopenmp $blas -DMINIGRAD_PREBUILT -Iinclude -Itests -Iexamples/common -DMINIGRAD_DATA_DIR=\"data\" -DMINIGRAD_TEST_DATA_DIR=\"tests/data\""

# measure NAME FLAGS... SOURCE: prints "cpu_seconds peak_mb" (medians of the runs)
measure() {
  local cpu=() mem=()
  for ((r = 0; r < runs; ++r)); do
    /usr/bin/time -f '%U %S %M' -o "$tmp/time" g++ "$@" -c -o "$tmp/out.o" 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
    read -r user sys kb <"$tmp/time"
    cpu+=("$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')")
    mem+=("$((kb / 1024))")
  done
  local mid=$(((runs + 1) / 2))
  echo "$(printf '%s\n' "${cpu[@]}" | sort -g | sed -n "${mid}p") $(printf '%s\n' "${mem[@]}" | sort -g | sed -n "${mid}p")"
}
row() {
  local label=$1; shift
  local result
  result=$(measure "$@") || { echo "error: compiling for '$label' failed (above)" >&2; exit 1; }
  read -r cpu mb <<<"$result"
  printf '| %s | %s | %s |\n' "$label" "$cpu" "$mb"
}

echo "g++ $(g++ -dumpfullversion), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), median of $runs runs"
echo
echo "| translation unit | CPU s | peak MB |"
echo "| --- | --- | --- |"
row 'empty `main` + `#include <minigrad/minigrad.hpp>`, header-only, `g++ -O2`' -std=c++20 -O2 -Iinclude "$tmp/include.cpp"
row "the README's \"Using it\" example, header-only, \`g++ -O2\`" -std=c++20 -O2 -Iinclude "$tmp/readme.cpp"
row 'the same example in a CMake project linking `minigrad::prebuilt` (-O2)' -std=c++20 -O2 -DMINIGRAD_PREBUILT -Iinclude "$tmp/readme.cpp"
row '`src/prebuilt.cpp`, the prebuilt library'"'"'s first file, compiled once per such project (-O2)' -std=c++20 -O2 -DMINIGRAD_PREBUILT -Iinclude src/prebuilt.cpp
row '`src/prebuilt_2.cpp`, its second, compiled beside the first (-O2)' -std=c++20 -O2 -DMINIGRAD_PREBUILT -Iinclude src/prebuilt_2.cpp
# shellcheck disable=SC2086
row "the largest unit-test file, \`$biggest\`, as the release tests build it (-O3, prebuilt)" $test_flags "$biggest"
row 'for scale: `<fmt/format.h>` + `<vector>`' -std=c++20 -O2 "$tmp/fmt.cpp"
row 'for scale: `<nlohmann/json.hpp>`' -std=c++20 -O2 "$tmp/json.cpp"
