// SPDX-License-Identifier: MIT
#include "upstream/delivery.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "upstream/api_session.h"
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
    auto held = std::find_if(parked_.rbegin(), parked_.rend(), [&](const Carrier* s) {
      return in_route(route, s->upstream()) && gate(s->upstream(), now) != Gate::Paced;
    });
    if (held != parked_.rend()) {
      Carrier* s = *held;
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
    Carrier* session = make_carrier(*up, id);
    sessions_.insert(session);
    session->start();
  }
  arm_timer();
}

Carrier* Delivery::make_carrier(std::size_t up, std::string first_job) {
  if (s_.upstreams.at(up).api) return new ApiSession(*this, up, std::move(first_job));
  return new Session(*this, up, std::move(first_job));
}

void Delivery::park(Carrier* s) {
  parked_.push_back(s);
  kick();  // a message may have become due while this one was finishing
}

void Delivery::unpark(Carrier* s) { std::erase(parked_, s); }

void Delivery::quit_parked() {
  auto parked = std::move(parked_);
  parked_.clear();
  for (Carrier* s : parked) s->end_hold();
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
      return site_failure(upstream, smtp::Failure{smtp::Failure::Temporary, "throttled: " + a.site_reason, false, true},
                          a.site_wait);
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
    if (on_failed) on_failed(rec, v.reason);
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

void Delivery::site_failure(std::size_t upstream, const smtp::Failure& f, std::optional<Millis> wait) {
  if (upstream >= sites_.size()) return;  // an upstream a reload removed
  Site& s = sites_[upstream];
  ++s.failures;
  Millis backoff = wait ? *wait : sched_.backoff(s.failures);
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

void Delivery::release(Carrier* s) {
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
  std::vector<Carrier*> snapshot(sessions_.begin(), sessions_.end());
  for (Carrier* s : snapshot) s->abort();
}

}  // namespace spoolgate::upstream
