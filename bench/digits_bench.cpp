// minigrad's side of the digits benchmark: the examples/digits recipe (MLP 64 -> 128 -> ReLU ->
// Dropout(0.1) -> 10, CrossEntropyLoss, Adam lr 1e-3, shuffled batches of 64 from a DataLoader) on
// the example's 1437 training rows. Times training epochs alone (no evaluation), one epoch at a
// time, and prints the median us/epoch, us/step, and the storage allocations and host syncs per
// epoch after the first. bench/run_examples.sh runs it beside bench/torch_digits.py.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../examples/common/guarded_main.hpp"
#include "../examples/common/digits_recipe.hpp"

namespace mg = minigrad;

template <class B>
int bench(const mg::data::Dataset& train_set, int epochs, int threads) {
    mg::manual_seed(42);
    auto model = examples::digits_mlp<B>();
    mg::optim::Adam opt(model.parameters(), {.lr = 1e-3});
    mg::nn::CrossEntropyLoss loss_fn;
    mg::data::DataLoader<B> loader(train_set, {.batch_size = 64, .shuffle = true, .seed = 42});
    mg::LossLog log(epochs);
    auto epoch = [&] {
        const auto loss_sum = examples::digits_epoch(model, opt, loss_fn, loader);
        mg::NoGradGuard no_grad;
        log.record(loss_sum);
    };
    epoch();  // fills the caches
    B::synchronize(0);
    const auto before = mg::counters();
    std::vector<double> us;
    for (int e = 1; e < epochs; ++e) {
        const auto start = std::chrono::steady_clock::now();
        epoch();
        B::synchronize(0);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    const auto after = mg::counters();
    const auto losses = log.values();
    std::sort(us.begin(), us.end());
    const double median = us[us.size() / 2];
    const double timed = static_cast<double>(epochs - 1);
    fmt::print("minigrad {} ({} thread{}): median {:.1f} us/epoch, {:.2f} us/step ({} steps/epoch), min {:.1f}, max {:.1f}; last "
               "epoch's summed loss {:.4f}; storage allocations per epoch after the first: {}; host syncs per epoch: {}\n",
               B::name, threads, threads == 1 ? "" : "s", median, median / static_cast<double>(loader.size()), loader.size(), us.front(),
               us.back(), losses.back(), static_cast<double>(after.storage_allocs - before.storage_allocs) / timed,
               static_cast<double>(after.host_syncs - before.host_syncs) / timed);
    return 0;
}

int main(int argc, char** argv) {
    std::string device = "cpu", data = "data/digits.csv";
    int epochs = 200, threads = 1;
    CLI::App app{"minigrad's digits benchmark (the examples/digits training epoch)"};
    app.add_option("--device", device)->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_option("--epochs", epochs, "timed epochs + 1")->check(CLI::Range(2, 1000000));
    app.add_option("--threads", threads, "CPU threads (mg::set_num_threads)")->check(CLI::Range(1, 1024));
    app.add_option("--data", data);
    CLI11_PARSE(app, argc, argv);
    return examples::guarded_main([&] {  // a missing data file, a GPU that fails: "error: ...", exit 1
        mg::set_num_threads(threads);
        auto digits = mg::data::read_csv(data, {.label = "label", .label_kind = mg::data::LabelKind::integer});
        for (auto& v : digits.x.values) v /= 16.0f;
        const auto [train_set, test_set] = mg::data::train_test_split(digits, {.test_size = 0.2, .seed = 42});
#if defined(MINIGRAD_HAS_CUDA)
        if (device == "cuda") return bench<mg::Cuda>(train_set, epochs, threads);
#else
        if (device == "cuda") {
            fmt::print(stderr, "error: this build has no CUDA backend\n");
            return 2;
        }
#endif
        return bench<mg::Cpu>(train_set, epochs, threads);
    });
}
