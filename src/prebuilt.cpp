// The prebuilt library (CMake target minigrad::prebuilt): the parts of minigrad that every file
// would otherwise compile again, compiled once. A file built with MINIGRAD_PREBUILT defined (the
// target defines it for its users) declares these extern and links them from here: the CPU
// product kernels for float and double (below), the common ops on Cpu float tensors and the
// backward pass (the list in include/minigrad/prebuilt.hpp, which minigrad.hpp instantiates here),
// and the file formats' entry points (read_csv, load_safetensors, save_safetensors; config.hpp).
#define MINIGRAD_PREBUILT_SOURCE 1
#include <minigrad/minigrad.hpp>

namespace minigrad::detail {
template void gemm_builtin<float>(const kernels::GemmElement<float>&);
template void gemm_builtin<double>(const kernels::GemmElement<double>&);
}  // namespace minigrad::detail
