// The parameter file format: named arrays with shapes, an element type and a checksum. Writes are
// atomic (temp file, flush, fsync, rename), so a crash mid-write never leaves a half file; reads
// check everything before the caller touches a parameter, so a bad file loses nothing.
//
// Layout (little-endian): "MINIGRAD" u32 version u32 count, then per array: u32 name length, name,
// u8 element size (4 = float, 8 = double), u8 ndim, i64 dims[ndim], the elements; then u64 FNV-1a
// of every byte before it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "../error.hpp"

namespace minigrad::io {

template <class T>
struct NamedArray {
    std::string name;
    std::vector<std::int64_t> shape;
    std::vector<T> values;
};

namespace detail {
inline constexpr char magic[8] = {'M', 'I', 'N', 'I', 'G', 'R', 'A', 'D'};
inline constexpr std::uint32_t version = 1;

inline std::uint64_t fnv1a(const unsigned char* p, std::size_t n) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

template <class X>
void put(std::vector<unsigned char>& out, const X& x) {
    const auto* p = reinterpret_cast<const unsigned char*>(&x);
    out.insert(out.end(), p, p + sizeof(X));
}

class Reader {
  public:
    Reader(const std::vector<unsigned char>& bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {}
    template <class X>
    X get(std::string_view what) {
        X x;
        take(&x, sizeof(X), what);
        return x;
    }
    void take(void* dst, std::size_t n, std::string_view what) {
        if (n > bytes_.size() - pos_) {
            minigrad::detail::fail<IoError>("load: '{}' is truncated: {} needs {} bytes at offset {}, but the file has {} left",
                                            path_, what, n, pos_, bytes_.size() - pos_);
        }
        std::memcpy(dst, bytes_.data() + pos_, n);
        pos_ += n;
    }
    std::size_t pos() const { return pos_; }

  private:
    const std::vector<unsigned char>& bytes_;
    std::string path_;
    std::size_t pos_ = 0;
};
}  // namespace detail

template <class T>
void save_arrays(const std::filesystem::path& path, const std::vector<NamedArray<T>>& arrays) {
    std::vector<unsigned char> out;
    out.insert(out.end(), detail::magic, detail::magic + 8);
    detail::put(out, detail::version);
    detail::put(out, static_cast<std::uint32_t>(arrays.size()));
    for (const auto& a : arrays) {
        detail::put(out, static_cast<std::uint32_t>(a.name.size()));
        out.insert(out.end(), a.name.begin(), a.name.end());
        detail::put(out, static_cast<std::uint8_t>(sizeof(T)));
        detail::put(out, static_cast<std::uint8_t>(a.shape.size()));
        for (auto d : a.shape) detail::put(out, d);
        const auto* p = reinterpret_cast<const unsigned char*>(a.values.data());
        out.insert(out.end(), p, p + a.values.size() * sizeof(T));
    }
    detail::put(out, detail::fnv1a(out.data(), out.size()));

    const std::string tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) minigrad::detail::fail<IoError>("save: cannot create '{}': {}", tmp, std::strerror(errno));
    std::size_t written = 0;
    while (written < out.size()) {
        const auto n = ::write(fd, out.data() + written, out.size() - written);
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            minigrad::detail::fail<IoError>("save: cannot write '{}': {}", tmp, std::strerror(err));
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        minigrad::detail::fail<IoError>("save: cannot flush '{}': {}", tmp, std::strerror(errno));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        minigrad::detail::fail<IoError>("save: cannot rename '{}' to '{}': {}", tmp, path.string(), std::strerror(errno));
    }
}

template <class T>
std::vector<NamedArray<T>> load_arrays(const std::filesystem::path& path) {
    const std::string name = path.string();
    std::FILE* f = std::fopen(name.c_str(), "rb");
    if (!f) minigrad::detail::fail<IoError>("load: cannot open '{}': {}", name, std::strerror(errno));
    std::vector<unsigned char> bytes;
    unsigned char buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);

    detail::Reader in(bytes, name);
    char head[8];
    in.take(head, 8, "the header");
    if (std::memcmp(head, detail::magic, 8) != 0) {
        minigrad::detail::fail<IoError>("load: '{}' is not a minigrad parameter file (its first bytes are not \"MINIGRAD\")", name);
    }
    const auto ver = in.get<std::uint32_t>("the version");
    if (ver != detail::version) {
        minigrad::detail::fail<IoError>("load: '{}' has format version {}, expected {}", name, ver, detail::version);
    }
    if (bytes.size() < 8 + 8) minigrad::detail::fail<IoError>("load: '{}' is truncated: no checksum", name);
    std::uint64_t stored;
    std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
    const auto count = in.get<std::uint32_t>("the array count");
    std::vector<NamedArray<T>> arrays;
    for (std::uint32_t i = 0; i < count; ++i) {
        NamedArray<T> a;
        const auto len = in.get<std::uint32_t>("a name length");
        if (len > bytes.size()) minigrad::detail::fail<IoError>("load: '{}' is corrupt: array #{} has a name of {} bytes", name, i, len);
        a.name.resize(len);
        in.take(a.name.data(), len, "a name");
        const auto elem = in.get<std::uint8_t>("an element size");
        if (elem != sizeof(T)) {
            minigrad::detail::fail<IoError>("load: '{}' stores '{}' with {}-byte elements, expected {}-byte ({})", name,
                                            a.name, elem, sizeof(T), sizeof(T) == 4 ? "float" : "double");
        }
        const auto ndim = in.get<std::uint8_t>("a rank");
        std::int64_t numel = 1;
        for (int d = 0; d < ndim; ++d) {
            a.shape.push_back(in.get<std::int64_t>("a dimension"));
            if (a.shape.back() < 0 || a.shape.back() > static_cast<std::int64_t>(bytes.size())) {
                minigrad::detail::fail<IoError>("load: '{}' is corrupt: '{}' has dimension {}", name, a.name, a.shape.back());
            }
            numel *= a.shape.back();
        }
        if (static_cast<std::uint64_t>(numel) * sizeof(T) > bytes.size()) {
            minigrad::detail::fail<IoError>("load: '{}' is truncated: '{}' needs {} bytes of data, the file has {} in all",
                                            name, a.name, numel * sizeof(T), bytes.size());
        }
        a.values.resize(static_cast<std::size_t>(numel));
        in.take(a.values.data(), a.values.size() * sizeof(T), fmt::format("the data of '{}'", a.name));
        arrays.push_back(std::move(a));
    }
    if (in.pos() + 8 != bytes.size()) {
        minigrad::detail::fail<IoError>("load: '{}' is corrupt: {} bytes of arrays and checksum expected, the file has {}",
                                        name, in.pos() + 8, bytes.size());
    }
    if (detail::fnv1a(bytes.data(), in.pos()) != stored) {
        minigrad::detail::fail<IoError>("load: '{}' is corrupt: its checksum does not match its contents", name);
    }
    return arrays;
}

}  // namespace minigrad::io
