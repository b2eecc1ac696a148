// CudaBackend against the CPU backend, and the promises of the GPU issue: no host sync in the
// loop, no cudaMalloc after the first step, graph replay, clear runtime errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../helpers.hpp"
#include "iris.hpp"
#include "../iris_run.hpp"
#include "../recipe_run.hpp"

using CpuT = mg::Tensor<mg::Cpu>;
using GpuT = mg::Tensor<mg::Cuda>;

static void check_close(const std::vector<float>& a, const std::vector<float>& b, double tol = 1e-5) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("element ", i);
        CHECK(a[i] == doctest::Approx(b[i]).epsilon(tol).scale(1.0));
    }
}

template <class B>
using IrisMLP = examples::IrisMLP<B>;

static const std::string iris_path = std::string(MINIGRAD_DATA_DIR) + "/iris.csv";

struct Iris {
    CpuT x;
    mg::Tensor<mg::Cpu, std::int32_t> y;
};
static Iris iris() {
    const auto split = examples::load_iris(iris_path);
    return {CpuT::from(split.x_train), mg::Tensor<mg::Cpu, std::int32_t>::from(split.y_train)};
}

TEST_CASE("device facts") {
    CHECK(mg::cuda::device_count() >= 1);
    CHECK(mg::cuda::current_device() == 0);
    CHECK_FALSE(mg::cuda::device_name(0).empty());
    CHECK(mg::cuda::memory_info(0).total_bytes > 0);
    CHECK(error_message([] { mg::cuda::set_device(mg::cuda::device_count()); }).find("is out of range") != std::string::npos);
}

TEST_CASE("to<Cuda>() and back are copies with the same values") {
    auto a = CpuT::from({1, 2, 3, 4, 5, 6}, {2, 3});
    auto g = a.to<mg::Cuda>();
    CHECK(g.shape() == a.shape());
    CHECK(g.to<mg::Cpu>().to_vector() == a.to_vector());
    CHECK(g.to_vector() == a.to_vector());
}

TEST_CASE("every op's forward and gradients match the CPU backend") {
    mg::Generator gen(3);
    auto x = CpuT::uniform({37, 6}, -1, 1, gen), w = CpuT::uniform({5, 6}, -1, 1, gen), b = CpuT::uniform({5}, -1, 1, gen);
    auto m = CpuT::uniform({5, 4}, -1, 1, gen);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({37}, 0, 4, gen);
    for (auto* t : {&x, &w, &b, &m}) t->requires_grad_();
    // Written plainly: the same graph on both backends.
    auto cpu_loss = mg::add(mg::cross_entropy(mg::matmul(mg::relu(mg::linear(x, w, b)), m), labels),
                            mg::mean(mg::log_softmax(mg::matmul(mg::relu(mg::linear(x, w, b)), m))));
    cpu_loss.backward();
    auto xg = x.to<mg::Cuda>(), wg = w.to<mg::Cuda>(), bg = b.to<mg::Cuda>(), mg_ = m.to<mg::Cuda>();
    for (auto* t : {&xg, &wg, &bg, &mg_}) t->requires_grad_();
    auto lg = labels.to<mg::Cuda>();
    auto gpu_loss = mg::add(mg::cross_entropy(mg::matmul(mg::relu(mg::linear(xg, wg, bg)), mg_), lg),
                            mg::mean(mg::log_softmax(mg::matmul(mg::relu(mg::linear(xg, wg, bg)), mg_))));
    gpu_loss.backward();
    check_close(gpu_loss.to_vector(), cpu_loss.to_vector());
    check_close(xg.grad().to_vector(), x.grad().to_vector());
    check_close(wg.grad().to_vector(), w.grad().to_vector());
    check_close(bg.grad().to_vector(), b.grad().to_vector());
    check_close(mg_.grad().to_vector(), m.grad().to_vector());
    auto logits_cpu = mg::matmul(mg::relu(mg::linear(x, w, b)), m);
    auto logits_gpu = mg::matmul(mg::relu(mg::linear(xg, wg, bg)), mg_);
    CHECK(mg::argmax(logits_gpu).to_vector() == mg::argmax(logits_cpu).to_vector());
    auto big = CpuT::uniform({100000}, -1, 1, gen);
    CHECK(mg::sum(big.to<mg::Cuda>()).item() == doctest::Approx(mg::sum(big).item()).epsilon(1e-4));
}

// Every elementwise op once, broadcast binary ops and tensor-scalar forms, written once for both
// backends; a and b broadcast, w has the result's shape.
template <class B>
static mg::Tensor<B> elementwise_graph(const mg::Tensor<B>& a, const mg::Tensor<B>& b, const mg::Tensor<B>& w) {
    auto positive = mg::exp(b) + 0.5f;
    auto y = (a + b) * (a - b) / positive + 2.0f * mg::tanh(a) - mg::sigmoid(b) / 3.0f;
    y = mg::gelu(y) + mg::relu(1.0f - y) * mg::clamp(y, -0.5f, 0.5f) + mg::abs(-y);
    y = mg::log(mg::sqrt(mg::pow(y, 2.0f) + 1.0f)) + 3.0f / (positive * positive) - mg::neg(b) * a;
    return mg::sum(y * w);
}

TEST_CASE("every elementwise op, broadcasting and the tensor-scalar forms match the CPU backend") {
    mg::Generator gen(21);
    const std::pair<mg::Shape, mg::Shape> shapes[] = {
        {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{4}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 3, 4}, {3, 1}},
        {{3, 4}, {1}}, {{2000, 300}, {300}}, {{2000, 1}, {2000, 300}}, {{100000}, {1}}, {{50, 1, 40}, {1, 30, 1}}};
    for (const auto& [sa, sb] : shapes) {
        const std::string pattern = fmt::format("{} and {}", sa, sb);
        CAPTURE(pattern);
        auto a = CpuT::uniform(sa, -1, 1, gen), b = CpuT::uniform(sb, -1, 1, gen);
        auto ag = a.to<mg::Cuda>(), bg = b.to<mg::Cuda>();
        for (auto* t : {&a, &b}) t->requires_grad_();
        for (auto* t : {&ag, &bg}) t->requires_grad_();
        auto w = CpuT::uniform(mg::detail::broadcast_shapes("test", sa, "a", sb, "b"), 0.5, 1.5, gen);
        auto cpu_loss = elementwise_graph(a, b, w);
        auto gpu_loss = elementwise_graph(ag, bg, w.to<mg::Cuda>());
        cpu_loss.backward();
        gpu_loss.backward();
        CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-4));
        check_close(ag.grad().to_vector(), a.grad().to_vector(), 1e-4);
        check_close(bg.grad().to_vector(), b.grad().to_vector(), 1e-4);
    }
    auto a = GpuT::ones({3, 4}), b = GpuT::ones({3});
    CHECK(error_message([&] { (void)(a * b); }).find("mul: argument #2 'other' has shape [3], which does not broadcast") == 0);
}

