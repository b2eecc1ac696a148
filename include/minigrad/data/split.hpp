// train_test_split with scikit-learn's rows: ShuffleSplit over numpy's legacy RandomState
// permutation, reproduced bit for bit so that the same seed gives the same split as the PyTorch
// original.
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "dataset.hpp"

namespace minigrad::data {

struct SplitOptions {
    double test_size = 0.25;
    std::uint32_t seed = 0;
};

// Fisher-Yates from the last index down, as numpy's legacy RandomState.shuffle: each swap index j in
// [0, i] is drawn by masked rejection from 32-bit MT19937 outputs. std::mt19937's output is fixed by
// the C++ standard and the rest is written out here (no std::shuffle or std::uniform_int_distribution,
// whose results differ between standard libraries), so one seed gives one order everywhere.
inline void shuffle_in_place(std::span<std::int64_t> values, std::mt19937& gen) {
    for (std::size_t i = values.size() > 0 ? values.size() - 1 : 0; i > 0; --i) {
        std::uint32_t mask = static_cast<std::uint32_t>(i);
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        std::uint32_t j;
        do {
            j = static_cast<std::uint32_t>(gen()) & mask;
        } while (j > static_cast<std::uint32_t>(i));
        std::swap(values[i], values[j]);
    }
}

// numpy.random.RandomState(seed).permutation(n).
inline std::vector<std::int64_t> legacy_permutation(std::int64_t n, std::uint32_t seed) {
    std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
    std::iota(perm.begin(), perm.end(), 0);
    std::mt19937 gen(seed);
    shuffle_in_place(perm, gen);
    return perm;
}

// The test rows are the first ceil(test_size * n) entries of the permutation, the train rows the rest.
inline std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> split_indices(std::int64_t n, const SplitOptions& options) {
    if (!(options.test_size > 0.0 && options.test_size < 1.0)) {
        minigrad::detail::fail<ValueError>("train_test_split: test_size={} must be in (0, 1)", options.test_size);
    }
    const auto n_test = static_cast<std::int64_t>(std::ceil(options.test_size * static_cast<double>(n)));
    if (n_test <= 0 || n_test >= n) {
        minigrad::detail::fail<ValueError>("train_test_split: test_size={} of {} rows leaves {} test and {} train rows; both must be at least 1",
                                           options.test_size, n, n_test, n - n_test);
    }
    auto perm = legacy_permutation(n, options.seed);
    std::vector<std::int64_t> test(perm.begin(), perm.begin() + n_test);
    std::vector<std::int64_t> train(perm.begin() + n_test, perm.end());
    return {std::move(train), std::move(test)};
}

// Returns {train, test}.
inline std::pair<Dataset, Dataset> train_test_split(const Dataset& ds, const SplitOptions& options = {}) {
    auto [train, test] = split_indices(ds.size(), options);
    return {ds.subset(train), ds.subset(test)};
}

}  // namespace minigrad::data
