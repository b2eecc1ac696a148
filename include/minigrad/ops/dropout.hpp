// dropout(x, p, training, gen): inverted dropout as torch.nn.functional.dropout. In training each
// element is zeroed with probability p and the rest scaled by 1/(1-p); otherwise it is the identity.
// The mask is never stored: element i is kept where a hash of (seed, offset + i) says so, the seed
// and offset coming from a Generator (Generator::reserve). Both backends compute the same hash, so
// they draw the same mask; backward recomputes it.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string_view>

#include "../random.hpp"
#include "checks.hpp"

namespace minigrad {
namespace kernels {

// SplitMix64's output function: every input bit reaches every output bit.
MINIGRAD_HD inline std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Which elements survive: element i is kept where the top 53 bits of its hash, a uniform integer in
// [0, 2^53), are at least drop_below = p * 2^53. Integer arithmetic only, so the host and the GPU
// agree bit for bit.
struct DropoutMask {
    std::uint64_t seed, offset, drop_below;
    MINIGRAD_HD bool keep(index_t i) const {
        const std::uint64_t counter = offset + static_cast<std::uint64_t>(i);
        return (mix64(mix64(seed) + (counter + 1) * 0x9E3779B97F4A7C15ull) >> 11) >= drop_below;
    }
};

// x, y are (n); i over n. A dropped element is x * 0 (NaN stays NaN, as PyTorch's x * mask).
template <class T>
struct DropoutForward {
    const T* x;
    T* y;
    DropoutMask mask;
    T scale;  // 1 / (1 - p)
    MINIGRAD_HD void operator()(index_t i) const { y[i] = x[i] * (mask.keep(i) ? scale : T(0)); }
};

// dy, dx are (n); i over n. dx = dy * mask * scale, with the forward pass's mask.
template <class T>
struct DropoutBackward {
    const T* dy;
    T* dx;
    DropoutMask mask;
    T scale;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { dx[i] = write(dx[i], dy[i] * (mask.keep(i) ? scale : T(0)), overwrite); }
};

}  // namespace kernels

namespace detail {

// p must be a probability that leaves something: 0 <= p < 1 (NaN fails both comparisons).
inline void check_dropout_p(std::string_view op, double p) {
    if (!(p >= 0.0 && p < 1.0)) fail<ValueError>("{}: p={} is not a dropout probability, expected 0 <= p < 1", op, p);
}

inline kernels::DropoutMask dropout_mask(double p, std::int64_t n, Generator& gen) {
    const auto counter = gen.reserve(static_cast<std::uint64_t>(n));
    return {counter.seed, counter.offset, static_cast<std::uint64_t>(p * 9007199254740992.0)};
}

template <class B, class T>
struct DropoutNode : Node<B, T> {
    kernels::DropoutMask mask;
    T scale;
    const char* op_name() const override { return "dropout"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::DropoutBackward<T>{out.grad->data, dx.data, mask, scale, dx.overwrite}, x.device);
    }
};

}  // namespace detail

// x and the result have any shape. Not training, or p = 0: x itself, as PyTorch returns it.
template <class B, class T>
Tensor<B, T> dropout(const Tensor<B, T>& x, double p, bool training = true, Generator& gen = default_generator()) {
    detail::require_floating<T>();
    detail::check_dropout_p("dropout", p);
    detail::check_defined("dropout", x, 1, "input");
    if (!training || p == 0.0) return x;
    const auto mask = detail::dropout_mask(p, x.numel(), gen);
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    B::launch(x.numel(), kernels::DropoutForward<T>{x.data(), y.data(), mask, scale}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::DropoutNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->mask = mask;
        node->scale = scale;
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace minigrad
