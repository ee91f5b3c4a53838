// SPDX-License-Identifier: MIT
#include "status/report.h"

#include <nlohmann/json.hpp>

namespace spoolgate::status {

std::string ago(std::int64_t s) {
  if (s < 0) s = 0;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

Counts last_day(const Report& r) {
  Counts day;
  for (const auto& h : r.hours) {
    day.delivered += h.n.delivered;
    day.deferred += h.n.deferred;
    day.failed += h.n.failed;
  }
  return day;
}

std::string to_json(const Report& r) {
  using nlohmann::json;
  json q = {{"messages", r.queue.messages},
            {"bytes", r.queue.bytes},
            {"in_delivery", r.queue.in_delivery},
            {"oldest_age_s", r.queue.oldest_arrival ? r.now - r.queue.oldest_arrival : 0},
            {"over_watermark", r.queue.over_watermark},
            {"oldest", json::array()}};
  for (const auto& m : r.queue.oldest)
    q["oldest"].push_back(
        {{"id", m.id}, {"arrived", m.arrived}, {"attempts", m.attempts}, {"last_error", m.last_error}});
  json hours = json::array();
  for (const auto& h : r.hours)
    hours.push_back(
        {{"start", h.start}, {"delivered", h.n.delivered}, {"deferred", h.n.deferred}, {"failed", h.n.failed}});
  json ups = json::array();
  for (const auto& u : r.upstreams)
    ups.push_back({{"name", u.name},
                   {"state", u.state},
                   {"last_error", u.last_error},
                   {"last_success", u.last_success},
                   {"failing_since", u.failing_since},
                   {"certificate_not_after", u.cert_not_after},
                   {"token_expires", u.token_expires},
                   {"sessions", u.sessions},
                   {"held", u.held}});
  json devs = json::array();
  for (const auto& d : r.devices) devs.push_back({{"name", d.name}, {"last", d.last}, {"messages", d.messages}});
  json beats = json::array();
  for (const auto& h : r.heartbeats)
    beats.push_back({{"name", h.name}, {"every_s", h.every}, {"last", h.last}, {"missed", h.missed}});
  json alerts = json::array();
  for (const auto& a : r.alerts)
    alerts.push_back({{"event", a.name}, {"key", a.key}, {"title", a.title}, {"since", a.since}});
  json j = {
      {"version", 1},
      {"generated_at", r.now},
      {"started_at", r.started},
      {"hostname", r.hostname},
      {"spoolgate", r.version},
      {"flowing", r.flowing},
      {"summary", r.summary},
      {"queue", q},
      {"totals", {{"delivered", r.totals.delivered}, {"deferred", r.totals.deferred}, {"failed", r.totals.failed}}},
      {"hours", hours},
      {"upstreams", ups},
      {"devices", devs},
      {"heartbeats", beats},
      {"alerts", alerts},
      {"notifications",
       {{"pending", r.notifications.pending}, {"sent", r.notifications.sent}, {"dropped", r.notifications.dropped}}}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string to_text(const Report& r) {
  std::string out = std::string(r.flowing ? "mail is flowing" : "MAIL IS NOT FLOWING") + ": " + r.summary + "\n";
  for (const auto& a : r.alerts) out += "ALERT " + a.name + ": " + a.title + " (for " + ago(r.now - a.since) + ")\n";
  if (r.notifications.pending)
    out += std::to_string(r.notifications.pending) + " notification(s) waiting for their target\n";
  out += "queue: " + std::to_string(r.queue.messages) + " message(s), " + std::to_string(r.queue.bytes) + " bytes";
  if (r.queue.oldest_arrival) out += ", oldest " + ago(r.now - r.queue.oldest_arrival);
  if (r.queue.over_watermark) out += ", OVER THE WATERMARK (new mail gets 452)";
  out += "\n";
  for (const auto& m : r.queue.oldest)
    out += "  " + m.id + "  " + ago(r.now - m.arrived) + " old, " + std::to_string(m.attempts) + " attempt(s)" +
           (m.last_error.empty() ? "" : ": " + m.last_error) + "\n";
  Counts day = last_day(r);
  out += "last 24 hours: " + std::to_string(day.delivered) + " delivered, " + std::to_string(day.deferred) +
         " deferred, " + std::to_string(day.failed) + " failed\n";
  for (const auto& u : r.upstreams) {
    out += "upstream " + u.name + ": " + u.state;
    if (u.last_success) out += ", last delivery " + ago(r.now - u.last_success) + " ago";
    if (u.failing_since) out += ", failing for " + ago(r.now - u.failing_since);
    if (u.held) out += ", " + std::to_string(u.held) + " held by its limits";
    if (!u.last_error.empty() && u.state != "ok") out += ": " + u.last_error;
    out += "\n";
  }
  for (const auto& d : r.devices)
    out +=
        "device " + d.name + ": " + std::to_string(d.messages) + " message(s), last " + ago(r.now - d.last) + " ago\n";
  for (const auto& h : r.heartbeats)
    out += "heartbeat " + h.name + ": " + (h.missed ? "MISSED" : "ok") + ", expected every " + ago(h.every) +
           ", last " + (h.last ? ago(r.now - h.last) + " ago" : std::string("none since the start")) + "\n";
  return out;
}

}  // namespace spoolgate::status
