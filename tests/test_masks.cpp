// Masks, indexing and reductions for sequence models (ops/mask.hpp, ops/extrema.hpp, gather and
// embedding's padding_idx in ops/index.hpp, var/std in ops/reduce.hpp, exact gelu in ops/unary.hpp,
// cross_entropy over (N, C, d...) and with class weights): PyTorch's values and
// gradients (tests/data/seq_goldens.safetensors, from tools/make_seq_goldens.py) in double and
// float, gradients against central differences, bool tensors, and every error message.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "goldens.hpp"
#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_masks {

using T2 = mg::Tensor<mg::Cpu, double>;
using Mask = mg::Tensor<mg::Cpu, bool>;
using Index = mg::Tensor<mg::Cpu, std::int64_t>;

static const mg::io::SafetensorsFile& goldens() { return golden_file("seq_goldens.safetensors"); }

template <class T>
using Tn = mg::Tensor<mg::Cpu, T>;

// The stored mask (int64 0/1) as a bool tensor.
template <class T>
Mask mask_of(const Goldens<T>& g, const std::string& name) {
    return mg::cast<bool>(g.template get_as<std::int64_t>(name));
}

template <class T>
Tn<T> compare(const std::string& fn, const Tn<T>& x, const Tn<T>& other) {
    const auto as_numbers = [](const Mask& m) { return mg::cast<T>(m); };
    if (fn == "eq") return as_numbers(x == other);
    if (fn == "ne") return as_numbers(x != other);
    if (fn == "lt") return as_numbers(x < other);
    if (fn == "le") return as_numbers(x <= other);
    if (fn == "gt") return as_numbers(x > other);
    return as_numbers(x >= other);
}
template <class T>
Tn<T> compare(const std::string& fn, const Tn<T>& x, T number) {
    const auto as_numbers = [](const Mask& m) { return mg::cast<T>(m); };
    if (fn == "eq") return as_numbers(mg::eq(x, number));
    if (fn == "ne") return as_numbers(mg::ne(x, number));
    if (fn == "lt") return as_numbers(x < number);
    if (fn == "le") return as_numbers(x <= number);
    if (fn == "gt") return as_numbers(x > number);
    return as_numbers(x >= number);
}

