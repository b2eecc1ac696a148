// Reductions along a dim (ops/reduce.hpp) and softmax / log_softmax along a dim
// (ops/softmax.hpp): values worked out by hand, keepdim both ways, negative dims, gradients
// against central differences in double, and the errors.
#include <cmath>
#include <string>
#include <vector>

#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_reduce_dim {

using T2 = mg::Tensor<mg::Cpu, double>;

TEST_CASE("sum and mean along a dim: values, keepdim, negative dims") {
    // [[1, 2, 3], [4, 5, 6]]
    const auto x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(mg::sum(x, 0).shape() == mg::Shape{3});
    CHECK(mg::sum(x, 0).to_vector() == std::vector<double>{5, 7, 9});
    CHECK(mg::sum(x, 1).to_vector() == std::vector<double>{6, 15});
    CHECK(mg::sum(x, -1).to_vector() == std::vector<double>{6, 15});
    CHECK(mg::sum(x, 1, true).shape() == mg::Shape{2, 1});
    CHECK(mg::sum(x, -2, true).shape() == mg::Shape{1, 3});
    CHECK(mg::mean(x, 1).to_vector() == std::vector<double>{2, 5});
    CHECK(mg::mean(x, 0, true).to_vector() == std::vector<double>{2.5, 3.5, 4.5});
    CHECK(mg::mean(x, 0, true).shape() == mg::Shape{1, 3});
    // a middle dim of a 3-D tensor: (2, 2, 2) = [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    const auto c = tensor({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2});
    CHECK(mg::sum(c, 1).to_vector() == std::vector<double>{2, 4, 10, 12});
    CHECK(mg::sum(c, 1).shape() == mg::Shape{2, 2});
    // an empty dim sums to zero, as in PyTorch
    CHECK(mg::sum(T2::zeros({2, 0}), 1).to_vector() == std::vector<double>{0, 0});
}

TEST_CASE("max, min, argmax and argmin along a dim and whole: values, the first extreme, keepdim, NaN") {
    // [[3, 1, 3], [0, 5, 2]]
    const auto x = tensor({3, 1, 3, 0, 5, 2}, {2, 3});
    CHECK(mg::max(x, 1).values.to_vector() == std::vector<double>{3, 5});
    CHECK(mg::max(x, 1).indices.to_vector() == std::vector<std::int64_t>{0, 1});
    const auto [values, indices] = mg::max(x, 0);
    CHECK(values.to_vector() == std::vector<double>{3, 5, 3});
    CHECK(indices.to_vector() == std::vector<std::int64_t>{0, 1, 0});
    CHECK(mg::max(x, -1, true).values.shape() == mg::Shape{2, 1});
    CHECK(mg::max(x, -1, true).indices.shape() == mg::Shape{2, 1});
    CHECK(mg::min(x, 1).values.to_vector() == std::vector<double>{1, 0});
    CHECK(mg::min(x, 1).indices.to_vector() == std::vector<std::int64_t>{1, 0});
    CHECK(mg::argmin(x, 0).to_vector() == std::vector<std::int64_t>{1, 0, 1});
    CHECK(mg::max(x).item() == 5);
    CHECK(mg::min(x).item() == 0);
    CHECK(mg::max(x).shape() == mg::Shape{});
    CHECK(mg::argmax(x, 1).to_vector() == std::vector<std::int64_t>{0, 1});
    CHECK(mg::argmax(x, 0).to_vector() == std::vector<std::int64_t>{0, 1, 0});
    CHECK(mg::argmax(x, 0, true).shape() == mg::Shape{1, 3});
    CHECK(mg::argmax<std::int32_t>(x, -1).to_vector() == std::vector<std::int32_t>{0, 1});
    // argmax(x) and argmin(x) are flat indices into the whole tensor, as torch.argmax(x)
    CHECK(mg::argmax(x).item() == 4);
    CHECK(mg::argmax(x).shape() == mg::Shape{});
    CHECK(mg::argmin(x).item() == 3);
    CHECK(mg::argmax(tensor({3, 1, 3}, {3})).item() == 0);  // the first of a tie
    // NaN is taken by max and min alike, as PyTorch's: the first NaN
    const auto nan = tensor({1, std::nan(""), 2, std::nan("")}, {4});
    CHECK(mg::argmax(nan, 0).item() == 1);
    CHECK(mg::argmin(nan, 0).item() == 1);
    CHECK(mg::argmin(nan).item() == 1);
    CHECK(std::isnan(mg::max(nan, 0).values.item()));
    CHECK(std::isnan(mg::min(nan).item()));
}

