// A compiled step: the record tape of a captured step (capture/tape.hpp) turned into one program
// that a team of GPU threads runs from start to end, k steps per launch (StepGraph in
// StepMode::compiled, capture/graph.hpp). The team is one block when every record is small
// (compiled_block_max_work), else every block of a cooperative grid. It is possible because every
// functor a step launches comes from the library: each ops/ and optim/ file lists the functors it
// launches, CompiledFunctors joins those lists, and the program finds each record's functor type by
// its index in the join (a binary search whose branches the compiler lays out, about eight per
// record: no indirect call on the device). Between records the team synchronises, as consecutive
// launches would.
//
// What it refuses (and StepGraph then replays the CUDA graph instead, saying why): host work in
// the step, a library call (a cuBLAS product), a functor outside the list (a double step: the list
// is float only; a user's own functor), and, for a program that needs a grid, a device that cannot
// launch a cooperative one. docs/design.md, "Compiled steps", says when to use which mode.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../loss_log.hpp"
#include "../ops/attention.hpp"
#include "../ops/batch_norm.hpp"
#include "../ops/broadcast.hpp"
#include "../ops/conv.hpp"
#include "../ops/cross_entropy.hpp"
#include "../ops/dropout.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/extrema.hpp"
#include "../ops/index.hpp"
#include "../ops/layer_norm.hpp"
#include "../ops/lstm_cell.hpp"
#include "../ops/loss.hpp"
#include "../ops/mask.hpp"
#include "../ops/pool.hpp"
#include "../ops/reduce.hpp"
#include "../ops/shape.hpp"
#include "../ops/softmax.hpp"
#include "../ops/unary.hpp"
#include "../optim/adam.hpp"
#include "../optim/clip_grad.hpp"
#include "../optim/rmsprop.hpp"
#include "../optim/sgd.hpp"
#include "tape.hpp"

namespace minigrad {
namespace detail {

// Every functor a compiled step may launch: each family's list (its ops/ or optim/ file's), for
// float steps with labels and indices of 32 or 64 bits. A family file not joined here is caught by
// the unit tests, which check every functor they launch against this list (tests/main.cpp).
template <class T, class L>
using LabelledFunctors = kernels::Join<kernels::LabelFunctors<T, L>, kernels::CrossEntropyFunctors<T, L>, kernels::IndexFunctors<T, L>,
                                       kernels::ExtremaIndexFunctors<T, L>>;
template <class T>
using StepFunctors =
    kernels::Join<kernels::PrimitiveFunctors<T>, kernels::TapeFunctors<T>, kernels::LossLogFunctors<T>, kernels::DropoutFunctors<T>,
                  kernels::UnaryFunctors<T>, kernels::ElementwiseFunctors<T>, kernels::BroadcastFunctors<T>, kernels::ReduceFunctors<T>, kernels::ExtremaFunctors<T>, kernels::MaskFunctors<T>,
                  kernels::ShapeFunctors<T>, kernels::ConvFunctors<T>, kernels::PoolFunctors<T>, kernels::SoftmaxFunctors<T>, kernels::LossFunctors<T>,
                  kernels::LayerNormFunctors<T>, kernels::BatchNormFunctors<T>, kernels::AttentionFunctors<T>, kernels::LstmCellFunctors<T>,
                  kernels::SgdFunctors<T>, kernels::AdamFunctors<T>, kernels::RmspropFunctors<T>, kernels::ClipGradFunctors<T>,
                  LabelledFunctors<T, std::int32_t>, LabelledFunctors<T, std::int64_t>>;

}  // namespace detail

using CompiledFunctors = detail::StepFunctors<float>;

// A record of the program: which functor (its index in CompiledFunctors), where its bytes are in
// the program's arena, and its index range (index functors).
struct ProgramOp {
    std::int64_t n;
    std::int64_t args_offset;
    std::int32_t tag;
};

// One record's work (multiply-adds or element steps) up to which a compiled program runs on one
// block of threads; a program with a larger record runs on the whole device instead (a cooperative
// grid, whose barriers cost more than a block's). 0 puts every program that does any work on the
// grid. 2^16 by default, a conservative guess until a GPU measures both (scripts/gpu-check.sh):
// one block of 256 threads does 256 multiply-adds a step, so a record of 2^16 is 256 serial steps
// (microseconds, about a launch's cost), while 2^20 would be 4096 (a mid-sized model, hidden
// 64-128, would run about 10x slower on one block than as a graph). Erring low costs grid
// barriers on small programs; erring high costs a device's worth of parallelism.
inline std::atomic<std::int64_t>& compiled_block_max_work_value() {
    static std::atomic<std::int64_t> value{std::int64_t{1} << 16};
    return value;
}
inline std::int64_t compiled_block_max_work() { return compiled_block_max_work_value().load(std::memory_order_relaxed); }
// Takes effect for graphs captured from then on.
inline void set_compiled_block_max_work(std::int64_t work) {
    if (work < 0) detail::fail<ValueError>("set_compiled_block_max_work: {} is negative, expected a record's work >= 0", work);
    compiled_block_max_work_value().store(work, std::memory_order_relaxed);
}

namespace kernels {

// The program: `steps` times, every op in order, the team synchronising after each. A block
// functor: launch_block runs it on one GPU block (one host thread), launch_grid on a cooperative
// grid (a team of host threads).
template <class List>
struct TapeProgram;
template <class... Fs>
struct TapeProgram<Functors<Fs...>> {
    const ProgramOp* ops;
    const unsigned char* arena;
    std::int64_t count;
    std::int64_t steps;

