// The unary elementwise ops: neg (unary -), exp, log, sqrt, pow(x, number), abs, clamp(x, lo, hi),
// sin, cos, tanh, sigmoid, relu, gelu (exact or tanh form). Each op is a rule (its forward and its gradient at one
// element) that one pair of kernels runs, UnaryForward and UnaryBackward. Gradients are PyTorch's,
// at the edges too: abs'(0) = 0, relu'(0) = 0, clamp passes the gradient where lo <= x <= hi.
#pragma once

#include <cmath>
#include <memory>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// A rule: y = forward(x); backward(x, y, dy) = dy * dy/dx, written with the output y where that is
// what PyTorch's rule uses (exp, sqrt, tanh, sigmoid, relu), so it costs no recomputation.
// reads_input: backward reads x, which must then not change in place before backward.
template <class T>
struct Neg {
    static constexpr const char* name = "neg";
    static constexpr bool reads_input = false;
    MINIGRAD_HD T forward(T x) const { return -x; }
    MINIGRAD_HD T backward(T, T, T dy) const { return -dy; }
};

template <class T>
struct Exp {
    static constexpr const char* name = "exp";
    static constexpr bool reads_input = false;
    MINIGRAD_HD T forward(T x) const { return std::exp(x); }
    MINIGRAD_HD T backward(T, T y, T dy) const { return dy * y; }
};

template <class T>
struct Log {
    static constexpr const char* name = "log";
    static constexpr bool reads_input = true;
    MINIGRAD_HD T forward(T x) const { return std::log(x); }
    MINIGRAD_HD T backward(T x, T, T dy) const { return dy / x; }
};

template <class T>
struct Sqrt {
    static constexpr const char* name = "sqrt";
    static constexpr bool reads_input = false;
    MINIGRAD_HD T forward(T x) const { return std::sqrt(x); }
    MINIGRAD_HD T backward(T, T y, T dy) const { return dy / (T(2) * y); }
};

// A zero exponent has a zero gradient everywhere, as in PyTorch (not 0 * x^-1, NaN at x = 0).
template <class T>
struct Pow {
    static constexpr const char* name = "pow";
    static constexpr bool reads_input = true;
    T exponent;
    MINIGRAD_HD T forward(T x) const { return std::pow(x, exponent); }
    MINIGRAD_HD T backward(T x, T, T dy) const {
        return exponent == T(0) ? T(0) : dy * exponent * std::pow(x, exponent - T(1));
    }
};

template <class T>
struct Abs {
    static constexpr const char* name = "abs";
    static constexpr bool reads_input = true;
    MINIGRAD_HD T forward(T x) const {
        if constexpr (std::is_floating_point_v<T>)
            return std::fabs(x);  // abs(-0.0) is +0.0
        else
            return x < T(0) ? T(-x) : x;
    }
    MINIGRAD_HD T backward(T x, T, T dy) const { return x > T(0) ? dy : (x < T(0) ? -dy : T(0)); }
};

// min(max(x, lo), hi): NaN stays NaN, and lo > hi gives hi everywhere, as in PyTorch
template <class T>
struct Clamp {
    static constexpr const char* name = "clamp";
    static constexpr bool reads_input = true;
    T lo, hi;
    MINIGRAD_HD T forward(T x) const {
        const T above = x < lo ? lo : x;
        return above > hi ? hi : above;
    }
    MINIGRAD_HD T backward(T x, T, T dy) const { return x >= lo && x <= hi ? dy : T(0); }
};

// sin' = cos, cos' = -sin: both gradients read the input
template <class T>
struct Sin {
    static constexpr const char* name = "sin";
    static constexpr bool reads_input = true;
    MINIGRAD_HD T forward(T x) const { return std::sin(x); }
    MINIGRAD_HD T backward(T x, T, T dy) const { return dy * std::cos(x); }
};
template <class T>
struct Cos {
    static constexpr const char* name = "cos";
    static constexpr bool reads_input = true;
    MINIGRAD_HD T forward(T x) const { return std::cos(x); }
    MINIGRAD_HD T backward(T x, T, T dy) const { return -dy * std::sin(x); }
};

template <class T>
struct Tanh {
    static constexpr const char* name = "tanh";
    static constexpr bool reads_input = false;
    MINIGRAD_HD T forward(T x) const { return std::tanh(x); }
    MINIGRAD_HD T backward(T, T y, T dy) const { return dy * (T(1) - y * y); }
};

