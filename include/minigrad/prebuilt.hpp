// What the prebuilt library (CMake target minigrad::prebuilt: src/prebuilt.cpp and
// src/prebuilt_2.cpp) compiles once for every file that links it: the common ops on Cpu tensors of
// float, each with its backward node and the CPU loops it launches, the backward pass, and a
// compiled step's program on the CPU. A file built with MINIGRAD_PREBUILT sees each as an explicit
// instantiation declaration (`extern template`) and does not compile it again; the library's file,
// which defines MINIGRAD_PREBUILT_SOURCE, instantiates the same list. An op not on the list is
// compiled where it is used, as in a header-only build: the list changes compile time, never
// behaviour. (The README example linking minigrad::prebuilt: 5.3 s and 426 MB before the first four
// entries, 3.7 s and 376 MB after.)
//
// Only where the file's inline code is the library's: not under MINIGRAD_NO_CPU_DISPATCH or with
// AVX2 on for the whole file (-mavx2, -march=native), whose CPU loops differ; such a file compiles
// its own copies, as it does gemm_builtin's (backend/cpu_gemm.hpp). Included last by minigrad.hpp.
#pragma once

#include <cstdint>

#include "autograd.hpp"
#include "backend/cpu.hpp"
#include "capture/graph.hpp"
#include "ops/conv.hpp"
#include "ops/cross_entropy.hpp"
#include "ops/dropout.hpp"
#include "ops/elementwise.hpp"
#include "ops/index.hpp"
#include "ops/layer_norm.hpp"
#include "ops/loss.hpp"
#include "ops/matmul.hpp"
#include "ops/pool.hpp"
#include "ops/reduce.hpp"
#include "ops/softmax.hpp"
#include "ops/unary.hpp"

// The library compiles the list in two files built side by side, src/prebuilt.cpp
// (MINIGRAD_PREBUILT_SOURCE 1) and src/prebuilt_2.cpp (2), about half the work each: an
// entry names its file, and the other file declares it extern.
#if defined(MINIGRAD_PREBUILT_SOURCE) && MINIGRAD_PREBUILT_SOURCE == 1
#define MINIGRAD_PREBUILT_IN_1(...) template __VA_ARGS__;
#define MINIGRAD_PREBUILT_IN_2(...) extern template __VA_ARGS__;
#elif defined(MINIGRAD_PREBUILT_SOURCE)
#define MINIGRAD_PREBUILT_IN_1(...) extern template __VA_ARGS__;
#define MINIGRAD_PREBUILT_IN_2(...) template __VA_ARGS__;
#elif defined(MINIGRAD_PREBUILT) && !defined(MINIGRAD_NO_CPU_DISPATCH) && !defined(__AVX2__)
#define MINIGRAD_PREBUILT_IN_1(...) extern template __VA_ARGS__;
#define MINIGRAD_PREBUILT_IN_2(...) extern template __VA_ARGS__;
#else
#define MINIGRAD_PREBUILT_IN_1(...)
#define MINIGRAD_PREBUILT_IN_2(...)
#endif
#define MINIGRAD_PREBUILT_INSTANCE(file, ...) MINIGRAD_PREBUILT_IN_##file(__VA_ARGS__)

namespace minigrad {
namespace detail::prebuilt {
using F = Tensor<Cpu, float>;
using I32 = Tensor<Cpu, std::int32_t>;
using I64 = Tensor<Cpu, std::int64_t>;
}  // namespace detail::prebuilt

// Only functions whose return type is written out: an explicit instantiation declaration does not
// keep a file from compiling a function whose type is deduced (`auto`), nor an inline one.
#define MINIGRAD_PREBUILT_UNARY(op) MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F op<Cpu, float>(const detail::prebuilt::F&))
MINIGRAD_PREBUILT_UNARY(relu)
MINIGRAD_PREBUILT_UNARY(sigmoid)
MINIGRAD_PREBUILT_UNARY(tanh)
MINIGRAD_PREBUILT_UNARY(exp)
MINIGRAD_PREBUILT_UNARY(log)
MINIGRAD_PREBUILT_UNARY(neg)
MINIGRAD_PREBUILT_UNARY(sqrt)
MINIGRAD_PREBUILT_UNARY(abs)
MINIGRAD_PREBUILT_UNARY(sum)
MINIGRAD_PREBUILT_UNARY(mean)
#undef MINIGRAD_PREBUILT_UNARY
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F gelu<Cpu, float>(const detail::prebuilt::F&, std::string_view))

#define MINIGRAD_PREBUILT_BINARY(op)                                                                                  \
    MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F op<Cpu, float>(const detail::prebuilt::F&, const detail::prebuilt::F&)) \
    MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F op<Cpu, float>(const detail::prebuilt::F&, float))
MINIGRAD_PREBUILT_BINARY(add)
MINIGRAD_PREBUILT_BINARY(sub)
MINIGRAD_PREBUILT_BINARY(mul)
MINIGRAD_PREBUILT_BINARY(div)
#undef MINIGRAD_PREBUILT_BINARY

MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F matmul<Cpu, float>(const detail::prebuilt::F&, const detail::prebuilt::F&))
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F linear<Cpu, float>(const detail::prebuilt::F&, const detail::prebuilt::F&, const detail::prebuilt::F&))
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F sum<Cpu, float>(const detail::prebuilt::F&, std::int64_t, bool))
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F mean<Cpu, float>(const detail::prebuilt::F&, std::int64_t, bool))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F softmax<Cpu, float>(const detail::prebuilt::F&, std::int64_t))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F log_softmax<Cpu, float>(const detail::prebuilt::F&, std::int64_t))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F dropout<Cpu, float>(const detail::prebuilt::F&, double, bool, Generator&))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F mse_loss<Cpu, float>(const detail::prebuilt::F&, const detail::prebuilt::F&, Reduction))
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F cross_entropy<Cpu, float, std::int32_t>(const detail::prebuilt::F&, const detail::prebuilt::I32&,
                                                                                      const CrossEntropyOptions&))
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F cross_entropy<Cpu, float, std::int64_t>(const detail::prebuilt::F&, const detail::prebuilt::I64&,
                                                                                      const CrossEntropyOptions&))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F conv2d<Cpu, float>(const detail::prebuilt::F&, const detail::prebuilt::F&, const detail::prebuilt::F&,
                                                                  Conv2dOptions))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F max_pool2d<Cpu, float>(const detail::prebuilt::F&, Size2, Size2, Size2))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F layer_norm<Cpu, float>(const detail::prebuilt::F&, const detail::prebuilt::F&, const detail::prebuilt::F&,
                                                                      double))
MINIGRAD_PREBUILT_INSTANCE(2, detail::prebuilt::F embedding<Cpu, std::int64_t, float>(const detail::prebuilt::I64&, const detail::prebuilt::F&,
                                                                                   std::optional<std::int64_t>))
// cross_entropy of (N, C, d...) logits: its permute and reshape (0.8 s of the README example's 5.7 s
// when it was the one entry)
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F detail::cross_entropy_over_dims<Cpu, float, std::int32_t>(const detail::prebuilt::F&,
                                                                                                      const detail::prebuilt::I32&,
                                                                                                      const CrossEntropyOptions&))
MINIGRAD_PREBUILT_INSTANCE(1, detail::prebuilt::F detail::cross_entropy_over_dims<Cpu, float, std::int64_t>(const detail::prebuilt::F&,
                                                                                                      const detail::prebuilt::I64&,
                                                                                                      const CrossEntropyOptions&))
MINIGRAD_PREBUILT_INSTANCE(1, void detail::run_backward<Cpu, float>(const std::shared_ptr<detail::TensorImpl<Cpu, float>>&))

// A compiled step's program on the CPU (StepGraph in StepMode::compiled): every functor's loop
MINIGRAD_PREBUILT_INSTANCE(2, void detail::launch_program_block<Cpu>(const detail::StepProgram&, int))
MINIGRAD_PREBUILT_INSTANCE(2, bool detail::launch_program_grid<Cpu>(const detail::StepProgram&, int, int))
MINIGRAD_PREBUILT_INSTANCE(2, int detail::program_grid_size<Cpu>(int))

}  // namespace minigrad

// The CUDA half, minigrad::cuda_prebuilt (src/prebuilt_cuda.cu, built where nvcc is found), for
// files nvcc compiles: a compiled step's program on the GPU, the kernel over every functor of
// CompiledFunctors (about 7 s of cicc and 12 s of ptxas in each file that uses StepGraph<Cuda>),
// for the GPU architectures that library was built for (CMAKE_CUDA_ARCHITECTURES, 90 by default).
// Its file defines MINIGRAD_PREBUILT_CUDA_SOURCE; a file built with MINIGRAD_PREBUILT_CUDA
// declares the same entries extern.
#if defined(__CUDACC__)
#if defined(MINIGRAD_PREBUILT_CUDA_SOURCE)
#define MINIGRAD_PREBUILT_CUDA_INSTANCE(...) template __VA_ARGS__;
#elif defined(MINIGRAD_PREBUILT_CUDA)
#define MINIGRAD_PREBUILT_CUDA_INSTANCE(...) extern template __VA_ARGS__;
#else
#define MINIGRAD_PREBUILT_CUDA_INSTANCE(...)
#endif
namespace minigrad {
MINIGRAD_PREBUILT_CUDA_INSTANCE(void detail::launch_program_block<Cuda>(const detail::StepProgram&, int))
MINIGRAD_PREBUILT_CUDA_INSTANCE(bool detail::launch_program_grid<Cuda>(const detail::StepProgram&, int, int))
MINIGRAD_PREBUILT_CUDA_INSTANCE(int detail::program_grid_size<Cuda>(int))
}  // namespace minigrad
#undef MINIGRAD_PREBUILT_CUDA_INSTANCE
#endif

#undef MINIGRAD_PREBUILT_INSTANCE
#undef MINIGRAD_PREBUILT_IN_1
#undef MINIGRAD_PREBUILT_IN_2
