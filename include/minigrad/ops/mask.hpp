// Masks: the comparisons (eq ne lt le gt ge, and the operators == != < <= > >=) that give a bool
// tensor, with broadcasting and tensor-number forms; where(cond, a, b); masked_fill(x, mask,
// value); tril and triu; logical_not/and/or on masks; and cast<T2>(x) to turn a mask into numbers.
// A comparison has no gradient, as in PyTorch. where and masked_fill send the gradient to the side
// each element came from, and tril/triu to the kept triangle. The mask itself is read through the
// Operand of broadcast.hpp, so a (T, T) causal mask serves a (B, H, T, T) score tensor with no copy.
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>

#include "broadcast.hpp"
#include "checks.hpp"

namespace minigrad {
namespace kernels {

// A comparison: y = apply(a, b) as a bool. NaN compares unequal to everything, as in IEEE and PyTorch.
#define MINIGRAD_COMPARE_RULE(Name, expr)                                  \
    template <class T>                                                     \
    struct Name {                                                          \
        static constexpr const char* name = #Name;                         \
        MINIGRAD_HD static bool apply(T a, T b) { return expr; }           \
    };
MINIGRAD_COMPARE_RULE(Eq, a == b)
MINIGRAD_COMPARE_RULE(Ne, a != b)
MINIGRAD_COMPARE_RULE(Lt, a < b)
MINIGRAD_COMPARE_RULE(Le, a <= b)
MINIGRAD_COMPARE_RULE(Gt, a > b)
MINIGRAD_COMPARE_RULE(Ge, a >= b)
#undef MINIGRAD_COMPARE_RULE

// y (bool) has the result's shape; a and b are read through their Operand; i over y
template <class T, class Rule, class A, class Bop>
struct CompareForward {
    A a;
    Bop b;
    bool* y;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = Rule::apply(a(i), b(i)); }
};

// y = cond ? a : b at each element of the result; cond, a and b read through their Operand
// (a number is a scalar operand: masked_fill is where(mask, value, x)); i over y
template <class T, class C, class A, class Bop>
struct Where {
    C cond;
    A a;
    Bop b;
    T* y;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = cond(i) ? a(i) : b(i); }
};

// dy and g have the result's shape: g = dy where cond(i) == pick, else 0, written or added (the
// gradient of where's a side, pick = true, or its b side, pick = false); i over the result
template <class T, class C>
struct WhereBackward {
    C cond;
    const T* dy;
    T* g;
    bool pick, overwrite;
    MINIGRAD_HD void operator()(index_t i) const { g[i] = write(g[i], cond(i) == pick ? dy[i] : T(0), overwrite); }
};

// x and y are (batch, rows, cols): y = x inside the triangle, 0 outside; tril keeps col - row <=
// diagonal, triu keeps col - row >= diagonal. The same functor is the gradient (x = dy, y = dx,
// written or added). i over batch * rows * cols
template <class T>
struct Triangle {
    const T* x;
    T* y;
    index_t rows, cols, diagonal;
    bool upper, overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t c = i % cols, r = (i / cols) % rows;
        const bool keep = upper ? c - r >= diagonal : c - r <= diagonal;
        y[i] = write(y[i], keep ? x[i] : T(0), overwrite);
    }
};

// y = not a, a and b, a or b (bool); i over y
template <class A, class Bop>
struct Logical {
    A a;
    Bop b;
    bool* y;
    int op;  // 0: not a, 1: a and b, 2: a or b
    MINIGRAD_HD void operator()(index_t i) const { y[i] = op == 0 ? !a(i) : op == 1 ? (a(i) && b(i)) : (a(i) || b(i)); }
};

// y[i] = x[i] converted to To (false/true to 0/1); i over y
template <class From, class To>
struct Cast {
    const From* x;
    To* y;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = static_cast<To>(x[i]); }
};

