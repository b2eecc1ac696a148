// StepGraph and LossLog under capture, on the CPU: EmulatedGraphs records launches while a capture
// is open and replays the recording, as a CUDA graph does, so the capture logic that only a GPU
// used to run is tested here.
#include "emulated_graphs.hpp"
#include "helpers.hpp"
#include "iris_run.hpp"


TEST_CASE("EmulatedGraphs: a captured Iris step replays to the same losses and weights as eager steps, bit for bit") {
    IrisRun<mg::Cpu> eager(0.9);
    IrisRun<EmulatedGraphs> graphed(0.9);
    mg::LossLog eager_log, graph_log;
    mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(graph_log); });
    for (int i = 0; i < 30; ++i) {
        eager.step(eager_log);
        graph.replay();
    }
    CHECK(graph.uses_graph());
    CHECK(graph_log.values() == eager_log.values());
    CHECK(graphed.model.parameter_values() == eager.model.parameter_values());
}

TEST_CASE("StepGraph: a capture that fails leaves nothing behind, and the next replay captures again") {
    IrisRun<mg::Cpu> eager;
    IrisRun<EmulatedGraphs> graphed;
    mg::LossLog eager_log, graph_log;
    int calls = 0;
    mg::StepGraph<EmulatedGraphs> graph([&] {
        if (++calls == 2) throw mg::ValueError("step failed once");  // the first capture attempt
        graphed.step(graph_log);
    });
    graph.replay();  // warm-up, eager
    eager.step(eager_log);
    CHECK(error_message([&] { graph.replay(); }) == "step failed once");
    CHECK(mg::detail::active_capture() == nullptr);
    for (int i = 0; i < 10; ++i) {  // the retry captures; each replay logs exactly one value
        graph.replay();
        eager.step(eager_log);
    }
    CHECK(graph_log.size() == 11);
    CHECK(graph_log.values() == eager_log.values());
}

TEST_CASE("StepGraph: a begin_capture that throws leaves no capture in progress") {
    IrisRun<EmulatedGraphs> graphed;
    mg::LossLog graph_log, other_log;
    mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(graph_log); });
    graph.replay();
    EmulatedGraphs::fail_next_begin_capture() = true;
    CHECK(error_message([&] { graph.replay(); }) == "EmulatedGraphs: begin_capture failed (injected)");
    CHECK(mg::detail::active_capture() == nullptr);
    // A log recorded now runs at once, as outside any capture.
    other_log.record(mg::Tensor<EmulatedGraphs>::full({}, 4.0f));
    CHECK(other_log.values() == std::vector<float>{4.0f});
    for (int i = 0; i < 3; ++i) graph.replay();
    CHECK(graph_log.size() == 4);
}

namespace test_graphs {
// EmulatedGraphs whose pool and graph calls throw for a device other than 0, as Cuda's do for a
// device index the machine does not have.
struct OneDeviceGraphs : EmulatedGraphs {
    static void check(int device) {
        if (device != 0) throw minigrad::DeviceError("OneDeviceGraphs: no device " + std::to_string(device));
    }
    static void begin_capture(minigrad::detail::Pool* pool, int device) {
        check(device);
        EmulatedGraphs::begin_capture(pool, device);
    }
    static void release_pool(minigrad::detail::Pool* pool, int device) {
        check(device);
        EmulatedGraphs::release_pool(pool, device);
    }
    static void destroy_graph(GraphHandle graph, minigrad::detail::Pool* pool, int device) {
        check(device);
        EmulatedGraphs::destroy_graph(graph, pool, device);
    }
};
}  // namespace test_graphs

TEST_CASE("StepGraph for a device that does not exist: the capture refuses it, and the destructor does not throw (std::terminate)") {
    int runs = 0;
    {
        mg::StepGraph<test_graphs::OneDeviceGraphs> never_run([&] { ++runs; }, mg::StepMode::graph, 16);
    }  // destroyed without a capture: it used to release its pool on device 16, and throw
    {
        mg::StepGraph<test_graphs::OneDeviceGraphs> graph([&] { ++runs; }, mg::StepMode::graph, 16);
        graph.replay();  // the warm-up step runs eagerly
        CHECK(error_message([&] { graph.replay(); }) == "OneDeviceGraphs: no device 16");
    }
    CHECK(runs == 1);
}

TEST_CASE("StepGraph: replaying after its LossLog was destroyed is refused, not a write into freed memory") {
    IrisRun<EmulatedGraphs> graphed;
    auto log = std::make_unique<mg::LossLog>();
    mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(*log); });
    graph.replay();
    graph.replay();  // captured: the graph now writes into the log's storage
    log.reset();
    CHECK(error_message([&] { graph.replay(); }) ==
          "StepGraph: a LossLog that the captured step records into was destroyed, so a replay would write freed memory; "
          "keep the LossLog alive as long as the StepGraph (declare the log before the graph)");
}

