// The prebuilt library's second file (the first is src/prebuilt.cpp, which says what the library
// is): the CPU product kernels for float and double, and the entries of
// include/minigrad/prebuilt.hpp's list marked 2, among them a compiled step's program on the CPU
// (the loop over every functor of CompiledFunctors). Two files, built side by side, each about
// half the work and half the peak memory of one.
#define MINIGRAD_PREBUILT_SOURCE 2
#include <minigrad/minigrad.hpp>

namespace minigrad::detail {
template void gemm_builtin<float>(const kernels::GemmElement<float>&);
template void gemm_builtin<double>(const kernels::GemmElement<double>&);
}  // namespace minigrad::detail
