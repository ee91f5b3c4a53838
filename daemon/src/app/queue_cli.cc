// SPDX-License-Identifier: MIT
#include "app/queue_cli.h"

#include <charconv>
#include <cstdio>
#include <iostream>
#include <string_view>

#include "app/request_server.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/text.h"
#include "core/units.h"
#include "spool/spool.h"
#include "status/report.h"

namespace spoolgate::app {
namespace {

// The messages a running daemon is delivering now (none when no daemon
// answers: the spool alone cannot tell).
std::map<std::string, Waiting> waiting_of(const std::string& spool_dir) {
  auto reply = control_request(spool_dir + "/control.sock", "waiting", Millis(5000));
  if (!reply || !reply->starts_with("ok\n")) return {};
  return decode_waiting(std::string_view(*reply).substr(3));
}

// queued: waiting for its first attempt; deferred: tried, waiting for the
// next; held: waiting for a window of its upstream's limits to open (not
// an error); active: being delivered now (as Postfix's active queue).
const char* state_of(const spool::Record& r, const std::map<std::string, Waiting>& waiting) {
  auto it = waiting.find(r.id);
  if (it != waiting.end() && it->second.active) return "active";
  if (it != waiting.end() && it->second.held_until) return "held";
  return r.attempts ? "deferred" : "queued";
}

}  // namespace

int queue_list(const config::Config& cfg, bool json) {
  auto spool = spool::Spool::open(cfg.spool.dir);
  if (!spool) {
    std::cerr << "spoolgate: cannot open spool: " << spool.error().message() << "\n";
    return 1;
  }
  std::vector<std::string> corrupt;
  auto records = (*spool)->list(&corrupt);
  if (!records) {
    std::cerr << "spoolgate: cannot list spool: " << records.error().message() << "\n";
    return 1;
  }
  auto waiting = waiting_of((*spool)->dir());
  std::int64_t now = unix_now();
  std::string out;
  if (json) {
    out = "[";
    bool first = true;
    for (const auto& r : *records) {
      out += first ? "\n  {" : ",\n  {";
      first = false;
      out += "\"id\": " + json_quote(r.id);
      out += ", \"state\": " + json_quote(state_of(r, waiting));
      out += ", \"sender\": " + json_quote(r.sender);
      out += ", \"recipients\": [";
      for (size_t i = 0; i < r.recipients.size(); ++i) out += (i ? ", " : "") + json_quote(r.recipients[i]);
      out += "], \"pending\": [";
      bool first_p = true;
      for (std::size_t i : r.pending()) {
        out += (first_p ? "" : ", ") + json_quote(r.recipients[i]);
        first_p = false;
      }
      out += "], \"size\": " + std::to_string(r.size);
      out += ", \"arrived\": " + json_quote(iso8601(r.arrived));
      out += ", \"age_seconds\": " + std::to_string(now - r.arrived);
      out += ", \"attempts\": " + std::to_string(r.attempts);
      out += ", \"last_error\": " + json_quote(r.last_error);
      out += ", \"next_attempt\": " + (r.attempts ? json_quote(iso8601(r.next_attempt)) : std::string("null"));
      out += ", \"client\": " + json_quote(r.client);
      out += ", \"device\": " + (r.device.empty() ? std::string("null") : json_quote(r.device));
      auto w = waiting.find(r.id);
      bool routed = w != waiting.end() && !w->second.route.empty();
      bool held = w != waiting.end() && w->second.held_until;
      out += ", \"route\": " + (routed ? json_quote(w->second.route) : std::string("null"));
      out += ", \"held_until\": " + (held ? json_quote(iso8601(w->second.held_until)) : std::string("null"));
      out += ", \"held_reason\": " + (held ? json_quote(w->second.held_reason) : std::string("null")) + "}";
    }
    out += first ? "]\n" : "\n]\n";
  } else {
    char line[256];
    (void)std::snprintf(line, sizeof line, "%-16s  %-6s  %10s  %-7s  %s\n", "ID", "AGE", "SIZE", "STATE",
                        "SENDER -> RECIPIENTS");
    out += line;
    std::uint64_t total = 0;
    for (const auto& r : *records) {
      total += r.size;
      (void)std::snprintf(line, sizeof line, "%-16s  %-6s  %10llu  %-7s  ", r.id.c_str(),
                          status::ago(now - r.arrived).c_str(), static_cast<unsigned long long>(r.size),
                          state_of(r, waiting));
      out += line;
      out += "<" + r.sender + "> ->";
      for (const auto& rc : r.recipients) out += " <" + rc + ">";
      if (!r.device.empty()) out += "  [" + r.device + "]";
      out += "\n";
      if (!r.last_error.empty()) out += "                  last error: " + r.last_error + "\n";
      if (auto w = waiting.find(r.id); w != waiting.end() && w->second.held_until)
        out += "                  held until " + iso8601(w->second.held_until) + ": " + w->second.held_reason + "\n";
      if (auto w = waiting.find(r.id); w != waiting.end() && !w->second.route.empty())
        out += "                  route: " + w->second.route + "\n";
    }
    out += "-- " + std::to_string(records->size()) + " message(s), " + std::to_string(total) + " bytes in " +
           (*spool)->dir() + "\n";
  }
  std::cout << out;
  for (const auto& c : corrupt) std::cerr << "spoolgate: corrupt entry: " << c << "\n";
  return 0;
}

std::string encode_waiting(const std::map<std::string, Waiting>& w) {
  std::string out;
  for (const auto& [id, x] : w)
    out += id + "\t" + (x.active ? "1" : "0") + "\t" + x.route + "\t" + std::to_string(x.held_until) + "\t" +
           x.held_reason + "\n";
  return out;
}

std::map<std::string, Waiting> decode_waiting(std::string_view text) {
  std::map<std::string, Waiting> out;
  for (std::string_view line : split(text, '\n')) {
    auto f = split(line, '\t');
    if (f.size() != 5 || !is_queue_id(f[0])) continue;
    Waiting w;
    w.active = f[1] == "1";
    w.route = std::string(f[2]);
    auto [p, ec] = std::from_chars(f[3].data(), f[3].data() + f[3].size(), w.held_until);
    if (ec != std::errc() || p != f[3].data() + f[3].size()) continue;
    w.held_reason = std::string(f[4]);
    out.emplace(std::string(f[0]), std::move(w));
  }
  return out;
}

std::string show_message(const spool::Spool& spool, const std::string& id, const Waiting* w) {
  if (!is_queue_id(id)) return "error: '" + id + "' is not a queue id\n";
  auto r = spool.load(id);
  if (!r) return "error: " + id + ": " + r.error().message() + "\n";
  std::string out = "ok\n";
  out += "id:        " + r->id + "\n";
  std::map<std::string, Waiting> one;
  if (w) one[id] = *w;
  out += "state:     " + std::string(state_of(*r, one)) + "\n";
  if (w && w->held_until) out += "held until: " + iso8601(w->held_until) + " (" + w->held_reason + ")\n";
  if (w && !w->route.empty()) out += "route:     " + w->route + "\n";
  out += "arrived:   " + iso8601(r->arrived) + "\n";
  out += "client:    " + r->client + " (helo " + r->helo + ")\n";
  if (!r->device.empty()) out += "device:    " + r->device + "\n";
  out += "size:      " + std::to_string(r->size) + " bytes\n";
  out += "sender:    <" + r->sender + ">\n";
  out += "attempts:  " + std::to_string(r->attempts) + "\n";
  if (r->attempts) out += "next try:  " + iso8601(r->next_attempt) + "\n";
  if (!r->last_error.empty()) out += "last error: " + r->last_error + "\n";
  for (std::size_t i = 0; i < r->recipients.size(); ++i) {
    out += "recipient: <" + r->recipients[i] + "> " + std::string(spool::to_string(r->rcpt_state[i]));
    if (!r->rcpt_reply[i].empty()) out += " (" + r->rcpt_reply[i] + ")";
    out += "\n";
  }
  return out;
}

namespace {

// The daemon is down: act on the spool ourselves, holding its lock.
std::string offline(spool::Spool& sp, const std::string& verb, const std::string& id) {
  if (verb == "show") return show_message(sp, id);
  if (verb == "delete") {
    if (!is_queue_id(id)) return "error: '" + id + "' is not a queue id\n";
    auto r = sp.load(id);
    if (!r) return "error: " + id + ": " + r.error().message() + "\n";
    auto rm = sp.remove(id);
    return rm ? "ok\n" + id + " deleted\n" : "error: " + rm.error().message() + "\n";
  }
  // flush / retry: due at the next start.
  std::vector<spool::Record> targets;
  if (verb == "retry") {
    auto r = sp.load(id);
    if (!r) return "error: " + id + ": " + r.error().message() + "\n";
    targets.push_back(*r);
  } else {
    auto all = sp.list();
    if (!all) return "error: " + all.error().message() + "\n";
    targets = *all;
  }
  std::size_t n = 0;
  for (auto& r : targets) {
    if (r.attempts == 0) continue;
    r.next_attempt = 0;
    auto w = sp.write_state(r);
    if (!w) return "error: " + w.error().message() + "\n";
    ++n;
  }
  return "ok\n" + std::to_string(n) + " message(s) due at the next start (no daemon is running)\n";
}

}  // namespace

int queue_command(const config::Config& cfg, const std::string& verb, const std::string& id) {
  auto sp = spool::Spool::open(cfg.spool.dir);
  if (!sp) {
    std::cerr << "spoolgate: cannot open spool: " << sp.error().message() << "\n";
    return 1;
  }
  std::string line = id.empty() ? verb : verb + " " + id;
  auto reply = control_request((*sp)->dir() + "/control.sock", line);
  if (!reply) {
    // No daemon answered. Take the lock so none starts while we work.
    if (auto l = (*sp)->lock(); !l) {
      std::cerr << "spoolgate: the daemon holds the spool but does not answer on its control socket: "
                << l.error().message() << "\n";
      return 1;
    }
    reply = offline(**sp, verb, id);
  }
  bool ok = reply->starts_with("ok\n");
  std::string body = ok ? reply->substr(3) : *reply;
  (ok ? std::cout : std::cerr) << (ok ? body : "spoolgate: " + body);
  return ok ? 0 : 1;
}

int health(const config::Config& cfg, bool live) {
  std::string path = cfg.spool.dir + "/control.sock";
  auto reply = control_request(path, live ? "health live" : "health", Millis(5000));
  if (!reply || reply->empty()) {
    std::cout << "unhealthy: no daemon answers on " << path << "\n";
    return 1;
  }
  bool ok = reply->starts_with("ok\n");
  std::string why = ok ? reply->substr(3) : reply->substr(reply->starts_with("error: ") ? 7 : 0);
  while (!why.empty() && why.back() == '\n') why.pop_back();
  std::cout << (ok ? "ok: " : "unhealthy: ") << why << "\n";
  return ok ? 0 : 1;
}

int status(const config::Config& cfg, bool json) {
  std::string path = cfg.spool.dir + "/control.sock";
  auto reply = control_request(path, json ? "status json" : "status", Millis(10'000));
  if (!reply || !reply->starts_with("ok\n")) {
    std::cerr << "spoolgate status: no daemon answers on " << path << "\n";
    return 1;
  }
  std::cout << reply->substr(3);
  return 0;
}

int reload(const config::Config& cfg) {
  std::string path = cfg.spool.dir + "/control.sock";
  auto reply = control_request(path, "reload", Millis(60'000));
  if (!reply || reply->empty()) {
    std::cerr << "spoolgate reload: no daemon answers on " << path << "\n";
    return 1;
  }
  if (!reply->starts_with("ok\n")) {
    std::cerr << "spoolgate reload: " << reply->substr(reply->starts_with("error: ") ? 7 : 0);
    return 1;
  }
  std::cout << "reloaded\n";
  return 0;
}

}  // namespace spoolgate::app
