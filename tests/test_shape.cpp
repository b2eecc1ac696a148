// Shape ops (ops/shape.hpp) and the in-place Tensor members: values worked out by hand, negative
// dims, gradients against central differences in double, every error message, and autograd's
// refusal of a backward() through values changed in place.
#include <cstdint>
#include <string>
#include <vector>

#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_shape {

using T2 = mg::Tensor<mg::Cpu, double>;
using I64 = mg::Tensor<mg::Cpu, std::int64_t>;

static T2 weighted_sum(const T2& y) {
    mg::Generator gen(5);
    return mg::sum(y * T2::uniform(y.shape(), 0.5, 1.5, gen));
}

static const std::vector<double> six{1, 2, 3, 4, 5, 6};

TEST_CASE("reshape, view, flatten: shapes, an inferred -1, values kept, gradients") {
    const auto x = tensor(six, {2, 3});
    CHECK(mg::reshape(x, {3, 2}).shape() == mg::Shape{3, 2});
    CHECK(x.reshape({-1}).shape() == mg::Shape{6});
    CHECK(x.view({3, -1}).shape() == mg::Shape{3, 2});
    CHECK(x.reshape({1, 6}).to_vector() == six);
    CHECK(mg::flatten(tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2})).shape() == mg::Shape{8});
    CHECK(mg::flatten(tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}), 1).shape() == mg::Shape{2, 4});
    CHECK(mg::flatten(tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}), 0, -2).shape() == mg::Shape{4, 2});
    CHECK(mg::flatten(tensor({4}, {})).shape() == mg::Shape{1});
    auto y = random_tensor({2, 3, 2}, 21);
    check_gradients([&] { return weighted_sum(mg::reshape(y, {3, -1})); }, {y});
    check_gradients([&] { return weighted_sum(y.view({6, 2})); }, {y});
    check_gradients([&] { return weighted_sum(mg::flatten(y, 1)); }, {y});
}

