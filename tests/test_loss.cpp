// The losses (ops/cross_entropy.hpp, ops/loss.hpp, nn/loss.hpp): values and gradients against PyTorch's
// (tests/data/loss_goldens.safetensors, from tools/make_loss_goldens.py), gradients against central
// differences in double for every loss and reduction, ignore_index and label_smoothing semantics,
// and every refused argument with its message.
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "goldens.hpp"
#include "helpers.hpp"

namespace {

using T2 = mg::Tensor<mg::Cpu, double>;
using Labels = mg::Tensor<mg::Cpu, std::int64_t>;
using mg::Reduction;

constexpr Reduction all_reductions[] = {Reduction::Mean, Reduction::Sum, Reduction::None};

// A scalar from a loss of any reduction: a none result goes through a sum of squared distances
// to fixed values, so each row or element gets its own upstream gradient.
T2 scalar(const T2& loss, std::uint64_t seed = 77) {
    if (loss.ndim() == 0) return loss;
    mg::Generator gen(seed);
    auto anchor = T2::uniform(loss.shape(), -1, 1, gen);
    return mg::mse_loss(loss, anchor, Reduction::Sum);
}

Labels labels(std::vector<std::int64_t> values) { return Labels::from(values); }

// The goldens hold scalars, vectors and matrices.
mg::Shape loss_golden_shape(const std::vector<std::int64_t>& dims) {
    REQUIRE(dims.size() <= 2);
    return shape_of(dims);
}

}  // namespace

TEST_CASE("mse_loss, l1_loss: values by hand in each reduction") {
    auto x = tensor({1, 2, 3, 4}, {2, 2}), y = tensor({0, 2, 5, 3}, {2, 2});
    CHECK(mg::mse_loss(x, y).item() == doctest::Approx((1 + 0 + 4 + 1) / 4.0));
    CHECK(mg::mse_loss(x, y, Reduction::Sum).item() == doctest::Approx(6));
    CHECK(mg::mse_loss(x, y, Reduction::None).to_vector() == std::vector<double>{1, 0, 4, 1});
    CHECK(mg::mse_loss(x, y, Reduction::None).shape() == mg::Shape{2, 2});
    CHECK(mg::l1_loss(x, y).item() == doctest::Approx((1 + 0 + 2 + 1) / 4.0));
    CHECK(mg::l1_loss(x, y, Reduction::Sum).item() == doctest::Approx(4));
    CHECK(mg::l1_loss(x, y, Reduction::None).to_vector() == std::vector<double>{1, 0, 2, 1});
}

TEST_CASE("l1_loss: the gradient where input equals target is 0, as PyTorch's sign") {
    auto x = tensor({1, 2, 3}, {3}, true), y = tensor({0, 2, 5}, {3}, true);
    mg::l1_loss(x, y, Reduction::Sum).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{1, 0, -1});
    CHECK(y.grad().to_vector() == std::vector<double>{-1, 0, 1});
}

TEST_CASE("binary_cross_entropy_with_logits: the stable form matches the textbook formula, and stays finite for large logits") {
    auto x = tensor({-3, -0.5, 0, 0.7, 2.5, 4}, {2, 3}), y = tensor({0, 1, 0.5, 1, 0, 0.25}, {2, 3});
    auto pw = tensor({0.5, 2, 3}, {3});
    const auto none = mg::binary_cross_entropy_with_logits(x, y, {.pos_weight = pw, .reduction = Reduction::None}).to_vector();
    const auto xs = x.to_vector(), ys = y.to_vector(), ws = pw.to_vector();
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const double s = 1 / (1 + std::exp(-xs[i])), w = ws[i % 3];
        CHECK(none[i] == doctest::Approx(-(w * ys[i] * std::log(s) + (1 - ys[i]) * std::log(1 - s))));
    }
    auto big = tensor({-1000, 1000}, {2}), target = tensor({1, 0}, {2});
    const auto v = mg::binary_cross_entropy_with_logits(big, target, {.reduction = Reduction::None}).to_vector();
    CHECK(v == std::vector<double>{1000, 1000});
}

