// SPDX-License-Identifier: MIT
// app/metrics: what the daemon reports about itself, in three forms.
//
// A Snapshot is taken on the loop from the listener, the spool usage, the
// scheduler and delivery. render_metrics() turns it into the Prometheus text
// exposition format (version 0.0.4) for GET /metrics; check_health() decides
// liveness and readiness for GET /healthz, GET /readyz and `spoolgate health`;
// http_reply() answers one HTTP request head. Pure functions: the wiring is in
// daemon.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "listener/inbound.h"
#include "spool/accounting.h"
#include "status/report.h"
#include "upstream/delivery.h"

namespace spoolgate::app {

struct Snapshot {
  std::int64_t now = 0;      // unix seconds
  std::int64_t started = 0;  // unix seconds
  std::string hostname;      // ours: a Host header naming it is served
  listener::Counters inbound;
  std::uint64_t inbound_sessions = 0;
  std::vector<std::pair<std::string, std::int64_t>> listener_certificates;  // (address, notAfter unix s)
  spool::Usage usage;
  bool over_watermark = false;  // MAIL gets 452 4.3.1
  bool far_over = false;        // connections get 421 4.3.2
  bool listening = false;
  bool spool_writable = true;
  std::uint64_t in_delivery = 0;
  std::int64_t oldest_arrival = 0;  // unix seconds, 0: queue empty
  upstream::Stats delivery;
  std::vector<std::pair<std::string, upstream::SiteStats>> upstreams;
  std::map<std::string, std::uint64_t, std::less<>> routed;  // messages queued per route key
  std::int64_t unreachable_after = 600;                      // seconds
  // The upstreams whose tokens spoolgate gets itself (by upstream name).
  struct OAuth {
    std::string upstream;
    std::string state;            // oauth::to_string(Refresher::State)
    std::int64_t expires_at = 0;  // unix seconds of the current token (0: none)
    bool reauth = false;          // consent is gone: `spoolgate oauth login`
    std::string reason;           // the endpoint's last verdict, when not ok
  };
  std::vector<OAuth> oauth;
  // expect: heartbeats. last: the last message (0: none since the start);
  // missed: silent for longer than every (counted from the start when none
  // came since).
  struct Heartbeat {
    std::string name;
    std::int64_t every = 0;  // seconds
    std::int64_t last = 0;
    bool missed = false;
  };
  std::vector<Heartbeat> heartbeats;
  // app/alerting: the conditions raised now, and the notifications.
  std::vector<status::Alert> alerts;
  std::uint64_t notify_pending = 0, notify_sent = 0, notify_dropped = 0;
};

std::string render_metrics(const Snapshot& s);

struct Health {
  bool ok = true;
  std::string reason;  // one line
};
// live: the loop answered, which is what liveness means. ready: listening,
// spool writable and not far over its watermark, and at least one upstream
// not failing for longer than unreachable_after, not refusing our account
// and not waiting for a new OAuth sign-in (store-only is ready).
Health check_health(const Snapshot& s, bool readiness);

// The answer to one HTTP request head (request line and headers, without the
// blank line): /metrics, /healthz, /readyz, and the status page (/) and
// /status.json from `report` (app/status.h); GET and HEAD only.
std::string http_reply(const std::string& head, const Snapshot& s, const status::Report* report = nullptr);
// Whether the request asks for the status page or /status.json (then the
// caller makes the report first; it reads the oldest messages' records).
bool wants_status(const std::string& head);
// The value of header `name` (case-insensitive) in an HTTP request head.
std::optional<std::string> header_value(const std::string& head, std::string_view name);
// Host: an IP address or [v6] (with an optional port), localhost, or our
// own host name; anything else is another site's name (DNS rebinding).
bool host_is_ours(std::string_view host, std::string_view hostname);

}  // namespace spoolgate::app