// The dim reductions, softmax along a dim, the shape ops, bmm and the in-place members (issue 7).
template <class B>
static mg::Tensor<B> dim_and_shape_graph(const mg::Tensor<B>& x, const mg::Tensor<B>& m, const mg::Tensor<B, std::int64_t>& idx,
                                         const mg::Tensor<B>& w) {
    auto parts = mg::cat({mg::flatten(mg::sum(x, 1)), mg::flatten(mg::mean(x, -1, true)), mg::flatten(mg::max(x, 0)),
                          mg::flatten(mg::softmax(x, 1)), mg::flatten(mg::log_softmax(x, -1)), mg::flatten(mg::transpose(x, 0, 2)),
                          mg::flatten(mg::narrow(m, 1, 1, 3)), mg::flatten(mg::slice(m, 0, 2, 100)),
                          mg::flatten(mg::index_select(m, 0, idx)), mg::flatten(mg::t(m)), m.reshape({-1}),
                          mg::flatten(mg::bmm(x, mg::transpose(x, 1, 2)))});
    return mg::sum(parts * w);
}

TEST_CASE("dim reductions, softmax along a dim, shape ops and in-place ops match the CPU backend") {
    mg::Generator gen(31);
    auto x = CpuT::uniform({4, 3, 5}, -1, 1, gen), m = CpuT::uniform({6, 5}, -1, 1, gen);
    auto idx = mg::Tensor<mg::Cpu, std::int64_t>::from({5, 0, 5, 2, 5});
    auto xg = x.to<mg::Cuda>(), mg_ = m.to<mg::Cuda>();
    auto idxg = idx.to<mg::Cuda>();
    for (auto* t : {&x, &m}) t->requires_grad_();
    for (auto* t : {&xg, &mg_}) t->requires_grad_();
    mg::Generator wgen(32);
    // the parts' sizes, in dim_and_shape_graph's order
    const std::int64_t total = 4 * 5 + 4 * 3 + 3 * 5 + 3 * 60 + 6 * 3 + 4 * 5 + 5 * 5 + 30 + 30 + 4 * 3 * 3;
    auto w = CpuT::uniform({total}, 0.5, 1.5, wgen);
    auto cpu_loss = dim_and_shape_graph(x, m, idx, w);
    auto gpu_loss = dim_and_shape_graph(xg, mg_, idxg, w.to<mg::Cuda>());
    cpu_loss.backward();
    gpu_loss.backward();
    CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-4));
    check_close(xg.grad().to_vector(), x.grad().to_vector(), 1e-4);
    check_close(mg_.grad().to_vector(), m.grad().to_vector(), 1e-4);
    CHECK(mg::argmax(xg, 2).to_vector() == mg::argmax(x, 2).to_vector());
    CHECK(mg::argmax(xg.detach(), 0, true).to<mg::Cpu>().shape() == mg::Shape{1, 3, 5});

    auto y = GpuT::zeros({2, 3});
    y.fill_(2).mul_(3).add_(1);
    CHECK(y.to_vector() == std::vector<float>(6, 7.0f));
    y.copy_(CpuT::from({1, 2, 3, 4, 5, 6}, {2, 3}));
    CHECK(y.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
    auto back = CpuT::zeros({2, 3});
    back.copy_(y);
    CHECK(back.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
    y.zero_();
    CHECK(y.to_vector() == std::vector<float>(6, 0.0f));
    CHECK(error_message([&] { mg::narrow(y, 1, 2, 2); }).starts_with("narrow: argument #4 'length' is 2"));
    // an index out of range is found by a kernel and reported at the next host read
    auto bad = mg::index_select(y, 0, mg::Tensor<mg::Cpu, std::int64_t>::from({0, 2}).to<mg::Cuda>());
    CHECK(error_message([&] { bad.to_vector(); }).find("class 2 at index 1") != std::string::npos);
}

TEST_CASE("the same seed gives the same initial weights on both backends; a model moves in one call") {
    mg::manual_seed(42);
    IrisMLP<mg::Cpu> cpu_model;
    mg::manual_seed(42);
    IrisMLP<mg::Cuda> gpu_model;
    CHECK(gpu_model.parameter_values() == cpu_model.parameter_values());
    auto moved = cpu_model.to<mg::Cuda>();
    CHECK(moved.parameter_values() == cpu_model.parameter_values());
    auto back = moved.to<mg::Cpu>();
    CHECK(back.parameter_values() == cpu_model.parameter_values());
}

TEST_CASE("modules on CUDA match the CPU: a Sequential moved in one call, forward and every gradient, dropout's mask too") {
    mg::manual_seed(5);
    auto cpu_model = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(6, 70), mg::nn::Tanh{}, mg::nn::Dropout(0.3), mg::nn::LayerNorm<mg::Cpu>(70),
                                        mg::nn::GELU{}, mg::nn::Linear<mg::Cpu>(70, 5), mg::nn::Sigmoid{}, mg::nn::Softmax(-1));
    auto gpu_model = cpu_model.to<mg::Cuda>();
    CHECK(gpu_model.parameter_values() == cpu_model.parameter_values());
    mg::Generator gen(8);
    auto x = CpuT::uniform({33, 6}, -1, 1, gen), w = CpuT::uniform({33, 5}, -1, 1, gen);
    auto xg = x.to<mg::Cuda>(), wg = w.to<mg::Cuda>();
    mg::manual_seed(9);  // the same dropout offsets for both passes
    auto cpu_loss = mg::sum(cpu_model(x) * w);
    mg::manual_seed(9);
    auto gpu_loss = mg::sum(gpu_model(xg) * wg);
    CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-4));
    cpu_loss.backward();
    gpu_loss.backward();
    auto cpu_params = cpu_model.named_parameters();
    auto gpu_params = gpu_model.named_parameters();
    for (std::size_t i = 0; i < cpu_params.size(); ++i) {
        CAPTURE(cpu_params[i].first);
        check_close(gpu_params[i].second.grad().to_vector(), cpu_params[i].second.grad().to_vector(), 1e-4);
    }
    gpu_model.eval();
    auto back = gpu_model.to<mg::Cpu>();
    CHECK(!back.layer<2>().is_training());

    // Embedding: gather and the scatter-add gradient with repeated indices
    mg::nn::Embedding<mg::Cpu> table(50, 40);
    auto table_gpu = table.to<mg::Cuda>();
    auto index = mg::Tensor<mg::Cpu, std::int64_t>::from({3, 7, 3, 49, 0, 3}, {2, 3});
    auto weights = CpuT::uniform({2, 3, 40}, -1, 1, gen);
    mg::sum(table(index) * weights).backward();
    mg::sum(table_gpu(index.to<mg::Cuda>()) * weights.to<mg::Cuda>()).backward();
    check_close(table_gpu.weight.grad().to_vector(), table.weight.grad().to_vector(), 1e-5);
}

