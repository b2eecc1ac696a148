// Conv2d, Conv1d and ConvTranspose2d as torch.nn's: weight (out, in / groups, kH, kW) (or kL;
// ConvTranspose2d's is (in, out / groups, kH, kW)) and bias (out), both
// drawn as PyTorch draws them (kaiming_uniform_ with a = sqrt(5), which is uniform in
// +-1/sqrt(fan_in) for the weight, and the same bound for the bias), from minigrad's generator.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "../ops/conv.hpp"
#include "../ops/conv_transpose.hpp"
#include "module.hpp"

namespace minigrad::nn {

namespace detail {
// The sizes every Conv module checks; fan_in is in / groups * the kernel's size.
inline void check_conv_sizes(const char* layer, std::int64_t in, std::int64_t out, std::int64_t kernel_elements, std::int64_t groups) {
    if (in <= 0 || out <= 0 || kernel_elements <= 0 || groups <= 0) {
        minigrad::detail::fail<ValueError>("{}: in_channels={}, out_channels={}, the kernel size and groups={} must all be positive", layer, in,
                                           out, groups);
    }
    if (in % groups != 0 || out % groups != 0) {
        minigrad::detail::fail<ValueError>("{}: groups={} must divide in_channels={} and out_channels={}", layer, groups, in, out);
    }
}
// weight (shape) and bias (bias_size, where with_bias) as PyTorch initialises a convolution's:
// uniform in +-1/sqrt(fan_in), fan_in = the weight's size(1) times its kernel's size (for a
// transposed convolution that is its output channels per group), weight drawn first; left empty
// under skip_init (to<B2>() copies values in).
template <class B, class T>
void init_conv(Tensor<B, T>& weight, Tensor<B, T>& bias, const Shape& shape, std::int64_t bias_size, bool with_bias, Generator& gen) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(shape.numel() / shape[0]));
    const Shape bias_shape{bias_size};
    if (skip_init_flag()) {
        weight = Tensor<B, T>::empty(shape);
        if (with_bias) bias = Tensor<B, T>::empty(bias_shape);
    } else {
        weight = Tensor<B, T>::uniform(shape, -bound, bound, gen);
        if (with_bias) bias = Tensor<B, T>::uniform(bias_shape, -bound, bound, gen);
    }
    weight.requires_grad_();
    if (with_bias) bias.requires_grad_();
}
}  // namespace detail

template <class B, class T = float>
class Conv2d : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (out, in / groups, kH, kW)
    Tensor<B, T> bias;    // (out), undefined without bias

    Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Conv2dOptions options = {}, bool with_bias = true,
           Generator& gen = default_generator())
        : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options), with_bias_(with_bias) {
        detail::check_conv_sizes("Conv2d", in_channels, out_channels, kernel_size.h * kernel_size.w, options.groups);
        if (kernel_size.h <= 0 || kernel_size.w <= 0) minigrad::detail::fail<ValueError>("Conv2d: kernel_size must be positive");
        detail::init_conv(weight, bias, Shape{out_channels, in_channels / options.groups, kernel_size.h, kernel_size.w}, out_channels, with_bias, gen);
    }

    // x is (N, in, H, W), result (N, out, OH, OW)
    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        return conv2d(x, weight, bias, options_);
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }
    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
    }
    template <class B2>
    Conv2d<B2, T> to() const {
        return nn::to<B2>(*this, in_, out_, kernel_, options_, with_bias_);
    }

  private:
    std::int64_t in_, out_;
    Size2 kernel_;
    Conv2dOptions options_;
    bool with_bias_;
};

template <class B, class T = float>
class Conv1d : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (out, in / groups, kL)
    Tensor<B, T> bias;    // (out), undefined without bias

    Conv1d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, Conv1dOptions options = {}, bool with_bias = true,
           Generator& gen = default_generator())
        : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options), with_bias_(with_bias) {
        detail::check_conv_sizes("Conv1d", in_channels, out_channels, kernel_size, options.groups);
        detail::init_conv(weight, bias, Shape{out_channels, in_channels / options.groups, kernel_size}, out_channels, with_bias, gen);
    }

    // x is (N, in, L), result (N, out, OL)
    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        return conv1d(x, weight, bias, options_);
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }
    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
    }
    template <class B2>
    Conv1d<B2, T> to() const {
        return nn::to<B2>(*this, in_, out_, kernel_, options_, with_bias_);
    }

  private:
    std::int64_t in_, out_, kernel_;
    Conv1dOptions options_;
    bool with_bias_;
};

template <class B, class T = float>
class ConvTranspose2d : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (in, out / groups, kH, kW)
    Tensor<B, T> bias;    // (out), undefined without bias

    ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, ConvTranspose2dOptions options = {}, bool with_bias = true,
                    Generator& gen = default_generator())
        : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options), with_bias_(with_bias) {
        detail::check_conv_sizes("ConvTranspose2d", in_channels, out_channels, kernel_size.h * kernel_size.w, options.groups);
        if (kernel_size.h <= 0 || kernel_size.w <= 0) minigrad::detail::fail<ValueError>("ConvTranspose2d: kernel_size must be positive");
        detail::init_conv(weight, bias, Shape{in_channels, out_channels / options.groups, kernel_size.h, kernel_size.w}, out_channels, with_bias, gen);
    }

    // x is (N, in, H, W), result (N, out, OH, OW)
    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        return conv_transpose2d(x, weight, bias, options_);
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }
    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
    }
    template <class B2>
    ConvTranspose2d<B2, T> to() const {
        return nn::to<B2>(*this, in_, out_, kernel_, options_, with_bias_);
    }

  private:
    std::int64_t in_, out_;
    Size2 kernel_;
    ConvTranspose2dOptions options_;
    bool with_bias_;
};

}  // namespace minigrad::nn
