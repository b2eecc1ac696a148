// CpuBackend: plain C++ on the host. Tensor storage is host memory from the caching allocator;
// kernels are the shared functors of kernels.hpp run in a loop (split across threads when large,
// see cpu_threads.hpp), except matmul, which has cache-friendly loops of its own for small shapes
// and goes to BLAS (cblas_sgemm/dgemm) for large ones where minigrad was built with it.
//
// Graphs: a StepGraph<Cpu> records its step's launches as a tape (detail::CpuTape) and replays the
// tape, the CPU's counterpart of a CUDA graph (see "Graph capture" in docs/design.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <latch>
#include <limits>
#include <new>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../counters.hpp"
#include "../error.hpp"
#include "caching_allocator.hpp"
#include "cpu_threads.hpp"
#include "kernels.hpp"
#include "tape.hpp"

namespace minigrad {

struct Cuda;  // declared for every compiler so mixing backends gives a readable compile error

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

namespace detail {
// What the machine can still give: MemAvailable + SwapFree and MemTotal + SwapTotal from
// /proc/meminfo (known = false where there is none).
struct HostMemory {
    bool known = false;
    std::size_t available_bytes = 0;
    std::size_t total_bytes = 0;
};
inline HostMemory host_memory() {
    HostMemory mem;
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return mem;
    char key[64];
    unsigned long long kib = 0;
    int found = 0;
    while (std::fscanf(f, "%63s %llu kB", key, &kib) == 2) {
        const std::string_view k(key);
        if (k == "MemAvailable:" || k == "SwapFree:") mem.available_bytes += kib * 1024, ++found;
        if (k == "MemTotal:" || k == "SwapTotal:") mem.total_bytes += kib * 1024, ++found;
    }
    std::fclose(f);
    mem.known = found == 4;
    return mem;
}

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
}  // namespace detail

namespace detail {
// A captured Cpu step: the primitives the step launched, in order, each holding its arguments by
// value, as a CUDA graph holds its kernels' arguments. A replay runs the same kernels on the same
// memory and none of the step's host work: no autograd node or tensor made, no argument check, no
// allocator call. Recording is per thread: the capturing thread's launches only. In compiled mode
// each primitive also appends its record to detail::recording_tape() (tape.hpp).
struct CpuTape {
    std::vector<std::function<void()>> ops;
    template <class F>
    void add(F&& replay) {
        ops.emplace_back(std::forward<F>(replay));
    }
};
inline CpuTape*& cpu_recording() {
    thread_local CpuTape* tape = nullptr;
    return tape;
}
}  // namespace detail

struct Cpu {
    static constexpr std::string_view name = "Cpu";
    static constexpr bool is_host = true;  // its storage can be read by host code directly
    static constexpr bool supports_graphs = true;  // StepGraph records a tape of launches (detail::CpuTape)
    using GraphHandle = detail::CpuTape*;

    // This thread's cache: no lock on the hot path. A block freed by another thread than the one
    // that allocated it joins the freeing thread's cache; a thread's cache is given back to the
    // system when the thread ends.
    static detail::CachingAllocator& allocator() {
        thread_local ThreadCache cache;
        live_cache() = &cache.allocator;
        return cache.allocator;
    }

    // Host memory for tensor storage. A request larger than the memory the machine could still
    // give is refused up front: with overcommit, malloc would succeed and the first write would
    // bring the kernel's OOM killer instead of an error.
    static void* raw_allocate(std::size_t bytes) {
        if (bytes >= (std::size_t{64} << 20)) {
            const auto mem = detail::host_memory();
            if (mem.known && bytes > mem.available_bytes) out_of_memory(bytes, mem);
        }
        void* p = std::aligned_alloc(detail::CachingAllocator::granule, bytes);
        if (!p) out_of_memory(bytes, detail::host_memory());
        return p;
    }
    [[noreturn]] static void out_of_memory(std::size_t bytes, const detail::HostMemory& mem) {
        if (!mem.known) {
            minigrad::detail::fail<OutOfMemoryError>("out of memory: tried to allocate {:.2f} MiB on cpu", bytes / 1048576.0);
        }
        minigrad::detail::fail<OutOfMemoryError>(
            "out of memory: tried to allocate {:.2f} MiB on cpu ({:.2f} MiB available of {:.2f} MiB total, swap included)",
            bytes / 1048576.0, mem.available_bytes / 1048576.0, mem.total_bytes / 1048576.0);
    }

    static void* allocate(std::size_t bytes, int device) {
        if (device != 0) [[unlikely]] bad_device(device);
        if (detail::CachingAllocator* cache = live_cache()) [[likely]] return cache->allocate(bytes);
        if (thread_cache_gone()) {
            ++counters().storage_allocs;
            return raw_allocate(detail::CachingAllocator::round_up(bytes));
        }
        return allocator().allocate(bytes);
    }
    // For long-lived state made between steps (see CachingAllocator::allocate's reuse).
    static void* allocate_state(std::size_t bytes, int device) {
        if (device != 0) [[unlikely]] bad_device(device);
        if (thread_cache_gone()) return allocate(bytes, device);
        return allocator().allocate(bytes, /*reuse=*/false);
    }
    static void deallocate(void* p, std::size_t bytes, int /*device*/) {
        if (detail::CachingAllocator* cache = live_cache()) [[likely]] return cache->deallocate(p, bytes);
        if (thread_cache_gone()) {
            if (p) ++counters().storage_frees;
            return raw_release(p);
        }
        allocator().deallocate(p, bytes);
    }
    static int current_device() { return 0; }

