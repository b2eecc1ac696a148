// Tensor<Backend, T>: a handle (shared, like torch.Tensor) to storage on one backend plus its
// autograd state. Generic code never reads elements on the host; the reads a user asks for
// (item, to_vector, printing) are counted in minigrad::counters().host_reads.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "autograd.hpp"
#include "counters.hpp"
#include "error.hpp"
#include "random.hpp"
#include "shape.hpp"

namespace minigrad {

template <class B, class T = float>
class Tensor;

// Shape ops the Tensor members below call (ops/shape.hpp).
template <class B, class T>
Tensor<B, T> reshape(const Tensor<B, T>& x, std::span<const std::int64_t> shape);
template <class B, class T>
Tensor<B, T> view(const Tensor<B, T>& x, std::initializer_list<std::int64_t> shape);

namespace detail {
template <class X>
struct is_tensor : std::false_type {};
template <class B, class T>
struct is_tensor<Tensor<B, T>> : std::true_type {};

// A host-side table with rows/cols/values, such as data::Matrix.
template <class M, class T>
concept HostMatrix = requires(const M& m) {
    { m.rows } -> std::convertible_to<std::int64_t>;
    { m.cols } -> std::convertible_to<std::int64_t>;
    { m.values.data() } -> std::convertible_to<const T*>;
};

// Tensor::size's message, out of line so that the check left in size() is a compare and a branch.
[[noreturn, gnu::cold, gnu::noinline]] inline void bad_size_axis(int axis, const Shape& s) {
    const int n = s.ndim();
    if (n == 0) fail<ShapeError>("size: axis {} asked of a scalar (shape []), which has no dimensions", axis);
    fail<ShapeError>("size: axis {} is out of range for a tensor of shape {} ({} dimension{}; valid: {}..{})", axis, s, n,
                     n == 1 ? "" : "s", -n, n - 1);
}

// Copies `bytes` between backends, staying on the host side of whichever is a device.
template <class To, class From>
void transfer(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes) {
    if constexpr (std::is_same_v<To, From>) {
        if (dst_device == src_device) return To::copy(dst, src, bytes, dst_device);
        std::vector<unsigned char> staging(bytes);  // between two GPUs, through the host
        From::download(staging.data(), src, bytes, src_device);
        To::upload(dst, staging.data(), bytes, dst_device);
    } else if constexpr (From::is_host) {
        To::upload(dst, src, bytes, dst_device);
    } else {
        static_assert(To::is_host, "minigrad: copies between two device backends are not supported");
        From::download(dst, src, bytes, src_device);
    }
}
}  // namespace detail

template <class B, class T>
class Tensor {
    static_assert(std::is_arithmetic_v<T>, "minigrad: Tensor holds float, double or an integer type");

  public:
    using backend_type = B;
    using value_type = T;
    using Impl = detail::TensorImpl<B, T>;

    Tensor() = default;  // an undefined tensor, as an absent .grad
    explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    Tensor(const Tensor&) = default;
    Tensor(Tensor&&) noexcept = default;
    // A Tensor is a handle, so assigning to a temporary one changes nothing: `x.grad() = Tensor{}`
    // (PyTorch's `x.grad = None`) would leave the gradient as it was. Only a named tensor can be
    // assigned to; x.zero_grad() drops a gradient.
    Tensor& operator=(const Tensor&) & = default;
    Tensor& operator=(Tensor&&) & noexcept = default;
    Tensor& operator=(const Tensor&) && = delete;  // to drop a gradient, x.zero_grad(), not x.grad() = ...
    Tensor& operator=(Tensor&&) && = delete;  // to drop a gradient, x.zero_grad(), not x.grad() = ...

