// Layers, modules, the optimizer, and loading parameters from host arrays (files: test_io.cpp).
#include "helpers.hpp"
#include "iris.hpp"

// The Iris model with a hidden width of 5, so shapes in messages differ from the defaults.
constexpr std::int64_t tiny_hidden = 5;
using TinyMLP = examples::IrisMLP<mg::Cpu>;

TEST_CASE("Linear: PyTorch's init range +-1/sqrt(in), weight (out, in), reproducible by seed") {
    mg::manual_seed(7);
    mg::nn::Linear<mg::Cpu> a(16, 8);
    CHECK(a.weight.shape() == mg::Shape{8, 16});
    CHECK(a.bias.shape() == mg::Shape{8});
    for (float v : a.weight.to_vector()) CHECK(std::abs(v) <= 0.25f);
    for (float v : a.bias.to_vector()) CHECK(std::abs(v) <= 0.25f);
    mg::manual_seed(7);
    mg::nn::Linear<mg::Cpu> b(16, 8);
    CHECK(a.weight.to_vector() == b.weight.to_vector());
    CHECK(a.bias.to_vector() == b.bias.to_vector());
    mg::nn::Linear<mg::Cpu> c(16, 8);
    CHECK(a.weight.to_vector() != c.weight.to_vector());
    // The values cover the range rather than bunching: over 128 draws the extremes come near the bounds.
    auto w = a.weight.to_vector();
    CHECK(*std::max_element(w.begin(), w.end()) > 0.2f);
    CHECK(*std::min_element(w.begin(), w.end()) < -0.2f);
}

TEST_CASE("Linear rejects non-positive sizes") {
    CHECK(error_message([] { mg::nn::Linear<mg::Cpu>(0, 3); }) == "Linear: in_features=0 and out_features=3 must both be positive");
}

TEST_CASE("Module: named_parameters in declaration order with PyTorch names") {
    TinyMLP model(tiny_hidden);
    auto named = model.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "fc1.weight");
    CHECK(named[1].first == "fc1.bias");
    CHECK(named[2].first == "fc2.weight");
    CHECK(named[3].first == "fc2.bias");
    CHECK(model.parameters().size() == 4);
    CHECK(model(mg::Tensor<mg::Cpu>::zeros({7, 4})).shape() == mg::Shape{7, 3});
}

TEST_CASE("Sequential names its layers 0, 1, 2 and applies them in order") {
    mg::manual_seed(1);
    mg::nn::Sequential seq(mg::nn::Linear<mg::Cpu>(4, 6), mg::nn::ReLU{}, mg::nn::Linear<mg::Cpu>(6, 2));
    auto named = seq.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "0.weight");
    CHECK(named[3].first == "2.bias");
    auto x = mg::Tensor<mg::Cpu>::ones({3, 4});
    auto expected = seq.layer<2>()(mg::relu(seq.layer<0>()(x))).to_vector();
    CHECK(seq(x).to_vector() == expected);
}

static_assert(mg::nn::EpilogueActivation<mg::nn::ReLU, float> && mg::nn::EpilogueActivation<mg::nn::GELU, double>);
static_assert(!mg::nn::EpilogueActivation<mg::nn::Softmax, float>);

// A layer derived from ReLU with a forward of its own: Sequential must run that forward.
struct CountingReLU : mg::nn::ReLU {
    int* calls;
    template <class B, class T>
    mg::Tensor<B, T> operator()(const mg::Tensor<B, T>& x) const {
        ++*calls;
        return mg::relu(x);
    }
};
static_assert(!mg::nn::EpilogueActivation<CountingReLU, float>);

// One forward call's launches, its values, and the gradients a backward() of sum(y * y) leaves.
template <class T>
struct Pass {
    std::uint64_t launches;
    std::vector<T> values;
    std::vector<std::vector<T>> grads;
};
template <class T, class F>
Pass<T> pass(F forward, std::vector<mg::Tensor<mg::Cpu, T>> leaves) {
    for (auto& l : leaves)
        if (l.impl().grad) l.impl().grad_is_zero = true;  // as zero_grad()
    const auto before = mg::counters().kernel_launches;
    auto y = forward();
    Pass<T> out{mg::counters().kernel_launches - before, y.to_vector(), {}};
    mg::sum(y * y).backward();
    for (const auto& l : leaves) out.grads.push_back(l.grad().to_vector());
    return out;
}