// 1 / (1 + e^-x): e^-x overflows to inf for very negative x, which gives 0, the right limit
template <class T>
struct Sigmoid {
    static constexpr const char* name = "sigmoid";
    static constexpr bool reads_input = false;
    MINIGRAD_HD T forward(T x) const { return T(1) / (T(1) + std::exp(-x)); }
    MINIGRAD_HD T backward(T, T y, T dy) const { return dy * y * (T(1) - y); }
};

// The gradient reads the output: y > 0 exactly where x > 0, so relu'(0) = 0. NaN passes through.
template <class T>
struct Relu {
    static constexpr const char* name = "relu";
    static constexpr bool reads_input = false;
    MINIGRAD_HD T forward(T x) const { return x < T(0) ? T(0) : x; }
    MINIGRAD_HD T backward(T, T y, T dy) const { return y > T(0) ? dy : T(0); }
};

// PyTorch's gelu. The exact form (approximate='none', the default): y = x Phi(x) = x/2 (1 + erf(x /
// sqrt 2)), dy/dx = Phi(x) + x phi(x), phi the standard normal density. The tanh form
// (approximate='tanh'): y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); dy/dx = (1 + tanh
// u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2). The two differ by up to 4.7e-4.
template <class T>
struct Gelu {
    static constexpr const char* name = "gelu";
    static constexpr bool reads_input = true;
    bool tanh_form = false;
    MINIGRAD_HD static T inner(T x) { return T(0.7978845608028654) * (x + T(0.044715) * x * x * x); }
    MINIGRAD_HD T forward(T x) const {
        if (tanh_form) return T(0.5) * x * (T(1) + std::tanh(inner(x)));
        return T(0.5) * x * (T(1) + std::erf(x * T(0.7071067811865476)));
    }
    MINIGRAD_HD T backward(T x, T, T dy) const {
        if (tanh_form) {
            const T t = std::tanh(inner(x));
            const T dinner = T(0.7978845608028654) * (T(1) + T(3) * T(0.044715) * x * x);
            return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
        }
        const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.7071067811865476)));
        const T pdf = T(0.3989422804014327) * std::exp(T(-0.5) * x * x);
        return dy * (cdf + x * pdf);
    }
};

// The activations a matrix product takes as its epilogue (kernels::GemmThen): backward() runs
// their gradient in the launch of the product that makes dy (product_into_grad), nn::Linear runs
// their forward in its product's launch, and a compiled program folds both (capture/compiled.hpp). The one
// list all of these read.
template <class T>
using EpilogueRules = std::tuple<Relu<T>, Tanh<T>, Sigmoid<T>, Gelu<T>>;

template <class Rule, class List>
inline constexpr bool in_rules = false;
template <class Rule, class... Rules>
inline constexpr bool in_rules<Rule, std::tuple<Rules...>> = (std::is_same_v<Rule, Rules> || ...);
template <class Rule>
inline constexpr bool product_epilogue = false;
template <template <class> class Rule, class T>
inline constexpr bool product_epilogue<Rule<T>> = in_rules<Rule<T>, EpilogueRules<T>>;

// x, y are (n); i over n
template <class T, class Rule>
struct UnaryForward {
    const T* x;
    T* y;
    Rule rule;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = rule.forward(x[i]); }
};

// x, y (the forward output), dy, dx are (n); i over n. dy is loaded unconditionally, so that the
// host loop vectorises for the rules that select (relu, clamp, abs).
template <class T, class Rule>
struct UnaryBackward {
    const T* x;
    const T* y;
    const T* dy;
    T* dx;
    Rule rule;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { dx[i] = write(dx[i], rule.backward(x[i], y[i], dy[i]), overwrite); }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp):
// each rule's forward and backward, and a product with each epilogue rule's, as one launch.
template <class T, class Rules>
struct EpilogueFunctors;
template <class T, class... Rules>
struct EpilogueFunctors<T, std::tuple<Rules...>> {
    using type = Functors<GemmThen<T, UnaryForward<T, Rules>>..., GemmThen<T, UnaryBackward<T, Rules>>...>;
};
template <class T, class... Rules>
using RuleFunctors = Functors<UnaryForward<T, Rules>..., UnaryBackward<T, Rules>...>;
template <class T>
using UnaryFunctors = Join<RuleFunctors<T, Neg<T>, Exp<T>, Log<T>, Sqrt<T>, Pow<T>, Abs<T>, Clamp<T>, Sin<T>, Cos<T>, Tanh<T>, Sigmoid<T>,
                                        Relu<T>, Gelu<T>>,
                           typename EpilogueFunctors<T, EpilogueRules<T>>::type>;

}  // namespace kernels

