// Exceptions for user mistakes. Every message names the op, the argument and both sides.
#pragma once

#include "config.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

namespace minigrad {

// Base of every error minigrad throws on purpose.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A tensor of the wrong shape reached an op.
class ShapeError : public Error {
  public:
    using Error::Error;
};

// A value is out of its allowed range (labels, hyper-parameters, NaN/Inf in data).
class ValueError : public Error {
  public:
    using Error::Error;
};

// A file could not be read or written, or its contents are malformed.
class IoError : public Error {
  public:
    using Error::Error;
};

// Anything about a device: a missing GPU, a bad index, out of memory, a failed CUDA call.
class DeviceError : public Error {
  public:
    using Error::Error;
};

// An allocation failed (or would exceed the memory the machine has); the message names the size
// and what is free. Nothing the caller held is lost.
class OutOfMemoryError : public DeviceError {
  public:
    using DeviceError::DeviceError;
};

namespace detail {
// The format of a message fail() writes: checked at compile time where MINIGRAD_CHECK_FORMATS is
// defined (this project's tests and prebuilt library: every message the tests compile is checked
// there), read at run time elsewhere. The check instantiates fmt's format-string parser for each
// message's argument types; that cost every user's file about 0.8 s (the README example, g++ -O2,
// linking minigrad::prebuilt: 6.2 s before, 5.4 s after).
#if defined(MINIGRAD_CHECK_FORMATS)
template <class... Args>
using FailFormat = fmt::format_string<Args...>;
#else
template <class... Args>
using FailFormat = fmt::string_view;
#endif

// One argument of a message, its type erased: a number, a bool or char, text, or a pointer to
// any other value with the function that writes it. fail() and format() build a list of these and
// call one function, format_message, where fmt::vformat of the arguments would instantiate fmt's
// argument store for each list of argument types (74 lists in the bare umbrella header, about
// 0.4 s of every file's compile time). Trivially destructible, so a throwing fail() has nothing to
// clean up. A value of another type prints as message_text(x) where ADL finds one (Shape), else as
// fmt prints it ("{}"). A list lives only for the call that builds it: it points into the arguments.
class MessageArg {
  public:
    enum class Kind : unsigned char { Signed, Unsigned, Float, Double, Bool, Char, Text, Other };

    template <class X>
        requires(!std::is_same_v<X, MessageArg>)
    MessageArg(const X& x) {  // NOLINT(google-explicit-constructor): built from each argument
        if constexpr (std::is_same_v<X, bool>) {
            kind_ = Kind::Bool, u_ = x;
        } else if constexpr (std::is_same_v<X, char>) {
            kind_ = Kind::Char, u_ = static_cast<unsigned char>(x);
        } else if constexpr (std::is_integral_v<X> && std::is_signed_v<X>) {
            kind_ = Kind::Signed, i_ = x;
        } else if constexpr (std::is_integral_v<X>) {
            kind_ = Kind::Unsigned, u_ = x;
        } else if constexpr (std::is_same_v<X, float>) {
            kind_ = Kind::Float, f_ = x;
        } else if constexpr (std::is_floating_point_v<X>) {
            kind_ = Kind::Double, d_ = static_cast<double>(x);
        } else if constexpr (std::is_same_v<X, const char*> || std::is_same_v<X, char*>) {
            kind_ = Kind::Text, text_ = x ? std::string_view(x) : std::string_view("(null)");
        } else if constexpr (std::is_convertible_v<const X&, std::string_view>) {
            kind_ = Kind::Text, text_ = std::string_view(x);
        } else {
            kind_ = Kind::Other, other_ = &x, write_ = &write_other<X>;
        }
    }

    // Appends this argument as "{:spec}" writes it (spec: what stands after the colon, or empty).
    void append_to(std::string& out, std::string_view spec) const;

  private:
    template <class X>
    static std::string write_other(const void* x) {
        if constexpr (requires { message_text(*static_cast<const X*>(x)); })
            return message_text(*static_cast<const X*>(x));
        else
            return fmt::vformat("{}", fmt::make_format_args(*static_cast<const X*>(x)));
    }

