// What the examples write: the --out folder (checked before training), loss.csv, loss.svg and the
// model; and the check every example makes of its loss curve before writing them.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <minigrad/error.hpp>

#include "svg_plot.hpp"
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

// Whether a loss is NaN or infinite; if so, says at which epoch on stderr (the example then exits 3).
inline bool loss_diverged(const std::vector<float>& losses, double lr) {
    for (std::size_t i = 0; i < losses.size(); ++i) {
        if (!std::isfinite(losses[i])) {
            fmt::print(stderr, "error: the training loss became {} at epoch {}; try a smaller --lr than {}\n",
                       std::isnan(losses[i]) ? "NaN" : "infinite", i + 1, lr);
            return true;
        }
    }
    return false;
}

// loss.csv and loss.svg of the per-epoch losses, and model.safetensors, in `out`; then says so.
template <class Model>
void write_outputs(const std::string& out, const std::vector<float>& losses, const std::string& title, const std::string& y_label, const Model& model) {
    std::fflush(stdout);  // the results printed so far stay printed whatever happens to the files
    const std::filesystem::path dir(out);
    std::vector<double> epochs, curve;
    for (std::size_t i = 0; i < losses.size(); ++i) {
        epochs.push_back(static_cast<double>(i + 1));
        curve.push_back(losses[i]);
    }
    write_loss_csv(dir / "loss.csv", epochs, curve);
    write_svg((dir / "loss.svg").string(), {title, "Epoch", y_label, epochs, curve});
    model.save(dir / "model.safetensors");
    fmt::print("Wrote {0}/loss.csv, {0}/loss.svg and {0}/model.safetensors\n", out);
}

}  // namespace examples
