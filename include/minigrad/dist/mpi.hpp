// The MPI transport of mg::dist: starting and ending MPI, the rank and world size, and the
// collectives dist/ needs, each posted non-blocking and waited for against a deadline, so that a
// rank that died or stopped calling them ends the job with a message instead of a hang.
//
//   mg::dist::init();              // from mpirun's environment; without mpirun, a world of 1
//   mg::dist::rank(); mg::dist::world_size(); mg::dist::barrier();
//   mg::dist::set_timeout(60);     // seconds a collective may wait (default 300, MINIGRAD_DIST_TIMEOUT)
//
// Only the thread that called init() may call dist:: functions (MPI_THREAD_FUNNELED). MPI is
// finalized at exit (atexit), or earlier by finalize().
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

// dist uses MPI's C API alone: without these, Open MPI's mpi.h pulls in its deprecated C++
// bindings, which need libmpi_cxx at link time.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
#include <fmt/format.h>

#include "../backend/kernels.hpp"
#include "../error.hpp"

namespace minigrad::dist {

namespace detail {
struct State {
    bool initialized = false;  // init() ran and finalize() has not
    bool owns_mpi = false;     // init() called MPI_Init_thread, so finalize() calls MPI_Finalize
    MPI_Comm comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: a user's own MPI traffic cannot match ours
    int rank = 0, world_size = 1, local_rank = 0, local_size = 1;
    double timeout_seconds = 300;
    std::vector<std::function<void()>> at_finalize;  // transports' teardown (NCCL communicators), run first
};
inline State& state() {
    static State s;
    return s;
}

// Every dist:: entry point starts here, so that a call before init() says what to do.
inline State& require_init(const char* op) {
    auto& s = state();
    if (!s.initialized) {
        minigrad::detail::fail<Error>("{}: mg::dist::init() has not been called (or finalize() already ran); call mg::dist::init() once at "
                                      "the start of main, before any other mg::dist function",
                                      op);
    }
    return s;
}

inline void check_mpi(int code, const char* op, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    minigrad::detail::fail<Error>("{}: {} failed on rank {}: {}", op, call, state().rank, std::string(text, static_cast<std::size_t>(length)));
}

// A timeout as a user gives it: positive and finite seconds.
inline double checked_timeout(double seconds, const char* who) {
    if (!(std::isfinite(seconds) && seconds > 0)) {
        minigrad::detail::fail<ValueError>("{}: the timeout is {} s, expected a positive, finite number of seconds", who, seconds);
    }
    return seconds;
}

[[noreturn]] inline void timed_out(const char* op) {
    const auto& s = state();
    fmt::print(stderr,
               "minigrad::dist: {} on rank {} of {} did not complete within {} s: another rank has died or stopped calling it. "
               "Aborting the job (the limit is set by mg::dist::set_timeout or MINIGRAD_DIST_TIMEOUT).\n",
               op, s.rank, s.world_size, s.timeout_seconds);
    std::fflush(stderr);
    MPI_Abort(s.comm != MPI_COMM_NULL ? s.comm : MPI_COMM_WORLD, 3);
    std::_Exit(3);  // MPI_Abort does not return; if it did, the job must still end
}

// Waits for a posted request, driving MPI's progress with MPI_Test, until the deadline. Spins at
// first (a step's all-reduce on a quiet peer completes in microseconds), then yields the core, and
// after a second sleeps between polls: a peer that slow is stalled, and the core is better left
// to whatever else runs.
inline void wait(MPI_Request& request, const char* op) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::duration<double>(state().timeout_seconds);
    for (std::uint64_t polls = 0;; ++polls) {
        int done = 0;
        check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), op, "MPI_Test");
        if (done) return;
        const auto now = std::chrono::steady_clock::now();
        if (now > deadline) timed_out(op);
        if (now - start > std::chrono::seconds(1))
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        else if (polls > 1000)
            std::this_thread::yield();
    }
}

