// Fuzzes read_csv on text from memory. The first byte picks the delimiter and the line cap; the
// rest is the file. Any exception but minigrad::Error, a sanitizer report or a Dataset that
// contradicts itself is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <minigrad/minigrad.hpp>

namespace mg = minigrad;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    constexpr char delimiters[] = {',', ';', '\t', ' '};
    mg::data::CsvOptions options;
    options.delimiter = delimiters[data[0] & 3];
    if (data[0] & 4) options.max_line_bytes = 16;
    std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
    try {
        const auto ds = mg::data::read_csv(in, options, "fuzz.csv");
        const auto rows = static_cast<std::size_t>(ds.x.rows), cols = static_cast<std::size_t>(ds.x.cols);
        if (rows == 0 || cols == 0 || ds.x.values.size() != rows * cols || ds.y.size() != rows || ds.feature_names.size() != cols)
            __builtin_trap();
        for (const float v : ds.x.values)
            if (!std::isfinite(v)) __builtin_trap();
        for (const auto label : ds.y)
            if (label < 0 || static_cast<std::size_t>(label) >= ds.class_names.size()) __builtin_trap();
        for (const auto& name : ds.feature_names)
            if (name.empty() || name == options.label) __builtin_trap();
    } catch (const mg::Error& e) {
        // A message quotes at most ~40 bytes of any one input field, so it stays short.
        if (std::string(e.what()).size() > 2048) __builtin_trap();
    }
    return 0;
}
