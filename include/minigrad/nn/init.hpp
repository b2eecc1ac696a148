// torch.nn.init's in-place initialisers, with PyTorch's names, defaults and fan rules:
//   uniform_, normal_, constant_, zeros_, ones_, xavier_uniform_, xavier_normal_,
//   kaiming_uniform_, kaiming_normal_, and calculate_gain.
// Each writes its tensor in place (no gradient is recorded, as under torch.no_grad()) and returns
// it; the random ones draw from `gen` (the default generator unless given). fan_in and fan_out are
// PyTorch's: size(1) and size(0) times the product of the dims after the second (the receptive
// field); a tensor of fewer than 2 dims has no fans and is refused by the fan-based initialisers.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>

#include "../random.hpp"
#include "../tensor.hpp"

namespace minigrad::nn::init {

// torch.nn.init.calculate_gain: linear, conv1d, conv2d, sigmoid: 1; tanh: 5/3; relu: sqrt(2);
// leaky_relu: sqrt(2 / (1 + param^2)) (param the negative slope, 0.01 where not given); selu: 3/4.
inline double calculate_gain(std::string_view nonlinearity, double param = 0.01) {
    if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" || nonlinearity == "conv3d" || nonlinearity == "sigmoid" ||
        nonlinearity == "conv_transpose1d" || nonlinearity == "conv_transpose2d" || nonlinearity == "conv_transpose3d") {
        return 1.0;
    }
    if (nonlinearity == "tanh") return 5.0 / 3.0;
    if (nonlinearity == "relu") return std::sqrt(2.0);
    if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
    if (nonlinearity == "selu") return 3.0 / 4.0;
    minigrad::detail::fail<ValueError>("calculate_gain: unsupported nonlinearity '{}' (linear, conv1d, conv2d, sigmoid, tanh, relu, leaky_relu, selu)",
                                       nonlinearity);
}

namespace detail {
inline std::pair<double, double> fans(const char* fn, const Shape& shape) {
    if (shape.ndim() < 2) {
        minigrad::detail::fail<ValueError>("{}: fan in and fan out cannot be computed for a tensor of shape {} (fewer than 2 dims)", fn, shape);
    }
    double receptive = 1;
    for (int d = 2; d < shape.ndim(); ++d) receptive *= static_cast<double>(shape[d]);
    return {static_cast<double>(shape[1]) * receptive, static_cast<double>(shape[0]) * receptive};
}
inline double kaiming_fan(const char* fn, const Shape& shape, std::string_view mode) {
    const auto [fan_in, fan_out] = fans(fn, shape);
    if (mode == "fan_in") return fan_in;
    if (mode == "fan_out") return fan_out;
    minigrad::detail::fail<ValueError>("{}: mode '{}' is not 'fan_in' or 'fan_out'", fn, mode);
}
template <class B, class T>
Tensor<B, T>& assign(const char* fn, Tensor<B, T>& t, const Tensor<B, T>& values) {
    if (!t.defined()) minigrad::detail::fail<Error>("{}: the tensor is undefined (default-constructed)", fn);
    NoGradGuard no_grad;
    t.copy_(values);
    return t;
}
}  // namespace detail

template <class B, class T>
Tensor<B, T>& uniform_(Tensor<B, T>& t, double a = 0.0, double b = 1.0, Generator& gen = default_generator()) {
    if (!t.defined()) minigrad::detail::fail<Error>("uniform_: the tensor is undefined (default-constructed)");
    return detail::assign("uniform_", t, Tensor<B, T>::uniform(t.shape(), a, b, gen, t.device()));
}
template <class B, class T>
Tensor<B, T>& normal_(Tensor<B, T>& t, double mean = 0.0, double std = 1.0, Generator& gen = default_generator()) {
    if (!t.defined()) minigrad::detail::fail<Error>("normal_: the tensor is undefined (default-constructed)");
    if (!(std >= 0) || !std::isfinite(std) || !std::isfinite(mean)) {
        minigrad::detail::fail<ValueError>("normal_: mean={} and std={} must be finite, std >= 0", mean, std);
    }
    auto values = Tensor<B, T>::randn(t.shape(), gen, t.device());
    NoGradGuard no_grad;
    return detail::assign("normal_", t, values * static_cast<T>(std) + static_cast<T>(mean));
}
template <class B, class T>
Tensor<B, T>& constant_(Tensor<B, T>& t, double value) {
    if (!t.defined()) minigrad::detail::fail<Error>("constant_: the tensor is undefined (default-constructed)");
    return detail::assign("constant_", t, Tensor<B, T>::full(t.shape(), static_cast<T>(value), t.device()));
}
template <class B, class T>
Tensor<B, T>& zeros_(Tensor<B, T>& t) {
    return constant_(t, 0.0);
}
template <class B, class T>
Tensor<B, T>& ones_(Tensor<B, T>& t) {
    return constant_(t, 1.0);
}

// uniform in +-gain sqrt(6 / (fan_in + fan_out))
template <class B, class T>
Tensor<B, T>& xavier_uniform_(Tensor<B, T>& t, double gain = 1.0, Generator& gen = default_generator()) {
    const auto [fan_in, fan_out] = detail::fans("xavier_uniform_", t.shape());
    if (t.numel() == 0) return t;  // as PyTorch: a no-op on an empty tensor
    const double bound = gain * std::sqrt(6.0 / (fan_in + fan_out));
    return uniform_(t, -bound, bound, gen);
}
// normal with std gain sqrt(2 / (fan_in + fan_out))
template <class B, class T>
Tensor<B, T>& xavier_normal_(Tensor<B, T>& t, double gain = 1.0, Generator& gen = default_generator()) {
    const auto [fan_in, fan_out] = detail::fans("xavier_normal_", t.shape());
    if (t.numel() == 0) return t;
    return normal_(t, 0.0, gain * std::sqrt(2.0 / (fan_in + fan_out)), gen);
}
// uniform in +-gain sqrt(3 / fan), gain = calculate_gain(nonlinearity, a); a = sqrt(5) is what
// Linear and Conv use for their weights
template <class B, class T>
Tensor<B, T>& kaiming_uniform_(Tensor<B, T>& t, double a = 0.0, std::string_view mode = "fan_in", std::string_view nonlinearity = "leaky_relu",
                               Generator& gen = default_generator()) {
    const double fan = detail::kaiming_fan("kaiming_uniform_", t.shape(), mode);
    if (t.numel() == 0) return t;
    const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan);
    return uniform_(t, -bound, bound, gen);
}
// normal with std gain / sqrt(fan)
template <class B, class T>
Tensor<B, T>& kaiming_normal_(Tensor<B, T>& t, double a = 0.0, std::string_view mode = "fan_in", std::string_view nonlinearity = "leaky_relu",
                              Generator& gen = default_generator()) {
    const double fan = detail::kaiming_fan("kaiming_normal_", t.shape(), mode);
    if (t.numel() == 0) return t;
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan), gen);
}

}  // namespace minigrad::nn::init
