// CudaBackend: tensors in GPU memory, every kernel on one stream per device. Compiled only by nvcc
// (minigrad.hpp includes this file when __CUDACC__ is defined).
//
// Elementwise kernels are the shared functors of kernels.hpp launched one index per thread; row
// kernels (softmax, cross-entropy) run a row per thread, or a warp per row when rows are long.
// Matrix products go to cuBLAS from a size on (m*n*k >= cublas_crossover()) and to the per-output
// GemmElement functor below it, where a launch is all the product costs. Sums are one CUB block for
// few elements, CUB's DeviceReduce over the whole GPU for many; column sums are spread over row
// chunks. Memory comes from a caching allocator per device that is stream-ordered: with one stream,
// a freed block is safe to reuse at once.
#pragma once

#if !defined(__CUDACC__)
#error "minigrad/backend/cuda.cuh must be compiled by nvcc (name the file .cu, or set LANGUAGE CUDA in CMake)"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include <cooperative_groups.h>
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_reduce.cuh>

#include "../counters.hpp"
#include "../error.hpp"
#include "caching_allocator.hpp"
#include "concept.hpp"
#include "kernels.hpp"
#include "staging.hpp"
#include "../capture/tape.hpp"
#include "cuda_device.cuh"
#include "cuda_kernels.cuh"

namespace minigrad {

struct Cuda {
    static constexpr std::string_view name = "Cuda";
    static constexpr bool is_host = false;
    static constexpr bool supports_graphs = true;
    using GraphHandle = cudaGraphExec_t;
    static constexpr int max_devices = 16;
    static constexpr int threads = 256;

