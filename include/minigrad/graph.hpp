// StepGraph: records one whole training step (forward, backward, optimizer, loss logging) and
// replays it. The first replay runs the step eagerly (a warm-up that creates gradients, optimizer
// state and the allocator's cache), the second captures it, and every replay from then on runs the
// capture: on CUDA one graph launch, on the CPU a tape of the step's kernels (Cpu::launch_graph),
// with none of the host work of building and walking the autograd graph. Each replay() is exactly
// one training step, with the same results as running the step eagerly.
//
// What a captured step may do is what a CUDA graph allows, on both backends: no host read of a
// tensor (record values with a LossLog), no copy in from host memory (feed batches with
// DataLoader::into before replay()), and no host decision that depends on tensor values; shapes and
// the sequence of ops are fixed at capture. Dropout draws a fresh mask per replay. The tensors and
// the generator the step uses must outlive the graph; on the Cpu backend, destroy a graph on the
// thread that captured it (its private memory pool belongs to that thread's allocator).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "backend/caching_allocator.hpp"
#include "loss_log.hpp"

namespace minigrad {

template <class B>
class StepGraph {
  public:
    explicit StepGraph(std::function<void()> step, bool use_graph = true, int device = B::current_device())
        : step_(std::move(step)), use_graph_(use_graph && B::supports_graphs), device_(device) {}
    StepGraph(const StepGraph&) = delete;
    StepGraph& operator=(const StepGraph&) = delete;
    ~StepGraph() {
        if constexpr (B::supports_graphs) {
            if (captured_)
                B::destroy_graph(graph_, &pool_, device_);
            else
                B::release_pool(&pool_, device_);  // a capture that failed may have left blocks there
        }
    }

    void replay() {
        if constexpr (B::supports_graphs) {
            if (use_graph_ && replays_ > 0) {
                if (!captured_) capture();
                if (capture_state_.hook_destroyed) {
                    detail::fail<Error>("StepGraph: a LossLog that the captured step records into was destroyed, so a replay "
                                        "would write freed memory; keep the LossLog alive as long as the StepGraph "
                                        "(declare the log before the graph)");
                }
                if (failed_) {
                    detail::fail<Error>("StepGraph: an earlier replay failed part way (see its error), so the step's state (weights, "
                                        "loss logs, random counters) is half updated; make a new StepGraph");
                }
                for (auto* hook : capture_state_.hooks) hook->before_replay();
                try {
                    B::launch_graph(graph_, device_);
                } catch (...) {
                    failed_ = true;  // on the CPU a recorded check (a bad index in a new batch) throws part way through the tape
                    throw;
                }
                ++replays_;
                return;
            }
        }
        step_();
        ++replays_;
    }

    bool uses_graph() const { return use_graph_; }
    std::int64_t replays() const { return replays_; }

  private:
    // A capture that fails leaves nothing behind: no capture marked in progress, no hooks (a
    // retry registers each log once), and the next replay() tries again.
    void capture() {
        if constexpr (B::supports_graphs) {
            capture_state_.clear();
            capture_state_.hook_destroyed = false;
            B::begin_capture(&pool_, device_);
            detail::active_capture() = &capture_state_;
            try {
                step_();
            } catch (...) {
                detail::active_capture() = nullptr;
                capture_state_.clear();
                B::abort_capture(device_);
                throw;
            }
            detail::active_capture() = nullptr;
            try {
                graph_ = B::end_capture(device_);
            } catch (...) {
                capture_state_.clear();
                throw;
            }
            captured_ = true;
        }
    }

    std::function<void()> step_;
    bool use_graph_;
    int device_;
    std::int64_t replays_ = 0;
    bool captured_ = false;
    bool failed_ = false;
    detail::CaptureState capture_state_;
    detail::Pool pool_;  // the captured step's private memory
    typename B::GraphHandle graph_{};
};

}  // namespace minigrad
