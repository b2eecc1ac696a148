// A captured step's launches as data: the record tape that a StepGraph in compiled mode makes while
// it captures (capture/graph.hpp; the program that runs it is in capture/compiled.hpp). Every backend primitive that
// launches work appends a record: which functor (its type), its arguments (the functor's bytes,
// copied) and its index range. Work that cannot be a record (host work, a library call such as
// cuBLAS or NCCL) makes the tape refuse, with the reason (record_refuse). Backend-neutral: it knows
// no op. Recording is per thread: launches another thread makes meanwhile are not recorded (a
// capture owns its device, docs/design.md).
//
// Two kinds of functor are recorded. An index functor (kernels.hpp's rules) is run as f(i) for
// every i < n. A block functor has block(team) instead: a piece of work that a team of threads
// does together (a sum, the label check of ops/labels.hpp), written against a team that says which thread this is
// and how many there are, waits for all of them (sync), and sums a value over all of them. The
// teams: kernels::HostTeam below on the host (one thread, or several for a program that takes the
// whole machine); in cuda.cuh one GPU block, or every block of a cooperative grid.
#pragma once

#include <barrier>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#if defined(__GNUC__)
#include <cxxabi.h>
#endif

#include <fmt/format.h>

#include "../backend/kernels.hpp"

namespace minigrad {
namespace kernels {

// Where a label check runs (ops/labels.hpp): the op and its argument, and whether the values are
// class labels ("class 3 at index 1") or indices into a dim ("index 7 at position 2"). String
// literals of the host: a GPU kernel keeps the pointers for the host's message.
struct LabelSite {
    const char* op;
    const char* arg;  // "argument #2 'target'"
    bool is_index;
    bool unsigned_values;  // the values were of an unsigned type: print them so
};

// A label outside [0, classes) that a check run as a team found: on the host the lowest index, on
// a GPU whichever thread reported first.
struct LabelError {
    int flag;
    long long index;
    long long value;
    long long classes;
    LabelSite site;
};

// The one text of a bad label or index, whichever backend found it:
// "cross_entropy: argument #2 'target' has class 3 at index 1, expected a class in [0, 3)".
inline std::string label_error_message(const LabelError& e) {
    const char* noun = e.site.is_index ? "index" : "class";
    const auto value = e.site.unsigned_values ? minigrad::detail::format("{}", static_cast<unsigned long long>(e.value)) : minigrad::detail::format("{}", e.value);
    return minigrad::detail::format("{}: {} has {} {} at {} {}, expected {} {} in [0, {})", e.site.op, e.site.arg, noun, value,
                       e.site.is_index ? "position" : "index", e.index, e.site.is_index ? "an" : "a", noun, e.classes);
}

// What the host threads of one team share: a barrier, a slot per thread for sums, and a lock for
// the label report.
struct HostTeamShared {
    struct alignas(16) Slot {
        unsigned char bytes[16];
    };
    explicit HostTeamShared(int count) : barrier(count), slots(static_cast<std::size_t>(count)) {}
    std::barrier<> barrier;
    std::vector<Slot> slots;
    std::mutex label_mutex;
};

// The host's team for a block functor: `count` host threads, thread `id` of them; a team of one
// where `shared` is null. Its sum is deterministic: every thread adds the slots in thread order.
// (Annotated for both sides only so that nvcc may compile the programs that take it for the device
// too; it runs on the host.)
struct HostTeam {
    LabelError* label_error;
    HostTeamShared* shared = nullptr;
    int id = 0;
    int count = 1;
    MINIGRAD_HD int thread() const { return id; }
    MINIGRAD_HD int threads() const { return count; }
    MINIGRAD_HD void sync() const {
#if !defined(__CUDA_ARCH__)
        if (shared) shared->barrier.arrive_and_wait();
#endif
    }
    template <class T>
    MINIGRAD_HD T sum(T v) const {
#if !defined(__CUDA_ARCH__)
        static_assert(sizeof(T) <= sizeof(HostTeamShared::Slot));
        if (!shared) return v;
        std::memcpy(shared->slots[static_cast<std::size_t>(id)].bytes, &v, sizeof(T));
        sync();
        T total = 0;
        for (const auto& slot : shared->slots) {
            T part;
            std::memcpy(&part, slot.bytes, sizeof(T));
            total += part;
        }
        sync();  // the slots are free for the next sum
        return total;
#else
        return v;
#endif
    }
    MINIGRAD_HD void report_label(long long index, long long value, long long classes, const LabelSite& site) const {
#if !defined(__CUDA_ARCH__)
        // the lowest index, whichever thread finds it: what eager steps on the CPU report
        std::unique_lock<std::mutex> lock;
        if (shared) lock = std::unique_lock(shared->label_mutex);
        if (!label_error->flag || index < label_error->index) *label_error = {1, index, value, classes, site};
#endif
    }
};

// x is (n), out is (1): out = scale * sum(x) (* device_scale[0] where given), written or added.
// The sum primitive as a block functor: each thread sums a strided slice, the team adds them.
template <class T>
struct BlockSum {
    const T* x;
    index_t n;
    T* out;
    T scale;
    bool overwrite;
    const T* device_scale;
    template <class Team>
    MINIGRAD_HD void block(const Team& team) const {
        T partial = 0;
        for (index_t i = team.thread(); i < n; i += team.threads()) partial += x[i];
        const T total = team.sum(partial);
        if (team.thread() == 0) out[0] = write(out[0], device_scale ? total * scale * device_scale[0] : total * scale, overwrite);
    }
};

// dst, src are (n) words of Word: a copy within a backend as an index functor; i over n
template <class Word>
struct CopyWords {
    Word* dst;
    const Word* src;
    MINIGRAD_HD void operator()(index_t i) const { dst[i] = src[i]; }
};

// The primitives' functors defined here, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using TapeFunctors = Functors<BlockSum<T>, CopyWords<std::uint32_t>, CopyWords<unsigned char>>;

}  // namespace kernels

namespace detail {

inline std::string type_name(const std::type_info& info) {
#if defined(__GNUC__)
    int status = 0;
    char* name = abi::__cxa_demangle(info.name(), nullptr, nullptr, &status);
    if (status == 0 && name) {
        std::string out(name);
        std::free(name);
        return out;
    }
#endif
    return info.name();
}

// One launch: the functor's type and arguments (bytes at args_offset in the tape's arena), its
// index range n (index functors; 0 for block functors) and its work, the multiply-adds or element
// steps it stands for, which compiled mode weighs against what one block should take on.
struct TapeRecord {
    const std::type_info* info = nullptr;
    std::int64_t n = 0;
    std::int64_t work = 0;
    std::int64_t args_offset = 0;
    std::int64_t args_size = 0;
};

struct RecordTape {
    static constexpr std::size_t arg_align = 16;
    std::vector<TapeRecord> records;
    std::vector<unsigned char> arena;  // the functors' bytes, each at a multiple of arg_align
    std::string refused;               // why the step cannot be one program ("" while it can)