// The functors this file's ops launch in a step that may be compiled (kernels::Functors,
// backend/kernels.hpp): the masked ops with the mask read as it is or broadcast, and tril/triu.
// Comparisons make masks, which a step usually builds once outside it; they are listed too.
template <class T, class Rule>
using CompareRuleFunctors =
    Functors<CompareForward<T, Rule, Operand<T, Read::same>, Operand<T, Read::same>>, CompareForward<T, Rule, Operand<T, Read::same>, Operand<T, Read::row>>,
             CompareForward<T, Rule, Operand<T, Read::row>, Operand<T, Read::same>>,
             CompareForward<T, Rule, Operand<T, Read::strided>, Operand<T, Read::strided>>,
             CompareForward<T, Rule, Operand<T, Read::same>, Operand<T, Read::scalar>>>;
template <class T, Read K>
using WhereReadFunctors = Functors<Where<T, Operand<bool, K>, Operand<T, K>, Operand<T, K>>, Where<T, Operand<bool, K>, Operand<T, Read::scalar>, Operand<T, Read::same>>,
                                   WhereBackward<T, Operand<bool, K>>>;
template <class T>
using MaskFunctors = Join<CompareRuleFunctors<T, Eq<T>>, CompareRuleFunctors<T, Ne<T>>, CompareRuleFunctors<T, Lt<T>>, CompareRuleFunctors<T, Le<T>>,
                          CompareRuleFunctors<T, Gt<T>>, CompareRuleFunctors<T, Ge<T>>, WhereReadFunctors<T, Read::same>,
                          WhereReadFunctors<T, Read::strided>, Functors<Triangle<T>>>;

}  // namespace kernels

namespace detail {

template <class B, class T>
void check_mask_device(const char* op, const Tensor<B, T>& x, const Tensor<B, bool>& mask, int arg, const char* name) {
    check_defined(op, mask, arg, name);
    check_same_device(op, x, "input", mask, arg, name);
}

template <class Rule, class B, class T>
Tensor<B, bool> compare(const Tensor<B, T>& a, const Tensor<B, T>& b) {
    check_defined(Rule::name, a, 1, "input");
    check_defined(Rule::name, b, 2, "other");
    check_same_device(Rule::name, a, "input", b, 2, "other");
    const Shape out = broadcast_shapes(Rule::name, a.shape(), "input", b.shape(), "other");
    auto y = Tensor<B, bool>::empty(out, a.device());
    with_operands(a.data(), a.shape(), b.data(), b.shape(), out, [&](auto read_a, auto read_b) {
        B::launch(out.numel(), kernels::CompareForward<T, Rule, decltype(read_a), decltype(read_b)>{read_a, read_b, y.data()}, a.device());
    });
    return y;
}

template <class Rule, class B, class T>
Tensor<B, bool> compare_scalar(const Tensor<B, T>& a, T number) {
    using kernels::Read;
    check_defined(Rule::name, a, 1, "input");
    auto y = Tensor<B, bool>::empty(a.shape(), a.device());
    auto read_a = operand<Read::same>(a.data(), a.shape(), a.shape());
    auto read_number = scalar_operand(number);
    B::launch(a.numel(), kernels::CompareForward<T, Rule, decltype(read_a), decltype(read_number)>{read_a, read_number, y.data()}, a.device());
    return y;
}

// Calls f(read_cond, read_a, read_b) for operands of the result's shape `out`: all read as they are
// when none is stretched, else all through strides (two kernels per op, not eight).
template <class T, class F>
void with_where_operands(const bool* cond, const Shape& sc, const T* a, const Shape& sa, const T* b, const Shape& sb, const Shape& out, F&& f) {
    using kernels::Read;
    if (sc.numel() == out.numel() && sa.numel() == out.numel() && sb.numel() == out.numel())
        return f(operand<Read::same>(cond, sc, out), operand<Read::same>(a, sa, out), operand<Read::same>(b, sb, out));
    f(operand<Read::strided>(cond, sc, out), operand<Read::strided>(a, sa, out), operand<Read::strided>(b, sb, out));
}

// y = where(cond, a, b); a null a is masked_fill's number. cond broadcasts to y's shape.
template <class B, class T>
struct WhereNode : Node<B, T> {
    Tensor<B, bool> cond;
    const char* name;
    const char* op_name() const override { return name; }
    void backward(TensorImpl<B, T>& out) override {
        side_grad(out, 0, true);
        side_grad(out, 1, false);
    }

