// Build-wide switches: the host/device annotation and the internal assert.
#pragma once

#include <cstdio>
#include <cstdlib>

// fmt turns its constexpr support off under nvcc but keeps its consteval format-string check, which
// then cannot compile; with constexpr on, both work (checked with nvcc 13 and fmt 9). This must
// precede fmt's first inclusion: the CMake target also defines it for CUDA sources.
#if defined(__CUDACC__) && !defined(FMT_USE_CONSTEXPR)
#define FMT_USE_CONSTEXPR 1
#endif

// Kernels are written once as functors and run on the host (CpuBackend, tests) and on the GPU
// (CudaBackend). The annotation is empty for a host compiler, so g++ never sees CUDA keywords.
#if defined(__CUDACC__)
#define MINIGRAD_HD __host__ __device__
#else
#define MINIGRAD_HD
#endif

// MINIGRAD_HD, and always inlined: for per-element code that a host caller compiled for AVX2 needs in
// its own body (a function left out of line would be compiled for the baseline CPU).
#if defined(__CUDACC__)
#define MINIGRAD_HD_INLINE __host__ __device__ __forceinline__
#else
#define MINIGRAD_HD_INLINE [[gnu::always_inline]] inline
#endif

// Before a host loop whose iterations are independent but whose pointers the compiler cannot
// prove apart (an op's outputs and inputs): it vectorises with no run-time overlap checks, which
// GCC gives up on past ten pointers (the LSTM cell's loops). Nothing in device code.
#if defined(__CUDA_ARCH__)
#define MINIGRAD_IVDEP
#elif defined(__clang__)
#define MINIGRAD_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define MINIGRAD_IVDEP _Pragma("GCC ivdep")
#else
#define MINIGRAD_IVDEP
#endif

// Functions that are not templates but cost every file that includes them (the file-format entry
// points read_csv, load_safetensors and save_safetensors; the message formatter; the compiled
// step's compile_tape) are defined in their headers, inline, for a header-only build. A file built
// with MINIGRAD_PREBUILT (it links minigrad::prebuilt) sees their declarations only and calls the
// library's copy, compiled once in src/prebuilt.cpp, which defines MINIGRAD_PREBUILT_SOURCE: each
// definition stands in `#if MINIGRAD_DEFINE_PREBUILT` and is declared MINIGRAD_PREBUILT_INLINE. The
// library has two files, built side by side (src/prebuilt.cpp and src/prebuilt_2.cpp, which define
// MINIGRAD_PREBUILT_SOURCE 1 and 2): these definitions are the first one's.
#if defined(MINIGRAD_PREBUILT_SOURCE)
#if MINIGRAD_PREBUILT_SOURCE == 1
#define MINIGRAD_DEFINE_PREBUILT 1
#else
#define MINIGRAD_DEFINE_PREBUILT 0
#endif
#elif defined(MINIGRAD_PREBUILT)
#define MINIGRAD_DEFINE_PREBUILT 0
#else
#define MINIGRAD_DEFINE_PREBUILT 1
#endif
#if defined(MINIGRAD_PREBUILT) || defined(MINIGRAD_PREBUILT_SOURCE)
#define MINIGRAD_PREBUILT_INLINE  // one definition, in the library
#else
#define MINIGRAD_PREBUILT_INLINE inline
#endif

namespace minigrad::detail {
[[noreturn]] inline void assert_fail(const char* cond, const char* file, int line) {
    std::fprintf(stderr, "minigrad: internal assertion '%s' failed at %s:%d\n", cond, file, line);
    std::abort();
}
}  // namespace minigrad::detail

// Internal invariants only; user mistakes throw minigrad::Error instead.
#ifdef NDEBUG
#define MINIGRAD_ASSERT(cond) ((void)0)
#else
#define MINIGRAD_ASSERT(cond) \
    ((cond) ? (void)0 : ::minigrad::detail::assert_fail(#cond, __FILE__, __LINE__))
#endif