    // Copies in from host memory / out to host memory / within this backend.
    // Inside a captured step an upload or a download is refused, as on CUDA: the tape cannot hold a
    // host buffer that may be gone at replay, and a read would see values the replays change.
    static void upload(void* dst, const void* src, std::size_t bytes, int device) {
        if (detail::cpu_recording()) [[unlikely]] refuse_during_capture(device, "copying host memory into a tensor");
        if (bytes) std::memcpy(dst, src, bytes);
    }
    static void download(void* dst, const void* src, std::size_t bytes, int device) {
        if (detail::cpu_recording()) [[unlikely]] refuse_during_capture(device, "reading a tensor on the host");
        if (bytes) std::memcpy(dst, src, bytes);
    }
    static void copy(void* dst, const void* src, std::size_t bytes, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_copy(dst, src, bytes);
            return tape->add([=] { copy(dst, src, bytes, 0); });
        }
        if (bytes) std::memcpy(dst, src, bytes);
    }
    // Host work that reads tensor data (an index check): run now, or at every replay when captured.
    template <class F>
    static void host_work(const F& f, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            if (auto* records = detail::recording_tape())
                records->refuse("it runs work on the host inside the step (an MPI all-reduce, or a check the host makes)");
            return tape->add(f);
        }
        f();
    }
    static void synchronize(int /*device*/) {}

    // f(i) for i < n. A launch is counted once, on the calling thread; worker threads (large
    // launches only) run f over their own index range and touch no per-thread state of minigrad.
    template <class F>
    static void launch(std::int64_t n, const F& f, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_each(n, f);
            return tape->add([n, f] { launch(n, f, 0); });
        }
        ++counters().kernel_launches;
        run_all(n, f);
    }

    // c (m, n) = op(a) op(b) [+ bias (n)], then f(i) for every i < m * n, where f reads c only at i:
    // an activation as the product's epilogue, or an activation's gradient after the product that
    // makes its dy. One launch (kernels::GemmThen when recorded); here the product's kernel, then
    // f's loop over c while it is in cache.
    template <class T, class F>
    static void gemm_then(const kernels::GemmElement<T>& g, const F& f, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_each(g.m * g.n, kernels::GemmThen<T, F>{g, f});
            return tape->add([g, f] { gemm_then(g, f, 0); });
        }
        MINIGRAD_ASSERT(!g.a_sums);
        ++counters().kernel_launches;
        run_gemm(g);
        run_all(g.m * g.n, f);
    }

    // c (m, n) = op(a) op(b) [+ bias (n)], written or added, and a's column sums where asked;
    // shapes as kernels::GemmElement. One launch, the column sums included (kernels::GemmRowSums
    // when recorded). b is transposed into scratch when it is stored (n, k), so that its rows are
    // contiguous. For the narrow outputs of small models (n <= 16, known at compile time) the
    // built-in kernel holds a block of c in registers, vectorised along c's rows or, for a weight
    // gradient, down its columns (gemm_fixed_width). Where BLAS is built in, products with outputs
    // wider than 16 columns and at least blas_min_work multiply-adds (m*n*k) go to it; narrower
    // outputs stay on the register-blocked kernel, which measured as fast as OpenBLAS there at
    // every size tried.
    template <class T>
    static void gemm(const kernels::GemmElement<T>& g, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            if (g.a_sums)
                detail::record_each(g.m * (g.n + 1), kernels::GemmRowSums<T>{g});
            else
                detail::record_each(g.m * g.n, g);
            return tape->add([g] { gemm(g, 0); });
        }
        ++counters().kernel_launches;
        run_gemm(g);
    }

    // Below this many multiply-adds minigrad's own loops beat OpenBLAS (its call and packing cost
    // more than the product); measured with bench/cpu_thresholds.cpp, numbers in docs/design.md.
    static constexpr std::int64_t blas_min_work = std::int64_t{1} << 12;

    // The two matrix kernels, public so that tests and bench/cpu_thresholds.cpp can compare them;
    // neither counts a launch. gemm_builtin runs on the calling thread and computes a_sums too;
    // gemm_blas ignores a_sums.
    template <class T>
    static void gemm_builtin(const kernels::GemmElement<T>& g) {
#if MINIGRAD_CPU_DISPATCH
        if (detail::cpu_has_avx2_fma()) return gemm_avx2(g);
#endif
        gemm_body<T, plain_lanes>(g);
    }
