// MinMaxScaler as scikit-learn's: fit per-column min and max on the training rows, map them to
// [0, 1]; a constant column gets scale 1, as sklearn does.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "dataset.hpp"

namespace minigrad::data {

class MinMaxScaler {
  public:
    // Changes nothing unless the whole matrix is good.
    void fit(const Matrix& x) {
        x.check("MinMaxScaler::fit");
        if (x.rows == 0) minigrad::detail::fail<ValueError>("MinMaxScaler::fit: the matrix has no rows");
        std::vector<double> min(static_cast<std::size_t>(x.cols), 0.0), scale(static_cast<std::size_t>(x.cols), 1.0);
        for (std::int64_t c = 0; c < x.cols; ++c) {
            double lo = x.at(0, c), hi = x.at(0, c);
            for (std::int64_t r = 0; r < x.rows; ++r) {
                const double v = x.at(r, c);
                if (!std::isfinite(v)) {
                    minigrad::detail::fail<ValueError>("MinMaxScaler::fit: row {} column {} is {}, expected a finite number", r, c, v);
                }
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
            min[static_cast<std::size_t>(c)] = lo;
            scale[static_cast<std::size_t>(c)] = hi > lo ? 1.0 / (hi - lo) : 1.0;
        }
        min_ = std::move(min);
        scale_ = std::move(scale);
        fitted_ = true;
    }

    Matrix transform(const Matrix& x) const {
        if (!fitted_) minigrad::detail::fail<Error>("MinMaxScaler::transform: call fit() first");
        x.check("MinMaxScaler::transform");
        if (x.cols != static_cast<std::int64_t>(min_.size())) {
            minigrad::detail::fail<ShapeError>("MinMaxScaler::transform: the matrix has {} columns, the scaler was fit on {}",
                                               x.cols, min_.size());
        }
        Matrix out{x.rows, x.cols, std::vector<float>(x.values.size())};
        for (std::int64_t r = 0; r < x.rows; ++r)
            for (std::int64_t c = 0; c < x.cols; ++c) {
                const auto i = static_cast<std::size_t>(c);
                const float v = static_cast<float>((x.at(r, c) - min_[i]) * scale_[i]);
                if (!std::isfinite(v)) {
                    minigrad::detail::fail<ValueError>(
                        "MinMaxScaler::transform: row {} column {} is {}, which scales to {} (expected a finite number)", r, c,
                        x.at(r, c), v);
                }
                out.values[static_cast<std::size_t>(r * x.cols + c)] = v;
            }
        return out;
    }

    Matrix fit_transform(const Matrix& x) {
        fit(x);
        return transform(x);
    }

  private:
    std::vector<double> min_, scale_;
    bool fitted_ = false;
};

}  // namespace minigrad::data
