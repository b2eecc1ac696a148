// Uploads through pinned memory. A copy from pageable host memory to a GPU may make the driver
// wait for the stream while it stages the bytes itself (CUDA's "API synchronization behavior"):
// a stall in the middle of an asynchronous training loop that no counter sees. The uploads a loop
// makes every step are small (a batch, a learning rate, a log's reset), so the backend copies each
// of them into a slot of a ring of pinned host memory and uploads from there. A slot is taken
// again only once its last copy has finished (an event recorded after it): where the device is
// that far behind, the host waits for it, and that wait is counted as a host sync. An upload
// larger than a slot (a whole dataset, made once) is uploaded from its own memory, and counted as
// a pageable upload.
//
// Backend-neutral: the device calls come from an Api (Cuda's in backend/cuda.cuh; the tests use a
// host one), so the ring's bookkeeping is tested on a machine without a GPU.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <mutex>

#include "../counters.hpp"

namespace minigrad::detail {

// Api: pinned_allocate(bytes) -> void*, make_event() -> Event, event_done(Event) -> bool,
// event_wait(Event), record(Event) after the copies issued so far, upload(dst, pinned src, bytes).
template <class Event>
class StagingRing {
  public:
    static constexpr int slots = 8;
    static constexpr std::size_t slot_bytes = std::size_t{4} << 20;

    // Copies `bytes` of src to the device's dst: through the next slot if they fit one (returns
    // true), else straight from src (false).
    template <class Api>
    bool upload(Api& api, void* dst, const void* src, std::size_t bytes) {
        if (bytes > slot_bytes) {
            api.upload(dst, src, bytes);
            ++counters().pageable_uploads;
            return false;
        }
        const std::lock_guard lock(mutex_);
        if (!host_) {  // made at the first upload: a program that never uploads pins nothing
            host_ = static_cast<unsigned char*>(api.pinned_allocate(slots * slot_bytes));
            for (auto& event : done_) event = api.make_event();
        }
        const int slot = next_;
        next_ = (next_ + 1) % slots;
        if (used_[slot] && !api.event_done(done_[slot])) {  // the device has not yet read this slot's last bytes
            api.event_wait(done_[slot]);
            ++counters().host_syncs;
        }
        unsigned char* staged = host_ + static_cast<std::size_t>(slot) * slot_bytes;
        std::memcpy(staged, src, bytes);
        api.upload(dst, staged, bytes);
        api.record(done_[slot]);
        used_[slot] = true;
        return true;
    }

    // The ring's pinned memory (null before the first upload) and events, for the owner to free.
    void* host() const { return host_; }
    const std::array<Event, slots>& events() const { return done_; }

  private:
    std::mutex mutex_;
    unsigned char* host_ = nullptr;
    std::array<Event, slots> done_{};
    std::array<bool, slots> used_{};
    int next_ = 0;
};

}  // namespace minigrad::detail
