// Class labels and indices: the one check that every op taking them makes (cross_entropy,
// nll_loss, embedding, index_select, metrics::accuracy). A value must lie in [0, classes), except
// one equal to ignore_index (skipped, as PyTorch's ignore_index). The rule is written once, as a
// block functor that every backend runs through launch_block: on the host at once, the error
// thrown when the check ends; on a GPU by one block, the error raised at the next host read (as
// PyTorch's device asserts); in a captured step, at every replay. Its text is
// kernels::label_error_message (capture/tape.hpp), whichever backend found the value.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../capture/tape.hpp"
#include "checks.hpp"

namespace minigrad::kernels {

// target is (n): reports a value outside [0, classes) that is not ignored (where can_ignore, those
// equal to ignore_index are); where inv_count is given it gets 1 / the number of values not
// ignored: the scale of a mean over those rows (infinite when every row is ignored, so that the
// mean is NaN, as PyTorch's).
template <class L, class T>
struct LabelCheck {
    const L* target;
    index_t n;
    index_t classes;
    index_t ignore_index;
    bool can_ignore;
    T* inv_count;
    LabelSite site;
    template <class Team>
    MINIGRAD_HD void block(const Team& team) const {
        long long counted = 0;
        if (team.threads() == 1 && n <= 0x7FFFFFFF && classes <= 0x7FFFFFFF) {
            // One thread (the host's case): a loop with no branch, which vectorises, in which every
            // value is compared as an unsigned word (a negative one wraps past any class count);
            // the loop below runs only to report a bad value.
            using U = std::conditional_t<sizeof(L) <= 4, std::uint32_t, std::uint64_t>;
            const U bound = static_cast<U>(classes);
            const U skip_value = can_ignore ? static_cast<U>(static_cast<L>(ignore_index)) : U(0);
            const U may_skip = can_ignore ? U(1) : U(0);
            U bad = 0, skipped = 0;
            for (index_t i = 0; i < n; ++i) {
                const U u = static_cast<U>(target[i]);
                const U skip = may_skip & static_cast<U>(u == skip_value);
                skipped += skip;
                bad |= static_cast<U>(u >= bound) & (skip ^ U(1));
            }
            if (!bad) {
                if (inv_count) *inv_count = T(1) / static_cast<T>(n - static_cast<index_t>(skipped));
                return;
            }
        }
        for (index_t i = team.thread(); i < n; i += team.threads()) {
            const long long t = static_cast<long long>(target[i]);  // an unsigned value past LLONG_MAX turns negative: refused
            if (can_ignore && t == ignore_index) continue;
            ++counted;
            if (t < 0 || t >= classes) [[unlikely]] team.report_label(i, t, classes, site);
        }
        if (inv_count) {
            const long long total = team.sum(counted);
            if (team.thread() == 0) *inv_count = T(1) / static_cast<T>(total);
        }
    }
};

// The check's functor, for compiled steps, with labels of type L (kernels::Functors, backend/kernels.hpp).
template <class T, class L>
using LabelFunctors = Functors<LabelCheck<L, T>>;

}  // namespace minigrad::kernels

namespace minigrad::detail {

using kernels::LabelSite;

// No value is skipped.
inline constexpr std::int64_t no_ignore_index = std::numeric_limits<std::int64_t>::min();

// Whether an L can hold ignore_index at all (an unsigned label type cannot hold -100): where it
// cannot, no label equals it, and none is skipped.
template <class L>
constexpr bool can_hold(std::int64_t v) {
    if (v == no_ignore_index) return false;
    if (v < 0) return std::is_signed_v<L> && v >= static_cast<std::int64_t>(std::numeric_limits<L>::lowest());
    return static_cast<std::uint64_t>(v) <= static_cast<std::uint64_t>(std::numeric_limits<L>::max());
}

// The site of a loss's or metric's class labels: its argument #2 'target'. `op` a string literal.
template <class L>
constexpr LabelSite target_site(const char* op) {
    return {op, "argument #2 'target'", false, std::is_unsigned_v<L>};
}

// Checks target's n values against [0, classes) on the backend, as described above. `op` and
// `arg` name the op and the argument ("argument #2 'target'") and must be string literals.
template <class B, std::integral L, class T = float>
void check_labels(const L* target, std::int64_t n, std::int64_t classes, LabelSite site, int device,
                  std::int64_t ignore_index = no_ignore_index, T* inv_count = nullptr) {
    if (n <= 0 && !inv_count) return;
    site.unsigned_values = std::is_unsigned_v<L>;  // whatever the caller said: the type says it
    B::launch_block(kernels::LabelCheck<L, T>{target, n, classes, ignore_index, can_hold<L>(ignore_index), inv_count, site}, device);
}

}  // namespace minigrad::detail
