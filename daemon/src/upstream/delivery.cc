// SPDX-License-Identifier: MIT
#include "upstream/delivery.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "upstream/session.h"

namespace spoolgate::upstream {

Delivery::Delivery(loop::Loop& loop, std::shared_ptr<spool::Spool> spool, scheduler::Scheduler& sched, Settings s)
    : loop_(loop), spool_(std::move(spool)), sched_(sched), s_(std::move(s)), sites_(sites_for(s_.upstreams)) {
  timer_ = loop::Timer::create(loop_, [this] { kick(); });
  pacing_timer_ = loop::Timer::create(loop_, [this] { save_pacing(); });
  for (std::size_t i = 0; i < sites_.size(); ++i) load_pacing(i);
  for (const auto& u : s_.upstreams) limited_ = limited_ || u.limits.max_connections;
}

Delivery::~Delivery() = default;

void Delivery::insert(const spool::Record& r) {
  std::int64_t due = r.attempts == 0 ? 0 : r.next_attempt * 1000;
  std::string route = route_for(r);
  if (!route.empty())
    for (std::string_view key : routing::route_keys(route))
      if (routed_.size() < 1024 || routed_.count(key)) ++routed_[std::string(key)];  // keys are few; bounded anyway
  sched_.insert(r.id, r.arrived * 1000, due, std::move(route));
  kick();
}

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

std::optional<std::string> Delivery::take_job(std::size_t upstream) {
  // Asked by a session that is up and talking: its site works, whatever a
  // parallel connection just ran into, so it keeps going.
  if (draining_) return std::nullopt;
  std::int64_t now = unix_now_ms();
  if (gate(upstream, now) == Gate::Paced) return std::nullopt;  // its window is full: held mail waits for it
  auto ids = !routed() ? sched_.next_batch(now, 1) : sched_.next_batch(now, 1, [&](const std::string& route) {
    return route != kNoRoute && in_route(route_of(route), upstream);
  });
  if (ids.empty()) return std::nullopt;
  held_.erase(ids.front());
  return ids.front();
}

void Delivery::kick() {
  if (draining_ || s_.upstreams.empty()) return;
  expire_waiting();
  std::int64_t now = unix_now_ms();
  // Without routes and per-upstream connection limits every due message
  // can be acted on: no filter, nothing per message.
  bool filtered = routed() || limited_;
  for (;;) {
    if (parked_.empty() && sessions_.size() >= s_.max_connections) break;
    if (parked_.empty() && !usable_upstream()) break;  // every upstream down: the timer waits
    auto ids = !filtered ? sched_.next_batch(now, 1) : sched_.next_batch(now, 1, [&](const std::string& route) {
      return route == kNoRoute || startable(route_of(route), now);
    });
    if (ids.empty()) break;
    const std::string& id = ids.front();
    held_.erase(id);
    if (sched_.route(id) == kNoRoute) {
      defer_unroutable(id);
      continue;
    }
    const Route* route = route_of(sched_.route(id));
    // A held session first: its connection is up and its site works. The
    // most recently parked one that may carry this message, so that
    // surplus sessions reach their end.
    auto held = std::find_if(parked_.rbegin(), parked_.rend(), [&](const Session* s) {
      return in_route(route, s->upstream()) && gate(s->upstream(), now) != Gate::Paced;
    });
    if (held != parked_.rend()) {
      Session* s = *held;
      parked_.erase(std::next(held).base());
      s->resume(id);
      continue;
    }
    // The first ready upstream, in the route's order (failover order).
    std::optional<std::size_t> up;
    auto consider = [&](std::size_t u) {
      if (!up && gate(u, now) == Gate::Ready) up = u;
    };
    if (route)
      for (const Group* g : *route)
        for (std::size_t u : *g) consider(u);
    else
      for (std::size_t u = 0; u < sites_.size(); ++u) consider(u);
    if (!up) {
      // Its upstreams are down or their windows full: it waits for the
      // first to open, and other mail goes on.
      wait_for_route(id, route, now);
      continue;
    }
    if (sessions_.size() >= s_.max_connections) {
      // Every slot is taken and the held sessions talk to upstreams this
      // message may not use: they end, and the first release starts it.
      sched_.release(id, now);
      quit_parked();
      break;
    }
    auto* session = new Session(*this, *up, id);
    sessions_.insert(session);
    session->start();
  }
  arm_timer();
}

std::size_t Delivery::open_sessions(std::size_t u) const {
  return static_cast<std::size_t>(
      std::count_if(sessions_.begin(), sessions_.end(), [u](const Session* s) { return s->upstream() == u; }));
}

Delivery::Gate Delivery::gate(std::size_t u, std::int64_t now) const {
  if (u >= sites_.size()) return Gate::Down;  // an index a reload made stale
  const Site& site = sites_[u];
  if (site.down_until > now) return Gate::Down;
  if (site.pacer.check(now, 1)) return Gate::Paced;
  std::uint64_t max = s_.upstreams[u].limits.max_connections;
  if (max && open_sessions(u) >= max) return Gate::Full;
  return Gate::Ready;
}

bool Delivery::startable(const Route* r, std::int64_t now) const {
  bool full = false;
  for (std::size_t u = 0; u < sites_.size(); ++u) {
    if (!in_route(r, u)) continue;
    Gate g = gate(u, now);
    if (g == Gate::Ready) return true;
    full = full || g == Gate::Full;
  }
  if (!full) return true;  // all down or paced: held or released, now
  return std::any_of(parked_.begin(), parked_.end(), [&](const Session* s) {
    return in_route(r, s->upstream()) && gate(s->upstream(), now) != Gate::Paced;
  });
}

void Delivery::wait_for_route(const std::string& id, const Route* r, std::int64_t now) {
  std::int64_t until = INT64_MAX;
  std::optional<pacing::Wait> paced;
  std::size_t paced_at = 0;
  for (std::size_t u = 0; u < sites_.size(); ++u) {
    if (!in_route(r, u)) continue;
    const Site& site = sites_[u];
    if (site.down_until > now) {
      if (site.down_until < until) {
        until = site.down_until;
        paced.reset();
      }
    } else if (auto w = site.pacer.check(now, 1); w && w->until_ms < until) {
      until = w->until_ms;
      paced = std::move(w);
      paced_at = u;
    }
  }
  if (paced) {
    this->paced(paced_at, *paced);
    return hold(id, *paced, paced_at);
  }
  sched_.release(id, until == INT64_MAX ? now + 1000 : until);
}

void Delivery::paced(std::size_t upstream, pacing::Wait& w) {
  Site& site = sites_[upstream];
  if (site.paced_logged != w.until_ms) {  // once per window
    site.paced_logged = w.until_ms;
    log::info("upstream_paced")
        .kv("upstream", s_.upstreams[upstream].name)
        .kv("reason", w.reason)
        .kv("until", iso8601(w.until_ms / 1000))
        .kv("action", "mail is held until then, not deferred, never bounced");
  }
  w.reason = s_.upstreams[upstream].label() + ": " + w.reason;
}

void Delivery::hold(const std::string& id, const pacing::Wait& w, std::size_t upstream) {
  held_[id] = Held{w.until_ms, w.reason, upstream};
  sched_.release(id, w.until_ms);
  log::debug("held").kv("msg", id).kv("reason", w.reason).kv("until", iso8601(w.until_ms / 1000));
}

std::optional<pacing::Wait> Delivery::admit(std::size_t upstream, std::uint64_t rcpts, std::int64_t* stamp) {
  *stamp = 0;
  if (upstream >= sites_.size()) return std::nullopt;
  Site& site = sites_[upstream];
  if (!site.pacer.limits().paced()) return std::nullopt;
  std::int64_t now = unix_now_ms();
  if (auto w = site.pacer.check(now, rcpts)) {
    paced(upstream, *w);
    return w;
  }
  *stamp = site.pacer.count(now, rcpts);
  site.pacing_dirty = true;
  if (pacing_timer_ && !pacing_saving_) pacing_timer_->start(Millis(1000));
  return std::nullopt;
}

void Delivery::admitted_done(std::size_t upstream, std::int64_t stamp, std::uint64_t rcpts) {
  if (!stamp || upstream >= sites_.size()) return;
  sites_[upstream].pacer.restamp(stamp, rcpts, unix_now_ms());
  sites_[upstream].pacing_dirty = true;
  if (pacing_timer_ && !pacing_saving_) pacing_timer_->start(Millis(1000));
}

void Delivery::load_pacing(std::size_t i) {
  Site& site = sites_[i];
  const Upstream& u = s_.upstreams[i];
  site.pacer.set_limits(u.limits);
  if (!u.limits.paced() || site.pacing_dirty || site.pacer.usage(unix_now_ms()).messages_day ||
      site.pacer.usage(unix_now_ms()).last_minute || site.pacer.usage(unix_now_ms()).last_second)
    return;  // nothing to keep, or counters this process already holds
  auto text = files::read_small(spool_->dir() + "/pacing/" + u.pacing_key, 4u << 20);
  if (!text) {
    if (text.error().sys != ENOENT)
      log::warn("pacing_read").kv("upstream", u.name).kv("reason", text.error().message());
    return;
  }
  if (auto r = site.pacer.decode(*text, unix_now_ms()); !r)
    log::warn("pacing_read")
        .kv("upstream", u.name)
        .kv("reason", r.error().message())
        .kv("action", "the counters start afresh");
}

void Delivery::save_pacing() {
  if (pacing_saving_) return;
  std::vector<std::pair<std::string, std::string>> out;  // key, text
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    if (!sites_[i].pacing_dirty) continue;
    sites_[i].pacing_dirty = false;
    out.emplace_back(s_.upstreams[i].pacing_key, sites_[i].pacer.encode());
  }
  if (out.empty()) return;
  pacing_saving_ = true;
  auto errors = std::make_shared<std::vector<std::string>>();
  std::string dir = spool_->dir() + "/pacing";
  std::string tmp = spool_->dir() + "/tmp";
  work(
      [out = std::move(out), errors, dir, tmp] {
        if (auto d = files::ensure_dir(dir); !d) return errors->push_back(d.error().message());
        for (const auto& [key, text] : out) {
          std::string from = tmp, to = dir;
          from.append("/pacing-").append(key);
          to.append("/").append(key);
          if (auto r = files::replace_file(from, to, text); !r) errors->push_back(r.error().message());
        }
        if (auto f = files::fsync_dir(dir); !f) errors->push_back(f.error().message());
      },
      [this, errors] {
        pacing_saving_ = false;
        for (const auto& e : *errors) log::warn("pacing_write").kv("reason", e);
        bool again = std::any_of(sites_.begin(), sites_.end(), [](const Site& s) { return s.pacing_dirty; });
        if (again && draining_) return save_pacing();
        if (again && pacing_timer_) pacing_timer_->start(Millis(1000));
      });
}

