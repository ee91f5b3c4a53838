// SPDX-License-Identifier: MIT
// expect: device heartbeats. "The UPS sends its daily self-test", "the NAS
// sends at least one message a week": mail from a sender address or a
// device name at least once per period; silence longer than that is a
// missed heartbeat.
#include <set>

#include "config/sections.h"
#include "core/text.h"

namespace spoolgate::config {

Table expect_fields(Expect& e) {
  return {text("sender", e.sender), text("device", e.device), duration("every", e.every)};
}

void expect_check(Check& k, Config& c) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < c.expect.size(); ++i) {
    Expect& e = c.expect[i];
    std::string at = "expect[" + std::to_string(i) + "]";
    if (e.sender.empty() == e.device.empty()) {
      k.err(at, "give one of sender (an address) or device (a device's name)");
      continue;
    }
    if (!e.sender.empty()) {
      auto a = e.sender.find('@');
      if (a == std::string::npos || a == 0 || a + 1 == e.sender.size() ||
          e.sender.find_first_of(" <>\t\r\n,;") != std::string::npos)
        k.err(at + ".sender", "expected an address like ups@lan.example, got '" + e.sender + "'");
      e.sender = lower(e.sender);
    }
    if (!e.device.empty() && !valid_device_name(e.device))
      k.err(at + ".device", "a device name is 1 to 64 of A-Z a-z 0-9 . _ @ + - (as in devices[].name)");
    if (e.every < Millis(1000) || e.every > Millis(366LL * 86'400'000))
      k.err(at + ".every", "expected a period from 1s to 366d, like 1d or 7d");
    if (!seen.insert(e.name()).second) k.err(at, "'" + e.name() + "' is expected twice");
  }
}

}  // namespace spoolgate::config
