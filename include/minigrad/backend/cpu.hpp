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
#include "concept.hpp"
#include "cpu_gemm.hpp"
#include "host_memory.hpp"
#include "cpu_isa.hpp"
#include "cpu_threads.hpp"
#include "kernels.hpp"
#include "../capture/tape.hpp"

namespace minigrad {

struct Cuda;  // declared for every compiler so mixing backends gives a readable compile error

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
        detail::count_launch<F>();
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
        detail::count_launch<kernels::GemmThen<T, F>>();
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
        if (g.a_sums)
            detail::count_launch<kernels::GemmRowSums<T>>();
        else
            detail::count_launch<kernels::GemmElement<T>>();
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
        detail::gemm_builtin(g);
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
        detail::count_launch<kernels::BlockSum<T>>();
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
    // A per-column reduction or scatter over (rows, cols) runs as one thread's work per column:
    // the host's few threads are busy with cols columns, and one chunk keeps its order plain.
    static std::int64_t column_chunks(std::int64_t /*rows*/, std::int64_t /*cols*/, int /*device*/) { return 1; }
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
                detail::count_launch<F>();
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
        } else {
            // One loop for every thread's range: a second copy (say, for the range that starts at 0)
            // may vectorise differently, its exp rounding differently from the scalar one, and then
            // the bits would depend on the thread count. run_all's small launches pass a constant 0,
            // which the compiler folds into this loop as before.
#pragma GCC ivdep
            for (std::int64_t i = begin; i < end; ++i) local(i);
        }
    }
#if MINIGRAD_CPU_DISPATCH
    template <class F>
    MINIGRAD_TARGET_AVX2 static void run_avx2(std::int64_t begin, std::int64_t end, const F& f) {
#if defined(MINIGRAD_ROWS8)
        // a functor whose elements go eight at a time in AVX2 vectors (kernels::rows8), where the
        // compiler's own vectoriser cannot (gelu's erf: its selects could trap, for all it knows)
        if constexpr (requires { f.range8(begin, end); }) {
            const F local = f;
            return local.range8(begin, end);
        }
#endif
        run(begin, end, f);
    }
#endif

  public:
    // Work (elements) up to which an op may run as one block functor (launch_block) instead of its
    // launches: none on the CPU, whose launches cost nothing to save and whose row kernels use
    // every vector lane and core.
    static constexpr std::int64_t one_block_max_work = 0;
    // f.block(team) for a block functor (tape.hpp): on the host the team is this thread alone. A
    // label the functor reports as out of range (ops/labels.hpp) is thrown once the functor has
    // finished (a whole compiled program: all its steps).
    template <class F>
    static void launch_block(const F& f, int /*device*/) {
        if (auto* tape = detail::cpu_recording()) [[unlikely]] {
            detail::record_block(0, f);
            return tape->add([f] { launch_block(f, 0); });
        }
        detail::count_launch<F>();
        kernels::LabelError error{};
        f.block(kernels::HostTeam{&error});
        if (error.flag) [[unlikely]] bad_label(error);
    }

    // f.block(team) with a team of grid_threads host threads: a compiled program too large for one
    // block (capture/compiled.hpp), which the GPU runs on a cooperative grid. On the CPU the tape is the fast
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
        ++counters().kernel_launches;  // a program, not an op's functor
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
        if (error.flag) [[unlikely]] bad_label(error);
        return true;
    }

    [[noreturn, gnu::cold]] static void bad_label(const kernels::LabelError& error) {
        detail::fail<ValueError>("{}", kernels::label_error_message(error));
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
static_assert(Backend<Cpu>, "minigrad: Cpu lacks a primitive of the Backend concept (backend/concept.hpp)");

}  // namespace minigrad
