// minigrad's side of the scaling benchmark: the 3-layer MLP (in -> hidden -> ReLU -> hidden -> ReLU
// -> classes, cross-entropy, SGD lr 0.01) trained on random data of one shape, timed per step.
// Prints one line (read by bench/scaling_report.py):
//   minigrad device=<cpu|cuda> mode=<eager|graph> threads=<n> shape=<batch>x<in>x<hidden>x<classes>
//            ms=<median ms/step> runs=<ms,...> peak_mb=<MB> loss=<last loss>
// peak_mb is the process's peak resident set on the CPU; on CUDA, the device memory the process
// took beyond what it held before the model was built (cudaMemGetInfo; minigrad's cache and what
// the CUDA libraries hold), comparable with torch.cuda.max_memory_reserved.
// Written over the backend: compiled by nvcc where CUDA is found, which adds --device cuda and --graph.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <minigrad/minigrad.hpp>

namespace mg = minigrad;

template <class B>
struct MLP : mg::nn::Module<B> {
    mg::nn::Linear<B> fc1, fc2, fc3;
    mg::nn::ReLU relu1, relu2;
    MLP(std::int64_t in, std::int64_t hidden, std::int64_t classes) : fc1(in, hidden), fc2(hidden, hidden), fc3(hidden, classes) {}
    auto forward(const mg::Tensor<B>& x) { return fc3(relu2(fc2(relu1(fc1(x))))); }
    MINIGRAD_MODULE(fc1, relu1, fc2, relu2, fc3)
};

struct Shape4 {
    std::int64_t batch, in, hidden, classes;
};

#if defined(MINIGRAD_HAS_CUDA)
inline std::size_t device_bytes_in_use() {
    std::size_t free = 0, total = 0;
    MINIGRAD_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return total - free;
}
#endif

template <class B>
int bench(const Shape4& s, int steps, int repeats, bool use_graph, int threads) {
    [[maybe_unused]] std::size_t device_before = 0;
#if defined(MINIGRAD_HAS_CUDA)
    if constexpr (std::is_same_v<B, mg::Cuda>) {
        B::synchronize(0);
        device_before = device_bytes_in_use();
    }
#endif
    mg::manual_seed(0);
    MLP<B> model(s.in, s.hidden, s.classes);
    auto x = mg::Tensor<mg::Cpu>::uniform(mg::Shape{s.batch, s.in}, -1.0, 1.0).template to<B>();
    std::vector<std::int32_t> labels(static_cast<std::size_t>(s.batch));
    for (std::int64_t i = 0; i < s.batch; ++i) labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7919) % s.classes);
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(labels).template to<B>();
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01});
    mg::LossLog log(static_cast<std::int64_t>(steps) * repeats + 4);
    mg::StepGraph<B> graph(
        [&] {
            auto loss = loss_fn(model(x), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            log.record(loss);
        },
        use_graph);
    for (int i = 0; i < 2; ++i) graph.replay();  // fills the caches; with a graph, the capture
    B::synchronize(x.device());
    std::vector<double> ms;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) graph.replay();
        B::synchronize(x.device());
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / steps);
    }
    auto sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    double peak_mb = 0;
    if constexpr (B::is_host) {
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        peak_mb = usage.ru_maxrss / 1024.0;
    }
#if defined(MINIGRAD_HAS_CUDA)
    else {
        peak_mb = double(device_bytes_in_use() - device_before) / 1048576.0;
    }
#endif
    const auto losses = log.values();
    fmt::print("minigrad device={} mode={} threads={} shape={}x{}x{}x{} ms={:.4f} runs={:.4f} peak_mb={:.1f} loss={:.5f}\n",
               B::is_host ? "cpu" : "cuda", use_graph && B::supports_graphs ? "graph" : "eager", threads, s.batch, s.in,
               s.hidden, s.classes, sorted[sorted.size() / 2], fmt::join(ms, ","), peak_mb, losses.empty() ? 0.0f : losses.back());
    return 0;
}

int main(int argc, char** argv) {
    std::string device = "cpu", shape_text = "256x64x128x10";
    int steps = 0, repeats = 5, threads = 0;
    bool graph = false;
    CLI::App app{"minigrad's side of the MLP scaling benchmark"};
    app.add_option("--device", device)->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--shape", shape_text, "batch x in x hidden x classes");
    app.add_option("--steps", steps, "steps per timed run (default: about 0.2 s of work, at least 3)");
    app.add_option("--repeats", repeats);
    app.add_option("--threads", threads, "CPU threads (default: MINIGRAD_NUM_THREADS, else all cores)");
    app.add_flag("--graph", graph, "capture the step as a CUDA graph");
    CLI11_PARSE(app, argc, argv);
    Shape4 s{};
    if (std::sscanf(shape_text.c_str(), "%ldx%ldx%ldx%ld", &s.batch, &s.in, &s.hidden, &s.classes) != 4) {
        fmt::print(stderr, "error: --shape '{}' is not batch x in x hidden x classes, e.g. 256x64x128x10\n", shape_text);
        return 2;
    }
    if (threads > 0) mg::set_num_threads(threads);
    if (steps <= 0) {  // ~0.2 s at an assumed 2 GFLOP/s for the CPU, 6 flops per weight and row
        const double flops = 6.0 * s.batch * (s.in * s.hidden + s.hidden * s.hidden + s.hidden * s.classes);
        steps = std::clamp(static_cast<int>(0.2 * 2e9 / flops), 3, 20000);
        if (device == "cuda") steps = std::max(steps, 50);
    }
#if defined(MINIGRAD_HAS_CUDA)
    if (device == "cuda") return bench<mg::Cuda>(s, steps, repeats, graph, 0);
#else
    if (device == "cuda") {
        fmt::print(stderr, "error: this build has no CUDA backend\n");
        return 2;
    }
#endif
    return bench<mg::Cpu>(s, steps, repeats, graph, mg::get_num_threads());
}
