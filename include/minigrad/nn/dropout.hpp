// Dropout(p) as torch.nn.Dropout: zeroes elements with probability p and scales the rest by
// 1/(1-p) in training mode, the identity in eval mode. No parameters and no backend: it works on
// any tensor and moves between backends as it is, keeping p and its mode.
#pragma once

#include <string>

#include "../ops/dropout.hpp"
#include "module.hpp"

namespace minigrad::nn {

class Dropout {
  public:
    // The mask comes from `gen` (the default generator unless given), which must outlive the layer.
    explicit Dropout(double p = 0.5, Generator& gen = default_generator()) : p_(p), gen_(&gen) {
        minigrad::detail::check_dropout_p("Dropout", p);
    }

    template <class B, class T>
    Tensor<B, T> forward(const Tensor<B, T>& x) const {
        return dropout(x, p_, training_, *gen_);
    }
    template <class B, class T>
    Tensor<B, T> operator()(const Tensor<B, T>& x) const {
        return forward(x);
    }

    double p() const { return p_; }
    Dropout& train(bool on = true) {
        training_ = on;
        return *this;
    }
    Dropout& eval() { return train(false); }
    bool is_training() const { return training_; }

    // How a containing module's train()/eval() and to<B2>() reach this layer's mode.
    void visit_modules(ModuleVisitor& visitor, const std::string& prefix) { visitor.module(prefix, training_); }

  private:
    double p_;
    bool training_ = true;
    Generator* gen_;
};

}  // namespace minigrad::nn
