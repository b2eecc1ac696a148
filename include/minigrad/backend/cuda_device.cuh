// CUDA's device facts (mg::cuda::is_available, device_count, device_name, memory, versions), the
// checks every CUDA and cuBLAS call goes through (MINIGRAD_CUDA_CHECK, MINIGRAD_CUBLAS_CHECK: a
// DeviceError with the call and file:line), and the process-wide matrix-product settings (the
// cuBLAS crossover, TF32). Compiled only by nvcc, as part of backend/cuda.cuh.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "../error.hpp"

#define MINIGRAD_CUDA_CHECK(call) ::minigrad::cuda::detail::check((call), #call, __FILE__, __LINE__)
#define MINIGRAD_CUBLAS_CHECK(call) ::minigrad::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)

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

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        minigrad::detail::fail<DeviceError>("cuBLAS error: {} failed: {} ({}) at {}:{}", call, cublasGetStatusString(status),
                                            cublasGetStatusName(status), file, line);
    }
}

// Labels outside [0, classes) found by a kernel. Lives in mapped host memory, so the kernel writes
// it without a copy and the host reads it after its next sync. `op` is the op's name, a string
// literal of the host (the kernel only copies the pointer).
using LabelError = kernels::LabelError;

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
        return minigrad::detail::format("{} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
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
inline std::string version_string(int v) { return minigrad::detail::format("{}.{}", v / 1000, (v % 1000) / 10); }
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

// ---- matrix product settings (process-wide, as PyTorch's) ------------------------------------
// A product c (m,n) = a (m,k) b (k,n) goes to cuBLAS when m*n*k >= cublas_crossover(), to the
// built-in GemmElement below it. The default is a guess, not a measurement: no GPU has timed both
// paths yet (scripts/gpu-check.sh runs gemm_bench to do it). MINIGRAD_CUBLAS_CROSSOVER sets the
// starting value; 0 sends every product to cuBLAS, a huge value none.
inline constexpr std::int64_t default_cublas_crossover = std::int64_t(1) << 21;  // 128^3

namespace detail {
inline std::int64_t crossover_from_env() {
    const char* text = std::getenv("MINIGRAD_CUBLAS_CROSSOVER");
    if (!text || !*text) return default_cublas_crossover;
    std::int64_t value = 0;
    const std::string_view view(text);
    const auto [end, err] = std::from_chars(view.data(), view.data() + view.size(), value);
    if (err != std::errc() || end != view.data() + view.size() || value < 0) {
        minigrad::detail::fail<ValueError>("MINIGRAD_CUBLAS_CROSSOVER is '{}', expected a whole number >= 0 (m*n*k from which "
                                           "matrix products go to cuBLAS)",
                                           view);
    }
    return value;
}
inline std::atomic<std::int64_t>& crossover() {
    static std::atomic<std::int64_t> value{crossover_from_env()};
    return value;
}
inline std::atomic<bool>& tf32() {
    static std::atomic<bool> allowed{false};
    return allowed;
}
}  // namespace detail

inline std::int64_t cublas_crossover() { return detail::crossover().load(std::memory_order_relaxed); }
inline void set_cublas_crossover(std::int64_t mnk) {
    if (mnk < 0) minigrad::detail::fail<ValueError>("set_cublas_crossover: argument #1 'mnk' is {}, expected >= 0", mnk);
    detail::crossover().store(mnk, std::memory_order_relaxed);
}
// As torch.backends.cuda.matmul.allow_tf32: off by default, so float products are FP32 and match the
// CPU; on, cuBLAS may round float inputs to TF32 (10-bit mantissa) on tensor cores, about 1e-3
// relative. Only products on the cuBLAS path are affected.
inline void allow_tf32(bool allow) { detail::tf32().store(allow, std::memory_order_relaxed); }
inline bool tf32_allowed() { return detail::tf32().load(std::memory_order_relaxed); }

}  // namespace cuda

}  // namespace minigrad
