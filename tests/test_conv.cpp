// Convolutions (ops/conv.hpp, nn/conv.hpp): values against a direct convolution in double for every
// option (stride, padding and "same", dilation, groups, bias), gradients against central
// differences, conv1d against conv2d, the layers' parameters, and every error message.
#include <cmath>
#include <limits>
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_conv {

using T2 = mg::Tensor<mg::Cpu, double>;

struct Case {
    std::int64_t n, c, h, w, o, kh, kw, stride_h, stride_w, dil_h, dil_w, groups;
    mg::Padding padding;
    bool with_bias;
};

// out[b, oc, p, q] = bias[oc] + sum over the group's channels and the kernel of x * w, with the
// input padded by pad_h/pad_w before (PyTorch's "same": total / 2 before, the rest after).
static std::vector<double> direct_conv(const Case& k, const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                                       std::int64_t& oh, std::int64_t& ow) {
    std::int64_t total_h = 2 * k.padding.size.h, total_w = 2 * k.padding.size.w, pad_h = k.padding.size.h, pad_w = k.padding.size.w;
    if (k.padding.same) {
        total_h = k.dil_h * (k.kh - 1), total_w = k.dil_w * (k.kw - 1);
        pad_h = total_h / 2, pad_w = total_w / 2;
    }
    oh = (k.h + total_h - k.dil_h * (k.kh - 1) - 1) / k.stride_h + 1;
    ow = (k.w + total_w - k.dil_w * (k.kw - 1) - 1) / k.stride_w + 1;
    const std::int64_t cg = k.c / k.groups, og = k.o / k.groups;
    std::vector<double> out(static_cast<std::size_t>(k.n * k.o * oh * ow));
    for (std::int64_t bi = 0; bi < k.n; ++bi)
        for (std::int64_t oc = 0; oc < k.o; ++oc)
            for (std::int64_t p = 0; p < oh; ++p)
                for (std::int64_t q = 0; q < ow; ++q) {
                    double acc = k.with_bias ? b[static_cast<std::size_t>(oc)] : 0.0;
                    for (std::int64_t ci = 0; ci < cg; ++ci)
                        for (std::int64_t i = 0; i < k.kh; ++i)
                            for (std::int64_t j = 0; j < k.kw; ++j) {
                                const std::int64_t y = p * k.stride_h - pad_h + i * k.dil_h, xx = q * k.stride_w - pad_w + j * k.dil_w;
                                if (y < 0 || y >= k.h || xx < 0 || xx >= k.w) continue;
                                const std::int64_t channel = oc / og * cg + ci;
                                acc += x[static_cast<std::size_t>(((bi * k.c + channel) * k.h + y) * k.w + xx)] *
                                       w[static_cast<std::size_t>(((oc * cg + ci) * k.kh + i) * k.kw + j)];
                            }
                    out[static_cast<std::size_t>(((bi * k.o + oc) * oh + p) * ow + q)] = acc;
                }
    return out;
}

static T2 weighted(const T2& y) {
    mg::Generator gen(9);
    return mg::sum(y * T2::uniform(y.shape(), 0.5, 1.5, gen));
}

TEST_CASE("conv2d equals a direct convolution for strides, padding and 'same', dilation, groups and bias; gradients by central differences") {
    const std::vector<Case> cases{
        {2, 4, 5, 6, 6, 3, 2, 2, 1, 1, 2, 2, mg::Padding(1, 0), true},   // stride, padding, dilation, two groups
        {1, 3, 6, 5, 2, 4, 3, 1, 1, 1, 1, 1, mg::Padding("same"), true},  // an even kernel: the extra padding at the end
        {2, 3, 4, 4, 3, 3, 3, 1, 1, 2, 1, 3, mg::Padding("same"), false}, // depthwise, dilated, "same"
        {1, 2, 7, 7, 4, 3, 3, 3, 2, 1, 1, 1, mg::Padding(2), false},     // a stride that leaves the last rows unread
        {2, 2, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1, mg::Padding("valid"), true}, // one output position
    };
    for (std::size_t ci = 0; ci < cases.size(); ++ci) {
        CAPTURE(ci);
        const Case& k = cases[ci];
        auto x = random_tensor(mg::Shape{k.n, k.c, k.h, k.w}, 100 + ci);
        auto w = random_tensor(mg::Shape{k.o, k.c / k.groups, k.kh, k.kw}, 200 + ci);
        auto b = k.with_bias ? random_tensor(mg::Shape{k.o}, 300 + ci) : T2{};
        const mg::Conv2dOptions options{.stride = {k.stride_h, k.stride_w}, .padding = k.padding, .dilation = {k.dil_h, k.dil_w}, .groups = k.groups};
        const auto y = mg::conv2d(x, w, b, options);
        std::int64_t oh = 0, ow = 0;
        const auto expected = direct_conv(k, x.to_vector(), w.to_vector(), k.with_bias ? b.to_vector() : std::vector<double>{}, oh, ow);
        REQUIRE(y.shape() == mg::Shape{k.n, k.o, oh, ow});
        const auto got = y.to_vector();
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-12));
        std::vector<T2> inputs;  // by push_back: g++ 12 warns (-Warray-bounds, wrongly) on a brace list copied into it here
        inputs.push_back(x);
        inputs.push_back(w);
        if (k.with_bias) inputs.push_back(b);
        check_gradients([&] { return weighted(mg::conv2d(x, w, b, options)); }, inputs);
    }
}

