// CudaBackend: tensors in GPU memory, every kernel on one stream per device. Compiled only by nvcc
// (minigrad.hpp includes this file when __CUDACC__ is defined).
//
// Elementwise and row-wise kernels are the shared functors of kernels.hpp launched one index per
// thread; matmul is the per-output GemmElement functor (the Iris shapes are far too small for
// tiling to pay); reductions use CUB's BlockReduce. Memory comes from a caching allocator per device
// that is stream-ordered: with one stream, a freed block is safe to reuse at once.
#pragma once

#if !defined(__CUDACC__)
#error "minigrad/backend/cuda.cuh must be compiled by nvcc (name the file .cu, or set LANGUAGE CUDA in CMake)"
#endif

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <cub/block/block_reduce.cuh>

#include "../counters.hpp"
#include "../error.hpp"
#include "caching_allocator.hpp"
#include "kernels.hpp"

#define MINIGRAD_CUDA_CHECK(call) ::minigrad::cuda::detail::check((call), #call, __FILE__, __LINE__)

namespace minigrad {
namespace cuda {
namespace detail {

inline void check(cudaError_t err, const char* call, const char* file, int line) {
    if (err != cudaSuccess) {
        (void)cudaGetLastError();  // clear a sticky-free error so later calls are not blamed
        minigrad::detail::fail<DeviceError>("CUDA error: {} failed: {} ({}) at {}:{}", call, cudaGetErrorString(err),
                                            cudaGetErrorName(err), file, line);
    }
}

// Labels outside [0, classes) found by a kernel. Lives in mapped host memory, so the kernel writes
// it without a copy and the host reads it after its next sync.
struct LabelError {
    int flag;
    long long index;
    long long value;
    long long classes;
};

}  // namespace detail

// ---- device facts ---------------------------------------------------------------------------
// Never throws: false when there is no driver, no device, or the runtime cannot start.
inline int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}
inline bool is_available() { return device_count() > 0; }

// Why no device is usable, in words, for error messages ("" when one is).
inline std::string unavailable_reason() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return fmt::format("{} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    }
    return n == 0 ? "no CUDA device was found" : "";
}

// Throws a DeviceError that says what is missing unless device `index` exists.
inline void require_device(int index) {
    const int n = device_count();
    if (n == 0) {
        minigrad::detail::fail<DeviceError>("CUDA is not available: {}; use the Cpu backend (--device cpu), or --device auto to "
                                            "use a GPU only when there is one",
                                            unavailable_reason());
    }
    if (index < 0 || index >= n) {
        minigrad::detail::fail<DeviceError>("CUDA device index {} is out of range: this machine has {} CUDA device{} (valid: 0..{})",
                                            index, n, n == 1 ? "" : "s", n - 1);
    }
}

namespace detail {
inline std::atomic<int>& selected_device() {  // process-wide: set_device in one thread is seen by all
    static std::atomic<int> device{0};
    return device;
}
// What cudaSetDevice was last called with by minigrad in this thread (-1: not yet). Per thread
// because the CUDA runtime's current device is per host thread.
inline int& active_device() {
    thread_local int device = -1;
    return device;
}
inline void activate(int device) {
    if (active_device() != device) {
        require_device(device);
        MINIGRAD_CUDA_CHECK(cudaSetDevice(device));
        active_device() = device;
    }
}
}  // namespace detail

inline int current_device() { return detail::selected_device().load(std::memory_order_relaxed); }
inline void set_device(int index) {
    require_device(index);
    detail::selected_device().store(index, std::memory_order_relaxed);
    detail::activate(index);
}
inline std::string device_name(int index) {
    require_device(index);
    cudaDeviceProp prop{};
    MINIGRAD_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
    return prop.name;
}
inline std::pair<int, int> compute_capability(int index) {
    require_device(index);
    cudaDeviceProp prop{};
    MINIGRAD_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
    return {prop.major, prop.minor};
}
// Versions as "major.minor" (12040 -> "12.4"); the driver's is the newest CUDA it supports.
inline std::string version_string(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }
inline std::string runtime_version() {
    int v = 0;
    MINIGRAD_CUDA_CHECK(cudaRuntimeGetVersion(&v));
    return version_string(v);
}
inline std::string driver_version() {
    int v = 0;
    if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) return "none (no CUDA driver)";
    return version_string(v);
}
inline std::string compiled_version() { return version_string(CUDART_VERSION); }