#if defined(MINIGRAD_HAS_BLAS)
    // c = op(a) op(b) (beta 0) or c += op(a) op(b) (beta 1); a bias is put into c's rows first
    // (written or added) and BLAS then adds to it. Row-major: a stored (m,k) has leading dimension
    // k, stored transposed (k,m) it has m; likewise b. Threads: minigrad's own (OpenMP), each making
    // a single-threaded BLAS call on its block of c's rows (or columns, when c has fewer rows than
    // columns). OpenBLAS's own pool stays at one thread: its workers and OpenMP's, each spinning
    // while the other works, made a product after a threaded launch 20x slower (docs/design.md).
    template <class T>
    static void gemm_blas(const kernels::GemmElement<T>& g) {
        if (g.m == 0 || g.n == 0) return;
        detail::blas_single_threaded();
        const std::int64_t m = g.m, n = g.n, k = g.k;
        const bool by_rows = m >= n;
        detail::parallel_ranges(by_rows ? m : n, m * n * k, [&g, m, n, k, by_rows](std::int64_t begin, std::int64_t end) {
            const std::int64_t r0 = by_rows ? begin : 0, r1 = by_rows ? end : m;
            const std::int64_t c0 = by_rows ? 0 : begin, c1 = by_rows ? n : end;
            if (g.bias) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    T* __restrict cr = g.c + r * n;
                    for (std::int64_t j = c0; j < c1; ++j) cr[j] = kernels::write(cr[j], g.bias[j], g.overwrite);
                }
            }
            const T beta = g.overwrite && !g.bias ? T(0) : T(1);
            const T* a = g.a + (g.trans_a ? r0 : r0 * k);  // op(a) rows r0..r1
            const T* b = g.b + (g.trans_b ? c0 * k : c0);  // op(b) columns c0..c1
            const auto ta = g.trans_a ? CblasTrans : CblasNoTrans, tb = g.trans_b ? CblasTrans : CblasNoTrans;
            const auto lda = static_cast<blasint_type>(g.trans_a ? m : k), ldb = static_cast<blasint_type>(g.trans_b ? k : n);
            const auto bm = static_cast<blasint_type>(r1 - r0), bn = static_cast<blasint_type>(c1 - c0);
            const auto bk = static_cast<blasint_type>(k), ldc = static_cast<blasint_type>(n);
            T* c = g.c + r0 * n + c0;
            if constexpr (std::is_same_v<T, float>)
                cblas_sgemm(CblasRowMajor, ta, tb, bm, bn, bk, 1.0f, a, lda, b, ldb, beta, c, ldc);
            else
                cblas_dgemm(CblasRowMajor, ta, tb, bm, bn, bk, 1.0, a, lda, b, ldb, beta, c, ldc);
        }, detail::gemm_parallel_min_work);
    }
#endif

    // out[0] = scale * sum(x), written or added; times device_scale[0] too where given (a scale
    // that is only known on the device, such as 1 / the rows a mean counts). Summed in fixed chunks
    // of sum_chunk elements whose partial sums are added in order, so the result does not depend on
    // the thread count; up to one chunk it is the plain left-to-right sum.
    static constexpr std::int64_t sum_chunk = detail::parallel_min_work;
    template <class T>
    static void sum(const T* x, std::int64_t n, T* out, T scale, bool overwrite, int /*device*/, const T* device_scale = nullptr) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_block(n, kernels::BlockSum<T>{x, n, out, scale, overwrite, device_scale});
            return tape->add([=] { sum(x, n, out, scale, overwrite, 0, device_scale); });
        }
        ++counters().kernel_launches;
        const auto chunk_sum = [x, n](std::int64_t chunk) {
            const std::int64_t end = (chunk + 1) * sum_chunk < n ? (chunk + 1) * sum_chunk : n;
            T acc = 0;
            for (std::int64_t i = chunk * sum_chunk; i < end; ++i) acc += x[i];
            return acc;
        };
        T acc = 0;
        if (n <= sum_chunk) {
            acc = chunk_sum(0);
        } else {
            const std::int64_t chunks = (n + sum_chunk - 1) / sum_chunk;
            thread_local std::vector<T> partial;  // grows once to the largest sum: no per-step allocation
            partial.resize(static_cast<std::size_t>(chunks));
            T* partial_data = partial.data();
            detail::parallel_ranges(chunks, n, [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t c = begin; c < end; ++c) partial_data[c] = chunk_sum(c);
            });
            for (std::int64_t c = 0; c < chunks; ++c) acc += partial_data[c];
        }
        out[0] = kernels::write(out[0], device_scale ? acc * scale * device_scale[0] : acc * scale, overwrite);
    }

    // dy is (rows, cols), db is (cols) = the sum of dy's rows (a broadcast row's gradient), written
    // or added.
    template <class T>
    static void sum_rows(const T* dy, std::int64_t rows, std::int64_t cols, T* db, bool overwrite, int device) {
        launch(cols, kernels::SumRows<T>{dy, db, rows, cols, overwrite}, device);
    }
    // f is a row functor of kernels.hpp (f.row<Lanes>): one row per index here, or eight rows per
    // call where f offers rows8 and the rows are narrow (kernels::rows8).
    template <class F>
    static void launch_rows(std::int64_t rows, std::int64_t cols, const F& f, int device) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_each(rows, f);
            return tape->add([rows, cols, f] { launch_rows(rows, cols, f, 0); });
        }
#if defined(MINIGRAD_ROWS8)
        if constexpr (requires { f.rows8(std::int64_t{}); }) {
            if (cols <= rows8_max_cols && rows >= 8 && has_avx2_fma()) {
                ++counters().kernel_launches;
                const std::int64_t blocks = rows / 8;
                detail::parallel_ranges(blocks, rows * cols, [&f](std::int64_t begin, std::int64_t end) { run_rows8(begin, end, f); });
                run(blocks * 8, rows, f);  // the last rows % 8
                return;
            }
        }
#endif
        launch(rows, f, device);
    }
    static constexpr std::int64_t rows8_max_cols = 16;
#if defined(MINIGRAD_ROWS8)
    static_assert(rows8_max_cols == kernels::rows8::max_cols);
    // Whether launch_rows may take the eight-row path on this machine (public for its tests).
    static bool has_avx2_fma() {
#if MINIGRAD_CPU_DISPATCH
        return detail::cpu_has_avx2_fma();
#elif defined(__AVX2__) && defined(__FMA__)
        return true;
#else
        return false;
#endif
    }
#endif

  private:
    // Lanes of the product loops compiled without a target attribute: 8 in a build for an AVX2 CPU
    // (-march=native on one: no dispatch is compiled, and these loops are the AVX2 ones), 4 otherwise
    // (SSE2, or another CPU's 128-bit vectors).