    // ---- per-device state -----------------------------------------------------------------
    // Shared by every thread that uses the device: one stream (so work from several threads is
    // serialised on it, in launch order) and one allocator, locked per call.
    struct DeviceState {
        cudaStream_t stream = nullptr;
        std::unique_ptr<detail::CachingAllocator> allocator;
        std::mutex allocator_mutex;
        cuda::detail::LabelError* label_error_host = nullptr;  // mapped pinned memory
        cuda::detail::LabelError* label_error_device = nullptr;
        int max_grid = 0;
        std::once_flag initialised;
        unsigned char* team_scratch = nullptr;  // a cooperative grid's sum slots (grid_size makes them)
        std::once_flag team_scratch_made;
        // cuBLAS, made at the first product that takes it (see blas()). One host thread at a time
        // may use a handle, so calls hold blas_mutex.
        cublasHandle_t blas = nullptr;
        void* blas_workspace = nullptr;
        std::mutex blas_mutex;
        // Uploads of a step's size go through pinned slots (backend/staging.hpp). Kept for the
        // program's life, as the stream is.
        detail::StagingRing<cudaEvent_t> staging;
    };
    static DeviceState& state(int device) {
        static std::array<DeviceState, max_devices> states;
        if (device < 0 || device >= max_devices) {
            cuda::require_device(device);  // says what is wrong if the device does not exist
            minigrad::detail::fail<DeviceError>("CUDA device index {} is beyond what minigrad supports (devices 0..{})", device,
                                                max_devices - 1);
        }
        DeviceState& s = states[device];
        cuda::detail::activate(device);
        std::call_once(s.initialised, [&] {  // a throw leaves it to the next call to try again
            MINIGRAD_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
            s.allocator = std::make_unique<detail::CachingAllocator>(&raw_allocate, &raw_release, /*is_device=*/true);
            MINIGRAD_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&s.label_error_host), sizeof(cuda::detail::LabelError), cudaHostAllocMapped));
            *s.label_error_host = {};
            MINIGRAD_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&s.label_error_device), s.label_error_host, 0));
            int sms = 0;
            MINIGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
            s.max_grid = sms * 8;
        });
        return s;
    }
    // Runs f(allocator) under the device's allocator lock.
    template <class F>
    static decltype(auto) with_allocator(int device, F&& f) {
        auto& s = state(device);
        std::lock_guard lock(s.allocator_mutex);
        return f(*s.allocator);
    }
    static cudaStream_t stream(int device) { return state(device).stream; }
    static int current_device() { return cuda::current_device(); }

    // ---- memory -----------------------------------------------------------------------------
    static void* raw_allocate(std::size_t bytes) {
        void* p = nullptr;
        cudaError_t err = cudaMalloc(&p, bytes);
        if (err == cudaErrorMemoryAllocation) {
            (void)cudaGetLastError();
            int device = 0;
            (void)cudaGetDevice(&device);
            std::size_t free_bytes = 0, total = 0;
            (void)cudaMemGetInfo(&free_bytes, &total);
            minigrad::detail::fail<OutOfMemoryError>(
                "CUDA out of memory: tried to allocate {:.2f} MiB on cuda:{} ({:.2f} MiB free of {:.2f} MiB total; "
                "minigrad's cache holds memory it has freed: free it with mg::Cuda::empty_cache())",
                bytes / 1048576.0, device, free_bytes / 1048576.0, total / 1048576.0);
        }
        MINIGRAD_CUDA_CHECK(err);
        return p;
    }
    static void raw_release(void* p) {
        if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();  // also at exit, when the runtime may be gone
    }
    static void* allocate(std::size_t bytes, int device) {
        return with_allocator(device, [&](detail::CachingAllocator& a) { return a.allocate(bytes); });
    }
    // For long-lived state made between steps (see CachingAllocator::allocate's reuse).
    static void* allocate_state(std::size_t bytes, int device) {
        return with_allocator(device, [&](detail::CachingAllocator& a) { return a.allocate(bytes, /*reuse=*/false); });
    }
    static void deallocate(void* p, std::size_t bytes, int device) {
        if (p) with_allocator(device, [&](detail::CachingAllocator& a) { a.deallocate(p, bytes); });
    }
    static void empty_cache(int device = cuda::current_device()) {
        synchronize(device);
        with_allocator(device, [](detail::CachingAllocator& a) { a.empty_cache(); });
    }

    // ---- copies and syncs ---------------------------------------------------------------------
    // Refused inside a captured step: the graph would record the host address, and a replay would
    // read whatever is there by then (often a temporary long gone).
    // Up to StagingRing::slot_bytes, through a pinned slot: from pageable memory the driver may
    // wait for the stream (backend/staging.hpp).
    static void upload(void* dst, const void* src, std::size_t bytes, int device) {
        refuse_during_capture(device, "copying host memory to the device (Tensor::from, set_lr, ...)");
        if (!bytes) return;
        struct Api {
            cudaStream_t stream;
            void* pinned_allocate(std::size_t size) {
                void* p = nullptr;
                MINIGRAD_CUDA_CHECK(cudaHostAlloc(&p, size, cudaHostAllocDefault));
                return p;
            }
            cudaEvent_t make_event() {
                cudaEvent_t e = nullptr;
                MINIGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
                return e;
            }
            bool event_done(cudaEvent_t e) {
                const cudaError_t status = cudaEventQuery(e);
                if (status == cudaErrorNotReady) {
                    (void)cudaGetLastError();
                    return false;
                }
                MINIGRAD_CUDA_CHECK(status);
                return true;
            }
            void event_wait(cudaEvent_t e) { MINIGRAD_CUDA_CHECK(cudaEventSynchronize(e)); }
            void record(cudaEvent_t e) { MINIGRAD_CUDA_CHECK(cudaEventRecord(e, stream)); }
            void upload(void* to, const void* from, std::size_t size) {
                MINIGRAD_CUDA_CHECK(cudaMemcpyAsync(to, from, size, cudaMemcpyHostToDevice, stream));
            }
        } api{stream(device)};
        state(device).staging.upload(api, dst, src, bytes);
        counters().host_to_device_bytes += bytes;
    }
    static void copy(void* dst, const void* src, std::size_t bytes, int device) {
        detail::record_copy(dst, src, bytes);
        if (bytes) MINIGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream(device)));
    }
    static void download(void* dst, const void* src, std::size_t bytes, int device) {
        refuse_during_capture(device, "reading a tensor on the host (item(), to_vector(), LossLog::values())");
        if (bytes) MINIGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream(device)));
        synchronize(device);
        counters().device_to_host_bytes += bytes;
    }
    // Waits for the device's stream; reports errors that kernels found meanwhile.
    static void synchronize(int device) {
        refuse_during_capture(device, "synchronizing");
        auto& s = state(device);
        MINIGRAD_CUDA_CHECK(cudaStreamSynchronize(s.stream));
        ++counters().host_syncs;
        if (s.label_error_host->flag) {
            const auto e = *s.label_error_host;
            *s.label_error_host = {};
            minigrad::detail::fail<ValueError>("{} (found on cuda:{} by a kernel, reported at the next host read)",
                                               kernels::label_error_message(e), device);
        }
    }

    // ---- kernels ------------------------------------------------------------------------------
    template <class F>
    static void launch(std::int64_t n, const F& f, int device) {
        if (n <= 0) return;
        detail::record_each(n, f);
        auto& s = state(device);
        const std::int64_t blocks = (n + threads - 1) / threads;
        const int grid = static_cast<int>(blocks < s.max_grid ? blocks : s.max_grid);
        detail::for_each_index<<<grid, threads, 0, s.stream>>>(n, f);
        MINIGRAD_CUDA_CHECK(cudaGetLastError());
        ++counters().kernel_launches;
    }
    // Row functors (kernels.hpp, with row<Lanes>): a thread per row for short rows, where a warp
    // would idle most lanes; a warp per row from warp_row_cols columns on.
    static constexpr std::int64_t warp_row_cols = 64;
    template <class F>
    static void launch_rows(std::int64_t rows, std::int64_t cols, const F& f, int device) {
        if (rows <= 0) return;
        if (cols < warp_row_cols) return launch(rows, f, device);
        detail::record_each(rows, f);
        auto& s = state(device);
        constexpr std::int64_t rows_per_block = threads / 32;
        const std::int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
        const int grid = static_cast<int>(blocks < s.max_grid ? blocks : s.max_grid);
        detail::for_each_row_warp<<<grid, threads, 0, s.stream>>>(rows, f);
        MINIGRAD_CUDA_CHECK(cudaGetLastError());
        ++counters().kernel_launches;
    }

    // c (m, n) = op(a) op(b) [+ bias (n)], written or added; shapes as kernels::GemmElement.
    // With a_sums, a's column sums are computed in the built-in product's launch (GemmRowSums), or
    // by sum_rows beside cuBLAS.
    // Below cuBLAS's crossover, a product whose outputs leave most of the GPU idle while k is long
    // (a weight gradient over a large batch) is cut along k (kernels::gemm_k_splits): GemmSplitK,
    // then SumRows over the ranges.
    template <class T>
    static void gemm(const kernels::GemmElement<T>& g, int device) {
        if (g.m <= 0 || g.n <= 0) return;
        if ((takes_cublas(g) && cublas_gemm(g, device)) || gemm_split_k(g, device)) {
            if (g.a_sums) sum_rows(g.a, g.k, g.m, g.a_sums, g.a_sums_overwrite, device);
            return;
        }
        if (g.a_sums) return launch(g.m * (g.n + 1), kernels::GemmRowSums<T>{g}, device);
        launch(g.m * g.n, g, device);
    }
    // The product, then f(i) for every i < m * n, where f reads c only at i (an activation, or an
    // activation's gradient): one launch of kernels::GemmThen, or f's own beside cuBLAS or a
    // split-k.
    template <class T, class F>
    static void gemm_then(const kernels::GemmElement<T>& g, const F& f, int device) {
        if (g.m <= 0 || g.n <= 0) return;
        MINIGRAD_ASSERT(!g.a_sums);
        if ((takes_cublas(g) && cublas_gemm(g, device)) || gemm_split_k(g, device)) return launch(g.m * g.n, f, device);
        launch(g.m * g.n, kernels::GemmThen<T, F>{g, f}, device);
    }
    // c of g as a split-k where kernels::gemm_k_splits cuts it (returns true), else nothing (false).
    template <class T>
    static bool gemm_split_k(const kernels::GemmElement<T>& g, int device) {
        const std::int64_t outputs = g.m * g.n;
        const std::int64_t splits = kernels::gemm_k_splits(outputs, g.k, static_cast<std::int64_t>(state(device).max_grid) * threads);
        if (splits < 2) return false;
        const std::int64_t chunk = (g.k + splits - 1) / splits, used = (g.k + chunk - 1) / chunk;
        const std::size_t bytes = static_cast<std::size_t>(used * outputs) * sizeof(T);
        T* partial = static_cast<T*>(allocate(bytes, device));
        launch(used * outputs, kernels::GemmSplitK<T>{g, partial, chunk}, device);
        launch(outputs, kernels::SumRows<T>{partial, g.c, used, outputs, g.overwrite}, device);
        deallocate(partial, bytes, device);
        return true;
    }
    template <class T>
    static bool takes_cublas(const kernels::GemmElement<T>& g) {
        if constexpr (!std::is_same_v<T, float> && !std::is_same_v<T, double>) {
            return false;
        } else {
            constexpr std::int64_t int_max = INT_MAX;
            if (g.k <= 0 || g.m > int_max || g.n > int_max || g.k > int_max) return false;
            // m*n*k in double: it may not fit 64 bits, and only the comparison matters.
            return static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k) >=
                   static_cast<double>(cuda::cublas_crossover());
        }
    }

    // The device's cuBLAS handle, bound to its stream, with a workspace from the caching allocator
    // so that cuBLAS allocates nothing itself and a product can be captured in a graph. Made
    // outside a capture only (nullptr during one, and the product falls back to GemmElement): its
    // workspace must come from the shared pool, not from a graph's private one. StepGraph's eager
    // first replay makes it. Caller holds s.blas_mutex.
    static cublasHandle_t blas(DeviceState& s, int device) {
        if (s.blas) return s.blas;
        if (capturing(device)) return nullptr;
        // 32 MiB: cuBLAS's recommendation for Hopper (4 MiB for older GPUs).
        constexpr std::size_t workspace_bytes = std::size_t(32) << 20;
        cublasHandle_t handle = nullptr;
        MINIGRAD_CUBLAS_CHECK(cublasCreate(&handle));
        try {
            // SetStream first: it resets the workspace to cuBLAS's own.
            MINIGRAD_CUBLAS_CHECK(cublasSetStream(handle, s.stream));
            MINIGRAD_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));  // TF32 is asked for per call
            s.blas_workspace = allocate(workspace_bytes, device);
            MINIGRAD_CUBLAS_CHECK(cublasSetWorkspace(handle, s.blas_workspace, workspace_bytes));
        } catch (...) {
            (void)cublasDestroy(handle);
            if (s.blas_workspace) deallocate(s.blas_workspace, workspace_bytes, device);
            s.blas_workspace = nullptr;
            throw;
        }
        s.blas = handle;
        return handle;
    }

    // cuBLAS is column-major: minigrad's row-major c (m,n) is its c^T (n,m), so it computes
    // c^T = op(b)^T op(a)^T with b as its first operand. A row-major matrix stored (r, s) reads as
    // its transpose (s, r) with leading dimension s, so each operand's flag carries over as is. A
    // bias is written into c first (BroadcastRow), then the product is added (beta = 1).
    // False when no handle can be made now (inside a capture).
    template <class T>
    static bool cublas_gemm(const kernels::GemmElement<T>& g, int device) {
        auto& s = state(device);
        std::lock_guard lock(s.blas_mutex);
        cublasHandle_t handle = blas(s, device);
        if (!handle) return false;
        if (detail::recording_tape()) {
            detail::record_refuse(minigrad::detail::format("it has a {}x{}x{} matrix product, which goes to cuBLAS (set_cublas_crossover() "
                                              "moves the size from which products do)",
                                              g.m, g.n, g.k));
        }
        if (g.bias) launch(g.m * g.n, kernels::BroadcastRow<T>{g.bias, g.c, g.n, g.overwrite}, device);
        constexpr bool is_float = std::is_same_v<T, float>;
        constexpr cudaDataType type = is_float ? CUDA_R_32F : CUDA_R_64F;
        const cublasComputeType_t compute = !is_float           ? CUBLAS_COMPUTE_64F
                                            : cuda::tf32_allowed() ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                   : CUBLAS_COMPUTE_32F;
        const T alpha = 1, beta = g.overwrite && !g.bias ? 0 : 1;
        const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
        MINIGRAD_CUBLAS_CHECK(cublasGemmEx(handle, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           n, m, k, &alpha, g.b, type, g.trans_b ? k : n, g.a, type, g.trans_a ? m : k, &beta,
                                           g.c, type, n, compute, CUBLAS_GEMM_DEFAULT));
        ++counters().kernel_launches;
        ++counters().library_gemms;
        return true;
    }

    // out[0] = scale * sum(x) (* device_scale[0] where given), written or added. Few elements: one block, one launch. Many: CUB's
    // DeviceReduce over the whole GPU into a scalar, then ScaleWrite; its temporary storage comes
    // from the caching allocator (stream-ordered, so it is freed at once; no cudaMalloc or sync
    // after the first call, and a capture records it from the graph's pool).
    static constexpr std::int64_t device_reduce_min = std::int64_t(1) << 16;
    template <class T>
    static void sum(const T* x, std::int64_t n, T* out, T scale, bool overwrite, int device, const T* device_scale = nullptr) {
        detail::record_block(n, kernels::BlockSum<T>{x, n, out, scale, overwrite, device_scale});
        const detail::NotRecorded parts;
        if (n < device_reduce_min) {
            constexpr int sum_threads = 256;
            detail::sum_kernel<T, sum_threads><<<1, sum_threads, 0, stream(device)>>>(x, n, out, scale, overwrite, device_scale);
            MINIGRAD_CUDA_CHECK(cudaGetLastError());
            ++counters().kernel_launches;
            return;
        }
        std::size_t temp_bytes = 0;
        MINIGRAD_CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, temp_bytes, x, static_cast<T*>(nullptr), n, stream(device)));
        // One block: the total first (aligned for T), then CUB's storage.
        const std::size_t total_bytes = 256;
        void* block = allocate(total_bytes + temp_bytes, device);
        T* total = static_cast<T*>(block);
        void* temp = static_cast<char*>(block) + total_bytes;
        MINIGRAD_CUDA_CHECK(cub::DeviceReduce::Sum(temp, temp_bytes, x, total, n, stream(device)));
        ++counters().kernel_launches;
        launch(1, kernels::ScaleWrite<T>{total, out, scale, overwrite, device_scale}, device);
        deallocate(block, total_bytes + temp_bytes, device);
    }

    // Into how many chunks of rows a per-column reduction or scatter over (rows, cols) is cut: as
    // many as make chunks * cols threads fill the GPU, each chunk at least column_min_chunk rows
    // (sum_rows; layer_norm's weight gradient; a gather's backward). 1: a thread per column.
    static constexpr std::int64_t column_min_chunk = 32;
    static std::int64_t column_chunks(std::int64_t rows, std::int64_t cols, int device) {
        if (cols <= 0 || rows <= 0) return 1;
        const std::int64_t fill = static_cast<std::int64_t>(state(device).max_grid) * threads;
        const std::int64_t most = (rows + column_min_chunk - 1) / column_min_chunk;
        const std::int64_t chunks = std::min(fill / cols, most);
        return chunks < 1 ? 1 : chunks;
    }
    // dy is (rows, cols), db is (cols) = the sum of dy's rows, written or added. Few rows, or
    // columns enough to fill the GPU: a thread per column (SumRows). Otherwise rows are cut into
    // chunks so that chunks * cols threads fill the GPU: SumRowsPartial sums each chunk's column,
    // then SumRows adds the chunks (two launches, same order every run, no atomics).
    template <class T>
    static void sum_rows(const T* dy, std::int64_t rows, std::int64_t cols, T* db, bool overwrite, int device) {
        if (cols <= 0) return;
        std::int64_t chunks = column_chunks(rows, cols, device);
        if (chunks < 2) return launch(cols, kernels::SumRows<T>{dy, db, rows, cols, overwrite}, device);
        const std::int64_t chunk_rows = (rows + chunks - 1) / chunks;
        chunks = (rows + chunk_rows - 1) / chunk_rows;
        const std::size_t bytes = static_cast<std::size_t>(chunks * cols) * sizeof(T);
        T* partial = static_cast<T*>(allocate(bytes, device));
        launch(chunks * cols, kernels::SumRowsPartial<T>{dy, partial, rows, cols, chunk_rows}, device);
        launch(cols, kernels::SumRows<T>{partial, db, chunks, cols, overwrite}, device);
        deallocate(partial, bytes, device);
    }
    // f.block(team) for a block functor (tape.hpp), run by one block of block_threads threads (a
    // small compiled program, a small loss). A label it reports surfaces at the next sync.
    static constexpr int block_threads = 256;
    // Work (elements) up to which an op runs as one block functor instead of its launches: one
    // launch then beats several (a guess, not a measurement: no GPU has timed both yet).
    static constexpr std::int64_t one_block_max_work = std::int64_t{1} << 16;
    template <class F>
    static void launch_block(const F& f, int device) {
        detail::record_block(0, f);
        auto& s = state(device);
        detail::for_team<block_threads><<<1, block_threads, 0, s.stream>>>(f, s.label_error_device, nullptr);
        MINIGRAD_CUDA_CHECK(cudaGetLastError());
        ++counters().kernel_launches;
    }
    // The blocks of a cooperative grid for F on the device: as many as it holds at once (each must
    // reach every grid barrier). 0 where the device cannot launch one. Makes the grid's sum slots
    // the first time, so call it between steps, not inside a capture.
    template <class F>
    static int grid_size(int device) {
        auto& s = state(device);
        int cooperative = 0, per_sm = 0, sms = 0;
        MINIGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device));
        if (!cooperative) return 0;
        MINIGRAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        MINIGRAD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, detail::for_team<block_threads, F>, block_threads, 0));
        std::call_once(s.team_scratch_made, [&] {
            s.team_scratch = static_cast<unsigned char*>(allocate_state(static_cast<std::size_t>(s.max_grid) * 16, device));
        });
        return std::min(per_sm * sms, s.max_grid);
    }
    // f.block(team) run by a cooperative grid of `blocks` blocks (from grid_size): a compiled program
    // too large for one block. False, with nothing launched, where the device will not hold that
    // many blocks now (fewer than the occupancy query said: under MPS, say); the caller then falls
    // back. Not recorded: a program is not captured.
    template <class F>
    static bool launch_grid(const F& f, int blocks, int device) {
        auto& s = state(device);
        F args_f = f;
        kernels::LabelError* label_error = s.label_error_device;
        unsigned char* scratch = s.team_scratch;
        void* args[] = {&args_f, &label_error, &scratch};
        const cudaError_t err = cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&detail::for_team<block_threads, F>), dim3(blocks),
                                                            dim3(block_threads), args, 0, s.stream);
        if (err == cudaErrorCooperativeLaunchTooLarge) {
            (void)cudaGetLastError();
            return false;
        }
        MINIGRAD_CUDA_CHECK(err);
        ++counters().kernel_launches;
        return true;
    }

    // ---- graphs (used by StepGraph) ---------------------------------------------------------
    static bool capturing(int device) {
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        MINIGRAD_CUDA_CHECK(cudaStreamIsCapturing(stream(device), &status));
        return status != cudaStreamCaptureStatusNone;
    }
    static void refuse_during_capture(int device, std::string_view what) {
        if (capturing(device)) {
            minigrad::detail::fail<Error>("StepGraph: {} is not possible inside a captured step: nothing has run yet. "
                                          "Record values with LossLog::record() and read them after replay()",
                                          what);
        }
    }
    // A capture owns its device: while it runs, other threads' launches on the device would be
    // recorded into it and their allocations served from its pool (see design.md, Threads).
    static void begin_capture(detail::Pool* pool, int device) {
        auto& s = state(device);
        with_allocator(device, [&](detail::CachingAllocator& a) { a.push_pool(pool); });
        // Relaxed: the private pool may cudaMalloc during capture on purpose. That call is not
        // recorded, but its block stays reserved for the graph's life, which is all a replay needs.
        const cudaError_t err = cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeRelaxed);
        if (err != cudaSuccess) with_allocator(device, [](detail::CachingAllocator& a) { a.pop_pool(); });
        MINIGRAD_CUDA_CHECK(err);
    }
    static GraphHandle end_capture(int device) {
        auto& s = state(device);
        cudaGraph_t graph = nullptr;
        const cudaError_t err = cudaStreamEndCapture(s.stream, &graph);
        with_allocator(device, [](detail::CachingAllocator& a) { a.pop_pool(); });
        MINIGRAD_CUDA_CHECK(err);
        std::size_t nodes = 0;
        const cudaError_t counted = cudaGraphGetNodes(graph, nullptr, &nodes);
        if (counted != cudaSuccess || nodes == 0) {
            (void)cudaGraphDestroy(graph);
            MINIGRAD_CUDA_CHECK(counted);
            minigrad::detail::fail<DeviceError>(
                "StepGraph: the captured step launched no work on cuda:{}; if its tensors are on another GPU, give the "
                "StepGraph that device (StepGraph(step, true, device))",
                device);
        }
        GraphHandle exec = nullptr;
        const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
        (void)cudaGraphDestroy(graph);
        MINIGRAD_CUDA_CHECK(inst);
        return exec;
    }
    static void abort_capture(int device) {
        auto& s = state(device);
        cudaGraph_t graph = nullptr;
        (void)cudaStreamEndCapture(s.stream, &graph);
        if (graph) (void)cudaGraphDestroy(graph);
        (void)cudaGetLastError();
        with_allocator(device, [](detail::CachingAllocator& a) { a.pop_pool(); });
    }
    static void launch_graph(GraphHandle exec, int device) {
        MINIGRAD_CUDA_CHECK(cudaGraphLaunch(exec, stream(device)));
        ++counters().kernel_launches;
    }
    static void destroy_graph(GraphHandle exec, detail::Pool* pool, int device) {
        (void)cudaStreamSynchronize(stream(device));  // the pool's blocks may be in use until the last replay ends
        (void)cudaGraphExecDestroy(exec);
        release_pool(pool, device);
    }
    static void release_pool(detail::Pool* pool, int device) {
        with_allocator(device, [&](detail::CachingAllocator& a) {
            if (!pool->free_blocks.empty()) a.merge_into_default(*pool);
        });
    }
};

using CudaBackend = Cuda;
static_assert(Backend<Cuda>, "minigrad: Cuda lacks a primitive of the Backend concept (backend/concept.hpp)");

}  // namespace minigrad