// Runs every case of the golden file in T: the value (and indices), then the gradients from the stored dy.
template <class T>
void seq_goldens() {
    const Goldens<T> g{goldens()};
    int seen = 0;
    for (const auto& c : golden_cases(goldens())) {
        const std::string name = c.at("name"), op = c.at("op");
        if (op == "sdpa" || op == "mha" || op == "param_groups" || op == "schedule" || op == "onecycle_momentum" || op == "rnn") {
            continue;  // test_attention.cpp, test_schedules.cpp
        }
        CAPTURE(name);
        ++seen;
        Tn<T> y;
        Index indices;
        std::vector<std::pair<std::string, Tn<T>>> leaves;
        const auto leaf = [&](const std::string& key) {
            auto t = g.get(name + "." + key, true);
            leaves.emplace_back(key, t);
            return t;
        };
        if (op == "compare") {
            y = compare<T>(c.at("fn"), g.get(name + ".x"), g.get(name + ".other"));
        } else if (op == "compare_number") {
            y = compare<T>(c.at("fn"), g.get(name + ".x"), static_cast<T>(c.at("number").template get<double>()));
        } else if (op == "logical") {
            const auto a = mask_of(g, name + ".a");
            const std::string fn = c.at("fn");
            const Mask m = fn == "logical_not" ? ~a : fn == "logical_and" ? (a & mask_of(g, name + ".b")) : (a | mask_of(g, name + ".b"));
            y = mg::cast<T>(m);
        } else if (op == "where") {
            y = mg::where(mask_of(g, name + ".cond"), leaf("a"), leaf("b"));
        } else if (op == "masked_fill") {
            y = mg::masked_fill(leaf("x"), mask_of(g, name + ".mask"), static_cast<T>(c.at("value").template get<double>()));
        } else if (op == "tril" || op == "triu") {
            y = op == "tril" ? mg::tril(leaf("x"), c.at("diagonal")) : mg::triu(leaf("x"), c.at("diagonal"));
        } else if (op == "gather") {
            y = mg::gather(leaf("x"), c.at("dim"), g.template get_as<std::int64_t>(name + ".index"));
        } else if (op == "max_dim" || op == "min_dim") {
            auto r = op == "max_dim" ? mg::max(leaf("x"), c.at("dim"), c.at("keepdim")) : mg::min(leaf("x"), c.at("dim"), c.at("keepdim"));
            y = r.values;
            indices = r.indices;
        } else if (op == "max_all" || op == "min_all") {
            y = op == "max_all" ? mg::max(leaf("x")) : mg::min(leaf("x"));
        } else if (op == "argmax" || op == "argmin") {
            const auto x = g.get(name + ".x");
            const bool largest = op == "argmax";
            indices = c.at("dim").is_null() ? (largest ? mg::argmax(x) : mg::argmin(x)) : (largest ? mg::argmax(x, 1) : mg::argmin(x, 1));
            g.check(indices, name + ".y");
            continue;
        } else if (op == "topk") {
            auto r = mg::topk(leaf("x"), c.at("k"), c.at("dim"), c.at("largest"));
            y = r.values;
            indices = r.indices;
        } else if (op == "var_all" || op == "std_all") {
            const bool unbiased = c.at("unbiased");
            y = op == "var_all" ? mg::var(leaf("x"), unbiased) : mg::std(leaf("x"), unbiased);
        } else if (op == "var_dim" || op == "std_dim") {
            const std::int64_t dim = c.at("dim");
            const bool unbiased = c.at("unbiased"), keepdim = c.at("keepdim");
            y = op == "var_dim" ? mg::var(leaf("x"), dim, unbiased, keepdim) : mg::std(leaf("x"), dim, unbiased, keepdim);
        } else if (op == "cross_entropy") {
            const std::string reduction = c.at("reduction");
            const mg::CrossEntropyOptions options{.label_smoothing = c.value("label_smoothing", 0.0),
                                                  .reduction = reduction == "mean" ? mg::Reduction::Mean
                                                               : reduction == "sum" ? mg::Reduction::Sum
                                                                                    : mg::Reduction::None};
            const auto target = g.template get_as<std::int64_t>(name + ".target");
            y = c.at("weighted") ? mg::cross_entropy(leaf("x"), target, g.get(name + ".weight"), options) : mg::cross_entropy(leaf("x"), target, options);
        } else if (op == "nll_loss") {
            const std::string reduction = c.at("reduction");
            const mg::NllLossOptions options{.reduction = reduction == "mean"  ? mg::Reduction::Mean
                                                          : reduction == "sum" ? mg::Reduction::Sum
                                                                               : mg::Reduction::None};
            y = mg::nll_loss(leaf("x"), g.template get_as<std::int64_t>(name + ".target"), g.get(name + ".weight"), options);
        } else if (op == "embedding") {
            mg::manual_seed(1);
            mg::nn::Embedding<mg::Cpu, T> table(5, 3, {.padding_idx = c.at("padding_idx").template get<std::int64_t>()});
            CHECK(table.weight.to_vector()[static_cast<std::size_t>(3 * table.padding_idx().value())] == 0);  // the padding row starts at zero
            y = mg::embedding(g.template get_as<std::int64_t>(name + ".index"), leaf("w"), c.at("padding_idx").template get<std::int64_t>());
        } else if (op == "gelu") {
            y = mg::gelu(leaf("x"), c.at("approximate").template get<std::string>());
        } else {
            FAIL("a case of an op this test does not know: ", op);
        }
        g.check(y, name + ".y");
        if (indices.defined()) g.check(indices, name + ".indices");
        if (leaves.empty()) continue;
        mg::sum(y * g.get(name + ".dy")).backward();
        for (auto& [key, t] : leaves) g.check(t.grad(), name + ".grad." + key);
    }
    CHECK(seen == 70);
}

TEST_CASE("masks, indexing and reductions equal PyTorch's values and gradients, in double and float") {
    SUBCASE("double") { seq_goldens<double>(); }
    SUBCASE("float") { seq_goldens<float>(); }
}

