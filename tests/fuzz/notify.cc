// SPDX-License-Identifier: MIT
// notify/outbox: any bytes as an outbox file, and notify/payload on what
// decodes; the same bytes as notify/alerts' kept state.
// Oracles: what decodes encodes to a file that decodes to the same entry;
// every format renders it to a body, generic and the JSON formats to valid
// JSON, ntfy's headers to single printable lines.
#include <nlohmann/json.hpp>

#include "notify/alerts.h"
#include "notify/outbox.h"
#include "notify/payload.h"
#include "oracle.h"

using namespace spoolgate;

namespace {

bool same(const notify::Entry& a, const notify::Entry& b) {
  const auto &x = a.event, &y = b.event;
  return a.seq == b.seq && a.target == b.target && x.id == y.id && x.name == y.name && x.key == y.key &&
         x.change == y.change && x.at == y.at && x.since == y.since && x.title == y.title && x.text == y.text &&
         x.fields == y.fields;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The same bytes as a kept alerts state: what is restored saves to a
  // state that restores to the same.
  notify::Alerts kept(0);
  kept.restore(text);
  notify::Alerts again_kept(0);
  std::string saved = kept.save();
  again_kept.restore(saved);
  SG_REQUIRE(again_kept.save() == saved);
  SG_REQUIRE(again_kept.active().size() == kept.active().size());
  auto e = notify::decode(text);
  if (!e) return 0;
  // The JSON parser takes only valid UTF-8, so every text round-trips.
  auto again = notify::decode(notify::encode(*e));
  SG_REQUIRE(again && same(*e, *again));
  for (auto f : {notify::Format::Generic, notify::Format::Ntfy, notify::Format::Teams, notify::Format::Slack,
                 notify::Format::GoogleChat}) {
    auto p = notify::render(f, e->event, "host");
    SG_REQUIRE(!p.content_type.empty());
    if (f != notify::Format::Ntfy) SG_REQUIRE(!nlohmann::json::parse(p.body, nullptr, false).is_discarded());
    for (const auto& h : p.headers)
      for (char c : h) SG_REQUIRE(c >= 0x20 && c < 0x7f);
  }
  return 0;
}
