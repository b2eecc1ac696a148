// The flags of the data-set examples (digits, diabetes): one parser, each example giving its own
// defaults. Parsed apart from training so that every bad flag ends before any work.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "flags.hpp"

namespace examples {

struct TrainOptions {
    std::string device = "cpu";
    int epochs = 30;
    double lr = 1e-3;
    std::uint32_t seed = 42;
    std::optional<std::uint32_t> split_seed;  // --split-seed; unset: the split follows --seed
    int print_every = 1;
    std::string data;
    std::string out = "out";
    std::string write_split;  // empty: not written
    bool distributed = false;  // --distributed: data-parallel over the ranks mpirun started (digits)
    bool offers_distributed = false;  // whether the example has the --distributed flag
    std::uint32_t split_seed_or_seed() const { return split_seed.value_or(seed); }
};

// Options to run with, or the exit code of a run that ends here (0 after --help, non-zero after a
// bad flag, with the message written to `err`).
struct ParsedTrainOptions {
    std::optional<TrainOptions> options;
    int exit_code = 0;
};

inline constexpr int max_example_epochs = 1'000'000;

inline ParsedTrainOptions parse_train_options(int argc, const char* const* argv, const std::string& description, TrainOptions o,
                                              std::ostream& out, std::ostream& err) {
    CLI::App app{description};
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return fmt::format("error: {}\nRun with --help for more information.\n", e.what());
    });
    app.add_option("--device", o.device, "cpu, cuda, or auto (cuda when a GPU is usable, else cpu)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    app.add_option("--epochs", o.epochs, "training epochs")->check(whole_number(1, max_example_epochs))->capture_default_str();
    app.add_option("--lr", o.lr, "Adam learning rate (positive, finite and non-zero as a float)")
        ->check(CLI::Validator([](std::string& text) { return check_lr(text); }, "POSITIVE FLOAT"))
        ->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the weights, the dropout masks, the batch order and the train/test split")
        ->check(whole_number(0, std::numeric_limits<std::uint32_t>::max()))
        ->capture_default_str();
    app.add_option("--split-seed", o.split_seed,
                   "seed of the train/test split alone (default: --seed), to train several seeds on one split")
        ->check(whole_number(0, std::numeric_limits<std::uint32_t>::max()));
    app.add_option("--print-every", o.print_every, "print a progress line every N epochs (0: none)")
        ->check(whole_number(0, max_example_epochs))
        ->capture_default_str();
    app.add_option("--data", o.data, "the CSV file")->capture_default_str();
    app.add_option("--out", o.out, "folder for loss.csv, loss.svg and model.safetensors (created; checked to be writable before training)")
        ->capture_default_str();
    app.add_option("--write-split", o.write_split,
                   "also write the train/test split to this file: a header 'set,row', then 'train,<row>' or 'test,<row>' for each row of --data (0-based, "
                   "the header not counted), for the PyTorch reference (bench/torch_examples.py)");

    if (o.offers_distributed) {
        app.add_flag("--distributed", o.distributed,
                     "train data-parallel over the processes of `mpirun -np N`: each takes 1/N of every batch of 64 and gradients are "
                     "averaged; rank 0 prints and writes the outputs");
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return {std::nullopt, app.exit(e, out, err)};
    } catch (const std::exception& e) {  // CLI11 lets a number too large for a flag's count escape as std::out_of_range
        err << "error: a flag's value could not be read (" << e.what() << "); run with --help for the flags\n";
        return {std::nullopt, 2};
    }
    if (o.out.empty()) {
        err << "error: --out is empty: name a folder for loss.csv, loss.svg and model.safetensors\n";
        return {std::nullopt, 2};
    }
    if (o.data.empty()) {
        err << "error: --data is empty: name the CSV file\n";
        return {std::nullopt, 2};
    }
    return {o, 0};
}

}  // namespace examples
