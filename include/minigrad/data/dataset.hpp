// Host-side tables for loading data before it becomes a tensor: a row-major float Matrix and a
// Dataset of features with integer class labels (classification) and/or float targets (regression).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"

namespace minigrad::data {

struct Matrix {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::vector<float> values;  // rows * cols, row-major

    float at(std::int64_t r, std::int64_t c) const { return values[static_cast<std::size_t>(r * cols + c)]; }

    // A Matrix is a plain struct anyone can fill: code that indexes it first checks that rows,
    // cols and values agree, so an inconsistent one is an error, never a read past the end.
    void check(std::string_view who) const {
        std::int64_t n = 0;
        if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) || n != static_cast<std::int64_t>(values.size())) {
            minigrad::detail::fail<ShapeError>("{}: the matrix says {} rows x {} columns but holds {} values", who, rows, cols,
                                               values.size());
        }
    }
};

struct Dataset {
    Matrix x;                              // (rows, features)
    std::vector<std::int32_t> y;           // (rows) class index of each row; empty for a regression set
    std::vector<std::string> feature_names;
    std::vector<std::string> class_names;  // index -> name, in order of first appearance (LabelKind::classes only)
    std::vector<float> targets;            // (rows) float target of each row; empty for a classification set

    std::int64_t size() const { return x.rows; }

    // The matrix is consistent, and each of y and targets is empty or has a value per row.
    void check(std::string_view who) const {
        x.check(who);
        if (!y.empty() && static_cast<std::int64_t>(y.size()) != x.rows) {
            minigrad::detail::fail<ShapeError>("{}: the dataset has {} rows of features but {} labels", who, x.rows, y.size());
        }
        if (!targets.empty() && static_cast<std::int64_t>(targets.size()) != x.rows) {
            minigrad::detail::fail<ShapeError>("{}: the dataset has {} rows of features but {} targets (Dataset::targets)", who, x.rows,
                                               targets.size());
        }
    }

    // Every label is a class in [0, classes): a model with `classes` outputs can be trained and
    // scored on every row. A metric or loss would refuse a bad label too, but only when it meets
    // it: a bad label in a test row would surface after training, or not at all.
    void check_classes(std::int64_t classes, std::string_view who) const {
        check(who);
        if (y.empty()) minigrad::detail::fail<ValueError>("{}: the dataset has no class labels (Dataset::y is empty)", who);
        for (std::size_t r = 0; r < y.size(); ++r) {
            if (y[r] < 0 || y[r] >= classes) {
                minigrad::detail::fail<ValueError>("{}: row {} has class {}, expected a class in [0, {}) (the model has {} outputs)", who, r,
                                                   y[r], classes, classes);
            }
        }
    }

    // The given rows, in the given order.
    Dataset subset(const std::vector<std::int64_t>& rows) const {
        check("Dataset::subset");
        for (auto r : rows) {
            if (r < 0 || r >= x.rows) {
                minigrad::detail::fail<ValueError>("Dataset::subset: row {} is out of range for a dataset of {} rows", r, x.rows);
            }
        }
        Dataset out{Matrix{static_cast<std::int64_t>(rows.size()), x.cols, {}}, {}, feature_names, class_names, {}};
        out.x.values.reserve(rows.size() * static_cast<std::size_t>(x.cols));
        for (auto r : rows) {
            for (std::int64_t c = 0; c < x.cols; ++c) out.x.values.push_back(x.at(r, c));
            if (!y.empty()) out.y.push_back(y[static_cast<std::size_t>(r)]);
            if (!targets.empty()) out.targets.push_back(targets[static_cast<std::size_t>(r)]);
        }
        return out;
    }
};

}  // namespace minigrad::data