TEST_CASE("cross_entropy: ignore_index rows add nothing and the mean is over the other rows") {
    auto logits = tensor({0, 0, 0, 1, 2, 3, 5, -1, 2}, {3, 3}, true);
    const double row1 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;
    const double row0 = std::log(3.0);
    auto mean = mg::cross_entropy(logits, labels({1, 2, -100}));
    CHECK(mean.item() == doctest::Approx((row0 + row1) / 2));
    mg::sum(logits).backward();  // a gradient of 1 everywhere, then zero_grad's mark: the ignored
    logits.impl().grad_is_zero = true;  // row must be written as 0, not left as it was
    mean.backward();
    const auto g = logits.grad().to_vector();
    CHECK(std::vector<double>(g.begin() + 6, g.end()) == std::vector<double>{0, 0, 0});
    CHECK(g[0] == doctest::Approx(1.0 / 3 / 2));
    CHECK(mg::cross_entropy(logits.detach(), labels({1, 2, -100}), {.reduction = Reduction::Sum}).item() == doctest::Approx(row0 + row1));
    CHECK(mg::cross_entropy(logits.detach(), labels({1, 2, -100}), {.reduction = Reduction::None}).to_vector()[2] == 0);
    // Any ignore_index, also one inside [0, classes): class 2 is ignored, -100 is then out of range.
    CHECK(mg::cross_entropy(logits.detach(), labels({1, 2, 2}), {.ignore_index = 2}).item() == doctest::Approx(row0));
    CHECK_THROWS_AS(mg::cross_entropy(logits.detach(), labels({1, 2, -100}), {.ignore_index = 2}), mg::ValueError);
    // Every row ignored: the mean is 0/0, NaN, as in PyTorch, and the gradient 0, as in PyTorch
    // (the mean's scale is 1/0, and an ignored row's gradient stays 0 whatever scales it).
    CHECK(std::isnan(mg::cross_entropy(logits.detach(), labels({-100, -100, -100})).item()));
    auto fresh = tensor({0, 0, 0, 1, 2, 3, 5, -1, 2}, {3, 3}, true);
    mg::cross_entropy(fresh, labels({-100, -100, -100})).backward();
    CHECK(fresh.grad().to_vector() == std::vector<double>(9, 0.0));
    CHECK(mg::nll_loss(logits.detach(), labels({-100, 1, -100})).item() == doctest::Approx(-2.0));
    CHECK(std::isnan(mg::nll_loss(logits.detach(), labels({-100, -100, -100})).item()));
}

TEST_CASE("cross_entropy: label_smoothing by PyTorch's formula, by hand") {
    auto logits = tensor({1, 2, 3, 0.5, -1, 0}, {2, 3});
    const double e = 0.1;
    double expected = 0;
    const auto xs = logits.to_vector();
    const std::int64_t target[] = {2, 0};
    for (int r = 0; r < 2; ++r) {
        double lse = 0, mean_x = 0;
        for (int c = 0; c < 3; ++c) lse += std::exp(xs[r * 3 + c]), mean_x += xs[r * 3 + c] / 3;
        lse = std::log(lse);
        expected += ((1 - e) * (lse - xs[r * 3 + target[r]]) + e * (lse - mean_x)) / 2;
    }
    CHECK(mg::cross_entropy(logits, labels({2, 0}), {.label_smoothing = e}).item() == doctest::Approx(expected).epsilon(1e-12));
    // Smoothing 1 is allowed (the uniform target); float and double agree.
    CHECK(std::isfinite(mg::cross_entropy(logits, labels({2, 0}), {.label_smoothing = 1}).item()));
    auto lf = mg::Tensor<mg::Cpu, float>::from(std::vector<float>(xs.begin(), xs.end()), {2, 3});
    CHECK(mg::cross_entropy(lf, labels({2, 0}), {.label_smoothing = 0.1f}).item() == doctest::Approx(expected).epsilon(1e-6));
}