// A call whose patches are more than the host's cache runs over chunks of images (ops/conv.hpp,
// conv_chunk_images: here 8 chunks of one image), backward remaking each chunk's patches, the
// weight's and bias's gradients summed over the chunks, added to what the leaves already hold.
TEST_CASE("conv2d over image chunks: values, and gradients written then added, equal direct loops") {
    const std::int64_t n = 8, c = 8, h = 24, w = 24, o = 6, groups = 2, cg = c / groups, og = o / groups;
    const mg::Conv2dOptions options{.stride = 1, .padding = 2, .dilation = 2, .groups = groups};
    REQUIRE(mg::detail::conv_chunk_images<mg::Cpu, double>(mg::detail::conv_geometry("conv2d", 2, T2::zeros({n, c, h, w}), T2::zeros({o, cg, 3, 3}),
                                                                                    T2{}, options.stride, options.padding, options.dilation, groups)) == 1);
    auto x = random_tensor(mg::Shape{n, c, h, w}, 71);
    auto weight = random_tensor(mg::Shape{o, cg, 3, 3}, 72);
    auto bias = random_tensor(mg::Shape{o}, 73);
    auto dy = random_tensor(mg::Shape{n, o, h, w}, 74);  // the output is 24x24: padding 2 = dilation 2 x (3 - 1) / 2
    const auto xv = x.to_vector(), wv = weight.to_vector(), bv = bias.to_vector(), dyv = dy.to_vector();
    std::vector<double> y_ref(static_cast<std::size_t>(n * o * h * w)), dx_ref(xv.size()), dw_ref(wv.size()), db_ref(bv.size());
    for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t oc = 0; oc < o; ++oc)
            for (std::int64_t p = 0; p < h; ++p)
                for (std::int64_t q = 0; q < w; ++q) {
                    const auto at = static_cast<std::size_t>(((b * o + oc) * h + p) * w + q);
                    double acc = bv[static_cast<std::size_t>(oc)];
                    db_ref[static_cast<std::size_t>(oc)] += dyv[at];
                    for (std::int64_t ci = 0; ci < cg; ++ci)
                        for (std::int64_t i = 0; i < 3; ++i)
                            for (std::int64_t j = 0; j < 3; ++j) {
                                const std::int64_t yy = p - 2 + 2 * i, xx = q - 2 + 2 * j;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                                const auto xi = static_cast<std::size_t>(((b * c + oc / og * cg + ci) * h + yy) * w + xx);
                                const auto wi = static_cast<std::size_t>(((oc * cg + ci) * 3 + i) * 3 + j);
                                acc += xv[xi] * wv[wi];
                                dx_ref[xi] += dyv[at] * wv[wi];
                                dw_ref[wi] += dyv[at] * xv[xi];
                            }
                    y_ref[at] = acc;
                }
    for (int pass = 1; pass <= 2; ++pass) {  // the second pass adds to the gradients of the first
        CAPTURE(pass);
        const auto y = mg::conv2d(x, weight, bias, options);
        const auto yv = y.to_vector();
        for (std::size_t i = 0; i < yv.size(); ++i) REQUIRE(yv[i] == doctest::Approx(y_ref[i]).epsilon(1e-12));
        mg::sum(y * dy).backward();
        const auto close_all = [pass](const std::vector<double>& got, const std::vector<double>& want) {
            REQUIRE(got.size() == want.size());
            for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == doctest::Approx(pass * want[i]).epsilon(1e-10));
        };
        close_all(x.grad().to_vector(), dx_ref);
        close_all(weight.grad().to_vector(), dw_ref);
        close_all(bias.grad().to_vector(), db_ref);
    }
}

