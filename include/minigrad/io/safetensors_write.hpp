// Writing a safetensors file (io/safetensors.hpp says what the format is), atomically: an
// anonymous (O_TMPFILE) or uniquely named file in the target folder, written, fsynced, renamed over
// the target, then the folder fsynced; every failure removes what it created. Included by
// safetensors.hpp, inside its MINIGRAD_DEFINE_PREBUILT (with minigrad::prebuilt, the library's copy
// is the one called).
#pragma once

#include "json.hpp"
#include "safetensors.hpp"

namespace minigrad::io {

namespace detail {
// Writes all of `bytes` to `fd`; returns 0 or an errno.
inline int write_all(int fd, const std::string& bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
        const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        done += static_cast<std::size_t>(n);
    }
    return 0;
}

// A name for a temporary file beside `path` that no other save (thread or process) picks. It
// keeps at most 32 bytes of the target's name, so it stays within NAME_MAX (255 bytes) for every
// legal target name: the whole name plus pid, counter and salt would not.
inline std::filesystem::path temp_name(const std::filesystem::path& path) {
    static std::atomic<std::uint64_t> counter{0};
    static const std::uint64_t salt = std::random_device{}();
    const std::string name = path.filename().string();
    return path.parent_path() / minigrad::detail::format(".{}.{}.{}.{:x}.tmp", name.substr(0, utf8_prefix(name, 32)), ::getpid(), counter++, salt);
}

// The file a save to `path` replaces: `path` itself, or, where `path` is a symbolic link, the file
// its chain of links ends at (so a save writes through a link as open() would and the link stays a
// link; a dangling link's target is created). Refuses a path that ends in '/' and an existing
// target that is not a regular file: renaming over a directory fails, and renaming over
// /dev/null, a FIFO or a socket would replace it with a regular file. (Checked before the rename;
// a target swapped in between is not detected.)
inline std::filesystem::path save_target(const std::filesystem::path& path) {
    auto refuse = [&](const std::filesystem::path& target, std::string_view why) {
        const auto via = target == path ? std::string() : minigrad::detail::format(" (a symbolic link to {})", quote_path(target));
        minigrad::detail::fail<IoError>("save_safetensors: cannot save to {}{}: {}", quote_path(path), via, why);
    };
    std::filesystem::path target = path;
    for (int links = 0;; ++links) {
        if (!target.has_filename()) refuse(target, "the path ends in '/' (or is empty): it names a folder, not a file");
        struct stat st {};
        if (::lstat(target.c_str(), &st) != 0) {
            if (errno == ENOENT) return target;  // a new file; a missing folder fails when the temporary is made
            refuse(target, std::strerror(errno));
        }
        if (S_ISREG(st.st_mode)) return target;
        if (!S_ISLNK(st.st_mode)) refuse(target, minigrad::detail::format("it is {}, not a regular file", file_kind(st.st_mode)));
        if (links == 40) refuse(target, std::strerror(ELOOP));  // as the kernel's limit on a chain of links
        std::error_code ec;
        const auto next = std::filesystem::read_symlink(target, ec);
        if (ec) refuse(target, ec.message());
        target = next.is_absolute() ? next : target.parent_path() / next;
    }
}

// `path` is the target as quoted in messages.
inline std::string encode(const std::vector<TensorData>& tensors, const Metadata& metadata, const std::string& path) {
    // The header as nlohmann/json (and so earlier minigrad) wrote it: compact, keys sorted bytewise
    // (the entries, "__metadata__" among them, and each entry's and the metadata's keys), so that
    // a save keeps its bytes.
    std::map<std::string, std::string> header;  // key -> its value as JSON text
    std::set<std::string> names;
    std::uint64_t offset = 0;
    const auto not_utf8 = [&](std::string_view what, const std::string& text) {
        minigrad::detail::fail<IoError>("save_safetensors: {}: cannot encode the header: {} {} is not valid UTF-8", path, what, quote(text));
    };
    Metadata all_metadata = metadata;  // the caller's, then a checksum per tensor
    for (const auto& [key, value] : metadata) {
        if (key.starts_with(checksum_prefix)) {
            minigrad::detail::fail<IoError>("save_safetensors: {}: the metadata key {} starts with '{}', which minigrad keeps for its checksums", path,
                                            quote(key), checksum_prefix);
        }
    }
    for (const auto& t : tensors) {
        if (t.name == "__metadata__") minigrad::detail::fail<IoError>("save_safetensors: {}: a tensor cannot be named '__metadata__'", path);
        if (!names.insert(t.name).second) minigrad::detail::fail<IoError>("save_safetensors: {}: the tensor name {} appears twice", path, quote(t.name));
        // checked here, before its checksum's key, which holds it, is written among the metadata
        if (std::string scratch; !json::append_string(scratch, t.name)) not_utf8("the tensor name", t.name);
        std::uint64_t numel = 1;
        for (auto d : t.shape) {
            if (d < 0 || __builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel)) {
                minigrad::detail::fail<IoError>("save_safetensors: {}: tensor {} has an invalid shape {}", path, quote(t.name), shape_text(t.shape));
            }
        }
        std::uint64_t expected = 0;
        if (__builtin_mul_overflow(numel, dtype_size(t.dtype), &expected) || expected != t.bytes.size()) {
            minigrad::detail::fail<IoError>("save_safetensors: {}: tensor {} has shape {} of {}, which needs {} bytes, but {} were given", path,
                                            quote(t.name), shape_text(t.shape), dtype_name(t.dtype), numel * dtype_size(t.dtype), t.bytes.size());
        }
        std::string entry = "{\"data_offsets\":[";
        entry += std::to_string(offset);
        entry += ',';
        entry += std::to_string(offset + expected);
        entry += "],\"dtype\":\"";
        entry += dtype_name(t.dtype);
        entry += "\",\"shape\":[";
        entry += minigrad::detail::join(t.shape, ",");
        entry += "]}";
        header[t.name] = std::move(entry);
        all_metadata[std::string(checksum_prefix) + t.name] = minigrad::detail::format("{:08x}", crc32(t.bytes.data(), t.bytes.size()));
        offset += expected;
    }
    if (!all_metadata.empty()) {
        std::string object(1, '{');
        for (const auto& [key, value] : all_metadata) {
            if (object.size() > 1) object += ',';
            if (!json::append_string(object, key)) not_utf8("the metadata key", key);
            object += ':';
            if (!json::append_string(object, value)) not_utf8("the metadata value of", key);
        }
        header["__metadata__"] = object + '}';
    }
    std::string text(1, '{');
    for (const auto& [key, value] : header) {
        if (text.size() > 1) text += ',';
        if (!json::append_string(text, key)) not_utf8("the tensor name", key);
        text += ':';
        text += value;
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-aligned, as the reference writer pads
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
    out += text;
    out.reserve(out.size() + offset);
    for (const auto& t : tensors)
        if (!t.bytes.empty()) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    return out;
}
}  // namespace detail

