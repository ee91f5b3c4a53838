// SPDX-License-Identifier: MIT
#include "routing/routes.h"

#include <algorithm>

#include "core/text.h"

namespace spoolgate::routing {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Greedy with one backtrack point (the last '*'): linear enough for the
  // short patterns of a configuration.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && ascii_lower(pattern[p]) == ascii_lower(text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

std::string_view domain_of(std::string_view addr) {
  auto at = addr.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : addr.substr(at + 1);
}

bool any_glob(const std::vector<std::string>& patterns, std::string_view text) {
  return patterns.empty() ||
         std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return glob_match(p, text); });
}

// Every text `later` lists is matched by some pattern of `earlier` (a
// later pattern taken literally: "*@a" is covered by "*@a" and "*").
bool globs_cover(const std::vector<std::string>& earlier, const std::vector<std::string>& later) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), [&](const std::string& l) { return any_glob(earlier, l); });
}

bool nets_cover(const std::vector<Cidr>& earlier, const std::vector<Cidr>& later) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), [&](const Cidr& l) {
    return std::any_of(earlier.begin(), earlier.end(),
                       [&](const Cidr& e) { return e.prefix <= l.prefix && e.contains(l.net); });
  });
}

bool names_cover(const std::vector<std::string>& earlier, const std::vector<std::string>& later) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), [&](const std::string& l) {
    return std::find(earlier.begin(), earlier.end(), l) != earlier.end();
  });
}

}  // namespace

std::optional<std::size_t> shadowed_by(const std::vector<Rule>& rules, std::size_t i) {
  const Rule& l = rules[i];
  for (std::size_t e = 0; e < i; ++e) {
    const Rule& r = rules[e];
    if (globs_cover(r.senders, l.senders) && globs_cover(r.recipient_domains, l.recipient_domains) &&
        nets_cover(r.clients, l.clients) && names_cover(r.devices, l.devices))
      return e;
  }
  return std::nullopt;
}

Table::Table(std::vector<Rule> rules, const std::vector<std::string>& names) : rules_(std::move(rules)) {
  for (const auto& r : rules_) {
    std::string key;
    for (std::size_t u : r.upstreams) key += (key.empty() ? "" : ",") + (u < names.size() ? names[u] : "?");
    keys_.push_back(std::move(key));
  }
}

std::optional<std::size_t> Table::match(const Mail& m, std::string_view rcpt) const {
  std::string_view sender = m.sender.empty() ? std::string_view("<>") : m.sender;
  std::string_view domain = domain_of(rcpt);
  std::optional<IpAddress> client;
  bool client_parsed = false;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (!any_glob(r.senders, sender) || !any_glob(r.recipient_domains, domain)) continue;
    if (!r.devices.empty() && std::find(r.devices.begin(), r.devices.end(), m.device) == r.devices.end()) continue;
    if (!r.clients.empty()) {
      if (!client_parsed) {
        client = IpAddress::parse(m.client);
        client_parsed = true;
      }
      if (!client ||
          std::none_of(r.clients.begin(), r.clients.end(), [&](const Cidr& c) { return c.contains(*client); }))
        continue;
    }
    return i;
  }
  return std::nullopt;
}

const std::vector<std::size_t>* Table::group_of(std::string_view key) const {
  for (std::size_t i = 0; i < rules_.size(); ++i)
    if (keys_[i] == key) return &rules_[i].upstreams;
  return nullptr;
}

std::vector<std::string_view> route_keys(std::string_view route) {
  std::vector<std::string_view> out;
  if (route.empty()) return out;
  return split(route, ';');
}

std::string join_route(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ";") + k;
  return out;
}

}  // namespace spoolgate::routing
