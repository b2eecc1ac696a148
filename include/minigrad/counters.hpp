// Per-thread counters of the costs a training loop should not pay per step: host reads and syncs,
// transfers, launches and real allocations. The Iris example prints them; the benchmark and tests
// read them to prove a loop makes no host sync and no allocation after its first step.
//
// Each thread has its own: counters() is this thread's work only, so a loop's counts are not
// disturbed by other threads, and counting costs no atomic. (storage_frees counts blocks this
// thread's cache gave back; a thread's cache is emptied when the thread ends.)
#pragma once

#include <cstdint>
#include <typeinfo>

namespace minigrad {

struct Counters {
    std::uint64_t host_reads = 0;       // item() / to_vector() / LossLog::values(): any read of tensor data on the host
    std::uint64_t host_syncs = 0;       // times the host waited for a device (always 0 on the CPU backend)
    std::uint64_t device_to_host_bytes = 0;
    std::uint64_t host_to_device_bytes = 0;
    std::uint64_t pageable_uploads = 0;  // uploads too large to stage in pinned memory (CUDA): each may wait for the device
    std::uint64_t kernel_launches = 0;  // backend kernels started (CPU: loops run; CUDA: kernels and graph launches)
    std::uint64_t library_gemms = 0;    // of kernel_launches, matrix products handed to a vendor library (cuBLAS)
    std::uint64_t storage_allocs = 0;   // tensor storage the caching allocator had to take from the system
    std::uint64_t storage_frees = 0;    // tensor storage given back to the system
    std::uint64_t device_allocs = 0;    // of storage_allocs, those made with cudaMalloc
};

// This thread's counters.
inline Counters& counters() {
    thread_local Counters c;
    return c;
}

// Resets this thread's counters.
inline void reset_counters() { counters() = Counters{}; }

namespace detail {

// Called with the type of every functor the CPU backend runs, where set (null, the default, costs a
// load and a branch per launch). The unit tests set it, to check that every functor an op launches
// can run in a compiled step (tests/main.cpp). Set it before any thread launches; it is called from
// every thread that launches.
using LaunchObserver = void (*)(const std::type_info&);
inline constinit LaunchObserver launch_observer = nullptr;

// A launch of functor F: counted, and shown to the observer.
template <class F>
inline void count_launch() {
    ++counters().kernel_launches;
    if (auto* observe = launch_observer) [[unlikely]] observe(typeid(F));
}

}  // namespace detail

}  // namespace minigrad