TEST_CASE("conv1d is conv2d over a height of 1; Conv1d and Conv2d hold PyTorch's parameters, initialised in +-1/sqrt(fan_in)") {
    auto x = random_tensor(mg::Shape{2, 4, 9}, 31);
    auto w = random_tensor(mg::Shape{6, 2, 3}, 32);
    auto b = random_tensor(mg::Shape{6}, 33);
    const auto y = mg::conv1d(x, w, b, {.stride = 2, .padding = 1, .dilation = 2, .groups = 2});
    const auto y2 = mg::conv2d(mg::reshape(x, {2, 4, 1, 9}), mg::reshape(w, {6, 2, 1, 3}), b,
                               {.stride = {1, 2}, .padding = {0, 1}, .dilation = {1, 2}, .groups = 2});
    REQUIRE(y.shape() == mg::Shape{2, 6, 4});
    CHECK(y.to_vector() == y2.to_vector());
    check_gradients([&] { return weighted(mg::conv1d(x, w, b, {.padding = "same", .groups = 2})); }, {x, w, b});

    mg::manual_seed(5);
    mg::nn::Conv2d<mg::Cpu> conv(3, 8, {3, 2}, {.padding = 1});
    REQUIRE(conv.weight.shape() == mg::Shape{8, 3, 3, 2});
    REQUIRE(conv.bias.shape() == mg::Shape{8});
    const double bound = 1 / std::sqrt(3.0 * 3 * 2);
    for (float v : conv.weight.to_vector()) CHECK(std::abs(v) <= bound);
    for (float v : conv.bias.to_vector()) CHECK(std::abs(v) <= bound);
    const auto names = conv.named_parameters();
    REQUIRE(names.size() == 2);
    CHECK(names[0].first == "weight");
    CHECK(names[1].first == "bias");
    mg::nn::Conv1d<mg::Cpu> conv1(4, 2, 5, {.groups = 2}, false);
    CHECK(conv1.weight.shape() == mg::Shape{2, 2, 5});
    CHECK_FALSE(conv1.bias.defined());
    // a small CNN in a Sequential: a step of backward reaches every parameter
    auto net = mg::nn::Sequential(mg::nn::Conv2d<mg::Cpu>(1, 4, 3, {.padding = "same"}), mg::nn::ReLU{}, mg::nn::Flatten(),
                                  mg::nn::Linear<mg::Cpu>(4 * 8 * 8, 10));
    mg::Generator gen(2);
    const auto images = mg::Tensor<mg::Cpu>::uniform({5, 1, 8, 8}, 0, 1, gen);
    const auto labels = mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{1, 2, 3, 4, 5});
    mg::cross_entropy(net(images), labels).backward();
    for (const auto& [name, p] : net.named_parameters()) {
        CAPTURE(name);
        CHECK(p.grad().defined());
    }
}

