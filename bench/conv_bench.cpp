// minigrad's side of the convolution benchmark (bench/run_conv.sh runs it beside
// bench/torch_conv.py): one training step (forward, cross-entropy, backward, SGD with momentum 0.9)
// of a CNN on a fixed random batch, timed step by step after warm-up. Prints the median us/step and
// the storage allocations and host syncs per step after the first steps. The models (the same in
// bench/torch_conv.py):
//   lenet:   LeNet-5 on 64 images of 1x28x28: Conv(1->6, 5, pad 2), ReLU, MaxPool 2, Conv(6->16, 5),
//            ReLU, MaxPool 2, Flatten, Linear(400, 120), ReLU, Linear(120, 84), ReLU, Linear(84, 10)
//   blocks:  32 images of 3x32x32: Conv(3->64, 3, pad 1) + BatchNorm + ReLU, Conv(64->64, 3, pad 1)
//            + BatchNorm + ReLU, AdaptiveAvgPool 1, Flatten, Linear(64, 10)
//   digits:  the digits CNN (examples/common/digits_cnn_model.hpp) on 64 images of 8x8
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../examples/common/digits_cnn_model.hpp"
#include "../examples/common/guarded_main.hpp"

namespace mg = minigrad;
namespace nn = minigrad::nn;

template <class B>
struct LeNet : nn::Module<B> {
    nn::Conv2d<B> conv1{1, 6, 5, {.padding = 2}};
    nn::Conv2d<B> conv2{6, 16, 5};
    nn::Linear<B> fc1{400, 120}, fc2{120, 84}, fc3{84, 10};
    MINIGRAD_MODULE(conv1, conv2, fc1, fc2, fc3)
    mg::Tensor<B> forward(const mg::Tensor<B>& x) {
        auto h = mg::max_pool2d(mg::relu(conv1(x)), 2);
        h = mg::flatten(mg::max_pool2d(mg::relu(conv2(h)), 2), 1);
        return fc3(mg::relu(fc2(mg::relu(fc1(h)))));
    }
};

template <class B>
struct Blocks : nn::Module<B> {
    nn::Conv2d<B> conv1{3, 64, 3, {.padding = 1}};
    nn::BatchNorm2d<B> bn1{64};
    nn::Conv2d<B> conv2{64, 64, 3, {.padding = 1}};
    nn::BatchNorm2d<B> bn2{64};
    nn::Linear<B> fc{64, 10};
    MINIGRAD_MODULE(conv1, bn1, conv2, bn2, fc)
    mg::Tensor<B> forward(const mg::Tensor<B>& x) {
        auto h = mg::relu(bn2(conv2(mg::relu(bn1(conv1(x))))));
        return fc(mg::flatten(mg::adaptive_avg_pool2d(h, 1), 1));
    }
};

template <class B, class Model>
int bench(const std::string& name, const mg::Shape& input, int steps, int threads) {
    mg::manual_seed(42);
    Model model;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01, .momentum = 0.9});
    mg::Generator gen(7);
    const auto x = mg::Tensor<mg::Cpu>::uniform(input, -1, 1, gen).template to<B>();
    std::vector<std::int64_t> labels(static_cast<std::size_t>(input[0]));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i * 7 % 10);
    const auto y = mg::Tensor<mg::Cpu, std::int64_t>::from(labels).template to<B>();
    mg::LossLog log(steps + 3);
    auto step = [&] {
        auto loss = mg::cross_entropy(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    };
    for (int i = 0; i < 3; ++i) step();  // fills the caches
    B::synchronize(0);
    const auto before = mg::counters();
    std::vector<double> us;
    for (int i = 0; i < steps; ++i) {
        const auto start = std::chrono::steady_clock::now();
        step();
        B::synchronize(0);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    const auto after = mg::counters();
    std::sort(us.begin(), us.end());
    const auto losses = log.values();
    fmt::print("minigrad {} {} ({} thread{}): median {:.1f} us/step, min {:.1f}, max {:.1f}; loss {:.4f} -> {:.4f}; storage allocations per "
               "step after the first 3: {}; host syncs per step: {}\n",
               name, B::name, threads, threads == 1 ? "" : "s", us[us.size() / 2], us.front(), us.back(), losses.front(), losses.back(),
               static_cast<double>(after.storage_allocs - before.storage_allocs) / steps,
               static_cast<double>(after.host_syncs - before.host_syncs) / steps);
    return 0;
}

template <class B>
int run(const std::string& model, int steps, int threads) {
    if (model == "lenet") return bench<B, LeNet<B>>(model, mg::Shape{64, 1, 28, 28}, steps, threads);
    if (model == "blocks") return bench<B, Blocks<B>>(model, mg::Shape{32, 3, 32, 32}, steps, threads);
    return bench<B, examples::DigitsCnn<B>>(model, mg::Shape{64, 64}, steps, threads);
}

int main(int argc, char** argv) {
    std::string device = "cpu", model = "digits";
    int steps = 50, threads = 1;
    CLI::App app{"minigrad's convolution benchmark: one training step of a CNN"};
    app.add_option("--device", device)->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--model", model)->check(CLI::IsMember({"lenet", "blocks", "digits"}));
    app.add_option("--steps", steps, "timed steps")->check(CLI::Range(1, 1000000));
    app.add_option("--threads", threads, "CPU threads (mg::set_num_threads)")->check(CLI::Range(1, 1024));
    CLI11_PARSE(app, argc, argv);
    return examples::guarded_main([&] {
        mg::set_num_threads(threads);
#if defined(MINIGRAD_HAS_CUDA)
        if (device == "cuda") return run<mg::Cuda>(model, steps, threads);
#else
        if (device == "cuda") {
            fmt::print(stderr, "error: this build has no CUDA backend\n");
            return 2;
        }
#endif
        return run<mg::Cpu>(model, steps, threads);
    });
}
