// What the machine's memory can still give, from /proc/meminfo: the Cpu backend refuses an
// allocation larger than that up front (with overcommit, malloc would succeed and the first write
// would bring the OOM killer instead of an error).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string_view>

namespace minigrad::detail {

// What the machine can still give: MemAvailable + SwapFree and MemTotal + SwapTotal from
// /proc/meminfo (known = false where there is none).
struct HostMemory {
    bool known = false;
    std::size_t available_bytes = 0;
    std::size_t total_bytes = 0;
};
inline HostMemory host_memory() {
    HostMemory mem;
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return mem;
    char key[64];
    unsigned long long kib = 0;
    int found = 0;
    while (std::fscanf(f, "%63s %llu kB", key, &kib) == 2) {
        const std::string_view k(key);
        if (k == "MemAvailable:" || k == "SwapFree:") mem.available_bytes += kib * 1024, ++found;
        if (k == "MemTotal:" || k == "SwapTotal:") mem.total_bytes += kib * 1024, ++found;
    }
    std::fclose(f);
    mem.known = found == 4;
    return mem;
}

}  // namespace minigrad::detail
