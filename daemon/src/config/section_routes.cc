// SPDX-License-Identifier: MIT
// routes: which upstreams carry which mail, first match wins
// (routing/routes.h says how a rule matches).
#include <set>

#include "config/sections.h"
#include "core/text.h"

namespace spoolgate::config {
namespace {

bool sender_glob(std::string_view s) {
  if (s == "<>" || s == "*") return true;
  return s.find('@') != std::string_view::npos && s.find_first_of(" <>\t\r\n,;") == std::string_view::npos;
}

bool domain_glob(std::string_view s) { return !s.empty() && s.find_first_of("@ <>\t\r\n,;") == std::string_view::npos; }

}  // namespace

Table route_fields(Route& r) {
  return {
      strings("sender", r.sender),     strings("recipient_domain", r.recipient_domain),
      networks("client", r.client),    strings("device", r.device),
      strings("upstream", r.upstream),
  };
}

void routes_check(Check& k, Config& c) {
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    const Route& r = c.routes[i];
    std::string at = "routes[" + std::to_string(i) + "]";
    for (const auto& s : r.sender)
      if (!sender_glob(s))
        k.err(at + ".sender", "expected an address, a pattern like *@example.com, <> (bounces) or *, got '" + s + "'");
    for (const auto& d : r.recipient_domain)
      if (!domain_glob(d))
        k.err(at + ".recipient_domain", "expected a domain like example.com or *.example.com, got '" + d + "'");
    for (const auto& name : r.device) {
      bool known = false;
      for (const auto& d : c.devices) known = known || d.name == name;
      if (!known) k.err(at + ".device", "no device is named '" + name + "' (see devices[].name)");
    }
    if (r.upstream.empty())
      k.err(at + ".upstream", "every route names an upstream or a list of them (failover in order)");
    check_upstream_names(k, c, at + ".upstream", r.upstream);
  }
}

}  // namespace spoolgate::config
