// The losses as layers, as torch.nn's: each holds its options (a designated-initialiser struct,
// every field defaulted as in PyTorch) and calls the functional form of ops/cross_entropy.hpp or ops/loss.hpp.
//   mg::nn::CrossEntropyLoss loss_fn;  // mean over rows, ignore_index -100, no smoothing
//   mg::nn::CrossEntropyLoss smooth({.label_smoothing = 0.1, .reduction = mg::nn::Reduction::Sum});
//   mg::nn::CrossEntropyLoss weighted(class_weights, {.label_smoothing = 0.1});  // weight=, as torch's
#pragma once

#include <cstdint>
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

// A class-weight tensor of any backend and element type, and the weighted form of a loss for it.
// CrossEntropyLoss and NLLLoss hold one and stay plain types, as PyTorch's are (a
// `nn::CrossEntropyLoss&` parameter, a member with no template arguments), where a tensor member
// would make them templates. The price: a weight on another backend or of another element type than
// the input is an error when the loss is called (DeviceError), not when it is compiled.
// The weighted form (a dozen ops) is compiled where a weight is given, for int64 and int32 labels
// (function pointers taken by the constructor); a call compiles it only for other label types, so
// that a loss with no weight costs its users no compile time.
template <class Weighted, class Options>
class ClassWeight {
  public:
    ClassWeight() = default;
    template <class B, class T>
    explicit ClassWeight(const Tensor<B, T>& weight) {
        if (weight.defined()) held_ = std::make_shared<const Held<B, T>>(weight);
    }
    bool defined() const { return held_ != nullptr; }
    // the weighted loss of x (the input) and target
    template <class B, class T, class L>
    Tensor<B, T> apply(std::string_view op, const Tensor<B, T>& x, const Tensor<B, L>& target, const Options& options) const {
        const auto* held = dynamic_cast<const Held<B, T>*>(held_.get());
        if (!held) {
            minigrad::detail::fail<DeviceError>(
                "{}: its class weight is a tensor on {} of {} and the input one on {} of {}; make the loss with the weight on the "
                "input's backend and element type (weight.to<mg::{}>())",
                op, held_->backend(), held_->dtype(), B::name, minigrad::detail::scalar_type_name<T>(), B::name);
        }
        if constexpr (std::is_same_v<L, std::int64_t>) return held->with_int64(x, target, held->weight, options);
        else if constexpr (std::is_same_v<L, std::int32_t>) return held->with_int32(x, target, held->weight, options);
        else return Weighted::call(x, target, held->weight, options);
    }

  private:
    struct Base {
        virtual ~Base() = default;
        virtual std::string_view backend() const = 0;
        virtual std::string_view dtype() const = 0;
    };
    template <class B, class T, class L>
    using Form = Tensor<B, T> (*)(const Tensor<B, T>&, const Tensor<B, L>&, const Tensor<B, T>&, const Options&);
    template <class B, class T>
    struct Held final : Base {
        Tensor<B, T> weight;
        Form<B, T, std::int64_t> with_int64 = &Weighted::template call<B, T, std::int64_t>;
        Form<B, T, std::int32_t> with_int32 = &Weighted::template call<B, T, std::int32_t>;
        explicit Held(const Tensor<B, T>& w) : weight(w) {}
        std::string_view backend() const override { return B::name; }
        std::string_view dtype() const override { return minigrad::detail::scalar_type_name<T>(); }
    };
    std::shared_ptr<const Base> held_;
};

struct WeightedCrossEntropy {
    template <class B, class T, class L>
    static Tensor<B, T> call(const Tensor<B, T>& x, const Tensor<B, L>& target, const Tensor<B, T>& weight, const CrossEntropyOptions& options) {
        return cross_entropy(x, target, weight, options);
    }
};
struct WeightedNllLoss {
    template <class B, class T, class L>
    static Tensor<B, T> call(const Tensor<B, T>& x, const Tensor<B, L>& target, const Tensor<B, T>& weight, const NllLossOptions& options) {
        return nll_loss(x, target, weight, options);
    }
};

}  // namespace detail

// weight (classes), as torch.nn.CrossEntropyLoss(weight=...): the tensor is shared, not copied, and
// must be on the input's backend with its element type (checked at the call).
struct CrossEntropyLoss {
    CrossEntropyOptions options;
    detail::ClassWeight<detail::WeightedCrossEntropy, CrossEntropyOptions> weight;
    CrossEntropyLoss() = default;
    CrossEntropyLoss(const CrossEntropyOptions& o) : options(o) {}
    template <class B, class T>
    explicit CrossEntropyLoss(const Tensor<B, T>& class_weight, const CrossEntropyOptions& o = {}) : options(o), weight(class_weight) {}
    // logits is (rows, classes) or (rows, classes, d...), target (rows) or (rows, d...) class
    // indices; result () or target's shape for None
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& logits, const Tensor<BB, L>& target) const {
        if constexpr (std::is_same_v<BA, BB>) {
            if (weight.defined()) return weight.apply("CrossEntropyLoss", logits, target, options);
        }
        return cross_entropy(logits, target, options);
    }
};

// weight (classes), as torch.nn.NLLLoss(weight=...), held as CrossEntropyLoss holds it
struct NLLLoss {
    NllLossOptions options;
    detail::ClassWeight<detail::WeightedNllLoss, NllLossOptions> weight;
    NLLLoss() = default;
    NLLLoss(const NllLossOptions& o) : options(o) {}
    template <class B, class T>
    explicit NLLLoss(const Tensor<B, T>& class_weight, const NllLossOptions& o = {}) : options(o), weight(class_weight) {}
    // input is (rows, classes) log-probabilities, target is (rows) class indices
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& input, const Tensor<BB, L>& target) const {
        if constexpr (std::is_same_v<BA, BB>) {
            if (weight.defined()) return weight.apply("NLLLoss", input, target, options);
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
