// SPDX-License-Identifier: MIT
#include "app/status.h"

#include <algorithm>

namespace spoolgate::app {

status::Counts totals_of(const upstream::Stats& s) { return {s.delivered, s.deferred, s.failed}; }

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
    const Snapshot::OAuth* oauth = nullptr;
    for (const auto& o : s.oauth)
      if (o.upstream == name) oauth = &o;
    if (oauth && oauth->reauth) {
      u.state = "reauth";
      u.last_error = "the OAuth consent is gone (" + oauth->reason + "): run spoolgate oauth login";
    } else if (!st.misconfigured.empty()) {
      u.state = "misconfigured";
      u.last_error = st.misconfigured;
    } else {
      u.state = st.down ? "down" : st.failing_since ? "failing" : st.last_success ? "ok" : "idle";
      u.last_error = st.last_error;
    }
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
  std::stable_sort(r.devices.begin(), r.devices.end(),
                   [](const status::Device& a, const status::Device& b) { return a.last > b.last; });
  return r;
}

}  // namespace spoolgate::app