TEST_CASE("the default cross_entropy is unchanged: same launches, same values as reduction mean with no options") {
    auto logits = random_tensor({5, 3}, 11, -2, 2);
    auto target = labels({0, 2, 1, 1, 0});
    const auto before = mg::counters().kernel_launches;
    auto loss = mg::cross_entropy(logits, target);
    CHECK(mg::counters().kernel_launches - before == 3);  // the label check, the fused row kernel and the sum
    CHECK(loss.item() == mg::nn::CrossEntropyLoss{}(logits, target).item());
    CHECK(loss.item() == mg::cross_entropy(logits, target, {.ignore_index = -100, .label_smoothing = 0, .reduction = Reduction::Mean}).item());
}

TEST_CASE("gradients of every loss and every reduction against central differences") {
    auto logits = random_tensor({5, 4}, 21, -2, 2);
    auto with_ignored = labels({0, -100, 3, 1, 2});
    auto x = random_tensor({3, 4}, 22, -2, 2), y = random_tensor({3, 4}, 23, -2, 2);
    auto prob = random_tensor({3, 4}, 24, 0, 1);
    auto pw = random_tensor({4}, 25, 0.5, 3);
    for (auto reduction : all_reductions) {
        CAPTURE(static_cast<int>(reduction));
        for (double smoothing : {0.0, 0.1}) {
            CAPTURE(smoothing);
            check_gradients([&] { return scalar(mg::cross_entropy(logits, with_ignored, {.label_smoothing = smoothing, .reduction = reduction})); },
                            {logits});
        }
        check_gradients([&] { return scalar(mg::cross_entropy(logits, labels({0, 1, 3, 1, 2}), {.ignore_index = 1, .reduction = reduction})); },
                        {logits});
        check_gradients([&] { return scalar(mg::nll_loss(mg::log_softmax(logits), with_ignored, {.reduction = reduction})); }, {logits});
        check_gradients([&] { return scalar(mg::nll_loss(logits, labels({0, 1, 3, 1, 2}), {.ignore_index = 3, .reduction = reduction})); },
                        {logits});
        check_gradients([&] { return scalar(mg::mse_loss(x, y, reduction)); }, {x, y});
        check_gradients([&] { return scalar(mg::l1_loss(x, y, reduction)); }, {x, y});
        check_gradients([&] { return scalar(mg::binary_cross_entropy_with_logits(x, prob, {.reduction = reduction})); }, {x, prob});
        check_gradients([&] { return scalar(mg::binary_cross_entropy_with_logits(x, prob, {.pos_weight = pw, .reduction = reduction})); },
                        {x, prob, pw});
    }
    // A 1-D input: pos_weight of one column per element's last dim.
    auto v = random_tensor({5}, 26, -2, 2), t = random_tensor({5}, 27, 0, 1), pw5 = random_tensor({5}, 28, 0.5, 2);
    check_gradients([&] { return mg::binary_cross_entropy_with_logits(v, t, {.pos_weight = pw5}); }, {v, t, pw5});
}