    template <class Team>
    MINIGRAD_HD void block(const Team& team) const {
        for (std::int64_t s = 0; s < steps; ++s) {
            for (std::int64_t r = 0; r < count; ++r) {
                const ProgramOp op = ops[r];
                dispatch<0, sizeof...(Fs)>(op, team);
                team.sync();
            }
        }
    }

  private:
    template <std::size_t I>
    using At = std::tuple_element_t<I, std::tuple<Fs...>>;

    template <std::size_t Lo, std::size_t Hi, class Team>
    MINIGRAD_HD void dispatch(const ProgramOp& op, const Team& team) const {
        if constexpr (Hi - Lo == 1) {
            run<At<Lo>>(op, team);
        } else {
            constexpr std::size_t mid = (Lo + Hi) / 2;
            if (static_cast<std::size_t>(op.tag) < mid)
                dispatch<Lo, mid>(op, team);
            else
                dispatch<mid, Hi>(op, team);
        }
    }
    template <class F, class Team>
    MINIGRAD_HD void run(const ProgramOp& op, const Team& team) const {
        const F& f = *reinterpret_cast<const F*>(arena + op.args_offset);
        if constexpr (requires { f.block(team); }) {
            f.block(team);
        } else {
            // a small functor is copied into registers; a large one (an optimizer's table) is read in place
            if constexpr (sizeof(F) <= 128) {
                const F local = f;
                for (index_t i = team.thread(); i < op.n; i += team.threads()) local(i);
            } else {
                for (index_t i = team.thread(); i < op.n; i += team.threads()) f(i);
            }
        }
    }
};

}  // namespace kernels

namespace detail {

// Index of the functor type in the list, or -1.
template <class... Fs>
int compiled_tag(const std::type_info& type, kernels::Functors<Fs...>) {
    int tag = -1, i = 0;
    (void)((type == typeid(Fs) ? (tag = i, true) : (++i, false)) || ...);
    return tag;
}

// A record tape resolved against CompiledFunctors: the program's ops and arena, or why there is none.
struct CompiledProgram {
    std::vector<ProgramOp> ops;
    std::vector<unsigned char> arena;
    std::string refused;
    std::int64_t max_work = 0;  // the largest record's work: it decides block or grid
};
template <class F>
F args_as(const RecordTape& tape, const TapeRecord& r) {
    F f;
    std::memcpy(&f, tape.arena.data() + r.args_offset, sizeof(F));
    return f;
}

// Where a float product (no column sums) is followed by an activation, forward or backward, that
// reads its output only at the same index (UnaryForward's x, or UnaryBackward's dy, is the product's
// c, over c's elements), the two become one GemmThen record: one barrier fewer, the activation in
// the product's epilogue. The activation must write memory the product does not read: otherwise
// one thread's epilogue would overwrite a or b while other threads still read them. A product
// input with no autograd node (a temporary) can be freed before the activation allocates its
// output, and the allocator may hand back that very block; such a pair is left apart.
// backward() already launches most backward pairs as one (detail::product_into_grad); this also
// takes the forward ones, which no op can see when it runs, and a backward pair left adjacent on
// the tape where the activation's result had another reader (which added its share of dy first).
// Returns where the fused record's bytes went in `arena` (and sets *fused_type), or -1.
// Whether [p, p + n) and [q, q + m) share an element.
inline bool overlaps(const float* p, kernels::index_t n, const float* q, kernels::index_t m) {
    if (!p || !q || n <= 0 || m <= 0) return false;
    const auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(q);
    return a < b + static_cast<std::uintptr_t>(m) * sizeof(float) && b < a + static_cast<std::uintptr_t>(n) * sizeof(float);
}
// Whether the epilogue's output (out, over the product's m * n outputs) is memory the product reads.
inline bool product_reads(const kernels::GemmElement<float>& g, const float* out) {
    const kernels::index_t outputs = g.m * g.n;
    return overlaps(out, outputs, g.a, g.m * g.k) || overlaps(out, outputs, g.b, g.k * g.n) || overlaps(out, outputs, g.bias, g.n);
}

template <class Rule>
std::int64_t fuse_pair(const RecordTape& tape, const TapeRecord& a, const TapeRecord& b, std::vector<unsigned char>& arena,
                       const std::type_info** fused_type) {
    using G = kernels::GemmElement<float>;
    using Fwd = kernels::UnaryForward<float, Rule>;
    using Bwd = kernels::UnaryBackward<float, Rule>;
    const G g = args_as<G>(tape, a);
    if (g.a_sums || a.n != b.n || a.n != g.m * g.n) return -1;
    if (*b.info == typeid(Fwd)) {
        const Fwd f = args_as<Fwd>(tape, b);
        if (f.x != g.c || product_reads(g, f.y)) return -1;
        const kernels::GemmThen<float, Fwd> both{g, f};
        *fused_type = &typeid(both);
        return RecordTape::append(arena, &both, sizeof both);
    }
    if (*b.info == typeid(Bwd)) {
        const Bwd f = args_as<Bwd>(tape, b);
        if (f.dy != g.c || product_reads(g, f.dx)) return -1;
        const kernels::GemmThen<float, Bwd> both{g, f};
        *fused_type = &typeid(both);
        return RecordTape::append(arena, &both, sizeof both);
    }
    return -1;
}
inline std::int64_t fuse_epilogue(const RecordTape& tape, const TapeRecord& a, const TapeRecord& b, std::vector<unsigned char>& arena,
                                  const std::type_info** fused_type) {
    if (*a.info != typeid(kernels::GemmElement<float>)) return -1;
    return [&]<class... Rules>(std::tuple<Rules...>*) {
        std::int64_t offset = -1;
        (void)(((offset = fuse_pair<Rules>(tape, a, b, arena, fused_type)) >= 0) || ...);
        return offset;
    }(static_cast<kernels::EpilogueRules<float>*>(nullptr));
}

// The tape as a program of CompiledFunctors. Not a template, but it names every functor: compiled
// once by minigrad::prebuilt for the files that link it (config.hpp).
MINIGRAD_PREBUILT_INLINE CompiledProgram compile_tape(const RecordTape& tape);
#if MINIGRAD_DEFINE_PREBUILT
MINIGRAD_PREBUILT_INLINE CompiledProgram compile_tape(const RecordTape& tape) {
    CompiledProgram out;
    out.refused = tape.refused;
    if (tape.records.empty() && out.refused.empty()) out.refused = "it launched nothing";
    for (std::size_t i = 0; i < tape.records.size() && out.refused.empty(); ++i) {
        TapeRecord r = tape.records[i];
        std::int64_t offset = -1;
        if (i + 1 < tape.records.size()) {  // an activation folded into the product before it
            offset = fuse_epilogue(tape, tape.records[i], tape.records[i + 1], out.arena, &r.info);
            if (offset >= 0) r.work += tape.records[++i].work;
        }
        if (offset < 0)  // the record's own bytes
            offset = RecordTape::append(out.arena, tape.arena.data() + r.args_offset, static_cast<std::size_t>(r.args_size));
        const int tag = compiled_tag(*r.info, CompiledFunctors{});
        if (tag < 0) {
            out.refused = minigrad::detail::format("it launches {}, which is not among the functors a compiled step can run "
                                      "(the functor lists CompiledFunctors joins, capture/compiled.hpp: float steps only)",
                                      type_name(*r.info));
        }
        out.max_work = std::max(out.max_work, r.work);
        out.ops.push_back({r.n, offset, tag});
    }
    if (!out.refused.empty()) {
        out.ops.clear();
        out.arena.clear();
    }
    return out;
}
#endif  // MINIGRAD_DEFINE_PREBUILT

}  // namespace detail
}  // namespace minigrad
