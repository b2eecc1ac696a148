// BatchNorm (ops/batch_norm.hpp, nn/batch_norm.hpp) and PyTorch's values for conv, conv_transpose2d, pooling and
// BatchNorm (tests/data/conv_goldens.safetensors, from tools/make_conv_goldens.py) in double and
// float; batch_norm's gradients against central differences; the modules' buffers (state_dict
// names, save and load, to<B2>()); every error message.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "goldens.hpp"
#include "helpers.hpp"
#include "temp_dir.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_batch_norm {

using T2 = mg::Tensor<mg::Cpu, double>;

static const mg::io::SafetensorsFile& goldens() { return golden_file("conv_goldens.safetensors"); }
static nlohmann::json cases() { return golden_cases(goldens()); }

template <class T>
void conv_and_pool_goldens() {
    const Goldens<T> g{goldens()};
    int seen = 0;
    for (const auto& c : cases()) {
        const std::string name = c.at("name"), op = c.at("op");
        if (op == "batch_norm") continue;
        CAPTURE(name);
        ++seen;
        auto x = g.get(name + ".x", true);
        mg::Tensor<mg::Cpu, T> y, w, b;
        if (op == "conv2d") {
            w = g.get(name + ".w", true);
            if (c.at("bias")) b = g.get(name + ".b", true);
            mg::Conv2dOptions options{.stride = {c.at("stride")[0], c.at("stride")[1]}, .dilation = {c.at("dilation")[0], c.at("dilation")[1]},
                                      .groups = c.at("groups")};
            if (c.at("padding").is_string()) {
                REQUIRE(c.at("padding") == "same");
                options.padding = mg::Padding("same");
            } else {
                options.padding = mg::Padding(c.at("padding")[0].get<std::int64_t>(), c.at("padding")[1].get<std::int64_t>());
            }
            y = mg::conv2d(x, w, b, options);
        } else if (op == "conv_transpose2d") {
            w = g.get(name + ".w", true);
            if (c.at("bias")) b = g.get(name + ".b", true);
            const auto pair = [&](const char* key) { return mg::Size2(c.at(key)[0].get<std::int64_t>(), c.at(key)[1].get<std::int64_t>()); };
            y = mg::conv_transpose2d(x, w, b,
                                     {.stride = pair("stride"), .padding = pair("padding"), .output_padding = pair("output_padding"),
                                      .groups = c.at("groups"), .dilation = pair("dilation")});
        } else if (op == "adaptive_avg_pool2d") {
            y = mg::adaptive_avg_pool2d(x, {c.at("output_size")[0], c.at("output_size")[1]});
        } else if (!c.contains("ceil_mode")) {  // the positional forms
            const mg::Size2 kernel{c.at("kernel")[0], c.at("kernel")[1]}, stride{c.at("stride")[0], c.at("stride")[1]},
                padding{c.at("padding")[0], c.at("padding")[1]};
            y = op == "max_pool2d" ? mg::max_pool2d(x, kernel, stride, padding) : mg::avg_pool2d(x, kernel, stride, padding);
        } else if (op == "max_pool2d") {
            const auto pair = [&](const char* key) { return mg::Size2(c.at(key)[0].get<std::int64_t>(), c.at(key)[1].get<std::int64_t>()); };
            auto [values, indices] = mg::max_pool2d_with_indices(
                x, pair("kernel"), {.stride = pair("stride"), .padding = pair("padding"), .dilation = pair("dilation"), .ceil_mode = c.at("ceil_mode")});
            y = values;
            CHECK(indices.to_vector() == goldens().find(name + ".indices")->values<std::int64_t>());
            CHECK(mg::nn::MaxPool2d(pair("kernel"), {.stride = pair("stride"), .padding = pair("padding"), .dilation = pair("dilation"),
                                                     .ceil_mode = c.at("ceil_mode")})(x.detach())
                      .to_vector() == y.detach().to_vector());
        } else {
            const auto pair = [&](const char* key) { return mg::Size2(c.at(key)[0].get<std::int64_t>(), c.at(key)[1].get<std::int64_t>()); };
            const mg::AvgPool2dOptions options{.stride = pair("stride"), .padding = pair("padding"), .ceil_mode = c.at("ceil_mode"),
                                               .count_include_pad = c.at("count_include_pad"), .divisor_override = c.at("divisor_override")};
            y = mg::avg_pool2d(x, pair("kernel"), options);
            CHECK(mg::nn::AvgPool2d(pair("kernel"), options)(x.detach()).to_vector() == y.detach().to_vector());
        }
        g.check(y, name + ".y");
        mg::sum(y * g.get(name + ".dy")).backward();
        g.check(x.grad(), name + ".grad.x");
        if (w.defined()) g.check(w.grad(), name + ".grad.w");
        if (b.defined()) g.check(b.grad(), name + ".grad.b");
    }
    CHECK(seen == 25);
}