TEST_CASE("a label outside [0, classes) is reported at the next host read") {
    auto logits = GpuT::zeros({2, 3});
    auto bad = mg::Tensor<mg::Cpu, std::int32_t>::from({1, 3}).to<mg::Cuda>();
    auto loss = mg::cross_entropy(logits, bad);
    CHECK(error_message([&] { loss.item(); }) ==
          "cross_entropy: argument #2 'target' has class 3 at index 1, expected a class in [0, 3) (found on cuda:0 by a kernel, "
          "reported at the next host read)");
    CHECK(mg::cross_entropy(logits, mg::Tensor<mg::Cpu, std::int32_t>::from({1, 2}).to<mg::Cuda>()).item() ==
          doctest::Approx(std::log(3.0)));
}

TEST_CASE("tensors on different GPUs are a clear runtime error") {
    if (mg::cuda::device_count() < 2) {
        MESSAGE("one GPU: the cross-device case cannot run here");
        return;
    }
    auto a = GpuT::ones({2, 2}, 0), b = GpuT::ones({2, 2}, 1);
    CHECK(error_message([&] { mg::matmul(a, b); }) ==
          "matmul: argument #2 'other' is on cuda:1 but argument #1 'input' is on cuda:0; move it with .to<mg::Cuda>(0)");
}

TEST_CASE("out of device memory names the size asked for and what is free") {
    const auto msg = error_message([] { GpuT::empty({std::int64_t(1) << 40}); });  // 4 TiB of floats
    CHECK(msg.find("CUDA out of memory: tried to allocate 4194304.00 MiB on cuda:0") != std::string::npos);
    CHECK(msg.find("MiB free of") != std::string::npos);
}

TEST_CASE("200 training steps with log.record each step: zero host syncs, zero cudaMalloc after step 1") {
    auto data = iris();
    auto x = data.x.to<mg::Cuda>();
    auto y = data.y.to<mg::Cuda>();
    IrisMLP<mg::Cuda> model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01, .momentum = 0.9});
    mg::LossLog log(256);
    auto step = [&] {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    };
    step();
    const auto before = mg::counters();
    for (int i = 0; i < 200; ++i) step();
    const auto after = mg::counters();
    CHECK(after.host_syncs == before.host_syncs);
    CHECK(after.host_reads == before.host_reads);
    CHECK(after.device_to_host_bytes == before.device_to_host_bytes);
    CHECK(after.device_allocs == before.device_allocs);
    const auto losses = log.values();
    CHECK(losses.size() == 201);
    CHECK(losses.back() < losses.front());
}

TEST_CASE("the digits recipe on CUDA: after the first epoch, no cudaMalloc, no host sync and no host read per epoch") {
    const auto run = digits_recipe_epochs<mg::Cuda>(4);
    for (std::size_t e = 1; e < run.after_epoch.size(); ++e) {
        CAPTURE(e);
        CHECK(run.after_epoch[e].device_allocs == run.after_epoch[0].device_allocs);
        CHECK(run.after_epoch[e].host_syncs == run.after_epoch[0].host_syncs);
        CHECK(run.after_epoch[e].host_reads == run.after_epoch[0].host_reads);
        CHECK(run.after_epoch[e].kernel_launches > run.after_epoch[e - 1].kernel_launches);
    }
    REQUIRE(run.losses.size() == 4);
    CHECK(run.losses.back() < run.losses.front());
}

TEST_CASE("StepGraph: replays match eager steps, record every replay, and a host read inside is refused") {
    auto data = iris();
    auto x = data.x.to<mg::Cuda>();
    auto y = data.y.to<mg::Cuda>();
    mg::manual_seed(7);
    IrisMLP<mg::Cuda> eager;
    mg::manual_seed(7);
    IrisMLP<mg::Cuda> graphed;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD eager_opt(eager.parameters(), {.lr = 0.01});
    mg::optim::SGD graph_opt(graphed.parameters(), {.lr = 0.01});
    mg::LossLog eager_log(4), graph_log(4);  // small, so replays must grow it
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(graphed(x), y);
        graph_opt.zero_grad();
        loss.backward();
        graph_opt.step();
        graph_log.record(loss);
    });
    const auto before = mg::counters();
    for (int i = 0; i < 50; ++i) {
        auto loss = loss_fn(eager(x), y);
        eager_opt.zero_grad();
        loss.backward();
        eager_opt.step();
        eager_log.record(loss);
        graph.replay();
    }
    CHECK(mg::counters().host_syncs == before.host_syncs);
    CHECK(graph.uses_graph());
    const auto g = graph_log.values(), e = eager_log.values();
    REQUIRE(g.size() == 50);
    check_close(g, e, 1e-6);
    check_close(graphed.fc1.weight.to_vector(), eager.fc1.weight.to_vector(), 1e-6);

    mg::StepGraph<mg::Cuda> bad([&] { (void)mg::sum(x).item(); });
    bad.replay();  // the warm-up runs eagerly
    CHECK(error_message([&] { bad.replay(); }).find("is not possible inside a captured step") != std::string::npos);
}

TEST_CASE("StepGraph: an upload inside a captured step is refused; a step with no work on the graph's device is an error") {
    auto x = GpuT::ones({4});
    std::vector<float> host{1, 2, 3, 4};
    mg::StepGraph<mg::Cuda> uploads([&] { x = GpuT::from(host, {4}); });
    uploads.replay();  // eager warm-up
    CHECK(error_message([&] { uploads.replay(); }).find("copying host memory to the device") != std::string::npos);

    mg::StepGraph<mg::Cuda> idle([] {});
    idle.replay();
    CHECK(error_message([&] { idle.replay(); }) ==
          "StepGraph: the captured step launched no work on cuda:0; if its tensors are on another GPU, give the StepGraph "
          "that device (StepGraph(step, true, device))");
}

