// SPDX-License-Identifier: MIT
#include "app/routes.h"

namespace spoolgate::app {
namespace {

struct Rules {
  std::vector<routing::Rule> rules;
  std::vector<std::string> names;  // config key of each rule, for messages
};

std::vector<std::size_t> indices(const config::Config& cfg, const std::vector<std::string>& names) {
  std::vector<std::size_t> out;
  for (const auto& n : names)
    for (std::size_t i = 0; i < cfg.upstreams.size(); ++i)
      if (cfg.upstreams[i].name == n) out.push_back(i);
  return out;
}

Rules rules_of(const config::Config& cfg) {
  Rules r;
  for (std::size_t i = 0; i < cfg.devices.size(); ++i) {
    const auto& d = cfg.devices[i];
    if (d.upstream.empty()) continue;
    routing::Rule rule;
    rule.devices = {d.name};
    rule.upstreams = indices(cfg, d.upstream);
    r.rules.push_back(std::move(rule));
    r.names.push_back("devices[" + std::to_string(i) + "].upstream");
  }
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const auto& c = cfg.routes[i];
    routing::Rule rule{c.sender, c.recipient_domain, c.client, c.device, indices(cfg, c.upstream)};
    r.rules.push_back(std::move(rule));
    r.names.push_back("routes[" + std::to_string(i) + "]");
  }
  if (cfg.routes.empty() && !r.rules.empty()) {
    routing::Rule rest;
    for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) rest.upstreams.push_back(i);
    r.rules.push_back(std::move(rest));
    r.names.push_back("(the rest: every upstream)");
  }
  return r;
}

std::vector<std::string> upstream_names(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& u : cfg.upstreams) out.push_back(u.name.empty() ? u.url : u.name);
  return out;
}

std::string list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " or ") + s;
  return out;
}

}  // namespace

std::shared_ptr<const routing::Table> routing_table(const config::Config& cfg) {
  return std::make_shared<const routing::Table>(rules_of(cfg).rules, upstream_names(cfg));
}

std::vector<std::string> route_warnings(const config::Config& cfg) {
  Rules r = rules_of(cfg);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < r.rules.size(); ++i)
    if (auto by = routing::shadowed_by(r.rules, i))
      out.push_back(r.names[i] + " is never used: " + r.names[*by] + " before it matches all the mail it matches");
  return out;
}

std::string route_report(const config::Config& cfg) {
  Rules r = rules_of(cfg);
  if (r.rules.empty()) return {};
  routing::Table t(r.rules, upstream_names(cfg));
  std::string out = "# route table (first match wins; a recipient no rule takes is refused at RCPT):\n";
  for (std::size_t i = 0; i < r.rules.size(); ++i) {
    const routing::Rule& rule = r.rules[i];
    std::vector<std::string> when;
    if (!rule.senders.empty()) when.push_back("sender " + list(rule.senders));
    if (!rule.recipient_domains.empty()) when.push_back("recipient domain " + list(rule.recipient_domains));
    if (!rule.clients.empty()) {
      std::vector<std::string> nets;
      for (const auto& c : rule.clients) nets.push_back(c.str());
      when.push_back("client " + list(nets));
    }
    if (!rule.devices.empty()) when.push_back("device " + list(rule.devices));
    std::string cond;
    for (const auto& w : when) cond += (cond.empty() ? "" : " and ") + w;
    out += "#   " + std::to_string(i + 1) + ". " + (cond.empty() ? "any mail" : cond) + " -> " + t.key(i) + "   (" +
           r.names[i] + ")\n";
    if (auto by = routing::shadowed_by(r.rules, i))
      out += "#      never used: " + r.names[*by] + " before it matches all the mail it matches\n";
  }
  return out;
}

}  // namespace spoolgate::app
