// LayerNorm(normalized_shape) as torch.nn.LayerNorm over the last dimension, with an elementwise
// affine weight (initialised to 1) and bias (to 0), eps = 1e-5 unless given.
#pragma once

#include <cstdint>

#include "../ops/layer_norm.hpp"
#include "module.hpp"

namespace minigrad::nn {

template <class B, class T = float>
class LayerNorm : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (normalized_shape)
    Tensor<B, T> bias;    // (normalized_shape)

    explicit LayerNorm(std::int64_t normalized_shape, double eps = 1e-5) : eps_(eps) {
        if (normalized_shape <= 0) {
            minigrad::detail::fail<ValueError>("LayerNorm: normalized_shape={} must be positive", normalized_shape);
        }
        minigrad::detail::check_positive<T>("LayerNorm", "eps", eps);
        weight = Tensor<B, T>::ones(Shape{normalized_shape});
        bias = Tensor<B, T>::zeros(Shape{normalized_shape});
        weight.requires_grad_();
        bias.requires_grad_();
    }

    std::int64_t normalized_shape() const { return weight.numel(); }
    double eps() const { return eps_; }

    // x is (..., normalized_shape), the result has x's shape
    template <class BX, class TX>
    auto forward(const Tensor<BX, TX>& x) const {
        return layer_norm(x, weight, bias, eps_);
    }
    template <class BX, class TX>
    auto operator()(const Tensor<BX, TX>& x) const {
        return forward(x);
    }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight, bias", weight, bias);
    }

    template <class B2>
    LayerNorm<B2, T> to() const {
        return nn::to<B2>(*this, normalized_shape(), eps_);
    }

  private:
    double eps_;
};

}  // namespace minigrad::nn