TEST_CASE("SGD::set_lr between graph replays reaches the captured update") {
    IrisRun<mg::Cuda> eager, graphed;
    mg::LossLog eager_log, graph_log;
    mg::StepGraph<mg::Cuda> graph([&] { graphed.step(graph_log); });
    for (int i = 0; i < 20; ++i) {
        const double lr = i < 10 ? 0.05 : 0.5;
        eager.opt.set_lr(lr);
        graphed.opt.set_lr(lr);
        eager.step(eager_log);
        graph.replay();
    }
    check_close(graph_log.values(), eager_log.values(), 1e-6);
}

// Iris (iris_run.hpp) with momentum on one backend, recording its loss each step.
template <class B>
struct IrisSteps : IrisRun<B> {
    mg::LossLog log;
    IrisSteps() : IrisRun<B>(0.9, 0.05) {}
    void step() { IrisRun<B>::step(log); }
};

TEST_CASE("compiled StepGraph on CUDA: one launch runs k Iris steps with momentum; losses within 1e-6 of eager, no sync, no cudaMalloc") {
    IrisSteps<mg::Cpu> cpu;
    IrisSteps<mg::Cuda> eager, compiled;
    mg::StepGraph<mg::Cuda> graph([&] { compiled.step(); }, mg::StepMode::compiled);
    graph.replay(2);  // warm-up and capture, then a step
    REQUIRE(graph.compiled());
    CHECK(graph.fallback_reason().empty());
    mg::Cuda::synchronize(0);
    const auto before = mg::counters();
    graph.replay(100);
    graph.replay(98);
    const auto after = mg::counters();
    CHECK(after.kernel_launches - before.kernel_launches == 2);  // one per replay(k): the log had room, so its hook launched nothing
    CHECK(after.host_syncs == before.host_syncs);
    CHECK(after.device_allocs == before.device_allocs);
    for (int i = 0; i < 200; ++i) {
        eager.step();
        cpu.step();
    }
    const auto c = compiled.log.values(), e = eager.log.values(), h = cpu.log.values();
    REQUIRE(c.size() == 200);
    check_close(c, e, 1e-6);
    check_close(c, h, 1e-5);
    check_close(compiled.model.fc1.weight.to_vector(), eager.model.fc1.weight.to_vector(), 1e-5);
}

TEST_CASE("compiled StepGraph on CUDA: Adam with dropout, k steps per launch, match the CPU's eager steps and masks") {
    const auto xc = CpuT::uniform({16, 8}, -1, 1);
    const auto yc = mg::Tensor<mg::Cpu, std::int64_t>::from(std::vector<std::int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    auto run = [&](auto tag, mg::StepMode mode) {
        using B = decltype(tag);
        mg::manual_seed(5);
        auto model = mg::nn::Sequential(mg::nn::Linear<B>(8, 32), mg::nn::ReLU{}, mg::nn::Dropout(0.5), mg::nn::Linear<B>(32, 4));
        mg::optim::Adam opt(model.parameters(), {.lr = 1e-2});
        mg::Generator gen(11);
        mg::LossLog log;
        mg::nn::CrossEntropyLoss loss_fn;
        const auto x = xc.to<B>();
        const auto y = yc.to<B>();
        auto step = [&] {
            auto h = model.template layer<1>()(model.template layer<0>()(x));
            auto loss = loss_fn(model.template layer<3>()(mg::dropout(mg::dropout(h, 0.5, true, gen), 0.25, true, gen)), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            log.record(loss);
        };
        mg::StepGraph<B> graph(step, mode);
        graph.replay(2);
        graph.replay(28);
        if (mode == mg::StepMode::compiled) CHECK(graph.compiled());
        return log.values();
    };
    const auto cpu = run(mg::Cpu{}, mg::StepMode::eager);
    check_close(run(mg::Cuda{}, mg::StepMode::compiled), cpu, 1e-5);
    check_close(run(mg::Cuda{}, mg::StepMode::graph), cpu, 1e-5);
}

TEST_CASE("compiled StepGraph on CUDA: a step with a cuBLAS product falls back to the graph, says why, and matches eager") {
    struct Restore {
        std::int64_t saved = mg::cuda::cublas_crossover();
        ~Restore() { mg::cuda::set_cublas_crossover(saved); }
    } restore;
    mg::cuda::set_cublas_crossover(0);  // every product goes to cuBLAS
    IrisSteps<mg::Cuda> eager, compiled;
    mg::StepGraph<mg::Cuda> graph([&] { compiled.step(); }, mg::StepMode::compiled);
    graph.replay(20);
    for (int i = 0; i < 20; ++i) eager.step();
    CHECK_FALSE(graph.compiled());
    CHECK(graph.fallback_reason().find("goes to cuBLAS") != std::string::npos);
    check_close(compiled.log.values(), eager.log.values(), 1e-6);
}

// While it lives, compiled programs captured run on a cooperative grid, however small their records.
struct AllOnGrid {
    std::int64_t saved = mg::compiled_block_max_work();
    AllOnGrid() { mg::set_compiled_block_max_work(0); }
    ~AllOnGrid() { mg::set_compiled_block_max_work(saved); }
};

TEST_CASE("compiled StepGraph on a cooperative grid: k Iris steps in one launch, within 1e-6 of eager, no sync, no cudaMalloc; a bad label is reported") {
    AllOnGrid on_grid;
    IrisSteps<mg::Cuda> eager, compiled;
    mg::StepGraph<mg::Cuda> graph([&] { compiled.step(); }, mg::StepMode::compiled);
    graph.replay(2);
    INFO(graph.fallback_reason());
    REQUIRE(graph.compiled());
    CHECK(graph.program_on_grid());
    mg::Cuda::synchronize(0);
    const auto before = mg::counters();
    graph.replay(100);
    graph.replay(98);
    const auto after = mg::counters();
    CHECK(after.kernel_launches - before.kernel_launches == 2);
    CHECK(after.host_syncs == before.host_syncs);
    CHECK(after.device_allocs == before.device_allocs);
    for (int i = 0; i < 200; ++i) eager.step();
    check_close(compiled.log.values(), eager.log.values(), 1e-6);
    check_close(compiled.model.fc1.weight.to_vector(), eager.model.fc1.weight.to_vector(), 1e-5);

    auto bad = compiled.y.to<mg::Cpu>();
    bad.data()[7] = 3;
    compiled.y.copy_(bad.to<mg::Cuda>());
    graph.replay();
    CHECK(error_message([] { mg::Cuda::synchronize(0); }).starts_with("cross_entropy: argument #2 'target' has class 3 at index 7"));
}

TEST_CASE("compiled StepGraph: a step with records above one block's work runs on a grid and matches the CPU") {
    struct Restore {
        std::int64_t saved = mg::cuda::cublas_crossover();
        ~Restore() { mg::cuda::set_cublas_crossover(saved); }
    } restore;
    mg::cuda::set_cublas_crossover(std::numeric_limits<std::int64_t>::max());  // the 256x512x512 products stay out of cuBLAS
    const auto xc = CpuT::uniform({256, 512}, -1, 1);
    std::vector<std::int32_t> labels(256);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
    const auto yc = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    auto run = [&](auto tag, mg::StepMode mode) {
        using B = decltype(tag);
        mg::manual_seed(9);
        auto model = mg::nn::Sequential(mg::nn::Linear<B>(512, 512), mg::nn::ReLU{}, mg::nn::Linear<B>(512, 10));
        mg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});
        mg::LossLog log;
        mg::nn::CrossEntropyLoss loss_fn;
        const auto x = xc.to<B>();
        const auto y = yc.to<B>();
        mg::StepGraph<B> graph(
            [&] {
                auto loss = loss_fn(model(x), y);
                opt.zero_grad();
                loss.backward();
                opt.step();
                log.record(loss);
            },
            mode);
        graph.replay(2);
        graph.replay(18);
        if (mode == mg::StepMode::compiled) {
            INFO(graph.fallback_reason());
            CHECK(graph.compiled());
            CHECK(graph.program_on_grid());
        }
        return log.values();
    };
    const auto cpu = run(mg::Cpu{}, mg::StepMode::eager);
    check_close(run(mg::Cuda{}, mg::StepMode::compiled), cpu, 1e-4);
}