#if defined(__AVX2__)
    static constexpr int plain_lanes = 8;
#else
    static constexpr int plain_lanes = 4;
#endif

    // launch's loop, uncounted
    template <class F>
    static void run_all(std::int64_t n, const F& f) {
        std::int64_t work = n;
        if constexpr (requires { f.work_per_index(); }) work = n * f.work_per_index();
        if (work < detail::parallel_min_work) {  // the small launches of small models: the loop alone
#if MINIGRAD_CPU_DISPATCH
            if (detail::cpu_has_avx2_fma()) return run_avx2(0, n, f);
#endif
            return run(0, n, f);
        }
        detail::parallel_ranges(n, work, [&f](std::int64_t begin, std::int64_t end) { run_range(begin, end, f); });
    }

    // gemm's work, uncounted
    template <class T>
    static void run_gemm(const kernels::GemmElement<T>& g) {
        MINIGRAD_ASSERT(!g.a_sums || g.trans_a);
#if defined(MINIGRAD_HAS_BLAS)
        if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
            if (g.n > 16 && g.m * g.n * g.k >= blas_min_work) {
                // the column sums as sum_rows computes them, over threads where they are large
                if (g.a_sums) run_all(g.m, kernels::SumRows<T>{g.a, g.a_sums, g.k, g.m, g.a_sums_overwrite});
                return gemm_blas(g);
            }
        }
#endif
        gemm_builtin(g);  // a_sums included
    }

    static void raw_release(void* p) { std::free(p); }

    struct ThreadCache {
        detail::CachingAllocator allocator{&raw_allocate, &raw_release, /*is_device=*/false};
        ~ThreadCache() {
            live_cache() = nullptr;
            thread_cache_gone() = true;
        }
    };
    // This thread's cache once allocator() has made it, null before and after: a plain pointer with
    // a constant initialiser, so the hot path reads it without the guard a thread_local object with
    // a constructor needs.
    static detail::CachingAllocator*& live_cache() {
        thread_local detail::CachingAllocator* cache = nullptr;
        return cache;
    }
    [[noreturn, gnu::cold, gnu::noinline]] static void bad_device(int device) {
        minigrad::detail::fail<DeviceError>("Cpu: device index {} given, but the Cpu backend has one device, 0", device);
    }
    // True once this thread's cache has been destroyed at thread (or program) exit: a tensor that
    // outlives it (a static, destroyed after the main thread's thread_locals) goes straight to the
    // system instead of into a destroyed cache.
    static bool& thread_cache_gone() {
        thread_local bool gone = false;
        return gone;
    }

#if defined(MINIGRAD_HAS_BLAS)
#if defined(MINIGRAD_HAS_OPENBLAS)
    using blasint_type = blasint;  // OpenBLAS's index type (int, or int64 in its 64-bit builds)
#else
    using blasint_type = int;
#endif
#endif

#if defined(MINIGRAD_ROWS8)
    template <class F>
    [[gnu::target("avx2,fma")]] static void run_rows8(std::int64_t begin_block, std::int64_t end_block, const F& f) {
        const F local = f;
        for (std::int64_t b = begin_block; b < end_block; ++b) local.rows8(b * 8);
    }
#endif
    template <class F>
    static void run_range(std::int64_t begin, std::int64_t end, const F& f) {
#if MINIGRAD_CPU_DISPATCH
        if (detail::cpu_has_avx2_fma()) return run_avx2(begin, end, f);
#endif
        run(begin, end, f);
    }
    template <class F>
    [[gnu::always_inline]] static inline void run(std::int64_t begin, std::int64_t end, const F& f) {
        const F local = f;  // a local copy lets the compiler keep its fields in registers
        if constexpr (requires { local.range(begin, end); }) {  // a functor with a host loop of its own
            local.range(begin, end);
            return;
        }
        if (begin == 0) {  // the whole range, or the first thread's: the loop as it was before threads
#pragma GCC ivdep
            for (std::int64_t i = 0; i < end; ++i) local(i);
            return;
        }
#pragma GCC ivdep
        for (std::int64_t i = begin; i < end; ++i) local(i);
    }
#if MINIGRAD_CPU_DISPATCH
    template <class F>
    MINIGRAD_TARGET_AVX2 static void run_avx2(std::int64_t begin, std::int64_t end, const F& f) {
        run(begin, end, f);
    }
    template <class T>
    MINIGRAD_TARGET_AVX2 static void gemm_avx2(const kernels::GemmElement<T>& g) {
        gemm_body<T, 8>(g);
    }
