// The prebuilt library (CMake target minigrad::prebuilt): the parts of minigrad that every file
// would otherwise compile again, compiled once. A file built with MINIGRAD_PREBUILT defined (the
// target defines it for its users) declares these extern and links them from here: the CPU
// product kernels for float and double, cross_entropy's (N, C, d...) reshaping for float, and the
// file formats' entry points (read_csv, load_safetensors, save_safetensors; see config.hpp).
#define MINIGRAD_PREBUILT_SOURCE 1
#include <minigrad/minigrad.hpp>

namespace minigrad::detail {
template void gemm_builtin<float>(const kernels::GemmElement<float>&);
template void gemm_builtin<double>(const kernels::GemmElement<double>&);
template Tensor<Cpu, float> cross_entropy_over_dims(const Tensor<Cpu, float>&, const Tensor<Cpu, std::int64_t>&, const CrossEntropyOptions&);
template Tensor<Cpu, float> cross_entropy_over_dims(const Tensor<Cpu, float>&, const Tensor<Cpu, std::int32_t>&, const CrossEntropyOptions&);
}  // namespace minigrad::detail
