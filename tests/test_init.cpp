// nn::init (nn/init.hpp): each initialiser's bounds and moments on a large tensor, PyTorch's fans
// and gains, the layers' default rule as kaiming_uniform_(a = sqrt(5)), and the errors.
#include <cmath>
#include <vector>

#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_init {

namespace init = mg::nn::init;

struct Moments {
    double mean = 0, std = 0, lo = INFINITY, hi = -INFINITY;
};
static Moments moments(const mg::Tensor<mg::Cpu>& t) {
    Moments m;
    const auto v = t.to_vector();
    for (float x : v) m.mean += x, m.lo = std::min(m.lo, double(x)), m.hi = std::max(m.hi, double(x));
    m.mean /= static_cast<double>(v.size());
    for (float x : v) m.std += (x - m.mean) * (x - m.mean);
    m.std = std::sqrt(m.std / static_cast<double>(v.size()));
    return m;
}

TEST_CASE("nn::init: bounds and moments as torch.nn.init's, with PyTorch's fans and gains") {
    mg::Generator gen(3);
    auto w = mg::Tensor<mg::Cpu>::empty({64, 32, 3, 3});  // fan_in 288, fan_out 576
    w.requires_grad_();
    const double fan_in = 32 * 9, fan_out = 64 * 9;

    init::kaiming_uniform_(w, 0.0, "fan_in", "relu", gen);
    auto m = moments(w);
    const double bound = std::sqrt(2.0) * std::sqrt(3.0 / fan_in);
    CHECK(m.lo >= -bound);
    CHECK(m.hi <= bound);
    CHECK(m.hi > 0.99 * bound);
    CHECK(m.std == doctest::Approx(std::sqrt(2.0 / fan_in)).epsilon(0.02));
    CHECK(w.requires_grad());  // still a parameter, and no graph was recorded
    CHECK(w.impl().grad_fn == nullptr);

    init::kaiming_normal_(w, 0.0, "fan_out", "relu", gen);
    m = moments(w);
    CHECK(std::abs(m.mean) < 0.002);
    CHECK(m.std == doctest::Approx(std::sqrt(2.0 / fan_out)).epsilon(0.02));

    init::xavier_uniform_(w, 2.0, gen);
    m = moments(w);
    CHECK(m.hi <= 2.0 * std::sqrt(6.0 / (fan_in + fan_out)));
    CHECK(m.std == doctest::Approx(2.0 * std::sqrt(2.0 / (fan_in + fan_out))).epsilon(0.02));
    init::xavier_normal_(w, 1.0, gen);
    CHECK(moments(w).std == doctest::Approx(std::sqrt(2.0 / (fan_in + fan_out))).epsilon(0.02));
    init::normal_(w, 3.0, 0.5, gen);
    m = moments(w);
    CHECK(m.mean == doctest::Approx(3.0).epsilon(0.005));
    CHECK(m.std == doctest::Approx(0.5).epsilon(0.02));
    init::uniform_(w, -2.0, -1.0, gen);
    m = moments(w);
    CHECK(m.lo >= -2.0);
    CHECK(m.hi < -1.0);
    init::zeros_(w);
    CHECK(moments(w).hi == 0.0);
    init::ones_(w);
    CHECK(moments(w).lo == 1.0);
    init::constant_(w, 0.25);
    CHECK(moments(w).mean == 0.25);

    CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
    CHECK(init::calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
    CHECK(init::calculate_gain("conv2d") == 1.0);
    CHECK(init::calculate_gain("selu") == 0.75);
}

TEST_CASE("nn::init: Conv2d's default weight is kaiming_uniform_ with a = sqrt(5), drawn the same way") {
    mg::Generator a(5), b(5);
    mg::nn::Conv2d<mg::Cpu> conv(4, 6, 3, {}, true, a);
    auto w = mg::Tensor<mg::Cpu>::empty({6, 4, 3, 3});
    init::kaiming_uniform_(w, std::sqrt(5.0), "fan_in", "leaky_relu", b);
    CHECK(w.to_vector() == conv.weight.to_vector());
}

TEST_CASE("nn::init: errors name the initialiser; empty tensors are left as they are") {
    auto v = mg::Tensor<mg::Cpu>::zeros({5});
    CHECK(error_message([&] { init::xavier_uniform_(v); }) ==
          "xavier_uniform_: fan in and fan out cannot be computed for a tensor of shape [5] (fewer than 2 dims)");
    auto w = mg::Tensor<mg::Cpu>::zeros({3, 2});
    CHECK(error_message([&] { init::kaiming_normal_(w, 0.0, "fan_middle"); }) == "kaiming_normal_: mode 'fan_middle' is not 'fan_in' or 'fan_out'");
    CHECK(error_message([&] { init::kaiming_uniform_(w, 0.0, "fan_in", "swish"); }) ==
          "calculate_gain: unsupported nonlinearity 'swish' (linear, conv1d, conv2d, sigmoid, tanh, relu, leaky_relu, selu)");
    CHECK(error_message([&] { init::normal_(w, 0.0, -1.0); }) == "normal_: mean=0 and std=-1 must be finite, std >= 0");
    mg::Tensor<mg::Cpu> undefined;
    CHECK(error_message([&] { init::zeros_(undefined); }) == "constant_: the tensor is undefined (default-constructed)");
    auto empty = mg::Tensor<mg::Cpu>::zeros({0, 3});
    CHECK(init::kaiming_uniform_(empty).numel() == 0);
}

}  // namespace test_init
