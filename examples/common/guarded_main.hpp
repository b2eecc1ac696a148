// An example's main body with every failure ending as "error: ..." and a non-zero exit: nothing
// aborts, and what was printed stays printed (stdout is flushed on return).
#pragma once

#include <cstdio>
#include <exception>
#include <new>

#include <fmt/format.h>

namespace examples {

template <class F>
int guarded_main(F&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        fmt::print(stderr, "error: out of memory\n");
    } catch (const std::exception& e) {  // minigrad::Error, a failed file write, anything else from the standard library
        fmt::print(stderr, "error: {}\n", e.what());
    } catch (...) {
        fmt::print(stderr, "error: an unknown exception\n");
    }
    return 1;
}

}  // namespace examples
