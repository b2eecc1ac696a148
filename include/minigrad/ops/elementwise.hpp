// The binary elementwise ops: add, sub, mul, div (operators + - * /), with broadcasting over up to
// eight dims and tensor-scalar forms (x * 2.0f, 1.0f - x). Each op is a rule (its forward and each
// side's share of the gradient at one element) that one pair of kernels runs, BinaryForward and
// BinaryBackward; broadcast.hpp says how an operand is read and sums a gradient back to its shape.
#pragma once

#include <memory>
#include <type_traits>

#include "broadcast.hpp"
#include "checks.hpp"

namespace minigrad {
namespace kernels {

// A rule: y = forward(a, b); grad_a / grad_b are dy times dy/da, dy/db at one element. reads_a /
// reads_b: the inputs each of those reads (bit 0: a, bit 1: b), which must not change in place
// before backward. plain_a / plain_b: the share is dy itself, so a broadcast input sums dy directly.
template <class T>
struct Add {
    static constexpr const char* name = "add";
    static constexpr unsigned reads_a = 0, reads_b = 0;
    static constexpr bool plain_a = true, plain_b = true;
    MINIGRAD_HD static T forward(T a, T b) { return a + b; }
    MINIGRAD_HD static T grad_a(T, T, T dy) { return dy; }
    MINIGRAD_HD static T grad_b(T, T, T dy) { return dy; }
};

template <class T>
struct Sub {
    static constexpr const char* name = "sub";
    static constexpr unsigned reads_a = 0, reads_b = 0;
    static constexpr bool plain_a = true, plain_b = false;
    MINIGRAD_HD static T forward(T a, T b) { return a - b; }
    MINIGRAD_HD static T grad_a(T, T, T dy) { return dy; }
    MINIGRAD_HD static T grad_b(T, T, T dy) { return -dy; }
};

template <class T>
struct Mul {
    static constexpr const char* name = "mul";
    static constexpr unsigned reads_a = 0b10, reads_b = 0b01;
    static constexpr bool plain_a = false, plain_b = false;
    MINIGRAD_HD static T forward(T a, T b) { return a * b; }
    MINIGRAD_HD static T grad_a(T, T b, T dy) { return dy * b; }
    MINIGRAD_HD static T grad_b(T a, T, T dy) { return dy * a; }
};

// d(a/b)/db = -a / b^2, written as PyTorch writes it: -dy * a / (b * b)
template <class T>
struct Div {
    static constexpr const char* name = "div";
    static constexpr unsigned reads_a = 0b10, reads_b = 0b11;
    static constexpr bool plain_a = false, plain_b = false;
    MINIGRAD_HD static T forward(T a, T b) { return a / b; }
    MINIGRAD_HD static T grad_a(T, T b, T dy) { return dy / b; }
    MINIGRAD_HD static T grad_b(T a, T b, T dy) { return -dy * a / (b * b); }
};

// y has the result's shape; a and b are read through their Operand (broadcast.hpp); i over y
template <class T, class Rule, class A, class Bop>
struct BinaryForward {
    A a;
    Bop b;
    T* y;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = Rule::forward(a(i), b(i)); }
};

// dy and g have the result's shape: g = the share of side Side (0: a, 1: b) at each element of the
// result, written or added (into the input's gradient when it has the result's elements, else into
// scratch that broadcast.hpp then sums); i over the result
template <class T, class Rule, int Side, class A, class Bop>
struct BinaryBackward {
    A a;
    Bop b;
    const T* dy;
    T* g;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        T share;
        if constexpr (Side == 0)
            share = Rule::grad_a(a(i), b(i), dy[i]);
        else
            share = Rule::grad_b(a(i), b(i), dy[i]);
        g[i] = write(g[i], share, overwrite);
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
// The binary ops' forward and backward for each operand pair that broadcast.hpp's with_operands
// and the tensor-number forms choose.
template <class T, class Rule>
struct BinaryRuleFunctors {
    template <Read A, Read B>
    using Fwd = BinaryForward<T, Rule, Operand<T, A>, Operand<T, B>>;
    template <int Side, Read A, Read B>
    using Bwd = BinaryBackward<T, Rule, Side, Operand<T, A>, Operand<T, B>>;
    template <Read A, Read B>
    using Pair = Functors<Fwd<A, B>, Bwd<0, A, B>, Bwd<1, A, B>>;
    using type = Join<Pair<Read::same, Read::same>, Pair<Read::same, Read::row>, Pair<Read::row, Read::same>,
                      Pair<Read::strided, Read::strided>, Pair<Read::same, Read::scalar>, Pair<Read::scalar, Read::same>>;
};
template <class T>
using ElementwiseFunctors = Join<typename BinaryRuleFunctors<T, Add<T>>::type, typename BinaryRuleFunctors<T, Sub<T>>::type,
                                 typename BinaryRuleFunctors<T, Mul<T>>::type, typename BinaryRuleFunctors<T, Div<T>>::type>;

}  // namespace kernels

namespace detail {

// a and b broadcast to y's shape; a tensor-scalar form has a null input in the number's place
template <class B, class T, class Rule>
struct BinaryNode : Node<B, T> {
    T scalar{};
    unsigned saved = 0;
    unsigned saved_inputs() const override { return saved; }
    const char* op_name() const override { return Rule::name; }
    void backward(TensorImpl<B, T>& out) override {
        input_grad<0>(out);
        input_grad<1>(out);
    }

