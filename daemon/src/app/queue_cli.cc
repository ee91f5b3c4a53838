// SPDX-License-Identifier: MIT
#include "app/queue_cli.h"

#include <cstdio>
#include <iostream>

#include "core/clock.h"
#include "core/text.h"
#include "core/units.h"
#include "spool/spool.h"

namespace spoolgate::app {
namespace {

std::string age(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
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
  std::int64_t now = unix_now();
  std::string out;
  if (json) {
    out = "[";
    bool first = true;
    for (const auto& r : *records) {
      out += first ? "\n  {" : ",\n  {";
      first = false;
      out += "\"id\": " + json_quote(r.id);
      out += std::string(", \"state\": ") + (r.attempts ? "\"deferred\"" : "\"queued\"");
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
      out += ", \"client\": " + json_quote(r.client) + "}";
    }
    out += first ? "]\n" : "\n]\n";
  } else {
    char line[256];
    std::snprintf(line, sizeof line, "%-16s  %-6s  %10s  %-7s  %s\n", "ID", "AGE", "SIZE", "STATE",
                  "SENDER -> RECIPIENTS");
    out += line;
    std::uint64_t total = 0;
    for (const auto& r : *records) {
      total += r.size;
      std::snprintf(line, sizeof line, "%-16s  %-6s  %10llu  %-7s  ", r.id.c_str(), age(now - r.arrived).c_str(),
                    static_cast<unsigned long long>(r.size), r.attempts ? "deferred" : "queued");
      out += line;
      out += "<" + r.sender + "> ->";
      for (const auto& rc : r.recipients) out += " <" + rc + ">";
      out += "\n";
      if (!r.last_error.empty()) out += "                  last error: " + r.last_error + "\n";
    }
    out += "-- " + std::to_string(records->size()) + " message(s), " + std::to_string(total) + " bytes in " +
           (*spool)->dir() + "\n";
  }
  std::cout << out;
  for (const auto& c : corrupt) std::cerr << "spoolgate: corrupt entry: " << c << "\n";
  return 0;
}

}  // namespace spoolgate::app