TEST_CASE("Iris in every mode: eager, graph, compiled, compiled k=100 and on a grid stay within 1e-4 of the CPU curve over 20000 epochs") {
    IrisSteps<mg::Cpu> cpu;
    for (int i = 0; i < 20000; ++i) cpu.step();
    const auto reference = cpu.log.values();
    struct Mode {
        mg::StepMode mode;
        int k;
        bool grid;
    };
    for (auto [mode, k, grid] : {Mode{mg::StepMode::eager, 1, false}, Mode{mg::StepMode::graph, 1, false}, Mode{mg::StepMode::compiled, 1, false},
                                 Mode{mg::StepMode::compiled, 100, false}, Mode{mg::StepMode::compiled, 100, true}}) {
        std::optional<AllOnGrid> on_grid;
        if (grid) on_grid.emplace();
        IrisSteps<mg::Cuda> gpu;
        mg::StepGraph<mg::Cuda> graph([&] { gpu.step(); }, mode);
        for (int done = 0; done < 20000; done += k) graph.replay(k);
        const auto losses = gpu.log.values();
        double worst = 0;
        for (std::size_t i = 0; i < losses.size(); ++i)
            worst = std::max(worst, std::abs(double(losses[i]) - reference[i]) / std::max(std::abs(double(reference[i])), 1e-30));
        MESSAGE("Iris mode ", int(mode), " k=", k, grid ? " grid" : "", ": CPU/CUDA max relative difference over 20000 losses: ", worst);
        check_close(losses, reference, 1e-4);
    }
}

TEST_CASE("a device index past minigrad's table is an error, not a read past it") {
    CHECK_THROWS_AS((GpuT::zeros({1}, 16)), mg::DeviceError);
    CHECK_THROWS_AS((GpuT::zeros({1}, -1)), mg::DeviceError);
}