TEST_CASE("values and gradients match PyTorch's (tests/data/loss_goldens.safetensors) to 1e-6") {
    const auto file = mg::io::load_safetensors(std::filesystem::path(MINIGRAD_TEST_DATA_DIR) / "loss_goldens.safetensors");
    const auto get = [&](const std::string& name) {
        const auto* t = file.find(name);
        REQUIRE_MESSAGE(t != nullptr, name);
        return t;
    };
    const auto floats = [&](const std::string& name) {
        const auto* t = get(name);
        auto out = T2::from(t->values<double>(), loss_golden_shape(t->shape));
        out.requires_grad_();
        return out;
    };
    const auto ints = [&](const std::string& name) {
        const auto* t = get(name);
        return Labels::from(t->values<std::int64_t>(), loss_golden_shape(t->shape));
    };
    const auto close = [](const std::vector<double>& got, const std::vector<double>& expected) {
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CAPTURE(i);
            CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-6).scale(1e-12));
        }
    };
    const auto cases = nlohmann::json::parse(file.metadata.at("cases"));
    CHECK(cases.size() == 27);
    for (const auto& c : cases) {
        const std::string name = c.at("name"), kind = c.at("loss"), red = c.at("reduction");
        CAPTURE(name);
        const Reduction reduction = red == "mean" ? Reduction::Mean : red == "sum" ? Reduction::Sum : Reduction::None;
        const std::string input_name = c.at("input");
        auto input = floats(input_name);
        std::vector<std::pair<std::string, T2>> leaves;  // the float inputs PyTorch gave a gradient
        leaves.emplace_back(input_name, input);
        T2 loss;
        if (kind == "cross_entropy") {
            loss = mg::cross_entropy(input, ints(c.at("target")),
                                     {.ignore_index = c.at("ignore_index"), .label_smoothing = c.at("label_smoothing"), .reduction = reduction});
        } else if (kind == "nll_loss") {
            loss = mg::nll_loss(input, ints(c.at("target")), {.ignore_index = c.at("ignore_index"), .reduction = reduction});
        } else {
            const std::string target_name = c.at("target");
            auto target = floats(target_name);
            leaves.emplace_back(target_name, target);
            if (kind == "mse_loss") {
                loss = mg::mse_loss(input, target, reduction);
            } else if (kind == "l1_loss") {
                loss = mg::l1_loss(input, target, reduction);
            } else {
                REQUIRE(kind == "binary_cross_entropy_with_logits");
                T2 pw;
                if (c.contains("pos_weight")) pw = floats(c.at("pos_weight")).detach();  // PyTorch gives it no gradient
                loss = mg::binary_cross_entropy_with_logits(input, target, {.pos_weight = pw, .reduction = reduction});
            }
        }
        close(loss.to_vector(), get(name + ".value")->values<double>());
        CHECK(loss.shape() == loss_golden_shape(get(name + ".value")->shape));
        if (reduction == Reduction::None)
            mg::mse_loss(loss, floats(loss.ndim() == 1 ? "anchor_rows" : "anchor_x").detach(), Reduction::Sum).backward();
        else
            loss.backward();
        for (auto& [leaf_name, leaf] : leaves) {
            CAPTURE(leaf_name);
            close(leaf.grad().to_vector(), get(name + ".grad." + leaf_name)->values<double>());
        }
    }
}

TEST_CASE("the nn modules hold their options and call the functional forms") {
    auto logits = random_tensor({4, 3}, 31, -2, 2);
    auto target = labels({0, -100, 2, 1});
    mg::nn::CrossEntropyLoss smooth({.ignore_index = -100, .label_smoothing = 0.1f, .reduction = mg::nn::Reduction::Sum});
    CHECK(smooth(logits, target).item() == mg::cross_entropy(logits, target, {.label_smoothing = 0.1f, .reduction = Reduction::Sum}).item());
    CHECK(mg::nn::NLLLoss({.reduction = Reduction::None})(logits, target).shape() == mg::Shape{4});
    CHECK(mg::nn::NLLLoss{}(logits, target).item() == mg::nll_loss(logits, target).item());
    auto x = random_tensor({2, 3}, 32), y = random_tensor({2, 3}, 33, 0, 1);
    CHECK(mg::nn::MSELoss{}(x, y).item() == mg::mse_loss(x, y).item());
    CHECK(mg::nn::L1Loss({.reduction = Reduction::Sum})(x, y).item() == mg::l1_loss(x, y, Reduction::Sum).item());
    auto pw = tensor({1, 2, 3}, {3});
    mg::nn::BCEWithLogitsLoss<mg::Cpu, double> bce({.pos_weight = pw});
    CHECK(bce(x, y).item() == mg::binary_cross_entropy_with_logits(x, y, {.pos_weight = pw}).item());
    CHECK(mg::nn::BCEWithLogitsLoss<mg::Cpu, double>{}(x, y).item() == mg::binary_cross_entropy_with_logits(x, y).item());
}

