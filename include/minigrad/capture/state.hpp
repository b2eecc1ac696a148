// What a StepGraph's capture knows besides the recorded launches: the hooks its replays call
// first. A LossLog registers one (it grows its storage between replays); a dropout op captured in
// the step registers one it owns (it draws the replay's mask counters). See capture/graph.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace minigrad {

namespace detail {
struct CaptureState;

// Called by a graph capture before it replays steps that recorded into a log or drew a dropout
// mask. A replay of k steps (StepGraph::replay(k)) first calls before_step(s) of every hook for
// s = 0..k-1, step by step in the order an eager run would reach them, then before_replay(k), and
// then runs the k steps without the host. end_of_step() is called once, at the end of the captured
// step, while it is still being captured: what it launches runs at the end of every replayed step.
// A hook and the captures it is registered with know each other, so whichever is destroyed first
// tells the other: a replay never calls a destroyed log, and never writes into its freed storage.
struct ReplayHook {
    virtual ~ReplayHook();
    virtual void before_step(std::int64_t /*step*/) {}
    virtual void before_replay(std::int64_t steps) = 0;
    virtual void end_of_step() {}
    std::vector<CaptureState*> registered_with;
};
// A StepGraph's capture: the hooks its replays call. The capture in progress in this thread, if
// any, is active_capture(); a log recorded during capture registers there.
struct CaptureState {
    std::vector<ReplayHook*> hooks;
    std::vector<std::unique_ptr<ReplayHook>> owned;
    bool hook_destroyed = false;  // a log this graph records into is gone: replaying would write freed memory

    void add(ReplayHook* hook) {
        hooks.push_back(hook);
        if (std::find(hook->registered_with.begin(), hook->registered_with.end(), this) == hook->registered_with.end())
            hook->registered_with.push_back(this);
    }
    // Registers a hook that this capture owns (an op's per-replay state, such as dropout's
    // counter): it lives as long as the capture.
    void own(std::unique_ptr<ReplayHook> hook) {
        add(hook.get());
        owned.push_back(std::move(hook));
    }
    // Before k replayed steps: see ReplayHook.
    void before_replay(std::int64_t steps) {
        for (std::int64_t s = 0; s < steps; ++s)
            for (auto* hook : hooks) hook->before_step(s);
        for (auto* hook : hooks) hook->before_replay(steps);
    }
    void end_of_step() {
        for (auto* hook : hooks) hook->end_of_step();
    }
    // Forgets every hook (a failed capture, or the graph is gone), then destroys the ones it owns.
    void clear() {
        for (auto* hook : hooks) std::erase(hook->registered_with, this);
        hooks.clear();
        owned.clear();
    }
    ~CaptureState() { clear(); }
};
inline ReplayHook::~ReplayHook() {
    for (auto* capture : registered_with) {
        std::erase(capture->hooks, this);
        capture->hook_destroyed = true;
    }
}
inline CaptureState*& active_capture() {
    thread_local CaptureState* state = nullptr;
    return state;
}
}  // namespace detail

}  // namespace minigrad
