// minigrad's side of the Iris benchmark: the generic autograd path (Linear, ReLU, CrossEntropyLoss,
// SGD), 20000 full-batch epochs, repeated; prints the median us/epoch, the storage allocations per
// epoch after the first epoch, and the host syncs between recorded points. Compiled by nvcc where
// CUDA is found, which adds --device cuda. --mode graph captures the step (a CUDA graph, or the
// CPU's tape); --mode compiled makes it one program, and --steps-per-launch k runs k steps per
// replay(k).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <minigrad/minigrad.hpp>

#include "../examples/common/iris.hpp"
#include "../examples/common/guarded_main.hpp"

namespace mg = minigrad;

struct Result {
    double us_per_epoch;
    double allocs_per_epoch;  // after the first epoch
    std::uint64_t syncs;      // host syncs in the loop (recorded points read only at the end)
    double launches_per_epoch;  // the backend's count (CUDA: a graph replay or a program is one; the CPU tape counts its kernels)
    float final_loss;
    std::string program;  // compiled mode: the program's size, or why there is none
};

template <class B>
Result run_once(const mg::data::Matrix& xs, const std::vector<std::int32_t>& ys, int epochs, int log_every, mg::StepMode mode, int k) {
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
    mg::StepGraph<B> graph([&] { step(true); }, mode);
    if (graph.uses_graph()) {
        graph.replay();  // the warm-up
        graph.replay();  // the capture
    } else {
        step(false);  // the first epoch fills the caches
    }
    B::synchronize(x.device());
    const auto before = mg::counters();
    const int first_timed = graph.uses_graph() ? 2 : 1;
    const auto start = std::chrono::steady_clock::now();
    if (graph.uses_graph()) {
        for (int epoch = first_timed; epoch < epochs; epoch += k) graph.replay(std::min(k, epochs - epoch));
    } else {
        for (int epoch = first_timed; epoch < epochs; ++epoch) step((epoch + 1) % log_every == 0);
    }
    const auto after_loop = mg::counters();
    B::synchronize(x.device());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int timed = epochs - first_timed;
    const auto values = log.values();
    return {seconds * 1e6 / timed, double(after_loop.storage_allocs - before.storage_allocs) / timed,
            after_loop.host_syncs - before.host_syncs, double(after_loop.kernel_launches - before.kernel_launches) / timed,
            values.empty() ? 0.0f : values.back(),
            mode != mg::StepMode::compiled ? ""
            : graph.compiled() ? fmt::format(", one program of {} records on {}{}", graph.program_size(),
                                             graph.program_on_grid() ? "a grid" : "one block",
                                             B::is_host ? " (the CPU replays its tape instead)" : "")
                               : ", not compiled: " + graph.fallback_reason()};
}

template <class B>
int bench(const mg::data::Matrix& xs, const std::vector<std::int32_t>& ys, int epochs, int log_every, int repeats, mg::StepMode mode,
          int k) {
    std::vector<Result> runs;
    for (int i = 0; i < repeats; ++i) runs.push_back(run_once<B>(xs, ys, epochs, log_every, mode, k));
    std::vector<double> us;
    for (auto& r : runs) us.push_back(r.us_per_epoch);
    std::vector<double> sorted = us;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    const std::string label = mode == mg::StepMode::graph      ? " graph"
                              : mode == mg::StepMode::compiled ? fmt::format(" compiled k={}", k)
                                                               : "";
    fmt::print("minigrad {}{}: median {:.2f} us/epoch (runs: {:.2f}), final loss {:.6f}, storage allocations per epoch after the "
               "first: {}, host syncs in the loop: {}, launches per epoch: {:.2f}{}\n",
               B::name, label, median, fmt::join(us, ", "), runs.back().final_loss,
               runs.back().allocs_per_epoch, runs.back().syncs, runs.back().launches_per_epoch, runs.back().program);
    return 0;
}

int main(int argc, char** argv) {
    std::string device = "cpu", data = "data/iris.csv";
    int epochs = 20000, log_every = 200, repeats = 5;
    bool graph = false;
    std::string mode_name = "eager";
    int k = 1;
    std::int64_t block_max_work = mg::compiled_block_max_work();
    CLI::App app{"minigrad's Iris benchmark"};
    app.add_option("--device", device)->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--epochs", epochs);
    app.add_option("--log-every", log_every);
    app.add_option("--repeats", repeats);
    app.add_flag("--graph", graph, "the same as --mode graph");
    app.add_option("--mode", mode_name, "eager, graph (a CUDA graph, or the CPU's tape) or compiled (one program); both record every epoch")
        ->check(CLI::IsMember({"eager", "graph", "compiled"}));
    app.add_option("--steps-per-launch", k, "graph and compiled modes: steps per replay(k)")->check(CLI::PositiveNumber);
    app.add_option("--block-max-work", block_max_work,
                   "compiled mode: a program whose largest record has more work runs on a cooperative grid, not one block "
                   "(0: always the grid)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--data", data);
    CLI11_PARSE(app, argc, argv);
    return examples::guarded_main([&] {  // a missing data file, a GPU that fails: "error: ...", exit 1
        const auto split = examples::load_iris(data);
        mg::set_compiled_block_max_work(block_max_work);
        const mg::StepMode mode = graph || mode_name == "graph" ? mg::StepMode::graph
                                  : mode_name == "compiled"     ? mg::StepMode::compiled
                                                                : mg::StepMode::eager;
#if defined(MINIGRAD_HAS_CUDA)
        if (device == "cuda") return bench<mg::Cuda>(split.x_train, split.y_train, epochs, log_every, repeats, mode, k);
#else
        if (device == "cuda") {
            fmt::print(stderr, "error: this build has no CUDA backend\n");
            return 2;
        }
#endif
        return bench<mg::Cpu>(split.x_train, split.y_train, epochs, log_every, repeats, mode, k);
    });
}