  private:
    template <int Side>
    void input_grad(TensorImpl<B, T>& out) {
        using kernels::Read;
        TensorImpl<B, T>* x = this->inputs[Side].get();
        if (!x || !x->requires_grad) return;
        const TensorImpl<B, T>* a = this->inputs[0].get();
        const TensorImpl<B, T>* b = this->inputs[1].get();
        const T* dy = out.grad->data;
        const auto run = [&](auto read_a, auto read_b, T* g, bool overwrite) {
            using F = kernels::BinaryBackward<T, Rule, Side, decltype(read_a), decltype(read_b)>;
            B::launch(out.numel(), F{read_a, read_b, dy, g, overwrite}, out.device);
        };
        if (!a || !b) {  // x op number, or number op x: x has the result's shape
            auto dx = grad_slot(*x);
            if constexpr (Side == 0)
                run(operand<Read::same>(x->data, x->shape, out.shape), scalar_operand(scalar), dx.data, dx.overwrite);
            else
                run(scalar_operand(scalar), operand<Read::same>(x->data, x->shape, out.shape), dx.data, dx.overwrite);
            return;
        }
        const auto share_into = [&](T* g, bool overwrite) {
            with_operands(a->data, a->shape, b->data, b->shape, out.shape,
                          [&](auto read_a, auto read_b) { run(read_a, read_b, g, overwrite); });
        };
        if (x->numel() == out.numel()) {  // nothing stretched: the share is x's gradient
            auto dx = grad_slot(*x);
            return share_into(dx.data, dx.overwrite);
        }
        // x was stretched: its share at every element of the result, summed over the stretched dims
        std::shared_ptr<TensorImpl<B, T>> scratch;
        const T* g = dy;
        if constexpr (!(Side == 0 ? Rule::plain_a : Rule::plain_b)) {
            scratch = std::make_shared<TensorImpl<B, T>>(out.shape, out.device);
            share_into(scratch->data, true);
            g = scratch->data;
        }
        auto dx = grad_slot(*x);
        sum_to_shape<B>(g, out.shape, dx.data, x->shape, dx.overwrite, x->device);
    }
};

template <class Rule, class B, class T>
Tensor<B, T> binary(const Tensor<B, T>& a, const Tensor<B, T>& b) {
    check_defined(Rule::name, a, 1, "input");
    check_defined(Rule::name, b, 2, "other");
    check_same_device(Rule::name, a, "input", b, 2, "other");
    const Shape out = broadcast_shapes(Rule::name, a.shape(), "input", b.shape(), "other");
    auto y = Tensor<B, T>::empty(out, a.device());
    with_operands(a.data(), a.shape(), b.data(), b.shape(), out, [&](auto read_a, auto read_b) {
        using F = kernels::BinaryForward<T, Rule, decltype(read_a), decltype(read_b)>;
        B::launch(out.numel(), F{read_a, read_b, y.data()}, a.device());
    });
    if (wants_grad(a, b)) {
        auto node = std::make_shared<BinaryNode<B, T, Rule>>();
        node->inputs = {a.impl_ptr(), b.impl_ptr(), nullptr};
        node->saved = (a.requires_grad() ? Rule::reads_a : 0u) | (b.requires_grad() ? Rule::reads_b : 0u);
        attach(y.impl(), std::move(node));
    }
    return y;
}

// x op number, or number op x when number_first; y has x's shape
template <class Rule, class B, class T>
Tensor<B, T> binary_scalar(const Tensor<B, T>& x, T number, bool number_first) {
    using kernels::Read;
    check_defined(Rule::name, x, number_first ? 2 : 1, number_first ? "other" : "input");
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    // not const: the functor's operand types must be the ones ElementwiseFunctors lists
    auto read_x = operand<Read::same>(x.data(), x.shape(), x.shape());
    auto read_number = scalar_operand(number);
    if (number_first)
        B::launch(x.numel(), kernels::BinaryForward<T, Rule, decltype(read_number), decltype(read_x)>{read_number, read_x, y.data()}, x.device());
    else
        B::launch(x.numel(), kernels::BinaryForward<T, Rule, decltype(read_x), decltype(read_number)>{read_x, read_number, y.data()}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<BinaryNode<B, T, Rule>>();
        node->inputs = {number_first ? nullptr : x.impl_ptr(), number_first ? x.impl_ptr() : nullptr, nullptr};
        node->scalar = number;
        node->saved = number_first ? Rule::reads_b & 0b10u : Rule::reads_a & 0b01u;
        attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace detail

// Each op: op(input, other) of two tensors that broadcast, op(input, number), and its operator in
// all three forms (tensor op tensor, tensor op number, number op tensor). The number is converted
// to the tensor's element type. Tensors of different backends or element types do not compile.
#define MINIGRAD_BINARY_OP(op, Rule, symbol, prelude)                                                   \
    template <class B, class T>                                                                         \
    Tensor<B, T> op(const Tensor<B, T>& input, const Tensor<B, T>& other) {                             \
        prelude;                                                                                        \
        return detail::binary<kernels::Rule<T>>(input, other);                                          \
    }                                                                                                   \
    template <class B, class T>                                                                         \
    Tensor<B, T> op(const Tensor<B, T>& input, std::type_identity_t<T> other) {                         \
        prelude;                                                                                        \
        return detail::binary_scalar<kernels::Rule<T>>(input, other, false);                            \
    }                                                                                                   \
    template <class BA, class TA, class BB, class TB>                                                   \
        requires detail::Mixed<BA, TA, BB, TB>                                                          \
    Tensor<BA, TA> op(const Tensor<BA, TA>&, const Tensor<BB, TB>&) {                                   \
        detail::reject_mix<BA, TA, BB, TB, 2>();                                                        \
        return {};                                                                                      \
    }                                                                                                   \
    template <class BA, class TA, class BB, class TB>                                                   \
    auto operator symbol(const Tensor<BA, TA>& input, const Tensor<BB, TB>& other) {                    \
        return op(input, other);                                                                        \
    }                                                                                                   \
    template <class B, class T>                                                                         \
    Tensor<B, T> operator symbol(const Tensor<B, T>& input, std::type_identity_t<T> other) {            \
        return op(input, other);                                                                        \
    }                                                                                                   \
    template <class B, class T>                                                                         \
    Tensor<B, T> operator symbol(std::type_identity_t<T> input, const Tensor<B, T>& other) {            \
        prelude;                                                                                        \
        return detail::binary_scalar<kernels::Rule<T>>(other, input, true);                             \
    }

MINIGRAD_BINARY_OP(add, Add, +, (void)0)
MINIGRAD_BINARY_OP(sub, Sub, -, (void)0)
MINIGRAD_BINARY_OP(mul, Mul, *, (void)0)
MINIGRAD_BINARY_OP(div, Div, /, detail::require_floating<T>())  // true division, as PyTorch's

#undef MINIGRAD_BINARY_OP

}  // namespace minigrad