struct MemoryInfo {
    std::size_t free_bytes;
    std::size_t total_bytes;
};
inline MemoryInfo memory_info(int index) {
    detail::activate(index);
    MemoryInfo m{};
    MINIGRAD_CUDA_CHECK(cudaMemGetInfo(&m.free_bytes, &m.total_bytes));
    return m;
}

}  // namespace cuda

namespace detail {

// kernels: one index per thread, grid-stride so any n fits any grid. f is a kernels.hpp functor.
template <class F>
__global__ void for_each_index(std::int64_t n, F f) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

// x is (n), out is (1): out = scale * sum(x) (written or added). One block; each thread sums a
// strided slice, CUB reduces the block. Enough for the loss-sized reductions minigrad does.
template <class T, int Threads>
__global__ void sum_kernel(const T* x, std::int64_t n, T* out, T scale, bool overwrite) {
    using Reduce = cub::BlockReduce<T, Threads>;
    __shared__ typename Reduce::TempStorage temp;
    T partial = 0;
    for (std::int64_t i = threadIdx.x; i < n; i += Threads) partial += x[i];
    const T total = Reduce(temp).Sum(partial);
    if (threadIdx.x == 0) out[0] = kernels::write(out[0], total * scale, overwrite);
}

// target is (n); records the first label outside [0, classes)
template <class L>
__global__ void check_labels_kernel(const L* target, std::int64_t n, std::int64_t classes, cuda::detail::LabelError* error) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const long long t = static_cast<long long>(target[i]);
        if ((t < 0 || t >= classes) && atomicCAS(&error->flag, 0, 1) == 0) {
            error->index = i;
            error->value = t;
            error->classes = classes;
        }
    }
}

}  // namespace detail

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
    };
    static DeviceState& state(int device) {
        static std::array<DeviceState, max_devices> states;
        if (device < 0 || device >= max_devices) cuda::require_device(device);
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
    static void deallocate(void* p, std::size_t bytes, int device) {
        if (p) with_allocator(device, [&](detail::CachingAllocator& a) { a.deallocate(p, bytes); });
    }
    static void empty_cache(int device = cuda::current_device()) {
        synchronize(device);
        with_allocator(device, [](detail::CachingAllocator& a) { a.empty_cache(); });
    }

    // ---- copies and syncs ---------------------------------------------------------------------
    static void upload(void* dst, const void* src, std::size_t bytes, int device) {
        if (!bytes) return;
        MINIGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream(device)));
        counters().host_to_device_bytes += bytes;
    }
    static void copy(void* dst, const void* src, std::size_t bytes, int device) {
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
            minigrad::detail::fail<ValueError>(
                "cross_entropy: argument #2 'target' has class {} at index {}, expected a class in [0, {}) "
                "(found on cuda:{} by a kernel, reported at the next host read)",
                e.value, e.index, e.classes, device);
        }
    }

    // ---- kernels ------------------------------------------------------------------------------
    template <class F>
    static void launch(std::int64_t n, const F& f, int device) {
        if (n <= 0) return;
        auto& s = state(device);
        const std::int64_t blocks = (n + threads - 1) / threads;
        const int grid = static_cast<int>(blocks < s.max_grid ? blocks : s.max_grid);
        detail::for_each_index<<<grid, threads, 0, s.stream>>>(n, f);
        MINIGRAD_CUDA_CHECK(cudaGetLastError());
        ++counters().kernel_launches;
    }
    template <class T>
    static void gemm(const kernels::GemmElement<T>& g, int device) {
        launch(g.m * g.n, g, device);
    }
    template <class T>
    static void sum(const T* x, std::int64_t n, T* out, T scale, bool overwrite, int device) {
        constexpr int sum_threads = 256;
        detail::sum_kernel<T, sum_threads><<<1, sum_threads, 0, stream(device)>>>(x, n, out, scale, overwrite);
        MINIGRAD_CUDA_CHECK(cudaGetLastError());
        ++counters().kernel_launches;
    }
    // Checked on the device: the error surfaces at the next host read, as PyTorch's device asserts.
    template <class L>
    static void check_labels(const L* target, std::int64_t n, std::int64_t classes, std::string_view, int device) {
        if (n <= 0) return;
        auto& s = state(device);
        const std::int64_t blocks = (n + threads - 1) / threads;
        const int grid = static_cast<int>(blocks < s.max_grid ? blocks : s.max_grid);
        detail::check_labels_kernel<<<grid, threads, 0, s.stream>>>(target, n, classes, s.label_error_device);
        MINIGRAD_CUDA_CHECK(cudaGetLastError());
        ++counters().kernel_launches;
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

}  // namespace minigrad