TEST_CASE("Iris: CPU and CUDA loss curves agree to 1e-4 relative at every recorded point over 20000 epochs") {
    auto data = iris();
    auto train = [&](auto backend_tag) {
        using B = decltype(backend_tag);
        mg::manual_seed(42);
        IrisMLP<B> model;
        auto x = data.x.template to<B>();
        auto y = data.y.template to<B>();
        mg::nn::CrossEntropyLoss loss_fn;
        mg::optim::SGD opt(model.parameters(), {.lr = 0.01});
        mg::LossLog log;
        for (int epoch = 0; epoch < 20000; ++epoch) {
            auto loss = loss_fn(model(x), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            if ((epoch + 1) % 200 == 0) log.record(loss);
        }
        return log.values();
    };
    const auto cpu = train(mg::Cpu{});
    const auto gpu = train(mg::Cuda{});
    check_close(gpu, cpu, 1e-4);
    CHECK(gpu.back() < 0.1f);
    double worst = 0;
    for (std::size_t i = 0; i < std::min(cpu.size(), gpu.size()); ++i)
        worst = std::max(worst, std::abs(double(gpu[i]) - cpu[i]) / std::max(std::abs(double(cpu[i])), 1e-30));
    MESSAGE("Iris CPU/CUDA max relative difference over ", cpu.size(), " recorded losses: ", worst);  // scripts/gpu-check.sh reads this line
}

// ---- large shapes: cuBLAS, multi-block reductions, warp-per-row kernels -----------------------

// |a_i - b_i| <= tol * max |b|: for gradients, whose elements are small (1/rows) and would pass
// any absolute tolerance.
static void check_close_scaled(const std::vector<float>& a, const std::vector<float>& b, double tol) {
    REQUIRE(a.size() == b.size());
    double scale = 0, worst = 0;
    for (float v : b) scale = std::max(scale, double(std::abs(v)));
    REQUIRE(scale > 0);
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    CHECK(worst <= tol * scale);
}

static std::vector<float> random_row(std::int64_t n, mg::Generator& gen) {
    return CpuT::uniform({n}, -1, 1, gen).to_vector();
}

// Sets where matrix products switch to cuBLAS for one scope.
struct CrossoverGuard {
    std::int64_t saved = mg::cuda::cublas_crossover();
    explicit CrossoverGuard(std::int64_t mnk) { mg::cuda::set_cublas_crossover(mnk); }
    ~CrossoverGuard() { mg::cuda::set_cublas_crossover(saved); }
};
static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

struct Tf32Guard {
    bool saved = mg::cuda::tf32_allowed();
    explicit Tf32Guard(bool allow) { mg::cuda::allow_tf32(allow); }
    ~Tf32Guard() { mg::cuda::allow_tf32(saved); }
};

// c = op(a) op(b) [+ bias] (written or added to init) through Cuda::gemm, by cuBLAS or GemmElement;
// checks that the path asked for is the one taken.
static std::vector<float> gpu_gemm(bool by_cublas, const GpuT& a, const GpuT& b, const GpuT* bias, const CpuT& init,
                                   std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb, bool overwrite) {
    CrossoverGuard guard(by_cublas ? 0 : never);
    auto c = init.to<mg::Cuda>();
    const auto before = mg::counters().library_gemms;
    mg::Cuda::gemm(mg::kernels::GemmElement<float>{a.data(), b.data(), bias ? bias->data() : nullptr, c.data(), m, n, k, ta, tb, overwrite}, 0);
    CHECK(mg::counters().library_gemms - before == (by_cublas ? 1u : 0u));
    return c.to_vector();
}

TEST_CASE("cuBLAS equals the built-in GemmElement in every transpose, bias and accumulate mode at odd sizes [large]") {
    mg::Generator gen(11);
    const std::int64_t sizes[] = {1, 3, 17, 1000};
    for (auto m : sizes)
        for (auto n : sizes)
            for (auto k : sizes) {
                if ((m == 1000) + (n == 1000) + (k == 1000) > 2) continue;  // 1000^3 adds time, not coverage
                const auto a = CpuT::uniform({m * k}, -1, 1, gen).to<mg::Cuda>(), b = CpuT::uniform({k * n}, -1, 1, gen).to<mg::Cuda>();
                const auto bias = CpuT::uniform({n}, -1, 1, gen).to<mg::Cuda>();
                const auto init = CpuT::uniform({m, n}, -1, 1, gen);
                for (bool ta : {false, true})
                    for (bool tb : {false, true})
                        for (bool with_bias : {false, true})
                            for (bool overwrite : {false, true}) {
                                CAPTURE(m);
                                CAPTURE(n);
                                CAPTURE(k);
                                CAPTURE(ta);
                                CAPTURE(tb);
                                CAPTURE(with_bias);
                                CAPTURE(overwrite);
                                const GpuT* bias_ptr = with_bias ? &bias : nullptr;
                                const auto lib = gpu_gemm(true, a, b, bias_ptr, init, m, n, k, ta, tb, overwrite);
                                const auto own = gpu_gemm(false, a, b, bias_ptr, init, m, n, k, ta, tb, overwrite);
                                // every term is at most 1 in size: k+2 of them bound the rounding
                                const double tol = 2e-6 * static_cast<double>(k + 2);
                                double worst = 0;
                                for (std::size_t i = 0; i < lib.size(); ++i) worst = std::max(worst, std::abs(double(lib[i]) - own[i]));
                                CHECK(worst <= tol);
                            }
            }
}

TEST_CASE("matrix products take cuBLAS from the crossover on, and linear/matmul match the CPU there") {
    CHECK(mg::cuda::cublas_crossover() == mg::cuda::default_cublas_crossover);
    CHECK(error_message([] { mg::cuda::set_cublas_crossover(-1); }) == "set_cublas_crossover: argument #1 'mnk' is -1, expected >= 0");
    mg::Generator gen(12);
    auto x = CpuT::uniform({300, 200}, -1, 1, gen), w = CpuT::uniform({100, 200}, -1, 1, gen), b = CpuT::uniform({100}, -1, 1, gen);
    auto xg = x.to<mg::Cuda>(), wg = w.to<mg::Cuda>(), bg = b.to<mg::Cuda>();
    const std::int64_t mnk = 300 * 100 * 200;
    {
        CrossoverGuard guard(mnk + 1);
        const auto before = mg::counters().library_gemms;
        (void)mg::linear(xg, wg, bg);
        CHECK(mg::counters().library_gemms == before);
    }
    CrossoverGuard guard(mnk);
    const auto before = mg::counters().library_gemms;
    auto y = mg::linear(xg, wg, bg);
    CHECK(mg::counters().library_gemms == before + 1);
    check_close(y.to_vector(), mg::linear(x, w, b).to_vector(), 1e-5);
}

TEST_CASE("TF32 is off by default; allowed, it changes float products by about 1e-3 at most [large]") {
    CHECK_FALSE(mg::cuda::tf32_allowed());
    mg::Generator gen(13);
    const std::int64_t n = 512;
    auto a = CpuT::uniform({n, n}, -1, 1, gen), b = CpuT::uniform({n, n}, -1, 1, gen);
    const auto av = a.to_vector(), bv = b.to_vector();
    std::vector<double> ref(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t p = 0; p < n; ++p)
            for (std::int64_t j = 0; j < n; ++j) ref[i * n + j] += double(av[i * n + p]) * bv[p * n + j];
    const double scale = *std::max_element(ref.begin(), ref.end(), [](double l, double r) { return std::abs(l) < std::abs(r); });
    auto max_error = [&](const std::vector<float>& c) {
        double worst = 0;
        for (std::size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(c[i] - ref[i]));
        return worst / std::abs(scale);
    };
    CrossoverGuard guard(0);
    auto ag = a.to<mg::Cuda>(), bg = b.to<mg::Cuda>();
    const auto fp32 = mg::matmul(ag, bg).to_vector();
    std::vector<float> tf32;
    {
        Tf32Guard allow(true);
        tf32 = mg::matmul(ag, bg).to_vector();
    }
    CHECK_FALSE(mg::cuda::tf32_allowed());
    MESSAGE("max error relative to the largest output: FP32 ", max_error(fp32), ", TF32 ", max_error(tf32));
    CHECK(max_error(fp32) < 1e-5);  // FP32 math: TF32's 10-bit mantissa would be far above this
    CHECK(max_error(tf32) < 2e-3);
    CHECK(tf32 != fp32);  // the opt-in does reach cuBLAS
}

TEST_CASE("sum and mean over 1..10^7 elements match a double reference, on both the one-block and multi-block paths [large]") {
    mg::Generator gen(14);
    for (std::int64_t n : {1, 2, 255, 256, 257, 65535, 65536, 65537, 1000003, 10000000}) {
        CAPTURE(n);
        const auto x = CpuT::uniform({n}, -1, 1, gen);
        const auto values = x.to_vector();
        double ref = 0, magnitude = 0;
        for (float v : values) ref += v, magnitude += std::abs(v);
        auto xg = x.to<mg::Cuda>();
        const auto launches = mg::counters().kernel_launches;
        const double got = mg::sum(xg).item();
        const std::uint64_t expected_launches = n >= mg::Cuda::device_reduce_min ? 2 : 1;  // DeviceReduce then ScaleWrite
        CHECK(mg::counters().kernel_launches - launches == expected_launches);
        CHECK(std::abs(got - ref) <= 1e-6 * magnitude + 1e-6);
        CHECK(std::abs(mg::mean(xg).item() - ref / n) <= (1e-6 * magnitude + 1e-6) / n);
        auto out = GpuT::from({2.5f});
        mg::Cuda::sum(xg.data(), n, out.data(), 0.5f, false, 0);  // added, scaled
        CHECK(std::abs(out.item() - (2.5 + 0.5 * ref)) <= 1e-6 * magnitude + 1e-5);
    }
}

TEST_CASE("column sums (the bias gradient) over many rows match the CPU backend, written and added [large]") {
    mg::Generator gen(15);
    const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1}, {3, 5}, {64, 3}, {100000, 10}, {4096, 1000}, {70000, 3}, {5, 300000}};
    for (auto [rows, cols] : shapes)
        for (bool overwrite : {false, true}) {
            CAPTURE(rows);
            CAPTURE(cols);
            CAPTURE(overwrite);
            const auto dy = CpuT::uniform({rows, cols}, -1, 1, gen);
            const auto init = random_row(cols, gen);
            auto cpu = CpuT::from(init, {cols});
            auto gpu = CpuT::from(init, {cols}).to<mg::Cuda>();
            mg::Cpu::sum_rows(dy.data(), rows, cols, cpu.data(), overwrite, 0);
            auto dyg = dy.to<mg::Cuda>();
            mg::Cuda::sum_rows(dyg.data(), rows, cols, gpu.data(), overwrite, 0);
            const auto c = cpu.to_vector(), g = gpu.to_vector(), values = dy.to_vector();
            double worst_gpu = 0, worst_cpu = 0;
            for (std::int64_t j = 0; j < cols; ++j) {
                double ref = overwrite ? 0.0 : init[j];
                for (std::int64_t r = 0; r < rows; ++r) ref += values[r * cols + j];
                worst_gpu = std::max(worst_gpu, std::abs(g[j] - ref));
                worst_cpu = std::max(worst_cpu, std::abs(c[j] - ref));
            }
            // a dropped or doubled row moves a sum by up to 1; rounding over 10^5 rows stays far below
            CHECK(worst_gpu <= 1e-5 + 1e-7 * static_cast<double>(rows));
            CHECK(worst_cpu <= 1e-5 + 1e-7 * static_cast<double>(rows));
        }
    // ...and through linear's backward, with the product on cuBLAS
    auto x = CpuT::uniform({50000, 8}, -1, 1, gen), w = CpuT::uniform({10, 8}, -1, 1, gen), b = CpuT::uniform({10}, -1, 1, gen);
    for (auto* t : {&w, &b}) t->requires_grad_();
    mg::sum(mg::linear(x, w, b)).backward();
    auto xg = x.to<mg::Cuda>(), wg = w.detach().to<mg::Cuda>(), bg = b.detach().to<mg::Cuda>();
    for (auto* t : {&wg, &bg}) t->requires_grad_();
    mg::sum(mg::linear(xg, wg, bg)).backward();
    check_close_scaled(bg.grad().to_vector(), b.grad().to_vector(), 1e-5);
    check_close_scaled(wg.grad().to_vector(), w.grad().to_vector(), 1e-5);
}

