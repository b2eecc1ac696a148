// The losses as layers, as torch.nn's: each holds its options (a designated-initialiser struct,
// every field defaulted as in PyTorch) and calls the functional form of ops/cross_entropy.hpp or ops/loss.hpp.
//   mg::nn::CrossEntropyLoss loss_fn;  // mean over rows, ignore_index -100, no smoothing
//   mg::nn::CrossEntropyLoss smooth({.label_smoothing = 0.1, .reduction = mg::nn::Reduction::Sum});
//   mg::nn::CrossEntropyLoss weighted(class_weights, {.label_smoothing = 0.1});  // weight=, as torch's
#pragma once

#include <memory>
#include <string_view>
#include <type_traits>

#include "../ops/cross_entropy.hpp"
#include "../ops/loss.hpp"

namespace minigrad::nn {

using minigrad::Reduction;

// For the losses whose only option is the reduction (MSELoss, L1Loss).
struct LossOptions {
    Reduction reduction = Reduction::Mean;
};

namespace detail {

// A class-weight tensor of any backend and element type. CrossEntropyLoss and NLLLoss hold one and
// stay plain types, as PyTorch's are (a `nn::CrossEntropyLoss&` parameter, a member with no
// template arguments), where a tensor member would make them templates. The price: a weight on
// another backend or of another element type than the input is an error when the loss is called
// (DeviceError), not when it is compiled.
class ClassWeight {
  public:
    ClassWeight() = default;
    template <class B, class T>
    explicit ClassWeight(const Tensor<B, T>& weight) {
        if (weight.defined()) held_ = std::make_shared<const Held<B, T>>(weight);
    }
    bool defined() const { return held_ != nullptr; }
    // the weight as the input's type (an undefined tensor when there is none)
    template <class B, class T>
    Tensor<B, T> as(std::string_view op) const {
        if (!held_) return {};
        if (const auto* held = dynamic_cast<const Held<B, T>*>(held_.get())) return held->weight;
        minigrad::detail::fail<DeviceError>(
            "{}: its class weight is a tensor on {} of {} and the input one on {} of {}; make the loss with the weight on the "
            "input's backend and element type (weight.to<mg::{}>())",
            op, held_->backend(), held_->dtype(), B::name, minigrad::detail::scalar_type_name<T>(), B::name);
    }

  private:
    struct Base {
        virtual ~Base() = default;
        virtual std::string_view backend() const = 0;
        virtual std::string_view dtype() const = 0;
    };
    template <class B, class T>
    struct Held final : Base {
        Tensor<B, T> weight;
        explicit Held(const Tensor<B, T>& w) : weight(w) {}
        std::string_view backend() const override { return B::name; }
        std::string_view dtype() const override { return minigrad::detail::scalar_type_name<T>(); }
    };
    std::shared_ptr<const Base> held_;
};

}  // namespace detail

// weight (classes), as torch.nn.CrossEntropyLoss(weight=...): the tensor is shared, not copied, and
// must be on the input's backend with its element type (checked at the call).
struct CrossEntropyLoss {
    CrossEntropyOptions options;
    detail::ClassWeight weight;
    CrossEntropyLoss() = default;
    CrossEntropyLoss(const CrossEntropyOptions& o) : options(o) {}
    template <class B, class T>
    explicit CrossEntropyLoss(const Tensor<B, T>& class_weight, const CrossEntropyOptions& o = {}) : options(o), weight(class_weight) {}
    // logits is (rows, classes) or (rows, classes, d...), target (rows) or (rows, d...) class
    // indices; result () or target's shape for None
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& logits, const Tensor<BB, L>& target) const {
        if constexpr (std::is_same_v<BA, BB>) {
            if (weight.defined()) return cross_entropy(logits, target, weight.as<BA, T>("CrossEntropyLoss"), options);
        }
        return cross_entropy(logits, target, options);
    }
};

// weight (classes), as torch.nn.NLLLoss(weight=...), held as CrossEntropyLoss holds it
struct NLLLoss {
    NllLossOptions options;
    detail::ClassWeight weight;
    NLLLoss() = default;
    NLLLoss(const NllLossOptions& o) : options(o) {}
    template <class B, class T>
    explicit NLLLoss(const Tensor<B, T>& class_weight, const NllLossOptions& o = {}) : options(o), weight(class_weight) {}
    // input is (rows, classes) log-probabilities, target is (rows) class indices
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& input, const Tensor<BB, L>& target) const {
        if constexpr (std::is_same_v<BA, BB>) {
            if (weight.defined()) return nll_loss(input, target, weight.as<BA, T>("NLLLoss"), options);
        }
        return nll_loss(input, target, options);
    }
};

struct MSELoss {
    LossOptions options;
    MSELoss() = default;
    MSELoss(const LossOptions& o) : options(o) {}
    template <class BA, class TA, class BB, class TB>
    auto operator()(const Tensor<BA, TA>& input, const Tensor<BB, TB>& target) const {
        return mse_loss(input, target, options.reduction);
    }
};

struct L1Loss {
    LossOptions options;
    L1Loss() = default;
    L1Loss(const LossOptions& o) : options(o) {}
    template <class BA, class TA, class BB, class TB>
    auto operator()(const Tensor<BA, TA>& input, const Tensor<BB, TB>& target) const {
        return l1_loss(input, target, options.reduction);
    }
};

// With no pos_weight, as PyTorch's nn.BCEWithLogitsLoss(), the loss needs no backend and takes any
// backend's tensors; its only option is then the reduction:
//   mg::nn::BCEWithLogitsLoss loss_fn;
//   mg::nn::BCEWithLogitsLoss summed({.reduction = mg::nn::Reduction::Sum});
// A pos_weight tensor puts it on that tensor's backend B and element type T, so that an input on
// another backend is a compile error:
//   mg::nn::BCEWithLogitsLoss<mg::Cpu> loss_fn({.pos_weight = weights});
template <class B = void, class T = float>
struct BCEWithLogitsLoss {
    using Options = std::conditional_t<std::is_void_v<B>, LossOptions, BceWithLogitsOptions<B, T>>;
    Options options;
    BCEWithLogitsLoss() = default;
    BCEWithLogitsLoss(const Options& o) : options(o) {}
    template <class BA, class TA, class BB, class TB>
    auto operator()(const Tensor<BA, TA>& input, const Tensor<BB, TB>& target) const {
        if constexpr (std::is_void_v<B>) {
            return binary_cross_entropy_with_logits(input, target, {.reduction = options.reduction});
        } else if constexpr (minigrad::detail::Mixed<B, T, BA, TA>) {
            minigrad::detail::reject_mix<B, T, BA, TA, 1>();  // input against pos_weight; first, so its message leads
            return Tensor<BA, TA>{};
        } else {
            return binary_cross_entropy_with_logits(input, target, options);
        }
    }
};
// Options that hold a pos_weight name its backend: BCEWithLogitsLoss bce(options) is on it.
template <class B, class T>
BCEWithLogitsLoss(const BceWithLogitsOptions<B, T>&) -> BCEWithLogitsLoss<B, T>;

}  // namespace minigrad::nn
