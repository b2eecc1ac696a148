// What the prebuilt library (CMake target minigrad::prebuilt: src/prebuilt.cpp and
// src/prebuilt_2.cpp) compiles once for every file that links it: the common ops on Cpu tensors of
// float (the list in prebuilt_list.hpp), each with its backward node and the CPU loops it launches,
// the backward pass, and a compiled step's program on the CPU; its CUDA half, minigrad::cuda_prebuilt,
// the same for Cuda tensors (at the end). A file built with MINIGRAD_PREBUILT sees each as an explicit
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
#include <initializer_list>

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
// The ops (prebuilt_list.hpp)
#define MINIGRAD_PB Cpu
#define MINIGRAD_PREBUILT_OP MINIGRAD_PREBUILT_INSTANCE
#include "prebuilt_list.hpp"
#undef MINIGRAD_PREBUILT_OP
#undef MINIGRAD_PB

// A compiled step's program on the CPU (StepGraph in StepMode::compiled): every functor's loop
MINIGRAD_PREBUILT_INSTANCE(2, void detail::launch_program_block<Cpu>(const detail::StepProgram&, int))
MINIGRAD_PREBUILT_INSTANCE(2, bool detail::launch_program_grid<Cpu>(const detail::StepProgram&, int, int))
MINIGRAD_PREBUILT_INSTANCE(2, int detail::program_grid_size<Cpu>(int))

}  // namespace minigrad

// The CUDA half, minigrad::cuda_prebuilt (src/prebuilt_cuda.cu and src/prebuilt_cuda_2.cu, built
// where nvcc is found), for files nvcc compiles: the same ops on Cuda tensors of float, with their
// kernels, the backward pass, and a compiled step's program on the GPU (the kernel over every
// functor of CompiledFunctors: about 25 s of cicc and ptxas in each file that uses StepGraph<Cuda>;
// the Iris example under nvcc, cicc 14.4 -> 6.5 s and ptxas 17.2 -> 1.2 s). It holds code for the GPU architectures of the build that made it
// (CMAKE_CUDA_ARCHITECTURES, 90 unless set there), which it passes on as
// MINIGRAD_PREBUILT_CUDA_ARCHS: a file built for others fails the static_assert below. Its files
// define MINIGRAD_PREBUILT_CUDA_SOURCE (1 or 2); a file built with MINIGRAD_PREBUILT_CUDA declares
// the same entries extern.
#if defined(__CUDACC__)
#include "backend/cuda.cuh"
#if defined(MINIGRAD_PREBUILT_CUDA) && !defined(MINIGRAD_PREBUILT_CUDA_SOURCE) && defined(MINIGRAD_PREBUILT_CUDA_ARCHS) && \
    defined(__CUDA_ARCH_LIST__)
namespace minigrad::detail {
// The same set of architectures (nvcc's __CUDA_ARCH_LIST__, 900 for sm_90), in any order.
constexpr bool same_cuda_archs(std::initializer_list<int> a, std::initializer_list<int> b) {
    const auto within = [](std::initializer_list<int> x, std::initializer_list<int> y) {
        for (int v : x) {
            bool found = false;
            for (int w : y) found = found || v == w;
            if (!found) return false;
        }
        return true;
    };
    return within(a, b) && within(b, a);
}
static_assert(same_cuda_archs({MINIGRAD_PREBUILT_CUDA_ARCHS}, {__CUDA_ARCH_LIST__}),
              "minigrad: this file is compiled for other GPU architectures than minigrad::cuda_prebuilt holds code for: build it "
              "with the CMAKE_CUDA_ARCHITECTURES minigrad was built with, or link minigrad::prebuilt alone");
}  // namespace minigrad::detail
#endif
#if defined(MINIGRAD_PREBUILT_CUDA_SOURCE) && MINIGRAD_PREBUILT_CUDA_SOURCE == 1
#define MINIGRAD_PREBUILT_CUDA_IN_1(...) template __VA_ARGS__;
#define MINIGRAD_PREBUILT_CUDA_IN_2(...) extern template __VA_ARGS__;
#elif defined(MINIGRAD_PREBUILT_CUDA_SOURCE)
#define MINIGRAD_PREBUILT_CUDA_IN_1(...) extern template __VA_ARGS__;
#define MINIGRAD_PREBUILT_CUDA_IN_2(...) template __VA_ARGS__;
#elif defined(MINIGRAD_PREBUILT_CUDA) && !defined(MINIGRAD_NO_CPU_DISPATCH) && !defined(__AVX2__)
#define MINIGRAD_PREBUILT_CUDA_IN_1(...) extern template __VA_ARGS__;
#define MINIGRAD_PREBUILT_CUDA_IN_2(...) extern template __VA_ARGS__;
#else
#define MINIGRAD_PREBUILT_CUDA_IN_1(...)
#define MINIGRAD_PREBUILT_CUDA_IN_2(...)
#endif
#define MINIGRAD_PREBUILT_CUDA_INSTANCE(file, ...) MINIGRAD_PREBUILT_CUDA_IN_##file(__VA_ARGS__)
namespace minigrad {
#define MINIGRAD_PB Cuda
#define MINIGRAD_PREBUILT_OP MINIGRAD_PREBUILT_CUDA_INSTANCE
#include "prebuilt_list.hpp"
#undef MINIGRAD_PREBUILT_OP
#undef MINIGRAD_PB
MINIGRAD_PREBUILT_CUDA_INSTANCE(2, void detail::launch_program_block<Cuda>(const detail::StepProgram&, int))
MINIGRAD_PREBUILT_CUDA_INSTANCE(2, bool detail::launch_program_grid<Cuda>(const detail::StepProgram&, int, int))
MINIGRAD_PREBUILT_CUDA_INSTANCE(2, int detail::program_grid_size<Cuda>(int))
}  // namespace minigrad
#undef MINIGRAD_PREBUILT_CUDA_INSTANCE
#undef MINIGRAD_PREBUILT_CUDA_IN_1
#undef MINIGRAD_PREBUILT_CUDA_IN_2
#endif

#undef MINIGRAD_PREBUILT_INSTANCE
#undef MINIGRAD_PREBUILT_IN_1
#undef MINIGRAD_PREBUILT_IN_2