TEST_CASE("sum, mean, max along a dim: gradients against central differences") {
    for (int dim : {0, 1, 2, -1}) {
        CAPTURE(dim);
        auto x = random_tensor({2, 3, 4}, 11);
        for (bool keepdim : {false, true}) {
            check_gradients([&] { return weighted_sum(mg::sum(x, dim, keepdim)); }, {x});
            check_gradients([&] { return weighted_sum(mg::mean(x, dim, keepdim)); }, {x});
            check_gradients([&] { return weighted_sum(mg::max(x, dim, keepdim).values); }, {x});
            check_gradients([&] { return weighted_sum(mg::min(x, dim, keepdim).values); }, {x});
            check_gradients([&] { return weighted_sum(mg::var(x, dim, true, keepdim)); }, {x});
            check_gradients([&] { return weighted_sum(mg::std(x, dim, false, keepdim)); }, {x});
        }
    }
}

TEST_CASE("max along a dim: the gradient goes to the first maximum only; the whole tensor's max and min share it among ties, as PyTorch's") {
    auto x = tensor({2, 7, 7, 1}, {1, 4}, true);
    mg::sum(mg::max(x, 1).values).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 0, 0});
    x.zero_grad();
    (mg::max(x) * 3.0).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{0, 1.5, 1.5, 0});
    auto y = tensor({-1, 4, -1, -1}, {2, 2}, true);
    (mg::min(y) * 3.0).backward();
    CHECK(y.grad().to_vector() == std::vector<double>{1, 0, 1, 1});
    auto z = random_tensor({3, 4}, 5);
    check_gradients([&] { return mg::max(z) * 2.0 + mg::min(z); }, {z});
}

TEST_CASE("softmax and log_softmax along a dim: values, gradients, the matrix fast path") {
    const auto x = tensor({0, std::log(3.0), 1, 1}, {2, 2});
    const auto s = mg::softmax(x, -1).to_vector();
    CHECK(s[0] == doctest::Approx(0.25));
    CHECK(s[1] == doctest::Approx(0.75));
    CHECK(s[2] == doctest::Approx(0.5));
    const auto s0 = mg::softmax(x, 0).to_vector();  // columns: (0, 1) and (log 3, 1)
    CHECK(s0[0] == doctest::Approx(1 / (1 + std::exp(1.0))));
    CHECK(s0[0] + s0[2] == doctest::Approx(1.0));
    CHECK(s0[1] + s0[3] == doctest::Approx(1.0));
    const auto ls = mg::log_softmax(x, 1).to_vector();
    const auto ls_old = mg::log_softmax(x).to_vector();
    CHECK(ls == ls_old);
    CHECK(ls[1] == doctest::Approx(std::log(0.75)));
    const auto ls0 = mg::log_softmax(x, 0).to_vector();
    for (std::size_t i = 0; i < 4; ++i) CHECK(ls0[i] == doctest::Approx(std::log(s0[i])));
    for (int dim : {0, 1, 2, -1, -2}) {
        CAPTURE(dim);
        auto y = random_tensor({2, 3, 4}, 12, -2, 2);
        check_gradients([&] { return weighted_sum(mg::softmax(y, dim)); }, {y});
        check_gradients([&] { return weighted_sum(mg::log_softmax(y, dim)); }, {y});
    }
    auto m = random_tensor({3, 5}, 13, -2, 2);
    check_gradients([&] { return weighted_sum(mg::log_softmax(m, -1)); }, {m});
    check_gradients([&] { return weighted_sum(mg::softmax(m, 1)); }, {m});
}

TEST_CASE("dim ops: errors name the op, the argument and the valid range; nothing is computed") {
    const auto x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(error_message([&] { mg::sum(x, 2); }) ==
          "sum: argument #2 'dim' is 2, out of range for a tensor of shape [2, 3] (expected a dim in [-2, 1])");
    CHECK(error_message([&] { mg::mean(x, -3); }) ==
          "mean: argument #2 'dim' is -3, out of range for a tensor of shape [2, 3] (expected a dim in [-2, 1])");
    CHECK(error_message([&] { mg::max(x, 5, true); }).starts_with("max: argument #2 'dim' is 5"));
    CHECK(error_message([&] { mg::argmax(x, -9); }).starts_with("argmax: argument #2 'dim' is -9"));
    CHECK(error_message([&] { mg::softmax(x, 2); }).starts_with("softmax: argument #2 'dim' is 2"));
    CHECK(error_message([&] { mg::log_softmax(x, 3); }).starts_with("log_softmax: argument #2 'dim' is 3"));
    CHECK(error_message([&] { mg::max(T2::zeros({2, 0}), 1); }) ==
          "max: argument #1 'input' has shape [2, 0], whose dim 1 is empty: there is no value to take");
    CHECK(error_message([&] { mg::argmax(T2::zeros({0, 3}), 0); }).starts_with("argmax: argument #1 'input' has shape [0, 3]"));
    CHECK(error_message([&] { mg::mean(T2::zeros({0, 3}), 0); }).starts_with("mean: argument #1 'input' has shape [0, 3]"));
}

}  // namespace test_reduce_dim