void Delivery::park(Session* s) {
  parked_.push_back(s);
  kick();  // a message may have become due while this one was finishing
}

void Delivery::unpark(Session* s) { std::erase(parked_, s); }

void Delivery::quit_parked() {
  auto parked = std::move(parked_);
  parked_.clear();
  for (Session* s : parked) s->end_hold();
}

std::vector<Delivery::Site> Delivery::sites_for(const std::vector<Upstream>& ups) const {
  // An upstream the reload keeps keeps its backoff (logrotate's SIGHUP must
  // not re-hammer a provider that refuses our password); a new one starts
  // afresh. A flush (or a delivery) ends a backoff, not a reload.
  std::vector<Site> out;
  for (const auto& u : ups) {
    Site fresh;
    fresh.name = u.name;
    for (const auto& old : sites_)
      if (old.name == u.name) fresh = old;
    out.push_back(fresh);
  }
  return out;
}

void Delivery::reconfigure(Settings s) {
  // Held sessions carry the old upstream, credentials and limits: they end.
  quit_parked();
  ++generation_;  // and sessions busy now are not held after their message
  bool was_routed = routed();
  s_ = std::move(s);
  sites_ = sites_for(s_.upstreams);
  limited_ = false;
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    load_pacing(i);
    limited_ = limited_ || s_.upstreams[i].limits.max_connections;
  }
  route_cache_.clear();
  // Routes name upstreams and rules that may have changed: waiting mail may
  // go anywhere until a session loads it and puts it on its route.
  if (was_routed || routed()) sched_.set_waiting_routes("");
  kick();
}

