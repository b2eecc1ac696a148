// The Iris example's flags: parsed and validated in one place, apart from training, so that a
// fuzzer (tests/fuzz/iris_options.cpp) can drive every flag the way a user types them.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "../common/flags.hpp"

namespace examples {

struct IrisOptions {
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

// Bounds that keep every size sane: the loss log holds up to max_epochs floats, and a hidden layer
// of max_hidden units is 120 x 100000 floats per activation.
inline constexpr int max_epochs = 10'000'000;
inline constexpr std::int64_t max_hidden = 100'000;

// Options to run with, or the exit code of a run that ends here (0 after --help, non-zero after a
// bad flag, with the message written to `err`).
struct ParsedOptions {
    std::optional<IrisOptions> options;
    int exit_code = 0;
};

inline ParsedOptions parse_options(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    IrisOptions o;
    CLI::App app{"Train the Iris MLP (4 -> hidden -> ReLU -> 3) with minigrad"};
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return fmt::format("error: {}\nRun with --help for more information.\n", e.what());
    });
    app.add_option("--device", o.device, "cpu, cuda, or auto (cuda when a GPU is usable, else cpu)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    app.add_option("--epochs", o.epochs, "training epochs (full batch)")->check(whole_number(1, max_epochs))->capture_default_str();
    app.add_option("--lr", o.lr, "SGD learning rate (positive, finite and non-zero as a float)")
        ->check(CLI::Validator([](std::string& text) { return check_lr(text); }, "POSITIVE FLOAT"))
        ->capture_default_str();
    app.add_option("--hidden", o.hidden, "hidden layer width")->check(whole_number(1, max_hidden))->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the weights and of the train/test split")
        ->check(whole_number(0, std::numeric_limits<std::uint32_t>::max()))
        ->capture_default_str();
    app.add_option("--log-every", o.log_every, "record the loss every N epochs (the curve's resolution; the last epoch is always recorded)")
        ->check(whole_number(1, max_epochs))
        ->capture_default_str();
    app.add_option("--print-every", o.print_every, "print a progress line every N epochs (0: none; each is one host read)")
        ->check(whole_number(0, max_epochs))
        ->capture_default_str();
    const char* graph_help = "capture the training step once and replay it: a CUDA graph on the GPU, a tape of the step's kernels on the CPU (default: on)";
    app.add_flag("--graph,!--no-graph", o.graph, graph_help);
    app.add_option("--data", o.data, "the Iris CSV file (or a pipe, read until its writer closes it: a FIFO waits for a writer)")
        ->capture_default_str();
    app.add_option("--out", o.out, "folder for loss.csv and loss.svg (created; checked to be writable before training)")
        ->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return {std::nullopt, app.exit(e, out, err)};
    } catch (const std::exception& e) {  // CLI11 lets a number too large for a flag's count escape as std::out_of_range
        err << "error: a flag's value could not be read (" << e.what() << "); run with --help for the flags\n";
        return {std::nullopt, 2};
    }
    if (o.print_every > 0 && o.print_every % o.log_every != 0) {
        err << fmt::format("error: --print-every {} must be a multiple of --log-every {} (progress lines show the last recorded loss)\n",
                           o.print_every, o.log_every);
        return {std::nullopt, 2};
    }
    if (o.out.empty()) {
        err << "error: --out is empty: name a folder for loss.csv and loss.svg\n";
        return {std::nullopt, 2};
    }
    if (o.data.empty()) {
        err << "error: --data is empty: name the Iris CSV file\n";
        return {std::nullopt, 2};
    }
    return {o, 0};
}

}  // namespace examples
