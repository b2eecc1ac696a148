// The CPU's instruction sets: which loops are compiled twice (the baseline ISA and AVX2+FMA), the
// run-time check that picks one, and the vector types the product kernels use.
#pragma once

// On x86-64 with GCC or Clang the hot loops are compiled twice, for the baseline ISA and for
// AVX2+FMA, and the second is used when the CPU has it (checked once). Same source, same results up
// to rounding; a -march=native build gets the same effect without the check.
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && \
    !defined(__AVX2__) && !defined(MINIGRAD_NO_CPU_DISPATCH)
#define MINIGRAD_CPU_DISPATCH 1
#define MINIGRAD_TARGET_AVX2 [[gnu::target("avx2,fma")]]
#else
#define MINIGRAD_CPU_DISPATCH 0
#endif

namespace minigrad::detail {

#if MINIGRAD_CPU_DISPATCH
inline bool cpu_has_avx2_fma() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}
#endif

// Lanes of T as a GCC/Clang vector (4 for the baseline build, 8 for AVX2); GCC drops vector_size
// on a dependent alias, hence these.
template <class T, int Lanes>
struct Vec;
template <>
struct Vec<float, 4> {
    typedef float type __attribute__((vector_size(16)));
};
template <>
struct Vec<float, 8> {
    typedef float type __attribute__((vector_size(32)));
};
template <>
struct Vec<double, 4> {
    typedef double type __attribute__((vector_size(32)));
};
template <>
struct Vec<double, 8> {
    typedef double type __attribute__((vector_size(64)));
};

}  // namespace minigrad::detail
