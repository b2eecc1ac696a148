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
#include "json.hpp"

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

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string text(1, '[');
    text += minigrad::detail::join(shape);
    return text += ']';
}

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

// Reads a safetensors file: the constructor reads and checks the header against the file's size
// (and its checksums' keys); read() then reads one entry's bytes and verifies its checksum. Every
// error is an IoError naming the file and the entry.
class SafetensorsReader {
  public:
    struct Entry {
        std::string name;
        Dtype dtype;
        std::vector<std::int64_t> shape;
        std::uint64_t begin, end;            // within the data section
        std::optional<std::uint32_t> crc32;  // the checksum the file stores for it, if any
    };

    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, maybe forever, before
    // fstat could refuse it. A regular file ignores the flag; it is cleared all the same.
    explicit SafetensorsReader(const std::filesystem::path& path)
        : path_(path.string()), file_(::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
        if (file_.fd < 0) fail("cannot open it: {}", std::strerror(errno));
        struct stat st {};
        if (::fstat(file_.fd, &st) != 0) fail("cannot stat it: {}", std::strerror(errno));
        if (!S_ISREG(st.st_mode)) fail("is not a regular file ({})", detail::file_kind(st.st_mode));
        const int flags = ::fcntl(file_.fd, F_GETFL);
        if (flags < 0 || ::fcntl(file_.fd, F_SETFL, flags & ~O_NONBLOCK) != 0) fail("cannot be read: {}", std::strerror(errno));
        const auto size = static_cast<std::uint64_t>(st.st_size);
        if (size < 8) fail("is truncated: {} bytes, but the header length alone takes 8", size);
        unsigned char length_bytes[8];
        read_at(length_bytes, 8, 0, "the header length");
        std::uint64_t header_bytes = 0;
        for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];
        if (header_bytes > size - 8) fail("is truncated: the header length is {} bytes, but only {} follow it", header_bytes, size - 8);
        if (header_bytes > detail::max_header_bytes) fail("has a header of {} bytes, more than the limit of {}", header_bytes, detail::max_header_bytes);
        data_start_ = 8 + header_bytes;
        data_bytes_ = size - data_start_;
        std::string header(header_bytes, '\0');
        read_at(header.data(), header.size(), 8, "the header");
        parse(header);
    }

    const std::string& path() const { return path_; }
    const std::vector<Entry>& entries() const { return entries_; }  // in the order of their data
    const Metadata& metadata() const { return metadata_; }  // without the checksums' keys
    const Entry* find(std::string_view name) const {
        for (const auto& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }

    TensorData read(const Entry& e) const {
        TensorData t{e.name, e.dtype, e.shape, std::vector<std::byte>(e.end - e.begin)};
        read_at(t.bytes.data(), t.bytes.size(), data_start_ + e.begin, "the data of " + detail::quote(e.name));
        if (e.crc32) {
            const std::uint32_t actual = io::crc32(t.bytes.data(), t.bytes.size());
            if (actual != *e.crc32) {
                fail("is corrupt: tensor {} fails its checksum (stored crc32 {:08x}, its data has {:08x})", detail::quote(e.name), *e.crc32, actual);
            }
        }
        return t;
    }
    SafetensorsFile read_all() const {
        SafetensorsFile out{{}, metadata_};
        for (const auto& e : entries_) out.tensors.push_back(read(e));
        return out;
    }

  private:
    template <class... Args>
    [[noreturn]] void fail(minigrad::detail::FailFormat<Args...> format, Args&&... args) const {
        minigrad::detail::fail<IoError>("load_safetensors: {} {}", detail::quote_path(path_), minigrad::detail::format(format, std::forward<Args>(args)...));
    }

    void read_at(void* dst, std::size_t n, std::uint64_t offset, const std::string& what) const {
        auto* out = static_cast<char*>(dst);
        for (std::size_t done = 0; done < n;) {
            const auto got = ::pread(file_.fd, out + done, n - done, static_cast<off_t>(offset + done));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) fail("cannot be read ({}): {}", what, std::strerror(errno));
            if (got == 0) fail("is truncated: {} ends at byte {}, the file now ends at {}", what, offset + n, offset + done);
            done += static_cast<std::size_t>(got);
        }
    }

    void parse(const std::string& header) {
        json::Value root;
        try {
            root = json::parse(header, 3);  // header, entry, shape: no safetensors header nests deeper
        } catch (const json::ParseError& e) {
            if (e.kind == json::ParseError::Kind::TooDeep) fail("has a malformed header: it nests deeper than a safetensors header does");
            if (e.kind == json::ParseError::Kind::DuplicateKey) {
                fail("has a malformed header: the key {} appears twice{}", detail::quote(e.key), e.depth == 1 ? " (a duplicate tensor name)" : "");
            }
            fail("has a header that is not valid JSON: {}", detail::quote(e.message, 4 * detail::max_quoted));
        }
        if (!root.is_object()) fail("has a malformed header: it is not a JSON object");
        Metadata checksums;  // tensor name -> its checksum's text
        for (const auto& [name, value] : root.members) {
            if (name == "__metadata__") {
                if (!value.is_object()) fail("has a malformed header: '__metadata__' is not an object");
                for (const auto& [key, text] : value.members) {
                    if (!text.is_string()) fail("has a malformed header: metadata {} is not a string", detail::quote(key));
                    if (key.starts_with(checksum_prefix)) checksums[key.substr(checksum_prefix.size())] = text.text;
                    else metadata_[key] = text.text;
                }
                continue;
            }
            entries_.push_back(parse_entry(name, value));
        }
        check_layout();
        attach_checksums(checksums);
    }

    // Gives each entry its stored checksum. A file has one for every tensor or for none: with a
    // checksum missing, a bit flipped in its key's prefix would turn it into plain metadata and
    // leave its tensor unchecked.
    void attach_checksums(Metadata& checksums) {
        if (checksums.empty()) return;
        for (auto& e : entries_) {
            const auto it = checksums.find(e.name);
            if (it == checksums.end()) {
                fail("has a malformed header: tensor {} has no checksum, though other tensors have one", detail::quote(e.name));
            }
            const std::string_view text = it->second;
            std::uint32_t value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
            if (text.size() != 8 || ec != std::errc() || end != text.data() + text.size()) {
                fail("has a malformed header: the checksum of tensor {} is {}, expected a CRC-32 as 8 hex digits", detail::quote(e.name), detail::quote(text));
            }
            e.crc32 = value;
            checksums.erase(it);
        }
        if (!checksums.empty()) {
            const std::string key = std::string(checksum_prefix) + checksums.begin()->first;
            fail("has a malformed header: metadata {} is the checksum of a tensor the file does not hold", detail::quote(key));
        }
    }

    Entry parse_entry(const std::string& name, const json::Value& value) const {
        const auto who = "tensor " + detail::quote(name);
        if (!value.is_object()) fail("has a malformed header: {} is not an object", who);
        for (const auto& [key, v] : value.members) {
            if (key != "dtype" && key != "shape" && key != "data_offsets") {
                fail("has a malformed header: {} has the unknown key {} (expected dtype, shape, data_offsets)", who, detail::quote(key));
            }
        }
        for (const char* key : {"dtype", "shape", "data_offsets"}) {
            if (!value.find(key)) fail("has a malformed header: {} has no '{}'", who, key);
        }
        Entry e{name, Dtype::F32, {}, 0, 0, std::nullopt};
        const auto& dtype = *value.find("dtype");
        if (!dtype.is_string()) fail("has a malformed header: {} has a dtype that is not a string", who);
        const auto& dname = dtype.text;
        bool known = false;
        for (Dtype d : {Dtype::F32, Dtype::F64, Dtype::I32, Dtype::I64, Dtype::F16, Dtype::BF16}) {
            if (dname == dtype_name(d)) e.dtype = d, known = true;
        }
        if (!known) fail("stores {} as dtype {}, which minigrad does not read (it reads F32, F64, F16, BF16, I32, I64)", who, detail::quote(dname));

        const auto& shape = *value.find("shape");
        if (!shape.is_array()) fail("has a malformed header: {} has a shape that is not an array", who);
        // The non-zero dims' product must fit, wherever a zero dim sits (as Shape's rule): a zero
        // would hide [0, 2^40, 2^40]'s overflow from a running product.
        std::uint64_t numel = 1;
        bool empty = false;
        for (const auto& d : shape.items) {
            if (!d.is_unsigned()) fail("has a malformed header: {} has shape {}, whose entries must be non-negative integers", who, detail::quote(json::dump(shape)));
            const auto dim = d.number;
            empty = empty || dim == 0;
            if (dim > static_cast<std::uint64_t>(INT64_MAX) || (dim != 0 && __builtin_mul_overflow(numel, dim, &numel))) {
                fail("has a malformed header: {} has shape {}, whose element count overflows", who, detail::quote(json::dump(shape)));
            }
            e.shape.push_back(static_cast<std::int64_t>(dim));
        }
        if (empty) numel = 0;
        std::uint64_t expected_bytes = 0;
        if (__builtin_mul_overflow(numel, dtype_size(e.dtype), &expected_bytes)) {
            fail("has a malformed header: {} has shape {}, whose byte count overflows", who, detail::quote(json::dump(shape)));
        }

        const auto& offsets = *value.find("data_offsets");
        if (!offsets.is_array() || offsets.items.size() != 2 || !offsets.items[0].is_unsigned() || !offsets.items[1].is_unsigned()) {
            fail("has a malformed header: {} has data_offsets {}, expected two non-negative integers", who, detail::quote(json::dump(offsets)));
        }
        e.begin = offsets.items[0].number;
        e.end = offsets.items[1].number;
        if (e.begin > e.end) fail("has a malformed header: {} has data_offsets [{}, {}], which end before they begin", who, e.begin, e.end);
        if (e.end > data_bytes_) fail("is truncated: {} has data_offsets [{}, {}], but the data section has {} bytes", who, e.begin, e.end, data_bytes_);
        if (e.end - e.begin != expected_bytes) {
            fail("has a malformed header: {} has {} bytes of data, but shape {} of {} needs {}", who, e.end - e.begin,
                 detail::shape_text(e.shape), dtype_name(e.dtype), expected_bytes);
        }
        return e;
    }

    // The entries, in order of their data, must tile the data section: no overlap, no hole.
    void check_layout() {
        std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
        std::uint64_t covered = 0;
        const Entry* previous = nullptr;
        for (const auto& e : entries_) {
            if (e.begin < covered) {
                fail("has a malformed header: tensor {} (bytes [{}, {})) overlaps tensor {} (bytes [{}, {}))", detail::quote(e.name), e.begin, e.end,
                     detail::quote(previous->name), previous->begin, previous->end);
            }
            if (e.begin > covered) fail("has a malformed header: bytes [{}, {}) of the data section belong to no tensor", covered, e.begin);
            covered = e.end;
            previous = &e;
        }
        if (covered != data_bytes_) fail("has a malformed header: bytes [{}, {}) of the data section belong to no tensor", covered, data_bytes_);
    }

    std::string path_;
    detail::Fd file_;
    std::uint64_t data_start_ = 0, data_bytes_ = 0;
    std::vector<Entry> entries_;
    Metadata metadata_;
};

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
MINIGRAD_FORMATS_INLINE SafetensorsFile load_safetensors(const std::filesystem::path& path);
// Writes the tensors and metadata atomically (io/safetensors_write.hpp says how).
MINIGRAD_FORMATS_INLINE void save_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                                              const Metadata& metadata = {});

#if MINIGRAD_DEFINE_FORMATS  // (config.hpp: with minigrad::prebuilt, the library's copy is called)
MINIGRAD_FORMATS_INLINE SafetensorsFile load_safetensors(const std::filesystem::path& path) { return SafetensorsReader(path).read_all(); }
#endif

}  // namespace minigrad::io

#if MINIGRAD_DEFINE_FORMATS
#include "safetensors_write.hpp"  // save_safetensors's definition: the atomic write
#endif