std::size_t Delivery::flush() {
  std::size_t waiting = sched_.size() - sched_.in_flight();
  for (auto& site : sites_) {
    site.down_until = 0;
    site.pacer.unblock();  // a quota reply's hold; what the limits count stays
  }
  sched_.flush(unix_now_ms());
  kick();
  return waiting;
}

bool Delivery::retry(const std::string& id) {
  if (!sched_.contains(id) || sched_.flying(id)) return false;
  sched_.release(id, unix_now_ms());
  kick();
  return true;
}

void Delivery::remove(const std::string& id, const std::function<void(bool, std::string)>& done) {
  if (sched_.flying(id)) return done(false, "message " + id + " is being delivered; try again");
  bool known = sched_.contains(id);
  std::string route = sched_.route(id);
  sched_.remove(id);  // nothing hands it out while the file goes
  held_.erase(id);
  auto result = std::make_shared<Result<spool::Record>>();
  auto spool = spool_;
  work(
      [=] {
        *result = spool->load(id);
        if (*result) {
          auto r = spool->remove(id);
          if (!r) *result = tl::unexpected(r.error());
        }
      },
      [=, this] {
        if (!*result) {
          if (known) sched_.insert(id, unix_now_ms(), unix_now_ms(), route);  // still there: keep delivering it
          return done(false, result->error().message());
        }
        if (on_removed) on_removed((*result)->size);
        log::info("deleted").kv("msg", id).kv("by", "operator");
        done(true, "");
      });
}

