// Column scalers as scikit-learn's, fit on the training rows and applied to any rows:
// - MinMaxScaler maps each column's [min, max] to [0, 1];
// - StandardScaler subtracts each column's mean and divides by its population standard deviation
//   (ddof = 0, as numpy.std and sklearn).
// A constant column gets scale 1 in both, as sklearn does. Statistics are computed in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "dataset.hpp"

namespace minigrad::data {

namespace detail {
// What both scalers share: per column, out = (x - offset) * scale. A fit checks the whole matrix
// and changes nothing unless all of it is good.
class ColumnScaler {
  public:
    Matrix transform(const Matrix& x) const {
        if (!fitted_) minigrad::detail::fail<Error>("{}::transform: call fit() first", name_);
        x.check(minigrad::detail::format("{}::transform", name_));
        if (x.cols != static_cast<std::int64_t>(offset_.size())) {
            minigrad::detail::fail<ShapeError>("{}::transform: the matrix has {} columns, the scaler was fit on {}", name_, x.cols,
                                               offset_.size());
        }
        Matrix out{x.rows, x.cols, std::vector<float>(x.values.size())};
        for (std::int64_t r = 0; r < x.rows; ++r)
            for (std::int64_t c = 0; c < x.cols; ++c) {
                const auto i = static_cast<std::size_t>(c);
                const float v = static_cast<float>((x.at(r, c) - offset_[i]) * scale_[i]);
                if (!std::isfinite(v)) {
                    minigrad::detail::fail<ValueError>("{}::transform: row {} column {} is {}, which scales to {} (expected a finite number)",
                                                       name_, r, c, x.at(r, c), v);
                }
                out.values[static_cast<std::size_t>(r * x.cols + c)] = v;
            }
        return out;
    }

  protected:
    explicit ColumnScaler(std::string_view name) : name_(name) {}

    // Checks the matrix for a fit: consistent, at least one row, every value finite.
    void check_fit(const Matrix& x) const {
        const auto who = minigrad::detail::format("{}::fit", name_);
        x.check(who);
        if (x.rows == 0) minigrad::detail::fail<ValueError>("{}: the matrix has no rows", who);
        for (std::int64_t r = 0; r < x.rows; ++r)
            for (std::int64_t c = 0; c < x.cols; ++c) {
                const double v = x.at(r, c);
                if (!std::isfinite(v)) {
                    minigrad::detail::fail<ValueError>("{}: row {} column {} is {}, expected a finite number", who, r, c, v);
                }
            }
    }
    void set(std::vector<double> offset, std::vector<double> scale) {
        offset_ = std::move(offset);
        scale_ = std::move(scale);
        fitted_ = true;
    }

  private:
    std::string_view name_;
    std::vector<double> offset_, scale_;
    bool fitted_ = false;
};
}  // namespace detail

class MinMaxScaler : public detail::ColumnScaler {
  public:
    MinMaxScaler() : ColumnScaler("MinMaxScaler") {}

    void fit(const Matrix& x) {
        check_fit(x);
        std::vector<double> min(static_cast<std::size_t>(x.cols), 0.0), scale(static_cast<std::size_t>(x.cols), 1.0);
        for (std::int64_t c = 0; c < x.cols; ++c) {
            double lo = x.at(0, c), hi = x.at(0, c);
            for (std::int64_t r = 0; r < x.rows; ++r) {
                lo = std::min<double>(lo, x.at(r, c));
                hi = std::max<double>(hi, x.at(r, c));
            }
            min[static_cast<std::size_t>(c)] = lo;
            scale[static_cast<std::size_t>(c)] = hi > lo ? 1.0 / (hi - lo) : 1.0;
        }
        set(std::move(min), std::move(scale));
    }

    Matrix fit_transform(const Matrix& x) {
        fit(x);
        return transform(x);
    }
};

class StandardScaler : public detail::ColumnScaler {
  public:
    StandardScaler() : ColumnScaler("StandardScaler") {}

    // Two passes (the mean, then the mean squared deviation), so a constant column has variance
    // exactly 0 and gets scale 1.
    void fit(const Matrix& x) {
        check_fit(x);
        const auto cols = static_cast<std::size_t>(x.cols);
        std::vector<double> mean(cols, 0.0), scale(cols, 1.0);
        for (std::int64_t c = 0; c < x.cols; ++c) {
            double sum = 0;
            for (std::int64_t r = 0; r < x.rows; ++r) sum += x.at(r, c);
            const double m = sum / static_cast<double>(x.rows);
            double squares = 0;
            for (std::int64_t r = 0; r < x.rows; ++r) squares += (x.at(r, c) - m) * (x.at(r, c) - m);
            const double std_dev = std::sqrt(squares / static_cast<double>(x.rows));
            mean[static_cast<std::size_t>(c)] = m;
            scale[static_cast<std::size_t>(c)] = std_dev > 0 ? 1.0 / std_dev : 1.0;
        }
        set(std::move(mean), std::move(scale));
    }

    Matrix fit_transform(const Matrix& x) {
        fit(x);
        return transform(x);
    }
};

}  // namespace minigrad::data
