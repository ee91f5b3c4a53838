// SPDX-License-Identifier: MIT
#include "notify/alerts.h"

#include <set>

#include "notify/outbox.h"

namespace spoolgate::notify {

const char* to_string(Change c) {
  switch (c) {
    case Change::Raised:
      return "raised";
    case Change::Reminder:
      return "reminder";
    case Change::Cleared:
      return "cleared";
  }
  return "?";
}

Event event_of(const Condition& c, Change change, std::int64_t now, std::int64_t since) {
  Event e;
  e.name = c.name;
  e.key = c.key;
  e.change = change;
  e.at = now;
  e.since = since;
  e.title = c.title;
  e.text = c.text;
  e.fields = c.fields;
  e.id = c.name + ":" + c.key + ":" + std::to_string(now) + ":" + to_string(change);
  return e;
}

std::vector<Event> Alerts::update(std::int64_t now, const std::vector<Condition>& active,
                                  const std::set<std::pair<std::string, std::string>>& undecided) {
  std::vector<Event> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& c : active) {
    auto k = std::make_pair(c.name, c.key);
    if (!seen.insert(k).second) continue;  // named twice: once
    auto it = active_.find(k);
    if (it == active_.end()) {
      active_[k] = {c, now, now};
      out.push_back(event_of(c, Change::Raised, now, now));
      continue;
    }
    it->second.c = c;  // the latest details
    if (repeat_s_ > 0 && now - it->second.last_sent >= repeat_s_) {
      it->second.last_sent = now;
      out.push_back(event_of(c, Change::Reminder, now, it->second.since));
    }
  }
  for (auto it = active_.begin(); it != active_.end();) {
    if (seen.count(it->first) || undecided.count(it->first)) {
      ++it;
      continue;
    }
    Condition c = it->second.c;
    c.title = "resolved: " + c.title;
    out.push_back(event_of(c, Change::Cleared, now, it->second.since));
    it = active_.erase(it);
  }
  return out;
}

std::string Alerts::save() const {
  std::string out;
  for (const auto& [k, a] : active_) {
    Event e = event_of(a.c, Change::Raised, a.last_sent, a.since);
    out += encode(Entry{0, "", e});
  }
  return out;
}

void Alerts::restore(std::string_view text) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto e = decode(line);
    if (!e) continue;
    Condition c{e->event.name, e->event.key, e->event.title, e->event.text, e->event.fields};
    active_[{c.name, c.key}] = {c, e->event.since, e->event.at};
  }
}

}  // namespace spoolgate::notify
