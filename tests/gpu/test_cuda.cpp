// CudaBackend against the CPU backend, and the promises of the GPU issue: no host sync in the
// loop, no cudaMalloc after the first step, graph replay, clear runtime errors.
#include <cmath>
#include <string>
#include <vector>

#include "../helpers.hpp"
#include "iris.hpp"

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
}
