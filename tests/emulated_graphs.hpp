// A test backend: the Cpu backend with graphs that behave as CUDA's do. While a capture is open,
// launches and copies are recorded (their functors by value, as a CUDA graph records kernel
// arguments), not run; a replay runs the recording; host reads are refused. It lets the CPU test
// the logic of StepGraph, LossLog and the optimizers under capture, which on CUDA only a GPU runs.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <minigrad/minigrad.hpp>

struct EmulatedGraphs : minigrad::Cpu {
    static constexpr std::string_view name = "EmulatedGraphs";
    static constexpr bool supports_graphs = true;
    struct Recording {
        std::vector<std::function<void()>> ops;
    };
    using GraphHandle = Recording*;

    // Test knob: into how many chunks of rows a per-column reduction or scatter is cut, as a GPU
    // cuts them to have threads enough (B::column_chunks); 1, the Cpu's choice, by default.
    static std::int64_t& chunks_wanted() {
        static std::int64_t chunks = 1;
        return chunks;
    }
    static std::int64_t column_chunks(std::int64_t rows, std::int64_t /*cols*/, int /*device*/) {
        return rows < chunks_wanted() ? (rows < 1 ? 1 : rows) : chunks_wanted();
    }

    // Test knobs: make the next begin_capture fail, as a CUDA error would.
    static bool& fail_next_begin_capture() {
        static bool fail = false;
        return fail;
    }

    static minigrad::detail::CachingAllocator& allocator() {
        static minigrad::detail::CachingAllocator cache(&minigrad::Cpu::raw_allocate, [](void* p) { std::free(p); }, false);
        return cache;
    }
    static void* allocate(std::size_t bytes, int) { return allocator().allocate(bytes); }
    static void* allocate_state(std::size_t bytes, int) { return allocator().allocate(bytes, /*reuse=*/false); }
    static void deallocate(void* p, std::size_t bytes, int) { allocator().deallocate(p, bytes); }

    template <class F>
    static void launch(std::int64_t n, const F& f, int device) {
        if (auto* r = recording()) return r->ops.push_back([n, f] { minigrad::Cpu::launch(n, f, 0); });
        minigrad::Cpu::launch(n, f, device);
    }
    // Every primitive whose Cpu version calls Cpu::launch itself is routed here, so it is recorded
    // (a new Cpu primitive is inherited unrouted: end_capture below catches it).
    template <class T>
    static void sum_rows(const T* dy, std::int64_t rows, std::int64_t cols, T* db, bool overwrite, int device) {
        launch(cols, minigrad::kernels::SumRows<T>{dy, db, rows, cols, overwrite}, device);
    }
    template <class F>
    static void launch_rows(std::int64_t rows, std::int64_t cols, const F& f, int device) {
        if (auto* r = recording()) return r->ops.push_back([rows, cols, f] { minigrad::Cpu::launch_rows(rows, cols, f, 0); });
        minigrad::Cpu::launch_rows(rows, cols, f, device);
    }
    template <class T>
    static void gemm(const minigrad::kernels::GemmElement<T>& g, int device) {
        if (auto* r = recording()) return r->ops.push_back([g] { minigrad::Cpu::gemm(g, 0); });
        minigrad::Cpu::gemm(g, device);
    }
    template <class T, class F>
    static void gemm_then(const minigrad::kernels::GemmElement<T>& g, const F& f, int device) {
        if (auto* r = recording()) return r->ops.push_back([g, f] { minigrad::Cpu::gemm_then(g, f, 0); });
        minigrad::Cpu::gemm_then(g, f, device);
    }
    template <class T>
    static void sum(const T* x, std::int64_t n, T* out, T scale, bool overwrite, int device, const T* device_scale = nullptr) {
        if (auto* r = recording()) return r->ops.push_back([=] { minigrad::Cpu::sum(x, n, out, scale, overwrite, 0, device_scale); });
        minigrad::Cpu::sum(x, n, out, scale, overwrite, device, device_scale);
    }
    // Host work on tensor data (index checks, the label check and its count, an MPI all-reduce):
    // recorded, as the Cpu tape records it.
    template <class F>
    static void host_work(const F& f, int device) {
        if (auto* r = recording()) return r->ops.push_back(f);
        minigrad::Cpu::host_work(f, device);
    }
    template <class F>
    static void launch_block(const F& f, int device) {
        if (auto* r = recording()) return r->ops.push_back([f] { minigrad::Cpu::launch_block(f, 0); });
        minigrad::Cpu::launch_block(f, device);
    }
    static void copy(void* dst, const void* src, std::size_t bytes, int device) {
        if (auto* r = recording()) return r->ops.push_back([=] { minigrad::Cpu::copy(dst, src, bytes, 0); });
        minigrad::Cpu::copy(dst, src, bytes, device);
    }
    static void upload(void* dst, const void* src, std::size_t bytes, int device) {
        refuse_during_capture("copying host memory in (its source may be gone when the graph replays)");
        minigrad::Cpu::upload(dst, src, bytes, device);
    }
    static void download(void* dst, const void* src, std::size_t bytes, int device) {
        refuse_during_capture("reading a tensor on the host");
        minigrad::Cpu::download(dst, src, bytes, device);
    }
    static void synchronize(int) { refuse_during_capture("synchronizing"); }

    static bool capturing(int) { return recording() != nullptr; }
    static void refuse_during_capture(std::string_view what) {
        if (recording()) minigrad::detail::fail<minigrad::Error>("EmulatedGraphs: {} inside a captured step", what);
    }
    static void begin_capture(minigrad::detail::Pool* pool, int) {
        if (fail_next_begin_capture()) {
            fail_next_begin_capture() = false;
            throw minigrad::DeviceError("EmulatedGraphs: begin_capture failed (injected)");
        }
        allocator().push_pool(pool);
        recording() = new Recording;
        launches_at_capture() = minigrad::counters().kernel_launches;
    }
    // A Cpu primitive that ran during the capture instead of being recorded would make these tests
    // pass for the wrong reason: it means a new primitive needs routing above.
    static GraphHandle end_capture(int) {
        allocator().pop_pool();
        auto* graph = std::exchange(recording(), nullptr);
        if (minigrad::counters().kernel_launches != launches_at_capture()) {
            delete graph;
            throw std::logic_error("EmulatedGraphs: a Cpu primitive ran during capture instead of being recorded; route it in tests/emulated_graphs.hpp");
        }
        return graph;
    }
    static void abort_capture(int) {
        allocator().pop_pool();
        delete std::exchange(recording(), nullptr);
    }
    static void launch_graph(GraphHandle graph, int) {
        for (auto& op : graph->ops) op();
    }
    static void destroy_graph(GraphHandle graph, minigrad::detail::Pool* pool, int device) {
        delete graph;
        release_pool(pool, device);
    }
    static void release_pool(minigrad::detail::Pool* pool, int) { allocator().merge_into_default(*pool); }

  private:
    static std::uint64_t& launches_at_capture() {
        static std::uint64_t n = 0;
        return n;
    }
    static Recording*& recording() {
        static Recording* r = nullptr;
        return r;
    }
};