TEST_CASE("Linear with an activation, and a Linear then an activation in a Sequential: one launch, the two ops' values and gradients") {
    auto check = [](auto act, auto zero, bool with_bias) {
        using T = decltype(zero);
        mg::manual_seed(3);
        mg::nn::Linear<mg::Cpu, T> fc(5, 7, with_bias);
        auto x = mg::Tensor<mg::Cpu, T>::uniform({9, 5}, -2, 2).requires_grad_();
        // built by push_back: g++ 12 warns (-Warray-bounds, wrongly) on a brace list copied into it here
        std::vector<mg::Tensor<mg::Cpu, T>> leaves;
        leaves.push_back(x);
        leaves.push_back(fc.weight);
        if (with_bias) leaves.push_back(fc.bias);
        const auto fused = pass<T>([&] { return fc(x, act); }, leaves);
        const auto apart = pass<T>([&] { return act(fc(x)); }, leaves);
        CHECK(fused.launches == 1);
        CHECK(apart.launches == 2);
        CHECK(fused.values == apart.values);
        CHECK(fused.grads == apart.grads);
        mg::NoGradGuard no_grad;
        CHECK_FALSE(fc(x, act).requires_grad());
    };
    for (bool with_bias : {true, false}) {
        CAPTURE(with_bias);
        check(mg::nn::ReLU{}, 0.0f, with_bias);
        check(mg::nn::Tanh{}, 0.0f, with_bias);
        check(mg::nn::Sigmoid{}, 0.0f, with_bias);
        check(mg::nn::GELU{}, 0.0f, with_bias);
        check(mg::nn::GELU{"tanh"}, 0.0f, with_bias);
        check(mg::nn::Tanh{}, 0.0, with_bias);
    }

    mg::manual_seed(4);
    auto seq = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(4, 6), mg::nn::ReLU{}, mg::nn::Linear<mg::Cpu>(6, 6), mg::nn::Dropout(0.0),
                                  mg::nn::Tanh{}, mg::nn::Linear<mg::Cpu>(6, 2), mg::nn::Sigmoid{});
    auto x = mg::Tensor<mg::Cpu>::uniform({3, 4}, -1, 1);
    auto leaves = seq.parameters();
    const auto fused = pass<float>([&] { return seq(x); }, leaves);
    const auto apart = pass<float>([&] {
        auto h = mg::relu(seq.layer<0>()(x));
        h = mg::tanh(seq.layer<3>()(seq.layer<2>()(h)));  // a Dropout between: no fusion there
        return mg::sigmoid(seq.layer<5>()(h));
    }, leaves);
    CHECK(apart.launches == 6);  // Dropout(0) launches nothing
    CHECK(fused.launches == 4);  // Linear+ReLU, Linear, Tanh, Linear+Sigmoid
    CHECK(fused.values == apart.values);
    CHECK(fused.grads == apart.grads);

    int calls = 0;
    auto counted = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(4, 6), CountingReLU{{}, &calls});
    counted(x);
    CHECK(calls == 1);
}

TEST_CASE("SGD: one step with momentum and weight decay, by hand") {
    auto two = mg::Tensor<mg::Cpu>::full({1, 1}, 2.0f);
    // loss = 2w (linear of x = [[2]] with weight w = [[1]]): d loss/dw = 2; lr 0.1, momentum
    // 0.9, weight decay 0.5.
    auto w = tensor<float>({1.0f}, {1, 1}, true);
    mg::optim::SGD opt2({w}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5});
    auto run_step = [&] {
        opt2.zero_grad();
        mg::sum(mg::linear(two, w)).backward();
        opt2.step();
    };
    run_step();
    // g = 2 + 0.5*1 = 2.5; buf = g = 2.5 (first step); p = 1 - 0.1*2.5 = 0.75
    CHECK(w.to_vector()[0] == doctest::Approx(0.75));
    run_step();
    // g = 2 + 0.5*0.75 = 2.375; buf = 0.9*2.5 + 2.375 = 4.625; p = 0.75 - 0.4625 = 0.2875
    CHECK(w.to_vector()[0] == doctest::Approx(0.2875));
}

TEST_CASE("SGD: plain, Nesterov and dampening follow torch.optim.SGD") {
    auto two = mg::Tensor<mg::Cpu>::full({1, 1}, 2.0f);
    auto run = [&](mg::optim::SgdOptions o, int steps) {
        auto w = tensor<float>({1.0f}, {1, 1}, true);
        mg::optim::SGD opt({w}, o);
        for (int i = 0; i < steps; ++i) {
            opt.zero_grad();
            mg::sum(mg::linear(two, w)).backward();
            opt.step();
        }
        return static_cast<double>(w.to_vector()[0]);
    };
    CHECK(run({.lr = 0.1}, 2) == doctest::Approx(1 - 0.4));
    // Nesterov, mu 0.5: step 1 buf = 2, update g + mu*buf = 3 -> 0.7; step 2 buf = 0.5*2 + 2 = 3,
    // update 2 + 1.5 = 3.5 -> 0.35
    CHECK(run({.lr = 0.1, .momentum = 0.5, .nesterov = true}, 2) == doctest::Approx(0.35));
    // Dampening 0.5, mu 0.5: step 1 buf = 2 -> 0.8; step 2 buf = 1 + 0.5*2 = 2 -> 0.6
    CHECK(run({.lr = 0.1, .momentum = 0.5, .dampening = 0.5}, 2) == doctest::Approx(0.6));
}