TEST_CASE("StepGraph destroyed before its LossLog: the log forgets it and keeps working") {
    IrisRun<EmulatedGraphs> graphed;
    mg::LossLog log;
    {
        mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(log); });
        for (int i = 0; i < 3; ++i) graph.replay();
    }
    graphed.step(log);
    CHECK(log.size() == 4);
}

TEST_CASE("caching allocator: a block from a graph's private pool goes back to that pool wherever it is freed") {
    mg::detail::CachingAllocator cache(&mg::Cpu::raw_allocate, [](void* p) { std::free(p); }, false);
    mg::detail::Pool graph_pool;
    cache.push_pool(&graph_pool);
    void* captured = cache.allocate(1024);
    cache.pop_pool();
    cache.deallocate(captured, 1024);  // freed after the capture ended
    void* outside = cache.allocate(1024);
    CHECK(outside != captured);  // still reserved for the graph's replays
    cache.push_pool(&graph_pool);
    CHECK(cache.allocate(1024) == captured);
    cache.pop_pool();
    cache.deallocate(captured, 1024);
    cache.merge_into_default(graph_pool);  // the graph is gone: its blocks join the shared cache
    void* reused = cache.allocate(1024);
    CHECK(reused == captured);
    cache.deallocate(reused, 1024);
    cache.deallocate(outside, 1024);
}
TEST_CASE("SGD::set_lr between replays changes what the captured step does") {
    IrisRun<mg::Cpu> eager;
    IrisRun<EmulatedGraphs> graphed;
    mg::LossLog eager_log, graph_log;
    mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(graph_log); });
    for (int i = 0; i < 20; ++i) {
        const double lr = i < 10 ? 0.05 : 0.5;  // a step schedule, changed after capture
        eager.opt.set_lr(lr);
        graphed.opt.set_lr(lr);
        eager.step(eager_log);
        graph.replay();
    }
    CHECK(graph_log.values() == eager_log.values());
    CHECK(graphed.model.parameter_values() == eager.model.parameter_values());
}

TEST_CASE("a backend that cuts column work into chunks of rows (a GPU: B::column_chunks) gets the gradients of one chunk: "
          "index_select and embedding bit for bit, layer_norm's weight within rounding") {
    struct Chunks {
        explicit Chunks(std::int64_t c) { EmulatedGraphs::chunks_wanted() = c; }
        ~Chunks() { EmulatedGraphs::chunks_wanted() = 1; }
    };
    const std::vector<float> xv = {0.5f, -1.f, 2.f, 0.25f, 3.f, -0.5f, 1.5f, -2.f, 0.75f, 1.f, -0.25f, 2.5f,
                                   -1.5f, 0.5f, 1.25f, -3.f, 2.f, 0.f, -0.75f, 1.f, 0.5f, -1.f, 2.f, 0.25f};
    const std::vector<std::int64_t> index = {3, 0, 3, 5, 1, 3};
    const auto grads = [&]<class B>(std::int64_t chunks) {
        const Chunks knob(chunks);
        auto x = mg::Tensor<B>::from(xv, {2, 6, 2}).requires_grad_();  // index_select along dim 1: outer 2, inner 2
        auto i = mg::Tensor<B, std::int64_t>::from(index, {6});
        auto w = mg::Tensor<B>::from(std::vector<float>(xv.begin(), xv.begin() + 12), {6, 2}).requires_grad_();
        auto lw = mg::Tensor<B>::from({1.f, 2.f, -1.f, 0.5f}, {4}).requires_grad_();
        auto lb = mg::Tensor<B>::zeros({4}).requires_grad_();
        auto rows = mg::Tensor<B>::from(xv, {6, 4});
        auto weights = mg::Tensor<B>::from({0.5f, -1.f, 2.f, 0.25f, 3.f, -0.5f}, {6, 1});
        auto loss = mg::sum(mg::index_select(x, 1, i) * mg::index_select(x, 1, i)) + mg::sum(mg::embedding(i, w) * 3.f) +
                    mg::sum(mg::layer_norm(rows, lw, lb) * weights);
        loss.backward();
        return std::vector{x.grad().to_vector(), w.grad().to_vector(), lw.grad().to_vector()};
    };
    const auto one = grads.template operator()<mg::Cpu>(1);
    for (std::int64_t chunks : {2, 3, 6}) {
        CAPTURE(chunks);
        const auto cut = grads.template operator()<EmulatedGraphs>(chunks);
        CHECK(cut[0] == one[0]);
        CHECK(cut[1] == one[1]);
        for (std::size_t c = 0; c < one[2].size(); ++c) CHECK(cut[2][c] == doctest::Approx(one[2][c]).epsilon(1e-6));
    }
}