TEST_CASE("bool tensors: from and to_vector, printing, and the comparison operators") {
    const auto m = Mask::from({true, false, true}, {3});
    CHECK(m.to_vector() == std::vector<bool>{true, false, true});
    CHECK(fmt::format("{}", m) == "tensor([True, False, True], backend=Cpu, shape=[3])");
    const auto x = tensor({1, 2, 3}, {3});
    CHECK((x == 2.0).to_vector() == std::vector<bool>{false, true, false});
    CHECK((x != tensor({1, 0, 3}, {3})).to_vector() == std::vector<bool>{false, true, false});
    CHECK(mg::cast<std::int64_t>(x > 1.5).to_vector() == std::vector<std::int64_t>{0, 1, 1});
    // NaN is unequal to everything, itself included
    const auto nan = tensor({std::nan(""), 1}, {2});
    CHECK((nan == nan).to_vector() == std::vector<bool>{false, true});
    CHECK((nan != nan).to_vector() == std::vector<bool>{true, false});
    // the causal mask of a (T, T) score matrix, built from comparisons of positions
    const auto pos = T2::arange(4);
    const auto future = mg::gt(pos.reshape({1, 4}), pos.reshape({4, 1}));
    CHECK(future.to_vector() == mg::cast<bool>(mg::triu(T2::ones({4, 4}), 1)).to_vector());
}

TEST_CASE("where, masked_fill, tril/triu, gather and topk: gradients against central differences") {
    auto a = random_tensor({3, 4}, 1), b = random_tensor({4}, 2), x = random_tensor({2, 3, 4}, 3);
    const auto cond = Mask::from({true, false, false, true, true, false, true, true, false, false, true, false}, {3, 4});
    const auto row_mask = Mask::from({false, true, true, false}, {4});
    check_gradients([&] { return weighted_sum(mg::where(cond, a, b)); }, {a, b});
    check_gradients([&] { return weighted_sum(mg::where(row_mask, b, a)); }, {a, b});
    check_gradients([&] { return weighted_sum(mg::masked_fill(x, row_mask, 3.0)); }, {x});
    check_gradients([&] { return weighted_sum(mg::tril(x, 1) + mg::triu(x, -1)); }, {x});
    const auto index = Index::from({0, 2, 2, 1, 0, 0}, {1, 3, 2});  // repeats, and smaller than x in dims 0 and 2
    check_gradients([&] { return weighted_sum(mg::gather(x, 1, index)); }, {x});
    check_gradients([&] { return weighted_sum(mg::topk(x, 2, 1).values); }, {x});
    check_gradients([&] { return weighted_sum(mg::topk(x, 3, -1, false).values); }, {x});
    check_gradients([&] { return weighted_sum(mg::var(x)) + weighted_sum(mg::std(x, false)); }, {x});
}

TEST_CASE("topk: best first, equal values in index order, k of 0 and all, NaN the largest; argmax/argmin flat") {
    const auto x = tensor({1, 3, 3, 0, std::nan(""), 2}, {6});
    const auto [values, indices] = mg::topk(x, 4);
    CHECK(indices.to_vector() == std::vector<std::int64_t>{4, 1, 2, 5});
    CHECK(std::isnan(values.to_vector()[0]));
    CHECK(mg::topk(x, 2, 0, false).indices.to_vector() == std::vector<std::int64_t>{3, 0});
    CHECK(mg::topk(x, 6, 0, false).indices.to_vector() == std::vector<std::int64_t>{3, 0, 5, 1, 2, 4});  // NaN last among the smallest
    CHECK(mg::topk(x, 0).values.shape() == mg::Shape{0});
    CHECK(mg::topk(x, 6).indices.to_vector() == std::vector<std::int64_t>{4, 1, 2, 5, 0, 3});
    auto y = tensor({1, 2, 3, 4}, {2, 2}, true);
    mg::sum(mg::topk(y, 0, 1).values).backward();
    CHECK(y.grad().to_vector() == std::vector<double>{0, 0, 0, 0});
}

