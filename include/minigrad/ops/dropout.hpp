// dropout(x, p, training, gen): inverted dropout as torch.nn.functional.dropout. In training each
// element is zeroed with probability p and the rest scaled by 1/(1-p); otherwise it is the identity.
// The mask is never stored: element i is kept where a hash of (seed, offset + i) says so, the seed
// and offset coming from a Generator (Generator::reserve). Both backends compute the same hash, so
// they draw the same mask; backward recomputes it. In a captured step (StepGraph) the seed and
// offset live in backend memory instead: before a replay of k steps a hook draws the counters of
// all k from the generator and writes the first step's, and the distance between steps, there; the
// end of each replayed step moves the offset on by that distance. Every replayed step gets a fresh
// mask, the one the same step run eagerly would have drawn.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string_view>

#include "../capture/state.hpp"
#include "../random.hpp"
#include "checks.hpp"

namespace minigrad {
namespace kernels {

// A 32-bit mixing function (xorshift-multiply, two rounds): a bijection on 32-bit words in which
// every input bit reaches every output bit. 32-bit multiplies only, so a CPU loop over elements
// vectorises (eight lanes with AVX2) and the GPU runs it at full rate.
MINIGRAD_HD inline std::uint32_t mix32(std::uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    return x ^ (x >> 16);
}

// Which elements survive: element i is kept where a hash of (seed, offset + i), a uniform 32-bit
// integer, is at least drop_below = p * 2^32. The hash is two keyed rounds of mix32 over the
// counter's low and high words, so one seed's masks never repeat within 2^32 counters and other
// seeds give other masks. Integer arithmetic only, so the host and the GPU agree bit for bit.
struct DropoutMask {
    std::uint64_t seed, offset;
    std::uint32_t drop_below;
    const std::uint64_t* counter_at = nullptr;  // (3) {seed, offset, stride} in backend memory, for a captured step; else null
    MINIGRAD_HD static std::uint32_t threshold(double p) { return static_cast<std::uint32_t>(p * 4294967296.0); }

    // keep() over indices [begin, end) whose counters share one high word: the seed's key and the
    // high word's term are fixed there, so a host loop over the run is 32-bit integer arithmetic
    // that vectorises (the counters are read once, not once per element).
    struct Run {
        index_t end;
        std::uint32_t key, low, high_term, drop_below;  // low: the counter's low word at index 0 (mod 2^32)
        MINIGRAD_HD_INLINE bool keep(std::uint32_t low_word) const {
            return mix32(mix32(low_word ^ key) + key + high_term) >= drop_below;
        }
        MINIGRAD_HD_INLINE bool keep(index_t i) const { return keep(low + static_cast<std::uint32_t>(i)); }
    };
    // The run that starts at begin and ends at end or where the counter's high word changes.
    MINIGRAD_HD_INLINE Run run(index_t begin, index_t end) const {
        const std::uint64_t s = counter_at ? counter_at[0] : seed;
        const std::uint64_t first = counter_at ? counter_at[1] : offset;
        const std::uint64_t at = first + static_cast<std::uint64_t>(begin);
        // at most 2^31 indices, so that a run's length fits the 32-bit loop counter of range()
        const std::uint64_t left_in_word = (std::uint64_t{1} << 32) - (at & 0xFFFFFFFFu);
        const std::uint64_t most = left_in_word < (std::uint64_t{1} << 31) ? left_in_word : (std::uint64_t{1} << 31);
        const index_t run_end = static_cast<std::uint64_t>(end - begin) > most ? begin + static_cast<index_t>(most) : end;
        const std::uint32_t key = mix32(static_cast<std::uint32_t>(s) ^ mix32(static_cast<std::uint32_t>(s >> 32) + 0x9E3779B9u));
        return {run_end, key, static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(at >> 32) * 0x9E3779B9u, drop_below};
    }
    MINIGRAD_HD bool keep(index_t i) const { return run(i, i + 1).keep(i); }
};

// at is (3): the seed and offset of a captured dropout's next replayed step, and how far the offset
// moves from one step to the next; one index
struct SetDropoutCounter {
    std::uint64_t* at;
    std::uint64_t seed, offset, stride;
    MINIGRAD_HD void operator()(index_t) const {
        at[0] = seed;
        at[1] = offset;
        at[2] = stride;
    }
};

// at is (3), as SetDropoutCounter's: the end of a replayed step moves the offset to the next
// step's; one index
struct AdvanceDropoutCounter {
    std::uint64_t* at;
    MINIGRAD_HD void operator()(index_t) const { at[1] += at[2]; }
};

// x, y are (n); i over n. A dropped element is x * 0 (NaN stays NaN, as PyTorch's x * mask).
template <class T>
struct DropoutForward {
    const T* x;
    T* y;
    DropoutMask mask;
    T scale;  // 1 / (1 - p)
    MINIGRAD_HD void operator()(index_t i) const { y[i] = x[i] * (mask.keep(i) ? scale : T(0)); }
    // The host's loop (Cpu::launch calls it): a run of one counter high word at a time, the same
    // keep() as operator(), so the same bits, in a loop that vectorises.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        for (index_t i0 = begin; i0 < end;) {
            const DropoutMask::Run run = mask.run(i0, end);
            const std::uint32_t low = run.low + static_cast<std::uint32_t>(i0), count = static_cast<std::uint32_t>(run.end - i0);
            const T* __restrict xs = x + i0;
            T* __restrict ys = y + i0;
            for (std::uint32_t j = 0; j < count; ++j) ys[j] = xs[j] * (run.keep(low + j) ? scale : T(0));
            i0 = run.end;
        }
    }
};