template <class T>
MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
    else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
    else static_assert(sizeof(T) == 0, "minigrad: dist moves float, double, int64 or char over MPI");
}

// MPI counts are ints: larger buffers go in pieces of this many elements.
inline constexpr std::int64_t max_count = std::int64_t{1} << 30;

// Sums `data` (n elements, host memory) over every rank, in place.
template <class T>
void all_reduce_sum(T* data, std::int64_t n, const char* op) {
    auto& s = require_init(op);
    for (std::int64_t start = 0; start < n; start += max_count) {
        const int count = static_cast<int>(std::min(max_count, n - start));
        MPI_Request request;
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data + start, count, mpi_type<T>(), MPI_SUM, s.comm, &request), op, "MPI_Iallreduce");
        wait(request, op);
    }
}

// The largest of `value` over every rank.
inline std::int64_t all_reduce_max(std::int64_t value, const char* op) {
    auto& s = require_init(op);
    MPI_Request request;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT64_T, MPI_MAX, s.comm, &request), op, "MPI_Iallreduce");
    wait(request, op);
    return value;
}

// Root's `data` (n elements, host memory) on every rank.
template <class T>
void broadcast(T* data, std::int64_t n, int root, const char* op) {
    auto& s = require_init(op);
    for (std::int64_t start = 0; start < n; start += max_count) {
        const int count = static_cast<int>(std::min(max_count, n - start));
        MPI_Request request;
        check_mpi(MPI_Ibcast(data + start, count, mpi_type<T>(), root, s.comm, &request), op, "MPI_Ibcast");
        wait(request, op);
    }
}

// Every rank's `text`, indexed by rank (for comparing set-ups; small).
inline std::vector<std::string> all_gather(const std::string& text, const char* op) {
    auto& s = require_init(op);
    if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        minigrad::detail::fail<ValueError>("{}: {} bytes to compare between ranks, more than an MPI count holds", op, text.size());
    }
    int length = static_cast<int>(text.size());
    std::vector<int> lengths(static_cast<std::size_t>(s.world_size)), offsets(static_cast<std::size_t>(s.world_size));
    MPI_Request request;
    check_mpi(MPI_Iallgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, s.comm, &request), op, "MPI_Iallgather");
    wait(request, op);
    std::int64_t total = 0;
    for (int r = 0; r < s.world_size; ++r) {
        if (total + lengths[static_cast<std::size_t>(r)] > std::numeric_limits<int>::max()) {
            minigrad::detail::fail<ValueError>("{}: the ranks' descriptions add up to more bytes than an MPI count holds", op);
        }
        offsets[static_cast<std::size_t>(r)] = static_cast<int>(total);
        total += lengths[static_cast<std::size_t>(r)];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    check_mpi(MPI_Iallgatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, s.comm, &request), op,
              "MPI_Iallgatherv");
    wait(request, op);
    std::vector<std::string> out;
    for (int r = 0; r < s.world_size; ++r) {
        out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                                 static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)])));
    }
    return out;
}

template <class B>
inline constexpr bool has_transport_v = B::is_host;

// How a backend's buffers travel between ranks. Host backends (Cpu): MPI on the buffer itself.
// dist/nccl.hpp gives Cuda its own (NCCL on the device's stream).
template <class B>
struct Transport {
    static_assert(B::is_host, "minigrad: dist on a device backend needs its transport: include <minigrad/dist.hpp> in a file nvcc "
                              "compiles, with NCCL installed (dist/nccl.hpp)");
    // data (n) becomes the mean over ranks of every rank's data.
    template <class T>
    static void all_reduce_mean(T* data, std::int64_t n, int device, const char* op) {
        // Host work on tensor data: run now, or at every replay of a captured step (Cpu's tape).
        B::host_work([data, n, op] { all_reduce_sum(data, n, op); }, device);
        B::launch(n, kernels::ScaleInPlace<T>{data, T(1) / static_cast<T>(state().world_size)}, device);
    }
    template <class T>
    static void broadcast(T* data, std::int64_t n, int root, int /*device*/, const char* op) {
        detail::broadcast(data, n, root, op);
    }
};
}  // namespace detail