    Kind kind_ = Kind::Text;
    union {
        long long i_;
        unsigned long long u_;
        float f_;
        double d_;
        const void* other_ = nullptr;
    };
    std::string_view text_;
    std::string (*write_)(const void*) = nullptr;
};

// `format` with each "{}" or "{:spec}" replaced by the next argument ("{{" and "}}" by braces),
// as fmt::format writes it. A placeholder with no argument left stays as written: a message is
// never lost to a mistake in its own format (this project's tests check every one at compile time).
MINIGRAD_PREBUILT_INLINE std::string format_message(std::string_view format, const MessageArg* args, std::size_t count);

template <class E = Error, class... Args>
[[noreturn, gnu::cold, gnu::noinline]] void fail(FailFormat<Args...> format, Args&&... args) {
    const MessageArg list[] = {MessageArg(args)..., MessageArg(0)};
    const fmt::string_view text(format);
    throw E(format_message({text.data(), text.size()}, list, sizeof...(Args)));
}

// fmt::format with the same check: every message and file text minigrad writes goes through it.
template <class... Args>
std::string format(FailFormat<Args...> format, Args&&... args) {
    const MessageArg list[] = {MessageArg(args)..., MessageArg(0)};
    const fmt::string_view text(format);
    return format_message({text.data(), text.size()}, list, sizeof...(Args));
}

#if MINIGRAD_DEFINE_PREBUILT  // (config.hpp: with minigrad::prebuilt, the library's copy is called)
MINIGRAD_PREBUILT_INLINE void MessageArg::append_to(std::string& out, std::string_view spec) const {
    std::string braced = "{:";
    braced += spec;
    braced += '}';
    const fmt::string_view f(braced);
    switch (kind_) {
        case Kind::Signed: out += fmt::vformat(f, fmt::make_format_args(i_)); break;
        case Kind::Unsigned: out += fmt::vformat(f, fmt::make_format_args(u_)); break;
        case Kind::Float: out += fmt::vformat(f, fmt::make_format_args(f_)); break;
        case Kind::Double: out += fmt::vformat(f, fmt::make_format_args(d_)); break;
        case Kind::Bool: {
            const bool b = u_ != 0;
            out += fmt::vformat(f, fmt::make_format_args(b));
            break;
        }
        case Kind::Char: {
            const char c = static_cast<char>(u_);
            out += fmt::vformat(f, fmt::make_format_args(c));
            break;
        }
        case Kind::Text: out += spec.empty() ? std::string(text_) : fmt::vformat(f, fmt::make_format_args(text_)); break;
        case Kind::Other: out += write_(other_); break;
    }
}

MINIGRAD_PREBUILT_INLINE std::string format_message(std::string_view format, const MessageArg* args, std::size_t count) {
    std::string out;
    out.reserve(format.size() + 16 * count);
    std::size_t next = 0;
    for (std::size_t i = 0; i < format.size(); ++i) {
        const char c = format[i];
        if ((c == '{' || c == '}') && i + 1 < format.size() && format[i + 1] == c) {
            out += c;
            ++i;
            continue;
        }
        const auto close = c == '{' ? format.find('}', i) : std::string_view::npos;
        if (close == std::string_view::npos || next == count) {
            out += c;
            continue;
        }
        std::string_view spec = format.substr(i + 1, close - i - 1);
        if (!spec.empty() && spec.front() == ':') spec.remove_prefix(1);
        args[next++].append_to(out, spec);
        i = close;
    }
    return out;
}
#endif  // MINIGRAD_DEFINE_PREBUILT

// "a, b, c": each element as {} prints it, for messages. fmt::join (and a formatter that calls
// fmt::format_to) instantiates fmt's whole writer in every file that uses it, about 1.5 s of
// compile time each; fmt::format of one value calls the compiled libfmt.
template <class Range>
std::string join(const Range& items, std::string_view separator = ", ") {
    std::string text;
    bool first = true;
    for (const auto& item : items) {
        if (!first) text += separator;
        text += detail::format("{}", item);
        first = false;
    }
    return text;
}

// "[a, b, c]": join in brackets, as PyTorch writes a shape or a list in its messages. (Appended,
// not "[" + join(...): GCC 12 warns falsely, -Wrestrict, on that.)
template <class Range>
std::string bracketed(const Range& items, std::string_view separator = ", ") {
    std::string text(1, '[');
    text += join(items, separator);
    text += ']';
    return text;
}

}  // namespace detail

}  // namespace minigrad
