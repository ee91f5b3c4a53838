// SPDX-License-Identifier: MIT
// core/ids: queue ids and session ids.
//
// A queue id is 16 characters of [0-9A-Z] (Crockford base32): 10 for the
// microsecond timestamp (sorts by arrival), 6 random. Safe as a file name,
// unique across restarts and processes without coordination.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace spoolgate {

std::string new_queue_id();
bool is_queue_id(std::string_view s);

// Short, process-unique session tags for log lines: "c1a", "u2f", ...
std::string new_session_id(char prefix);

}  // namespace spoolgate
