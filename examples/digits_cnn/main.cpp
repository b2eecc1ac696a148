// Handwritten digits (scikit-learn's 8x8 set, data/digits.csv) with a small CNN
// (examples/common/digits_cnn_model.hpp: two Conv + BatchNorm + ReLU + MaxPool blocks, then
// Linear), Adam, shuffled mini-batches of 64 from a DataLoader, trained on the backend chosen with
// --device. The flags and outputs are examples/digits' (loss.csv, loss.svg, model.safetensors,
// whose names are PyTorch's state_dict's, BatchNorm's buffers included).
//
// Host reads: one per epoch for the loss (a LossLog) and one for the test accuracy.
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

#include "../common/device.hpp"
#include "../common/digits_cnn_model.hpp"
#include "../common/digits_recipe.hpp"
#include "../common/guarded_main.hpp"
#include "../common/output.hpp"
#include "../common/split.hpp"
#include "../common/svg_plot.hpp"
#include "../common/train_options.hpp"

namespace mg = minigrad;

template <class B>
int train(const examples::TrainOptions& o, const mg::data::Dataset& train_set, const mg::data::Dataset& test_set) {
    mg::manual_seed(o.seed);
    examples::DigitsCnn<B> model;
    mg::optim::Adam opt(model.parameters(), {.lr = o.lr});
    mg::nn::CrossEntropyLoss loss_fn;
    mg::data::DataLoader<B> loader(train_set, {.batch_size = 64, .shuffle = true, .seed = o.seed});
    const auto x_test = mg::Tensor<mg::Cpu>::from(test_set.x).template to<B>();
    const auto y_test = mg::Tensor<mg::Cpu, std::int32_t>::from(test_set.y).template to<B>();
    mg::LossLog log(o.epochs);  // the mean training loss of each epoch

    fmt::print("Training a CNN on {} ({}): {} train rows, {} test rows, {} epochs, Adam lr {}, batch 64 ({} batches per epoch)\n", B::name,
               B::is_host ? "host" : "device", train_set.size(), test_set.size(), o.epochs, o.lr, loader.size());
    const auto batches = static_cast<float>(loader.size());
    double accuracy = 0, total_seconds = 0;
    for (int epoch = 1; epoch <= o.epochs; ++epoch) {
        const auto start = std::chrono::steady_clock::now();
        model.train();
        const auto loss_sum = examples::digits_epoch(model, opt, loss_fn, loader);
        {
            mg::NoGradGuard no_grad;
            log.record(loss_sum / batches);
            model.eval();  // BatchNorm's running statistics, no dropout
            accuracy = mg::metrics::accuracy(model(x_test), y_test);  // one read, which also waits for the epoch's work
        }
        const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        total_seconds += seconds;
        if (o.print_every > 0 && (epoch % o.print_every == 0 || epoch == o.epochs)) {
            fmt::print("epoch {:>4}  train loss {:.4f}  test accuracy {:.4f}  {:.3f} s\n", epoch, log.latest(), accuracy, seconds);
        }
    }
    model.train();

    const auto losses = log.values();
    if (examples::loss_diverged(losses, o.lr)) return 3;
    const auto right = static_cast<long>(std::lround(accuracy * static_cast<double>(test_set.size())));
    fmt::print("Training time: {:.3f} s ({:.3f} s/epoch, test evaluation included)\n", total_seconds, total_seconds / o.epochs);
    fmt::print("Final train loss: {:.6f}\n", losses.back());
    fmt::print("Test accuracy: {:.4f} ({} of {} rows)\n", accuracy, right, test_set.size());
    examples::write_outputs(o.out, losses, fmt::format("Digits CNN training loss ({}, Adam lr {}, batch 64)", B::name, o.lr),
                            "Cross-entropy loss (mean over the epoch's batches)", model);
    return 0;
}

int main(int argc, char** argv) {
    return examples::guarded_main([&] {
        examples::TrainOptions defaults;  // 30 epochs, lr 1e-3
        defaults.data = "data/digits.csv";
        const auto parsed = examples::parse_train_options(
            argc, argv, "Classify scikit-learn's 8x8 digits with a minigrad CNN (2 x Conv + BatchNorm + ReLU + MaxPool, Linear)", defaults,
            std::cout, std::cerr);
        if (!parsed.options) return parsed.exit_code;
        const auto& o = *parsed.options;
        examples::prepare_out_dir(o.out);
        auto digits = mg::data::read_csv(o.data, {.label = "label", .label_kind = mg::data::LabelKind::integer});
        digits.check_classes(10, o.data);  // the model's 10 outputs: every row, train and test, before training
        for (auto& v : digits.x.values) v /= 16.0f;  // pixel counts 0..16 to [0, 1], as examples/digits
        const auto [train_set, test_set] = examples::split_dataset(digits, 0.2, o.split_seed_or_seed(), o.write_split);
        return examples::run_on_device(o.device, [&]<class B>() { return train<B>(o, train_set, test_set); });
    });
}