    // ---- creation -------------------------------------------------------------------------
    static Tensor empty(const Shape& shape, int device = B::current_device()) {
        return Tensor(std::make_shared<Impl>(shape, device));
    }
    static Tensor from(std::span<const T> values, const Shape& shape,
                       int device = B::current_device()) {
        if (static_cast<std::int64_t>(values.size()) != shape.numel()) {
            detail::fail<ShapeError>("Tensor::from: {} values given for shape {}, which holds {}",
                                     values.size(), shape, shape.numel());
        }
        Tensor t = empty(shape, device);
        B::upload(t.impl_->data, values.data(), t.impl_->bytes(), device);
        return t;
    }
    static Tensor from(const std::vector<T>& values) {
        return from(values, Shape{static_cast<std::int64_t>(values.size())});
    }
    static Tensor from(const std::vector<T>& values, const Shape& shape) {
        if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> packs bits: unpack to one bool per element
            const std::unique_ptr<bool[]> unpacked(new bool[values.size()]);
            std::copy(values.begin(), values.end(), unpacked.get());
            return from(std::span<const T>(unpacked.get(), values.size()), shape);
        } else {
            return from(std::span<const T>(values), shape);
        }
    }
    template <detail::HostMatrix<T> M>
    static Tensor from(const M& matrix) {
        return from(std::span<const T>(matrix.values.data(), matrix.values.size()),
                    Shape{static_cast<std::int64_t>(matrix.rows), static_cast<std::int64_t>(matrix.cols)});
    }
    static Tensor full(const Shape& shape, T value, int device = B::current_device()) {
        Tensor t = empty(shape, device);
        B::launch(t.numel(), kernels::Fill<T>{t.impl_->data, value}, device);
        return t;
    }
    static Tensor zeros(const Shape& shape, int device = B::current_device()) {
        return full(shape, T(0), device);
    }
    static Tensor ones(const Shape& shape, int device = B::current_device()) {
        return full(shape, T(1), device);
    }
    // Uniform in [lo, hi), drawn on the host from `gen` so every backend gets the same values.
    static Tensor uniform(const Shape& shape, double lo, double hi,
                          Generator& gen = default_generator(), int device = B::current_device()) {
        // Finite as T too (1e39 is finite as a double, not as a float), and so is its width.
        if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && std::isfinite(static_cast<T>(lo)) &&
              std::isfinite(static_cast<T>(hi)) && std::isfinite(hi - lo))) {
            detail::fail<ValueError>("Tensor::uniform: the range [{}, {}) must be finite in the tensor's type, with lo <= hi", lo, hi);
        }
        refuse_draw_in_capture("uniform", device);
        Tensor t = empty(shape, device);
        if constexpr (B::is_host) {
            gen.fill_uniform(std::span<T>(t.data(), static_cast<std::size_t>(t.numel())), lo, hi);
        } else {  // staged through a bounded host buffer, so a large tensor needs no host copy of itself
            constexpr std::int64_t chunk = 1 << 16;
            std::vector<T> staging(static_cast<std::size_t>(std::min(chunk, t.numel())));
            for (std::int64_t start = 0; start < t.numel(); start += chunk) {
                const std::int64_t n = std::min(chunk, t.numel() - start);
                gen.fill_uniform(std::span<T>(staging.data(), static_cast<std::size_t>(n)), lo, hi);
                B::upload(t.data() + start, staging.data(), static_cast<std::size_t>(n) * sizeof(T), device);
            }
        }
        return t;
    }

    // Standard normal draws, as torch.randn: drawn on the host from `gen` (Box-Muller over its
    // uniform draws), so every backend gets the same values. Floating point only.
    static Tensor randn(const Shape& shape, Generator& gen = default_generator(), int device = B::current_device()) {
        static_assert(std::is_floating_point_v<T>, "randn draws floating-point values: use a float or double tensor");
        refuse_draw_in_capture("randn", device);
        std::vector<T> values(static_cast<std::size_t>(shape.numel()));
        gen.fill_normal(std::span<T>(values));
        return from(std::span<const T>(values), shape, device);
    }
    // start, start + step, ... while short of end, as torch.arange: ceil((end - start) / step)
    // values, each start + i * step computed in double and then converted to T.
    static Tensor arange(double start, double end, double step = 1, int device = B::current_device()) {
        if (!(std::isfinite(start) && std::isfinite(end) && std::isfinite(step))) {
            detail::fail<ValueError>("Tensor::arange: start={}, end={} and step={} must be finite", start, end, step);
        }
        if (step == 0) detail::fail<ValueError>("Tensor::arange: step must not be 0");
        const double count = std::ceil((end - start) / step);
        if (count < 0) {
            detail::fail<ValueError>("Tensor::arange: step={} goes away from end={} (start={}): it must have the sign of end - start", step,
                                     end, start);
        }
        if (!(count <= static_cast<double>(Shape::max_numel))) detail::fail<ValueError>("Tensor::arange: {} values are more than a tensor holds", count);
        std::vector<T> values(static_cast<std::size_t>(count));
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<T>(start + static_cast<double>(i) * step);
        return from(std::span<const T>(values), Shape{static_cast<std::int64_t>(values.size())}, device);
    }
    static Tensor arange(double end) { return arange(0, end); }
    // `steps` values from start to end, both included, evenly spaced, as torch.linspace (the first
    // half counted from start, the second from end, so both ends are exact).
    static Tensor linspace(double start, double end, std::int64_t steps, int device = B::current_device()) {
        if (!(std::isfinite(start) && std::isfinite(end))) detail::fail<ValueError>("Tensor::linspace: start={} and end={} must be finite", start, end);
        if (steps < 0 || steps > Shape::max_numel) detail::fail<ValueError>("Tensor::linspace: steps={} must be >= 0", steps);
        std::vector<T> values(static_cast<std::size_t>(steps));
        const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
        for (std::int64_t i = 0; i < steps; ++i) {
            const double v = i < steps / 2 ? start + step * static_cast<double>(i) : end - step * static_cast<double>(steps - 1 - i);
            values[static_cast<std::size_t>(i)] = static_cast<T>(steps == 1 ? start : v);
        }
        return from(std::span<const T>(values), Shape{steps}, device);
    }
    // The (n, m) matrix with ones on its diagonal (m = n by default), as torch.eye.
    static Tensor eye(std::int64_t n, std::int64_t m = -1, int device = B::current_device()) {
        if (m == -1) m = n;
        if (n < 0 || m < 0) detail::fail<ValueError>("Tensor::eye: n={} and m={} must be >= 0", n, m);
        const Shape shape{n, m};
        std::vector<T> values(static_cast<std::size_t>(shape.numel()), T(0));
        for (std::int64_t i = 0; i < std::min(n, m); ++i) values[static_cast<std::size_t>(i * m + i)] = T(1);
        return from(std::span<const T>(values), shape, device);
    }

    // ---- facts ----------------------------------------------------------------------------
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    std::int64_t numel() const { return impl().numel(); }
    int ndim() const { return impl().shape.ndim(); }
    // The size of one dimension; a negative axis counts from the end, as in PyTorch.
    std::int64_t size(int axis) const {
        const Shape& s = shape();
        const int a = axis < 0 ? axis + s.ndim() : axis;
        if (a < 0 || a >= s.ndim()) [[unlikely]] detail::bad_size_axis(axis, s);
        return s.begin()[a];
    }
    int device() const { return impl().device; }
    T* data() { return impl().data; }  // backend memory: a device pointer on a GPU backend
    const T* data() const { return impl().data; }
    Impl& impl() const {
        if (!impl_) detail::fail<Error>("Tensor: this tensor is undefined (default-constructed, or an absent grad)");
        return *impl_;
    }
    const std::shared_ptr<Impl>& impl_ptr() const { return impl_; }

    // ---- moving and reading ---------------------------------------------------------------
    // A copy on another backend (or the same one): not part of the autograd graph.
    template <class B2>
    Tensor<B2, T> to(int device = B2::current_device()) const {
        auto out = Tensor<B2, T>::empty(shape(), device);
        detail::transfer<B2, B>(out.data(), device, data(), this->device(), impl().bytes());
        return out;
    }
    Tensor clone() const { return to<B>(device()); }

    // Reads every element on the host: a host read (and a sync on a device backend).
    std::vector<T> to_vector() const {
        std::vector<T> out(static_cast<std::size_t>(numel()));
        if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> packs bits: read into bools first
            const std::unique_ptr<bool[]> unpacked(new bool[out.size()]);
            B::download(unpacked.get(), data(), impl().bytes(), device());
            std::copy(unpacked.get(), unpacked.get() + out.size(), out.begin());
        } else {
            B::download(out.data(), data(), impl().bytes(), device());
        }
        ++counters().host_reads;
        return out;
    }
    T item() const {
        if (numel() != 1) {
            detail::fail<ShapeError>("item: the tensor has shape {} ({} elements), expected exactly 1 element",
                                     shape(), numel());
        }
        T value{};
        B::download(&value, data(), sizeof(T), device());
        ++counters().host_reads;
        return value;
    }

    // ---- shape (ops/shape.hpp) --------------------------------------------------------------
    Tensor reshape(std::initializer_list<std::int64_t> shape) const {
        return minigrad::reshape(*this, std::span<const std::int64_t>(shape.begin(), shape.size()));
    }
    Tensor view(std::initializer_list<std::int64_t> shape) const { return minigrad::view(*this, shape); }

    // ---- in place, outside autograd --------------------------------------------------------
    // As PyTorch's, but never recorded: refused on a tensor that requires grad while grad mode is
    // on; under NoGradGuard (as an optimizer step) allowed, and the version moves so that a
    // backward() through a graph that read the old values is refused.
    Tensor& fill_(T value) {
        check_in_place("fill_");
        B::launch(numel(), kernels::Fill<T>{data(), value}, device());
        detail::mark_modified(impl());
        return *this;
    }
    Tensor& zero_() {
        check_in_place("zero_");
        B::launch(numel(), kernels::Fill<T>{data(), T(0)}, device());
        detail::mark_modified(impl());
        return *this;
    }
    Tensor& add_(T value) {
        check_in_place("add_");
        B::launch(numel(), kernels::AddScalar<T>{data(), value, false}, device());
        detail::mark_modified(impl());
        return *this;
    }
    Tensor& mul_(T value) {
        check_in_place("mul_");
        B::launch(numel(), kernels::ScaleInPlace<T>{data(), value}, device());
        detail::mark_modified(impl());
        return *this;
    }
    // src's values, from any backend or device; same shape and element type.
    template <class B2>
    Tensor& copy_(const Tensor<B2, T>& src) {
        check_in_place("copy_");
        if (!src.defined()) detail::fail<Error>("copy_: argument #1 'src' is an undefined tensor (default-constructed, or an absent grad)");
        if (src.shape() != shape()) {
            detail::fail<ShapeError>("copy_: argument #1 'src' has shape {}, expected {} (the shape of the tensor copied into)", src.shape(), shape());
        }
        detail::transfer<B, B2>(data(), device(), src.data(), src.device(), impl().bytes());
        detail::mark_modified(impl());
        return *this;
    }

    // ---- autograd -------------------------------------------------------------------------
    bool requires_grad() const { return impl().requires_grad; }
    Tensor& requires_grad_(bool on = true) {
        static_assert(std::is_floating_point_v<T>, "minigrad: only floating-point tensors can require grad");
        if (impl().grad_fn && !on) {
            detail::fail<Error>("requires_grad_: this tensor is the result of an op; use detach() instead");
        }
        impl().requires_grad = on;
        return *this;
    }
    // The accumulated gradient, or an undefined tensor if none was computed yet.
    Tensor grad() const {
        detail::materialize_grad(impl());
        return Tensor(impl().grad);
    }
    // Drops the accumulated gradient, as PyTorch's `x.grad = None`: the next backward() writes a
    // fresh one, and optimizers and clip_grad_norm_ skip this tensor until then. No kernel runs and
    // the buffer is kept, so a captured step still writes where it did; grad() reads zeros meanwhile.
    void zero_grad() {
        if (impl().grad) impl().grad_is_zero = true;
    }
    // Shares storage with this tensor but has no history and needs no gradient.
    Tensor detach() const { return Tensor(std::make_shared<Impl>(impl_ptr_checked())); }
    void backward() const {
        if (!impl_) detail::fail<Error>("backward: the tensor is undefined (default-constructed, or an absent grad)");
        detail::run_backward(impl_);
    }

  private:
    // A draw is host work a replay would not redo (and CUDA's upload is refused in a capture).
    static void refuse_draw_in_capture(const char* factory, int device) {
        if constexpr (B::supports_graphs) {
            if (B::capturing(device)) {
                detail::fail<Error>("Tensor::{}: drawing random values is not possible inside a captured step (StepGraph): a "
                                    "replay would not draw again; draw them outside the step",
                                    factory);
            }
        }
    }

    void check_in_place(const char* op) const {
        if (impl().requires_grad && detail::grad_mode_flag()) {
            detail::fail<Error>("{}: the tensor requires grad, and autograd does not record in-place ops; "
                                "write it under mg::NoGradGuard (as an optimizer step does)", op);
        }
    }
    const std::shared_ptr<Impl>& impl_ptr_checked() const {
        impl();
        return impl_;
    }
    std::shared_ptr<Impl> impl_;
};