void Delivery::work(std::function<void()> fn, std::function<void()> done) {
  ++jobs_;
  loop_.queue_work(std::move(fn), [this, done = std::move(done)] {
    --jobs_;
    done();
    maybe_drained();
  });
}

void Delivery::maybe_drained() {
  if (draining_ && sessions_.empty() && jobs_ == 0 && drained_) {
    // The last counts written before the end (their job comes back here).
    if (std::any_of(sites_.begin(), sites_.end(), [](const Site& s) { return s.pacing_dirty; })) return save_pacing();
    auto done = std::move(drained_);
    drained_ = nullptr;
    done();
  }
}

void Delivery::expire_waiting() {
  std::int64_t now = unix_now_ms();
  for (const auto& id : sched_.take_expired(now, 64)) {
    auto rec = std::make_shared<Result<spool::Record>>();
    auto verdict = std::make_shared<Verdict>();
    auto persisted = std::make_shared<Persisted>();
    FailOptions fo{s_.bounce, s_.helo, now / 1000, true};
    work(
        [spool = spool_, id, rec, verdict, persisted, fo] {
          *rec = spool->load(id);
          if (!*rec) return;
          *verdict = expire(**rec);
          *persisted = persist(spool, **rec, *verdict, fo);
        },
        [this, id, rec, verdict, persisted] {
          if (!*rec) return unreadable(id, rec->error(), "");
          apply(**rec, *verdict, *persisted, {}, "", "");
        });
  }
}

