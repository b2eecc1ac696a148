// The unary elementwise ops: neg (unary -), exp, log, sqrt, pow(x, number), abs, clamp(x, lo, hi),
// sin, cos, tanh, sigmoid, relu, gelu (exact or tanh form). Each op is a rule (its forward and its gradient at one
// element) that one pair of kernels runs, UnaryForward and UnaryBackward. Gradients are PyTorch's,
// at the edges too: abs'(0) = 0, relu'(0) = 0, clamp passes the gradient where lo <= x <= hi.
#pragma once

#include <cmath>
#include <cstring>
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

// erf's rational part, c P(c^2) / Q(c^2) for c in [0, 4], for a float or (rows8::erf) eight: the
// one copy of the fit's coefficients. The result goes to `out` by reference: a 32-byte vector
// passed or returned by value outside AVX2 code would change the call ABI (GCC warns).
template <class V>
MINIGRAD_HD_INLINE void erf_rational(const V& c, V& out) {
    const V t = c * c;
    V p = t * -1.3858302810865197e-08f + 4.8182486576675565e-06f;
    p = p * t + 0.0003841561963538417f;
    p = p * t + 0.0038444002767241154f;
    p = p * t + 0.05436675284992477f;
    p = p * t + 0.18471938420478476f;
    p = p * t + 1.1283791792379758f;
    V q = t * 6.437150660269265e-05f + 0.0013125799768408197f;
    q = q * t + 0.015468011572401161f;
    q = q * t + 0.1138592729929386f;
    q = q * t + 0.49703681985589887f;
    q = q * t + 1.0f;
    out = c * p / q;
}
// erf for float, inline and branch-free, so that a loop over elements vectorises (the C library's
// erff is a call per element; in the exact GELU of a small GPT it and expf took a fifth of a
// training step): x P(x^2) / Q(x^2) on |x| <= 4, a rational fit (degrees 6 and 5 in x^2, least
// squares on Chebyshev points, reweighted; tools/fit_erf.py makes it) within 3.3e-7 of erf in float
// arithmetic (tested), and +-1 beyond (erf(4) rounds to 1 in float). With exp_float
// (backend/kernels.hpp) it makes the float GELU, the same code on both backends.
MINIGRAD_HD inline float erf_float(float z) {
    const float a = std::fabs(z);
    const float c = a < 4.0f ? a : 4.0f;
    float r;
    erf_rational(c, r);
    const float y = a < 4.0f && r < 1.0f ? r : 1.0f;
    return std::copysign(y, z);
}

#if defined(MINIGRAD_ROWS8)
namespace rows8 {
// erf_float lane by lane (the same steps: the same bits as erf_float where both run with FMA)
[[gnu::target("avx2,fma")]] inline f32x8 erf(f32x8 z) {
    const i32x8 sign = bits_as<i32x8>(z) & static_cast<std::int32_t>(0x80000000u);
    const f32x8 a = bits_as<f32x8>(bits_as<i32x8>(z) & 0x7fffffff);
    const f32x8 four = f32x8{} + 4.0f, one = f32x8{} + 1.0f;
    const f32x8 c = a < four ? a : four;
    f32x8 r;
    erf_rational(c, r);
    const f32x8 y = ((a < four) & (r < one)) ? r : one;
    return bits_as<f32x8>(bits_as<i32x8>(y) | sign);
}
}  // namespace rows8
#endif

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
    // Each form's rule, fixed at compile time.
    template <bool TanhForm>
    struct Form {
        static constexpr bool reads_input = true;
        MINIGRAD_HD T forward(T x) const {
            if constexpr (TanhForm) return T(0.5) * x * (T(1) + std::tanh(inner(x)));
            else return T(0.5) * x * (T(1) + erf_of(x * T(0.7071067811865476)));
        }
        MINIGRAD_HD T backward(T x, T, T dy) const {
            if constexpr (TanhForm) {
                const T t = std::tanh(inner(x));
                const T dinner = T(0.7978845608028654) * (T(1) + T(3) * T(0.044715) * x * x);
                return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
            } else {
                const T cdf = T(0.5) * (T(1) + erf_of(x * T(0.7071067811865476)));
                const T pdf = T(0.3989422804014327) * exp_of(T(-0.5) * x * x);
                return dy * (cdf + x * pdf);
            }
        }
    };
