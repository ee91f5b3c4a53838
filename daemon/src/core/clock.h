// SPDX-License-Identifier: MIT
// core/clock: wall-clock time for records and headers.
#pragma once

#include <cstdint>
#include <string>

namespace spoolgate {

// Seconds since the Unix epoch.
std::int64_t unix_now();
// Milliseconds since the Unix epoch (the scheduler's time base).
std::int64_t unix_now_ms();
// RFC 5322 date-time in UTC: "Sun, 22 Nov 2026 12:00:00 +0000".
std::string rfc5322_date(std::int64_t unix_seconds);
// ISO 8601 UTC: "2026-11-22T12:00:00Z".
std::string iso8601(std::int64_t unix_seconds);

}  // namespace spoolgate
