// safetensors, minigrad's one on-disk format (the format of Hugging Face's `safetensors`, so
// PyTorch reads what minigrad writes and the other way round):
//
//   u64 little-endian N | N bytes of JSON header | data section (raw little-endian elements)
//   header: {"name": {"dtype": "F32", "shape": [3, 4], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"key": "value", ...}}   (offsets relative to the data section)
//
// minigrad adds a checksum of each tensor's bytes to the metadata, "minigrad.crc32.<name>": the
// CRC-32 as 8 hex digits (readers that do not know the key, PyTorch's among them, pass it by as
// metadata). A load verifies every checksum the file has, so a flipped bit in the data is an error
// naming the tensor instead of a wrong weight; a file without them (PyTorch's) loads as before.
//
// Reading checks before it allocates: the file is opened without blocking (a FIFO with no writer
// is refused at once, not waited on), its size comes first (fstat), the header length is checked
// against it and a cap, every entry's shape, byte count and offsets against the data section,
// which the entries must cover exactly (no overlaps, no holes). Writing is atomic: an anonymous
// (O_TMPFILE) or uniquely named file in the target folder, written, fsynced, renamed over the
// target, then the folder fsynced; every failure removes what it created. A save refuses a target
// that exists and is not a regular file, and writes through a symbolic link to the file it names.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config.hpp"
#include "../error.hpp"

namespace minigrad::io {

static_assert(std::endian::native == std::endian::little,
              "minigrad: safetensors stores little-endian data; this host is not little-endian");

enum class Dtype { F32, F64, I32, I64, F16, BF16 };  // F16 and BF16: to_floating converts them

inline std::string_view dtype_name(Dtype d) {
    switch (d) {
        case Dtype::F32: return "F32";
        case Dtype::F64: return "F64";
        case Dtype::I32: return "I32";
        case Dtype::I64: return "I64";
        case Dtype::F16: return "F16";
        case Dtype::BF16: return "BF16";
    }
    return "?";
}
inline std::size_t dtype_size(Dtype d) {
    if (d == Dtype::F16 || d == Dtype::BF16) return 2;
    return d == Dtype::F32 || d == Dtype::I32 ? 4 : 8;
}

template <class T>
constexpr Dtype dtype_of() {
    if constexpr (std::is_same_v<T, float>) return Dtype::F32;
    else if constexpr (std::is_same_v<T, double>) return Dtype::F64;
    else if constexpr (std::is_same_v<T, std::int32_t>) return Dtype::I32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return Dtype::I64;
    else static_assert(sizeof(T) == 0, "minigrad: safetensors stores float, double, int32_t and int64_t");
}

using Metadata = std::map<std::string, std::string>;

// The metadata key of a tensor's checksum is this prefix and the tensor's name. The keys are the
// format's, not the caller's: save_safetensors writes them and refuses a caller's key that starts
// so; a reader verifies them and leaves them out of the metadata it returns.
inline constexpr std::string_view checksum_prefix = "minigrad.crc32.";

namespace detail {
// CRC-32 as zlib, gzip and PNG compute it (polynomial 0x04C11DB7, reflected: 0xEDB88320). Why this
// checksum: a CRC of degree 32 detects every single-bit error in a message of any length and
// every burst of errors spanning at most 32 bits, which is the guarantee a checkpoint needs against
// a flipped bit; other damage slips past with odds of 2^-32. Every platform can check it
// (Python's zlib.crc32). Slicing-by-8: table k holds the CRC of a byte followed by k zero bytes,
// so eight lookups fold in eight bytes at a time (several GB/s, against about one for a byte at a
// time). The 8 KB of tables are computed by the compiler.
struct Crc32Tables {
    std::uint32_t table[8][256];
};
constexpr Crc32Tables make_crc32_tables() {
    Crc32Tables t{};
    for (std::uint32_t byte = 0; byte < 256; ++byte) {
        std::uint32_t crc = byte;
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        t.table[0][byte] = crc;
    }
    for (int k = 1; k < 8; ++k)
        for (int byte = 0; byte < 256; ++byte) t.table[k][byte] = (t.table[k - 1][byte] >> 8) ^ t.table[0][t.table[k - 1][byte] & 0xFF];
    return t;
}
inline constexpr Crc32Tables crc32_tables = make_crc32_tables();
}  // namespace detail

// The CRC-32 of `size` bytes at `data` (zlib's crc32); `crc`, the CRC of the bytes before them,
// continues one. (A pointer and a size, not a span: converting a vector to a span costs every
// file that includes this header a measurable share of its compile time.)
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) {
    const auto& t = detail::crc32_tables.table;
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t n = size;
    crc = ~crc;
    for (; n >= 8; p += 8, n -= 8) {
        std::uint32_t low = 0, high = 0;  // little-endian (asserted above): the first byte is low's lowest
        std::memcpy(&low, p, 4);
        std::memcpy(&high, p + 4, 4);
        low ^= crc;
        crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24] ^ t[3][high & 0xFF] ^
              t[2][(high >> 8) & 0xFF] ^ t[1][(high >> 16) & 0xFF] ^ t[0][high >> 24];
    }
    for (; n > 0; ++p, --n) crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xFF];
    return ~crc;
}

// One named array as stored: its element type, shape and raw little-endian bytes.
struct TensorData {
    std::string name;
    Dtype dtype = Dtype::F32;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> bytes;

