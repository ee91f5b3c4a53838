// SPDX-License-Identifier: MIT
// config/config: the driver. The sections' tables (config/sections.h) are
// read from the YAML value tree after the environment overlay, then each
// section checks what needs more than one key; dump() renders the same
// tables.
#include "config/config.h"

#include <set>

#include "config/schema.h"
#include "config/sections.h"
#include "config/url.h"
#include "config/value.h"
#include "core/text.h"

extern char** environ;

namespace spoolgate::config {

const std::vector<Section>& sections() {
  static const std::vector<Section> all = {
      {"", general_fields, general_check, {}},
      {"spool", spool_fields, spool_check, {}},
      {"limits", limits_fields, limits_check, {}},
      {"headers", headers_fields, headers_check, {}},
      {"delivery", delivery_fields, delivery_check, {"delivery.retry", "delivery.timeouts"}},
      {"metrics", metrics_fields, metrics_check, {}},
      {"notify_thresholds", notify_thresholds_fields, notify_check, {"notify_thresholds"}},
      {"log", log_fields, nullptr, {}},
  };
  return all;
}

Value Check::where(const std::string& key) const {
  Value v;
  v.origin = source_.empty() ? "(defaults)" : source_;
  const Value* cur = &root_;
  for (std::string_view part : split(key, '.')) {
    const Value* nxt = cur->kind == Value::Map ? cur->find(part) : nullptr;
    if (!nxt) break;
    cur = nxt;
    v.origin = cur->origin;
  }
  return v;
}

namespace {

Table all_fields(Config& c) {
  Table t;
  for (const auto& s : sections())
    for (auto& f : s.fields(c)) t.push_back(std::move(f));
  return t;
}

// Every known leaf can be set by its variable; the first upstream by
// SPOOLGATE_UPSTREAM_<KEY> and the short forms. Returns the variables used.
std::set<std::string> overlay_env(Value& root, const Table& tops, const Env& env) {
  std::set<std::string> used;
  for (const auto& k : tops) {
    std::string name = env_name(k.path);
    auto it = env.find(name);
    if (it == env.end()) continue;
    used.insert(name);
    Value* cur = &root;
    for (std::string_view part : split(k.path, '.')) cur = &cur->child(std::string(part), "$" + name);
    *cur = env_value(name, it->second, k.list);
  }
  for (const auto& [key, name, is_list] : upstream_env_names()) {
    auto it = env.find(name);
    if (it == env.end()) continue;
    used.insert(name);
    Value& list = root.child("upstreams", "$" + name);
    if (list.kind != Value::List) {
      list.kind = Value::List;
      list.origin = "$" + name;
    }
    if (list.list.empty()) list.list.push_back(Value{Value::Map, "", {}, {}, "$" + name});
    list.list[0].child(key, "$" + name) = env_value(name, it->second, is_list);
  }
  return used;
}

// A list of maps (upstreams, devices): each entry read with its own table,
// its keys named with the entry's index.
template <class T, class Fields>
bool read_list(Parser& p, const Value& v, const std::string& path, std::vector<T>& out, Fields fields) {
  out.clear();
  if (v.kind == Value::Null) return true;
  if (v.kind != Value::List) {
    p.err(v, path, "expected a list of " + path);
    return true;
  }
  for (size_t i = 0; i < v.list.size(); ++i) {
    T item;
    std::string at = path + "[" + std::to_string(i) + "]";
    Table keys = fields(item);
    for (auto& k : keys) k.path = at + "." + k.path;
    walk(p, v.list[i], at, keys, nullptr);
    out.push_back(std::move(item));
  }
  return true;
}

tl::expected<Config, Errors> parse_root(Value root, const std::string& source, const Env& env) {
  Config c;
  c.source = source;
  c.listen.push_back(*parse_listen_address("127.0.0.1:2525", true));
  c.allow_networks = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
  Parser p;
  if (root.kind == Value::Null) {
    root.kind = Value::Map;
    root.origin = source.empty() ? "(defaults)" : source;
  }
  Table tops = all_fields(c);
  std::set<std::string> used;
  if (root.kind == Value::Map) used = overlay_env(root, tops, env);
  // Unknown SPOOLGATE_* variables are reported, not fatal: Kubernetes injects
  // SPOOLGATE_PORT, SPOOLGATE_SERVICE_HOST, ... for a Service of that name.
  for (const auto& [name, value] : env) {
    if (name.starts_with("SPOOLGATE_") && !used.count(name) && name != "SPOOLGATE_CONFIG")
      c.ignored_env.push_back(name);
  }
  walk(p, root, "", tops,
       [&](const std::string& path, const Value& v) {
         if (path == "upstreams")
           return read_list(p, v, path, c.upstreams, [](Upstream& u) { return upstream_fields(u); });
         if (path == "devices") return read_list(p, v, path, c.devices, [](Device& d) { return device_fields(d); });
         if (path == "routes") return read_list(p, v, path, c.routes, [](Route& r) { return route_fields(r); });
         if (path == "expect") return read_list(p, v, path, c.expect, [](Expect& e) { return expect_fields(e); });
         if (path == "notify") return read_list(p, v, path, c.notify, [](NotifyTarget& t) { return notify_fields(t); });
         return false;
       },
       {"upstreams", "devices", "routes", "expect", "notify"});
  Check k(p, root, source);
  for (const auto& s : sections())
    if (s.check) s.check(k, c);
  upstreams_check(k, c);
  devices_check(k, c);
  routes_check(k, c);
  expect_check(k, c);
  if (!p.errors.empty()) return tl::unexpected(std::move(p.errors));
  return c;
}

}  // namespace

Env process_env() {
  Env e;
  for (char** p = environ; p && *p; ++p) {
    std::string_view kv = *p;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    e.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return e;
}

tl::expected<Config, Errors> load_text(const std::string& yaml, const std::string& name, const Env& env) {
  auto root = parse_yaml(yaml, name);
  if (!root) return tl::unexpected(Errors{root.error()});
  return parse_root(std::move(*root), name, env);
}

tl::expected<Config, Errors> load(const std::string& path, const Env& env) {
  if (path.empty()) return parse_root(Value{}, "", env);
  auto root = parse_yaml_file(path);
  if (!root) return tl::unexpected(Errors{root.error()});
  return parse_root(std::move(*root), path, env);
}

std::string_view to_string(Scheme s) {
  switch (s) {
    case Scheme::Smtps:
      return "smtps";
    case Scheme::StartTls:
      return "smtp+starttls";
    case Scheme::Plain:
      return "smtp";
    case Scheme::Graph:
      return "graph";
    case Scheme::GmailApi:
      return "gmail-api";
  }
  return "?";
}

std::string_view to_string(AuthMode a) {
  switch (a) {
    case AuthMode::Auto:
      return "auto";
    case AuthMode::Plain:
      return "plain";
    case AuthMode::Login:
      return "login";
    case AuthMode::XOAuth2:
      return "xoauth2";
    case AuthMode::OAuthBearer:
      return "oauthbearer";
  }
  return "?";
}

std::string dump(const Config& c) {
  // The tables only read through show(); they bind non-const references.
  Config& cc = const_cast<Config&>(c);
  std::string o;
  o += "# effective configuration" + (c.source.empty() ? std::string(" (no file)") : " from " + c.source) + "\n";
  for (const auto& s : sections()) {
    o += render(s.fields(cc), s.flow);
    if (std::string_view(s.name) != "headers") continue;
    if (c.upstreams.empty())
      o += "upstreams: []   # store-only: mail is queued, nothing is delivered\n";
    else
      o += "upstreams:\n";
    for (auto& u : cc.upstreams) {
      std::string entry = render(upstream_fields(u, Shown::Set), {}, 4);
      o += "  - " + entry.substr(4);
    }
    if (!c.devices.empty()) o += "devices:\n";
    for (auto& d : cc.devices) {
      std::string entry = render(device_fields(d), {}, 4);
      o += "  - " + entry.substr(4);
    }
    if (!c.routes.empty()) o += "routes:\n";
    for (auto& r : cc.routes) {  // one line each, the keys it sets
      std::string keys;
      for (const auto& f : route_fields(r))
        if (std::string v = f.show(); v != "[]") keys += (keys.empty() ? "" : ", ") + f.path + ": " + v;
      o += "  - {" + keys + "}\n";
    }
    if (!c.notify.empty()) o += "notify:\n";
    for (auto& t : cc.notify) {  // the URL may hold a secret (Slack, Teams): shown without its path
      NotifyTarget shown = t;
      if (auto slash = shown.url.find('/', 8); slash != std::string::npos)
        shown.url = shown.url.substr(0, slash) + "/...";
      std::string entry = render(notify_fields(shown), {}, 4);
      o += "  - " + entry.substr(4);
    }
    if (!c.expect.empty()) o += "expect:\n";
    for (auto& e : cc.expect) {
      std::string entry = render(expect_fields(e), {}, 4);
      o += "  - " + entry.substr(4);
    }
  }
  for (const auto& name : c.ignored_env) o += "# ignored: $" + name + " is not a configuration variable\n";
  return o;
}

}  // namespace spoolgate::config
