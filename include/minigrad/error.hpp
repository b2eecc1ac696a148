// Exceptions for user mistakes. Every message names the op, the argument and both sides.
#pragma once

#include "config.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
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
// "a, b, c": each element as {} prints it, for messages. fmt::join (and a formatter that calls
// fmt::format_to) instantiates fmt's whole writer in every file that uses it, about 1.5 s of
// compile time each; fmt::format of one value calls the compiled libfmt.
template <class Range>
std::string join(const Range& items, std::string_view separator = ", ") {
    std::string text;
    bool first = true;
    for (const auto& item : items) {
        if (!first) text += separator;
        text += fmt::format("{}", item);
        first = false;
    }
    return text;
}

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

template <class E = Error, class... Args>
[[noreturn]] void fail(FailFormat<Args...> format, Args&&... args) {
    throw E(fmt::vformat(fmt::string_view(format), fmt::make_format_args(args...)));
}
}  // namespace detail

}  // namespace minigrad