void Delivery::record(const std::shared_ptr<spool::Record>& rec, const std::vector<std::string>& failed,
                      std::vector<std::size_t> attempt_rcpts, std::size_t up, std::string session, std::string upstream,
                      std::function<void()> done) {
  // A split message's round: the groups it waited for that do not hold
  // this upstream (theirs did not have their attempt) are due now.
  std::string next = route_for(*rec);
  bool goes_on = false;
  if (routed() && up != kNone && next != kNoRoute) {
    const std::string& waited = sched_.route(rec->id);
    bool any = route_of(waited) == nullptr;
    auto waited_keys = routing::route_keys(waited);
    std::vector<std::string> rest;
    for (std::string_view key : routing::route_keys(next)) {
      const Group* g = s_.routing->group_of(key);
      bool visited = g && std::find(g->begin(), g->end(), up) != g->end();
      if (!visited && (any || std::find(waited_keys.begin(), waited_keys.end(), key) != waited_keys.end()))
        rest.emplace_back(key);
    }
    if (!rest.empty()) {
      goes_on = true;
      next = routing::join_route(rest);
    }
  }
  auto verdict = std::make_shared<Verdict>(decide(*rec, failed, sched_, unix_now_ms(), goes_on));
  verdict->route = std::move(next);
  verdict->next_part = goes_on;
  auto persisted = std::make_shared<Persisted>();
  FailOptions fo{s_.bounce, s_.helo, unix_now(), false};
  work([spool = spool_, rec, verdict, persisted, fo] { *persisted = persist(spool, *rec, *verdict, fo); },
       [this, rec, verdict, persisted, rcpts = std::move(attempt_rcpts), session = std::move(session),
        upstream = std::move(upstream), done = std::move(done)] {
         apply(*rec, *verdict, *persisted, rcpts, session, upstream);
         done();
       });
}

void Delivery::hand_back(const std::string& id, bool failover) {
  sched_.release(id, unix_now_ms());
  if (failover) kick();
}

void Delivery::site_assessed(std::size_t upstream, const Assessment& a) {
  // Throttling (RFC 3463 4.7.0, 432 4.3.2 "try later") and our own
  // misconfiguration are about the site, not this message: back off the
  // whole upstream instead of hammering it (the session QUITs).
  if (a.any_delivered) site_delivered(upstream);
  switch (a.site) {
    case Assessment::Site::None:
      return;
    case Assessment::Site::Misconfigured:
      return site_misconfigured(upstream, smtp::Trouble::Misconfigured, a.site_reason);
    case Assessment::Site::Quota:
      return site_misconfigured(upstream, smtp::Trouble::Quota, a.site_reason);
    case Assessment::Site::Throttled:
      return site_failure(upstream,
                          smtp::Failure{smtp::Failure::Temporary, "throttled: " + a.site_reason, false, true});
  }
}