// dy, dx are (n); i over n. dx = dy * mask * scale, with the forward pass's mask.
template <class T>
struct DropoutBackward {
    const T* dy;
    T* dx;
    DropoutMask mask;
    T scale;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { dx[i] = write(dx[i], dy[i] * (mask.keep(i) ? scale : T(0)), overwrite); }
    // The host's loop, as DropoutForward::range.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        for (index_t i0 = begin; i0 < end;) {
            const DropoutMask::Run run = mask.run(i0, end);
            const std::uint32_t low = run.low + static_cast<std::uint32_t>(i0), count = static_cast<std::uint32_t>(run.end - i0);
            const T* __restrict dys = dy + i0;
            T* __restrict dxs = dx + i0;
            if (overwrite)
                for (std::uint32_t j = 0; j < count; ++j) dxs[j] = dys[j] * (run.keep(low + j) ? scale : T(0));
            else
                for (std::uint32_t j = 0; j < count; ++j) dxs[j] += dys[j] * (run.keep(low + j) ? scale : T(0));
            i0 = run.end;
        }
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using DropoutFunctors = Functors<SetDropoutCounter, AdvanceDropoutCounter, DropoutForward<T>, DropoutBackward<T>>;

}  // namespace kernels

namespace detail {

// p must be a probability that leaves something: 0 <= p < 1 (NaN fails both comparisons).
inline void check_dropout_p(std::string_view op, double p) {
    check_fraction<double>(op, "p", p);
}

// A dropout captured in a StepGraph: before a replay, draws the counters the op would have drawn
// had the steps run eagerly (in step order, among the other hooks), and writes the first step's
// where the captured kernels read them, with the distance to the next step's.
template <class B>
struct DropoutReplay final : ReplayHook {
    static constexpr std::size_t bytes = 3 * sizeof(std::uint64_t);
    Generator* gen;
    std::uint64_t count;
    int device;
    std::uint64_t* at;
    Generator::Counter first{}, second{};
    DropoutReplay(Generator& g, std::uint64_t n, int dev)
        : gen(&g), count(n), device(dev), at(static_cast<std::uint64_t*>(B::allocate_state(bytes, dev))) {}
    DropoutReplay(const DropoutReplay&) = delete;
    DropoutReplay& operator=(const DropoutReplay&) = delete;
    ~DropoutReplay() override { B::deallocate(at, bytes, device); }
    void before_step(std::int64_t step) override {
        const auto counter = gen->reserve(count);
        if (step == 0) first = counter;
        if (step == 1) second = counter;
    }
    void before_replay(std::int64_t steps) override {
        // Each step's offset is the one before plus what the generator gave out in between: the same
        // for every step, since only the step's own dropouts draw from it while it replays.
        const std::uint64_t stride = steps > 1 ? second.offset - first.offset : 0;
        B::launch(1, kernels::SetDropoutCounter{at, first.seed, first.offset, stride}, device);
    }
    void end_of_step() override { B::launch(1, kernels::AdvanceDropoutCounter{at}, device); }
};

// Eagerly: the next n counters of the generator. Inside a capture: nothing drawn now; the mask
// reads counters that a hook of the capture writes before each replay.
template <class B>
kernels::DropoutMask dropout_mask(double p, std::int64_t n, Generator& gen, int device) {
    if constexpr (B::supports_graphs) {
        if (CaptureState* capture = active_capture(); capture && B::capturing(device)) {
            auto hook = std::make_unique<DropoutReplay<B>>(gen, static_cast<std::uint64_t>(n), device);
            const std::uint64_t* at = hook->at;
            capture->own(std::move(hook));
            return {0, 0, kernels::DropoutMask::threshold(p), at};
        }
    }
    const auto counter = gen.reserve(static_cast<std::uint64_t>(n));
    return {counter.seed, counter.offset, kernels::DropoutMask::threshold(p)};
}

template <class B, class T>
struct DropoutNode : Node<B, T> {
    kernels::DropoutMask mask;
    T scale;
    const char* op_name() const override { return "dropout"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::DropoutBackward<T>{out.grad->data, dx.data, mask, scale, dx.overwrite}, x.device);
    }
};

}  // namespace detail

// x and the result have any shape. Not training, or p = 0: x itself, as PyTorch returns it.
template <class B, class T>
Tensor<B, T> dropout(const Tensor<B, T>& x, double p, bool training = true, Generator& gen = default_generator()) {
    detail::require_floating<T>();
    detail::check_dropout_p("dropout", p);
    detail::check_defined("dropout", x, 1, "input");
    if (!training || p == 0.0) return x;
    const auto mask = detail::dropout_mask<B>(p, x.numel(), gen, x.device());
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    auto y = Tensor<B, T>::empty(x.shape(), x.device());
    B::launch(x.numel(), kernels::DropoutForward<T>{x.data(), y.data(), mask, scale}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::DropoutNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->mask = mask;
        node->scale = scale;
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace minigrad
