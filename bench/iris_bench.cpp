// minigrad's side of the Iris benchmark: the generic autograd path (Linear, ReLU, CrossEntropyLoss,
// SGD), 20000 full-batch epochs, repeated; prints the median us/epoch, the storage allocations per
// epoch after the first epoch, and the host syncs between recorded points. Compiled by nvcc where
// CUDA is found, which adds --device cuda and --graph.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../examples/common/iris.hpp"

namespace mg = minigrad;

struct Result {
    double us_per_epoch;
    double allocs_per_epoch;  // after the first epoch
    std::uint64_t syncs;      // host syncs in the loop (recorded points read only at the end)
    float final_loss;
};

template <class B>
Result run_once(const mg::data::Matrix& xs, const std::vector<std::int32_t>& ys, int epochs, int log_every, bool use_graph) {
    mg::manual_seed(42);
    examples::IrisMLP<B> model(10);
    auto x = mg::Tensor<mg::Cpu>::from(xs).template to<B>();
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(ys).template to<B>();
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01});
    mg::LossLog log(epochs + 1);
    auto step = [&](bool record) {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        if (record) log.record(loss);
    };
    mg::StepGraph<B> graph([&] { step(true); }, use_graph);
    auto one_epoch = [&](int epoch) {
        if (graph.uses_graph())
            graph.replay();
        else
            step((epoch + 1) % log_every == 0);
    };
    one_epoch(0);  // the first epoch fills the caches (and, with a graph, is its warm-up)
    if (graph.uses_graph()) one_epoch(1);  // the capture
    B::synchronize(x.device());
    const auto before = mg::counters();
    const int first_timed = graph.uses_graph() ? 2 : 1;
    const auto start = std::chrono::steady_clock::now();
    for (int epoch = first_timed; epoch < epochs; ++epoch) one_epoch(epoch);
    const auto after_loop = mg::counters();
    B::synchronize(x.device());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int timed = epochs - first_timed;
    const auto values = log.values();
    return {seconds * 1e6 / timed, double(after_loop.storage_allocs - before.storage_allocs) / timed,
            after_loop.host_syncs - before.host_syncs, values.empty() ? 0.0f : values.back()};
}

template <class B>
int bench(const mg::data::Matrix& xs, const std::vector<std::int32_t>& ys, int epochs, int log_every, int repeats, bool use_graph) {
    std::vector<Result> runs;
    for (int i = 0; i < repeats; ++i) runs.push_back(run_once<B>(xs, ys, epochs, log_every, use_graph));
    std::vector<double> us;
    for (auto& r : runs) us.push_back(r.us_per_epoch);
    std::vector<double> sorted = us;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    fmt::print("minigrad {}{}: median {:.2f} us/epoch (runs: {:.2f}), final loss {:.6f}, storage allocations per epoch after the "
               "first: {}, host syncs in the loop: {}\n",
               B::name, use_graph && B::supports_graphs ? " graph" : "", median, fmt::join(us, ", "), runs.back().final_loss,
               runs.back().allocs_per_epoch, runs.back().syncs);
    return 0;
}

int main(int argc, char** argv) {
    std::string device = "cpu", data = "data/iris.csv";
    int epochs = 20000, log_every = 200, repeats = 5;
    bool graph = false;
    CLI::App app{"minigrad's Iris benchmark"};
    app.add_option("--device", device)->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--epochs", epochs);
    app.add_option("--log-every", log_every);
    app.add_option("--repeats", repeats);
    app.add_flag("--graph", graph, "capture the step as a CUDA graph (records every epoch)");
    app.add_option("--data", data);
    CLI11_PARSE(app, argc, argv);
    const auto split = examples::load_iris(data);
#if defined(MINIGRAD_HAS_CUDA)
    if (device == "cuda") return bench<mg::Cuda>(split.x_train, split.y_train, epochs, log_every, repeats, graph);
#else
    if (device == "cuda") {
        fmt::print(stderr, "error: this build has no CUDA backend\n");
        return 2;
    }
#endif
    return bench<mg::Cpu>(split.x_train, split.y_train, epochs, log_every, repeats, graph);
}
