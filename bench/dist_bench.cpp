// Data-parallel scaling on the Cpu backend: time per epoch on 1 and N ranks (bench/run_dist.sh
// runs it under mpirun -np 1 and -np 2 and writes the table in docs/distributed.md).
//
//   --model digits  the digits example's MLP (64 -> 128 -> 10, 9610 parameters) on its 1437 training
//                   rows, global batch 64 split over the ranks (strong scaling: the same work
//                   shared, so the ideal epoch time is T1 / N)
//   --model wide    784 -> 1024 -> 10 (814090 parameters), 1024 rows per rank per step, 16 steps per
//                   epoch (weak scaling: each rank's work fixed, so the ideal epoch time is T1)
//
// Synthetic inputs (uniform, fixed seed): only time is measured. Rank 0 prints one line: the
// median epoch time over the timed epochs (after one warm-up epoch), and the part of it spent in
// all_reduce_gradients.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/dist.hpp>

namespace mg = minigrad;
using Clock = std::chrono::steady_clock;

namespace {

mg::data::Dataset synthetic(std::int64_t rows, std::int64_t cols, std::int32_t classes) {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> uniform(0, 1);
    mg::data::Dataset ds;
    ds.x = {rows, cols, std::vector<float>(static_cast<std::size_t>(rows * cols))};
    for (auto& v : ds.x.values) v = uniform(gen);
    for (std::int64_t r = 0; r < rows; ++r) ds.y.push_back(static_cast<std::int32_t>(gen() % static_cast<std::uint32_t>(classes)));
    return ds;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

int main(int argc, char** argv) {
    std::string model_name = "digits";
    int epochs = 20;
    CLI::App app{"minigrad data-parallel scaling benchmark (run under mpirun)"};
    app.add_option("--model", model_name, "digits or wide")->check(CLI::IsMember({"digits", "wide"}))->capture_default_str();
    app.add_option("--epochs", epochs, "timed epochs (after one warm-up epoch)")->check(CLI::Range(1, 100000))->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    mg::dist::init();
    const int world = mg::dist::world_size();
    const bool wide = model_name == "wide";
    const std::int64_t in = wide ? 784 : 64, hidden = wide ? 1024 : 128;
    const std::int64_t batch = wide ? 1024 * world : 64;  // global batch
    const std::int64_t rows = wide ? 16 * batch : 1437;
    mg::manual_seed(1);
    auto model = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(in, hidden), mg::nn::ReLU{}, mg::nn::Linear<mg::Cpu>(hidden, 10));
    mg::dist::broadcast_parameters(model);
    const auto params = model.parameters();
    std::int64_t parameter_count = 0;
    for (const auto& p : params) parameter_count += p.numel();
    mg::optim::Adam opt(params, {.lr = 1e-3});
    mg::nn::CrossEntropyLoss loss_fn;
    mg::data::DataLoader<mg::Cpu> loader(synthetic(rows, in, 10), mg::dist::shard_options({.batch_size = batch, .shuffle = true, .seed = 3}));

    std::vector<double> epoch_seconds, reduce_seconds;
    for (int epoch = 0; epoch <= epochs; ++epoch) {
        mg::dist::barrier();  // every rank starts the epoch together
        const auto start = Clock::now();
        double reducing = 0;
        for (const auto& [x, y] : loader) {
            auto loss = loss_fn(model(x), y);
            opt.zero_grad();
            loss.backward();
            const auto before = Clock::now();
            mg::dist::all_reduce_gradients(params);
            reducing += seconds_since(before);
            opt.step();
        }
        if (epoch == 0) continue;  // warm-up: first allocations, first check of the parameters
        epoch_seconds.push_back(seconds_since(start));
        reduce_seconds.push_back(reducing);
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    if (mg::dist::rank() == 0) {
        fmt::print("model={} ranks={} params={} global_batch={} rows_per_rank_per_step={} steps_per_epoch={} epoch_ms={:.3f} allreduce_ms={:.3f}\n",
                   model_name, world, parameter_count, batch, batch / world, loader.size(), 1e3 * median(epoch_seconds),
                   1e3 * median(reduce_seconds));
    }
    return 0;
}
