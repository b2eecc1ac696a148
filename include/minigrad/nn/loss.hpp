// The losses as layers, as torch.nn's: each holds its options (a designated-initialiser struct,
// every field defaulted as in PyTorch) and calls the functional form of ops/cross_entropy.hpp or ops/loss.hpp.
//   mg::nn::CrossEntropyLoss loss_fn;  // mean over rows, ignore_index -100, no smoothing
//   mg::nn::CrossEntropyLoss smooth({.label_smoothing = 0.1, .reduction = mg::nn::Reduction::Sum});
#pragma once

#include <type_traits>

#include "../ops/cross_entropy.hpp"
#include "../ops/loss.hpp"

namespace minigrad::nn {

using minigrad::Reduction;

// For the losses whose only option is the reduction (MSELoss, L1Loss).
struct LossOptions {
    Reduction reduction = Reduction::Mean;
};

struct CrossEntropyLoss {
    CrossEntropyOptions options;
    CrossEntropyLoss() = default;
    CrossEntropyLoss(const CrossEntropyOptions& o) : options(o) {}
    // logits is (rows, classes), target is (rows) class indices; result () or (rows) for None
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& logits, const Tensor<BB, L>& target) const {
        return cross_entropy(logits, target, options);
    }
};

struct NLLLoss {
    NllLossOptions options;
    NLLLoss() = default;
    NLLLoss(const NllLossOptions& o) : options(o) {}
    // input is (rows, classes) log-probabilities, target is (rows) class indices
    template <class BA, class T, class BB, class L>
    auto operator()(const Tensor<BA, T>& input, const Tensor<BB, L>& target) const {
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