TEST_CASE("masks and indexing: every error names the op, the argument and both sides") {
    const auto x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(error_message([&] { mg::masked_fill(x, Mask::from({true, false}, {2}), 0.0); }) ==
          "masked_fill: argument #2 'mask' has shape [2], which does not broadcast with argument #1 'input' of shape [2, 3] "
          "(dimension 1: 2 vs 3; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { mg::masked_fill(x, Mask::from({true, false}, {2, 1, 1}), 0.0); }) ==
          "masked_fill: argument #2 'mask' of shape [2, 1, 1] broadcasts argument #1 'input' of shape [2, 3] to [2, 2, 3]; the mask must "
          "broadcast to the input's shape");
    CHECK(error_message([&] { mg::where(Mask::from({true, false}, {2}), x, x); }) ==
          "where: argument #2 'input' has shape [2, 3], which does not broadcast with argument #1 'condition' of shape [2] "
          "(dimension 1: 3 vs 2; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { mg::where(Mask::from({true, false}, {2, 1}), x, tensor({1, 2}, {2})); }) ==
          "where: argument #3 'other' has shape [2], which does not broadcast with argument #2 'input' of shape [2, 3] "
          "(dimension 1: 2 vs 3; sizes must be equal or one of them 1)");
    CHECK(error_message([&] { mg::where(Mask(), x, x); }) ==
          "where: argument #1 'condition' is an undefined tensor (default-constructed, or an absent grad)");
    CHECK(error_message([&] { mg::tril(tensor({1, 2}, {2})); }) == "tril: argument #1 'input' has shape [2], expected at least 2 dimensions [..., rows, cols]");
    CHECK(error_message([&] { mg::gather(x, 1, Index::from({0, 3}, {1, 2})); }) ==
          "gather: argument #3 'index' has index 3 at position 1, expected an index in [0, 3)");
    CHECK(error_message([&] { mg::gather(x, 1, Index::from({0, 1}, {2})); }) ==
          "gather: argument #3 'index' has shape [2], expected as many dims as argument #1 'input' of shape [2, 3]");
    CHECK(error_message([&] { mg::gather(x, 1, Index::from({0, 1, 0}, {3, 1})); }) ==
          "gather: argument #3 'index' has shape [3, 1], larger than argument #1 'input' of shape [2, 3] in dim 0 (3 > 2); only dim 1 may be larger");
    CHECK(error_message([&] { mg::gather(x, 2, Index::from({0}, {1, 1})); }).starts_with("gather: argument #2 'dim' is 2, out of range"));
    CHECK(error_message([&] { mg::topk(x, 4, 1); }) ==
          "topk: argument #2 'k' is 4, out of range for dim 1 of size 3 (input shape [2, 3]); expected 0 <= k <= 3");
    CHECK(error_message([&] { mg::max(T2::empty(mg::Shape{0})); }) ==
          "max: argument #1 'input' has shape [0], which holds no elements: there is no value to take");
    const auto logits = T2::zeros({2, 3, 4}), weight = T2::ones({3});
    CHECK(error_message([&] { mg::cross_entropy(logits, Index::zeros({2, 3})); }) ==
          "cross_entropy: argument #2 'target' has shape [2, 3], expected [2, 4] (argument #1 'input' of shape [2, 3, 4] without its class dim 1)");
    CHECK(error_message([&] { mg::cross_entropy(logits, Index::zeros({2, 4}), T2::ones({4})); }) ==
          "cross_entropy: argument #3 'weight' has shape [4], expected [3] (one weight per class of argument #1 'input', shape [2, 3, 4])");
    CHECK(error_message([&] { mg::cross_entropy(logits, Index::zeros({2, 4}), weight, {.label_smoothing = 1.5}); }) ==
          "cross_entropy: label_smoothing=1.5 must be in [0, 1]");
    // uint8 labels cannot hold ignore_index -100: none is ignored (156, what -100 wraps to, is a class)
    const auto wide = T2::zeros({2, 200});
    CHECK(mg::cross_entropy(wide, mg::Tensor<mg::Cpu, std::uint8_t>::from(std::vector<std::uint8_t>{156, 0}), T2::ones({200}),
                            {.reduction = mg::Reduction::Sum})
              .item() == doctest::Approx(2 * std::log(200.0)));
    CHECK(error_message([&] { mg::nll_loss(T2::zeros({2, 3}), Index::zeros({2}), T2::ones({2})); }) ==
          "nll_loss: argument #3 'weight' has shape [2], expected [3] (one weight per class of argument #1 'input', shape [2, 3])");
    CHECK(error_message([] { mg::nn::Embedding<mg::Cpu>(4, 2, {.padding_idx = 4}); }) ==
          "Embedding: padding_idx=4 is out of range for 4 embeddings (expected -4 <= padding_idx < 4)");
    CHECK(error_message([&] { mg::embedding(Index::zeros({2}), T2::zeros({3, 2}), -4); }) ==
          "embedding: padding_idx=-4 is out of range for 3 embeddings (expected -3 <= padding_idx < 3)");
    CHECK(error_message([&] { mg::var(T2::empty(mg::Shape{2, 0}), 1); }) ==
          "var: argument #1 'input' has shape [2, 0], which holds no elements to take the variance of");
}