TEST_CASE("SGD skips parameters that received no gradient, and checks its options") {
    auto used = tensor<float>({1.0f}, {1, 1}, true), unused = tensor<float>({5.0f}, {1}, true);
    mg::optim::SGD opt({used, unused}, {.lr = 0.1, .weight_decay = 1.0});
    mg::sum(mg::linear(mg::Tensor<mg::Cpu>::ones({1, 1}), used)).backward();
    opt.step();
    CHECK(unused.to_vector()[0] == 5.0f);
    CHECK(used.to_vector()[0] == doctest::Approx(1 - 0.1 * 2));
    CHECK(error_message([&] { mg::optim::SGD({used}, {.lr = -1}); }) == "SGD: lr=-1 must be >= 0");
    CHECK(error_message([&] { mg::optim::SGD({used}, {.lr = 0.1, .nesterov = true}); }) ==
          "SGD: nesterov needs momentum > 0 and dampening = 0 (got momentum=0, dampening=0)");
    CHECK(error_message([&] { mg::optim::SGD({mg::Tensor<mg::Cpu>{}}, {.lr = 0.1}); }) ==
          "SGD: parameter #0 is an undefined tensor (default-constructed, or an absent grad)");
}

TEST_CASE("load_parameters from host arrays by name checks everything first") {
    TinyMLP model(tiny_hidden);
    auto values = model.parameter_values();
    values["fc2.bias"] = {{3}, {1, 2, 3}};
    model.load_parameters(values);
    CHECK(model.fc2.bias.to_vector() == std::vector<float>{1, 2, 3});

    const auto before = model.parameter_values();
    auto missing = values;
    missing.erase("fc1.bias");
    missing["fc2.bias"] = {{3}, {7, 7, 7}};
    CHECK(error_message([&] { model.load_parameters(missing); }) == "load_parameters: no values given for parameter 'fc1.bias' (shape [5])");
    auto wrong = values;
    wrong["fc1.weight"].values.pop_back();
    CHECK(error_message([&] { model.load_parameters(wrong); }) == "load_parameters: 'fc1.weight' has 19 values, expected 20 for shape [5, 4]");
    // Same element count, other shape: a transposed weight is refused, not loaded silently.
    auto transposed = values;
    transposed["fc1.weight"].shape = {4, 5};
    CHECK(error_message([&] { model.load_parameters(transposed); }) == "load_parameters: 'fc1.weight' is given with shape [4, 5], this model's is [5, 4]");
    auto extra = values;
    extra["fc3.weight"] = {{1}, {1}};
    CHECK(error_message([&] { model.load_parameters(extra); }) == "load_parameters: 'fc3.weight' is not a parameter of this model");
    CHECK(model.parameter_values() == before);
}

TEST_CASE("to<Cpu>() rebuilds a model with the same values and does not move the generator") {
    mg::manual_seed(11);
    TinyMLP model(tiny_hidden);
    const auto next_before = mg::Tensor<mg::Cpu>::uniform({1}, 0, 1).to_vector();
    mg::manual_seed(11);
    TinyMLP again(tiny_hidden);
    auto copy = again.to<mg::Cpu>(tiny_hidden);
    CHECK(copy.parameter_values() == model.parameter_values());
    CHECK(mg::Tensor<mg::Cpu>::uniform({1}, 0, 1).to_vector() == next_before);
    copy.fc1.bias.data()[0] = 100;  // a copy, not a view
    CHECK(model.fc1.bias.to_vector()[0] != 100);
}

TEST_CASE("Linear and linear on (..., in) input, as torch's: every leading dim a row, no copy; its gradients; Flatten(1) before it") {
    mg::manual_seed(21);
    mg::nn::Linear<mg::Cpu, double> fc(4, 3);
    auto x = random_tensor(mg::Shape{2, 5, 4}, 81);
    const auto y = fc(x);
    REQUIRE(y.shape() == mg::Shape{2, 5, 3});
    CHECK(y.to_vector() == fc(mg::reshape(x, {10, 4})).to_vector());  // the same product over the same rows
    CHECK(fc(mg::narrow(mg::reshape(x, {40}), 0, 0, 4)).shape() == mg::Shape{3});  // a vector: (out)
    mg::Generator gen(3);
    const auto w = mg::Tensor<mg::Cpu, double>::uniform({2, 5, 3}, 0.5, 1.5, gen);
    check_gradients([&] { return mg::sum(fc(x) * w); }, {x, fc.weight, fc.bias});
    // Flatten(1): (N, C, H, W) -> (N, C*H*W), the batch kept; then a Linear
    mg::nn::Flatten flatten;
    auto image = random_tensor(mg::Shape{2, 2, 2, 1}, 82);
    CHECK(flatten(image).shape() == mg::Shape{2, 4});
    CHECK(mg::nn::Flatten(0)(image).shape() == mg::Shape{8});
    CHECK(mg::nn::Flatten(1, 2)(image).shape() == mg::Shape{2, 4, 1});
    mg::nn::Sequential net(mg::nn::Flatten(), mg::nn::Linear<mg::Cpu, double>(4, 3));
    CHECK(net(image).shape() == mg::Shape{2, 3});
    CHECK(error_message([&] { fc(random_tensor(mg::Shape{2, 5}, 83)); }) ==
          "linear: argument #1 'input' has shape [2, 5], expected [*, 4] (weight has shape [3, 4])");
}
