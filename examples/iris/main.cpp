// The flagship example: the Iris MLP (4 -> hidden -> ReLU -> 3), full batch, SGD, trained on the
// backend chosen with --device. The training loop makes no host read except the progress lines
// (--print-every); losses are recorded where they are computed and read back once at the end.
//
// This file is compiled by g++ (Cpu only) or, when CMake finds CUDA, by nvcc (Cpu and Cuda).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "../common/device.hpp"
#include "../common/guarded_main.hpp"
#include "../common/iris.hpp"
#include "../common/output.hpp"
#include "../common/svg_plot.hpp"
#include "../common/text_file.hpp"
#include "options.hpp"

namespace mg = minigrad;

using Options = examples::IrisOptions;

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
    // A captured step records every epoch (the graph is one fixed step); otherwise every log_every
    // epochs and the last one, so that a run shorter than log_every still has a final loss.
    const bool logged_last = o.epochs % o.log_every != 0;
    auto recorded_epoch = [&](std::size_t i) {  // the epoch of the i-th recorded loss
        if (use_graph) return static_cast<int>(i) + 1;
        const auto epoch = (static_cast<std::int64_t>(i) + 1) * o.log_every;
        return static_cast<int>(std::min<std::int64_t>(epoch, o.epochs));
    };
    mg::LossLog log(use_graph ? o.epochs : o.epochs / o.log_every + 1);

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
            step_and_log((epoch + 1) % o.log_every == 0 || (logged_last && epoch + 1 == o.epochs));
        if (o.print_every > 0 && (epoch + 1) % o.print_every == 0) {
            fmt::print("epoch {:>6}  loss {:.6f}\n", epoch + 1, log.latest());
            ++progress_reads;
        }
    }
    const auto after = mg::counters();  // before the wait below, which is not part of the loop
    B::synchronize(x.device());
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const auto recorded = log.values();  // the one read of every recorded loss
    // The curve: every log_every epochs, and the last epoch.
    std::vector<double> epochs, losses;
    for (std::size_t i = 0; i < recorded.size(); ++i) {
        const auto epoch = recorded_epoch(i);
        if (epoch % o.log_every != 0 && epoch != o.epochs) continue;
        epochs.push_back(epoch);
        losses.push_back(recorded[i]);
    }
    fmt::print("Training time: {:.3f} s ({:.2f} us/epoch)\n", seconds, seconds * 1e6 / o.epochs);
    for (std::size_t i = 0; i < recorded.size(); ++i) {
        if (!std::isfinite(recorded[i])) {
            fmt::print(stderr, "error: the loss became {}: first non-finite recorded loss at epoch {} (losses are recorded {}); "
                               "try a smaller --lr than {}\n",
                       std::isnan(recorded[i]) ? "NaN" : "infinite", recorded_epoch(i),
                       use_graph || o.log_every == 1 ? "every epoch" : fmt::format("every {} epochs and at the last epoch", o.log_every),
                       o.lr);
            return 3;
        }
    }

    double accuracy = 0;
    {
        mg::NoGradGuard no_grad;
        auto x_test = mg::Tensor<mg::Cpu>::from(split.x_test).template to<B>();
        const auto predicted = mg::argmax(model(x_test), 1).to_vector();
        std::size_t right = 0;
        for (std::size_t i = 0; i < predicted.size(); ++i) right += predicted[i] == split.y_test[i];
        accuracy = static_cast<double>(right) / static_cast<double>(predicted.size());
    }

    fmt::print("Final loss: {:.6f}\n", recorded.back());
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
    std::fflush(stdout);  // the results stay printed whatever happens to the files below

    const std::filesystem::path out(o.out);
    examples::write_loss_csv(out / "loss.csv", epochs, losses);
    examples::write_svg((out / "loss.svg").string(),
                        {fmt::format("Iris MLP training loss ({}, SGD lr {})", B::name, o.lr), "Epoch", "Cross-entropy loss",
                         epochs, losses});
    fmt::print("Wrote {}/loss.csv and {}/loss.svg\n", o.out, o.out);
    return 0;
}

int run(const Options& o) {
    examples::prepare_out_dir(o.out);
    const auto split = examples::load_iris(o.data, o.seed);
    return examples::run_on_device(o.device, [&]<class B>() { return train<B>(o, split); });
}

int main(int argc, char** argv) {
    return examples::guarded_main([&] {
        const auto parsed = examples::parse_options(argc, argv, std::cout, std::cerr);
        if (!parsed.options) return parsed.exit_code;
        return run(*parsed.options);
    });
}