// A loss that takes the layer as a plain type, as examples/common/digits_recipe.hpp does.
static double loss_through_reference(const mg::nn::CrossEntropyLoss& loss_fn, const T2& logits, const Labels& target) { return loss_fn(logits, target).item(); }

TEST_CASE("CrossEntropyLoss and NLLLoss take a class weight, as weight= in PyTorch, and stay plain types") {
    auto logits = random_tensor({5, 3}, 34, -2, 2);
    auto target = labels({0, -100, 2, 1, 2});
    auto weight = tensor({0.5, 2.0, 1.5}, {3});
    const mg::nn::CrossEntropyLoss weighted(weight, {.label_smoothing = 0.1});
    CHECK(loss_through_reference(weighted, logits, target) == mg::cross_entropy(logits, target, weight, {.label_smoothing = 0.1}).item());
    CHECK(loss_through_reference(weighted, logits, target) != mg::cross_entropy(logits, target, {.label_smoothing = 0.1}).item());
    CHECK(loss_through_reference(mg::nn::CrossEntropyLoss{}, logits, target) == mg::cross_entropy(logits, target).item());
    // (N, C, d) input: the weight goes along the class dim
    auto logits3 = random_tensor({2, 3, 4}, 35, -2, 2);
    auto target3 = Labels::from(std::vector<std::int64_t>{0, 1, 2, 0, 2, 2, 1, -100}).reshape({2, 4});
    CHECK(weighted(logits3, target3).item() == mg::cross_entropy(logits3, target3, weight, {.label_smoothing = 0.1}).item());
    // the gradient is the functional form's
    auto a = logits.detach().requires_grad_(), b = logits.detach().requires_grad_();
    weighted(a, target).backward();
    mg::cross_entropy(b, target, weight, {.label_smoothing = 0.1}).backward();
    CHECK(a.grad().to_vector() == b.grad().to_vector());
    const auto log_probs = mg::log_softmax(logits, 1);
    const mg::nn::NLLLoss nll(weight, {.reduction = Reduction::Sum});
    CHECK(nll(log_probs, target).item() == mg::nll_loss(log_probs, target, weight, {.reduction = Reduction::Sum}).item());
    // a weight of another element type than the input's: an error at the call, naming both
    const mg::nn::CrossEntropyLoss float_weight(mg::Tensor<mg::Cpu, float>::from(std::vector<float>{1, 2, 3}));
    CHECK(error_message([&] { float_weight(logits, target); }) ==
          "CrossEntropyLoss: its class weight is a tensor on Cpu of float and the input one on Cpu of double; make the loss with the "
          "weight on the input's backend and element type (weight.to<mg::Cpu>())");
    CHECK_THROWS_AS(mg::nn::NLLLoss(mg::Tensor<mg::Cpu, float>::from(std::vector<float>{1, 2, 3}))(log_probs, target), mg::DeviceError);
    // the weight's checks are the functional form's
    const mg::nn::CrossEntropyLoss short_weight(tensor({1, 2}, {2}));
    CHECK_THROWS_AS(short_weight(logits, target), mg::ShapeError);
}

