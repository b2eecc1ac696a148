// StepGraph: records one whole training step (forward, backward, optimizer, loss logging) and
// replays it. The first replay runs the step eagerly (a warm-up that creates gradients, optimizer
// state and the allocator's cache), the second captures it, and every replay from then on runs the
// capture, with none of the host work of building and walking the autograd graph. replay(k) runs k
// training steps. A graph (and the CPU's tape) gives the results of running the step eagerly k
// times bit for bit; a compiled program on CUDA gives them up to rounding (its products sum per
// output and its sums run in one team, in another order: within 1e-6 relative on Iris,
// tests/test_compiled.cpp).
//
// The modes (StepMode):
//   eager     the step function itself, every time.
//   graph     on CUDA one graph launch per step; on the CPU a tape of the step's kernels
//             (Cpu::launch_graph), the CPU's fast path.
//   compiled  the captured launches become one program (capture/compiled.hpp) that one block of GPU threads
//             runs, or a cooperative grid where a record is larger than compiled_block_max_work():
//             replay(k) is one kernel launch for k steps. Where the step cannot be compiled (host
//             work, a cuBLAS product, a functor outside the compiled set, a grid the device cannot
//             launch), CUDA replays the graph instead and says why on stderr, once; the reason is
//             fallback_reason(). On the CPU replays run the tape as in graph mode (it is faster
//             there); run_program(k) runs the program itself, the GPU's arithmetic on the host (one
//             thread as the block, Cpu::grid_threads threads as the grid), for checking.
//
// What a captured step may do is what a CUDA graph allows, on both backends: no host read of a
// tensor (record values with a LossLog), no copy in from host memory (feed batches with
// DataLoader::into before replay()), and no host decision that depends on tensor values; shapes and
// the sequence of ops are fixed at capture. Dropout draws a fresh mask per step. The tensors and
// the generator the step uses must outlive the graph; on the Cpu backend, destroy a graph on the
// thread that captured it (its private memory pool belongs to that thread's allocator).
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "../backend/caching_allocator.hpp"
#include "../loss_log.hpp"
#include "compiled.hpp"

namespace minigrad {

enum class StepMode { eager, graph, compiled };

namespace detail {
// The backend of a StepGraph whose backend is deduced (mg::StepGraph(step, mode)). The step is a
// function, so its tensors' backend cannot be seen: in a file a host compiler compiles, Cpu is the
// only backend there is; under nvcc a step may run on either, and a guess would capture the wrong
// one's launches, so there it must be named.
struct StepBackendNotDeduced {};
#if defined(__CUDACC__)
using deduced_step_backend = StepBackendNotDeduced;
#else
using deduced_step_backend = Cpu;
#endif

// The compiled program's launches, as functions of their own: each instantiates the program over
// every functor of CompiledFunctors (a fifth of a file's code), so minigrad::prebuilt compiles
// the Cpu ones once for the files that link it (prebuilt.hpp).
using StepProgram = kernels::TapeProgram<CompiledFunctors>;
template <class B>
void launch_program_block(const StepProgram& program, int device) {
    B::launch_block(program, device);
}
template <class B>
bool launch_program_grid(const StepProgram& program, int grid, int device) {
    return B::launch_grid(program, grid, device);
}
template <class B>
int program_grid_size(int device) {
    return B::template grid_size<StepProgram>(device);
}
}  // namespace detail

template <class B>
class StepGraph {
    static_assert(!std::is_same_v<B, detail::StepBackendNotDeduced>,
                  "minigrad: mg::StepGraph(step, mode) cannot tell the step's backend in a file nvcc compiles; "
                  "name it: mg::StepGraph<mg::Cuda>(step, mode), or mg::StepGraph<mg::Cpu>(step, mode)");

  public:
    explicit StepGraph(std::function<void()> step, bool use_graph = true, int device = B::current_device())
        : StepGraph(std::move(step), use_graph ? StepMode::graph : StepMode::eager, device) {}
    StepGraph(std::function<void()> step, StepMode mode, int device = B::current_device())
        : step_(std::move(step)), mode_(B::supports_graphs ? mode : StepMode::eager), device_(device) {}
    StepGraph(const StepGraph&) = delete;
    StepGraph& operator=(const StepGraph&) = delete;
    // Touches the device only where a capture began there: a graph made for a device index that
    // does not exist (which the first capture refuses) must not throw from here.
    ~StepGraph() {
        if constexpr (B::supports_graphs) {
            if (!capture_began_) return;
            release_program();
            if (captured_)
                B::destroy_graph(graph_, &pool_, device_);
            else
                B::release_pool(&pool_, device_);  // a capture that failed may have left blocks there
        }
    }

