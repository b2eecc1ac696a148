// The JSON that a safetensors header is: a reader that builds a small tree (objects keep their
// members in file order) and the writer's string escaping. Written for that header alone, so that
// every file that includes minigrad does not parse a general JSON library (nlohmann/json cost each
// file about 1 s of compile time). It follows RFC 8259 as nlohmann/json's reader does:
//   - strings must be valid UTF-8, with escapes (\uXXXX pairs for the astral planes) and no raw
//     control characters;
//   - a number without a fraction or exponent is unsigned (or, with a minus, signed) where it fits
//     in 64 bits, and a float otherwise;
//   - a key twice in one object, or nesting deeper than max_depth, is an error, found where it
//     stands;
//   - nothing but white space may follow the value, up to the end or a NUL byte.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minigrad::io::json {

struct Member;  // an object's key and value

struct Value {
    enum class Kind { Null, Bool, Unsigned, Signed, Float, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    std::uint64_t number = 0;  // Unsigned: the value
    std::string text;          // String: the decoded text; Signed and Float: the number as written
    std::vector<Value> items;  // Array
    std::vector<Member> members;  // Object, in file order

    bool is_object() const { return kind == Kind::Object; }
    bool is_array() const { return kind == Kind::Array; }
    bool is_string() const { return kind == Kind::String; }
    bool is_unsigned() const { return kind == Kind::Unsigned; }
    const Value* find(std::string_view key) const;  // an object's member, or null
};

struct Member {
    std::string key;
    Value value;
};

inline const Value* Value::find(std::string_view key) const {
    for (const auto& member : members)
        if (member.key == key) return &member.value;
    return nullptr;
}

// Why a text was refused; `offset` is the byte where the reader stopped.
struct ParseError {
    enum class Kind { Syntax, TooDeep, DuplicateKey };
    Kind kind;
    std::string message;
    std::size_t offset = 0;
    std::string key;  // DuplicateKey: the key
    int depth = 0;    // DuplicateKey: the depth of its object (1 for the outermost)
};

namespace detail {

// The length of the UTF-8 sequence at s[i] (1 to 4), or 0 where it is not well formed (overlong
// forms, surrogates and code points past U+10FFFF included).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1Fu;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0Fu;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07u;
    else return 0;
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
        cp = cp << 6 | (byte(i + k) & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

inline void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | cp >> 6);
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | cp >> 12);
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | cp >> 18);
        out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Reader {
  public:
    Reader(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

    Value document() {
        Value v = value(0);
        skip_space();
        // a NUL byte ends the text, as nlohmann/json (and so earlier minigrad) read a header: what
        // follows it is padding, never data (the data's place comes from the header length)
        if (at_ < s_.size() && s_[at_] != '\0') fail("unexpected text after the value");
        return v;
    }

  private:
    // "at byte N: what" (appended: GCC 12 warns falsely, -Wrestrict, on "literal" + std::string)
    std::string where(std::string_view what) const {
        std::string message = "at byte ";
        message += std::to_string(at_);
        message += ": ";
        return message += what;
    }
    [[noreturn]] void fail(std::string_view what, ParseError::Kind kind = ParseError::Kind::Syntax) const {
        throw ParseError{kind, where(what), at_, {}, 0};
    }
    void skip_space() {
        while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
    }
    bool take(char c) {
        if (at_ < s_.size() && s_[at_] == c) return ++at_, true;
        return false;
    }
    void expect_word(std::string_view word) {
        if (s_.substr(at_, word.size()) != word) fail("invalid literal");
        at_ += word.size();
    }

    Value value(int depth) {
        skip_space();
        if (at_ >= s_.size()) fail("unexpected end of input, expected a value");
        Value v;
        switch (s_[at_]) {
            case '{': return object(depth + 1);
            case '[': return array(depth + 1);
            case '"':
                v.kind = Value::Kind::String;
                v.text = string();
                return v;
            case 't': expect_word("true"), v.kind = Value::Kind::Bool, v.boolean = true; return v;
            case 'f': expect_word("false"), v.kind = Value::Kind::Bool; return v;
            case 'n': expect_word("null"); return v;
            default: return number();
        }
    }

    void enter(int depth) {
        if (depth > max_depth_) fail("nests deeper than allowed", ParseError::Kind::TooDeep);
    }

    Value object(int depth) {
        enter(depth);
        ++at_;  // '{'
        Value v;
        v.kind = Value::Kind::Object;
        skip_space();
        if (take('}')) return v;
        for (;;) {
            skip_space();
            if (at_ >= s_.size() || s_[at_] != '"') fail("expected a string key");
            std::string key = string();
            for (const auto& member : v.members) {
                if (member.key == key) {
                    throw ParseError{ParseError::Kind::DuplicateKey, where("a key appears twice"), at_, key, depth};
                }
            }
            skip_space();
            if (!take(':')) fail("expected ':' after a key");
            Value member = value(depth);
            v.members.push_back(Member{std::move(key), std::move(member)});
            skip_space();
            if (take('}')) return v;
            if (!take(',')) fail("expected ',' or '}' in an object");
        }
    }

    Value array(int depth) {
        enter(depth);
        ++at_;  // '['
        Value v;
        v.kind = Value::Kind::Array;
        skip_space();
        if (take(']')) return v;
        for (;;) {
            v.items.push_back(value(depth));
            skip_space();
            if (take(']')) return v;
            if (!take(',')) fail("expected ',' or ']' in an array");
        }
    }

    std::uint32_t hex4() {
        if (at_ + 4 > s_.size()) fail("a \\u escape needs four hex digits");
        std::uint32_t cp = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s_[at_++];
            cp <<= 4;
            if (c >= '0' && c <= '9') cp |= static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') cp |= static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') cp |= static_cast<std::uint32_t>(c - 'A' + 10);
            else fail("a \\u escape needs four hex digits");
        }
        return cp;
    }

    std::string string() {
        ++at_;  // '"'
        std::string out;
        for (;;) {
            if (at_ >= s_.size()) fail("unexpected end of input in a string");
            const auto c = static_cast<unsigned char>(s_[at_]);
            if (c == '"') return ++at_, out;
            if (c < 0x20) fail("a control character must be escaped in a string");
            if (c != '\\') {
                const std::size_t n = utf8_sequence(s_, at_);
                if (n == 0) fail("a string is not valid UTF-8");
                out.append(s_.substr(at_, n));
                at_ += n;
                continue;
            }
            if (++at_ >= s_.size()) fail("unexpected end of input in an escape");
            switch (s_[at_++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("a low surrogate without a high one");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (!(take('\\') && take('u'))) fail("a high surrogate without a low one");
                        const std::uint32_t low = hex4();
                        if (low < 0xDC00 || low > 0xDFFF) fail("a high surrogate without a low one");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("an unknown escape in a string");
            }
        }
    }

    Value number() {
        const std::size_t begin = at_;
        const bool negative = take('-');
        const auto digits = [&] {
            const std::size_t from = at_;
            while (at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9') ++at_;
            return at_ - from;
        };
        const std::size_t int_begin = at_;
        const std::size_t int_digits = digits();
        if (int_digits == 0) fail(negative ? "a minus sign must be followed by digits" : "expected a value");
        if (int_digits > 1 && s_[int_begin] == '0') {
            at_ = int_begin;  // the message points at the zero
            fail("a number has a leading zero");
        }
        bool is_float = false;
        if (take('.')) {
            if (digits() == 0) fail("a decimal point must be followed by digits");
            is_float = true;
        }
        if (at_ < s_.size() && (s_[at_] == 'e' || s_[at_] == 'E')) {
            ++at_;
            if (!take('+')) take('-');
            if (digits() == 0) fail("an exponent must have digits");
            is_float = true;
        }
        Value v;
        v.text = std::string(s_.substr(begin, at_ - begin));
        v.kind = Value::Kind::Float;
        if (is_float) return finite_float(v);
        // an integer: unsigned (or signed, with a minus) where it fits in 64 bits, else a float
        std::uint64_t magnitude = 0;
        for (std::size_t k = int_begin; k < int_begin + int_digits; ++k) {
            if (__builtin_mul_overflow(magnitude, 10u, &magnitude) ||
                __builtin_add_overflow(magnitude, static_cast<std::uint64_t>(s_[k] - '0'), &magnitude))
                return finite_float(v);
        }
        if (!negative) {
            v.kind = Value::Kind::Unsigned;
            v.number = magnitude;
        } else if (magnitude <= std::uint64_t{1} << 63) {
            v.kind = Value::Kind::Signed;  // -0 too: a minus makes a signed number
        } else {
            return finite_float(v);
        }
        return v;
    }

    // A float must fit a double (nlohmann refuses one that overflows to infinity; one that
    // underflows to zero is a number). The decimal exponent of its first significant digit says:
    // from 309 it overflows, below 308 it fits, at 308 from_chars decides.
    const Value& finite_float(const Value& v) {
        const std::string& t = v.text;
        std::size_t i = t[0] == '-' ? 1 : 0;
        long long int_digits = 0, frac_digits = 0;
        long long first_int = 0, first_frac = 0;  // 1-based place of the first non-zero digit, in either part
        bool seen_point = false;
        for (; i < t.size() && t[i] != 'e' && t[i] != 'E'; ++i) {
            if (t[i] == '.') {
                seen_point = true;
            } else if (!seen_point) {
                ++int_digits;
                if (!first_int && t[i] != '0') first_int = int_digits;
            } else {
                ++frac_digits;
                if (!first_int && !first_frac && t[i] != '0') first_frac = frac_digits;
            }
        }
        if (!first_int && !first_frac) return v;  // zero
        const long long lead = first_int ? int_digits - first_int : -first_frac;  // its power of ten
        long long exponent = 0;
        if (i < t.size()) {  // e[+-]digits, saturated
            ++i;
            const bool negative = t[i] == '-';
            if (t[i] == '+' || t[i] == '-') ++i;
            for (; i < t.size(); ++i) exponent = exponent > 100000 ? exponent : exponent * 10 + (t[i] - '0');
            if (negative) exponent = -exponent;
        }
        const long long power = lead + exponent;
        if (power < 308) return v;
        double value = 0;
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
        (void)end;
        if (power >= 309 || ec == std::errc::result_out_of_range) fail("a number is too large for a double");
        return v;
    }

    std::string_view s_;
    int max_depth_;
    std::size_t at_ = 0;
};

}  // namespace detail

