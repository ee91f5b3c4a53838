// SPDX-License-Identifier: MIT
// core/units: sizes ("35MiB") and durations ("5m", "1h30m") as written in the
// configuration, parsed strictly and printed back in the same notation.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spoolgate {

using Millis = std::chrono::milliseconds;

// "123", "123B", "64KiB", "35MiB", "1GiB", "2TiB" (unit case-insensitive).
std::optional<std::uint64_t> parse_size(std::string_view s);
// "250ms", "30s", "5m", "1h", "5d" and sums like "1h30m". A bare number is not
// accepted: "30" could mean seconds or minutes.
std::optional<Millis> parse_duration(std::string_view s);

std::string format_size(std::uint64_t bytes);
std::string format_duration(Millis d);

}  // namespace spoolgate