namespace detail {

template <class B, class T, class Rule>
struct UnaryNode : Node<B, T> {
    Rule rule;
    unsigned saved_inputs() const override { return Rule::reads_input ? 1u : 0u; }
    const char* op_name() const override { return Rule::name; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::UnaryBackward<T, Rule>{x.data, out.data, out.grad->data, dx.data, rule, dx.overwrite}, x.device);
    }
    bool backward_in_product(TensorImpl<B, T>& out, const kernels::GemmElement<T>& g) override {
        if constexpr (!kernels::product_epilogue<Rule>) {
            return false;
        } else {
            auto& x = *this->inputs[0];
            auto dx = grad_slot(x);
            B::gemm_then(g, kernels::UnaryBackward<T, Rule>{x.data, out.data, g.c, dx.data, rule, dx.overwrite}, x.device);
            return true;
        }
    }
};

// y = rule(x) as computed elsewhere (a product's epilogue): its node, where x records one.
template <class B, class T, class Rule>
void attach_unary(const Tensor<B, T>& y, const Tensor<B, T>& x, Rule rule) {
    if (!wants_grad(x)) return;
    auto node = std::make_shared<UnaryNode<B, T, Rule>>();
    node->inputs = {x.impl_ptr(), nullptr, nullptr};
    node->rule = rule;
    attach(y.impl(), std::move(node));
}

template <class B, class T, class Rule>
Tensor<B, T> unary(const Tensor<B, T>& x, Rule rule) {
    check_defined(Rule::name, x, 1, "input");
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    B::launch(x.numel(), kernels::UnaryForward<T, Rule>{x.data(), y.data(), rule}, x.device());
    attach_unary(y, x, rule);
    return y;
}

}  // namespace detail

template <class B, class T>
Tensor<B, T> neg(const Tensor<B, T>& x) {
    return detail::unary(x, kernels::Neg<T>{});
}
template <class B, class T>
Tensor<B, T> operator-(const Tensor<B, T>& x) {
    return neg(x);
}
template <class B, class T>
Tensor<B, T> abs(const Tensor<B, T>& x) {
    return detail::unary(x, kernels::Abs<T>{});
}
template <class B, class T>
Tensor<B, T> relu(const Tensor<B, T>& x) {
    return detail::unary(x, kernels::Relu<T>{});
}
// clamp(x, lo, hi) = min(max(x, lo), hi); the bounds are converted to the tensor's element type
template <class B, class T>
Tensor<B, T> clamp(const Tensor<B, T>& x, std::type_identity_t<T> lo, std::type_identity_t<T> hi) {
    return detail::unary(x, kernels::Clamp<T>{lo, hi});
}

// These need floating point.
template <class B, class T>
Tensor<B, T> exp(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Exp<T>{});
}
template <class B, class T>
Tensor<B, T> log(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Log<T>{});
}
template <class B, class T>
Tensor<B, T> sqrt(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Sqrt<T>{});
}
template <class B, class T>
Tensor<B, T> pow(const Tensor<B, T>& x, std::type_identity_t<T> exponent) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Pow<T>{exponent});
}
template <class B, class T>
Tensor<B, T> sin(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Sin<T>{});
}
template <class B, class T>
Tensor<B, T> cos(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Cos<T>{});
}
template <class B, class T>
Tensor<B, T> tanh(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Tanh<T>{});
}
template <class B, class T>
Tensor<B, T> sigmoid(const Tensor<B, T>& x) {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Sigmoid<T>{});
}
namespace detail {
// approximate as PyTorch spells it: "none" (the exact erf form) or "tanh"
inline bool gelu_tanh_form(const char* op, std::string_view approximate) {
    if (approximate != "none" && approximate != "tanh") {
        fail<ValueError>("{}: approximate='{}' is not one of 'none' (the exact erf form) and 'tanh'", op, approximate);
    }
    return approximate == "tanh";
}
}  // namespace detail

// gelu(x) is the exact form, as PyTorch's default; gelu(x, "tanh") the tanh approximation.
template <class B, class T>
Tensor<B, T> gelu(const Tensor<B, T>& x, std::string_view approximate = "none") {
    detail::require_floating<T>();
    return detail::unary(x, kernels::Gelu<T>{detail::gelu_tanh_form("gelu", approximate)});
}

}  // namespace minigrad