void Delivery::apply(const spool::Record& rec, const Verdict& v, const Persisted& p,
                     const std::vector<std::size_t>& attempt_rcpts, const std::string& session,
                     const std::string& upstream) {
  std::string delivered_to;
  for (std::size_t i : attempt_rcpts)
    if (i < rec.rcpt_state.size() && rec.rcpt_state[i] == spool::Record::RcptState::Delivered)
      delivered_to += (delivered_to.empty() ? "" : ",") + rec.recipients[i];
  if (!delivered_to.empty()) {
    ++stats_.delivered;
    stats_.last_delivered = unix_now();
    log::info("delivered").kv("session", session).kv("msg", rec.id).kv("upstream", upstream).kv("rcpt", delivered_to);
  }
  if (!p.result) {
    log::error("spool_update").kv("session", session).kv("msg", rec.id).kv("reason", p.result.error().message());
    if (v.action != Verdict::Action::Defer) {
      // Still on disk: keep it scheduled (a later attempt may repeat the
      // delivered recipients: at least once, never lost).
      deferred(rec.id, sched_.due_after_miss(rec.id, unix_now_ms()), p.result.error().message(), rec.attempts, session,
               upstream);
      return;
    }
  }
  if (v.action == Verdict::Action::Defer && routed()) sched_.set_route(rec.id, v.route);
  if (v.action == Verdict::Action::Defer && v.next_part) {
    // The next group's turn (a split message), not a deferral.
    sched_.release(rec.id, v.due);
    log::debug("next_route").kv("msg", rec.id).kv("route", v.route);
    kick();
    return;
  }
  if (v.action == Verdict::Action::Defer) {
    // A state that could not be written still gets its backoff: the spool
    // holds the previous (earlier) schedule, which only means an earlier
    // attempt after a restart.
    deferred(rec.id, v.due, rec.last_error, rec.attempts, session, upstream);
    return;
  }
  sched_.remove(rec.id);
  held_.erase(rec.id);
  if (on_removed) on_removed(rec.size);
  if (v.action == Verdict::Action::Fail) {
    ++stats_.failed;
    log::warn("failed").kv("session", session).kv("msg", rec.id).kv("upstream", upstream).kv("reason", v.reason);
  }
  if (p.report) {
    ++stats_.bounced;
    log::info("bounce_queued").kv("msg", p.report->id).kv("orig", rec.id).kv("to", rec.sender);
    if (on_report) on_report(*p.report);
  }
}

void Delivery::deferred(const std::string& msg, std::int64_t due, const std::string& reason, unsigned attempts,
                        const std::string& session, const std::string& upstream) {
  ++stats_.deferred;
  sched_.release(msg, due);
  log::info("deferred")
      .kv("session", session)
      .kv("msg", msg)
      .kv("upstream", upstream)
      .kv("reason", reason)
      .kv("attempts", attempts)
      .kv("next", iso8601(due / 1000));
  arm_timer();
}

void Delivery::unreadable(const std::string& id, const Error& e, const std::string& session) {
  if (e.sys == ENOENT || e.code == Errc::NotFound) {
    // Deleted meanwhile (queue delete, an operator): nothing to deliver.
    log::info("spool_gone").kv("session", session).kv("msg", id).kv("reason", e.message());
    sched_.remove(id);
    return;
  }
  if (e.code != Errc::SpoolCorrupt) {
    std::int64_t due = sched_.due_after_miss(id, unix_now_ms());
    log::error("spool_read")
        .kv("session", session)
        .kv("msg", id)
        .kv("reason", e.message())
        .kv("action", "deferred; the entry stays queued");
    deferred(id, due, "spool read failed: " + e.message(), 0, session, "");
    return;
  }
  // Really corrupt: quarantined at once, never retried, never delivered.
  auto moved = std::make_shared<Result<void>>();
  auto size = std::make_shared<std::uint64_t>(0);
  std::string reason = "corrupt: " + e.message();
  work(
      [spool = spool_, id, reason, moved, size] {
        struct stat st {};
        if (::stat(spool->queue_path(id).c_str(), &st) == 0) *size = static_cast<std::uint64_t>(st.st_size);
        *moved = spool->move_to_failed(id, reason);
      },
      [this, id, reason, moved, size, session] {
        if (!*moved) {
          log::error("spool_quarantine")
              .kv("session", session)
              .kv("msg", id)
              .kv("reason", moved->error().message())
              .kv("action", "left in queue/ and retried later");
          deferred(id, sched_.due_after_miss(id, unix_now_ms()), reason, 0, session, "");
          return;
        }
        log::error("spool_corrupt")
            .kv("session", session)
            .kv("msg", id)
            .kv("reason", reason)
            .kv("moved_to", "failed/" + id);
        sched_.remove(id);
        if (on_removed) on_removed(*size);
      });
}

