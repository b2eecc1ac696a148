// read_csv: a header row, numeric feature columns and one label column whose strings become class
// indices. Every error names file:line:column and the offending value.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "dataset.hpp"

namespace minigrad::data {

struct CsvOptions {
    std::string label = "label";  // the column holding class names
    char delimiter = ',';
};

namespace detail {
struct Field {
    std::string_view text;
    std::size_t column;  // 1-based character column where the field starts
};

inline std::vector<Field> split_fields(std::string_view line, char delimiter) {
    std::vector<Field> fields;
    std::size_t start = 0;
    while (true) {
        const auto end = line.find(delimiter, start);
        std::string_view raw = line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        std::size_t lead = 0;
        while (lead < raw.size() && (raw[lead] == ' ' || raw[lead] == '\t')) ++lead;
        raw.remove_prefix(lead);
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t')) raw.remove_suffix(1);
        if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') raw = raw.substr(1, raw.size() - 2);
        fields.push_back({raw, start + lead + 1});
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return fields;
}
}  // namespace detail

inline Dataset read_csv(const std::string& path, const CsvOptions& options = {}) {
    using minigrad::detail::fail;
    std::ifstream in(path);
    if (!in) fail<IoError>("read_csv: cannot open '{}': {}", path, std::strerror(errno));

    std::string line;
    std::size_t line_no = 0;
    auto next_line = [&]() -> bool {
        while (std::getline(in, line)) {
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find_first_not_of(" \t") != std::string::npos) return true;  // skip blank lines
        }
        return false;
    };

    if (!next_line()) fail<IoError>("read_csv: '{}' is empty: expected a header row", path);
    std::vector<std::string> header;  // copied: `line` is reused for every row
    for (const auto& f : detail::split_fields(line, options.delimiter)) header.emplace_back(f.text);
    std::ptrdiff_t label_col = -1;
    Dataset ds;
    for (std::size_t i = 0; i < header.size(); ++i) {
        if (header[i] == options.label)
            label_col = static_cast<std::ptrdiff_t>(i);
        else
            ds.feature_names.push_back(header[i]);
    }
    if (label_col < 0) {
        std::string names;
        for (const auto& h : header) names += (names.empty() ? "" : ", ") + h;
        fail<ValueError>("read_csv: '{}' has no label column '{}'; its columns are: {}", path, options.label, names);
    }

    ds.x.cols = static_cast<std::int64_t>(header.size()) - 1;
    while (next_line()) {
        const auto fields = detail::split_fields(line, options.delimiter);
        if (fields.size() != header.size()) {
            fail<IoError>("read_csv: {}:{}: expected {} fields as in the header, found {}", path, line_no, header.size(), fields.size());
        }
        for (std::size_t i = 0; i < fields.size(); ++i) {
            const auto& f = fields[i];
            if (static_cast<std::ptrdiff_t>(i) == label_col) {
                auto it = std::find(ds.class_names.begin(), ds.class_names.end(), f.text);
                if (it == ds.class_names.end()) it = ds.class_names.insert(it, std::string(f.text));
                ds.y.push_back(static_cast<std::int32_t>(it - ds.class_names.begin()));
                continue;
            }
            double value = 0;
            const auto* end = f.text.data() + f.text.size();
            const auto [ptr, ec] = std::from_chars(f.text.data(), end, value);
            if (f.text.empty() || ec != std::errc() || ptr != end) {
                fail<IoError>("read_csv: {}:{}:{}: '{}' in column '{}' is not a number", path, line_no, f.column, f.text, header[i]);
            }
            if (!std::isfinite(value) || !std::isfinite(static_cast<float>(value))) {
                fail<ValueError>("read_csv: {}:{}:{}: '{}' in column '{}' is not a finite number (NaN/Inf are not allowed in the data)",
                                 path, line_no, f.column, f.text, header[i]);
            }
            ds.x.values.push_back(static_cast<float>(value));
        }
        ++ds.x.rows;
    }
    if (ds.x.rows == 0) fail<IoError>("read_csv: '{}' has a header but no data rows", path);
    return ds;
}

}  // namespace minigrad::data
