// SPDX-License-Identifier: MIT
#include "app/status.h"

#include <algorithm>
#include <tuple>

namespace spoolgate::app {

status::Counts totals_of(const upstream::Stats& s) { return {s.delivered, s.deferred, s.failed}; }

const Snapshot::OAuth* oauth_of(const Snapshot& s, const std::string& upstream) {
  for (const auto& o : s.oauth)
    if (o.upstream == upstream) return &o;
  return nullptr;
}

std::pair<std::string, std::string> upstream_state(const upstream::SiteStats& st, const Snapshot::OAuth* oauth) {
  if (oauth && oauth->reauth)
    return {"reauth", "the OAuth consent is gone (" + oauth->reason + "): run spoolgate oauth login"};
  if (!st.misconfigured.empty()) return {"misconfigured", st.misconfigured};
  return {st.down ? "down" : st.failing_since ? "failing" : st.last_success ? "ok" : "idle", st.last_error};
}

status::Report make_report(const Snapshot& s, const status::History& history, std::vector<status::Queued> oldest) {
  status::Report r;
  r.now = s.now;
  r.started = s.started;
  r.hostname = s.hostname;
  r.version = SPOOLGATE_VERSION;
  Health h = check_health(s, true);
  r.flowing = h.ok;
  r.summary = h.reason;
  r.queue.messages = s.usage.messages;
  r.queue.bytes = s.usage.bytes;
  r.queue.in_delivery = s.in_delivery;
  r.queue.oldest_arrival = s.oldest_arrival;
  r.queue.over_watermark = s.over_watermark;
  r.queue.oldest = std::move(oldest);
  r.totals = totals_of(s.delivery);
  r.hours = history.hours(s.now);
  for (const auto& [name, st] : s.upstreams) {
    status::Upstream u;
    u.name = name;
    const Snapshot::OAuth* oauth = oauth_of(s, name);
    std::tie(u.state, u.last_error) = upstream_state(st, oauth);
    u.last_success = st.last_success;
    u.failing_since = st.failing_since;
    u.cert_not_after = st.cert_not_after;
    u.token_expires = oauth ? oauth->expires_at : 0;
    u.sessions = st.sessions;
    u.held = st.held;
    r.upstreams.push_back(std::move(u));
  }
  for (const auto& [name, seen] : s.inbound.seen) r.devices.push_back({name, seen.last, seen.messages});
  for (const auto& b : s.heartbeats) r.heartbeats.push_back({b.name, b.every, b.last, b.missed});
  r.alerts = s.alerts;
  r.notifications = {s.notify_pending, s.notify_sent, s.notify_dropped};
  std::stable_sort(r.devices.begin(), r.devices.end(),
                   [](const status::Device& a, const status::Device& b) { return a.last > b.last; });
  return r;
}

}  // namespace spoolgate::app