TEST_CASE("conv2d and conv1d: every error names the op, the argument and both shapes") {
    const auto x = T2::zeros({1, 4, 5, 5}), w = T2::zeros({6, 2, 3, 3});
    CHECK(error_message([&] { mg::conv2d(x, w); }) ==
          "conv2d: argument #2 'weight' has shape [6, 2, 3, 3]: 2 input channels per group, but argument #1 'input' of shape [1, 4, 5, 5] has 4 "
          "channels in 1 group(s), 4 each");
    CHECK(error_message([&] { mg::conv2d(x, w, {}, {.groups = 3}); }) ==
          "conv2d: groups=3 must divide both the input's 4 channels and the weight's 6 output channels");
    CHECK(error_message([&] { mg::conv2d(T2::zeros({4, 5, 5}), w); }) ==
          "conv2d: argument #1 'input' has shape [4, 5, 5], expected [N, C, H, W]");
    CHECK(error_message([&] { mg::conv2d(x, T2::zeros({6, 4, 7, 1})); }) ==
          "conv2d: the kernel reaches [7, 1] (dilated), more than the padded input's [5, 5]: argument #1 'input' has shape [1, 4, 5, 5], "
          "argument #2 'weight' [6, 4, 7, 1]");
    CHECK(error_message([&] { mg::conv2d(x, w, {}, {.stride = 2, .padding = "same", .groups = 2}); }) ==
          "conv2d: padding='same' needs stride 1, as in PyTorch");
    CHECK(error_message([&] { mg::conv2d(x, w, T2::zeros({5}), {.groups = 2}); }) ==
          "conv2d: argument #3 'bias' has shape [5], expected [6] (one per output channel)");
    CHECK(error_message([&] { mg::conv2d(x, w, {}, {.stride = {0, 1}, .groups = 2}); }) == "conv2d: every stride must be >= 1 (got [0, 1])");
    CHECK(error_message([&] { mg::conv1d(T2::zeros({1, 2, 4}), T2::zeros({1, 2, 3}), {}, {.dilation = 0}); }) ==
          "conv1d: every dilation must be >= 1 (got 0)");
    CHECK(error_message([] { mg::Padding("full"); }) == "conv: padding 'full' is not one of 'same', 'valid' or a number");
    CHECK(error_message([] { mg::nn::Conv2d<mg::Cpu>(4, 6, 3, {.groups = 4}); }) == "Conv2d: groups=4 must divide in_channels=4 and out_channels=6");
}

// Pooling by direct loops: for output (p, q) the window's rows [r0, r1) and columns [c0, c1),
// clipped to the input; max, or the sum over the divisor.
static std::vector<double> direct_pool(const std::vector<double>& x, std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t oh,
                                       std::int64_t ow, bool max, const std::function<std::array<std::int64_t, 5>(std::int64_t, std::int64_t)>& window) {
    std::vector<double> out(static_cast<std::size_t>(planes * oh * ow));
    for (std::int64_t pl = 0; pl < planes; ++pl)
        for (std::int64_t p = 0; p < oh; ++p)
            for (std::int64_t q = 0; q < ow; ++q) {
                const auto [r0, r1, c0, c1, divisor] = window(p, q);
                double acc = max ? -1e300 : 0.0;
                for (std::int64_t r = std::max<std::int64_t>(r0, 0); r < std::min(r1, h); ++r)
                    for (std::int64_t c = std::max<std::int64_t>(c0, 0); c < std::min(c1, w); ++c) {
                        const double v = x[static_cast<std::size_t>((pl * h + r) * w + c)];
                        acc = max ? std::max(acc, v) : acc + v;
                    }
                out[static_cast<std::size_t>((pl * oh + p) * ow + q)] = max ? acc : acc / static_cast<double>(divisor);
            }
    return out;
}

