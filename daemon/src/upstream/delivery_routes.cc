// SPDX-License-Identifier: MIT
// upstream/delivery_routes: Delivery's routes (delivery.h, "Routes"): a
// message's route string, its groups, which recipients a session carries,
// and mail that must go elsewhere or nowhere.
#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "upstream/delivery.h"

namespace spoolgate::upstream {

std::string Delivery::route_for(const spool::Record& rec) const {
  if (!routed()) return {};
  const routing::Table& t = *s_.routing;
  routing::Mail m{rec.sender, rec.client, rec.device};
  std::vector<std::string> keys;
  bool unroutable = false;
  for (std::size_t i : rec.pending()) {
    auto rule = t.match(m, rec.recipients[i]);
    if (!rule) {
      unroutable = true;
      continue;
    }
    if (std::find(keys.begin(), keys.end(), t.key(*rule)) == keys.end()) keys.push_back(t.key(*rule));
  }
  if (keys.empty() && unroutable) return kNoRoute;
  return routing::join_route(keys);
}

const Delivery::Route* Delivery::route_of(const std::string& route) const {
  if (route.empty() || !routed()) return nullptr;
  auto it = route_cache_.find(route);
  if (it == route_cache_.end()) {
    if (route_cache_.size() >= 4096) route_cache_.clear();  // distinct routes are few; bound them anyway
    std::optional<Route> r = Route{};
    for (std::string_view key : routing::route_keys(route)) {
      const Group* g = s_.routing->group_of(key);
      if (!g) {  // a key a reload dropped: anywhere (the session puts it right)
        r.reset();
        break;
      }
      r->push_back(g);
    }
    it = route_cache_.emplace(route, std::move(r)).first;
  }
  return it->second ? &*it->second : nullptr;
}

bool Delivery::in_route(const Route* r, std::size_t upstream) {
  if (!r) return true;
  return std::any_of(r->begin(), r->end(),
                     [&](const Group* g) { return std::find(g->begin(), g->end(), upstream) != g->end(); });
}

std::optional<std::size_t> Delivery::usable_upstream(const Route* r) const {
  std::int64_t now = unix_now_ms();
  if (r) {
    for (const Group* g : *r)
      for (std::size_t i : *g)
        if (i < sites_.size() && sites_[i].down_until <= now) return i;
    return std::nullopt;
  }
  for (std::size_t i = 0; i < sites_.size(); ++i)
    if (sites_[i].down_until <= now) return i;
  return std::nullopt;
}

std::int64_t Delivery::route_up_at(const Route* r) const {
  std::int64_t at = INT64_MAX;
  for (std::size_t i = 0; i < sites_.size(); ++i)
    if (in_route(r, i)) at = std::min(at, sites_[i].down_until);
  return at == INT64_MAX ? unix_now_ms() + 1000 : at;
}

bool Delivery::other_upstream_usable(std::size_t upstream, const std::string& id) const {
  // (An index a reload made stale just means "some other one".)
  const Route* r = route_of(sched_.route(id));
  std::int64_t now = unix_now_ms();
  for (std::size_t i = 0; i < sites_.size(); ++i)
    if (i != upstream && in_route(r, i) && sites_[i].down_until <= now) return true;
  return false;
}

std::vector<std::size_t> Delivery::carried(const spool::Record& rec, std::size_t upstream) const {
  if (!routed()) return rec.pending();
  const routing::Table& t = *s_.routing;
  const std::string& route = sched_.route(rec.id);
  bool any = route_of(route) == nullptr;  // waiting for every group ("" or a key a reload dropped)
  auto keys = routing::route_keys(route);
  routing::Mail m{rec.sender, rec.client, rec.device};
  std::vector<std::size_t> out;
  for (std::size_t i : rec.pending()) {
    auto rule = t.match(m, rec.recipients[i]);
    if (!rule) continue;
    const Group& g = t.group(*rule);
    if (std::find(g.begin(), g.end(), upstream) == g.end()) continue;
    if (any || std::find(keys.begin(), keys.end(), t.key(*rule)) != keys.end()) out.push_back(i);
  }
  return out;
}

void Delivery::reroute(const spool::Record& rec) {
  std::string route = route_for(rec);
  log::debug("reroute").kv("msg", rec.id).kv("from", sched_.route(rec.id)).kv("to", route);
  sched_.set_route(rec.id, std::move(route));
  sched_.release(rec.id, unix_now_ms());
  kick();
}

void Delivery::defer_unroutable(const std::string& id) {
  auto loaded = std::make_shared<Result<spool::Record>>();
  work([spool = spool_, id, loaded] { *loaded = spool->load(id); },
       [this, id, loaded] {
         if (!*loaded) return unreadable(id, loaded->error(), "");
         auto rec = std::make_shared<spool::Record>(std::move(**loaded));
         if (route_for(*rec) != kNoRoute) return reroute(*rec);  // a reload gave it a route meanwhile
         ++rec->attempts;
         rec->last_error = "no route takes these recipients (routes: in the configuration)";
         log::warn("no_route").kv("msg", id).kv("sender", rec->sender).kv("device", rec->device);
         record(rec, {}, {}, kNone, "", "", [] {});
       });
}

}  // namespace spoolgate::upstream