    // Runs k training steps (k >= 1). The very first of them runs eagerly (the warm-up).
    void replay(std::int64_t k = 1) {
        check_steps("replay", k);
        if constexpr (B::supports_graphs) {
            if (mode_ != StepMode::eager) return run_captured(k, /*as_program=*/false);
        }
        for (std::int64_t s = 0; s < k; ++s) {
            step_();
            ++replays_;
        }
    }

    // Compiled mode: runs k steps as the compiled program, in one B::launch_block or launch_grid. On
    // CUDA this is what replay(k) does; on the CPU it is the GPU's program run by host threads (for
    // checking: replay() is faster there). Fails where the step could not be compiled
    // (fallback_reason()). Where the device refuses a grid program's launch (the first time only:
    // the program is then dropped), these k steps run as the graph, which is what the hooks that
    // already ran for them expect.
    void run_program(std::int64_t k = 1) {
        check_steps("run_program", k);
        if constexpr (B::supports_graphs) {
            if (mode_ == StepMode::compiled) return run_captured(k, /*as_program=*/true);
        }
        detail::fail<Error>("StepGraph::run_program: the graph is not in StepMode::compiled");
    }

    bool uses_graph() const { return mode_ != StepMode::eager; }
    StepMode mode() const { return mode_; }
    // Compiled mode, once captured: true when the step became one program (one launch per replay on
    // CUDA). Otherwise fallback_reason() says why not.
    bool compiled() const { return program_ops_ != nullptr; }
    // Compiled, on a cooperative grid (a record above compiled_block_max_work()), not one block.
    bool program_on_grid() const { return program_ops_ != nullptr && grid_size_ > 0; }
    const std::string& fallback_reason() const { return fallback_reason_; }
    // The program's records (compiled mode, once captured): the kernels one replayed step runs. The
    // CPU records launches the GPU skips (empty ones), so the two counts may differ.
    std::int64_t program_size() const { return program_count_; }
    std::int64_t replays() const { return replays_; }

  private:
    using Program = detail::StepProgram;

    static void check_steps(const char* what, std::int64_t k) {
        if (k < 1) detail::fail<ValueError>("StepGraph::{}: k={} steps asked, expected at least 1", what, k);
    }

    // Before any hook runs: a replay that is refused changes nothing.
    void check_replayable() const {
        if (capture_state_.hook_destroyed) {
            detail::fail<Error>("StepGraph: a LossLog that the captured step records into was destroyed, so a replay "
                                "would write freed memory; keep the LossLog alive as long as the StepGraph "
                                "(declare the log before the graph)");
        }
        if (failed_) {
            detail::fail<Error>("StepGraph: an earlier replay failed part way (see its error), so the step's state (weights, "
                                "loss logs, random counters) is half updated; make a new StepGraph");
        }
    }

    // k steps of a graph that captures: the eager warm-up first if none ran yet, then the capture,
    // then the captured steps, as the program (run_program, or CUDA in compiled mode) or the graph.
    void run_captured(std::int64_t k, bool as_program) {
        if (replays_ == 0) {
            step_();
            ++replays_;
            if (--k == 0) return;
        }
        if (!captured_) capture();
        if (as_program && !program_ops_) {
            detail::fail<Error>("StepGraph::run_program: the step could not be compiled: {}", fallback_reason_);
        }
        check_replayable();
        capture_state_.before_replay(k);
        try {
            if (program_ops_ && (as_program || !B::is_host)) {
                launch_program(k);
            } else {
                for (std::int64_t s = 0; s < k; ++s) B::launch_graph(graph_, device_);
            }
        } catch (...) {
            failed_ = true;  // on the CPU a recorded check (a bad index in a new batch) throws part way through the tape
            throw;
        }
        replays_ += k;
    }

    void launch_program(std::int64_t k) {
        const Program program{program_ops_, program_arena_, program_count_, k};
        if (grid_size_ == 0) return detail::launch_program_block<B>(program, device_);
        if (detail::launch_program_grid<B>(program, grid_size_, device_)) return;
        // the device holds fewer blocks now than when the program was made: the graph from now on
        // (the hooks did for these k steps what k graph replays need)
        refuse_program(minigrad::detail::format("the device would not launch its cooperative grid of {} blocks", grid_size_));
        release_program();
        for (std::int64_t s = 0; s < k; ++s) B::launch_graph(graph_, device_);
    }

