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
// What every convolution layer holds and does: weight and bias, a forward through its functional
// form (Op: a functor taking x, weight, bias and the options), the parameter visit, and the
// constructor arguments to<B2>() rebuilds it with (rebuilt<Layer, B2>(), for each layer's to<B2>()).
template <class B, class T, class Options, class Kernel, class Op>
class ConvLayer : public Module<B, T> {
  public:
    Tensor<B, T> weight;
    Tensor<B, T> bias;  // (out), undefined without bias

    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        return Op{}(x, weight, bias, options_);
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }
    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
    }

  protected:
    // Checks the sizes, then draws the weight of weight_shape() (the layer's, PyTorch's, layout;
    // fan_in is its size(1) times the kernel's size) and the bias.
    template <class WeightShape>
    ConvLayer(const char* layer, std::int64_t in, std::int64_t out, Kernel kernel, std::int64_t kernel_elements, bool kernel_positive, Options options,
              bool with_bias, const WeightShape& weight_shape, Generator& gen)
        : in_(in), out_(out), kernel_(kernel), options_(options), with_bias_(with_bias) {
        check_conv_sizes(layer, in, out, kernel_elements, options.groups);
        if (!kernel_positive) minigrad::detail::fail<ValueError>("{}: kernel_size must be positive", layer);
        init_conv(weight, bias, weight_shape(), out, with_bias, gen);
    }
    template <class Layer, class B2>
    auto rebuilt() const {
        return nn::to<B2>(static_cast<const Layer&>(*this), in_, out_, kernel_, options_, with_bias_);
    }

  private:
    std::int64_t in_, out_;
    Kernel kernel_;
    Options options_;
    bool with_bias_;
};

struct Conv2dOp {
    template <class X, class W>
    auto operator()(const X& x, const W& weight, const W& bias, const Conv2dOptions& options) const {
        return conv2d(x, weight, bias, options);
    }
};
struct Conv1dOp {
    template <class X, class W>
    auto operator()(const X& x, const W& weight, const W& bias, const Conv1dOptions& options) const {
        return conv1d(x, weight, bias, options);
    }
};
struct ConvTranspose2dOp {
    template <class X, class W>
    auto operator()(const X& x, const W& weight, const W& bias, const ConvTranspose2dOptions& options) const {
        return conv_transpose2d(x, weight, bias, options);
    }
};

}  // namespace detail

// weight (out, in / groups, kH, kW); x is (N, in, H, W), the result (N, out, OH, OW)
template <class B, class T = float>
class Conv2d : public detail::ConvLayer<B, T, Conv2dOptions, Size2, detail::Conv2dOp> {
  public:
    Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, Conv2dOptions options = {}, bool with_bias = true,
           Generator& gen = default_generator())
        : detail::ConvLayer<B, T, Conv2dOptions, Size2, detail::Conv2dOp>(
              "Conv2d", in_channels, out_channels, kernel_size, kernel_size.h * kernel_size.w, kernel_size.h > 0 && kernel_size.w > 0, options,
              with_bias, [&] { return Shape{out_channels, in_channels / options.groups, kernel_size.h, kernel_size.w}; }, gen) {}
    template <class B2>
    Conv2d<B2, T> to() const {
        return this->template rebuilt<Conv2d, B2>();
    }
};

// weight (out, in / groups, kL); x is (N, in, L), the result (N, out, OL)
template <class B, class T = float>
class Conv1d : public detail::ConvLayer<B, T, Conv1dOptions, std::int64_t, detail::Conv1dOp> {
  public:
    Conv1d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, Conv1dOptions options = {}, bool with_bias = true,
           Generator& gen = default_generator())
        : detail::ConvLayer<B, T, Conv1dOptions, std::int64_t, detail::Conv1dOp>(
              "Conv1d", in_channels, out_channels, kernel_size, kernel_size, true, options, with_bias,
              [&] { return Shape{out_channels, in_channels / options.groups, kernel_size}; }, gen) {}
    template <class B2>
    Conv1d<B2, T> to() const {
        return this->template rebuilt<Conv1d, B2>();
    }
};

// weight (in, out / groups, kH, kW); x is (N, in, H, W), the result (N, out, OH, OW)
template <class B, class T = float>
class ConvTranspose2d : public detail::ConvLayer<B, T, ConvTranspose2dOptions, Size2, detail::ConvTranspose2dOp> {
  public:
    ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size, ConvTranspose2dOptions options = {}, bool with_bias = true,
                    Generator& gen = default_generator())
        : detail::ConvLayer<B, T, ConvTranspose2dOptions, Size2, detail::ConvTranspose2dOp>(
              "ConvTranspose2d", in_channels, out_channels, kernel_size, kernel_size.h * kernel_size.w, kernel_size.h > 0 && kernel_size.w > 0,
              options, with_bias, [&] { return Shape{in_channels, out_channels / options.groups, kernel_size.h, kernel_size.w}; }, gen) {}
    template <class B2>
    ConvTranspose2d<B2, T> to() const {
        return this->template rebuilt<ConvTranspose2d, B2>();
    }
};

}  // namespace minigrad::nn
