// How many threads the Cpu backend uses, and the loop that splits a large launch across them.
//
// Threads come from OpenMP (GCC's libgomp) where the including file is compiled with -fopenmp (the
// CMake target minigrad::minigrad adds it where OpenMP is found); without it every launch runs on
// the calling thread. Matrix products that go to OpenBLAS are split across the same OpenMP threads,
// each calling OpenBLAS with its own pool set to one thread: one pool of threads in all, so the two
// never compete for the cores (see Cpu::gemm_blas).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(MINIGRAD_HAS_BLAS)
#include <cblas.h>
#endif

#include "../error.hpp"

namespace minigrad {
namespace detail {

// 0 until first read: then MINIGRAD_NUM_THREADS, else the cores this process may run on.
inline std::atomic<int>& num_threads_setting() {
    static std::atomic<int> n{0};
    return n;
}

inline int cores_available() {
#if defined(_OPENMP)
    return omp_get_num_procs();  // honours the process's CPU affinity mask
#else
    const unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
#endif
}

inline int threads_from_environment() {
    const char* text = std::getenv("MINIGRAD_NUM_THREADS");
    if (!text || !*text) return cores_available();
    char* end = nullptr;
    const long n = std::strtol(text, &end, 10);
    if (*end != '\0' || n < 1 || n > 4096) {
        fail<ValueError>("MINIGRAD_NUM_THREADS is '{}', expected a whole number of threads from 1 to 4096", text);
    }
    return static_cast<int>(n);
}

// Keeps OpenBLAS's own pool at one thread (it would otherwise start a thread per core, following
// OPENBLAS_NUM_THREADS): minigrad's threads split the product instead. Once per process.
inline void blas_single_threaded() {
#if defined(MINIGRAD_HAS_OPENBLAS)
    static const bool once = (openblas_set_num_threads(1), true);
    (void)once;
#endif
}

}  // namespace detail

// The threads a large Cpu launch or matrix product may use (process-wide, as in PyTorch). Without
// OpenMP that is 1, whatever was set: every launch runs on the calling thread.
inline int get_num_threads() {
#if !defined(_OPENMP)
    return 1;
#else
    auto& setting = detail::num_threads_setting();
    int n = setting.load(std::memory_order_relaxed);
    if (n > 0) [[likely]] return n;
    n = detail::threads_from_environment();
    int unset = 0;
    return setting.compare_exchange_strong(unset, n) ? n : unset;  // unset: another thread set it first
#endif
}

// Sets the threads for every later Cpu launch and matrix product, from any thread. Launches already
// running keep the count they started with. 1 runs everything on the calling thread. Without OpenMP
// the count is still checked and kept, but has no effect (get_num_threads() stays 1).
inline void set_num_threads(int n) {
    if (n < 1) detail::fail<ValueError>("set_num_threads: argument #1 'n' is {}, expected at least 1", n);
    detail::num_threads_setting().store(n, std::memory_order_relaxed);
}

namespace detail {

// Launches whose work (indices times the work per index) is below this run on the calling thread:
// waking a second thread costs a few microseconds, as much as this much work. Measured with
// bench/cpu_thresholds.cpp on the 2-core build VM (docs/design.md, "Threads in a launch").
inline constexpr std::int64_t parallel_min_work = std::int64_t{1} << 16;
// The same for a BLAS product, in multiply-adds (m*n*k): BLAS does about 40 of them in the time a
// launch does one element.
inline constexpr std::int64_t gemm_parallel_min_work = std::int64_t{1} << 20;

// body(begin, end) over [0, n) split into one contiguous range per thread (thread t gets
// [n t / T, n (t+1) / T)), or one call on this thread when the work is small or one thread is set.
// Each range is a function of n and the team size only, so a fixed thread count splits the same way
// every time.
template <class Body>
void parallel_ranges(std::int64_t n, std::int64_t work, const Body& body, std::int64_t min_work = parallel_min_work) {
#if defined(_OPENMP)
    const int threads = work >= min_work ? get_num_threads() : 1;
    if (threads > 1 && n > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const std::int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
            const std::int64_t begin = n * t / team, end = n * (t + 1) / team;
            if (begin < end) body(begin, end);
        }
        return;
    }
#else
    (void)work, (void)min_work;
#endif
    body(std::int64_t{0}, n);
}

}  // namespace detail
}  // namespace minigrad