TEST_CASE("BCEWithLogitsLoss with no pos_weight needs no backend, as PyTorch's nn.BCEWithLogitsLoss()") {
    mg::nn::BCEWithLogitsLoss loss_fn;
    mg::nn::BCEWithLogitsLoss summed({.reduction = Reduction::Sum});
    auto x = random_tensor({2, 3}, 34), y = random_tensor({2, 3}, 35, 0, 1);
    auto loss = loss_fn(x, y);
    CHECK(loss.item() == mg::binary_cross_entropy_with_logits(x, y).item());
    CHECK(summed(x, y).item() == mg::binary_cross_entropy_with_logits(x, y, {.reduction = Reduction::Sum}).item());
    loss.backward();
    const auto dx = x.grad().to_vector();
    x.zero_grad();
    mg::binary_cross_entropy_with_logits(x, y).backward();
    CHECK(dx == x.grad().to_vector());
    // the same object on float tensors
    auto xf = random_tensor<float>({2, 3}, 34), yf = random_tensor<float>({2, 3}, 35, 0, 1);
    CHECK(loss_fn(xf, yf).item() == mg::binary_cross_entropy_with_logits(xf, yf).item());
    // a pos_weight still puts the loss on its tensor's backend and element type
    mg::nn::BCEWithLogitsLoss<mg::Cpu, double> weighted({.pos_weight = tensor({1, 2, 3}, {3})});
    CHECK(weighted(x, y).item() == mg::binary_cross_entropy_with_logits(x, y, {.pos_weight = tensor({1, 2, 3}, {3})}).item());
    const mg::BceWithLogitsOptions<mg::Cpu, double> options{.pos_weight = tensor({1, 2, 3}, {3})};
    mg::nn::BCEWithLogitsLoss from_options(options);
    static_assert(std::is_same_v<decltype(from_options), mg::nn::BCEWithLogitsLoss<mg::Cpu, double>>);
    CHECK(from_options(x, y).item() == weighted(x, y).item());
}

TEST_CASE("loss errors name the op, the argument and both shapes") {
    auto x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(error_message([&] { mg::mse_loss(x, tensor({1, 2, 3, 4, 5, 6}, {3, 2})); }) ==
          "mse_loss: argument #2 'target' has shape [3, 2], expected [2, 3] (the shape of argument #1 'input')");
    CHECK(error_message([&] { mg::l1_loss(x, tensor({1, 2, 3}, {3})); }) ==
          "l1_loss: argument #2 'target' has shape [3], expected [2, 3] (the shape of argument #1 'input')");
    CHECK(error_message([&] { mg::binary_cross_entropy_with_logits(x, tensor({1, 2}, {2})); }) ==
          "binary_cross_entropy_with_logits: argument #2 'target' has shape [2], expected [2, 3] (the shape of argument #1 'input')");
    CHECK(error_message([&] { mg::binary_cross_entropy_with_logits(x, x, {.pos_weight = tensor({1, 2}, {2})}); }) ==
          "binary_cross_entropy_with_logits: argument #3 'pos_weight' has shape [2], expected [3] (one weight per column of argument #1 "
          "'input', shape [2, 3])");
    CHECK(error_message([&] { mg::binary_cross_entropy_with_logits(x, x, {.pos_weight = tensor({1, 2, 3}, {1, 3})}); }) ==
          "binary_cross_entropy_with_logits: argument #3 'pos_weight' has shape [1, 3], expected [3] (one weight per column of argument #1 "
          "'input', shape [2, 3])");
    CHECK(error_message([&] { mg::mse_loss(x, T2()); }) == "mse_loss: argument #2 'target' is an undefined tensor (default-constructed, or an absent grad)");
    // Class-index targets: wrong rank, wrong length, a label out of range, input not a matrix.
    CHECK(error_message([&] { mg::cross_entropy(x, Labels::from({1, 2}, {2, 1})); }) ==
          "cross_entropy: argument #2 'target' has shape [2, 1], expected [2] (one class index per row of argument #1 'input', shape [2, 3])");
    CHECK(error_message([&] { mg::nll_loss(x, labels({1, 2, 0})); }) ==
          "nll_loss: argument #2 'target' has shape [3], expected [2] (one class index per row of argument #1 'input', shape [2, 3])");
    CHECK(error_message([&] { mg::nll_loss(x, labels({1, 3})); }) ==
          "nll_loss: argument #2 'target' has class 3 at index 1, expected a class in [0, 3)");
    CHECK(error_message([&] { mg::cross_entropy(x, labels({-100, -1}), {.label_smoothing = 0.1}); }) ==
          "cross_entropy: argument #2 'target' has class -1 at index 1, expected a class in [0, 3)");
    CHECK(error_message([&] { mg::nll_loss(tensor({1, 2}, {2}), labels({1})); }) ==
          "nll_loss: argument #1 'input' has shape [2], expected a matrix [rows, classes]");
    CHECK(error_message([&] { mg::cross_entropy(x, labels({0, 1}), {.label_smoothing = 1.5}); }) ==
          "cross_entropy: label_smoothing=1.5 must be in [0, 1]");
    CHECK(error_message([&] { mg::cross_entropy(x, labels({0, 1}), {.label_smoothing = std::nan("")}); }) ==
          "cross_entropy: label_smoothing=nan must be a finite number");
}

