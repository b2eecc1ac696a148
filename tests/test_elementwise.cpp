// The elementwise ops (ops/elementwise.hpp, ops/unary.hpp): forward values worked out by hand,
// gradients against central differences in double over every broadcasting pattern, PyTorch's
// gradients at the kinks, and the errors.
#include <cmath>
#include <string>
#include <vector>

#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_elementwise {

using T2 = mg::Tensor<mg::Cpu, double>;

static std::vector<double> values(const T2& t) { return t.to_vector(); }

TEST_CASE("binary ops: values with a broadcast row, an outer broadcast and a scalar-shaped tensor") {
    auto a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    auto row = tensor({10, 20, 40}, {3});
    CHECK(values(mg::add(a, row)) == std::vector<double>{11, 22, 43, 14, 25, 46});
    CHECK(values(a - row) == std::vector<double>{-9, -18, -37, -6, -15, -34});
    CHECK(values(row - a) == std::vector<double>{9, 18, 37, 6, 15, 34});
    CHECK(values(a * row) == std::vector<double>{10, 40, 120, 40, 100, 240});
    CHECK(values(a / row) == std::vector<double>{0.1, 0.1, 0.075, 0.4, 0.25, 0.15});
    CHECK(values(row / a) == std::vector<double>{10, 10, 40.0 / 3, 2.5, 4, 40.0 / 6});

    // [3, 1] * [1, 4] is the outer product, shape [3, 4]
    auto col = tensor({1, 2, 3}, {3, 1}), line = tensor({1, 10, 100, 1000}, {1, 4});
    auto outer = col * line;
    CHECK(outer.shape() == mg::Shape{3, 4});
    CHECK(values(outer) == std::vector<double>{1, 10, 100, 1000, 2, 20, 200, 2000, 3, 30, 300, 3000});

    // [2, 1, 2] + [3, 1]: right-aligned, the result is [2, 3, 2]
    auto cube = tensor({1, 2, 3, 4}, {2, 1, 2}), tall = tensor({10, 20, 30}, {3, 1});
    auto sum = cube + tall;
    CHECK(sum.shape() == mg::Shape{2, 3, 2});
    CHECK(values(sum) == std::vector<double>{11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34});

    // a one-element tensor stretches over everything; a [1, 1] one adds a leading dim
    CHECK(values(a * tensor({2}, {1})) == std::vector<double>{2, 4, 6, 8, 10, 12});
    CHECK((a - tensor({1}, {1, 1, 1})).shape() == mg::Shape{1, 2, 3});
}

TEST_CASE("tensor-scalar forms: both orders, converted to the tensor's element type") {
    auto x = tensor({1, 2, 4}, {3});
    CHECK(values(x * 2.0) == std::vector<double>{2, 4, 8});
    CHECK(values(2.0 * x) == std::vector<double>{2, 4, 8});
    CHECK(values(x + 1.0) == std::vector<double>{2, 3, 5});
    CHECK(values(1.0 + x) == std::vector<double>{2, 3, 5});
    CHECK(values(x - 1.0) == std::vector<double>{0, 1, 3});
    CHECK(values(1.0 - x) == std::vector<double>{0, -1, -3});
    CHECK(values(x / 4.0) == std::vector<double>{0.25, 0.5, 1});
    CHECK(values(4.0 / x) == std::vector<double>{4, 2, 1});
    CHECK(values(mg::mul(x, 3)) == std::vector<double>{3, 6, 12});  // an int, converted
    auto f = mg::Tensor<mg::Cpu, float>::from({1.0f, 2.0f});
    CHECK((1.0f - f).to_vector() == std::vector<float>{0.0f, -1.0f});
    CHECK((f * 2).to_vector() == std::vector<float>{2.0f, 4.0f});
    // integer tensors add, subtract and multiply as integers
    auto n = mg::Tensor<mg::Cpu, std::int32_t>::from({1, -2, 3});
    CHECK((n * n - 1).to_vector() == std::vector<std::int32_t>{0, 3, 8});
}

// sum(y * w) with fixed weights of y's shape in [0.5, 1.5): a scalar that depends on every element
// of y with a different weight, so a gradient sent to the wrong element shows.
static T2 weighted_sum(const T2& y) {
    mg::Generator gen(99);
    return mg::sum(y * T2::uniform(y.shape(), 0.5, 1.5, gen));
}

struct Pair {
    mg::Shape a, b;
};