TEST_CASE("conv2d, conv_transpose2d, max_pool2d (ties), avg_pool2d and adaptive_avg_pool2d: values and gradients as PyTorch's, in double and float") {
    SUBCASE("double") { conv_and_pool_goldens<double>(); }
    SUBCASE("float") { conv_and_pool_goldens<float>(); }
}

// Runs each BatchNorm case's steps as the module did in PyTorch: three in training, one in eval.
template <class T, template <class, class> class Layer>
void batch_norm_case(const nlohmann::json& c) {
    const Goldens<T> g{goldens()};
    const std::string name = c.at("name");
    const bool affine = c.at("affine");
    const auto x0 = g.get(name + ".step0.x");
    mg::nn::BatchNormModuleOptions options{.affine = affine};
    options.momentum = c.at("momentum").is_null() ? std::nullopt : std::optional<double>(c.at("momentum").get<double>());
    Layer<mg::Cpu, T> bn(x0.size(1), options);
    if (affine) {
        mg::NoGradGuard no_grad;
        bn.weight.copy_(g.get(name + ".weight"));
        bn.bias.copy_(g.get(name + ".bias"));
    }
    for (int step = 0; step < c.at("steps").get<int>(); ++step) {
        CAPTURE(step);
        const std::string prefix = name + ".step" + std::to_string(step);
        if (step == c.at("eval_from").get<int>()) bn.eval();
        auto x = g.get(prefix + ".x", true);
        auto y = bn(x);
        g.check(y, prefix + ".y");
        mg::sum(y * g.get(prefix + ".dy")).backward();
        g.check(x.grad(), prefix + ".grad.x");
        if (affine) {
            g.check(bn.weight.grad(), prefix + ".grad.weight");
            g.check(bn.bias.grad(), prefix + ".grad.bias");
            bn.zero_grad();
        }
        g.check(bn.running_mean, prefix + ".running_mean");
        g.check(bn.running_var, prefix + ".running_var");
        CHECK(bn.num_batches_tracked.item() == goldens().find(prefix + ".num_batches_tracked")->values<std::int64_t>()[0]);
    }
}

template <class T>
void batch_norm_goldens() {
    int seen = 0;
    for (const auto& c : cases()) {
        if (c.at("op") != "batch_norm") continue;
        const std::string name = c.at("name");
        CAPTURE(name);
        ++seen;
        if (name.rfind("bn2d", 0) == 0) {
            batch_norm_case<T, mg::nn::BatchNorm2d>(c);
        } else {
            batch_norm_case<T, mg::nn::BatchNorm1d>(c);
        }
    }
    CHECK(seen == 5);
}

TEST_CASE("BatchNorm1d and BatchNorm2d: three training steps and an eval step as PyTorch's (outputs, gradients, running statistics)") {
    SUBCASE("double") { batch_norm_goldens<double>(); }
    SUBCASE("float") { batch_norm_goldens<float>(); }
}

TEST_CASE("batch_norm: gradients by central differences in training and eval, for (N, C), (N, C, L) and (N, C, H, W)") {
    // planes of 4, 6 and 20 elements: the host's sums go eight at a time, then the rest
    for (const mg::Shape& shape : {mg::Shape{5, 3}, mg::Shape{3, 2, 4}, mg::Shape{2, 3, 3, 2}, mg::Shape{3, 2, 4, 5}}) {
        CAPTURE(shape);
        auto x = random_tensor(shape, 1, -1, 2);
        auto w = random_tensor(mg::Shape{shape[1]}, 2, 0.5, 1.5);
        auto b = random_tensor(mg::Shape{shape[1]}, 3);
        auto anchor = random_tensor(shape, 4).detach();
        const auto rm = T2::zeros(mg::Shape{shape[1]}), rv = T2::ones(mg::Shape{shape[1]});
        for (const bool training : {true, false}) {
            CAPTURE(training);
            check_gradients([&] { return mg::sum(mg::batch_norm(x, rm.clone(), rv.clone(), w, b, {.training = training}) * anchor); }, {x, w, b});
            // no affine parameters: weight 1 and bias 0
            const auto plain = mg::batch_norm(x, rm, rv, {}, {}, {.training = training});
            const auto with_ones = mg::batch_norm(x, rm, rv, T2::ones(mg::Shape{shape[1]}), T2::zeros(mg::Shape{shape[1]}), {.training = training});
            CHECK(plain.to_vector() == with_ones.to_vector());
        }
        // training without running statistics is allowed (the batch's are used)
        check_gradients([&] { return mg::sum(mg::batch_norm(x, T2{}, T2{}, w, b, {.training = true}) * anchor); }, {x, w, b});
    }
}

