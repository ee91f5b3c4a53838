// SPDX-License-Identifier: MIT
// notify/alerts: conditions in, events out. Each evaluation names the
// conditions true now (by name and key); one that was not true before is
// raised, one still true `repeat` seconds after its last event gets a
// reminder, one no longer named is cleared. Each event goes out once: the
// caller keeps them (notify's outbox) until delivered. One-off events (a
// message failed) do not pass through here. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "notify/event.h"

namespace spoolgate::notify {

struct Condition {
  std::string name, key, title, text;
  std::vector<std::pair<std::string, std::string>> fields;
};

class Alerts {
 public:
  explicit Alerts(std::int64_t repeat_s) : repeat_s_(repeat_s) {}
  void set_repeat(std::int64_t repeat_s) { repeat_s_ = repeat_s; }

  // undecided: conditions that cannot be told yet (an upstream not tried
  // since the start): one raised stays raised, none is raised.
  std::vector<Event> update(std::int64_t now, const std::vector<Condition>& active,
                            const std::set<std::pair<std::string, std::string>>& undecided = {});

  // What is raised, kept across a restart so that a condition is not raised
  // again by the next start and one that ended meanwhile is cleared: one
  // line per alert in notify/outbox.h's format (the event's `since` and, as
  // `at`, when it was last sent). restore() skips lines that do not decode.
  std::string save() const;
  void restore(std::string_view text);

  struct Active {
    Condition c;
    std::int64_t since = 0, last_sent = 0;
  };
  // By (name, key): what is raised now (for the status page's alerts).
  const std::map<std::pair<std::string, std::string>, Active>& active() const { return active_; }

 private:
  std::int64_t repeat_s_;
  std::map<std::pair<std::string, std::string>, Active> active_;
};

// An event for a condition at `now` (also for one-offs).
Event event_of(const Condition& c, Change change, std::int64_t now, std::int64_t since);

}  // namespace spoolgate::notify