TEST_CASE("binary ops: gradients of both inputs against central differences, every broadcasting pattern") {
    const std::vector<Pair> pairs{
        {{3, 4}, {3, 4}},        // same shape
        {{3, 4}, {4}},           // a row (the backend's column sum)
        {{4}, {3, 4}},           // ...on the left
        {{3, 4}, {1, 4}},        // a [1, n] row
        {{2, 3, 4}, {3, 4}},     // a trailing matrix
        {{3, 1}, {1, 4}},        // both stretched
        {{2, 3, 4}, {3, 1}},     // a column
        {{2, 1, 3, 4}, {3, 1}},  // four dims
        {{3, 4}, {1}},           // a one-element tensor (the backend's sum)
        {{1}, {3, 4}},
        {{2, 1, 4}, {1, 3, 1}},  // middle and outer dims stretched
    };
    std::uint64_t seed = 100;
    for (const auto& [sa, sb] : pairs) {
        const std::string shapes = fmt::format("{} and {}", sa, sb);
        CAPTURE(shapes);
        auto a = random_tensor(sa, seed++), b = random_tensor(sb, seed++);
        auto positive = random_tensor(sb, seed++, 0.5, 2.0);  // a divisor away from 0
        check_gradients([&] { return weighted_sum(a + b); }, {a, b});
        check_gradients([&] { return weighted_sum(a - b); }, {a, b});
        check_gradients([&] { return weighted_sum(a * b); }, {a, b});
        check_gradients([&] { return weighted_sum(a / positive); }, {a, positive});
    }
}

TEST_CASE("binary ops: gradient of one input only, and of one tensor on both sides") {
    auto a = random_tensor({3, 4}, 1);
    auto b = tensor({0.5, 1.5, -2, 3}, {4});  // needs no gradient
    check_gradients([&] { return weighted_sum(a * b); }, {a});
    CHECK_FALSE(b.impl().grad);
    auto x = tensor({1, -2, 3}, {3}, true);
    mg::sum(x * x).backward();
    CHECK(values(x.grad()) == std::vector<double>{2, -4, 6});
    check_gradients([&] { return weighted_sum(x / (x * x + 1.0) - x); }, {x});
}

TEST_CASE("binary ops: an empty result gives a stretched input a zero gradient") {
    auto rows = T2::empty(mg::Shape{0, 4});
    auto row = tensor({1, 2, 3, 4}, {4}, true), one = tensor({5}, {1}, true), column = tensor({1, 2}, {2, 1, 1}, true);
    auto product = rows * row;
    CHECK(product.shape() == mg::Shape{0, 4});
    (mg::sum(product) + mg::sum(rows + one) + mg::sum(rows - column)).backward();
    CHECK(values(row.grad()) == std::vector<double>(4, 0.0));
    CHECK(values(one.grad()) == std::vector<double>{0});
    CHECK(values(column.grad()) == std::vector<double>{0, 0});
}

TEST_CASE("tensor-scalar forms: gradients") {
    auto x = random_tensor({2, 3}, 7, 0.5, 2.0);
    check_gradients([&] { return weighted_sum(x * 2.5); }, {x});
    check_gradients([&] { return weighted_sum(2.5 * x); }, {x});
    check_gradients([&] { return weighted_sum(x + 1.0); }, {x});
    check_gradients([&] { return weighted_sum(1.0 + x); }, {x});
    check_gradients([&] { return weighted_sum(x - 1.0); }, {x});
    check_gradients([&] { return weighted_sum(1.0 - x); }, {x});
    check_gradients([&] { return weighted_sum(x / 3.0); }, {x});
    check_gradients([&] { return weighted_sum(3.0 / x); }, {x});
}