namespace detail {
// A tensor for an optimizer's state, made during a step (see TensorImpl::StateStorage); its values
// are uninitialised.
template <class B, class T>
Tensor<B, T> state_tensor(const Shape& shape, int device) {
    return Tensor<B, T>(std::make_shared<TensorImpl<B, T>>(shape, device, typename TensorImpl<B, T>::StateStorage{}));
}
template <class B, class T>
Tensor<B, T> state_tensor(const Shape& shape, int device, T fill) {
    auto t = state_tensor<B, T>(shape, device);
    B::launch(t.numel(), kernels::Fill<T>{t.data(), fill}, device);
    return t;
}
template <class B, class T>
void check_like(const char* factory, const Tensor<B, T>& x) {
    if (!x.defined()) fail<ValueError>("{}: argument #1 'input' is an undefined tensor (default-constructed or moved from)", factory);
}
}  // namespace detail

// Tensors of x's shape, backend, element type and device, as torch's *_like factories.
template <class B, class T>
Tensor<B, T> empty_like(const Tensor<B, T>& x) {
    detail::check_like("empty_like", x);
    return Tensor<B, T>::empty(x.shape(), x.device());
}
template <class B, class T>
Tensor<B, T> zeros_like(const Tensor<B, T>& x) {
    detail::check_like("zeros_like", x);
    return Tensor<B, T>::zeros(x.shape(), x.device());
}
template <class B, class T>
Tensor<B, T> ones_like(const Tensor<B, T>& x) {
    detail::check_like("ones_like", x);
    return Tensor<B, T>::ones(x.shape(), x.device());
}
template <class B, class T>
Tensor<B, T> full_like(const Tensor<B, T>& x, T value) {
    detail::check_like("full_like", x);
    return Tensor<B, T>::full(x.shape(), value, x.device());
}
// Uniform in [0, 1), as torch.rand_like.
template <class B, class T>
Tensor<B, T> rand_like(const Tensor<B, T>& x, Generator& gen = default_generator()) {
    detail::check_like("rand_like", x);
    return Tensor<B, T>::uniform(x.shape(), 0.0, 1.0, gen, x.device());
}
template <class B, class T>
Tensor<B, T> randn_like(const Tensor<B, T>& x, Generator& gen = default_generator()) {
    detail::check_like("randn_like", x);
    return Tensor<B, T>::randn(x.shape(), gen, x.device());
}

}  // namespace minigrad

