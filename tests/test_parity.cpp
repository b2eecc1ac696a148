// Whole training runs against PyTorch 1.13 (reference losses and fixtures from
// tools/make_parity_goldens.py in tests/data): diabetes regression (Tanh, MSELoss), breast cancer
// classification (Sigmoid, BCEWithLogitsLoss), both full batch, and digits in mini-batches taken in
// a stored order. Each starts from PyTorch's initial weights and the same float32 data, trains
// with Adam and must match every recorded loss within 1e-4 relative.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_parity {

namespace fs = std::filesystem;
namespace io = mg::io;
namespace nn = mg::nn;

namespace {

const fs::path test_data = MINIGRAD_TEST_DATA_DIR;

const nlohmann::json& parity_run(const std::string& name) {
    static const nlohmann::json runs =
        nlohmann::json::parse(io::load_safetensors(test_data / "parity_goldens.safetensors").metadata.at("runs"));
    for (const auto& run : runs) {
        if (run.at("name") == name) return run;
    }
    FAIL("no run '", name, "' in parity_goldens.safetensors");
    throw;
}

std::vector<double> golden_losses(const std::string& name) {
    const auto file = io::load_safetensors(test_data / "parity_goldens.safetensors");
    REQUIRE(file.find(name + ".loss") != nullptr);
    return file.find(name + ".loss")->values<double>();
}

// A float32 matrix of a fixture, in the shape it is stored with.
mg::Tensor<mg::Cpu> fixture_matrix(const io::SafetensorsFile& file, const std::string& name) {
    const auto* t = file.find(name);
    REQUIRE(t != nullptr);
    REQUIRE(t->shape.size() == 2);
    return mg::Tensor<mg::Cpu>::from(t->values<float>(), {t->shape[0], t->shape[1]});
}

// The model of a run, nn::Sequential's names matching torch.nn.Sequential's, loaded from its fixture.
template <class Activation>
auto initial_model(const nlohmann::json& run) {
    const auto& sizes = run.at("sizes");
    auto model = nn::Sequential(nn::Linear<mg::Cpu>(sizes[0], sizes[1]), Activation{}, nn::Linear<mg::Cpu>(sizes[1], sizes[2]));
    model.load(test_data / ("parity_" + std::string(run.at("name")) + "_init.safetensors"));
    return model;
}

// Adam on each batch that batch_at(step) gives; returns the loss of every step (before its update).
template <class Model, class Loss, class BatchAt>
std::vector<float> train(Model& model, const Loss& loss_fn, double lr, std::size_t steps, BatchAt batch_at) {
    mg::optim::Adam<mg::Cpu, float> opt(model.parameters(), mg::optim::AdamOptions{.lr = lr});
    mg::LossLog log;
    for (std::size_t step = 0; step < steps; ++step) {
        const auto [x, y] = batch_at(step);
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
    return log.values();
}

// The worst relative gap of losses to PyTorch's; said with MESSAGE and checked.
void check_against_pytorch(const std::string& name, const std::vector<float>& losses, const std::vector<double>& expected) {
    REQUIRE(losses.size() == expected.size());
    double worst = 0;
    for (std::size_t i = 0; i < losses.size(); ++i) worst = std::max(worst, std::abs(losses[i] - expected[i]) / std::abs(expected[i]));
    MESSAGE(name, ": ", losses.size(), " losses, ", expected.front(), " -> ", expected.back(), ", worst relative gap to PyTorch ", worst);
    CHECK(worst < 1e-4);
}

// A full-batch run: x and y from the run's data fixture, the same every step.
template <class Activation, class Loss>
void check_full_batch_run(const std::string& name, const Loss& loss_fn) {
    const auto& run = parity_run(name);
    const auto data = io::load_safetensors(test_data / ("parity_" + name + "_data.safetensors"));
    const auto x = fixture_matrix(data, "x");
    const auto y = fixture_matrix(data, "y");
    auto model = initial_model<Activation>(run);
    const auto expected = golden_losses(name);
    const auto losses = train(model, loss_fn, run.at("lr"), run.at("steps").get<std::size_t>(), [&](std::size_t) { return std::pair(x, y); });
    check_against_pytorch(name, losses, expected);
}

}  // namespace

TEST_CASE("parity with PyTorch: diabetes, 10-32-Tanh-1 with MSELoss and Adam, full batch") {
    check_full_batch_run<nn::Tanh>("diabetes", nn::MSELoss{});
}

TEST_CASE("parity with PyTorch: breast cancer, 30-16-Sigmoid-1 with BCEWithLogitsLoss and Adam, full batch") {
    check_full_batch_run<nn::Sigmoid>("breast_cancer", nn::BCEWithLogitsLoss<mg::Cpu>{});
}

TEST_CASE("parity with PyTorch: digits, 64-128-ReLU-10 with CrossEntropyLoss and Adam, batches of 64 in a stored order") {
    const auto& run = parity_run("digits");
    // The script reads the same file; counts 0..16 over 16 are exact in float32.
    auto digits = mg::data::read_csv(std::string(MINIGRAD_DATA_DIR) + "/digits.csv", {.label = "label", .label_kind = mg::data::LabelKind::integer});
    for (auto& v : digits.x.values) v /= 16.0f;
    const auto x = mg::Tensor<mg::Cpu>::from(std::span<const float>(digits.x.values), {digits.x.rows, digits.x.cols});
    const auto order_file = io::load_safetensors(test_data / "parity_digits_data.safetensors");
    const auto* order_data = order_file.find("order");
    REQUIRE(order_data != nullptr);
    const auto order = order_data->values<std::int64_t>();
    const std::int64_t rows = digits.x.rows, epochs = run.at("epochs"), batch_size = run.at("batch_size");
    REQUIRE(order_data->shape == std::vector<std::int64_t>{epochs, rows});
    const std::int64_t batches_per_epoch = (rows + batch_size - 1) / batch_size;

    // Step s takes batch s % batches_per_epoch of epoch s / batches_per_epoch's permutation.
    auto batch_at = [&](std::size_t step) {
        const std::int64_t epoch = static_cast<std::int64_t>(step) / batches_per_epoch, batch = static_cast<std::int64_t>(step) % batches_per_epoch;
        const auto first = order.begin() + epoch * rows + batch * batch_size;
        const std::vector<std::int64_t> picked(first, first + std::min(batch_size, rows - batch * batch_size));
        std::vector<std::int32_t> labels;
        for (auto row : picked) labels.push_back(digits.y[static_cast<std::size_t>(row)]);
        return std::pair(mg::index_select(x, 0, mg::Tensor<mg::Cpu, std::int64_t>::from(picked)), mg::Tensor<mg::Cpu, std::int32_t>::from(labels));
    };
    auto model = initial_model<nn::ReLU>(run);
    const auto expected = golden_losses("digits");
    const auto losses = train(model, nn::CrossEntropyLoss{}, run.at("lr"), static_cast<std::size_t>(epochs * batches_per_epoch), batch_at);
    check_against_pytorch("digits", losses, expected);
}

}  // namespace test_parity