TEST_CASE("batch_norm: an input used twice gets the sum of both gradients, in training and eval") {
    const mg::Shape shape{3, 2, 5, 4};
    const auto values = random_tensor(shape, 5, -1, 2).detach();
    auto w = random_tensor(mg::Shape{2}, 6, 0.5, 1.5).detach();
    auto b = random_tensor(mg::Shape{2}, 7).detach();
    const T2 anchors[2] = {random_tensor(shape, 8).detach(), random_tensor(shape, 9).detach()};
    const auto rm = random_tensor(mg::Shape{2}, 10).detach(), rv = random_tensor(mg::Shape{2}, 11, 0.5, 2).detach();
    const auto use = [&](const T2& x, int which, bool training) {
        return mg::sum(mg::batch_norm(x, rm.clone(), rv.clone(), w, b, {.training = training}) * anchors[which]);
    };
    for (const auto& [first, second] : {std::pair{true, false}, std::pair{true, true}, std::pair{false, false}}) {
        const bool modes[2] = {first, second};
        CAPTURE(modes[0]);
        CAPTURE(modes[1]);
        auto x1 = values.clone().requires_grad_(), x2 = values.clone().requires_grad_(), both = values.clone().requires_grad_();
        use(x1, 0, modes[0]).backward();
        use(x2, 1, modes[1]).backward();
        (use(both, 0, modes[0]) + use(both, 1, modes[1])).backward();
        const auto g1 = x1.grad().to_vector(), g2 = x2.grad().to_vector(), g = both.grad().to_vector();
        for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(g1[i] + g2[i]).epsilon(1e-12));
    }
}

struct Net : mg::nn::Module<mg::Cpu> {
    mg::nn::Conv2d<mg::Cpu> conv{1, 3, 3};
    mg::nn::BatchNorm2d<mg::Cpu> bn{3};
    MINIGRAD_MODULE(conv, bn)
    mg::Tensor<mg::Cpu> forward(const mg::Tensor<mg::Cpu>& x) { return bn(conv(x)); }
};

