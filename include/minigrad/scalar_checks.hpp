// The one check of a scalar option: a learning rate, an eps, a momentum, a probability, a norm's
// order. Every optimizer, layer, loss, scheduler and utility checks its options here, so that the
// rule and its messages are written once. A value must be
// - a finite number (NaN and infinity are refused unless the option allows infinity);
// - finite in the type that computes with it (1e39 is finite as a double, infinite as a float);
// - not a non-zero that the type rounds to 0 (an eps of 1e-50 as a float is an eps of 0, and a
//   constant row would normalise to NaN; a subnormal result is kept);
// - in its range, [lo, hi] or [lo, hi), each bound open or closed as stated.
// The messages name the function, the option and the value: "LayerNorm: eps=1e-50 underflows to 0
// as float, the type it computes in".
#pragma once

#include <cmath>
#include <limits>
#include <string_view>

#include "error.hpp"

namespace minigrad::detail {

template <class T>
constexpr std::string_view scalar_type_name() {
    if constexpr (sizeof(T) == 4) return "float";
    else if constexpr (sizeof(T) == 8) return "double";
    else return "half";
}

// The range an option's value must lie in. lo_open/hi_open make a bound exclusive; the default
// is [lo, +inf).
struct ScalarRange {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    bool lo_open = false;
    bool hi_open = false;
    bool allow_inf = false;  // +inf is a meaningful setting (a norm's order)
};

template <class T>
void check_scalar(std::string_view fn, std::string_view name, double value, const ScalarRange& range = {}) {
    const bool inf_ok = range.allow_inf && std::isinf(value) && value > 0;
    if (!inf_ok && !std::isfinite(value)) fail<ValueError>("{}: {}={} must be a finite number", fn, name, value);
    if (!inf_ok && !std::isfinite(static_cast<T>(value))) {
        fail<ValueError>("{}: {}={} does not fit {}, the type it computes in (at most {})", fn, name, value, scalar_type_name<T>(),
                         std::numeric_limits<T>::max());
    }
    if (value != 0 && static_cast<T>(value) == 0) {
        fail<ValueError>("{}: {}={} underflows to 0 as {}, the type it computes in", fn, name, value, scalar_type_name<T>());
    }
    const bool below = range.lo_open ? !(value > range.lo) : !(value >= range.lo);
    const bool above = range.hi_open ? !(value < range.hi) : !(value <= range.hi);
    if (below || above) {
        if (std::isinf(range.hi)) {
            fail<ValueError>("{}: {}={} must be {} {}", fn, name, value, range.lo_open ? ">" : ">=", range.lo);
        }
        fail<ValueError>("{}: {}={} must be in {}{}, {}{}", fn, name, value, range.lo_open ? "(" : "[", range.lo, range.hi,
                         range.hi_open ? ")" : "]");
    }
}

// The common ranges: >= lo; > 0 (a term added to a denominator); [0, 1) (a running average's
// coefficient, a dropout probability); [0, 1] (label smoothing).
template <class T>
void check_at_least(std::string_view fn, std::string_view name, double value, double lo) {
    check_scalar<T>(fn, name, value, {.lo = lo});
}
template <class T>
void check_positive(std::string_view fn, std::string_view name, double value) {
    check_scalar<T>(fn, name, value, {.lo = 0, .lo_open = true});
}
template <class T>
void check_fraction(std::string_view fn, std::string_view name, double value) {
    check_scalar<T>(fn, name, value, {.lo = 0, .hi = 1, .hi_open = true});
}
template <class T>
void check_unit_interval(std::string_view fn, std::string_view name, double value) {
    check_scalar<T>(fn, name, value, {.lo = 0, .hi = 1});
}

}  // namespace minigrad::detail
