// The flagship example: the Iris MLP (4 -> hidden -> ReLU -> 3), full batch, SGD, trained on the
// backend chosen with --device. The training loop makes no host read except the progress lines
// (--print-every); losses are recorded where they are computed and read back once at the end.
//
// This file is compiled by g++ (Cpu only) or, when CMake finds CUDA, by nvcc (Cpu and Cuda).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../common/iris.hpp"
#include "../common/svg_plot.hpp"

namespace mg = minigrad;

struct Options {
    std::string device = "cpu";
    int epochs = 20000;
    double lr = 0.01;
    std::int64_t hidden = 10;
    std::uint32_t seed = 42;
    int log_every = 200;
    int print_every = 1000;
    bool graph = true;
    std::string data = "data/iris.csv";
    std::string out = "out";
};

double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

template <class B>
int train(const Options& o, const examples::IrisSplit& split) {
    mg::manual_seed(o.seed);
    examples::IrisMLP<B> model(o.hidden);
    auto x = mg::Tensor<mg::Cpu>::from(split.x_train).template to<B>();
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(split.y_train).template to<B>();
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = o.lr});
    const bool use_graph = o.graph && B::supports_graphs;
    // A captured step records every epoch (the graph is one fixed step); otherwise every log_every.
    const int record_every = use_graph ? 1 : o.log_every;
    mg::LossLog log(o.epochs / record_every + 1);

    fmt::print("Training on {} ({}): {} train rows, {} test rows, {} epochs, lr {}, hidden {}{}\n", B::name,
               B::is_host ? "host" : "device", split.x_train.rows, split.x_test.rows, o.epochs, o.lr, o.hidden,
               use_graph ? ", step captured as a graph" : "");
    auto step_and_log = [&](bool record) {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        if (record) log.record(loss);
    };
    mg::StepGraph<B> graph([&] { step_and_log(true); }, use_graph);

    const auto before = mg::counters();
    std::uint64_t progress_reads = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        if (use_graph)
            graph.replay();
        else
            step_and_log((epoch + 1) % o.log_every == 0);
        if (o.print_every > 0 && (epoch + 1) % o.print_every == 0) {
            fmt::print("epoch {:>6}  loss {:.6f}\n", epoch + 1, log.latest());
            ++progress_reads;
        }
    }
    const auto after = mg::counters();  // before the wait below, which is not part of the loop
    B::synchronize(x.device());
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const auto recorded = log.values();  // the one read of every recorded loss
    std::vector<double> epochs, losses;
    for (std::size_t i = 0; i < recorded.size(); ++i) {
        const auto epoch = static_cast<int>((i + 1) * record_every);
        if (epoch % o.log_every != 0) continue;
        epochs.push_back(epoch);
        losses.push_back(recorded[i]);
    }

    double accuracy = 0;
    {
        mg::NoGradGuard no_grad;
        auto x_test = mg::Tensor<mg::Cpu>::from(split.x_test).template to<B>();
        const auto predicted = mg::argmax(model(x_test)).to_vector();
        std::size_t right = 0;
        for (std::size_t i = 0; i < predicted.size(); ++i) right += predicted[i] == split.y_test[i];
        accuracy = static_cast<double>(right) / static_cast<double>(predicted.size());
    }

    std::filesystem::create_directories(o.out);
    {
        std::ofstream csv(std::filesystem::path(o.out) / "loss.csv");
        csv << "epoch,loss\n";
        for (std::size_t i = 0; i < losses.size(); ++i) csv << fmt::format("{},{:.9g}\n", epochs[i], losses[i]);
    }
    examples::write_svg((std::filesystem::path(o.out) / "loss.svg").string(),
                        {fmt::format("Iris MLP training loss ({}, SGD lr {})", B::name, o.lr), "Epoch", "Cross-entropy loss",
                         epochs, losses});

    fmt::print("Training time: {:.3f} s ({:.2f} us/epoch)\n", seconds, seconds * 1e6 / o.epochs);
    fmt::print("Final loss: {:.6f}\n", losses.empty() ? recorded.back() : losses.back());
    fmt::print("Test accuracy: {:.4f} ({} of {} rows)\n", accuracy,
               static_cast<int>(accuracy * static_cast<double>(split.x_test.rows) + 0.5), split.x_test.rows);
    fmt::print("Host reads in the training loop: {} ({} for progress lines; --print-every 0 makes it 0)\n",
               after.host_reads - before.host_reads, progress_reads);
    fmt::print("Host syncs in the loop: {}, device->host bytes: {}, host->device bytes: {}, kernel launches: {}, "
               "storage allocations: {}\n",
               after.host_syncs - before.host_syncs, after.device_to_host_bytes - before.device_to_host_bytes,
               after.host_to_device_bytes - before.host_to_device_bytes, after.kernel_launches - before.kernel_launches,
               after.storage_allocs - before.storage_allocs);
    fmt::print("Peak resident memory: {:.1f} MB\n", peak_rss_mb());
    fmt::print("Wrote {}/loss.csv and {}/loss.svg\n", o.out, o.out);
    return 0;
}

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"Train the Iris MLP (4 -> hidden -> ReLU -> 3) with minigrad"};
    app.add_option("--device", o.device, "cpu, cuda, or auto (cuda when a GPU is usable, else cpu)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    app.add_option("--epochs", o.epochs, "training epochs (full batch)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--lr", o.lr, "SGD learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--hidden", o.hidden, "hidden layer width")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the weights and of the train/test split")->capture_default_str();
    app.add_option("--log-every", o.log_every, "record the loss every N epochs (the curve's resolution)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--print-every", o.print_every, "print a progress line every N epochs (0: none; each is one host read)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_flag("--graph,!--no-graph", o.graph, "capture the step as a CUDA graph (CUDA only; default on)");
    app.add_option("--data", o.data, "the Iris CSV file")->capture_default_str();
    app.add_option("--out", o.out, "folder for loss.csv and loss.svg")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    if (o.print_every > 0 && o.print_every % o.log_every != 0) {
        fmt::print(stderr, "error: --print-every {} must be a multiple of --log-every {} (progress lines show the last recorded loss)\n",
                   o.print_every, o.log_every);
        return 2;
    }
    try {
        const auto split = examples::load_iris(o.data, o.seed);
#if defined(MINIGRAD_HAS_CUDA)
        if (o.device == "auto") o.device = mg::cuda::is_available() ? "cuda" : "cpu";
        if (o.device == "cuda") {
            mg::cuda::require_device(0);
            return train<mg::Cuda>(o, split);
        }
#else
        if (o.device == "auto") o.device = "cpu";
        if (o.device == "cuda") {
            fmt::print(stderr,
                       "error: --device cuda: this build of the example has no CUDA backend (it was compiled without nvcc, "
                       "so only the Cpu backend exists). Rebuild on a machine with the CUDA Toolkit, or use --device cpu "
                       "(or --device auto, which picks the GPU when there is one).\n");
            return 2;
        }
#endif
        return train<mg::Cpu>(o, split);
    } catch (const mg::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
}