void Delivery::arm_timer() {
  if (!timer_ || draining_) return;
  auto due = sched_.next_due();
  // Mail still due after a kick waits for a session of a full upstream to
  // end (release() kicks): the timer is for what comes due later.
  std::int64_t now = unix_now_ms();
  if (due && *due <= now && (routed() || limited_) && usable_upstream()) due = sched_.next_due_after(now);
  // At capacity a finishing session takes the next message itself (and
  // release() kicks): no timer, which would otherwise fire again and again.
  if (!due || (sessions_.size() >= s_.max_connections && parked_.empty())) {
    timer_->stop();
    return;
  }
  std::int64_t at = *due;
  // Expiry does not wait for an upstream to come back.
  auto expiry = sched_.next_expiry();
  // While every upstream is down (and no session is held), wake when the
  // first comes back.
  if (parked_.empty() && !usable_upstream()) {
    std::int64_t up_at = INT64_MAX;
    for (const auto& s : sites_) up_at = std::min(up_at, s.down_until);
    at = std::max(at, up_at);
  }
  if (expiry) at = std::min(at, *expiry);
  std::int64_t wait = std::max<std::int64_t>(1, at - unix_now_ms());
  // A session slot frees up on release, which kicks anyway.
  timer_->start(Millis(std::min<std::int64_t>(wait, 3'600'000)));
}

void Delivery::site_failure(std::size_t upstream, const smtp::Failure& f) {
  if (upstream >= sites_.size()) return;  // an upstream a reload removed
  Site& s = sites_[upstream];
  ++s.failures;
  Millis backoff = sched_.backoff(s.failures);
  s.down_until = unix_now_ms() + backoff.count();
  SiteStats& st = site_stats_[s_.upstreams[upstream].name];
  if (!st.failing_since) st.failing_since = unix_now();
  st.last_error = f.reason;
  if (f.kind == smtp::Failure::Auth) {
    ++stats_.auth_failures;
    ++st.auth_failures;
    s.misconfigured = true;
    st.misconfigured = f.reason;
    if (!s.auth_logged) {
      // Loud and once: a wrong password is a configuration problem, and
      // hammering the provider gets the account locked.
      log::error("auth_failed")
          .kv("upstream", s_.upstreams[upstream].name)
          .kv("reason", f.reason)
          .kv("action", s_.upstreams[upstream].oauth_key.empty()
                            ? "check username and password; mail stays queued; retrying with backoff"
                            : "see spoolgate oauth status; mail stays queued; retrying with backoff");
      s.auth_logged = true;
    }
  }
  log::warn("upstream_down")
      .kv("upstream", s_.upstreams[upstream].name)
      .kv("failures", s.failures)
      .kv("retry_in", format_duration(backoff));
}

void Delivery::site_success(std::size_t upstream) {
  if (upstream >= sites_.size()) return;
  Site& s = sites_[upstream];
  SiteStats& st = site_stats_[s_.upstreams[upstream].name];
  st.last_success = unix_now();
  if (s.misconfigured) return;  // connected, but the account is still refused: a delivery ends it
  if (s.failures) log::info("upstream_up").kv("upstream", s_.upstreams[upstream].name);
  s.clear_trouble();  // (the pacing counters stay)
  st.failing_since = 0;
}

