// SPDX-License-Identifier: MIT
// notify/outbox: a notification waiting to be delivered, as the file that
// keeps it in the spool (<spool>/notify/), so that pending notifications
// survive a restart like mail does. One JSON object:
//   {"v": 1, "seq": N, "target": "<key>", "event": {"id", "name", "key",
//    "change", "at", "since", "title", "text", "fields": [[k, v], ...]}}
// target: which notify: entry it is for (a key derived from its URL, never
// the URL, which may hold a secret). Pure; fuzzed (tests/fuzz/notify.cc:
// what decodes encodes to the same bytes' meaning).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "notify/event.h"

namespace spoolgate::notify {

struct Entry {
  std::uint64_t seq = 0;  // the order they were made in
  std::string target;
  Event event;
};

constexpr std::size_t kMaxText = 16 * std::size_t{1024}, kMaxFields = 64;

std::string encode(const Entry& e);
// nullopt for anything that is not such an entry (a damaged file is
// dropped by the caller, with a log line).
std::optional<Entry> decode(std::string_view text);

}  // namespace spoolgate::notify