TEST_CASE("multinomial: frequencies follow the weights, never a zero weight, distinct draws without replacement, seeded") {
    using F = mg::Tensor<mg::Cpu, float>;
    mg::Generator gen(7);
    const auto probs = F::from({0.1f, 0.0f, 0.2f, 0.7f});  // weights need not sum to 1: scaled below
    const auto draws = mg::multinomial(probs * 3.0f, 20000, true, gen).to_vector();
    REQUIRE(draws.size() == 20000);
    std::vector<double> seen(4);
    for (auto d : draws) seen[static_cast<std::size_t>(d)] += 1.0 / 20000;
    CHECK(seen[1] == 0);
    CHECK(std::abs(seen[0] - 0.1) < 0.01);
    CHECK(std::abs(seen[2] - 0.2) < 0.01);
    CHECK(std::abs(seen[3] - 0.7) < 0.01);

    // without replacement, as many draws as non-zero weights: each of them once
    const auto rows = F::from({0.5f, 0.25f, 0.0f, 0.25f, 1.0f, 1.0f, 1.0f, 0.0f}, {2, 4});
    const auto picked = mg::multinomial(rows, 3, false, gen);
    CHECK(picked.shape() == mg::Shape{2, 3});
    auto values = picked.to_vector();
    std::sort(values.begin(), values.begin() + 3);
    std::sort(values.begin() + 3, values.end());
    CHECK(values == std::vector<std::int64_t>{0, 1, 3, 0, 1, 2});

    // the same seed draws the same indices; another seed others
    mg::Generator a(3), b(3), c(4);
    const auto uniform = F::ones({50});
    const auto first = mg::multinomial(uniform, 20, true, a).to_vector();
    CHECK(first == mg::multinomial(uniform, 20, true, b).to_vector());
    CHECK(first != mg::multinomial(uniform, 20, true, c).to_vector());

    CHECK(error_message([&] { mg::multinomial(F::from({0.5f, -0.1f}), 1); }) ==
          "multinomial: probs[0][1] is -0.10000000149011612; every weight must be finite and non-negative");
    CHECK(error_message([&] { mg::multinomial(F::from({0.5f, std::nanf("")}), 1); }) ==
          "multinomial: probs[0][1] is nan; every weight must be finite and non-negative");
    CHECK(error_message([&] { mg::multinomial(F::zeros({2, 3}), 1); }) == "multinomial: row 0 of probs sums to 0: nothing to draw");
    CHECK(error_message([&] { mg::multinomial(F::from({1.0f, 0.0f, 1.0f}), 3); }) ==
          "multinomial: row 0 has 2 non-zero weights, fewer than num_samples=3 drawn without replacement");
    CHECK(error_message([&] { mg::multinomial(F::ones({3}), 4); }) ==
          "multinomial: cannot draw num_samples=4 distinct categories from 3 without replacement");
    CHECK(error_message([&] { mg::multinomial(F::ones({3}), 0); }) == "multinomial: argument #2 'num_samples' is 0; expected a positive number");
    CHECK(error_message([&] { mg::multinomial(F::ones({2, 2, 2}), 1); }) ==
          "multinomial: argument #1 'probs' has shape [2, 2, 2]; expected 1 or 2 dims, (C) or (N, C)");
}