  private:
    void side_grad(TensorImpl<B, T>& out, int side, bool pick) {
        TensorImpl<B, T>* x = this->inputs[static_cast<std::size_t>(side)].get();
        if (!x || !x->requires_grad) return;
        const auto run = [&](T* g, bool overwrite) {
            using kernels::Read;
            if (cond.numel() == out.numel()) {
                auto read = operand<Read::same>(cond.data(), cond.shape(), out.shape);
                B::launch(out.numel(), kernels::WhereBackward<T, decltype(read)>{read, out.grad->data, g, pick, overwrite}, out.device);
            } else {
                auto read = operand<Read::strided>(cond.data(), cond.shape(), out.shape);
                B::launch(out.numel(), kernels::WhereBackward<T, decltype(read)>{read, out.grad->data, g, pick, overwrite}, out.device);
            }
        };
        if (x->numel() == out.numel()) {
            auto dx = grad_slot(*x);
            return run(dx.data, dx.overwrite);
        }
        auto scratch = std::make_shared<TensorImpl<B, T>>(out.shape, out.device);  // the share at each element, then summed to x's shape
        run(scratch->data, true);
        auto dx = grad_slot(*x);
        sum_to_shape<B>(scratch->data, out.shape, dx.data, x->shape, dx.overwrite, x->device);
    }
};

// x and y are (..., rows, cols)
template <class B, class T>
struct TriangleNode : Node<B, T> {
    std::int64_t diagonal;
    bool upper;
    const char* op_name() const override { return upper ? "triu" : "tril"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        const auto& s = x.shape;
        B::launch(x.numel(), kernels::Triangle<T>{out.grad->data, dx.data, s[s.ndim() - 2], s[s.ndim() - 1], diagonal, upper, dx.overwrite},
                  x.device);
    }
};

template <class B, class T>
Tensor<B, T> triangle(const char* op, const Tensor<B, T>& x, std::int64_t diagonal, bool upper) {
    check_defined(op, x, 1, "input");
    if (x.ndim() < 2) fail<ShapeError>("{}: argument #1 'input' has shape {}, expected at least 2 dimensions [..., rows, cols]", op, x.shape());
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    const auto rows = x.size(x.ndim() - 2), cols = x.size(x.ndim() - 1);
    B::launch(x.numel(), kernels::Triangle<T>{x.data(), y.data(), rows, cols, diagonal, upper, true}, x.device());
    if constexpr (std::is_floating_point_v<T>) {
        if (wants_grad(x)) {
            auto node = std::make_shared<TriangleNode<B, T>>();
            node->inputs = {x.impl_ptr(), nullptr, nullptr};
            node->diagonal = diagonal;
            node->upper = upper;
            attach(y.impl(), std::move(node));
        }
    }
    return y;
}

template <class B>
Tensor<B, bool> logical(const char* op, const Tensor<B, bool>& a, const Tensor<B, bool>* b, int code) {
    using kernels::Read;
    check_defined(op, a, 1, "input");
    if (!b) {
        auto y = Tensor<B, bool>::empty(a.shape(), a.device());
        auto read = operand<Read::same>(a.data(), a.shape(), a.shape());
        B::launch(a.numel(), kernels::Logical<decltype(read), decltype(read)>{read, read, y.data(), code}, a.device());
        return y;
    }
    check_defined(op, *b, 2, "other");
    check_same_device(op, a, "input", *b, 2, "other");
    const Shape out = broadcast_shapes(op, a.shape(), "input", b->shape(), "other");
    auto y = Tensor<B, bool>::empty(out, a.device());
    with_operands(a.data(), a.shape(), b->data(), b->shape(), out, [&](auto read_a, auto read_b) {
        B::launch(out.numel(), kernels::Logical<decltype(read_a), decltype(read_b)>{read_a, read_b, y.data(), code}, a.device());
    });
    return y;
}

}  // namespace detail