// The value `text` holds; throws ParseError.
inline Value parse(std::string_view text, int max_depth) { return detail::Reader(text, max_depth).document(); }

// `text` as a JSON string literal, quoted and escaped as nlohmann/json writes it (so that a file
// minigrad saves keeps its bytes): \" \\ \b \f \n \r \t, other control characters as \u00xx, and
// UTF-8 kept as it is. Returns false (and leaves `out` as it was) where `text` is not valid UTF-8.
inline bool append_string(std::string& out, std::string_view text) {
    std::string quoted(1, '"');
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            const std::size_t n = detail::utf8_sequence(text, i);
            if (n == 0) return false;
            quoted.append(text.substr(i, n));
            i += n;
            continue;
        }
        switch (c) {
            case '"': quoted += "\\\""; break;
            case '\\': quoted += "\\\\"; break;
            case '\b': quoted += "\\b"; break;
            case '\f': quoted += "\\f"; break;
            case '\n': quoted += "\\n"; break;
            case '\r': quoted += "\\r"; break;
            case '\t': quoted += "\\t"; break;
            default:
                if (c < 0x20) {
                    const char hex[] = "0123456789abcdef";
                    quoted += "\\u00";
                    quoted += hex[c >> 4];
                    quoted += hex[c & 0xF];
                } else {
                    quoted += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += quoted;
    out += '"';
    return true;
}

// A value as compact JSON text, for messages: numbers as written, strings quoted.
inline std::string dump(const Value& v) {
    std::string out;
    switch (v.kind) {
        case Value::Kind::Null: return "null";
        case Value::Kind::Bool: return v.boolean ? "true" : "false";
        case Value::Kind::Unsigned: return std::to_string(v.number);
        case Value::Kind::Signed:
        case Value::Kind::Float: return v.text;
        case Value::Kind::String: append_string(out, v.text); return out;
        case Value::Kind::Array:
            out += '[';
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i) out += ',';
                out += dump(v.items[i]);
            }
            return out += ']';
        case Value::Kind::Object:
            out += '{';
            for (std::size_t i = 0; i < v.members.size(); ++i) {
                if (i) out += ',';
                append_string(out, v.members[i].key);
                out += ':';
                out += dump(v.members[i].value);
            }
            return out += '}';
    }
    return out;
}

}  // namespace minigrad::io::json
