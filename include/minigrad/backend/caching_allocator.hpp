// A caching allocator shared by every backend. Training steps have static shapes, so after the
// first step every request is served from a free list and the system allocator is never called:
// that is what keeps the CPU step fast and what makes CUDA graph capture possible.
//
// Blocks are cached by their rounded size in a Pool. A graph capture pushes a private pool: what
// the captured step frees stays reserved for the graph's replays and is never handed to code
// outside it, until the graph is destroyed and gives its pool back.
#pragma once

#include <cstddef>
#include <unordered_map>
#include <vector>

#include "../config.hpp"
#include "../counters.hpp"

namespace minigrad::detail {

struct Pool {
    std::unordered_map<std::size_t, std::vector<void*>> free_blocks;
};

class CachingAllocator {
  public:
    using RawAllocate = void* (*)(std::size_t bytes);
    using RawRelease = void (*)(void* ptr);

    static constexpr std::size_t granule = 256;  // also the alignment every block gets

    CachingAllocator(RawAllocate raw_allocate, RawRelease raw_release, bool is_device)
        : raw_allocate_(raw_allocate), raw_release_(raw_release), is_device_(is_device) {}
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;
    ~CachingAllocator() { release_cached(default_pool_); }

    static std::size_t round_up(std::size_t bytes) {
        return bytes == 0 ? granule : (bytes + granule - 1) / granule * granule;
    }

    // reuse = false is for long-lived state (a loss log's storage, a captured dropout's counter): a
    // new block, never one a step's tensors just freed. Between steps, reusing one would leave the
    // next step's cache one block short, so it would allocate; inside a capture, the block belongs
    // to the graph's private pool and a tensor of the captured step may write it at every replay.
    void* allocate(std::size_t bytes, bool reuse = true) {
        const std::size_t size = round_up(bytes);
        Pool& pool = current_pool();
        auto& list = pool.free_blocks[size];
        void* p;
        if (!list.empty() && reuse) {
            p = list.back();
            list.pop_back();
        } else {
            p = raw_allocate_(size);
            ++counters().storage_allocs;
            if (is_device_) ++counters().device_allocs;
        }
        if (&pool != &default_pool_) private_owner_[p] = &pool;
        return p;
    }

    // Blocks freed on the device's one stream may be reused at once: later work on that stream
    // runs after the work that used the block. A block that has been in a private pool goes back
    // to that pool wherever it is freed: a graph's replays keep writing it after the capture ends.
    void deallocate(void* ptr, std::size_t bytes) {
        if (!ptr) return;
        Pool* pool = &current_pool();
        if (!private_owner_.empty()) {  // empty unless a graph holds a pool: no lookup on the CPU
            if (auto it = private_owner_.find(ptr); it != private_owner_.end()) pool = it->second;
        }
        if (pool != &default_pool_) private_owner_[ptr] = pool;
        pool->free_blocks[round_up(bytes)].push_back(ptr);
    }

    void push_pool(Pool* pool) { pool_stack_.push_back(pool); }
    void pop_pool() {
        MINIGRAD_ASSERT(!pool_stack_.empty());
        pool_stack_.pop_back();
    }
    // Hands a private pool's blocks back to the shared cache (its graph is gone).
    // Blocks of it still in use go back to the shared cache when they are freed.
    void merge_into_default(Pool& pool) {
        for (auto& [size, blocks] : pool.free_blocks) {
            auto& dst = default_pool_.free_blocks[size];
            dst.insert(dst.end(), blocks.begin(), blocks.end());
        }
        pool.free_blocks.clear();
        std::erase_if(private_owner_, [&](const auto& entry) { return entry.second == &pool; });
    }
    // Returns every cached block of the shared cache to the system (as torch.cuda.empty_cache).
    void empty_cache() { release_cached(default_pool_); }

  private:
    Pool& current_pool() { return pool_stack_.empty() ? default_pool_ : *pool_stack_.back(); }

    void release_cached(Pool& pool) {
        for (auto& [size, blocks] : pool.free_blocks) {
            for (void* p : blocks) {
                raw_release_(p);
                ++counters().storage_frees;
            }
        }
        pool.free_blocks.clear();
    }

    RawAllocate raw_allocate_;
    RawRelease raw_release_;
    bool is_device_;
    Pool default_pool_;
    std::vector<Pool*> pool_stack_;
    std::unordered_map<void*, Pool*> private_owner_;  // blocks that belong to a graph's private pool
};

}  // namespace minigrad::detail