TEST_CASE("conv_transpose2d is conv2d's adjoint: <conv2d(u, w), x> = <u, conv_transpose2d(x, w)>; gradients; the layer; errors") {
    // the convolution (2 groups, stride 2, padding 1, dilation 1x2) from u (2, 6, 9, 8) to x's shape
    auto w = random_tensor(mg::Shape{4, 3, 3, 2}, 51);  // as conv2d's weight: (4 out, 6 / 2 in per group, 3, 2)
    auto u = random_tensor(mg::Shape{2, 6, 9, 8}, 52);
    const mg::Conv2dOptions conv{.stride = 2, .padding = 1, .dilation = {1, 2}, .groups = 2};
    const auto y = mg::conv2d(u, w, T2{}, conv);
    auto x = random_tensor(y.shape(), 53);
    // output_padding takes the transposed output back to u's 9 x 8 (the convolution dropped a row)
    const mg::ConvTranspose2dOptions transposed{.stride = 2, .padding = 1, .output_padding = {0, 1}, .groups = 2, .dilation = {1, 2}};
    const auto v = mg::conv_transpose2d(x, w, T2{}, transposed);
    REQUIRE(v.shape() == u.shape());
    double left = 0, right = 0;
    const auto yv = y.to_vector(), xv = x.to_vector(), uv = u.to_vector(), vv = v.to_vector();
    for (std::size_t i = 0; i < yv.size(); ++i) left += yv[i] * xv[i];
    for (std::size_t i = 0; i < uv.size(); ++i) right += uv[i] * vv[i];
    CHECK(left == doctest::Approx(right).epsilon(1e-12));
    auto b = random_tensor(mg::Shape{6}, 54);
    check_gradients([&] { return weighted(mg::conv_transpose2d(x, w, b, transposed)); }, {x, w, b});

    mg::nn::ConvTranspose2d<mg::Cpu, double> layer(4, 6, {3, 2}, transposed);
    CHECK(layer.weight.shape() == mg::Shape{4, 3, 3, 2});
    CHECK(layer.bias.shape() == mg::Shape{6});
    for (double value : layer.weight.to_vector()) CHECK(std::abs(value) <= 1.0 / std::sqrt(3.0 * 3 * 2));  // fan_in: 3 out per group x 3 x 2
    CHECK(layer(x).shape() == u.shape());
    CHECK(error_message([&] { mg::conv_transpose2d(x, w, T2{}, {.stride = 2, .output_padding = 2}); }) ==
          "conv_transpose2d: output_padding [2, 2] must be >= 0 and smaller than either stride [2, 2] or dilation [1, 1]");
    CHECK(error_message([&] { mg::conv_transpose2d(random_tensor(mg::Shape{1, 3, 4, 4}, 55), w); }) ==
          "conv_transpose2d: argument #2 'weight' has shape [4, 3, 3, 2]: 4 input channels, but argument #1 'input' of shape [1, 3, 4, 4] has 3");
    CHECK(error_message([&] { mg::conv_transpose2d(random_tensor(mg::Shape{3, 4, 4}, 56), w); }) ==
          "conv_transpose2d: argument #1 'input' has shape [3, 4, 4], expected [N, C, H, W]");
}

TEST_CASE("max_pool2d, avg_pool2d and adaptive_avg_pool2d equal direct pooling; gradients by central differences; the layers; errors") {
    auto x = random_tensor(mg::Shape{2, 3, 7, 6}, 41);
    const auto xv = x.to_vector();
    // kernel 3x2, stride 2x2, padding 1x1: windows reach into the padding
    const auto fixed = [](std::int64_t p, std::int64_t q) {
        return std::array<std::int64_t, 5>{p * 2 - 1, p * 2 - 1 + 3, q * 2 - 1, q * 2 - 1 + 2, 6};
    };
    const auto y = mg::max_pool2d(x, {3, 2}, 2, 1);
    REQUIRE(y.shape() == mg::Shape{2, 3, 4, 4});
    CHECK(y.to_vector() == direct_pool(xv, 6, 7, 6, 4, 4, true, fixed));
    const auto a = mg::avg_pool2d(x, {3, 2}, 2, 1);
    const auto expected_avg = direct_pool(xv, 6, 7, 6, 4, 4, false, fixed);
    const auto av = a.to_vector();
    for (std::size_t i = 0; i < av.size(); ++i) CHECK(av[i] == doctest::Approx(expected_avg[i]).epsilon(1e-12));
    // adaptive to 3x4 from 7x6: windows [floor(p*7/3), ceil((p+1)*7/3)), overlapping
    const auto adaptive = [](std::int64_t p, std::int64_t q) {
        const std::int64_t r0 = p * 7 / 3, r1 = ((p + 1) * 7 + 2) / 3, c0 = q * 6 / 4, c1 = ((q + 1) * 6 + 3) / 4;
        return std::array<std::int64_t, 5>{r0, r1, c0, c1, (r1 - r0) * (c1 - c0)};
    };
    const auto ad = mg::adaptive_avg_pool2d(x, {3, 4});
    REQUIRE(ad.shape() == mg::Shape{2, 3, 3, 4});
    const auto expected_ad = direct_pool(xv, 6, 7, 6, 3, 4, false, adaptive);
    const auto adv = ad.to_vector();
    for (std::size_t i = 0; i < adv.size(); ++i) CHECK(adv[i] == doctest::Approx(expected_ad[i]).epsilon(1e-12));
    CHECK(mg::max_pool2d(x, 2).shape() == mg::Shape{2, 3, 3, 3});  // stride defaults to the kernel
    check_gradients([&] { return weighted(mg::max_pool2d(x, {3, 2}, 2, 1)); }, {x});
    check_gradients([&] { return weighted(mg::avg_pool2d(x, {3, 2}, {1, 2}, {1, 0})); }, {x});
    check_gradients([&] { return weighted(mg::adaptive_avg_pool2d(x, {3, 4})); }, {x});
    // a tie: the gradient goes to the first maximum only, as PyTorch's
    auto ties = tensor({1, 5, 5, 2}, {1, 1, 2, 2}, true);
    mg::sum(mg::max_pool2d(ties, 2)).backward();
    CHECK(ties.grad().to_vector() == std::vector<double>{0, 1, 0, 0});
    // the layers
    CHECK(mg::nn::MaxPool2d(2)(x).shape() == mg::Shape{2, 3, 3, 3});
    CHECK(mg::nn::AvgPool2d(3, 1, 1)(x).shape() == mg::Shape{2, 3, 7, 6});
    CHECK(mg::nn::AdaptiveAvgPool2d(1)(x).shape() == mg::Shape{2, 3, 1, 1});
    CHECK(error_message([&] { mg::max_pool2d(x, 3, 1, 2); }) == "max_pool2d: padding [2, 2] must be >= 0 and at most half the kernel_size [3, 3]");
    CHECK(error_message([&] { mg::avg_pool2d(x, 8); }) ==
          "avg_pool2d: kernel_size [8, 8] is larger than argument #1 'input' of shape [2, 3, 7, 6] padded by [0, 0]");
    CHECK(error_message([&] { mg::adaptive_avg_pool2d(T2::zeros({3, 4, 4}), 2); }) ==
          "adaptive_avg_pool2d: argument #1 'input' has shape [3, 4, 4], expected [N, C, H, W]");
}

