// SPDX-License-Identifier: MIT
// notify: where trouble goes without mail (webhooks, ntfy, Teams, Slack,
// Google Chat), and notify_thresholds: when a condition becomes news.
#include <algorithm>

#include "config/sections.h"

namespace spoolgate::config {

const std::vector<std::string>& notify_events() {
  static const std::vector<std::string> names{"message_failed", "upstream_down", "queue_stale", "spool_full",
                                              "expiring",       "heartbeat",     "crash_loop"};
  return names;
}

Table notify_fields(NotifyTarget& t) {
  return {
      text("url", t.url),
      choice("format", t.format,
             {{"generic", NotifyFormat::Generic},
              {"ntfy", NotifyFormat::Ntfy},
              {"teams", NotifyFormat::Teams},
              {"slack", NotifyFormat::Slack},
              {"google-chat", NotifyFormat::GoogleChat}}),
      text("secret_file", t.secret_file),
      strings("events", t.events),
      text("ca_file", t.ca_file),
  };
}

Table notify_thresholds_fields(Config& c) {
  auto& n = c.notify_thresholds;
  return {
      duration("notify_thresholds.upstream_down", n.upstream_down),
      duration("notify_thresholds.queue_age", n.queue_age),
      duration("notify_thresholds.expiry", n.expiry),
      count("notify_thresholds.crash_loop", n.crash_loop, 1, 1000),
      duration("notify_thresholds.repeat", n.repeat),
  };
}

void notify_check(Check& k, Config& c) {
  for (std::size_t i = 0; i < c.notify.size(); ++i) {
    NotifyTarget& t = c.notify[i];
    std::string at = "notify[" + std::to_string(i) + "]";
    if (!t.url.starts_with("https://") || t.url.size() <= 8 || t.url.find_first_of(" \t\r\n") != std::string::npos)
      k.err(at + ".url", "expected an https:// URL (notifications go over verified TLS, as everything else)");
    if (!t.secret_file.empty() && t.format != NotifyFormat::Generic)
      k.err(at + ".secret_file", "only the generic format signs its body");
    if (t.events.empty()) k.err(at + ".events", "expected [all] or a list of events");
    for (const auto& e : t.events)
      if (e != "all" && std::find(notify_events().begin(), notify_events().end(), e) == notify_events().end())
        k.err(at + ".events", "unknown event '" + e +
                                  "' (all, message_failed, upstream_down, queue_stale, spool_full, expiring, "
                                  "heartbeat, crash_loop)");
  }
  auto& n = c.notify_thresholds;
  if (n.upstream_down < Millis(1000)) k.err("notify_thresholds.upstream_down", "expected at least 1s");
  if (n.queue_age < Millis(1000)) k.err("notify_thresholds.queue_age", "expected at least 1s");
  if (n.repeat != Millis(0) && n.repeat < Millis(60'000))
    k.err("notify_thresholds.repeat", "expected 0 (no reminders) or at least 1m");
}

}  // namespace spoolgate::config
