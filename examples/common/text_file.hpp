// Writing an example's output file with a message that says why it failed: an ofstream's failure
// carries no reason, and errno read after it may belong to a later call.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace examples {

// Writes `text` to `path` (created, or truncated); throws "cannot write '<path>': <strerror>" with
// the errno of the call that failed.
inline void write_text_file(const std::string& path, std::string_view text) {
    auto fail = [&](int err) { throw std::runtime_error(fmt::format("cannot write '{}': {}", path, std::strerror(err))); };
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(errno);
    for (std::size_t done = 0; done < text.size();) {
        const auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            fail(err);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) fail(errno);
}

}  // namespace examples
