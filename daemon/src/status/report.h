// SPDX-License-Identifier: MIT
// status/report: what the status page, GET /status.json and `spoolgate
// status` say about the relay: is mail flowing, and if not, why. Per
// upstream its state and last error; the queue (count, bytes, oldest age,
// the oldest messages with their last error); deliveries, deferrals and
// failures per hour over 24 hours; the devices seen and the heartbeats
// expected of them (config expect:); the alerts raised now. No message content, no
// sender and no secret: message ids, device names and client addresses (a
// last error is the upstream's reply, which may name a recipient).
//
// The JSON's schema is daemon/src/status/status.schema.json ("version": 1;
// times are unix seconds, 0 for never). Pure: app/status.cc fills a Report
// from the daemon's state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status/history.h"

namespace spoolgate::status {

struct Upstream {
  std::string name;
  // ok: delivered last; idle: nothing tried yet; failing: failures since
  // the last success; down: failing and resting (backoff); misconfigured:
  // our account is refused (credentials, permission, quota); reauth: the
  // OAuth consent is gone (`spoolgate oauth login`).
  std::string state;
  std::string last_error;
  std::int64_t last_success = 0, failing_since = 0;
  std::int64_t cert_not_after = 0;  // the upstream's certificate (SMTP), 0: unknown
  std::int64_t token_expires = 0;   // the OAuth token in use, 0: none
  std::uint64_t sessions = 0, held = 0;
};

struct Queued {
  std::string id;
  std::int64_t arrived = 0;
  std::uint64_t attempts = 0;
  std::string last_error;
};

struct Device {
  std::string name;  // a device's name, or the client address of mail from no named device
  std::int64_t last = 0;
  std::uint64_t messages = 0;
};

struct Heartbeat {
  std::string name;                  // the expected sender or device
  std::int64_t every = 0, last = 0;  // seconds; last 0: none since the start
  bool missed = false;
};

// A condition raised now (app/alerting.h): upstream_down, queue_stale,
// spool_full, expiring, heartbeat, crash_loop.
struct Alert {
  std::string name, key, title;
  std::int64_t since = 0;
};

struct Report {
  std::int64_t now = 0, started = 0;
  std::string hostname, version;
  bool flowing = true;  // the readiness verdict (as /readyz)
  std::string summary;  // its one line
  struct {
    std::uint64_t messages = 0, bytes = 0, in_delivery = 0;
    std::int64_t oldest_arrival = 0;  // 0: empty
    bool over_watermark = false;
    std::vector<Queued> oldest;  // up to ten, oldest first
  } queue;
  Counts totals;  // since the start
  std::vector<Hour> hours;
  std::vector<Upstream> upstreams;
  std::vector<Device> devices;  // most recent first
  std::vector<Heartbeat> heartbeats;
  std::vector<Alert> alerts;  // oldest first
  struct {
    std::uint64_t pending = 0, sent = 0, dropped = 0;  // notify: targets
  } notifications;
};

std::string to_json(const Report& r);
// For `spoolgate status`: a few lines a person reads at a glance.
std::string to_text(const Report& r);
// The page (status/page.cc): one HTML document, no script, no external
// asset; it reloads itself every `refresh_s` seconds.
std::string to_html(const Report& r, int refresh_s = 15);

// The hours' counts added up: the last 24 hours.
Counts last_day(const Report& r);

// "3m", "2h", "4d": how long ago (or for how long) in one unit.
std::string ago(std::int64_t seconds);

}  // namespace spoolgate::status
