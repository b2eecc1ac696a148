// Flag checks the examples share: CLI11's own validators accept text a user did not mean as a
// number ("1e3" as an integer, hexadecimal as a learning rate).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace examples {

// A whole number from lo to hi, written in decimal. CLI11's own Range reads "1e3", "1.5" and ""
// as out of range, and its conversion reads "0x10" as 16.
inline CLI::Validator whole_number(std::int64_t lo, std::int64_t hi) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            std::int64_t value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (end != text.data() + text.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
                return fmt::format("'{}' is not a whole number", text);
            }
            if (ec == std::errc::result_out_of_range || value < lo || value > hi) return fmt::format("Value {} not in range {} to {}", text, lo, hi);
            return {};
        },
        fmt::format("INT in [{} - {}]", lo, hi));
}

// A learning rate: a decimal number (hexadecimal is refused, though CLI11 would read it), positive,
// finite as a float, and not so small that it becomes 0 as a float (training would silently not move).
inline std::string check_lr(const std::string& text) {
    std::string_view digits = text;
    if (digits.size() > 1 && digits[0] == '+' && digits[1] != '+' && digits[1] != '-') digits.remove_prefix(1);
    double parsed = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), parsed);
    if (end != digits.data() + digits.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
        return fmt::format("'{}' is not a decimal number", text);
    }
    // from_chars checked the syntax; strtod gives the value also where it is out of a double's
    // range (0 or inf), which from_chars leaves unset.
    const double value = std::strtod(std::string(digits).c_str(), nullptr);
    const auto mantissa = digits.substr(0, digits.find_first_of("eE"));
    const bool zero_text = mantissa.find_first_of("123456789") == std::string_view::npos;
    if (std::isnan(value) || std::signbit(value) || zero_text || !std::isfinite(static_cast<float>(value))) {
        return fmt::format("{} must be positive and finite as a float (at most {})", text, std::numeric_limits<float>::max());
    }
    if (static_cast<float>(value) == 0) return fmt::format("{} underflows to 0 as a float", text);
    return {};
}

}  // namespace examples
