// Checks every optimizer makes where its settings and parameters enter: a hyper-parameter passes
// the library's scalar check in the parameters' element type (scalar_checks.hpp), and each
// parameter is defined and listed once.
#pragma once

#include <string_view>
#include <vector>

#include "../error.hpp"
#include "../scalar_checks.hpp"
#include "../tensor.hpp"

namespace minigrad::optim::detail {

// The settings' checks are the library's one scalar check (scalar_checks.hpp).
using minigrad::detail::check_at_least;
using minigrad::detail::check_fraction;
using minigrad::detail::check_positive;

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