TEST_CASE("a refused loss changes nothing: no gradient is written and the inputs keep their values") {
    auto x = tensor({1, 2, 3, 4}, {2, 2}, true);
    CHECK_THROWS_AS(mg::nll_loss(x, labels({0, 5})), mg::ValueError);
    CHECK_FALSE(x.grad().defined());
    CHECK(x.to_vector() == std::vector<double>{1, 2, 3, 4});
}

// On the CPU a reduced loss's backward is one flat loop (CrossEntropyBackward::range); the GPU and
// the compiled program run it a row at a time. Both, over every reduction that takes the loop, added
// or written, for an upstream gradient that is finite, NaN and infinite, with ignored rows.
TEST_CASE("cross-entropy backward: the CPU's flat loop equals the row functor, also for a gradient that is not finite") {
    namespace k = mg::kernels;
    const std::int64_t rows = 13, cols = 3;
    auto grad = uniform_values<float>(rows * cols, 5);
    std::vector<std::int32_t> target(rows);
    for (std::int64_t r = 0; r < rows; ++r) target[static_cast<std::size_t>(r)] = r % 4 == 1 ? -100 : static_cast<std::int32_t>(r % cols);
    for (std::size_t i = 0; i < grad.size(); ++i)  // as the forward leaves it: 0 in an ignored row
        if (target[i / cols] == -100) grad[i] = 0.0f;
    const float inv_count = 0.25f;
    for (const float upstream : {2.5f, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
        for (const bool overwrite : {true, false}) {
            const auto check = [&](auto f_of) {
                std::vector<float> flat(grad.size(), 0.5f), rowwise(flat);
                mg::Cpu::launch_rows(rows, cols, f_of(flat.data()), 0);
                const auto f = f_of(rowwise.data());
                for (std::int64_t r = 0; r < rows; ++r) f(r);
                for (std::size_t i = 0; i < flat.size(); ++i) {
                    CAPTURE(i);
                    const bool ignored = target[i / cols] == -100;
                    if (ignored) {
                        CHECK(flat[i] == (overwrite ? 0.0f : 0.5f));  // 0, whatever the upstream gradient
                    } else if (std::isnan(rowwise[i])) {
                        CHECK(std::isnan(flat[i]));
                    } else {
                        // the same infinity, or within an FMA's one rounding
                        CHECK((flat[i] == rowwise[i] || flat[i] == doctest::Approx(rowwise[i]).epsilon(1e-6)));
                    }
                }
            };
            CAPTURE(upstream);
            CAPTURE(overwrite);
            check([&](float* out) {
                return k::CrossEntropyBackward<float, std::int32_t, mg::Reduction::Sum>{grad.data(), target.data(), &upstream, out, cols,
                                                                                       nullptr, overwrite, -100};
            });
            check([&](float* out) {
                return k::CrossEntropyBackward<float, std::int32_t, mg::Reduction::Mean>{grad.data(), target.data(), &upstream, out, cols,
                                                                                        &inv_count, overwrite, -100};
            });
        }
    }
}
