// SPDX-License-Identifier: MIT
// The status page (status/report.h: to_html): one document, inline CSS and
// an inline SVG chart, no script, no external asset; every figure carries
// an id or a data- attribute so that tests (and scripts that prefer HTML)
// find it. Every text from the daemon's state is escaped.
#include <algorithm>

#include "status/report.h"

namespace spoolgate::status {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string when(std::int64_t now, std::int64_t t) { return t ? esc(ago(now - t)) + " ago" : "never"; }

std::string chart(const std::vector<Hour>& hours) {
  std::uint64_t most = 1;
  for (const auto& h : hours) most = std::max<std::uint64_t>(most, h.n.delivered + h.n.deferred + h.n.failed);
  const int w = 20, gap = 4, height = 120;
  std::string svg = "<svg id=\"chart\" role=\"img\" aria-label=\"messages per hour, last 24 hours\" width=\"" +
                    std::to_string(hours.size() * (w + gap)) + "\" height=\"" + std::to_string(height + 2) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\">";
  int x = 0;
  for (const auto& h : hours) {
    int y = height;
    auto bar = [&](std::uint64_t n, const char* cls) {
      if (!n) return;
      int hh = std::max(1, static_cast<int>(n * height / most));
      y -= hh;
      svg += "<rect class=\"" + std::string(cls) + "\" x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) +
             "\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(hh) + "\"/>";
    };
    bar(h.n.delivered, "delivered");
    bar(h.n.deferred, "deferred");
    bar(h.n.failed, "failed");
    svg += "<title>" + std::to_string(h.n.delivered) + " delivered, " + std::to_string(h.n.deferred) + " deferred, " +
           std::to_string(h.n.failed) + " failed</title>";
    x += w + gap;
  }
  return svg + "</svg>";
}

}  // namespace

