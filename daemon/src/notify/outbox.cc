// SPDX-License-Identifier: MIT
#include "notify/outbox.h"

#include <nlohmann/json.hpp>

namespace spoolgate::notify {
namespace {

using nlohmann::json;

bool text_of(const json& j, const char* key, std::string& out, std::size_t max) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return out.size() <= max;
}

bool int_of(const json& j, const char* key, std::int64_t& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return false;
  out = it->get<std::int64_t>();
  return true;
}

}  // namespace

std::string encode(const Entry& e) {
  json fields = json::array();
  for (const auto& [k, v] : e.event.fields) fields.push_back({k, v});
  json ev = {
      {"id", e.event.id}, {"name", e.event.name},   {"key", e.event.key},     {"change", to_string(e.event.change)},
      {"at", e.event.at}, {"since", e.event.since}, {"title", e.event.title}, {"text", e.event.text},
      {"fields", fields}};
  return json{{"v", 1}, {"seq", e.seq}, {"target", e.target}, {"event", ev}}.dump(-1, ' ', false,
                                                                                  json::error_handler_t::replace) +
         "\n";
}

std::optional<Entry> decode(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto v = j.find("v");
  if (v == j.end() || *v != 1) return std::nullopt;
  Entry e;
  auto seq = j.find("seq");
  if (seq == j.end() || !seq->is_number_unsigned()) return std::nullopt;
  e.seq = seq->get<std::uint64_t>();
  if (!text_of(j, "target", e.target, 200)) return std::nullopt;
  auto ev = j.find("event");
  if (ev == j.end() || !ev->is_object()) return std::nullopt;
  Event& x = e.event;
  std::string change;
  if (!text_of(*ev, "id", x.id, 1000) || !text_of(*ev, "name", x.name, 100) || !text_of(*ev, "key", x.key, 1000) ||
      !text_of(*ev, "change", change, 20) || !int_of(*ev, "at", x.at) || !int_of(*ev, "since", x.since) ||
      !text_of(*ev, "title", x.title, 1000) || !text_of(*ev, "text", x.text, kMaxText))
    return std::nullopt;
  if (change == "raised")
    x.change = Change::Raised;
  else if (change == "reminder")
    x.change = Change::Reminder;
  else if (change == "cleared")
    x.change = Change::Cleared;
  else
    return std::nullopt;
  auto fields = ev->find("fields");
  if (fields == ev->end() || !fields->is_array() || fields->size() > kMaxFields) return std::nullopt;
  for (const auto& f : *fields) {
    if (!f.is_array() || f.size() != 2 || !f[0].is_string() || !f[1].is_string()) return std::nullopt;
    std::string k = f[0].get<std::string>(), val = f[1].get<std::string>();
    if (k.size() > 100 || val.size() > 1000) return std::nullopt;
    x.fields.emplace_back(std::move(k), std::move(val));
  }
  return e;
}

}  // namespace spoolgate::notify
