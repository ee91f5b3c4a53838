// SPDX-License-Identifier: MIT
// notify/event: what an operator is told about (issue 18's notifications):
// a condition that starts (raised), is still there after the repeat
// interval (reminder) or ends (cleared), or a one-off (a message failed for
// good). Never message content or a secret: names, addresses, reasons.
//
// notify/alerts.h turns conditions into events; notify/payload.h renders
// an event for a target (generic JSON, ntfy, Teams, Slack, Google Chat).
// Pure.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace spoolgate::notify {

enum class Change { Raised, Reminder, Cleared };
const char* to_string(Change c);

struct Event {
  std::string id;    // unique: "<name>:<key>:<at>:<change>", for the receiver to drop repeats
  std::string name;  // upstream_down, message_failed, queue_stale, spool_full, expiring, heartbeat, crash_loop
  std::string key;   // what it is about: an upstream, a message id, a device, ...
  Change change = Change::Raised;
  std::int64_t at = 0;                                      // unix seconds
  std::int64_t since = 0;                                   // when the condition started (= at when raised)
  std::string title;                                        // one line
  std::string text;                                         // the details
  std::vector<std::pair<std::string, std::string>> fields;  // shown as a list; generic JSON: an object
};

}  // namespace spoolgate::notify