    void refuse(std::string why) {
        if (refused.empty()) refused = std::move(why);
    }
    // Copies `size` bytes to the end of `to`, at the next multiple of arg_align; returns where.
    static std::int64_t append(std::vector<unsigned char>& to, const void* bytes, std::size_t size) {
        const std::size_t offset = (to.size() + arg_align - 1) / arg_align * arg_align;
        to.resize(offset + size);
        std::memcpy(to.data() + offset, bytes, size);
        return static_cast<std::int64_t>(offset);
    }
    template <class F>
    void add(std::int64_t n, std::int64_t work, const F& f) {
        if constexpr (!std::is_trivially_copyable_v<F> || alignof(F) > arg_align) {
            refuse(minigrad::detail::format("it launches {}, which is not a plain struct that can be copied to the device",
                               type_name(typeid(F))));
        } else {
            TapeRecord r;
            r.info = &typeid(F);
            r.n = n;
            r.work = work;
            r.args_offset = append(arena, &f, sizeof(F));
            r.args_size = static_cast<std::int64_t>(sizeof(F));
            records.push_back(r);
        }
    }
};

// The tape this thread's launches are recorded into (null: none).
inline RecordTape*& recording_tape() {
    thread_local RecordTape* tape = nullptr;
    return tape;
}

// For the backends' primitives: append a launch to the tape being recorded, if any.
template <class F>
inline void record_each(std::int64_t n, const F& f) {
    if (RecordTape* tape = recording_tape()) [[unlikely]] {
        std::int64_t work = n;
        if constexpr (requires { f.total_work(); })
            work = f.total_work();  // a table of tensors launched over lanes
        else if constexpr (requires { f.work_per_index(); })
            work = n * f.work_per_index();
        tape->add(n, work, f);
    }
}
template <class F>
inline void record_block(std::int64_t work, const F& f) {
    if (RecordTape* tape = recording_tape()) [[unlikely]] tape->add(0, work, f);
}
// A copy of `bytes` within the backend, as whole words where both ends allow it.
inline void record_copy(void* dst, const void* src, std::size_t bytes) {
    if (!recording_tape() || bytes == 0) [[likely]] return;
    const auto aligned = [&](std::size_t w) {
        return bytes % w == 0 && reinterpret_cast<std::uintptr_t>(dst) % w == 0 && reinterpret_cast<std::uintptr_t>(src) % w == 0;
    };
    if (aligned(4)) {
        record_each(static_cast<std::int64_t>(bytes / 4),
                    kernels::CopyWords<std::uint32_t>{static_cast<std::uint32_t*>(dst), static_cast<const std::uint32_t*>(src)});
    } else {
        record_each(static_cast<std::int64_t>(bytes),
                    kernels::CopyWords<unsigned char>{static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src)});
    }
}
// Work the tape cannot hold (a library call, host work): the step will not be one program.
template <class S>
inline void record_refuse(S&& why) {
    if (RecordTape* tape = recording_tape()) [[unlikely]] tape->refuse(std::string(std::forward<S>(why)));
}

// While it lives, this thread's launches are not recorded: for a primitive that recorded itself as
// one record and then launches its parts.
struct NotRecorded {
    RecordTape* saved = std::exchange(recording_tape(), nullptr);
    NotRecorded() = default;
    NotRecorded(const NotRecorded&) = delete;
    NotRecorded& operator=(const NotRecorded&) = delete;
    ~NotRecorded() { recording_tape() = saved; }
};

}  // namespace detail
}  // namespace minigrad
