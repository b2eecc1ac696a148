// The examples' train/test split (scikit-learn's rows, data/split.hpp), optionally written to a
// file so that a reference run in another framework trains and tests on exactly these rows.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

#include "text_file.hpp"

namespace examples {

// Returns {train, test}. With a non-empty `write_to`, writes one line per row of `ds`, in split
// order: "train,<row>" or "test,<row>", rows 0-based after the header.
inline std::pair<minigrad::data::Dataset, minigrad::data::Dataset> split_dataset(const minigrad::data::Dataset& ds, double test_size,
                                                                                 std::uint32_t seed, const std::string& write_to) {
    const auto [train, test] = minigrad::data::split_indices(ds.size(), {.test_size = test_size, .seed = seed});
    if (!write_to.empty()) {
        std::string text = "set,row\n";
        for (auto r : train) text += fmt::format("train,{}\n", r);
        for (auto r : test) text += fmt::format("test,{}\n", r);
        write_text_file(write_to, text);
    }
    return {ds.subset(train), ds.subset(test)};
}

}  // namespace examples