// PyTorch's values for dilation, ceil_mode, count_include_pad and divisor_override are in
// test_batch_norm.cpp's goldens; here what they refuse, gradients by differences, and a window
// whose taps all fall in the padding.
TEST_CASE("max_pool2d and avg_pool2d options: gradients by central differences, a window of padding alone, errors") {
    auto x = random_tensor(mg::Shape{1, 2, 6, 7}, 43);
    check_gradients([&] { return weighted(mg::max_pool2d(x, 3, {.stride = 2, .padding = 1, .dilation = {2, 1}, .ceil_mode = true})); }, {x});
    check_gradients([&] { return weighted(mg::avg_pool2d(x, 3, {.stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false})); }, {x});
    // ceil_mode adds a window only where it starts inside the input or its left padding
    CHECK(mg::max_pool2d(x, 2, {.ceil_mode = true}).shape() == mg::Shape{1, 2, 3, 4});
    CHECK(mg::max_pool2d(x, 3, {.stride = 2, .padding = 1, .ceil_mode = true}).shape() == mg::Shape{1, 2, 4, 4});
    // 2 wide, kernel 2 with dilation 3 and padding 1: the one window's taps are columns -1 and 2, both padding
    auto narrow = tensor({1, 2, 3, 4}, {1, 1, 2, 2}, true);
    auto [values, indices] = mg::max_pool2d_with_indices(narrow, 2, {.stride = 1, .padding = 1, .dilation = 3});
    REQUIRE(values.shape() == mg::Shape{1, 1, 1, 1});
    CHECK(values.item() == -std::numeric_limits<double>::infinity());
    CHECK(indices.item() == -1);  // PyTorch 1.13 gives 6, outside the plane
    mg::sum(values).backward();
    CHECK(narrow.grad().to_vector() == std::vector<double>{0, 0, 0, 0});
    CHECK(error_message([&] { mg::max_pool2d(x, 2, {.dilation = {1, 0}}); }) == "max_pool2d: dilation [1, 0] must be positive");
    CHECK(error_message([&] { mg::max_pool2d(x, 3, {.dilation = 4}); }) ==
          "max_pool2d: kernel_size [3, 3] with dilation [4, 4] spans [9, 9], more than argument #1 'input' of shape [1, 2, 6, 7] padded by [0, 0]");
    CHECK(error_message([&] { mg::avg_pool2d(x, 2, {.divisor_override = -1}); }) == "avg_pool2d: divisor_override -1 must be positive (0: none)");
}