// Whether dist can carry backend B's tensors: host backends always; Cuda where dist/nccl.hpp is
// compiled in (nvcc with NCCL).
template <class B>
inline constexpr bool has_transport = detail::has_transport_v<B>;

// Ends MPI (and the transports' communicators). Called at exit when init() started MPI; calling it
// earlier is allowed, after which dist:: functions refuse to run.
inline void finalize() {
    auto& s = detail::state();
    if (!s.initialized) return;
    for (auto it = s.at_finalize.rbegin(); it != s.at_finalize.rend(); ++it) (*it)();
    s.at_finalize.clear();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
        MPI_Comm_free(&s.comm);
        if (s.owns_mpi) MPI_Finalize();
    }
    s.comm = MPI_COMM_NULL;
    s.initialized = false;
}

// Starts MPI from the environment mpirun sets (without mpirun, Open MPI starts a world of one
// process). A second call does nothing. If the program already started MPI itself, init() uses it
// and leaves finalizing to the program. Reads MINIGRAD_DIST_TIMEOUT (seconds) when set.
inline void init() {
    auto& s = detail::state();
    if (s.initialized) return;
    if (const char* env = std::getenv("MINIGRAD_DIST_TIMEOUT")) {
        char* end = nullptr;
        const double seconds = std::strtod(env, &end);
        if (end == env || *end != '\0') {
            minigrad::detail::fail<ValueError>("dist::init: MINIGRAD_DIST_TIMEOUT is '{}', expected a number of seconds", env);
        }
        s.timeout_seconds = detail::checked_timeout(seconds, "dist::init: MINIGRAD_DIST_TIMEOUT");
    }
    int started = 0, finalized = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&finalized);
    if (finalized) minigrad::detail::fail<Error>("dist::init: MPI was already finalized in this process; it cannot start again");
    if (!started) {
        int provided = 0;
        detail::check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "dist::init", "MPI_Init_thread");
        s.owns_mpi = true;
        static const bool registered = [] { return std::atexit([] { finalize(); }) == 0; }();
        (void)registered;
    }
    // Errors come back as codes (thrown as minigrad::Error) instead of MPI's default abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    detail::check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm), "dist::init", "MPI_Comm_dup");
    MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s.comm, &s.rank);
    MPI_Comm_size(s.comm, &s.world_size);
    // The ranks on this machine, for picking a GPU each (local_rank()).
    MPI_Comm node;
    detail::check_mpi(MPI_Comm_split_type(s.comm, MPI_COMM_TYPE_SHARED, s.rank, MPI_INFO_NULL, &node), "dist::init", "MPI_Comm_split_type");
    MPI_Comm_rank(node, &s.local_rank);
    MPI_Comm_size(node, &s.local_size);
    MPI_Comm_free(&node);
    s.initialized = true;
}

inline bool is_initialized() { return detail::state().initialized; }
inline int rank() { return detail::require_init("dist::rank").rank; }
inline int world_size() { return detail::require_init("dist::world_size").world_size; }
// This process's index among the ranks on its machine (the GPU it should use), and their count.
inline int local_rank() { return detail::require_init("dist::local_rank").local_rank; }
inline int local_size() { return detail::require_init("dist::local_size").local_size; }

// How long any dist collective may wait for the other ranks before the job is aborted.
inline void set_timeout(double seconds) { detail::state().timeout_seconds = detail::checked_timeout(seconds, "dist::set_timeout"); }
inline double timeout() { return detail::state().timeout_seconds; }

inline void barrier() {
    auto& s = detail::require_init("dist::barrier");
    MPI_Request request;
    detail::check_mpi(MPI_Ibarrier(s.comm, &request), "dist::barrier", "MPI_Ibarrier");
    detail::wait(request, "dist::barrier");
}

}  // namespace minigrad::dist
