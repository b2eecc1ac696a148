// Linear: y = x weight^T + bias, weight (out, in) as in PyTorch.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <type_traits>

#include "../ops/matmul.hpp"
#include "activation.hpp"
#include "module.hpp"

namespace minigrad::nn {

// An activation layer (activation.hpp) that a product takes as its epilogue: these exact types,
// not a layer derived from one (its own forward must run).
template <class Act, class T>
concept EpilogueActivation =
    (std::same_as<Act, ReLU> || std::same_as<Act, Tanh> || std::same_as<Act, Sigmoid> || std::same_as<Act, GELU>) &&
    kernels::product_epilogue<typename Act::template rule<T>>;

template <class B, class T = float>
class Linear : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (out, in)
    Tensor<B, T> bias;    // (out), undefined without bias

    // Initialised as torch.nn.Linear: weight and bias uniform in +-1/sqrt(in), weight drawn first,
    // from minigrad's generator, so one seed gives the same layer on every backend.
    Linear(std::int64_t in_features, std::int64_t out_features, bool with_bias = true,
           Generator& gen = default_generator())
        : in_(in_features), out_(out_features), with_bias_(with_bias) {
        if (in_features <= 0 || out_features <= 0) {
            minigrad::detail::fail<ValueError>("Linear: in_features={} and out_features={} must both be positive",
                                               in_features, out_features);
        }
        const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
        if (detail::skip_init_flag()) {
            weight = Tensor<B, T>::empty(Shape{out_features, in_features});
            if (with_bias) bias = Tensor<B, T>::empty(Shape{out_features});
        } else {
            weight = Tensor<B, T>::uniform(Shape{out_features, in_features}, -bound, bound, gen);
            if (with_bias) bias = Tensor<B, T>::uniform(Shape{out_features}, -bound, bound, gen);
        }
        weight.requires_grad_();
        if (with_bias) bias.requires_grad_();
    }

    std::int64_t in_features() const { return in_; }
    std::int64_t out_features() const { return out_; }

    // x is (..., in), result is (..., out)
    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        return with_bias_ ? linear(x, weight, bias) : linear(x, weight);
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }
    // act(forward(x)) with the activation (ReLU, Tanh, Sigmoid, GELU) as the product's epilogue: one
    // launch, not two, and the same values and gradients. Sequential does this for a Linear followed
    // by one of them.
    template <class BX, class TX, class Act>
        requires EpilogueActivation<Act, TX>
    auto forward(const Tensor<BX, TX>& x, const Act& act) const {
        if constexpr (!std::is_same_v<BX, B> || !std::is_same_v<TX, T>)
            return act(forward(x));  // linear's own error for the mix
        else
            return minigrad::detail::linear_then(x, weight, bias, act.template kernel_rule<T>());
    }
    template <class BX, class TX, class Act>
        requires EpilogueActivation<Act, TX>
    auto operator()(const Tensor<BX, TX>& x, const Act& act) const {
        return forward(x, act);
    }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
    }

    // The same layer on backend B2: sizes from this one, values and mode copied.
    template <class B2>
    Linear<B2, T> to() const {
        return nn::to<B2>(*this, in_, out_, with_bias_);
    }

  private:
    std::int64_t in_, out_;
    bool with_bias_;
};

template <class L>
inline constexpr bool is_linear = false;
template <class B, class T>
inline constexpr bool is_linear<Linear<B, T>> = true;

}  // namespace minigrad::nn