#endif

    // Lanes: values in one vector (float: 4 = 128-bit SSE, 8 = 256-bit AVX; a double's vectors are
    // twice as wide, two registers where that is wider than the ISA's). Whichever loop below computes
    // an output, it is bias + a(r, 0) b(0, j) + ... + a(r, k-1) b(k-1, j), added in that order, so a
    // product's values do not depend on which loop its shape chose (in a build for the machine,
    // -march=native, GCC may fuse one loop's multiply-adds and not the other's: the last bit then can).
    template <class T, int Lanes>
    [[gnu::always_inline]] static inline void gemm_body(const kernels::GemmElement<T>& g) {
        MINIGRAD_ASSERT(!g.a_sums || g.trans_a);  // column sums of a stored (k, m) only
        const T* b = g.b;
        if (g.trans_b) {
            thread_local std::vector<T> scratch;  // grows once to the largest b: no per-step allocation
            scratch.resize(static_cast<std::size_t>(g.k * g.n));
            for (std::int64_t j = 0; j < g.n; ++j)
                for (std::int64_t p = 0; p < g.k; ++p) scratch[static_cast<std::size_t>(p * g.n + j)] = g.b[j * g.k + p];
            b = scratch.data();
        }
        if (g.n <= 16) {
            gemm_narrow<T, Lanes>(g, b, std::make_integer_sequence<int, 17>{});
        } else {
            gemm_wide(g, b);
        }
        if (g.a_sums) a_column_sums<T, Lanes>(g);
    }
    template <class T, int Lanes, int... Ns>
    [[gnu::always_inline]] static inline void gemm_narrow(const kernels::GemmElement<T>& g, const T* b, std::integer_sequence<int, Ns...>) {
        (void)((g.n == Ns ? (gemm_width<T, Ns, Lanes>(g, b), true) : false) || ...);
    }
    // Each width is its own function, not inlined into the caller: GCC's optimiser takes time
    // superlinear in a function's size, and with all sixteen widths in one function every file that
    // uses a tensor took 5x longer to compile at -O3 (125 s against 28 s). A call per product costs
    // nothing measurable. Where the dispatch is compiled, Lanes 8 is gemm_avx2's alone, so its widths
    // keep that target (a build for an AVX2 CPU has no dispatch: its Lanes 8 is gemm_builtin's).
    template <class T, int N, int Lanes>
#if MINIGRAD_CPU_DISPATCH
        requires(Lanes != 8)
#endif
    [[gnu::noinline]] static void gemm_width(const kernels::GemmElement<T>& g, const T* b) {
        gemm_fixed_width<T, N, Lanes>(g, b);
    }
#if MINIGRAD_CPU_DISPATCH
    template <class T, int N, int Lanes>
        requires(Lanes == 8)
    MINIGRAD_TARGET_AVX2 [[gnu::noinline]] static void gemm_width(const kernels::GemmElement<T>& g, const T* b) {
        gemm_fixed_width<T, N, Lanes>(g, b);
    }