// Writes `tensors` (in this order) and `metadata` to `path` atomically: `path` is either left as
// it was or holds the whole new file, even if the process is killed. `path` must be a regular
// file, a new name in an existing folder, or a symbolic link to either (the link's final target
// is replaced, the link kept); a directory, device, FIFO or socket is refused.
MINIGRAD_PREBUILT_INLINE void save_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors, const Metadata& metadata) {
    const std::string quoted = detail::quote_path(path);
    const std::string bytes = detail::encode(tensors, metadata, quoted);
    const std::filesystem::path target_path = detail::save_target(path);
    const std::string target = target_path.string();
    const std::filesystem::path folder = target_path.parent_path().empty() ? std::filesystem::path(".") : target_path.parent_path();
    auto fail = [&](std::string_view what, int err) {
        minigrad::detail::fail<IoError>("save_safetensors: cannot {} {}: {}", what, quoted, std::strerror(err));
    };

    // An O_TMPFILE file has no name until linkat gives it one, so a save killed while writing
    // leaves nothing behind. Where the filesystem lacks it, a uniquely named file is used.
    const std::string temp = detail::temp_name(target_path).string();
    bool named = false;
    detail::Fd file(::open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644));
    if (file.fd < 0) {
        file.fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (file.fd < 0) fail("create a temporary file for", errno);
        named = true;
    }
    auto give_up = [&](std::string_view what, int err) {
        if (named) ::unlink(temp.c_str());
        fail(what, err);  // `file`, if still open, closes on the way out
    };
    if (const int err = detail::write_all(file.fd, bytes)) give_up("write", err);
    if (::fsync(file.fd) != 0) give_up("fsync", errno);
    if (!named) {
        const std::string proc = minigrad::detail::format("/proc/self/fd/{}", file.fd);
        if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) != 0) give_up("link a temporary file for", errno);
        named = true;
    }
    if (::close(file.release()) != 0) give_up("close", errno);
    if (std::rename(temp.c_str(), target.c_str()) != 0) give_up("rename a temporary file to", errno);
    // The rename is durable only once the folder's entry is on disk.
    detail::Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd < 0) fail("open the folder of", errno);
    if (::fsync(dir.fd) != 0 && errno != EINVAL) fail("fsync the folder of", errno);
}

}  // namespace minigrad::io