TEST_CASE("log_softmax and cross_entropy over many rows and many classes match the CPU backend [large]") {
    mg::Generator gen(16);
    const std::pair<std::int64_t, std::int64_t> shapes[] = {{3000, 1000}, {7, 5000}, {100000, 10}, {65, 64}, {65, 63}, {33, 65}};
    for (auto [rows, cols] : shapes) {
        CAPTURE(rows);
        CAPTURE(cols);
        auto x = CpuT::uniform({rows, cols}, -4, 4, gen);
        auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({rows}, 0, static_cast<double>(cols), gen);
        x.requires_grad_();
        auto cpu_loss = mg::add(mg::cross_entropy(x, labels), mg::mean(mg::log_softmax(x)));
        cpu_loss.backward();
        auto xg = x.detach().to<mg::Cuda>();
        xg.requires_grad_();
        auto gpu_loss = mg::add(mg::cross_entropy(xg, labels.to<mg::Cuda>()), mg::mean(mg::log_softmax(xg)));
        gpu_loss.backward();
        // the CPU sums the mean's millions of terms one after another: its rounding, not the GPU's, sets this
        check_close(gpu_loss.to_vector(), cpu_loss.to_vector(), 1e-4);
        check_close(mg::log_softmax(xg.detach()).to_vector(), mg::log_softmax(x.detach()).to_vector(), 1e-5);
        check_close_scaled(xg.grad().to_vector(), x.grad().to_vector(), 1e-5);
    }
}

TEST_CASE("SGD with momentum and weight decay over 3 million parameters matches the CPU backend [large]") {
    mg::Generator gen(17);
    auto p = CpuT::uniform({1000, 3000}, -1, 1, gen);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({1000}, 0, 3000, gen);
    auto pg = p.to<mg::Cuda>();
    auto lg = labels.to<mg::Cuda>();
    p.requires_grad_();
    pg.requires_grad_();
    mg::optim::SGD<mg::Cpu, float> cpu_opt(std::vector<CpuT>{p}, {.lr = 0.5, .momentum = 0.9, .weight_decay = 0.01});
    mg::optim::SGD<mg::Cuda, float> gpu_opt(std::vector<GpuT>{pg}, {.lr = 0.5, .momentum = 0.9, .weight_decay = 0.01});
    for (int step = 0; step < 3; ++step) {
        cpu_opt.zero_grad();
        gpu_opt.zero_grad();
        mg::cross_entropy(p, labels).backward();
        mg::cross_entropy(pg, lg).backward();
        cpu_opt.step();
        gpu_opt.step();
    }
    check_close(pg.to_vector(), p.to_vector(), 1e-5);
}

TEST_CASE("StepGraph with cuBLAS inside: a model wide enough for the cuBLAS path replays as it runs eagerly") {
    mg::Generator gen(18);
    auto x = CpuT::uniform({512, 256}, -1, 1, gen).to<mg::Cuda>();
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::uniform({512}, 0, 10, gen).to<mg::Cuda>();
    auto make = [] {
        mg::manual_seed(19);
        return mg::nn::Sequential(mg::nn::Linear<mg::Cuda>(256, 512), mg::nn::ReLU{}, mg::nn::Linear<mg::Cuda>(512, 10));
    };
    auto eager = make();
    auto graphed = make();
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD eager_opt(eager.parameters(), {.lr = 0.05, .momentum = 0.9});
    mg::optim::SGD graph_opt(graphed.parameters(), {.lr = 0.05, .momentum = 0.9});
    mg::LossLog eager_log(16), graph_log(16);
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(graphed(x), y);
        graph_opt.zero_grad();
        loss.backward();
        graph_opt.step();
        graph_log.record(loss);
    });
    const auto gemms = mg::counters().library_gemms;
    for (int i = 0; i < 10; ++i) {
        auto loss = loss_fn(eager(x), y);
        eager_opt.zero_grad();
        loss.backward();
        eager_opt.step();
        eager_log.record(loss);
        graph.replay();
    }
    // 2 forward + 3 backward products per step (the first layer's input needs no gradient): ten
    // eager steps, the graph's eager first replay and its capture; replays launch the graph only
    CHECK(mg::counters().library_gemms - gemms == 10 * 5 + 5 + 5);
    CHECK(graph.uses_graph());
    const auto g = graph_log.values(), e = eager_log.values();
    REQUIRE(g.size() == 10);
    check_close(g, e, 1e-6);
    CHECK(g.back() < g.front());
    const auto gp = graphed.parameter_values(), ep = eager.parameter_values();
    REQUIRE(gp.size() == ep.size());
    for (const auto& [name, values] : ep) {
        INFO("parameter ", name);
        check_close(gp.at(name).values, values.values, 1e-6);
    }
}

