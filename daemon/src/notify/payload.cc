// SPDX-License-Identifier: MIT
#include "notify/payload.h"

#include <nlohmann/json.hpp>

namespace spoolgate::notify {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A header value: one line, printable ASCII (ntfy's Title; UTF-8 would need
// RFC 2047), at most 200 bytes.
std::string header_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= 200) break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

std::string lines(const Event& e) {
  std::string out = e.text;
  for (const auto& [k, v] : e.fields) {
    if (!out.empty()) out += '\n';
    out.append(k).append(": ").append(v);
  }
  return out;
}

std::string headline(const Event& e, const std::string& host) {
  std::string prefix = e.change == Change::Reminder ? "still: " : "";
  return "[spoolgate " + host + "] " + prefix + e.title;
}

}  // namespace

Payload render(Format f, const Event& e, const std::string& host) {
  Payload p;
  switch (f) {
    case Format::Generic: {
      json fields = json::object();
      for (const auto& [k, v] : e.fields) fields[k] = v;
      p.content_type = "application/json";
      p.body = dump({{"version", 1},
                     {"id", e.id},
                     {"event", e.name},
                     {"change", to_string(e.change)},
                     {"key", e.key},
                     {"at", e.at},
                     {"since", e.since},
                     {"host", host},
                     {"title", e.title},
                     {"text", e.text},
                     {"fields", fields}});
      break;
    }
    case Format::Ntfy:
      p.content_type = "text/plain; charset=utf-8";
      p.body = lines(e);
      if (p.body.empty()) p.body = e.title;
      p.headers = {"Title: " + header_value(headline(e, host)),
                   std::string("Priority: ") + (e.change == Change::Raised ? "high" : "default"),
                   std::string("Tags: ") + (e.change == Change::Cleared ? "white_check_mark," : "warning,") +
                       header_value(e.name)};
      break;
    case Format::Teams: {
      json body = json::array();
      body.push_back({{"type", "TextBlock"}, {"text", headline(e, host)}, {"weight", "Bolder"}, {"wrap", true}});
      if (!e.text.empty()) body.push_back({{"type", "TextBlock"}, {"text", e.text}, {"wrap", true}});
      if (!e.fields.empty()) {
        json facts = json::array();
        for (const auto& [k, v] : e.fields) facts.push_back({{"title", k}, {"value", v}});
        body.push_back({{"type", "FactSet"}, {"facts", facts}});
      }
      p.content_type = "application/json";
      p.body = dump({{"type", "message"},
                     {"attachments",
                      {{{"contentType", "application/vnd.microsoft.card.adaptive"},
                        {"content",
                         {{"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
                          {"type", "AdaptiveCard"},
                          {"version", "1.4"},
                          {"body", body}}}}}}});
      break;
    }
    case Format::Slack:
    case Format::GoogleChat: {
      std::string text = "*" + headline(e, host) + "*";
      if (std::string more = lines(e); !more.empty()) text += "\n" + more;
      p.content_type = f == Format::Slack ? "application/json" : "application/json; charset=UTF-8";
      p.body = dump({{"text", text}});
      break;
    }
  }
  return p;
}

std::string signing_input(std::int64_t timestamp, const std::string& body) {
  return std::to_string(timestamp) + "." + body;
}

std::vector<std::string> signature_headers(std::int64_t timestamp, const std::string& hex_hmac) {
  return {"X-Spoolgate-Timestamp: " + std::to_string(timestamp), "X-Spoolgate-Signature: sha256=" + hex_hmac};
}

}  // namespace spoolgate::notify
