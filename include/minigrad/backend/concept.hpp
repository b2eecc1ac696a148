// What a backend must provide: the primitives that generic code (tensor, autograd, ops, nn, optim,
// step capture) calls, written once as a concept. Cpu and Cuda are checked against it where they are
// defined (backend/cpu.hpp, backend/cuda.cuh); a new backend is a type that satisfies it. The
// functor-taking primitives are checked with probe functors of each kind a backend launches (an
// index functor, a row functor, a host task, a block functor), the element-typed ones for float.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../config.hpp"
#include "kernels.hpp"

namespace minigrad {
namespace detail {
struct Pool;  // caching_allocator.hpp: a captured step's private memory
namespace probe {
struct IndexFunctor {  // f(i) for i < n (launch, launch_rows, gemm_then's epilogue)
    MINIGRAD_HD void operator()(std::int64_t) const {}
};
struct HostTask {  // f() on the host (host_work)
    void operator()() const {}
};
struct BlockFunctor {  // f.block(team): a team of threads runs it together (launch_block, launch_grid)
    template <class Team>
    MINIGRAD_HD void block(const Team&) const {}
};
}  // namespace probe
}  // namespace detail

template <class B>
concept Backend = requires(void* dst, const void* src, std::size_t bytes, int device, std::int64_t n, std::string_view what,
                           const kernels::GemmElement<float>& product, const float* x, float* out,
                           detail::Pool* pool, typename B::GraphHandle graph) {
    // what it is
    { B::name } -> std::convertible_to<std::string_view>;
    { B::is_host } -> std::convertible_to<bool>;          // host code may read its storage directly
    { B::supports_graphs } -> std::convertible_to<bool>;  // StepGraph can capture and replay a step
    { B::one_block_max_work } -> std::convertible_to<std::int64_t>;
    // memory and copies (device: the device index; bytes: a size in bytes)
    { B::allocate(bytes, device) } -> std::same_as<void*>;
    { B::allocate_state(bytes, device) } -> std::same_as<void*>;  // long-lived state made between steps
    B::deallocate(dst, bytes, device);
    { B::current_device() } -> std::convertible_to<int>;
    B::upload(dst, src, bytes, device);    // from host memory
    B::download(dst, src, bytes, device);  // to host memory
    B::copy(dst, src, bytes, device);      // within the backend
    B::synchronize(device);
    // work
    B::launch(n, detail::probe::IndexFunctor{}, device);
    B::launch_rows(n, n, detail::probe::IndexFunctor{}, device);
    B::gemm(product, device);
    B::gemm_then(product, detail::probe::IndexFunctor{}, device);
    B::sum(x, n, out, 1.0f, true, device);
    B::sum_rows(x, n, n, out, true, device);
    // into how many chunks of rows a per-column reduction or scatter over (rows, cols) is cut, so
    // that chunks * cols threads fill the device (1: a thread per column)
    { B::column_chunks(n, n, device) } -> std::convertible_to<std::int64_t>;
    // host work in a step (an index check, an MPI call): a host backend only (B::is_host)
    requires !B::is_host || requires { B::host_work(detail::probe::HostTask{}, device); };
    B::launch_block(detail::probe::BlockFunctor{}, device);
    { B::template grid_size<detail::probe::BlockFunctor>(device) } -> std::convertible_to<int>;
    { B::launch_grid(detail::probe::BlockFunctor{}, 1, device) } -> std::convertible_to<bool>;
    // step capture (capture/graph.hpp)
    { B::capturing(device) } -> std::convertible_to<bool>;
    B::refuse_during_capture(device, what);
    B::begin_capture(pool, device);
    { B::end_capture(device) } -> std::same_as<typename B::GraphHandle>;
    B::abort_capture(device);
    B::launch_graph(graph, device);
    B::destroy_graph(graph, pool, device);
    B::release_pool(pool, device);
};

}  // namespace minigrad
