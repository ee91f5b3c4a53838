// SPDX-License-Identifier: MIT
#include "api/claims.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/text.h"

namespace spoolgate::api {

bool Claims::has(std::string_view permission) const {
  auto same = [&](const std::string& s) { return iequals(s, permission); };
  return std::any_of(roles.begin(), roles.end(), same) || std::any_of(scopes.begin(), scopes.end(), same);
}

std::optional<Claims> claims(std::string_view token) {
  auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  // base64url without padding (RFC 7515 2) as base64.
  std::string b64(token.substr(first + 1, second - first - 1));
  for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b64.size() % 4) b64 += '=';
  auto payload = base64_decode(b64);
  if (!payload) return std::nullopt;
  auto j = nlohmann::json::parse(*payload, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  Claims c;
  if (auto r = j.find("roles"); r != j.end() && r->is_array())
    for (const auto& x : *r)
      if (x.is_string() && !x.get<std::string>().empty()) c.roles.push_back(x.get<std::string>());
  if (auto s = j.find("scp"); s != j.end() && s->is_string()) {
    const std::string scp = s->get<std::string>();
    for (auto part : split(scp, ' '))
      if (!part.empty()) c.scopes.emplace_back(part);
  }
  return c;
}

}  // namespace spoolgate::api