// Each comparison: op(input, other) of two tensors that broadcast, op(input, number), and its
// operator in both forms. The result is a bool tensor with no gradient. Tensors of different
// backends or element types do not compile.
#define MINIGRAD_COMPARE_OP(op, Rule, symbol)                                                  \
    template <class B, class T>                                                                \
    Tensor<B, bool> op(const Tensor<B, T>& input, const Tensor<B, T>& other) {                 \
        return detail::compare<kernels::Rule<T>>(input, other);                                \
    }                                                                                          \
    template <class B, class T>                                                                \
    Tensor<B, bool> op(const Tensor<B, T>& input, std::type_identity_t<T> other) {             \
        return detail::compare_scalar<kernels::Rule<T>>(input, other);                         \
    }                                                                                          \
    template <class BA, class TA, class BB, class TB>                                          \
        requires detail::Mixed<BA, TA, BB, TB>                                                 \
    Tensor<BA, bool> op(const Tensor<BA, TA>&, const Tensor<BB, TB>&) {                        \
        detail::reject_mix<BA, TA, BB, TB, 2>();                                               \
        return {};                                                                             \
    }                                                                                          \
    template <class BA, class TA, class BB, class TB>                                          \
    auto operator symbol(const Tensor<BA, TA>& input, const Tensor<BB, TB>& other) {           \
        return op(input, other);                                                               \
    }                                                                                          \
    template <class B, class T>                                                                \
    Tensor<B, bool> operator symbol(const Tensor<B, T>& input, std::type_identity_t<T> other) { \
        return op(input, other);                                                               \
    }

MINIGRAD_COMPARE_OP(eq, Eq, ==)
MINIGRAD_COMPARE_OP(ne, Ne, !=)
MINIGRAD_COMPARE_OP(lt, Lt, <)
MINIGRAD_COMPARE_OP(le, Le, <=)
MINIGRAD_COMPARE_OP(gt, Gt, >)
MINIGRAD_COMPARE_OP(ge, Ge, >=)

#undef MINIGRAD_COMPARE_OP

// cond ? input : other at each element; the three broadcast to one shape. The gradient of each side
// is the upstream gradient where that side was taken, summed over the dims it was stretched along.
template <class B, class T>
Tensor<B, T> where(const Tensor<B, bool>& cond, const Tensor<B, T>& input, const Tensor<B, T>& other) {
    detail::check_defined("where", cond, 1, "condition");
    detail::check_defined("where", input, 2, "input");
    detail::check_defined("where", other, 3, "other");
    detail::check_same_device("where", input, "input", other, 3, "other");
    detail::check_same_device("where", input, "input", cond, 1, "condition");
    // pairwise: three shapes broadcast together when each pair does
    detail::broadcast_shapes("where", cond.shape(), 1, "condition", input.shape(), 2, "input");
    detail::broadcast_shapes("where", cond.shape(), 1, "condition", other.shape(), 3, "other");
    const Shape out = detail::broadcast_shapes("where", cond.shape(), 1, "condition",
                                               detail::broadcast_shapes("where", input.shape(), 2, "input", other.shape(), 3, "other"), 2, "input");
    auto y = Tensor<B, T>::empty(out, input.device());
    detail::with_where_operands(cond.data(), cond.shape(), input.data(), input.shape(), other.data(), other.shape(), out,
                                [&](auto read_c, auto read_a, auto read_b) {
                                    B::launch(out.numel(),
                                              kernels::Where<T, decltype(read_c), decltype(read_a), decltype(read_b)>{read_c, read_a, read_b, y.data()},
                                              input.device());
                                });
    if constexpr (std::is_floating_point_v<T>) {
        if (detail::wants_grad(input, other)) {
            auto node = std::make_shared<detail::WhereNode<B, T>>();
            node->inputs = {input.impl_ptr(), other.impl_ptr(), nullptr};
            node->cond = cond;
            node->name = "where";
            detail::attach(y.impl(), std::move(node));
        }
    }
    return y;
}

