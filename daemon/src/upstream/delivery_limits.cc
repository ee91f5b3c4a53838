// SPDX-License-Identifier: MIT
// upstream/delivery_limits: Delivery's upstream limits (pacing/pacer.h):
// whether an upstream may start a transaction now, holding mail whose
// windows are full, counting transactions, and the counters on disk.
#include <algorithm>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "upstream/delivery.h"
#include "upstream/session.h"

namespace spoolgate::upstream {

std::size_t Delivery::open_sessions(std::size_t u) const {
  return static_cast<std::size_t>(
      std::count_if(sessions_.begin(), sessions_.end(), [u](const Carrier* s) { return s->upstream() == u; }));
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
  return std::any_of(parked_.begin(), parked_.end(), [&](const Carrier* s) {
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

Delivery::Screen Delivery::screen(const spool::Record& rec, std::size_t upstream, std::int64_t* stamp) {
  *stamp = 0;
  Screen sc;
  sc.rcpts = carried(rec, upstream);
  if (sc.rcpts.empty()) {
    if (rec.all_done()) {
      sc.what = Screen::Do::Finish;
      return sc;
    }
    // Nothing here for this upstream (its route changed by a reload, or the
    // scheduler's hint was stale): back on its route, unattempted.
    reroute(rec);
    sc.what = Screen::Do::Skip;
    return sc;
  }
  const Upstream& u = s_.upstreams.at(upstream);
  if (std::uint64_t max_size = u.limits.max_message_size; max_size && rec.size > max_size) {
    // Queued before the limit was lowered (a reload), or routed here since:
    // the provider would refuse it after the upload.
    sc.what = Screen::Do::Fail;
    sc.failed = std::make_shared<spool::Record>(rec);
    std::string reply = "552 5.3.4 Message size " + std::to_string(rec.size) + " exceeds the limit of " + u.label() +
                        " (" + std::to_string(max_size) + " bytes, upstreams[].limits.max_message_size)";
    for (std::size_t i : sc.rcpts) {
      sc.failed->rcpt_state[i] = spool::Record::RcptState::Failed;
      sc.failed->rcpt_reply[i] = reply;
      sc.why.push_back("<" + rec.recipients[i] + ">: " + reply);
    }
    ++sc.failed->attempts;
    sc.failed->last_error = reply;
    return sc;
  }
  if (auto wait = admit(upstream, sc.rcpts.size(), stamp)) {
    // The account's window is full (its limits): the message waits for it,
    // unattempted.
    hold(rec.id, *wait, upstream);
    sc.what = Screen::Do::Skip;
  }
  return sc;
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

}  // namespace spoolgate::upstream
