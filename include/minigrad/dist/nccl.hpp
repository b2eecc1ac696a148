// The NCCL transport of mg::dist: Cuda buckets are reduced on the GPU, on minigrad's stream of the
// device, with no host sync. Compiled only by nvcc (dist.hpp includes it under __CUDACC__ where
// <nccl.h> is found); link libnccl (the CMake target minigrad::dist does).
//
// One communicator per device, made at the first collective on it: rank 0 draws NCCL's unique id
// and MPI broadcasts it (under dist's timeout), then ncclCommInitRank over every rank. Make that
// first call (broadcast_parameters) before capturing a step in a StepGraph: a communicator cannot
// be made inside a capture, while the all-reduce itself is an ordinary stream operation a CUDA
// graph captures. Each rank must use its own GPU: mg::dist::local_rank() is the usual choice.
//
// Not run on this project's machines (one GPU each): it compiles, and docs/distributed.md says so.
// dist's timeout does not reach NCCL (its kernels wait on the GPU; the host never blocks per step):
// a dead rank is caught by NCCL's own watchdog where one is configured, as in PyTorch.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

#include <nccl.h>

#include "../backend/cuda.cuh"
#include "mpi.hpp"

#if NCCL_VERSION_CODE < 21300
#error "minigrad: dist needs NCCL 2.13 or later (ncclAvg is 2.10's, ncclGetLastError 2.13's)"
#endif

namespace minigrad::dist::detail {

inline void check_nccl(ncclResult_t result, const char* op, const char* call) {
    if (result == ncclSuccess) return;
    minigrad::detail::fail<DeviceError>("{}: {} failed on rank {}: {} ({})", op, call, state().rank, ncclGetErrorString(result),
                                        ncclGetLastError(nullptr));
}

template <class T>
ncclDataType_t nccl_type() {
    if constexpr (std::is_same_v<T, float>) return ncclFloat32;
    else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
    else static_assert(sizeof(T) == 0, "minigrad: dist reduces float or double gradients");
}

// The device's communicator over every rank, made at its first use.
inline ncclComm_t nccl_comm(int device, const char* op) {
    static std::array<ncclComm_t, Cuda::max_devices> comms{};
    Cuda::state(device);  // checks the index, activates the device
    ncclComm_t& comm = comms[static_cast<std::size_t>(device)];
    if (comm) return comm;
    auto& s = require_init(op);
    ncclUniqueId id{};
    if (s.rank == 0) check_nccl(ncclGetUniqueId(&id), op, "ncclGetUniqueId");
    broadcast(reinterpret_cast<char*>(&id), static_cast<std::int64_t>(sizeof(id)), 0, op);
    check_nccl(ncclCommInitRank(&comm, s.world_size, id, s.rank), op, "ncclCommInitRank");
    s.at_finalize.push_back([&comm] {
        (void)ncclCommDestroy(comm);
        comm = nullptr;
    });
    return comm;
}

template <>
inline constexpr bool has_transport_v<Cuda> = true;

template <>
struct Transport<Cuda> {
    // ncclAvg divides by the rank count inside the reduction: no second kernel, no host read.
    template <class T>
    static void all_reduce_mean(T* data, std::int64_t n, int device, const char* op) {
        minigrad::detail::record_refuse("it has an NCCL all-reduce, which one block cannot run");
        ncclComm_t comm = nccl_comm(device, op);
        check_nccl(ncclAllReduce(data, data, static_cast<std::size_t>(n), nccl_type<T>(), ncclAvg, comm, Cuda::stream(device)), op,
                   "ncclAllReduce");
    }
    template <class T>
    static void broadcast(T* data, std::int64_t n, int root, int device, const char* op) {
        minigrad::detail::record_refuse("it has an NCCL broadcast, which one block cannot run");
        ncclComm_t comm = nccl_comm(device, op);
        check_nccl(ncclBroadcast(data, data, static_cast<std::size_t>(n), nccl_type<T>(), root, comm, Cuda::stream(device)), op,
                   "ncclBroadcast");
    }
};

}  // namespace minigrad::dist::detail
