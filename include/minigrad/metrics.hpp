// Metrics as small functions: accuracy, confusion_matrix, mse, mae.
// - On host vectors (spans): predicted class indices or values beside the targets.
// - On tensors: accuracy(logits, target), mse(pred, target), mae(pred, target) compute on the
//   tensors' backend (a kernel per element, then a sum) and read one scalar: one host read.
// Sums are in double. Every function refuses empty inputs and sizes that do not match.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "ops/checks.hpp"
#include "ops/labels.hpp"
#include "tensor.hpp"

// The metrics' functors. They are not step ops (a metric reads its result on the host, which no
// captured step may), so they sit apart from minigrad::kernels, whose functors a compiled step
// must be able to run (tests/unit_main.cpp).
namespace minigrad::metrics::kernels {
// logits is (rows, cols), target is (rows), correct is (rows): 1 where the row's first maximum is
// at the target class.
template <class T>
struct CorrectArgmax {
    const T* logits;
    const std::int32_t* target;
    double* correct;
    std::int64_t cols;
    MINIGRAD_HD void operator()(std::int64_t r) const {
        const T* row = logits + r * cols;
        std::int64_t best = 0;
        for (std::int64_t c = 1; c < cols; ++c)
            if (row[c] > row[best]) best = c;
        correct[r] = best == target[r] ? 1.0 : 0.0;
    }
};

// pred, target and error are (n): the squared (or absolute) difference per element.
template <class T, bool Squared>
struct ElementError {
    const T* pred;
    const T* target;
    double* error;
    MINIGRAD_HD void operator()(std::int64_t i) const {
        const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
        error[i] = Squared ? d * d : (d < 0 ? -d : d);
    }
};
}  // namespace minigrad::metrics::kernels

namespace minigrad::metrics {

namespace detail {
using minigrad::detail::fail;

template <class P, class T>
void check_sizes(std::string_view op, std::span<const P> pred, std::span<const T> target) {
    if (pred.size() != target.size()) fail<ShapeError>("{}: 'pred' has {} values but 'target' has {}", op, pred.size(), target.size());
    if (pred.empty()) fail<ValueError>("{}: 'pred' and 'target' are empty; there is nothing to score", op);
}

template <class T, bool Squared>
double mean_error(std::string_view op, std::span<const T> pred, std::span<const T> target) {
    check_sizes(op, pred, target);
    double sum = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) {
        const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
        sum += Squared ? d * d : std::abs(d);
    }
    return sum / static_cast<double>(pred.size());
}

// Launches `f` over n elements writing into a double buffer, then reads its mean: one host read.
template <class B, class F>
double device_mean(std::int64_t n, int device, const F& make) {
    auto per_element = Tensor<B, double>::empty({n}, device);
    B::launch(n, make(per_element.data()), device);
    auto mean = Tensor<B, double>::empty({}, device);
    B::sum(per_element.data(), n, mean.data(), 1.0 / static_cast<double>(n), true, device);
    return mean.item();
}

template <class B, class T>
double tensor_mean_error(std::string_view op, const Tensor<B, T>& pred, const Tensor<B, T>& target, auto make) {
    minigrad::detail::check_same_device(op, pred, "pred", target, 2, "target");
    if (pred.shape() != target.shape()) {
        fail<ShapeError>("{}: argument #2 'target' has shape {}, expected the shape of argument #1 'pred', {}", op, target.shape(),
                         pred.shape());
    }
    if (pred.numel() == 0) fail<ValueError>("{}: 'pred' and 'target' are empty (shape {}); there is nothing to score", op, pred.shape());
    return device_mean<B>(pred.numel(), pred.device(), [&](double* out) { return make(pred.data(), target.data(), out); });
}
}  // namespace detail

// The fraction of predicted class indices equal to the targets.
inline double accuracy(std::span<const std::int32_t> pred, std::span<const std::int32_t> target) {
    detail::check_sizes("accuracy", pred, target);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == target[i];
    return static_cast<double>(correct) / static_cast<double>(pred.size());
}

// The fraction of rows of logits (rows, classes) whose first maximum is at the target class.
template <class B, class T>
double accuracy(const Tensor<B, T>& logits, const Tensor<B, std::int32_t>& target) {
    minigrad::detail::check_same_device("accuracy", logits, "logits", target, 2, "target");
    minigrad::detail::check_ndim("accuracy", logits, 1, "logits", 2, "[rows, classes]");
    if (target.shape() != Shape{logits.size(0)}) {
        detail::fail<ShapeError>("accuracy: argument #2 'target' has shape {}, expected [{}] (a class per row of 'logits', shape {})",
                                 target.shape(), logits.size(0), logits.shape());
    }
    if (logits.numel() == 0) detail::fail<ValueError>("accuracy: 'logits' has shape {}; there is nothing to score", logits.shape());
    // every target a class of logits, as cross_entropy requires: an out-of-range label is an
    // error, not a miss (no label is ignored)
    minigrad::detail::check_labels<B>(target.data(), logits.size(0), logits.size(1), minigrad::detail::target_site<std::int32_t>("accuracy"),
                                      target.device());
    return detail::device_mean<B>(logits.size(0), logits.device(), [&](double* out) {
        return kernels::CorrectArgmax<T>{logits.data(), target.data(), out, logits.size(1)};
    });
}

// counts[t * classes + p] is the number of rows of true class t predicted as p (rows: the truth,
// as scikit-learn's confusion_matrix).
struct ConfusionMatrix {
    std::int64_t classes = 0;
    std::vector<std::int64_t> counts;
    std::int64_t at(std::int64_t truth, std::int64_t predicted) const { return counts[static_cast<std::size_t>(truth * classes + predicted)]; }
};

inline ConfusionMatrix confusion_matrix(std::span<const std::int32_t> pred, std::span<const std::int32_t> target, std::int64_t classes) {
    detail::check_sizes("confusion_matrix", pred, target);
    if (classes < 1 || classes > 4096) {
        detail::fail<ValueError>("confusion_matrix: classes is {}, expected 1..4096", classes);
    }
    for (const auto& [values, name] : {std::pair{pred, "pred"}, std::pair{target, "target"}}) {
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (values[i] < 0 || values[i] >= classes) {
                detail::fail<ValueError>("confusion_matrix: {}[{}] is class {}, expected a class in [0, {})", name, i, values[i], classes);
            }
        }
    }
    ConfusionMatrix out{classes, std::vector<std::int64_t>(static_cast<std::size_t>(classes * classes), 0)};
    for (std::size_t i = 0; i < pred.size(); ++i) ++out.counts[static_cast<std::size_t>(target[i] * classes + pred[i])];
    return out;
}

// Mean squared error and mean absolute error.
inline double mse(std::span<const float> pred, std::span<const float> target) { return detail::mean_error<float, true>("mse", pred, target); }
inline double mae(std::span<const float> pred, std::span<const float> target) { return detail::mean_error<float, false>("mae", pred, target); }

template <class B, class T>
double mse(const Tensor<B, T>& pred, const Tensor<B, T>& target) {
    return detail::tensor_mean_error("mse", pred, target, [](const T* p, const T* t, double* out) { return kernels::ElementError<T, true>{p, t, out}; });
}
template <class B, class T>
double mae(const Tensor<B, T>& pred, const Tensor<B, T>& target) {
    return detail::tensor_mean_error("mae", pred, target, [](const T* p, const T* t, double* out) { return kernels::ElementError<T, false>{p, t, out}; });
}

}  // namespace minigrad::metrics