    template <class T>
    static TensorData from(std::string name, std::vector<std::int64_t> shape, std::span<const T> values) {
        TensorData t{std::move(name), dtype_of<T>(), std::move(shape), std::vector<std::byte>(values.size_bytes())};
        if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), values.size_bytes());
        return t;
    }
    // The elements as T; the stored dtype must be T's.
    template <class T>
    std::vector<T> values() const {
        if (dtype != dtype_of<T>()) {
            minigrad::detail::fail<ValueError>("TensorData::values: '{}' is {}, asked for {}", name, dtype_name(dtype),
                                               dtype_name(dtype_of<T>()));
        }
        std::vector<T> out(bytes.size() / sizeof(T));
        if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
        return out;
    }
};

struct SafetensorsFile {
    std::vector<TensorData> tensors;  // in the order of their data in the file
    Metadata metadata;

    const TensorData* find(std::string_view name) const {
        for (const auto& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }
};

namespace detail {
inline constexpr std::uint64_t max_header_bytes = 100'000'000;  // as the reference implementation
inline constexpr std::size_t max_quoted = 64;
inline constexpr std::size_t max_quoted_path = 200;

// The length of the longest prefix of `s` of at most `max_bytes` that does not split a UTF-8
// character.
inline std::size_t utf8_prefix(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) return s.size();
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return cut;
}

// `s` quoted for a message, cut (at a UTF-8 boundary) when long: a 10 MB name is not echoed whole.
inline std::string quote(std::string_view s, std::size_t max_bytes = max_quoted) {
    if (s.size() <= max_bytes) return minigrad::detail::format("'{}'", s);
    return minigrad::detail::format("'{}...' ({} bytes)", s.substr(0, utf8_prefix(s, max_bytes)), s.size());
}
// A path for a message: paths reach 4096 bytes, of which the first 200 say enough.
inline std::string quote_path(const std::filesystem::path& path) { return quote(path.string(), max_quoted_path); }

// What a file that is not a regular file is, for messages.
inline std::string_view file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

inline std::string shape_text(const std::vector<std::int64_t>& shape) { return minigrad::detail::bracketed(shape); }

// Closes a descriptor on every path out of a scope.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};
}  // namespace detail

namespace detail {
// IEEE binary16 and bfloat16 bits as float (exactly: every value of either is a float)
inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu, bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);  // inf, NaN (payload kept)
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // rebias 15 -> 127
    } else if (mantissa == 0) {
        bits = sign;  // +-0
    } else {  // subnormal: shift until the leading 1 is the implicit bit
        exponent = 113;
        while (!(mantissa & 0x400u)) mantissa <<= 1, --exponent;
        bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
inline float bfloat16_to_float(std::uint16_t b) {
    const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
}  // namespace detail

// The elements of a floating-point tensor as T: F32 and F64 convert to either (rounding to
// nearest, as PyTorch's copy_ does), F16 and BF16 exactly; integer dtypes are refused. `op` and
// `path` name the caller.
template <class T>
std::vector<T> to_floating(const TensorData& t, std::string_view op, const std::filesystem::path& path) {
    static_assert(std::is_floating_point_v<T>);
    auto convert = [&](auto stored) {
        const auto values = t.values<decltype(stored)>();
        return std::vector<T>(values.begin(), values.end());
    };
    if (t.dtype == Dtype::F32) return convert(float{});
    if (t.dtype == Dtype::F64) return convert(double{});
    if (t.dtype == Dtype::F16 || t.dtype == Dtype::BF16) {
        std::vector<T> out(t.bytes.size() / 2);
        for (std::size_t i = 0; i < out.size(); ++i) {
            std::uint16_t bits;
            std::memcpy(&bits, t.bytes.data() + 2 * i, 2);
            out[i] = static_cast<T>(t.dtype == Dtype::F16 ? detail::half_to_float(bits) : detail::bfloat16_to_float(bits));
        }
        return out;
    }
    minigrad::detail::fail<IoError>("{}: {} stores {} as {}; expected floating point (F32, F64, F16 or BF16)", op, detail::quote_path(path),
                                    detail::quote(t.name), dtype_name(t.dtype));
}
// The elements of an integer tensor (a count: num_batches_tracked) as int64; I32 widens.
inline std::vector<std::int64_t> to_integers(const TensorData& t, std::string_view op, const std::filesystem::path& path) {
    if (t.dtype == Dtype::I64) return t.values<std::int64_t>();
    if (t.dtype == Dtype::I32) {
        const auto values = t.values<std::int32_t>();
        return std::vector<std::int64_t>(values.begin(), values.end());
    }
    minigrad::detail::fail<IoError>("{}: {} stores {} as {}; expected an integer (I64 or I32)", op, detail::quote_path(path), detail::quote(t.name),
                                    dtype_name(t.dtype));
}

// Reads and checks a whole safetensors file.
MINIGRAD_PREBUILT_INLINE SafetensorsFile load_safetensors(const std::filesystem::path& path);
// Writes the tensors and metadata atomically (io/safetensors_write.hpp says how).
MINIGRAD_PREBUILT_INLINE void save_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                                              const Metadata& metadata = {});

}  // namespace minigrad::io

// The definitions, with the JSON reader and writer they need, only where they are compiled: a file
// that links minigrad::prebuilt does not parse them (config.hpp).
#if MINIGRAD_DEFINE_PREBUILT
#include "safetensors_read.hpp"   // load_safetensors's definition: SafetensorsReader
#include "safetensors_write.hpp"  // save_safetensors's definition: the atomic write
#endif
