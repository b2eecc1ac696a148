// Handwritten digits (scikit-learn's 8x8 set, data/digits.csv): an MLP 64 -> 128 -> ReLU ->
// Dropout(0.1) -> 10 as an nn::Sequential, Adam, shuffled mini-batches of 64 from a DataLoader,
// trained on the backend chosen with --device.
//
// Features are divided by 16: each is a count of set pixels in a 4x4 block, 0..16, so this maps
// them to [0, 1] with the same scale for every column (no statistics fit on the data).
//
// Host reads: the batch losses are summed where they are computed; each epoch reads that sum once
// (through a LossLog) and the test accuracy once (metrics::accuracy). Those two reads are the
// progress line; the whole curve is read back from the log at the end.
//
// --distributed (built when CMake finds MPI, which defines MINIGRAD_HAS_MPI): run under
// `mpirun -np N`; every rank holds the model (rank 0's weights, broadcast), takes its 64/N rows of
// each shuffled batch of 64 and averages gradients with mg::dist before every Adam step. Rank 0
// prints (its own shard's loss) and writes the outputs. Without MPI the flag is refused.
//
// This file is compiled by g++ (Cpu only) or, when CMake finds CUDA, by nvcc (Cpu and Cuda).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <minigrad/minigrad.hpp>
#if defined(MINIGRAD_HAS_MPI)
#include <minigrad/dist.hpp>
#endif

#include "../common/device.hpp"
#include "../common/guarded_main.hpp"
#include "../common/output.hpp"
#include "../common/split.hpp"
#include "../common/svg_plot.hpp"
#include "../common/train_options.hpp"

namespace mg = minigrad;

// The data-parallel pieces, or nothing in a build without MPI (where --distributed is refused
// before training) or for a backend without a dist transport (Cuda where NCCL is not installed).
// Without MPI there is no mg::dist to name at all, not even in a discarded `if constexpr` branch
// (its names do not depend on B, so they are looked up anyway): those members are left out whole.
template <class B>
struct Parallel {
    bool on;
#if defined(MINIGRAD_HAS_MPI)
    static constexpr bool available = mg::dist::has_transport<B>;
    bool lead() const {  // prints and writes files
        if constexpr (available) return !on || mg::dist::rank() == 0;
        return true;
    }
    template <class M>
    void broadcast(M& model) const {
        if constexpr (available)
            if (on) mg::dist::broadcast_parameters(model);
    }
    template <class P>
    void average_gradients(const P& params) const {
        if constexpr (available)
            if (on) mg::dist::all_reduce_gradients(params);
    }
    mg::data::LoaderOptions loader_options(mg::data::LoaderOptions options) const {
        if constexpr (available)
            if (on) return mg::dist::shard_options(options);
        return options;
    }
#else
    static constexpr bool available = false;
    bool lead() const { return true; }
    template <class M>
    void broadcast(M&) const {}
    template <class P>
    void average_gradients(const P&) const {}
    mg::data::LoaderOptions loader_options(mg::data::LoaderOptions options) const { return options; }
#endif
};

