// Checks every optimizer makes where its settings and parameters enter: a hyper-parameter must be
// a finite number that the parameters' element type can hold (1e39 is finite as a double but
// infinite as a float), and each parameter is defined and listed once.
#pragma once

#include <cmath>
#include <limits>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../tensor.hpp"

namespace minigrad::optim::detail {

template <class T>
constexpr std::string_view type_name() {
    return sizeof(T) == 4 ? "float" : "double";
}

// value must be finite, finite as T, not a non-zero that T rounds to 0 (lr=1e-46 as a float
// would train with lr 0 silently; a subnormal result is kept), and at least `lo`.
template <class T>
void check_hyper(std::string_view optimizer, std::string_view name, double value, double lo) {
    if (!std::isfinite(value)) {
        minigrad::detail::fail<ValueError>("{}: {}={} must be a finite number", optimizer, name, value);
    }
    if (!std::isfinite(static_cast<T>(value))) {
        minigrad::detail::fail<ValueError>("{}: {}={} does not fit the parameters' type {} (at most {})", optimizer, name, value,
                                           type_name<T>(), std::numeric_limits<T>::max());
    }
    if (value != 0 && static_cast<T>(value) == 0) {
        minigrad::detail::fail<ValueError>("{}: {}={} underflows to 0 as {}, the parameters' type", optimizer, name, value, type_name<T>());
    }
    if (value < lo) minigrad::detail::fail<ValueError>("{}: {}={} must be >= {}", optimizer, name, value, lo);
}

// value must pass check_hyper and lie in [0, 1): a running-average coefficient (Adam's betas,
// RMSprop's alpha); 1 would freeze the average, more would blow it up.
template <class T>
void check_fraction(std::string_view optimizer, std::string_view name, double value) {
    check_hyper<T>(optimizer, name, value, 0.0);
    if (value >= 1) minigrad::detail::fail<ValueError>("{}: {}={} must be in [0, 1)", optimizer, name, value);
}

// value must pass check_hyper and be > 0: a term added to a denominator (eps).
template <class T>
void check_positive(std::string_view optimizer, std::string_view name, double value) {
    check_hyper<T>(optimizer, name, value, 0.0);
    if (value == 0) minigrad::detail::fail<ValueError>("{}: {}={} must be > 0", optimizer, name, value);
}

// Every parameter defined and listed once (two handles to one storage would be updated twice per
// step). One that does not require grad is taken, as PyTorch takes it: a frozen layer's
// parameters stay in the list and each step skips them (is_stepped).
template <class B, class T>
void check_params(std::string_view optimizer, const std::vector<Tensor<B, T>>& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (!params[i].defined()) {
            minigrad::detail::fail<ValueError>("{}: parameter #{} is an undefined tensor (default-constructed, or an absent grad)", optimizer, i);
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (params[j].data() == params[i].data() && params[j].device() == params[i].device()) {
                minigrad::detail::fail<ValueError>("{}: parameter #{} is the same tensor as parameter #{} (shape {}); list each parameter once",
                                                   optimizer, i, j, params[i].shape());
            }
        }
    }
}

// Whether a step updates this parameter, and clip_grad_norm_ counts its gradient: it requires grad
// (one frozen with requires_grad_(false) is left as it is, even with a gradient from before it was
// frozen) and has received a gradient since zero_grad() (PyTorch skips a None .grad).
template <class B, class T>
bool is_stepped(const minigrad::detail::TensorImpl<B, T>& impl) {
    return impl.requires_grad && impl.grad && !impl.grad_is_zero;
}

}  // namespace minigrad::optim::detail