TEST_CASE("transpose and t: values, negative dims, gradients") {
    const auto x = tensor(six, {2, 3});  // [[1, 2, 3], [4, 5, 6]]
    CHECK(mg::t(x).shape() == mg::Shape{3, 2});
    CHECK(mg::t(x).to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
    CHECK(mg::transpose(x, -1, 0).to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
    CHECK(mg::t(tensor({1, 2}, {2})).to_vector() == std::vector<double>{1, 2});
    // (2, 2, 2) = [[[0, 1], [2, 3]], [[4, 5], [6, 7]]], dims 0 and 2 swapped: y[i][j][k] = x[k][j][i]
    const auto c = tensor({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2});
    CHECK(mg::transpose(c, 0, 2).to_vector() == std::vector<double>{0, 4, 2, 6, 1, 5, 3, 7});
    auto m = random_tensor({3, 4}, 22);
    check_gradients([&] { return weighted_sum(mg::t(m)); }, {m});
    auto z = random_tensor({2, 3, 4}, 23);
    check_gradients([&] { return weighted_sum(mg::transpose(z, 0, 2)); }, {z});
    check_gradients([&] { return weighted_sum(mg::transpose(z, 1, -1)); }, {z});
}

TEST_CASE("narrow and slice: values, negative start, Python's clipping, gradients") {
    const auto x = tensor(six, {3, 2});  // rows [1, 2], [3, 4], [5, 6]
    CHECK(mg::narrow(x, 0, 1, 2).to_vector() == std::vector<double>{3, 4, 5, 6});
    CHECK(mg::narrow(x, -1, 1, 1).to_vector() == std::vector<double>{2, 4, 6});
    CHECK(mg::narrow(x, 0, -1, 1).to_vector() == std::vector<double>{5, 6});
    CHECK(mg::narrow(x, 0, 3, 0).shape() == mg::Shape{0, 2});
    CHECK(mg::slice(x, 0, 1, 100).to_vector() == std::vector<double>{3, 4, 5, 6});
    CHECK(mg::slice(x, 0, -2, -1).to_vector() == std::vector<double>{3, 4});
    CHECK(mg::slice(x, 0, 2, 1).shape() == mg::Shape{0, 2});
    auto y = random_tensor({4, 3}, 24);
    check_gradients([&] { return weighted_sum(mg::narrow(y, 0, 1, 2)); }, {y});
    check_gradients([&] { return weighted_sum(mg::narrow(y, 1, 1, 2)); }, {y});
    check_gradients([&] { return weighted_sum(mg::slice(y, 0, 0, 3) * 2.0 + mg::slice(y, 0, 1, 4)); }, {y});
}

TEST_CASE("index_select: a mini-batch gather, repeats, any dim, gradients add up at a repeat") {
    const auto x = tensor(six, {3, 2});
    const auto idx = I64::from({2, 0, 2});
    CHECK(mg::index_select(x, 0, idx).to_vector() == std::vector<double>{5, 6, 1, 2, 5, 6});
    CHECK(mg::index_select(x, -1, I64::from({1})).to_vector() == std::vector<double>{2, 4, 6});
    CHECK(mg::index_select(x, 0, mg::Tensor<mg::Cpu, std::int32_t>::from({1})).to_vector() == std::vector<double>{3, 4});
    CHECK(mg::index_select(x, 0, I64::from(std::vector<std::int64_t>{})).shape() == mg::Shape{0, 2});
    auto w = tensor(six, {3, 2}, true);
    mg::sum(mg::index_select(w, 0, idx)).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{1, 1, 0, 0, 2, 2});
    auto y = random_tensor({4, 3}, 25);
    check_gradients([&] { return weighted_sum(mg::index_select(y, 0, I64::from({3, 1, 3, 0}))); }, {y});
    check_gradients([&] { return weighted_sum(mg::index_select(y, 1, I64::from({2, 2}))); }, {y});
}

TEST_CASE("cat: along dim 0 and 1, more tensors than a Node holds, gradients split back") {
    const auto a = tensor({1, 2}, {1, 2}), b = tensor({3, 4, 5, 6}, {2, 2});
    CHECK(mg::cat({a, b}).to_vector() == six);
    CHECK(mg::cat({a, b}).shape() == mg::Shape{3, 2});
    CHECK(mg::cat({b, tensor({7, 8}, {2, 1})}, -1).to_vector() == std::vector<double>{3, 4, 7, 5, 6, 8});
    auto p = random_tensor({1, 3}, 26), q = random_tensor({2, 3}, 27), r = random_tensor({1, 3}, 28), s = random_tensor({3, 3}, 29);
    auto u = random_tensor({2, 2}, 30);
    check_gradients([&] { return weighted_sum(mg::cat({p, q})); }, {p, q});
    check_gradients([&] { return weighted_sum(mg::cat({p, q, r, s, p})); }, {p, q, r, s});
    check_gradients([&] { return weighted_sum(mg::cat({q, u}, 1)); }, {q, u});
    const auto c = tensor({1}, {1, 1});
    auto five = mg::cat({c, c, c, c, c});
    CHECK(five.to_vector() == std::vector<double>{1, 1, 1, 1, 1});
}

TEST_CASE("shape ops: errors name the op, the argument and both sides") {
    const auto x = tensor(six, {2, 3});
    CHECK(error_message([&] { mg::reshape(x, {4, 2}); }) ==
          "reshape: argument #2 'shape' [4, 2] holds 8 elements, but argument #1 'input' of shape [2, 3] has 6");
    CHECK(error_message([&] { x.view({4, -1}); }) == "view: argument #2 'shape' [4, -1] does not fit argument #1 'input' of shape [2, 3] (6 elements)");
    CHECK(error_message([&] { x.reshape({-1, -1}); }).starts_with("reshape: argument #2 'shape' [-1, -1] has size -1 at dim 1"));
    CHECK(error_message([&] { mg::flatten(x, 1, 0); }) ==
          "flatten: argument #2 'start_dim' (1) comes after argument #3 'end_dim' (0) for a tensor of shape [2, 3]");
    CHECK(error_message([&] { mg::transpose(x, 0, 2); }) ==
          "transpose: argument #3 'dim1' is 2, out of range for a tensor of shape [2, 3] (expected a dim in [-2, 1])");
    CHECK(error_message([&] { mg::t(T2::zeros({1, 2, 3})); }).starts_with("t: argument #1 'input' has shape [1, 2, 3]"));
    CHECK(error_message([&] { mg::narrow(x, 1, 2, 2); }) ==
          "narrow: argument #4 'length' is 2: start 2 + length 2 is past the end of dim 1 of size 3 (argument #1 'input' has shape [2, 3])");
    // start + length past INT64_MAX: refused by its own rule (it used to overflow, UB, then fail on the shape's size)
    CHECK(error_message([&] { mg::narrow(x, 1, 1, std::numeric_limits<std::int64_t>::max()); }) ==
          "narrow: argument #4 'length' is 9223372036854775807: start 1 + length 9223372036854775807 is past the end of dim 1 of size 3 "
          "(argument #1 'input' has shape [2, 3])");
    CHECK(error_message([&] { mg::narrow(x, 0, 3, 0); }).starts_with("narrow: argument #3 'start' is 3, out of range for dim 0 of size 2"));
    CHECK(error_message([&] { mg::narrow(x, 2, 0, 1); }).starts_with("narrow: argument #2 'dim' is 2, out of range"));
    CHECK(error_message([&] { mg::index_select(x, 0, I64::from({0, 2})); }) ==
          "index_select: argument #3 'index' has index 2 at position 1, expected an index in [0, 2)");
    CHECK(error_message([&] { mg::index_select(x, 1, I64::from({-1})); }).starts_with("index_select: argument #3 'index' has index -1 at position 0"));
    CHECK(error_message([&] { mg::index_select(x, 0, I64::from({0, 1}, {1, 2})); }) ==
          "index_select: argument #3 'index' has shape [1, 2], expected a vector [n]");
    CHECK(error_message([&] { mg::cat({x, T2::zeros({2, 2})}); }) ==
          "cat: tensor #2 has shape [2, 2], which does not match tensor #1's shape [2, 3] in every dim but 0");
    CHECK(error_message([&] { mg::cat({x, T2::zeros({6})}); }).starts_with("cat: tensor #2 has shape [6]"));
    CHECK(error_message([&] { mg::cat(std::vector<T2>{}); }) == "cat: argument #1 'tensors' is an empty list, expected at least one tensor");
}

TEST_CASE("in-place ops: values, refused on a tensor that requires grad under grad mode, allowed under NoGradGuard") {
    auto x = tensor(six, {2, 3});
    x.mul_(2).add_(1);
    CHECK(x.to_vector() == std::vector<double>{3, 5, 7, 9, 11, 13});
    x.fill_(4);
    CHECK(x.to_vector() == std::vector<double>(6, 4.0));
    x.zero_();
    CHECK(x.to_vector() == std::vector<double>(6, 0.0));
    x.copy_(tensor(six, {2, 3}));
    CHECK(x.to_vector() == six);
    mg::Tensor<mg::Cpu, double> other = T2::zeros({2, 3});
    other.copy_(x.to<mg::Cpu>());
    CHECK(other.to_vector() == six);

    auto w = tensor(six, {2, 3}, true);
    CHECK(error_message([&] { w.fill_(0); }) ==
          "fill_: the tensor requires grad, and autograd does not record in-place ops; write it under mg::NoGradGuard (as an optimizer step does)");
    CHECK(error_message([&] { w.mul_(2); }).starts_with("mul_: the tensor requires grad"));
    CHECK(w.to_vector() == six);  // nothing changed
    CHECK(error_message([&] { x.copy_(T2::zeros({3, 2})); }) ==
          "copy_: argument #1 'src' has shape [3, 2], expected [2, 3] (the shape of the tensor copied into)");
    CHECK(x.to_vector() == six);

    // log reads its input in backward: a write in between is refused by autograd's version check.
    auto loss = mg::sum(mg::log(w));
    {
        mg::NoGradGuard no_grad;
        w.mul_(3);
    }
    CHECK(error_message([&] { loss.backward(); }).starts_with("backward: argument #1 of log (shape [2, 3]) was modified in place"));
    // ...also through a detach()ed alias of its storage.
    auto loss2 = mg::sum(mg::log(w));
    w.detach().add_(1);
    CHECK(w.to_vector()[0] == 4.0);
    CHECK(error_message([&] { loss2.backward(); }).starts_with("backward: argument #1 of log"));
}

TEST_CASE("bmm and matmul of 3-D tensors (ops/matmul.hpp): values, gradients, errors") {
    // batch 0: [[1, 2]] x [[1], [1]] = [[3]]; batch 1: [[3, 4]] x [[2], [0]] = [[6]]
    const auto a = tensor({1, 2, 3, 4}, {2, 1, 2}), b = tensor({1, 1, 2, 0}, {2, 2, 1});
    CHECK(mg::bmm(a, b).shape() == mg::Shape{2, 1, 1});
    CHECK(mg::bmm(a, b).to_vector() == std::vector<double>{3, 6});
    CHECK(mg::matmul(a, b).to_vector() == std::vector<double>{3, 6});
    auto p = random_tensor({3, 2, 4}, 31), q = random_tensor({3, 4, 5}, 32);
    check_gradients([&] { return weighted_sum(mg::bmm(p, q)); }, {p, q});
    check_gradients([&] { return weighted_sum(mg::matmul(p, q)); }, {p, q});
    CHECK(error_message([&] { mg::bmm(p, random_tensor({2, 4, 5}, 33)); }) ==
          "bmm: argument #2 'mat2' has shape [2, 4, 5], expected [3, 4, *] to match argument #1 'input' of shape [3, 2, 4]");
    CHECK(error_message([&] { mg::bmm(p, random_tensor({4, 5}, 34)); }) ==
          "bmm: argument #2 'mat2' has shape [4, 5], expected a batch of matrices [batch, k, n]");
}


TEST_CASE("Shape holds up to eight dims, from a brace list, a vector or a span; a ninth is refused") {
    const mg::Shape eight{1, 2, 1, 3, 1, 2, 1, 2};
    CHECK(eight.ndim() == 8);
    CHECK(eight.numel() == 24);
    const std::vector<std::int64_t> dims{2, 3, 4, 5, 1, 2};
    CHECK(mg::Shape(dims) == mg::Shape{2, 3, 4, 5, 1, 2});
    CHECK(mg::Shape(std::span<const std::int64_t>(dims).first(2)) == mg::Shape{2, 3});
    CHECK(error_message([] { mg::Shape{1, 1, 1, 1, 1, 1, 1, 1, 1}; }) == "Shape: 9 dimensions given, at most 8 are supported");
    CHECK(error_message([&] { mg::Shape(std::vector<std::int64_t>{2, -1}); }) == "Shape: dimension -1 is negative");
}

// The element of a (row-major, shape `s`) that a broadcast to `out` reads at out's index i.
static std::size_t broadcast_source(const mg::Shape& s, const mg::Shape& out, std::int64_t i) {
    std::int64_t offset = 0, stride = 1;
    for (int d = out.ndim() - 1; d >= 0; --d) {
        const int sd = d - (out.ndim() - s.ndim());
        const std::int64_t coord = i % out[d];
        i /= out[d];
        if (sd >= 0) {
            if (s[sd] != 1) offset += coord * stride;
            stride *= s[sd];
        }
    }
    return static_cast<std::size_t>(offset);
}

TEST_CASE("broadcasting over six and eight dims, where no neighbouring dims merge: values against a reference, gradients against central differences") {
    // a and b stretch alternate dims, so every dim stays apart in the strided reads
    const mg::Shape sa{3, 1, 2, 1, 2, 1}, sb{1, 2, 1, 3, 1, 2}, out{3, 2, 2, 3, 2, 2};
    auto a = random_tensor(sa, 71), b = random_tensor(sb, 72);
    const auto y = a * b;
    REQUIRE(y.shape() == out);
    const auto av = a.to_vector(), bv = b.to_vector(), yv = y.to_vector();
    for (std::int64_t i = 0; i < out.numel(); ++i)
        CHECK(yv[static_cast<std::size_t>(i)] == av[broadcast_source(sa, out, i)] * bv[broadcast_source(sb, out, i)]);
    check_gradients([&] { return weighted_sum(a * b - b); }, {a, b});
    // eight dims, a [2, 1, 2, 1, 2, 1, 2, 1] operand against a trailing-dims row
    auto c = random_tensor(mg::Shape{2, 1, 2, 1, 2, 1, 2, 1}, 73), d = random_tensor(mg::Shape{3, 1, 2, 1, 2}, 74);
    CHECK((c + d).shape() == mg::Shape{2, 1, 2, 3, 2, 2, 2, 2});
    check_gradients([&] { return weighted_sum(c / (d * d + 1.0)); }, {c, d});
    CHECK(error_message([&] { (void)(a + random_tensor(mg::Shape{4, 1, 1, 1, 1, 1}, 75)); }) ==
          "add: argument #2 'other' has shape [4, 1, 1, 1, 1, 1], which does not broadcast with argument #1 'input' of shape "
          "[3, 1, 2, 1, 2, 1] (dimension 0: 4 vs 3; sizes must be equal or one of them 1)");
}

TEST_CASE("permute: values as torch.permute, negative dims, the gradient permuted back, and its errors") {
    auto x = random_tensor(mg::Shape{2, 3, 1, 4, 2}, 76);
    const auto y = mg::permute(x, {3, 0, -1, 2, 1});
    REQUIRE(y.shape() == mg::Shape{4, 2, 2, 1, 3});
    const auto xv = x.to_vector(), yv = y.to_vector();
    // y[i3, i0, i4, i2, i1] = x[i0, i1, i2, i3, i4]
    for (std::int64_t i0 = 0; i0 < 2; ++i0)
        for (std::int64_t i1 = 0; i1 < 3; ++i1)
            for (std::int64_t i3 = 0; i3 < 4; ++i3)
                for (std::int64_t i4 = 0; i4 < 2; ++i4)
                    CHECK(yv[static_cast<std::size_t>((((i3 * 2 + i0) * 2 + i4) * 1 + 0) * 3 + i1)] ==
                          xv[static_cast<std::size_t>((((i0 * 3 + i1) * 1 + 0) * 4 + i3) * 2 + i4)]);
    check_gradients([&] { return weighted_sum(mg::permute(x, {4, 3, 2, 1, 0}) * 2.0); }, {x});
    CHECK(error_message([&] { mg::permute(x, {0, 1, 2}); }) ==
          "permute: argument #2 'dims' has 3 entries, but argument #1 'input' has 5 dims (shape [2, 3, 1, 4, 2])");
    CHECK(error_message([&] { mg::permute(x, {0, 1, 2, 3, -5}); }) == "permute: argument #2 'dims' names dim 0 twice ([0, 1, 2, 3, -5])");
    CHECK(error_message([&] { mg::permute(x, {0, 1, 2, 3, 5}); }) ==
          "permute: argument #2 'dims' is 5, out of range for a tensor of shape [2, 3, 1, 4, 2] (expected a dim in [-5, 4])");
}

TEST_CASE("unsqueeze and squeeze: torch's shapes, negative dims, the most dims, and gradients") {
    auto x = random_tensor(mg::Shape{2, 1, 3}, 77);
    CHECK(mg::unsqueeze(x, 0).shape() == mg::Shape{1, 2, 1, 3});
    CHECK(mg::unsqueeze(x, 3).shape() == mg::Shape{2, 1, 3, 1});
    CHECK(mg::unsqueeze(x, -1).shape() == mg::Shape{2, 1, 3, 1});
    CHECK(mg::unsqueeze(x, -4).shape() == mg::Shape{1, 2, 1, 3});
    CHECK(mg::squeeze(x).shape() == mg::Shape{2, 3});
    CHECK(mg::squeeze(x, 1).shape() == mg::Shape{2, 3});
    CHECK(mg::squeeze(x, -1).shape() == mg::Shape{2, 1, 3});  // size 3: kept, as torch
    CHECK(mg::squeeze(tensor({5.0}, {1, 1})).shape() == mg::Shape{});
    CHECK(mg::unsqueeze(x, 1).to_vector() == x.to_vector());
    check_gradients([&] { return weighted_sum(mg::squeeze(mg::unsqueeze(x, 2)) * 3.0); }, {x});
    CHECK(error_message([&] { mg::unsqueeze(x, 4); }) ==
          "unsqueeze: argument #2 'dim' is 4, out of range for a tensor of shape [2, 1, 3] (expected a dim in [-4, 3])");
    const auto eight = T2::zeros({1, 1, 1, 1, 1, 1, 1, 2});
    CHECK(error_message([&] { mg::unsqueeze(eight, 0); }) ==
          "unsqueeze: argument #1 'input' has shape [1, 1, 1, 1, 1, 1, 1, 2], already the most dims a tensor has (8)");
    CHECK(error_message([&] { mg::squeeze(x, 3); }) ==
          "squeeze: argument #2 'dim' is 3, out of range for a tensor of shape [2, 1, 3] (expected a dim in [-3, 2])");
}

TEST_CASE("expand: torch's sizes (-1 keeps, new leading dims), values, the gradient summed back, and its errors") {
    auto x = random_tensor(mg::Shape{3, 1}, 78);
    const auto y = mg::expand(x, {2, -1, 4});
    REQUIRE(y.shape() == mg::Shape{2, 3, 4});
    const auto xv = x.to_vector(), yv = y.to_vector();
    for (std::int64_t i = 0; i < 24; ++i) CHECK(yv[static_cast<std::size_t>(i)] == xv[static_cast<std::size_t>(i / 4 % 3)]);
    check_gradients([&] { return weighted_sum(mg::expand(x, {2, 3, 4})); }, {x});
    CHECK(mg::expand(x, {3, 1}).to_vector() == xv);
    CHECK(error_message([&] { mg::expand(x, {2, 4}); }) ==
          "expand: argument #2 'size' is [2, 4], which argument #1 'input' of shape [3, 1] cannot expand to (dim 0: 3 to 2; only a size of 1 "
          "stretches)");
    CHECK(error_message([&] { mg::expand(x, {-1, 3, 4}); }) ==
          "expand: argument #2 'size' is [-1, 3, 4]: -1 at dim 0, a new leading dim, which has no size to keep");
    CHECK(error_message([&] { mg::expand(x, {4}); }) == "expand: argument #2 'size' has 1 dims, expected 2 to 8 for argument #1 'input' of shape [3, 1]");
}

}  // namespace test_shape
