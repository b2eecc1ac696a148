// The prebuilt library (CMake target minigrad::prebuilt): the parts of minigrad that every file
// would otherwise compile again, compiled once. A file built with MINIGRAD_PREBUILT defined (the
// target defines it for its users) declares these instantiations extern and links them from here.
#include <minigrad/minigrad.hpp>

namespace minigrad::detail {
template void gemm_builtin<float>(const kernels::GemmElement<float>&);
template void gemm_builtin<double>(const kernels::GemmElement<double>&);
}  // namespace minigrad::detail
