// What a StepGraph's capture knows besides the recorded launches: the hooks its replays call
// first. A LossLog registers one (it grows its storage between replays); a dropout op captured in
// the step registers one it owns (it draws the replay's mask counters). See graph.hpp.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

namespace minigrad {

namespace detail {
struct CaptureState;

// Called by a graph capture each time it replays a step that recorded into a log. A hook and the
// captures it is registered with know each other, so whichever is destroyed first tells the other:
// a replay never calls a destroyed log, and never writes into its freed storage.
struct ReplayHook {
    virtual ~ReplayHook();
    virtual void before_replay() = 0;
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
