#!/usr/bin/env bash
# Every C++ block of README.md compiles: the first (the "Using it" program) is built and run as a
# user would (from a folder holding data/iris.csv); every later block, a fragment, is compiled in
# a function whose parameters give the names the README's text has introduced by then (model, opt,
# loss_fn, ...) and with the MLP of the first block. Where nvcc is given, the fragments are
# compiled by it, so that the lines that move models to mg::Cuda compile too; without it those
# lines are left out, and the script says so.
# Usage: tests/readme_blocks.sh README.md INCLUDE_DIR DATA_DIR WORK_DIR CXX [NVCC]
set -euo pipefail
readme=$1 include=$2 data=$3 work=$4 cxx=$5 nvcc=${6:-}
rm -rf "$work" && mkdir -p "$work/blocks" "$work/data"
cp "$data/iris.csv" "$work/data/"

# the ```cpp blocks, one file each: blocks/1.cpp, blocks/2.cpp, ...
awk -v dir="$work/blocks" '
  /^```cpp$/ { n++; inside = 1; next }
  /^```/ { inside = 0; next }
  inside { print > (dir "/" n ".cpp") }' "$readme"
count=$(find "$work/blocks" -name '*.cpp' | wc -l)
[ "$count" -ge 2 ] || { echo "error: found $count C++ blocks in $readme, expected the program and fragments" >&2; exit 1; }
grep -q 'int main' "$work/blocks/1.cpp" || { echo "error: the first C++ block of $readme is not a program" >&2; exit 1; }

echo "block 1: the program, built and run"
"$cxx" -std=c++20 -O1 -I"$include" "$work/blocks/1.cpp" -o "$work/program" -lfmt -pthread
(cd "$work" && ./program)
[ -s "$work/iris.safetensors" ] || { echo "error: the README program wrote no iris.safetensors" >&2; exit 1; }

# the MLP the first block defines, for the fragments that use it
mlp=$(awk '/^template <class B> struct MLP/ { on = 1 } on { print } on && /^};/ { exit }' "$work/blocks/1.cpp")
[ -n "$mlp" ] || { echo "error: no 'template <class B> struct MLP' in the first block" >&2; exit 1; }

# the fragments, each a function of one file (one compile: nvcc takes about a minute a file)
fragments="$work/fragments.cpp"
{
  echo '#include <minigrad/minigrad.hpp>'
  echo 'namespace mg = minigrad;'
  echo "$mlp"
  echo 'using Labels = mg::Tensor<mg::Cpu, std::int32_t>;'
  echo 'using Optimizer = decltype(mg::optim::SGD(std::declval<MLP<mg::Cpu>&>().parameters(), {.lr = 0.01}));'
} >"$fragments"
left_out=0
for ((i = 2; i <= count; ++i)); do
  body=$(cat "$work/blocks/$i.cpp")
  if [ -z "$nvcc" ] && grep -q 'mg::Cuda' <<<"$body"; then
    left_out=$((left_out + $(grep -c 'mg::Cuda' <<<"$body")))
    body=$(grep -v 'mg::Cuda' <<<"$body")
  fi
  {
    echo "// README block $i, with the names the README has introduced before it as parameters"
    echo "void fragment_$i(MLP<mg::Cpu>& model, Optimizer& opt, mg::data::Dataset iris, mg::nn::CrossEntropyLoss loss_fn,"
    echo '                 mg::Tensor<mg::Cpu> x_test, Labels y_test, mg::Tensor<mg::Cpu> logits, Labels labels,'
    echo '                 mg::Tensor<mg::Cpu> pred, mg::Tensor<mg::Cpu> target, mg::Tensor<mg::Cpu> weights) {'
    echo '{'
    echo "$body"
    echo '}'
    echo '}'
  } >>"$fragments"
done
if [ -n "$nvcc" ]; then
  echo "blocks 2-$count: fragments, compiled by nvcc"
  "$nvcc" -std=c++20 --extended-lambda --expt-relaxed-constexpr -diag-suppress=20208 -x cu -I"$include" -c "$fragments" -o "$work/fragments.o"
else
  echo "blocks 2-$count: fragments, compiled by $cxx ($left_out lines naming mg::Cuda left out: no nvcc here)"
  "$cxx" -std=c++20 -fsyntax-only -Wno-unused -I"$include" "$fragments"
fi
echo "all $count C++ blocks of README.md compile"