    // A capture that fails leaves nothing behind: no capture marked in progress, no hooks (a
    // retry registers each log once), and the next replay() tries again.
    void capture() {
        if constexpr (B::supports_graphs) {
            capture_state_.clear();
            capture_state_.hook_destroyed = false;
            detail::RecordTape records;
            B::begin_capture(&pool_, device_);
            capture_began_ = true;
            detail::active_capture() = &capture_state_;
            if (mode_ == StepMode::compiled) detail::recording_tape() = &records;
            try {
                step_();
                capture_state_.end_of_step();
            } catch (...) {
                detail::recording_tape() = nullptr;
                detail::active_capture() = nullptr;
                capture_state_.clear();
                B::abort_capture(device_);
                throw;
            }
            detail::recording_tape() = nullptr;
            detail::active_capture() = nullptr;
            try {
                graph_ = B::end_capture(device_);
            } catch (...) {
                capture_state_.clear();
                throw;
            }
            captured_ = true;
            if (mode_ == StepMode::compiled) make_program(records);
        }
    }

    // The record tape as a program in backend memory; or the reason there is none, said once on
    // stderr where the backend then replays its graph instead of the program.
    void make_program(const detail::RecordTape& records) {
        detail::CompiledProgram program = detail::compile_tape(records);
        int grid = 0;
        if (program.refused.empty() && program.max_work > compiled_block_max_work()) {
            try {
                grid = detail::program_grid_size<B>(device_);
            } catch (const std::exception& e) {  // the graph stays usable; the reason says what happened
                refuse_program(std::string("finding the size of its cooperative grid failed: ") + e.what());
                throw;
            }
            if (grid < 1) {
                program.refused = minigrad::detail::format("it has a record of {} steps of work, more than one block takes on "
                                              "(compiled_block_max_work() = {}), and no cooperative grid of the program fits this device",
                                              program.max_work, compiled_block_max_work());
            }
        }
        if (!program.refused.empty()) return refuse_program(std::move(program.refused));
        const std::size_t ops_bytes = program.ops.size() * sizeof(ProgramOp), arena_bytes = program.arena.size() + 1;
        ProgramOp* ops = nullptr;
        unsigned char* arena = nullptr;
        try {
            ops = static_cast<ProgramOp*>(B::allocate_state(ops_bytes, device_));
            arena = static_cast<unsigned char*>(B::allocate_state(arena_bytes, device_));
            B::upload(ops, program.ops.data(), ops_bytes, device_);
            B::upload(arena, program.arena.data(), program.arena.size(), device_);
        } catch (const std::exception& e) {  // the graph stays usable; the reason says what happened
            if (ops) B::deallocate(ops, ops_bytes, device_);
            if (arena) B::deallocate(arena, arena_bytes, device_);
            refuse_program(std::string("making the program failed: ") + e.what());
            throw;
        }
        program_count_ = static_cast<std::int64_t>(program.ops.size());
        grid_size_ = grid;
        ops_bytes_ = ops_bytes;
        arena_bytes_ = arena_bytes;
        program_ops_ = ops;
        program_arena_ = arena;
    }
    // No program: replays run the graph. Said once on stderr where that is a GPU's graph.
    void refuse_program(std::string why) {
        fallback_reason_ = std::move(why);
        if constexpr (!B::is_host) {
            std::fprintf(stderr, "minigrad: StepGraph (compiled) on %s: the step cannot run as one program because %s; it replays as a graph instead\n",
                         std::string(B::name).c_str(), fallback_reason_.c_str());
        }
    }
    void release_program() {
        if (!program_ops_) return;
        B::deallocate(const_cast<ProgramOp*>(program_ops_), ops_bytes_, device_);
        B::deallocate(const_cast<unsigned char*>(program_arena_), arena_bytes_, device_);
        program_ops_ = nullptr;
        program_arena_ = nullptr;
        program_count_ = 0;
        grid_size_ = 0;
    }

    std::function<void()> step_;
    StepMode mode_;
    int device_;
    std::int64_t replays_ = 0;
    bool captured_ = false;
    bool failed_ = false;
    detail::CaptureState capture_state_;
    detail::Pool pool_;  // the captured step's private memory
    bool capture_began_ = false;
    typename B::GraphHandle graph_{};
    // compiled mode: the program in backend memory (ops and the functors' bytes)
    const ProgramOp* program_ops_ = nullptr;
    const unsigned char* program_arena_ = nullptr;
    std::int64_t program_count_ = 0;
    int grid_size_ = 0;  // the grid's blocks (host threads on the CPU); 0: one block
    std::size_t ops_bytes_ = 0, arena_bytes_ = 0;
    std::string fallback_reason_;
};

// mg::StepGraph(step, mode), as the README writes it: see detail::deduced_step_backend.
template <class Step, class... Options>
    requires std::is_invocable_v<Step&>
StepGraph(Step, Options...) -> StepGraph<detail::deduced_step_backend>;

}  // namespace minigrad