#endif

    // n = N <= 16 columns, known at compile time. Two loops, and the cheaper for the shape, counted
    // in vector instructions per p: along c's rows (b's row p in vectors, a broadcast of a(r, p) and
    // a multiply-add per vector, for each row), or, where a is stored transposed (its column p is
    // contiguous), down c's columns (Lanes rows of a in one load, a broadcast of b(p, j) and a
    // multiply-add per column). The first needs no transposition; the second fills every lane when
    // m is large and N is small, as in a weight gradient (m outputs, k the batch).
    template <class T, int N, int Lanes>
    [[gnu::always_inline]] static inline void gemm_fixed_width(const kernels::GemmElement<T>& g, const T* b) {
        if constexpr (N == 0) {
            return;  // m x 0: nothing to write
        } else {
            constexpr int C = (N + Lanes - 1) / Lanes;
            constexpr int R = C >= 8 ? 1 : 8 / C;  // gemm_along_rows's rows per block
            if (g.trans_a) {
                const std::int64_t down_columns = (g.m + Lanes - 1) / Lanes * (1 + 2 * N);
                const std::int64_t along_rows = (g.m + R - 1) / R * (C + R * (1 + C));  // a short block costs a whole one
                if (down_columns < along_rows) return gemm_down_columns<T, N, Lanes>(g, b);
            }
            gemm_along_rows<T, N, Lanes>(g, b);
        }
    }

    // c's rows as C vectors each (the last holding N - (C - 1) * Lanes columns), R rows at a time so
    // that each vector of b's row p serves R rows. A vector of b reaches past its row where that
    // stays inside b (those lanes are computed and never stored); c's and the bias's last vectors
    // move element by element. (Helpers, not lambdas: a lambda would not inherit gemm_avx2's target.)
    template <class T, int N, int Lanes>
    [[gnu::always_inline]] static inline void gemm_along_rows(const kernels::GemmElement<T>& g, const T* b) {
        using V = typename detail::Vec<T, Lanes>::type;
        constexpr int C = (N + Lanes - 1) / Lanes;
        constexpr int last = N - (C - 1) * Lanes;  // columns in a row's last vector
        constexpr int R = C >= 8 ? 1 : 8 / C;     // R * C accumulators, half the vector registers
        const std::int64_t m = g.m, k = g.k;
        // rows p < whole: b's row p read as C whole vectors stays inside b's k * N values
        const std::int64_t whole = last == Lanes ? k : k * N < C * Lanes ? 0 : std::min(k, (k * N - C * Lanes) / N + 1);
        V bias[C];
        for (int c = 0; c < C; ++c) {
            bias[c] = V{};
            if (g.bias) load_part(bias[c], g.bias + c * Lanes, c == C - 1 ? last : Lanes);
        }
        std::int64_t r = 0;
        for (; r + R <= m; r += R) gemm_row_block<T, N, Lanes, R, false>(g, b, r, R, whole, bias);
        if (r < m) gemm_row_block<T, N, Lanes, R, true>(g, b, r, static_cast<int>(m - r), whole, bias);
    }
    // Rows rows from r, of which the first `valid` exist (Partial: the others repeat the last one's
    // arithmetic and are not stored; one pass over b for the last rows, not one per row).
    template <class T, int N, int Lanes, int Rows, bool Partial>
    [[gnu::always_inline]] static inline void gemm_row_block(const kernels::GemmElement<T>& g, const T* b, std::int64_t r, int valid,
                                                             std::int64_t whole, const typename detail::Vec<T, Lanes>::type* bias) {
        using V = typename detail::Vec<T, Lanes>::type;
        constexpr int C = (N + Lanes - 1) / Lanes;
        constexpr int last = N - (C - 1) * Lanes;
        const std::int64_t k = g.k;
        const std::int64_t a_row = g.trans_a ? 1 : k, a_col = g.trans_a ? g.m : 1;  // a(r, p) = a[r * a_row + p * a_col]
        const T* a0 = g.a + r * a_row;
        std::int64_t at[Rows];  // row i's offset in a (Partial: the missing rows read the last one)
        for (int i = 0; i < Rows; ++i) at[i] = (Partial && i >= valid ? valid - 1 : i) * a_row;
        V acc[Rows][C];
        for (int i = 0; i < Rows; ++i)
            for (int c = 0; c < C; ++c) acc[i][c] = bias[c];
        // Two loops, not one with a test per p: merged, the Iris products took 4% more instructions.
        std::int64_t p = 0;
        for (; p < whole; ++p) {
            V bv[C];
            for (int c = 0; c < C; ++c) std::memcpy(&bv[c], b + p * N + c * Lanes, sizeof(V));
            for (int i = 0; i < Rows; ++i) {
                const T av = a0[(Partial ? at[i] : i * a_row) + p * a_col];
                for (int c = 0; c < C; ++c) acc[i][c] += bv[c] * av;
            }
        }
        for (; p < k; ++p) {
            V bv[C];
            for (int c = 0; c < C; ++c) load_part(bv[c], b + p * N + c * Lanes, c == C - 1 ? last : Lanes);
            for (int i = 0; i < Rows; ++i) {
                const T av = a0[(Partial ? at[i] : i * a_row) + p * a_col];
                for (int c = 0; c < C; ++c) acc[i][c] += bv[c] * av;
            }
        }
        // whole vectors, then the last one's columns one by one, each a loop of constant length
        for (int i = 0; i < Rows; ++i) {
            if (Partial && i >= valid) break;
            T* __restrict cr = g.c + (r + i) * N;
            for (int c = 0; c + 1 < C; ++c) {
                V out = acc[i][c];
                if (!g.overwrite) {
                    V old;
                    std::memcpy(&old, cr + c * Lanes, sizeof(V));
                    out = old + out;
                }
                std::memcpy(cr + c * Lanes, &out, sizeof(V));
            }
            T* __restrict tail = cr + (C - 1) * Lanes;
            if (g.overwrite)
                for (int e = 0; e < last; ++e) tail[e] = acc[i][C - 1][e];
            else
                for (int e = 0; e < last; ++e) tail[e] += acc[i][C - 1][e];
        }
    }
    // v = the first count values from `from`, zeros after them (an out-parameter: a function that
    // returns a vector wider than the baseline ISA draws GCC's ABI warning)
    template <class V, class T>
    [[gnu::always_inline]] static inline void load_part(V& v, const T* from, int count) {
        v = V{};
        for (int i = 0; i < count; ++i) v[i] = from[i];
    }

    // a stored transposed, (k, m): Lanes rows of c at once, a(r..r+Lanes, p) being one load from a's
    // row p. acc[j] lane i is c(r + i, j). A last block of fewer rows reads a whole vector where it
    // stays inside a (the lanes past m are computed and dropped), element by element after that.
    template <class T, int N, int Lanes>
    [[gnu::always_inline]] static inline void gemm_down_columns(const kernels::GemmElement<T>& g, const T* b) {
        using V = typename detail::Vec<T, Lanes>::type;
        const std::int64_t m = g.m, k = g.k;
        for (std::int64_t r = 0; r < m; r += Lanes) {
            const int lanes = m - r < Lanes ? static_cast<int>(m - r) : Lanes;
            V acc[N];
            for (int j = 0; j < N; ++j) {
                acc[j] = V{};
                if (g.bias)  // lane by lane, not V{} + bias: that would turn a -0 bias into +0
                    for (int i = 0; i < Lanes; ++i) acc[j][i] = g.bias[j];
            }
            // rows p < whole: a vector from a + p * m + r stays inside a's k * m values (two loops,
            // not a test per p)
            const std::int64_t whole = k * m < r + Lanes ? 0 : std::min(k, (k * m - r - Lanes) / m + 1);
            std::int64_t p = 0;
            for (; p < whole; ++p) {
                V av;
                std::memcpy(&av, g.a + p * m + r, sizeof(V));
                const T* __restrict bp = b + p * N;
                for (int j = 0; j < N; ++j) acc[j] += av * bp[j];
            }
            for (; p < k; ++p) {
                V av{};
                for (int i = 0; i < lanes; ++i) av[i] = g.a[p * m + r + i];
                const T* __restrict bp = b + p * N;
                for (int j = 0; j < N; ++j) acc[j] += av * bp[j];
            }
            for (int i = 0; i < lanes; ++i) {
                T* __restrict cr = g.c + (r + i) * N;
                if (g.overwrite)
                    for (int j = 0; j < N; ++j) cr[j] = acc[j][i];
                else
                    for (int j = 0; j < N; ++j) cr[j] += acc[j][i];
            }
        }
    }

    // n > 16 at run time (products too small for BLAS, or no BLAS): a row of c at a time, the
    // compiler vectorising along it.
    template <class T>
    [[gnu::always_inline]] static inline void gemm_wide(const kernels::GemmElement<T>& g, const T* b) {
        const std::int64_t m = g.m, k = g.k, n = g.n;
        const std::int64_t a_row = g.trans_a ? 1 : k, a_col = g.trans_a ? m : 1;
        for (std::int64_t r = 0; r < m; ++r) {
            T* __restrict cr = g.c + r * n;
            if (g.overwrite)
                for (std::int64_t j = 0; j < n; ++j) cr[j] = g.bias ? g.bias[j] : T(0);
            else if (g.bias)
                for (std::int64_t j = 0; j < n; ++j) cr[j] += g.bias[j];
            for (std::int64_t p = 0; p < k; ++p) {
                const T av = g.a[r * a_row + p * a_col];
                const T* __restrict bp = b + p * n;
                for (std::int64_t j = 0; j < n; ++j) cr[j] += av * bp[j];
            }
        }
    }

    // a_sums[j] = the sum of a's column j, a stored (k, m) (a weight gradient's bias gradient), in
    // kernels::column_sum's order (four running sums, rows r % 4, then (s0 + s1) + (s2 + s3)): the
    // bits sum_rows gives. Lanes columns at once, a vector per row of a, which reaches past the row
    // where that stays inside a (those lanes are dropped).
    template <class T, int Lanes>
    [[gnu::always_inline]] static inline void a_column_sums(const kernels::GemmElement<T>& g) {
        using V = typename detail::Vec<T, Lanes>::type;
        const std::int64_t m = g.m, k = g.k;
        for (std::int64_t j0 = 0; j0 < m; j0 += Lanes) {
            const int w = m - j0 < Lanes ? static_cast<int>(m - j0) : Lanes;
            // rows p < whole: a vector from a + p * m + j0 stays inside a's k * m values
            const std::int64_t whole = k * m < j0 + Lanes ? 0 : std::min(k, (k * m - j0 - Lanes) / m + 1);
            V s[4] = {};
            std::int64_t p = 0;
            for (; p + 4 <= whole; p += 4)  // no test per row where every row is a whole vector
                for (int u = 0; u < 4; ++u) {
                    V row;
                    std::memcpy(&row, g.a + (p + u) * m + j0, sizeof(V));
                    s[u] += row;
                }
            for (; p + 4 <= k; p += 4)
                for (int u = 0; u < 4; ++u) {
                    V row;
                    if (p + u < whole)
                        std::memcpy(&row, g.a + (p + u) * m + j0, sizeof(V));
                    else
                        load_part(row, g.a + (p + u) * m + j0, w);
                    s[u] += row;
                }
            for (; p < k; ++p) {
                V row;
                load_part(row, g.a + p * m + j0, w);
                s[0] += row;
            }
            const V total = (s[0] + s[1]) + (s[2] + s[3]);
            for (int e = 0; e < w; ++e) g.a_sums[j0 + e] = kernels::write(g.a_sums[j0 + e], total[e], g.a_sums_overwrite);
        }
    }

  public:
    // Class labels must lie in [0, classes), except those equal to ignore_index (skipped, as
    // PyTorch's ignore_index). The host can look at them right away: one branch-free pass (it
    // vectorises), and a second pass only to name the first bad label. Where inv_count is given, it
    // gets 1 / the number of labels not ignored: the scale of a mean over those rows (infinite when
    // every row is ignored, so that the mean is NaN, as PyTorch's).
    template <class L, class T>
    static void check_labels(const L* target, std::int64_t n, std::int64_t classes, std::int64_t ignore_index, T* inv_count,
                             std::string_view op, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_block(n, kernels::LabelCheck<L, T>{target, n, classes, ignore_index, inv_count, op.data()});
            return tape->add([=] { check_labels(target, n, classes, ignore_index, inv_count, op, 0); });
        }
        // As unsigned, a negative label is huge: one compare per label, in the label's own width.
        using U = std::make_unsigned_t<std::conditional_t<std::is_same_v<L, bool>, unsigned char, L>>;
        constexpr auto most = static_cast<unsigned long long>(std::numeric_limits<L>::max());
        const U limit = static_cast<unsigned long long>(classes) > most
                            ? (std::is_unsigned_v<L> ? U(0) : static_cast<U>(static_cast<U>(most) + 1u))
                            : static_cast<U>(classes);
        const auto bad = [limit](L v) {
            if constexpr (std::is_unsigned_v<L>)
                if (limit == 0) return false;  // classes exceeds every value an L can hold
            return static_cast<U>(v) >= limit;
        };
        // ignore_index compared in the label's width, where an L can hold it at all
        const bool can_ignore = ignore_index < 0 ? ignore_index >= static_cast<std::int64_t>(std::numeric_limits<L>::lowest())
                                                 : static_cast<unsigned long long>(ignore_index) <= most;
        const L skip = can_ignore ? static_cast<L>(ignore_index) : L{};
        const auto is_skipped = [can_ignore, skip](L v) { return can_ignore && v == skip; };
        // The pass in the label's width (counts in a chunk of 2^30 cannot overflow 32 bits), so that
        // it vectorises: a third of the instructions of bool and 64-bit counts mixed (callgrind).
        using Count = std::conditional_t<(sizeof(U) >= 4), U, std::uint32_t>;
        const U skip_bits = static_cast<U>(skip), can_skip = can_ignore ? 1u : 0u;
        std::int64_t skipped = 0;
        U out_of_range = 0;
        for (std::int64_t i0 = 0; i0 < n; i0 += std::int64_t{1} << 30) {
            const std::int64_t end = std::min(n, i0 + (std::int64_t{1} << 30));
            Count count = 0;
            for (std::int64_t i = i0; i < end; ++i) {
                const U v = static_cast<U>(target[i]);
                const U s = static_cast<U>(v == skip_bits) & can_skip;
                count += s;
                out_of_range |= static_cast<U>(v >= limit) & (s ^ 1u);
            }
            skipped += static_cast<std::int64_t>(count);
        }
        bool any = out_of_range != 0;
        if constexpr (std::is_unsigned_v<L>) any = any && limit != 0;  // limit 0: classes exceeds every L
        if (any) [[unlikely]] {
            std::int64_t i = 0;
            while (is_skipped(target[i]) || !bad(target[i])) ++i;
            bad_label(op, static_cast<std::conditional_t<std::is_signed_v<L>, long long, unsigned long long>>(target[i]), i, classes);
        }
        if (inv_count) *inv_count = T(1) / static_cast<T>(n - skipped);
    }

    // Work (elements) up to which an op may run as one block functor (launch_block) instead of its
    // launches: none on the CPU, whose launches cost nothing to save and whose row kernels use
    // every vector lane and core.
    static constexpr std::int64_t one_block_max_work = 0;
    // f.block(team) for a block functor (tape.hpp): on the host the team is this thread alone. A
    // label the functor reports as out of range is thrown once the functor has finished (a whole
    // compiled program: all its steps), with check_labels's message.
    template <class F>
    static void launch_block(const F& f, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_block(0, f);
            return tape->add([f] { launch_block(f, 0); });
        }
        ++counters().kernel_launches;
        kernels::LabelError error{};
        f.block(kernels::HostTeam{&error});
        if (error.flag) [[unlikely]] bad_label(error.op ? error.op : "cross_entropy", error.value, error.index, error.classes);
    }

    // f.block(team) with a team of grid_threads host threads: a compiled program too large for one
    // block (compiled.hpp), which the GPU runs on a cooperative grid. On the CPU the tape is the fast
    // path, so this exists to check the grid program's arithmetic and barriers (and runs under
    // ThreadSanitizer in CI). Functors do not throw: a bad label is reported through the team and
    // thrown here, once every thread has finished. The team starts only once all its threads
    // exist: if one cannot be made, the others leave without waiting at a barrier, and the error
    // is thrown. Not recorded: a program is not captured.
    static constexpr int grid_threads = 4;
    template <class F>
    static int grid_size(int /*device*/) {
        return grid_threads;
    }
    template <class F>
    static bool launch_grid(const F& f, int threads, int /*device*/) {
        ++counters().kernel_launches;
        kernels::LabelError error{};
        kernels::HostTeamShared shared(threads);
        std::latch all_made(1);
        std::atomic<bool> abandoned{false};
        auto member = [&](int id) {
            all_made.wait();
            if (!abandoned.load(std::memory_order_relaxed)) f.block(kernels::HostTeam{&error, &shared, id, threads});
        };
        {
            std::vector<std::jthread> team;
            try {
                team.reserve(static_cast<std::size_t>(threads - 1));
                for (int id = 1; id < threads; ++id) team.emplace_back(member, id);
            } catch (...) {
                abandoned.store(true, std::memory_order_relaxed);  // ordered by the latch
                all_made.count_down();
                throw;  // joins the threads made so far, which return at once
            }
            all_made.count_down();
            member(0);
        }  // joins the team
        if (error.flag) [[unlikely]] bad_label(error.op ? error.op : "cross_entropy", error.value, error.index, error.classes);
        return true;
    }

    template <class V>
    [[noreturn, gnu::cold]] static void bad_label(std::string_view op, V value, std::int64_t index, std::int64_t classes) {
        detail::fail<ValueError>("{}: argument #2 'target' has class {} at index {}, expected a class in [0, {}) (the input has {} columns)",
                                 op, value, index, classes, classes);
    }

    // ---- graphs (used by StepGraph): a tape of launches ------------------------------------------
    static bool capturing(int /*device*/) { return detail::cpu_recording() != nullptr; }
    [[noreturn, gnu::cold]] static void refuse_during_capture(int /*device*/, std::string_view what) {
        minigrad::detail::fail<Error>("StepGraph: {} is not possible inside a captured step: nothing has run yet. "
                                      "Record values with LossLog::record() and read them after replay()",
                                      what);
    }
    // Allocations during the capture come from the graph's private pool, whose blocks the tape's
    // replays keep using until the graph is destroyed (as on CUDA).
    static void begin_capture(detail::Pool* pool, int device) {
        if (device != 0) [[unlikely]] bad_device(device);
        if (detail::cpu_recording()) minigrad::detail::fail<Error>("StepGraph: a step is already being captured on this thread");
        allocator().push_pool(pool);
        detail::cpu_recording() = new detail::CpuTape;
    }
    static GraphHandle end_capture(int /*device*/) {
        allocator().pop_pool();
        auto* tape = std::exchange(detail::cpu_recording(), nullptr);
        if (tape->ops.empty()) {
            delete tape;
            minigrad::detail::fail<Error>("StepGraph: the captured step launched no work on the Cpu backend");
        }
        return tape;
    }
    static void abort_capture(int /*device*/) {
        allocator().pop_pool();
        delete std::exchange(detail::cpu_recording(), nullptr);
    }
    static void launch_graph(GraphHandle tape, int /*device*/) {
        for (const auto& op : tape->ops) op();
    }
    static void destroy_graph(GraphHandle tape, detail::Pool* pool, int device) {
        delete tape;
        release_pool(pool, device);
    }
    static void release_pool(detail::Pool* pool, int /*device*/) {
        if (!pool->free_blocks.empty()) allocator().merge_into_default(*pool);
    }
};

using CpuBackend = Cpu;

}  // namespace minigrad
