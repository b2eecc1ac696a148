// Build-wide switches: the host/device annotation and the internal assert.
#pragma once

#include <cstdio>
#include <cstdlib>

// Kernels are written once as functors and run on the host (CpuBackend, tests) and on the GPU
// (CudaBackend). The annotation is empty for a host compiler, so g++ never sees CUDA keywords.
#if defined(__CUDACC__)
#define MINIGRAD_HD __host__ __device__
#else
#define MINIGRAD_HD
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