void Delivery::site_misconfigured(std::size_t upstream, smtp::Trouble t, const std::string& reason) {
  if (upstream >= sites_.size()) return;
  Site& s = sites_[upstream];
  const std::string& name = s_.upstreams[upstream].name;
  SiteStats& st = site_stats_[name];
  if (t == smtp::Trouble::Quota) {
    // The provider counts more than we did (another client on the account,
    // a smaller quota than the profile's): no new transaction until the
    // day window of our counters opens, or for quota_wait, whichever is
    // first, and at least a minute. Mail is held meanwhile, never bounced.
    std::int64_t now = unix_now_ms();
    std::int64_t until = now + s_.upstreams[upstream].quota_wait.count();
    if (auto opens = s.pacer.day_window_opens(now)) until = std::min(until, *opens);
    until = std::max(until, now + 60'000);
    s.pacer.block_until(until, "quota reply: " + reason);
    s.pacing_dirty = true;
    s.misconfigured = true;  // until a delivery gets through (site_delivered)
    if (pacing_timer_ && !pacing_saving_) pacing_timer_->start(Millis(1000));
    st.misconfigured = reason;
    log::error("upstream_quota")
        .kv("upstream", name)
        .kv("reason", reason)
        .kv("until", iso8601(until / 1000))
        .kv("action", "the account's sending quota is used up; mail is held until then, nothing is bounced");
    return;
  }
  if (!s.misconfigured)
    log::error("upstream_misconfigured")
        .kv("upstream", name)
        .kv("trouble", smtp::to_string(t))
        .kv("reason", reason)
        .kv("action",
            "check the account (credentials, SMTP AUTH enabled, send-as rights, rewrite_from); "
            "mail stays queued, nothing is bounced; retrying with backoff");
  s.misconfigured = true;
  st.misconfigured = reason;
  site_failure(upstream, smtp::Failure{smtp::Failure::Temporary, reason, false, true});
}

void Delivery::site_delivered(std::size_t upstream) {
  if (upstream >= sites_.size()) return;
  Site& s = sites_[upstream];
  SiteStats& st = site_stats_[s_.upstreams[upstream].name];
  if (s.misconfigured) log::info("upstream_fixed").kv("upstream", s_.upstreams[upstream].name);
  s.clear_trouble();  // (the pacing counters stay)
  st.misconfigured.clear();
  st.failing_since = 0;
}

std::vector<std::pair<std::string, SiteStats>> Delivery::site_stats() const {
  std::vector<std::pair<std::string, SiteStats>> out;
  std::int64_t now = unix_now_ms();
  for (std::size_t i = 0; i < s_.upstreams.size(); ++i) {
    const std::string& name = s_.upstreams[i].name;
    auto it = site_stats_.find(name);
    SiteStats st = it == site_stats_.end() ? SiteStats{} : it->second;
    st.down = i < sites_.size() && sites_[i].down_until > now;
    st.sessions = open_sessions(i);
    for (const auto& [id, h] : held_) st.held += h.upstream == i ? 1 : 0;
    const pacing::Limits& l = s_.upstreams[i].limits;
    pacing::Pacer::Usage use = i < sites_.size() ? sites_[i].pacer.usage(now) : pacing::Pacer::Usage{};
    for (auto [limit, figure, in_use] : {std::tuple{"max_connections", l.max_connections, st.sessions},
                                         {"messages_per_second", l.messages_per_second, use.last_second},
                                         {"messages_per_minute", l.messages_per_minute, use.last_minute},
                                         {"messages_per_day", l.messages_per_day, use.messages_day},
                                         {"recipients_per_day", l.recipients_per_day, use.recipients_day},
                                         {"max_message_size", l.max_message_size, std::uint64_t{0}}}) {
      if (!figure) continue;
      st.limits.emplace_back(limit, figure);
      if (std::string_view(limit) != "max_message_size") st.used.emplace_back(limit, in_use);
    }
    out.emplace_back(name, std::move(st));
  }
  return out;
}

std::string Delivery::site_summary() const {
  std::string out;
  std::int64_t now = unix_now_ms();
  for (const auto& s : sites_) out += std::string(out.empty() ? "" : ",") + (s.down_until > now ? "down" : "ok");
  return out;
}

void Delivery::release(Session* s) {
  sessions_.erase(s);  // (finalize() already unparked it)
  delete s;
  if (draining_) return maybe_drained();
  kick();
}

void Delivery::shutdown(std::function<void()> done) {
  draining_ = true;
  timer_.reset();
  quit_parked();
  drained_ = std::move(done);
  maybe_drained();
}

void Delivery::abort() {
  std::vector<Session*> snapshot(sessions_.begin(), sessions_.end());
  for (Session* s : snapshot) s->abort();
}

}  // namespace spoolgate::upstream