std::string to_html(const Report& r, int refresh_s) {
  Counts day = last_day(r);
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"" +
      std::to_string(refresh_s) + "\"><title>spoolgate on " + esc(r.hostname) +
      "</title><style>"
      "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}"
      "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}"
      "table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}"
      ".verdict{padding:.6em 1em;border-radius:4px;font-weight:bold}"
      ".yes{background:#dff3e0}.no{background:#fbdcdc}"
      ".state-ok{color:#17702a}.state-idle{color:#555}.state-failing,.state-down,.state-misconfigured,"
      ".state-reauth{color:#b00020;font-weight:bold}"
      "rect.delivered{fill:#3a9d4f}rect.deferred{fill:#e0a030}rect.failed{fill:#c8303a}"
      "small{color:#666}</style></head><body>\n";
  o += "<h1>spoolgate on " + esc(r.hostname) + "</h1>\n";
  o += "<p id=\"verdict\" class=\"verdict " + std::string(r.flowing ? "yes" : "no") + "\" data-flowing=\"" +
       (r.flowing ? "true" : "false") + "\">" + (r.flowing ? "Mail is flowing" : "Mail is not flowing") + ": " +
       esc(r.summary) + "</p>\n";
  o += "<h2>Alerts</h2>\n";
  if (r.alerts.empty())
    o += "<p id=\"alerts-none\">none</p>\n";
  else {
    o += "<table id=\"alerts\"><tr><th>event</th><th>about</th><th>what</th><th>since</th></tr>\n";
    for (const auto& a : r.alerts)
      o += "<tr data-alert=\"" + esc(a.name) + "\" data-key=\"" + esc(a.key) + "\"><td class=\"state state-down\">" +
           esc(a.name) + "</td><td>" + esc(a.key) + "</td><td>" + esc(a.title) + "</td><td>" + when(r.now, a.since) +
           "</td></tr>\n";
    o += "</table>\n";
  }
  if (r.notifications.pending)
    o += "<p><span id=\"notify-pending\">" + std::to_string(r.notifications.pending) +
         "</span> notification(s) waiting for their target.</p>\n";
  o += "<h2>Queue</h2>\n<p><span id=\"queue-messages\">" + std::to_string(r.queue.messages) +
       "</span> message(s), <span id=\"queue-bytes\">" + std::to_string(r.queue.bytes) + "</span> bytes, " +
       "<span id=\"queue-in-delivery\">" + std::to_string(r.queue.in_delivery) + "</span> being delivered";
  if (r.queue.oldest_arrival) o += "; the oldest arrived " + when(r.now, r.queue.oldest_arrival);
  if (r.queue.over_watermark) o += "; <strong>over the watermark: new mail gets 452</strong>";
  o += ".</p>\n";
  if (!r.queue.oldest.empty()) {
    o += "<table id=\"oldest\"><tr><th>message</th><th>arrived</th><th>attempts</th><th>last error</th></tr>\n";
    for (const auto& m : r.queue.oldest)
      o += "<tr data-id=\"" + esc(m.id) + "\"><td>" + esc(m.id) + "</td><td>" + when(r.now, m.arrived) + "</td><td>" +
           std::to_string(m.attempts) + "</td><td>" + esc(m.last_error) + "</td></tr>\n";
    o += "</table>\n";
  }
  o += "<h2>Last 24 hours</h2>\n<p><span id=\"day-delivered\">" + std::to_string(day.delivered) +
       "</span> delivered, <span id=\"day-deferred\">" + std::to_string(day.deferred) +
       "</span> deferred, <span id=\"day-failed\">" + std::to_string(day.failed) +
       "</span> failed <small>(per hour, oldest left; since the daemon started " + when(r.now, r.started) +
       ")</small></p>\n" + chart(r.hours) + "\n";
  o += "<h2>Upstreams</h2>\n<table id=\"upstreams\"><tr><th>upstream</th><th>state</th><th>last delivery</th>"
       "<th>sessions</th><th>held</th><th>last error</th></tr>\n";
  for (const auto& u : r.upstreams)
    o += "<tr data-upstream=\"" + esc(u.name) + "\"><td>" + esc(u.name) + "</td><td class=\"state state-" +
         esc(u.state) + "\">" + esc(u.state) + "</td><td>" + when(r.now, u.last_success) + "</td><td>" +
         std::to_string(u.sessions) + "</td><td>" + std::to_string(u.held) + "</td><td>" + esc(u.last_error) +
         "</td></tr>\n";
  o += "</table>\n";
  o += "<h2>Devices seen</h2>\n";
  if (r.devices.empty())
    o += "<p>none since the daemon started</p>\n";
  else {
    o += "<table id=\"devices\"><tr><th>device or address</th><th>messages</th><th>last message</th></tr>\n";
    for (const auto& d : r.devices)
      o += "<tr data-device=\"" + esc(d.name) + "\"><td>" + esc(d.name) + "</td><td>" + std::to_string(d.messages) +
           "</td><td>" + when(r.now, d.last) + "</td></tr>\n";
    o += "</table>\n";
  }
  if (!r.heartbeats.empty()) {
    o += "<h2>Heartbeats</h2>\n<table id=\"heartbeats\"><tr><th>expected</th><th>every</th><th>last message</th>"
         "<th>state</th></tr>\n";
    for (const auto& h : r.heartbeats)
      o += "<tr data-heartbeat=\"" + esc(h.name) + "\"><td>" + esc(h.name) + "</td><td>" + esc(ago(h.every)) +
           "</td><td>" + (h.last ? when(r.now, h.last) : std::string("none since the start")) +
           "</td><td class=\"state " + (h.missed ? "state-down\">missed" : "state-ok\">ok") + "</td></tr>\n";
    o += "</table>\n";
  }
  o += "<p><small>spoolgate " + esc(r.version) +
       "; the same as JSON: <a href=\"/status.json\">/status.json</a>; "
       "<a href=\"/metrics\">/metrics</a>. This page reloads every " +
       std::to_string(refresh_s) + " s.</small></p>\n</body></html>\n";
  return o;
}

}  // namespace spoolgate::status