#if defined(MINIGRAD_ROWS8)
    // Eight elements in AVX2 vectors (UnaryForward/UnaryBackward::range8): the exact form's erf and
    // exp lane by lane; the tanh form's std::tanh one lane at a time.
    [[gnu::target("avx2,fma")]] rows8::f32x8 forward8(rows8::f32x8 x) const
        requires std::is_same_v<T, float>
    {
        if (tanh_form) {
            for (int l = 0; l < 8; ++l) x[l] = Form<true>{}.forward(x[l]);
            return x;
        }
        return 0.5f * x * (1.0f + rows8::erf(x * 0.7071067811865476f));
    }
    [[gnu::target("avx2,fma")]] rows8::f32x8 backward8(rows8::f32x8 x, rows8::f32x8 y, rows8::f32x8 dy) const
        requires std::is_same_v<T, float>
    {
        if (tanh_form) {
            for (int l = 0; l < 8; ++l) dy[l] = Form<true>{}.backward(x[l], y[l], dy[l]);
            return dy;
        }
        const rows8::f32x8 cdf = 0.5f * (1.0f + rows8::erf(x * 0.7071067811865476f));
        const rows8::f32x8 pdf = 0.3989422804014327f * rows8::exp(-0.5f * x * x);
        return dy * (cdf + x * pdf);
    }
#endif
    MINIGRAD_HD T forward(T x) const { return tanh_form ? Form<true>{}.forward(x) : Form<false>{}.forward(x); }
    MINIGRAD_HD T backward(T x, T y, T dy) const { return tanh_form ? Form<true>{}.backward(x, y, dy) : Form<false>{}.backward(x, y, dy); }
    // erf and exp: the vectorising float forms, the library's in double
    MINIGRAD_HD static T erf_of(T z) {
        if constexpr (std::is_same_v<T, float>) return erf_float(z);
        else return std::erf(z);
    }
    MINIGRAD_HD static T exp_of(T z) {
        if constexpr (std::is_same_v<T, float>) return exp_float(z);
        else return std::exp(z);
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
#if defined(MINIGRAD_ROWS8)
    // Eight elements per step in AVX2 vectors for a rule that offers forward8 (Cpu::run_avx2); the
    // last few go through the same vector code from a padded copy, so every element's bits are the
    // same wherever a thread's range starts.
    [[gnu::target("avx2,fma")]] void range8(index_t begin, index_t end) const
        requires requires(const Rule& r, rows8::f32x8 v) { r.forward8(v); }
    {
        index_t i = begin;
        for (; i + 8 <= end; i += 8) {
            rows8::f32x8 v;
            std::memcpy(&v, x + i, sizeof v);
            v = rule.forward8(v);
            std::memcpy(y + i, &v, sizeof v);
        }
        if (i < end) {
            const auto n = static_cast<std::size_t>(end - i);
            float in[8] = {}, out[8];
            std::memcpy(in, x + i, n * sizeof(float));
            rows8::f32x8 v;
            std::memcpy(&v, in, sizeof v);
            v = rule.forward8(v);
            std::memcpy(out, &v, sizeof v);
            std::memcpy(y + i, out, n * sizeof(float));
        }
    }
#endif
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
#if defined(MINIGRAD_ROWS8)
    // As UnaryForward::range8, for a rule that offers backward8.
    [[gnu::target("avx2,fma")]] void range8(index_t begin, index_t end) const
        requires requires(const Rule& r, rows8::f32x8 v) { r.backward8(v, v, v); }
    {
        index_t i = begin;
        for (; i + 8 <= end; i += 8) {
            rows8::f32x8 vx, vy{}, vdy, vdx;
            std::memcpy(&vx, x + i, sizeof vx);
            if (y) std::memcpy(&vy, y + i, sizeof vy);
            std::memcpy(&vdy, dy + i, sizeof vdy);
            rows8::f32x8 g = rule.backward8(vx, vy, vdy);
            if (!overwrite) {
                std::memcpy(&vdx, dx + i, sizeof vdx);
                g = vdx + g;
            }
            std::memcpy(dx + i, &g, sizeof g);
        }
        if (i < end) {
            const auto n = static_cast<std::size_t>(end - i);
            float in_x[8] = {}, in_y[8] = {}, in_dy[8] = {}, out[8];
            std::memcpy(in_x, x + i, n * sizeof(float));
            if (y) std::memcpy(in_y, y + i, n * sizeof(float));
            std::memcpy(in_dy, dy + i, n * sizeof(float));
            rows8::f32x8 vx, vy, vdy;
            std::memcpy(&vx, in_x, sizeof vx);
            std::memcpy(&vy, in_y, sizeof vy);
            std::memcpy(&vdy, in_dy, sizeof vdy);
            const rows8::f32x8 g = rule.backward8(vx, vy, vdy);
            std::memcpy(out, &g, sizeof g);
            for (std::size_t k = 0; k < n; ++k) dx[i + static_cast<index_t>(k)] = write(dx[i + static_cast<index_t>(k)], out[k], overwrite);
        }
    }
#endif
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
