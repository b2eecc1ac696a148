// What the examples write: the --out folder (checked before training) and loss.csv.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <minigrad/error.hpp>

#include "text_file.hpp"

namespace examples {

// Creates the output folder and proves it writable, so that a bad --out fails before training,
// not after it.
inline void prepare_out_dir(const std::filesystem::path& out) {
    std::error_code ec;
    if (std::filesystem::exists(out, ec) && !std::filesystem::is_directory(out, ec)) {
        minigrad::detail::fail<minigrad::IoError>("--out '{}' exists and is not a folder", out.string());
    }
    std::filesystem::create_directories(out, ec);
    if (ec) minigrad::detail::fail<minigrad::IoError>("--out '{}': cannot create the folder: {}", out.string(), ec.message());
    // errno is read right after the call that failed: a later call (the cleanup) may change it.
    const auto probe = out / fmt::format(".write-probe-{}", ::getpid());
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    // (/proc answers "No such file or directory" to a create: the kernel's own errno.)
    if (fd < 0) minigrad::detail::fail<minigrad::IoError>("--out '{}': cannot create a file in the folder: {}", out.string(), std::strerror(errno));
    int err = ::write(fd, "x", 1) == 1 ? 0 : errno;
    if (::close(fd) != 0 && err == 0) err = errno;
    ::unlink(probe.c_str());
    if (err != 0) minigrad::detail::fail<minigrad::IoError>("--out '{}': cannot write into the folder: {}", out.string(), std::strerror(err));
}

inline void write_loss_csv(const std::filesystem::path& path, const std::vector<double>& epochs, const std::vector<double>& losses) {
    std::string csv = "epoch,loss\n";
    for (std::size_t i = 0; i < losses.size(); ++i) csv += fmt::format("{},{:.9g}\n", epochs[i], losses[i]);
    examples::write_text_file(path.string(), csv);
}

}  // namespace examples