// max_pool2d against a direct loop over a grid of geometries: disjoint windows (the one-thread
// paths that go window by window or tap by tap), overlapping ones, padding, dilation, ceil_mode,
// ties and NaNs; values, indices, and the gradient both written (one pooling) and added (two).
TEST_CASE("max_pool2d equals a direct loop over geometries, ties and NaNs: values, indices, gradients written and added") {
    struct Geometry {
        mg::Size2 kernel, stride, padding, dilation;
        bool ceil_mode;
    };
    const Geometry grid[] = {
        {2, 2, 0, 1, false},           {2, 2, 1, 1, false},           {3, 3, 1, 1, true},  {{2, 3}, {2, 3}, 0, 1, true},
        {2, 3, {1, 0}, 2, false},      {3, 2, 1, 1, false},           {3, 1, 1, 1, false}, {{3, 2}, {1, 2}, {1, 1}, {1, 2}, true},
        {{1, 2}, {1, 2}, {0, 1}, 1, false}, {2, {2, 3}, 1, {1, 2}, true},
    };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    auto x = random_tensor(mg::Shape{2, 3, 9, 11}, 61);
    auto xv = x.to_vector();
    for (std::size_t i = 0; i < xv.size(); i += 7) xv[i] = std::round(xv[i] * 2) / 2;  // ties
    xv[5] = nan, xv[40] = nan, xv[41] = nan, xv[300] = nan;
    const std::int64_t planes = 6, h = 9, w = 11;
    for (const auto& gm : grid) {
        const std::vector<std::int64_t> geometry{gm.kernel.h, gm.kernel.w, gm.stride.h,   gm.stride.w,   gm.padding.h,
                                                 gm.padding.w, gm.dilation.h, gm.dilation.w, gm.ceil_mode};
        CAPTURE(geometry);
        const mg::MaxPool2dOptions options{.stride = gm.stride, .padding = gm.padding, .dilation = gm.dilation, .ceil_mode = gm.ceil_mode};
        auto input = T2::from(xv, mg::Shape{2, 3, 9, 11}).requires_grad_();
        auto [y, where] = mg::max_pool2d_with_indices(input, gm.kernel, options);
        const std::int64_t oh = y.size(2), ow = y.size(3);
        auto dy1 = random_tensor(y.shape(), 62), dy2 = random_tensor(y.shape(), 63);
        mg::sum(y * dy1 + mg::max_pool2d(input, gm.kernel, options) * dy2).backward();  // the second pooling's gradient adds
        const auto yv = y.to_vector();
        const auto wv = where.to_vector();
        const auto d1 = dy1.to_vector(), d2 = dy2.to_vector();
        std::vector<double> dx(xv.size(), 0.0);
        for (std::int64_t pl = 0; pl < planes; ++pl)
            for (std::int64_t p = 0; p < oh; ++p)
                for (std::int64_t q = 0; q < ow; ++q) {
                    double best = -std::numeric_limits<double>::infinity();
                    std::int64_t at = -1;
                    for (std::int64_t i = 0; i < gm.kernel.h; ++i)
                        for (std::int64_t j = 0; j < gm.kernel.w; ++j) {
                            const std::int64_t rr = p * gm.stride.h - gm.padding.h + i * gm.dilation.h;
                            const std::int64_t cc = q * gm.stride.w - gm.padding.w + j * gm.dilation.w;
                            if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
                            const double v = xv[static_cast<std::size_t>((pl * h + rr) * w + cc)];
                            if (at < 0 || (!std::isnan(best) && (v > best || std::isnan(v)))) best = v, at = rr * w + cc;
                        }
                    const auto o = static_cast<std::size_t>((pl * oh + p) * ow + q);
                    REQUIRE(wv[o] == at);
                    if (std::isnan(best)) CHECK(std::isnan(yv[o]));
                    else CHECK(yv[o] == best);
                    if (at >= 0) dx[static_cast<std::size_t>(pl * h * w + at)] += d1[o] + d2[o];
                }
        const auto gv = input.grad().to_vector();
        for (std::size_t i = 0; i < dx.size(); ++i) CHECK(gv[i] == doctest::Approx(dx[i]).epsilon(1e-12));
    }
}

}  // namespace test_conv
