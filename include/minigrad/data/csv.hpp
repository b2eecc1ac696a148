// read_csv: a header row, numeric feature columns and one label column, read as class names that
// become indices (the default), as integer class indices, or as float regression targets. Every
// error names file:line:column and the offending value (at most ~40 bytes of it). The reader works
// on any std::istream; the path overload opens a regular file or a pipe and refuses a directory, a
// device or a socket before reading.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "../config.hpp"
#include "dataset.hpp"

namespace minigrad::data {

// How the label column is read.
enum class LabelKind {
    classes,  // any text: each distinct string is a class, indexed in order of first appearance (Dataset::y, class_names)
    integer,  // class indices 0, 1, 2, ... written as numbers ("3" or "3.0"), into Dataset::y; class_names stays empty
    number,   // a float regression target, read as the features are, into Dataset::targets; y stays empty
};

struct CsvOptions {
    std::string label = "label";  // the column holding the labels
    LabelKind label_kind = LabelKind::classes;
    char delimiter = ',';
    // A longer line is refused: a binary or runaway input must not be read until memory runs out.
    std::size_t max_line_bytes = std::size_t{1} << 20;
};

namespace detail {
using minigrad::detail::fail;

// Text from the input as it may appear in a message: control bytes escaped, cut after ~40 bytes
// (at a UTF-8 character boundary) with the full size, so a 10 MB field never lands in a message.
inline constexpr std::size_t shown_bytes = 40;

// The length of the longest prefix of `text` of at most shown_bytes that does not split a UTF-8
// character.
inline std::size_t shown_prefix(std::string_view text) {
    std::size_t cut = text.size() <= shown_bytes ? text.size() : shown_bytes;
    while (cut < text.size() && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return cut;
}

inline std::string excerpt(std::string_view text) {
    const std::size_t cut = shown_prefix(text);
    std::string out = "'";
    for (const char c : text.substr(0, cut)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F)
            out += minigrad::detail::format("\\x{:02x}", u);
        else
            out += c;
    }
    out += '\'';
    if (cut < text.size()) out += minigrad::detail::format("... ({} bytes)", text.size());
    return out;
}

struct Field {
    std::string text;
    std::size_t column;  // 1-based byte column where the field starts
};

// Where a line came from, for messages: "source:line".
struct LineRef {
    std::string_view source;
    std::size_t line;
};

// Splits one line into fields. A field may be quoted: "a, b" keeps its delimiter and "" inside
// quotes is one quote; a quoted field must close on its own line. Spaces and tabs around a field
// are dropped (unless the delimiter is one of them).
inline std::vector<Field> split_fields(std::string_view line, char delimiter, const LineRef& at) {
    auto blank = [&](char c) { return (c == ' ' || c == '\t') && c != delimiter; };
    std::vector<Field> fields;
    std::size_t i = 0;
    const std::size_t n = line.size();
    while (true) {
        const std::size_t field_start = i;
        while (i < n && blank(line[i])) ++i;
        Field field{{}, i + 1};  // the first non-blank byte
        if (i < n && line[i] == '"') {
            const std::size_t open = i + 1;
            ++i;
            while (true) {
                if (i >= n) {
                    fail<IoError>("read_csv: {}:{}:{}: the quoted field that starts here has no closing quote "
                                  "(a quoted field must end on the line where it starts)",
                                  at.source, at.line, open);
                }
                if (line[i] == '"') {
                    if (i + 1 < n && line[i + 1] == '"') {
                        field.text += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                field.text += line[i++];
            }
            while (i < n && blank(line[i])) ++i;
            if (i < n && line[i] != delimiter) {
                fail<IoError>("read_csv: {}:{}:{}: unexpected text after the closing quote of the field at column {}; "
                              "expected '{}' or the end of the line",
                              at.source, at.line, i + 1, open, delimiter);
            }
        } else {
            const std::size_t start = i;
            while (i < n && line[i] != delimiter) ++i;
            std::size_t end = i;
            while (end > start && blank(line[end - 1])) --end;
            field.text.assign(line.substr(start, end - start));
            if (field.text.empty()) field.column = field_start + 1;  // all blank: where it starts
        }
        fields.push_back(std::move(field));
        if (i >= n) break;
        ++i;  // the delimiter
    }
    return fields;
}

// For text that from_chars matched but found outside double's range: whether it is too small
// (underflow, read as zero) rather than too large. Decided by its decimal order of magnitude,
// which is below -300 or above 300 in every such case.
inline bool underflows(std::string_view text) {
    if (!text.empty() && text[0] == '-') text.remove_prefix(1);
    const auto e = text.find_first_of("eE");
    const auto mantissa = text.substr(0, e);
    const auto point = std::min(mantissa.find('.'), mantissa.size());
    const auto first = mantissa.find_first_of("123456789");
    if (first == std::string_view::npos) return true;  // all zeros: never out of range
    // The power of ten of the first significant digit, then the exponent (saturated).
    const auto power = first < point ? static_cast<std::int64_t>(point - first) - 1 : -static_cast<std::int64_t>(first - point);
    std::int64_t exponent = 0;
    if (e != std::string_view::npos) {
        std::size_t j = e + 1;
        const bool negative = j < text.size() && text[j] == '-';
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        for (; j < text.size(); ++j) exponent = std::min<std::int64_t>(exponent * 10 + (text[j] - '0'), 1'000'000'000);
        if (negative) exponent = -exponent;
    }
    return power + exponent < 0;
}

// Class names to indices in order of first appearance (LabelKind::classes).
class ClassIndex {
  public:
    std::int32_t index_of(const std::string& name, std::vector<std::string>& class_names) {
        const auto [it, inserted] = index_.try_emplace(name, static_cast<std::int32_t>(class_names.size()));
        if (inserted) class_names.push_back(name);
        return it->second;
    }

  private:
    std::unordered_map<std::string, std::int32_t> index_;
};

// Reads one line (without its end: \n, \r\n or \r) into `line`; false at the end of the input.
// Refuses NUL bytes and lines longer than max_line_bytes.
inline bool read_line(std::streambuf& in, std::string& line, const CsvOptions& options, const LineRef& at) {
    using Traits = std::streambuf::traits_type;
    line.clear();
    auto c = in.sbumpc();
    if (Traits::eq_int_type(c, Traits::eof())) return false;
    for (; !Traits::eq_int_type(c, Traits::eof()); c = in.sbumpc()) {
        const char ch = Traits::to_char_type(c);
        if (ch == '\n') break;
        if (ch == '\r') {
            if (Traits::eq_int_type(in.sgetc(), Traits::to_int_type('\n'))) in.sbumpc();
            break;
        }
        if (ch == '\0') {
            fail<IoError>("read_csv: {}:{}:{}: NUL byte: this is a binary file, not CSV text", at.source, at.line, line.size() + 1);
        }
        if (line.size() >= options.max_line_bytes) {
            fail<IoError>("read_csv: {}:{}: the line is longer than {} bytes (CsvOptions::max_line_bytes); is this a CSV file?",
                          at.source, at.line, options.max_line_bytes);
        }
        line += ch;
    }
    return true;
}

// A feature value: a decimal number (an optional leading '+' is allowed) that fits a float.
// Too small for a float (1e-400) reads as zero, as IEEE rounding would.
inline float parse_feature(const Field& f, const std::string& column, const LineRef& at) {
    std::string_view text = f.text;
    if (text.empty()) {
        fail<IoError>("read_csv: {}:{}:{}: the field in column {} is empty, expected a number", at.source, at.line, f.column, excerpt(column));
    }
    std::string_view digits = text;
    if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') digits.remove_prefix(1);
    double value = 0;
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
        fail<IoError>("read_csv: {}:{}:{}: {} in column {} is not a number", at.source, at.line, f.column, excerpt(text), excerpt(column));
    }
    if (ec == std::errc::result_out_of_range) {
        if (!underflows(digits)) {
            fail<ValueError>("read_csv: {}:{}:{}: {} in column {} is out of float range (largest magnitude {})", at.source, at.line,
                             f.column, excerpt(text), excerpt(column), std::numeric_limits<float>::max());
        }
        value = digits[0] == '-' ? -0.0 : 0.0;
    }
    if (!std::isfinite(value)) {
        fail<ValueError>("read_csv: {}:{}:{}: {} in column {} is not a finite number (NaN/Inf are not allowed in the data)", at.source,
                         at.line, f.column, excerpt(text), excerpt(column));
    }
    const auto as_float = static_cast<float>(value);
    if (std::isinf(as_float)) {
        fail<ValueError>("read_csv: {}:{}:{}: {} in column {} is out of float range (largest magnitude {})", at.source, at.line,
                         f.column, excerpt(text), excerpt(column), std::numeric_limits<float>::max());
    }
    return as_float;
}

// A class index written as a number (LabelKind::integer): an integral value in [0, INT32_MAX].
// Read as a double, which holds every such value exactly, so "16777217" is not rounded as a float would.
inline std::int32_t parse_class(const Field& f, const std::string& column, const LineRef& at) {
    std::string_view digits = f.text;
    if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') digits.remove_prefix(1);
    double value = 0;
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    const bool too_large = ptr == end && ec == std::errc::result_out_of_range && !underflows(digits);  // 1e400: refused below
    if (too_large) {
        value = digits[0] == '-' ? -HUGE_VAL : HUGE_VAL;
    } else if (ptr != end || ec != std::errc() || !std::isfinite(value) || value != std::trunc(value)) {
        fail<ValueError>("read_csv: {}:{}:{}: {} in label column {} is not an integer class index (LabelKind::integer)", at.source,
                         at.line, f.column, excerpt(f.text), excerpt(column));
    }
    if (value < 0) {
        fail<ValueError>("read_csv: {}:{}:{}: {} in label column {} is a negative class; class indices start at 0", at.source, at.line,
                         f.column, excerpt(f.text), excerpt(column));
    }
    if (value > std::numeric_limits<std::int32_t>::max()) {
        fail<ValueError>("read_csv: {}:{}:{}: {} in label column {} is larger than the largest class index {}", at.source, at.line,
                         f.column, excerpt(f.text), excerpt(column), std::numeric_limits<std::int32_t>::max());
    }
    return static_cast<std::int32_t>(value);
}

// A header name as listed in a message: cut after ~40 bytes, and in double quotes (a quote inside
// doubled, as CSV writes it) when it holds the delimiter, a comma or a quote, so that a name such
// as "b,c" does not read as two names in a comma-separated list.
inline std::string listed_name(std::string_view name, char delimiter) {
    const auto shown = name.substr(0, shown_prefix(name));
    if (name.find_first_of(std::string{delimiter, ',', '"'}) == std::string_view::npos) return std::string(shown);
    std::string out = "\"";
    for (const char c : shown) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + '"';
}
}  // namespace detail

// Reads CSV text from `in`; `source` names it in messages (a path, or e.g. "<string>").
MINIGRAD_PREBUILT_INLINE Dataset read_csv(std::istream& in, const CsvOptions& options, std::string_view source = "<stream>");
// `path` may be a regular file or a pipe (a FIFO, or `<(command)` in a shell): a pipe is read as a
// stream, as `cat` reads it, so opening a FIFO waits for its writer and reading waits for its data,
// for as long as they take. A directory, a device (/dev/zero, a terminal) and a socket are refused
// before anything is opened.
MINIGRAD_PREBUILT_INLINE Dataset read_csv(const std::string& path, const CsvOptions& options = {});

#if MINIGRAD_DEFINE_PREBUILT  // (config.hpp: with minigrad::prebuilt, the library's copy is called)
MINIGRAD_PREBUILT_INLINE Dataset read_csv(std::istream& in, const CsvOptions& options, std::string_view source) {
    using detail::fail;
    using detail::excerpt;
    if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r' || options.delimiter == '\0') {
        fail<ValueError>("read_csv: CsvOptions::delimiter {} cannot be a quote, a line end or NUL", excerpt(std::string_view(&options.delimiter, 1)));
    }
    if (options.label_kind != LabelKind::classes && options.label_kind != LabelKind::integer && options.label_kind != LabelKind::number) {
        fail<ValueError>("read_csv: CsvOptions::label_kind {} is not classes, integer or number", static_cast<int>(options.label_kind));
    }
    if (options.max_line_bytes == 0) fail<ValueError>("read_csv: CsvOptions::max_line_bytes must be at least 1");
    if (!in.rdbuf()) fail<IoError>("read_csv: {}: the stream has no buffer", source);
    auto& buf = *in.rdbuf();

    std::string line;
    detail::LineRef at{source, 0};
    auto next_line = [&]() -> bool {
        while (true) {
            ++at.line;
            if (!detail::read_line(buf, line, options, at)) return false;
            if (at.line == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);  // a UTF-8 byte order mark
            if (line.find_first_not_of(" \t") != std::string::npos) return true;   // skip blank lines
        }
    };

    if (!next_line()) fail<IoError>("read_csv: '{}' is empty: expected a header row", source);
    const auto header_fields = detail::split_fields(line, options.delimiter, at);
    std::vector<std::string> header;  // copied: `line` is reused for every row
    std::unordered_map<std::string_view, std::size_t> first_position;
    for (std::size_t i = 0; i < header_fields.size(); ++i) {
        if (header_fields[i].text.empty()) {
            fail<IoError>("read_csv: {}:{}:{}: column {} of the header has no name", source, at.line, header_fields[i].column, i + 1);
        }
        header.push_back(header_fields[i].text);
    }
    for (std::size_t i = 0; i < header.size(); ++i) {
        const auto [it, inserted] = first_position.try_emplace(header[i], i);
        if (!inserted) {
            fail<IoError>("read_csv: {}:{}: the header names column {} twice: columns {} and {}", source, at.line, excerpt(header[i]),
                          it->second + 1, i + 1);
        }
    }
    const auto label_it = first_position.find(options.label);
    if (label_it == first_position.end()) {
        std::string names;
        constexpr std::size_t listed = 20;
        for (std::size_t i = 0; i < header.size() && i < listed; ++i) names += (i == 0 ? "" : ", ") + detail::listed_name(header[i], options.delimiter);
        if (header.size() > listed) names += minigrad::detail::format(", ... ({} columns)", header.size());
        fail<ValueError>("read_csv: '{}' has no label column {}; its columns are: {}", source, excerpt(options.label), names);
    }
    const std::size_t label_col = label_it->second;
    if (header.size() == 1) fail<ValueError>("read_csv: '{}' has only the label column {}: no feature columns", source, excerpt(options.label));

    Dataset ds;
    for (std::size_t i = 0; i < header.size(); ++i)
        if (i != label_col) ds.feature_names.push_back(header[i]);
    ds.x.cols = static_cast<std::int64_t>(header.size()) - 1;
    detail::ClassIndex classes;
    while (next_line()) {
        const auto fields = detail::split_fields(line, options.delimiter, at);
        if (fields.size() != header.size()) {
            fail<IoError>("read_csv: {}:{}: expected {} fields as in the header, found {}", source, at.line, header.size(), fields.size());
        }
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i == label_col) {
                if (fields[i].text.empty()) {
                    fail<IoError>("read_csv: {}:{}:{}: the label in column {} is empty", source, at.line, fields[i].column, excerpt(header[i]));
                }
                switch (options.label_kind) {
                    case LabelKind::classes: ds.y.push_back(classes.index_of(fields[i].text, ds.class_names)); break;
                    case LabelKind::integer: ds.y.push_back(detail::parse_class(fields[i], header[i], at)); break;
                    case LabelKind::number: ds.targets.push_back(detail::parse_feature(fields[i], header[i], at)); break;
                }
            } else {
                ds.x.values.push_back(detail::parse_feature(fields[i], header[i], at));
            }
        }
        ++ds.x.rows;
    }
    if (ds.x.rows == 0) fail<IoError>("read_csv: '{}' has a header but no data rows", source);
    return ds;
}

MINIGRAD_PREBUILT_INLINE Dataset read_csv(const std::string& path, const CsvOptions& options) {
    using detail::fail;
    namespace fs = std::filesystem;
    std::error_code ec;
    switch (fs::status(path, ec).type()) {  // on error: none, and opening the file names the reason
        case fs::file_type::directory: fail<IoError>("read_csv: '{}' is a directory, expected a CSV file", path);
        case fs::file_type::character:
        case fs::file_type::block: fail<IoError>("read_csv: '{}' is a device, expected a CSV file (a regular file or a pipe)", path);
        case fs::file_type::socket: fail<IoError>("read_csv: '{}' is a socket, expected a CSV file (a regular file or a pipe)", path);
        default: break;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) fail<IoError>("read_csv: cannot open '{}': {}", path, std::strerror(errno));
    return read_csv(in, options, path);
}

#endif  // MINIGRAD_DEFINE_PREBUILT

}  // namespace minigrad::data
