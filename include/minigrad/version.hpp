#pragma once

#define MINIGRAD_VERSION_MAJOR 0
#define MINIGRAD_VERSION_MINOR 1
#define MINIGRAD_VERSION_PATCH 0

namespace minigrad {
inline constexpr const char* version = "0.1.0";
}