// input with `value` wherever mask (which broadcasts to input's shape) is true, as
// torch.masked_fill. The gradient passes where the mask is false.
template <class B, class T>
Tensor<B, T> masked_fill(const Tensor<B, T>& input, const Tensor<B, bool>& mask, std::type_identity_t<T> value) {
    using kernels::Read;
    detail::check_defined("masked_fill", input, 1, "input");
    detail::check_mask_device("masked_fill", input, mask, 2, "mask");
    const Shape out = detail::broadcast_shapes("masked_fill", input.shape(), "input", mask.shape(), "mask");
    if (out != input.shape()) {
        detail::fail<ShapeError>("masked_fill: argument #2 'mask' of shape {} broadcasts argument #1 'input' of shape {} to {}; the mask must "
                                 "broadcast to the input's shape",
                                 mask.shape(), input.shape(), out);
    }
    auto y = Tensor<B, T>::empty(out, input.device());
    auto read_value = detail::scalar_operand(value);
    auto read_x = detail::operand<Read::same>(input.data(), input.shape(), out);
    const auto run = [&](auto read_mask) {
        B::launch(out.numel(), kernels::Where<T, decltype(read_mask), decltype(read_value), decltype(read_x)>{read_mask, read_value, read_x, y.data()},
                  input.device());
    };
    if (mask.numel() == out.numel())
        run(detail::operand<Read::same>(mask.data(), mask.shape(), out));
    else
        run(detail::operand<Read::strided>(mask.data(), mask.shape(), out));
    if constexpr (std::is_floating_point_v<T>) {
        if (detail::wants_grad(input)) {
            auto node = std::make_shared<detail::WhereNode<B, T>>();
            node->inputs = {nullptr, input.impl_ptr(), nullptr};
            node->cond = mask;
            node->name = "masked_fill";
            detail::attach(y.impl(), std::move(node));
        }
    }
    return y;
}

// The lower (tril) or upper (triu) triangle of the last two dims, the rest zeroed: diagonal 0 is
// the main diagonal, > 0 above it, < 0 below it, as in PyTorch.
template <class B, class T>
Tensor<B, T> tril(const Tensor<B, T>& input, std::int64_t diagonal = 0) {
    return detail::triangle("tril", input, diagonal, false);
}
template <class B, class T>
Tensor<B, T> triu(const Tensor<B, T>& input, std::int64_t diagonal = 0) {
    return detail::triangle("triu", input, diagonal, true);
}

template <class B>
Tensor<B, bool> logical_not(const Tensor<B, bool>& input) {
    return detail::logical<B>("logical_not", input, nullptr, 0);
}
template <class B>
Tensor<B, bool> logical_and(const Tensor<B, bool>& input, const Tensor<B, bool>& other) {
    return detail::logical("logical_and", input, &other, 1);
}
template <class B>
Tensor<B, bool> logical_or(const Tensor<B, bool>& input, const Tensor<B, bool>& other) {
    return detail::logical("logical_or", input, &other, 2);
}
template <class B>
Tensor<B, bool> operator~(const Tensor<B, bool>& input) {
    return logical_not(input);
}
template <class B>
Tensor<B, bool> operator&(const Tensor<B, bool>& input, const Tensor<B, bool>& other) {
    return logical_and(input, other);
}
template <class B>
Tensor<B, bool> operator|(const Tensor<B, bool>& input, const Tensor<B, bool>& other) {
    return logical_or(input, other);
}

// The elements converted to To, as x.to(dtype) in PyTorch (a mask becomes 0 and 1, a float
// truncates toward zero into an integer). No gradient: the result is a new leaf.
template <class To, class B, class From>
Tensor<B, To> cast(const Tensor<B, From>& input) {
    detail::check_defined("cast", input, 1, "input");
    auto y = Tensor<B, To>::empty(input.shape(), input.device());
    B::launch(input.numel(), kernels::Cast<From, To>{input.data(), y.data()}, input.device());
    return y;
}

}  // namespace minigrad