TEST_CASE("unary ops: values") {
    const std::vector<double> v{-2, -0.5, 0, 0.5, 2};
    auto x = tensor(v, {5});
    const auto each = [&](double (*f)(double)) {
        std::vector<double> out;
        for (double e : v) out.push_back(f(e));
        return out;
    };
    CHECK(values(mg::neg(x)) == std::vector<double>{2, 0.5, 0, -0.5, -2});
    CHECK(values(-x) == std::vector<double>{2, 0.5, 0, -0.5, -2});
    CHECK(values(mg::abs(x)) == std::vector<double>{2, 0.5, 0, 0.5, 2});
    CHECK(values(mg::relu(x)) == std::vector<double>{0, 0, 0, 0.5, 2});
    CHECK(values(mg::clamp(x, -1, 1)) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
    CHECK(values(mg::clamp(x, 1, -1)) == std::vector<double>(5, -1.0));  // lo > hi: hi, as PyTorch
    CHECK(values(mg::exp(x)) == each([](double e) { return std::exp(e); }));
    CHECK(values(mg::tanh(x)) == each([](double e) { return std::tanh(e); }));
    CHECK(values(mg::sin(x)) == each([](double e) { return std::sin(e); }));
    CHECK(values(mg::cos(x)) == each([](double e) { return std::cos(e); }));
    CHECK(values(mg::pow(x, 2)) == std::vector<double>{4, 0.25, 0, 0.25, 4});
    CHECK(values(mg::pow(x, 3)) == std::vector<double>{-8, -0.125, 0, 0.125, 8});
    auto p = tensor({0.25, 1, 4}, {3});
    CHECK(values(mg::sqrt(p)) == std::vector<double>{0.5, 1, 2});
    CHECK(values(mg::pow(p, -0.5)) == std::vector<double>{2, 1, 0.5});
    CHECK(values(mg::log(p)) == std::vector<double>{std::log(0.25), 0, std::log(4.0)});
    auto s = values(mg::sigmoid(x));
    CHECK(s[2] == 0.5);
    CHECK(s[4] == doctest::Approx(1 / (1 + std::exp(-2.0))));
    CHECK(s[0] + s[4] == doctest::Approx(1));  // sigmoid(-x) = 1 - sigmoid(x)
    CHECK(mg::sigmoid(tensor({-1000, 1000}, {2})).to_vector() == std::vector<double>{0, 1});  // no NaN at the ends
    // gelu, tanh form: PyTorch's gelu(1.0, approximate='tanh') is 0.841192, (-0.5) -0.154286, (2) 1.954598
    auto g = values(mg::gelu(tensor({1, -0.5, 2, 0}, {4}), "tanh"));
    CHECK(g[0] == doctest::Approx(0.8411919906082768).epsilon(1e-12));
    CHECK(g[1] == doctest::Approx(-0.15428599017485606).epsilon(1e-12));
    CHECK(g[2] == doctest::Approx(1.954597694087775).epsilon(1e-12));
    CHECK(g[3] == 0);
    // float: the same arithmetic in the tensor's type
    auto xf = mg::Tensor<mg::Cpu, float>::from({-0.5f, 2.0f});
    CHECK(mg::exp(xf).to_vector()[1] == doctest::Approx(std::exp(2.0)).epsilon(1e-6));
    CHECK(mg::gelu(xf, "tanh").to_vector()[0] == doctest::Approx(-0.15428599017485606).epsilon(1e-6));
    // gelu, exact (erf) form, PyTorch's default: torch.nn.functional.gelu in float64
    auto exact = values(mg::gelu(tensor({1, -0.5, 2, 0}, {4})));
    CHECK(exact[0] == doctest::Approx(0.841344746068543).epsilon(1e-12));
    CHECK(exact[1] == doctest::Approx(-0.15426876936299344).epsilon(1e-12));
    CHECK(exact[2] == doctest::Approx(1.9544997361036416).epsilon(1e-12));
    CHECK(exact[3] == 0);
    CHECK(mg::gelu(xf).to_vector()[0] == doctest::Approx(-0.15426876936299344).epsilon(1e-6));
    CHECK(error_message([&] { mg::gelu(xf, "erf"); }) == "gelu: approximate='erf' is not one of 'none' (the exact erf form) and 'tanh'");
    CHECK(mg::abs(mg::Tensor<mg::Cpu, std::int32_t>::from({-3, 4})).to_vector() == std::vector<std::int32_t>{3, 4});
}

TEST_CASE("unary ops: gradients against central differences, away from the kinks") {
    auto x = tensor({-1.7, -0.6, -0.2, 0.3, 0.8, 1.9}, {2, 3}, true);
    auto positive = tensor({0.3, 0.7, 1.1, 1.6, 2.4, 3.5}, {2, 3}, true);
    SUBCASE("neg") { check_gradients([&] { return weighted_sum(-x); }, {x}); }
    SUBCASE("exp") { check_gradients([&] { return weighted_sum(mg::exp(x)); }, {x}); }
    SUBCASE("log") { check_gradients([&] { return weighted_sum(mg::log(positive)); }, {positive}); }
    SUBCASE("sqrt") { check_gradients([&] { return weighted_sum(mg::sqrt(positive)); }, {positive}); }
    SUBCASE("pow") {
        check_gradients([&] { return weighted_sum(mg::pow(x, 3)); }, {x});
        check_gradients([&] { return weighted_sum(mg::pow(positive, -1.5)); }, {positive});
        check_gradients([&] { return weighted_sum(mg::pow(positive, 0.5)); }, {positive});
    }
    SUBCASE("abs") { check_gradients([&] { return weighted_sum(mg::abs(x)); }, {x}); }
    SUBCASE("clamp") { check_gradients([&] { return weighted_sum(mg::clamp(x, -1, 1)); }, {x}); }
    SUBCASE("tanh") { check_gradients([&] { return weighted_sum(mg::tanh(x)); }, {x}); }
    SUBCASE("sin") { check_gradients([&] { return weighted_sum(mg::sin(x)); }, {x}); }
    SUBCASE("cos") { check_gradients([&] { return weighted_sum(mg::cos(x)); }, {x}); }
    SUBCASE("sigmoid") { check_gradients([&] { return weighted_sum(mg::sigmoid(x)); }, {x}); }
    SUBCASE("relu") { check_gradients([&] { return weighted_sum(mg::relu(x)); }, {x}); }
    SUBCASE("gelu") {
        check_gradients([&] { return weighted_sum(mg::gelu(x)); }, {x});
        check_gradients([&] { return weighted_sum(mg::gelu(x, "tanh")); }, {x});
        auto wide = tensor({-4, -2.5, 3, 5}, {4}, true);  // the tails, where tanh saturates
        check_gradients([&] { return weighted_sum(mg::gelu(wide)); }, {wide});
    }
    SUBCASE("a chain: sigmoid(x) * tanh(x) + log(1 + exp(x))") {
        check_gradients([&] { return weighted_sum(mg::sigmoid(x) * mg::tanh(x) + mg::log(1.0 + mg::exp(x))); }, {x});
    }
}

TEST_CASE("unary ops: PyTorch's gradients at the kinks") {
    auto x = tensor({-1, 0, 1, 2, 3}, {5}, true);
    mg::sum(mg::abs(x)).backward();
    CHECK(values(x.grad()) == std::vector<double>{-1, 0, 1, 1, 1});  // abs'(0) = 0
    x.impl().grad_is_zero = true;
    mg::sum(mg::relu(x)).backward();
    CHECK(values(x.grad()) == std::vector<double>{0, 0, 1, 1, 1});  // relu'(0) = 0
    x.impl().grad_is_zero = true;
    mg::sum(mg::clamp(x, 0, 2)).backward();
    CHECK(values(x.grad()) == std::vector<double>{0, 1, 1, 1, 0});  // passes where lo <= x <= hi, bounds included
    x.impl().grad_is_zero = true;
    mg::sum(mg::pow(x, 0)).backward();
    CHECK(values(x.grad()) == std::vector<double>(5, 0.0));  // a zero exponent: zero, not NaN at 0
}

TEST_CASE("elementwise errors: a shape that does not broadcast names the op, both arguments and shapes, and changes nothing") {
    auto a = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4}, true);
    auto b = tensor({1, 2, 3}, {3}, true);
    auto column = tensor({1, 2}, {2, 1}), pair = tensor({1, 2}, {2});
    mg::reset_counters();
    CHECK(error_message([&] { mg::add(a, b); }) ==
          "add: argument #2 'other' has shape [3], which does not broadcast with argument #1 'input' of shape [3, 4] "
          "(dimension 1: 3 vs 4; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { (void)(a * column); }) ==
          "mul: argument #2 'other' has shape [2, 1], which does not broadcast with argument #1 'input' of shape [3, 4] "
          "(dimension 0: 2 vs 3; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { mg::sub(pair, a); }) ==
          "sub: argument #2 'other' has shape [3, 4], which does not broadcast with argument #1 'input' of shape [2] "
          "(dimension 1: 4 vs 2; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { mg::div(T2(), a); }) ==
          "div: argument #1 'input' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { (void)(1.0 - T2()); }) ==
          "sub: argument #2 'other' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::gelu(T2()); }) == "gelu: argument #1 'input' is an undefined tensor (default-constructed, or an absent grad)");
    // nothing ran, nothing was recorded, the inputs are as they were
    CHECK(mg::counters().kernel_launches == 0);
    CHECK(mg::counters().storage_allocs == 0);
    CHECK_FALSE(a.impl().grad);
    CHECK(values(a) == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
}

TEST_CASE("an input a gradient rule reads may not change in place before backward; one it does not read may") {
    auto a = tensor({1, 2}, {2}, true), b = tensor({3, 4}, {2}, true);
    auto product = mg::sum(a * b);
    mg::detail::mark_modified(b.impl());  // what an optimizer step does
    CHECK(error_message([&] { product.backward(); }) ==
          "backward: argument #2 of mul (shape [2]) was modified in place after the forward pass that used it "
          "(by an optimizer step or a load); compute the result again from the new values");
    auto total = mg::sum(a + b);
    mg::detail::mark_modified(b.impl());
    total.backward();  // add's rule reads neither input
    CHECK(values(b.grad()) == std::vector<double>{1, 1});
    a.impl().grad_is_zero = true;
    auto scaled = mg::sum(a * 2.0);
    mg::detail::mark_modified(a.impl());
    scaled.backward();  // d(2a)/da does not read a
    CHECK(values(a.grad()) == std::vector<double>{2, 2});
    auto root = mg::sum(mg::sqrt(a));
    auto logs = mg::sum(mg::log(a));
    mg::detail::mark_modified(a.impl());
    root.backward();  // sqrt's rule reads its output, not a
    CHECK(error_message([&] { logs.backward(); }).find("argument #1 of log") != std::string::npos);
}

}  // namespace test_elementwise