TEST_CASE("DataLoader<Cuda> feeds a captured step the same batches as the CPU loader; metrics read once on the GPU") {
    auto iris = mg::data::read_csv(iris_path, {.label = "species"});
    const mg::data::LoaderOptions options{.batch_size = 32, .shuffle = true, .seed = 5, .drop_last = true};
    mg::data::DataLoader<mg::Cpu> cpu_loader(iris, options);
    mg::data::DataLoader<mg::Cuda> gpu_loader(iris, options);
    mg::manual_seed(3);
    IrisMLP<mg::Cpu> cpu_model;
    mg::manual_seed(3);
    IrisMLP<mg::Cuda> gpu_model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD cpu_opt(cpu_model.parameters(), {.lr = 0.01});
    mg::optim::SGD gpu_opt(gpu_model.parameters(), {.lr = 0.01});
    mg::LossLog cpu_log, gpu_log;
    auto x = mg::Tensor<mg::Cuda>::empty({32, 4});
    auto y = mg::Tensor<mg::Cuda, std::int32_t>::empty({32});
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(gpu_model(x), y);
        gpu_opt.zero_grad();
        loss.backward();
        gpu_opt.step();
        gpu_log.record(loss);
    });
    for (int epoch = 0; epoch < 3; ++epoch) {
        for (const auto& [bx, by] : cpu_loader) {
            auto loss = loss_fn(cpu_model(bx), by);
            cpu_opt.zero_grad();
            loss.backward();
            cpu_opt.step();
            cpu_log.record(loss);
        }
        for (const auto& batch : gpu_loader.into(x, y)) (void)batch, graph.replay();
    }
    check_close(gpu_log.values(), cpu_log.values(), 1e-5);

    auto logits = gpu_model(x);
    mg::reset_counters();
    const double acc = mg::metrics::accuracy(logits, y);
    CHECK(mg::counters().host_reads == 1);
    CHECK(acc == mg::metrics::accuracy(logits.to<mg::Cpu>(), y.to<mg::Cpu>()));
    auto half = mg::Tensor<mg::Cuda>::full({5, 2}, 0.5f), zero = mg::Tensor<mg::Cuda>::zeros({5, 2});
    CHECK(mg::metrics::mse(half, zero) == doctest::Approx(0.25));
    CHECK(mg::metrics::mae(half, zero) == doctest::Approx(0.5));
}

TEST_CASE("Adam on CUDA matches the CPU: Iris losses, captured with a cosine schedule changed between replays, and the step count") {
    const auto data = iris();
    const auto xg = data.x.to<mg::Cuda>();
    const auto yg = data.y.to<mg::Cuda>();
    mg::Generator cpu_gen(42), gpu_gen(42);
    IrisMLP<mg::Cpu> cpu_model(10, cpu_gen);
    IrisMLP<mg::Cuda> gpu_model(10, gpu_gen);
    mg::optim::Adam<mg::Cpu, float> cpu_opt(cpu_model.parameters(), {.lr = 0.01, .weight_decay = 0.01});
    mg::optim::Adam<mg::Cuda, float> gpu_opt(gpu_model.parameters(), {.lr = 0.01, .weight_decay = 0.01});
    mg::optim::lr_scheduler::CosineAnnealingLR cpu_schedule(cpu_opt, 50, 0.001), gpu_schedule(gpu_opt, 50, 0.001);
    mg::nn::CrossEntropyLoss loss_fn;
    mg::LossLog cpu_log, gpu_log;
    mg::StepGraph<mg::Cuda> graph([&] {
        auto loss = loss_fn(gpu_model(xg), yg);
        gpu_opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(gpu_model.parameters(), 1.0);
        gpu_opt.step();
        gpu_log.record(loss);
    });
    for (int i = 0; i < 150; ++i) {
        auto loss = loss_fn(cpu_model(data.x), data.y);
        cpu_opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(cpu_model.parameters(), 1.0);
        cpu_opt.step();
        cpu_log.record(loss);
        graph.replay();
        cpu_schedule.step();
        gpu_schedule.step();
    }
    CHECK(graph.uses_graph());
    check_close(gpu_log.values(), cpu_log.values(), 1e-5);
    CHECK(gpu_opt.step_count(0) == 150);
    CHECK(gpu_opt.step_count(3) == 150);
}

TEST_CASE("Adam and RMSprop over 3 million parameters (many elements per lane) match the CPU backend [large]") {
    mg::Generator gen(17);
    auto p = CpuT::uniform({1000, 3000}, -1, 1, gen);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({1000}, 0, 3000, gen);
    auto lg = labels.to<mg::Cuda>();
    for (int kind = 0; kind < 2; ++kind) {
        CAPTURE(kind);
        auto pc = p.clone();
        auto pg = p.to<mg::Cuda>();
        pc.requires_grad_();
        pg.requires_grad_();
        auto run = [&](auto& cpu_opt, auto& gpu_opt) {
            for (int step = 0; step < 3; ++step) {
                cpu_opt.zero_grad();
                gpu_opt.zero_grad();
                mg::cross_entropy(pc, labels).backward();
                mg::cross_entropy(pg, lg).backward();
                cpu_opt.step();
                gpu_opt.step();
            }
        };
        if (kind == 0) {
            mg::optim::Adam<mg::Cpu, float> cpu_opt(std::vector<CpuT>{pc}, {.lr = 0.01, .weight_decay = 0.01});
            mg::optim::Adam<mg::Cuda, float> gpu_opt(std::vector<GpuT>{pg}, {.lr = 0.01, .weight_decay = 0.01});
            run(cpu_opt, gpu_opt);
        } else {
            mg::optim::RMSprop<mg::Cpu, float> cpu_opt(std::vector<CpuT>{pc}, {.momentum = 0.9, .centered = true});
            mg::optim::RMSprop<mg::Cuda, float> gpu_opt(std::vector<GpuT>{pg}, {.momentum = 0.9, .centered = true});
            run(cpu_opt, gpu_opt);
        }
        check_close(pg.to_vector(), pc.to_vector(), 1e-5);
    }
}