// Printing, as torch prints: values, then the backend and shape. Reading values is a host read.
// The text is made with fmt::format (the compiled libfmt) and copied out: fmt::format_to into the
// context would instantiate fmt's writer in every file (see detail::join).
template <class B, class T>
struct fmt::formatter<minigrad::Tensor<B, T>> {
    constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
    static std::string element_text(T value) {
        if constexpr (std::is_floating_point_v<T>)
            return minigrad::detail::format("{:.4g}", value);
        else if constexpr (std::is_same_v<T, bool>)
            return value ? "True" : "False";
        else
            return minigrad::detail::format("{}", +value);  // + prints an int8 as a number, not a character
    }
    static std::string text(const minigrad::Tensor<B, T>& t) {
        if (!t.defined()) return "tensor(undefined)";
        const auto values = t.to_vector();
        const auto& shape = t.shape();
        const std::int64_t cols = shape.ndim() >= 1 ? shape[shape.ndim() - 1] : 1;
        std::string out = "tensor(";
        if (shape.ndim() == 0) {
            out += element_text(values.empty() ? T{} : values[0]);
        } else if (values.empty()) {
            out += "[]";  // the shape says which dimension is zero
        } else {
            const bool matrix = shape.ndim() >= 2;
            if (matrix) out += '[';
            for (std::size_t i = 0; i < values.size(); ++i) {
                const bool row_start = i % cols == 0, row_end = (i + 1) % cols == 0;
                if (row_start) out += i ? (matrix ? ",\n        [" : "[") : "[";
                if (!row_start) out += ", ";
                out += element_text(values[i]);
                if (row_end) out += ']';
            }
            if (matrix) out += ']';
        }
        return out + minigrad::detail::format(", backend={}, shape={}{})", B::name, shape, t.requires_grad() ? ", requires_grad" : "");
    }
    template <class Ctx>
    auto format(const minigrad::Tensor<B, T>& t, Ctx& ctx) const {
        const std::string s = text(t);
        return std::copy(s.begin(), s.end(), ctx.out());
    }
};