template <class B>
int train(const examples::TrainOptions& o, const mg::data::Dataset& train_set, const mg::data::Dataset& test_set) {
    const Parallel<B> parallel{o.distributed};
    if (o.distributed && !Parallel<B>::available) {
        fmt::print(stderr, "error: --distributed on {}: this build has no dist transport for it (NCCL was not found); use --device cpu\n",
                   B::name);
        return 2;
    }
    mg::manual_seed(o.seed);
    auto model = mg::nn::Sequential(mg::nn::Linear<B>(64, 128), mg::nn::ReLU{}, mg::nn::Dropout(0.1), mg::nn::Linear<B>(128, 10));
    parallel.broadcast(model);
    const auto params = model.parameters();
    mg::optim::Adam opt(params, {.lr = o.lr});
    mg::nn::CrossEntropyLoss loss_fn;
    mg::data::DataLoader<B> loader(train_set, parallel.loader_options({.batch_size = 64, .shuffle = true, .seed = o.seed}));
    const bool lead = parallel.lead();
    const auto x_test = mg::Tensor<mg::Cpu>::from(test_set.x).template to<B>();
    const auto y_test = mg::Tensor<mg::Cpu, std::int32_t>::from(test_set.y).template to<B>();
    mg::LossLog log(o.epochs);  // the mean training loss of each epoch

    if (lead) {
        fmt::print("Training on {} ({}): {} train rows, {} test rows, {} epochs, Adam lr {}, batch 64 ({} batches per epoch)\n", B::name,
                   B::is_host ? "host" : "device", train_set.size(), test_set.size(), o.epochs, o.lr, loader.size());
        if (o.distributed) {
            fmt::print("Data-parallel over {} processes: each takes {} rows of every batch; losses are rank 0's shard's\n",
                       loader.options().num_shards, 64 / loader.options().num_shards);
        }
    }
    const auto batches = static_cast<float>(loader.size());
    double accuracy = 0, total_seconds = 0;
    for (int epoch = 1; epoch <= o.epochs; ++epoch) {
        const auto start = std::chrono::steady_clock::now();
        model.train();
        mg::Tensor<B> loss_sum;
        for (const auto& [x, y] : loader) {
            auto loss = loss_fn(model(x), y);
            opt.zero_grad();
            loss.backward();
            parallel.average_gradients(params);
            opt.step();
            mg::NoGradGuard no_grad;
            loss_sum = loss_sum.defined() ? loss_sum + loss.detach() : loss.detach();
        }
        {
            mg::NoGradGuard no_grad;
            log.record(loss_sum / batches);
            model.eval();
            accuracy = mg::metrics::accuracy(model(x_test), y_test);  // one read, which also waits for the epoch's work
        }
        const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        total_seconds += seconds;
        if (lead && o.print_every > 0 && (epoch % o.print_every == 0 || epoch == o.epochs)) {
            fmt::print("epoch {:>4}  train loss {:.4f}  test accuracy {:.4f}  {:.3f} s\n", epoch, log.latest(), accuracy, seconds);
        }
    }
    model.train();

    const auto losses = log.values();
    if (examples::loss_diverged(losses, o.lr)) return 3;
    if (!lead) return 0;
    const auto right = static_cast<long>(std::lround(accuracy * static_cast<double>(test_set.size())));
    fmt::print("Training time: {:.3f} s ({:.3f} s/epoch, test evaluation included)\n", total_seconds, total_seconds / o.epochs);
    fmt::print("Final train loss: {:.6f}\n", losses.back());
    fmt::print("Test accuracy: {:.4f} ({} of {} rows)\n", accuracy, right, test_set.size());
    examples::write_outputs(o.out, losses, fmt::format("Digits MLP training loss ({}, Adam lr {}, batch 64)", B::name, o.lr),
                            "Cross-entropy loss (mean over the epoch's batches)", model);
    return 0;
}

int main(int argc, char** argv) {
    return examples::guarded_main([&] {
        examples::TrainOptions defaults;  // 30 epochs, lr 1e-3
        defaults.data = "data/digits.csv";
        defaults.offers_distributed = true;
        const auto parsed = examples::parse_train_options(
            argc, argv, "Classify scikit-learn's 8x8 digits with a minigrad MLP (64 -> 128 -> ReLU -> Dropout(0.1) -> 10)", defaults,
            std::cout, std::cerr);
        if (!parsed.options) return parsed.exit_code;
        const auto& o = *parsed.options;
        bool lead = true;
        if (o.distributed) {
#if defined(MINIGRAD_HAS_MPI)
            mg::dist::init();
            lead = mg::dist::rank() == 0;
#if defined(MINIGRAD_HAS_CUDA)
            if (o.device != "cpu" && mg::cuda::device_count() > mg::dist::local_rank()) mg::cuda::set_device(mg::dist::local_rank());
#endif
#else
            fmt::print(stderr, "error: --distributed: this build of the example has no MPI (CMake did not find it); install libopenmpi-dev "
                               "and openmpi-bin (scripts/install-deps.sh) and rebuild\n");
            return 2;
#endif
        }
        if (lead) examples::prepare_out_dir(o.out);
        auto digits = mg::data::read_csv(o.data, {.label = "label", .label_kind = mg::data::LabelKind::integer});
        digits.check_classes(10, o.data);  // the model's 10 outputs: every row, train and test, before training
        for (auto& v : digits.x.values) v /= 16.0f;
        const auto [train_set, test_set] = examples::split_dataset(digits, 0.2, o.split_seed_or_seed(), lead ? o.write_split : std::string());
        return examples::run_on_device(o.device, [&]<class B>() { return train<B>(o, train_set, test_set); });
    });
}