TEST_CASE("BatchNorm2d's buffers: PyTorch's state_dict names, saved and loaded, moved by to<B2>(), not parameters") {
    mg::nn::BatchNorm2d<mg::Cpu> bn(3);
    CHECK(bn.named_parameters().size() == 2);
    const auto buffers = bn.named_buffers();
    REQUIRE(buffers.values.size() == 2);
    CHECK(buffers.values[0].first == "running_mean");
    CHECK(buffers.values[1].first == "running_var");
    REQUIRE(buffers.counts.size() == 1);
    CHECK(buffers.counts[0].first == "num_batches_tracked");
    CHECK(bn.running_var.to_vector() == std::vector<float>{1, 1, 1});

    auto x = random_tensor<float>(mg::Shape{4, 3, 2, 2}, 5, 0, 4);
    bn(x);
    bn(x);
    CHECK(bn.num_batches_tracked.item() == 2);
    const auto running = bn.running_mean.to_vector();

    TempDir dir;
    const auto path = dir.path / "bn.safetensors";
    bn.save(path);
    const auto file = mg::io::load_safetensors(path);
    std::vector<std::string> names;
    for (const auto& t : file.tensors) names.push_back(t.name);
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"bias", "num_batches_tracked", "running_mean", "running_var", "weight"});
    CHECK(file.find("num_batches_tracked")->dtype == mg::io::Dtype::I64);

    auto loaded = mg::nn::skip_init<mg::nn::BatchNorm2d<mg::Cpu>>(3);
    loaded.load(path);
    CHECK(loaded.running_mean.to_vector() == running);
    CHECK(loaded.num_batches_tracked.item() == 2);
    const auto moved = bn.to<mg::Cpu>();
    CHECK(moved.running_mean.to_vector() == running);
    CHECK(moved.num_batches_tracked.item() == 2);
    bn.eval();
    CHECK(bn.to<mg::Cpu>().is_training() == false);
    // eval: the running statistics normalise, and they do not move
    const auto y = bn(x);
    CHECK(bn.num_batches_tracked.item() == 2);
    CHECK(bn.running_mean.to_vector() == running);
    CHECK(y.to_vector() == mg::batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias).to_vector());

    // a model around it: names get the member's prefix, and a strict load wants every buffer
    Net net;
    net(random_tensor<float>(mg::Shape{2, 1, 5, 5}, 6));
    net.save(dir.path / "net.safetensors");
    Net other;
    other.load(dir.path / "net.safetensors");
    CHECK(other.bn.num_batches_tracked.item() == 1);
    CHECK(other.bn.running_var.to_vector() == net.bn.running_var.to_vector());
    // not strict: bn.pt's names are skipped and reported; the model's missing names are reported
    mg::nn::BatchNorm2d<mg::Cpu> alone(3);
    alone.save(dir.path / "alone.safetensors");
    const auto report = net.load(dir.path / "alone.safetensors", {.strict = false});
    CHECK(report.missing_keys ==
          std::vector<std::string>{"conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
    CHECK(report.unexpected_keys.size() == 5);
    CHECK(net.bn.num_batches_tracked.item() == 1);  // nothing it had was overwritten
    CHECK(error_message([&] { net.load(dir.path / "alone.safetensors"); }) ==
          fmt::format("load: '{}' has no tensor 'conv.weight' (shape [3, 1, 3, 3]) for this model", (dir.path / "alone.safetensors").string()));
}

TEST_CASE("BatchNorm: without affine or running statistics, momentum None, and every error") {
    mg::nn::BatchNorm1d<mg::Cpu, double> plain(4, {.affine = false, .track_running_stats = false});
    CHECK(plain.named_parameters().empty());
    CHECK(plain.named_buffers().values.empty());
    auto x = random_tensor(mg::Shape{6, 4}, 7);
    plain.eval();  // no running statistics: the batch's, even in eval
    CHECK(plain(x).to_vector() == mg::batch_norm(x, T2{}, T2{}, T2{}, T2{}, {.training = true}).to_vector());

    mg::nn::BatchNorm2d<mg::Cpu, double> bn(2);
    CHECK(error_message([&] { bn(random_tensor(mg::Shape{2, 2, 3}, 8)); }) == "BatchNorm2d: expected (N, C, H, W) input, got shape [2, 2, 3] (3 dims)");
    CHECK(error_message([&] { bn(random_tensor(mg::Shape{2, 3, 2, 2}, 8)); }) ==
          "BatchNorm2d: input of shape [2, 3, 2, 2] has 3 channels, this layer has num_features=2");
    CHECK(error_message([&] { mg::nn::BatchNorm1d<mg::Cpu>(3)(random_tensor<float>(mg::Shape{2, 3, 2, 2}, 8)); }) ==
          "BatchNorm1d: expected (N, C) or (N, C, L) input, got shape [2, 3, 2, 2] (4 dims)");
    CHECK(error_message([&] { bn(random_tensor(mg::Shape{1, 2, 1, 1}, 8)); }) ==
          "batch_norm: expected more than 1 value per channel when training, got input of shape [1, 2, 1, 1]");
    CHECK(error_message([&] { mg::nn::BatchNorm2d<mg::Cpu>(0); }) == "BatchNorm2d: num_features=0 must be positive");
    CHECK(error_message([&] { mg::nn::BatchNorm2d<mg::Cpu>(2, {.momentum = 1.5}); }) == "BatchNorm2d: momentum=1.5 must be in [0, 1]");
    const auto rm = T2::zeros(mg::Shape{2});
    CHECK(error_message([&] { mg::batch_norm(x, rm, rm); }) ==
          "batch_norm: argument #2 'running_mean' has shape [2], expected [4] (the channels of argument #1 'input', shape [6, 4])");
    CHECK(error_message([&] { mg::batch_norm(x, T2{}, T2{}); }) ==
          "batch_norm: in eval (training=false) it normalises by running_mean and running_var, which were not given");
    CHECK(error_message([&] { mg::batch_norm(random_tensor(mg::Shape{4}, 9), T2{}, T2{}, {}, {}, {.training = true}); }) ==
          "batch_norm: argument #1 'input' has shape [4], expected (N, C, *) with at least 2 dims");
}

}  // namespace test_batch_norm