TEST_CASE("erf_float and exp_float, the host's vectorising forms in the float GELU, against the C library") {
    double erf_worst = 0, exp_worst = 0;
    for (int i = -200000; i <= 200000; ++i) {
        const float z = static_cast<float>(i) * 3e-5f;  // [-6, 6]
        erf_worst = std::max(erf_worst, std::abs(static_cast<double>(mg::kernels::erf_float(z)) - std::erf(static_cast<double>(z))));
    }
    for (int i = -870000; i <= 880000; ++i) {
        const float x = static_cast<float>(i) * 1e-4f;  // [-87, 88]
        const double want = std::exp(static_cast<double>(x));
        exp_worst = std::max(exp_worst, std::abs(static_cast<double>(mg::kernels::exp_float(x)) - want) / want);
    }
    CHECK(erf_worst < 4e-7);
    CHECK(exp_worst < 2.5e-7);  // exp_float is backend/kernels.hpp's, also the softmaxes'
    CHECK(mg::kernels::erf_float(0.0f) == 0.0f);
    CHECK(mg::kernels::erf_float(10.0f) == 1.0f);
    CHECK(mg::kernels::erf_float(-10.0f) == -1.0f);
    CHECK(mg::kernels::exp_float(0.0f) == 1.0f);
    CHECK(mg::kernels::exp_float(-1000.0f) > 0.0f);  // clamped at -87: tiny, not a denormal's garbage
    MESSAGE("erf_float: largest error ", erf_worst, "; exp_float: largest relative error ", exp_worst);
}

TEST_CASE("tanh_float, sigmoid_float and expm1_float, the LSTM cell's vectorising forms, against the exact values") {
    namespace k = mg::kernels;
    const auto rel = [](double got, double want) { return want == 0 ? std::abs(got) : std::abs(got - want) / std::abs(want); };
    double tanh_worst = 0, sigmoid_worst = 0, expm1_worst = 0;
    for (int i = -2000000; i <= 2000000; ++i) {
        const float x = static_cast<float>(i) * 1e-5f;  // [-20, 20]
        tanh_worst = std::max(tanh_worst, rel(k::tanh_float(x), std::tanh(static_cast<double>(x))));
    }
    for (int i = 0; i < 300; ++i) {  // +-1e-30 to +-1e0: small arguments keep their digits
        for (const float sign : {1.0f, -1.0f}) {
            const float x = sign * std::pow(10.0f, -30.0f + static_cast<float>(i) * 0.1f);
            tanh_worst = std::max(tanh_worst, rel(k::tanh_float(x), std::tanh(static_cast<double>(x))));
            expm1_worst = std::max(expm1_worst, rel(k::expm1_float(x), std::expm1(static_cast<double>(x))));
        }
    }
    for (int i = -870000; i <= 870000; ++i) {
        const float x = static_cast<float>(i) * 1e-4f;  // [-87, 87]
        sigmoid_worst = std::max(sigmoid_worst, rel(k::sigmoid_float(x), 1.0 / (1.0 + std::exp(-static_cast<double>(x)))));
        expm1_worst = std::max(expm1_worst, rel(k::expm1_float(x), std::expm1(static_cast<double>(x))));
    }
    const double three_ulp = 3.0 * std::ldexp(1.0, -24);  // measured: 2.8, 2.5 and 1.9 (x 2^-24)
    CHECK(tanh_worst < three_ulp);
    CHECK(sigmoid_worst < three_ulp);
    CHECK(expm1_worst < three_ulp);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    CHECK(k::tanh_float(inf) == 1.0f);
    CHECK(k::tanh_float(-inf) == -1.0f);
    CHECK(k::sigmoid_float(inf) == 1.0f);
    CHECK(k::sigmoid_float(-inf) >= 0.0f);
    CHECK(k::sigmoid_float(-inf) < 1e-37f);
    CHECK(std::isnan(k::tanh_float(nan)));
    CHECK(std::isnan(k::sigmoid_float(nan)));
    CHECK(k::tanh_float(0.0f) == 0.0f);
    CHECK(k::sigmoid_float(0.0f) == 0.5f);
    MESSAGE("relative errors x 2^24: tanh ", tanh_worst * 0x1p24, ", sigmoid ", sigmoid_worst * 0x1p24, ", expm1 ", expm1_worst * 0x1p24);
}

}  // namespace test_masks
