// SPDX-License-Identifier: MIT
#include "app/metrics.h"

#include "app/request_server.h"
#include "core/cidr.h"
#include "core/text.h"
#include "core/units.h"

namespace spoolgate::app {
namespace {

class Exposition {
 public:
  // One metric family: HELP and TYPE once, then its samples.
  Exposition& family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    return *this;
  }
  template <class T>
  Exposition& sample(T v, const std::string& label = {}, const std::string& value = {}) {
    out_ += name_;
    if (!label.empty()) out_ += "{" + label + "=\"" + escape(value) + "\"}";
    out_ += " " + std::to_string(v) + "\n";
    return *this;
  }
  template <class T>
  Exposition& sample2(T v, const std::string& l1, const std::string& v1, const std::string& l2, const std::string& v2) {
    out_ += name_ + "{" + l1 + "=\"" + escape(v1) + "\"," + l2 + "=\"" + escape(v2) + "\"} " + std::to_string(v) + "\n";
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  static std::string escape(const std::string& v) {
    std::string o;
    for (char c : v) {
      if (c == '\\' || c == '"')
        o += {'\\', c};
      else if (c == '\n')
        o += "\\n";
      else
        o += c;
    }
    return o;
  }
  std::string name_;
  std::string out_;
};

std::uint64_t u(bool b) { return b ? 1 : 0; }

}  // namespace

std::string render_metrics(const Snapshot& s) {
  Exposition e;
  e.family("spoolgate_start_time_seconds", "gauge", "When the daemon started, unix seconds.").sample(s.started);
  e.family("spoolgate_messages_received_total", "counter", "Messages accepted from clients and made durable.")
      .sample(s.inbound.received);
  e.family("spoolgate_messages_received_by_device_total", "counter",
           "Messages accepted from a known device (a login, or a network named in devices), by its name.");
  for (const auto& [device, n] : s.inbound.received_by_device) e.sample(n, "device", device);
  e.family("spoolgate_messages_delivered_total", "counter", "Messages delivered upstream (to at least one recipient).")
      .sample(s.delivery.delivered);
  e.family("spoolgate_messages_deferred_total", "counter", "Delivery attempts that left a message queued for retry.")
      .sample(s.delivery.deferred);
  e.family("spoolgate_messages_failed_total", "counter", "Messages that failed permanently (moved to failed/).")
      .sample(s.delivery.failed);
  e.family("spoolgate_messages_bounced_total", "counter", "Delivery status notifications queued to senders.")
      .sample(s.delivery.bounced);
  e.family("spoolgate_duplicate_risk_total", "counter",
           "Deliveries whose outcome was unknown after the final dot (a duplicate may follow).")
      .sample(s.delivery.duplicate_risk);
  e.family("spoolgate_last_delivery_timestamp_seconds", "gauge", "When a message was last delivered (0: never).")
      .sample(s.delivery.last_delivered);
  e.family("spoolgate_inbound_connections_total", "counter", "Client connections accepted, refused ones included.")
      .sample(s.inbound.connections);
  e.family("spoolgate_inbound_refused_total", "counter",
           "Client connections turned away at connect (access, limits, spool full, shutdown).")
      .sample(s.inbound.refused);
  e.family("spoolgate_inbound_sessions", "gauge", "Client sessions open now.").sample(s.inbound_sessions);
  e.family("spoolgate_listener_certificate_expiry_seconds", "gauge",
           "Seconds until the certificate a TLS listener presents expires (negative: expired); by bound address.");
  for (const auto& [address, not_after] : s.listener_certificates) e.sample(not_after - s.now, "listen", address);
  e.family("spoolgate_inbound_tls_sessions_total", "counter",
           "TLS handshakes with clients, by the version agreed (TLSv1 and TLSv1.1: devices on a legacy listener).");
  for (const auto& [version, n] : s.inbound.tls_sessions) e.sample(n, "version", version);
  e.family("spoolgate_inbound_tls_failures_total", "counter",
           "TLS handshakes with clients that failed (no shared version or cipher, plaintext on a TLS port).")
      .sample(s.inbound.tls_failures);
  e.family("spoolgate_inbound_auth_total", "counter",
           "Client logins (AUTH) by result: ok, or failed (wrong password, unknown device).")
      .sample(s.inbound.auth_ok, "result", "ok")
      .sample(s.inbound.auth_failed, "result", "failed");
  e.family("spoolgate_queue_messages", "gauge", "Messages in the spool.").sample(s.usage.messages);
  e.family("spoolgate_queue_bytes", "gauge", "Bytes of messages in the spool.").sample(s.usage.bytes);
  e.family("spoolgate_queue_in_delivery", "gauge", "Messages being delivered now.").sample(s.in_delivery);
  e.family("spoolgate_queue_oldest_message_age_seconds", "gauge", "Age of the oldest queued message (0: empty).")
      .sample(s.oldest_arrival ? std::max<std::int64_t>(0, s.now - s.oldest_arrival) : std::int64_t{0});
  e.family("spoolgate_spool_free_bytes", "gauge", "Free space on the spool's filesystem.")
      .sample(s.usage.free_disk == UINT64_MAX ? std::uint64_t{0} : s.usage.free_disk);
  e.family("spoolgate_spool_watermark_state", "gauge",
           "0: below the watermarks; 1: over (MAIL gets 452 4.3.1); 2: far over (connections get 421 4.3.2).")
      .sample(std::uint64_t{s.far_over         ? 2u
                            : s.over_watermark ? 1u
                                               : 0u});
  e.family("spoolgate_spool_writable", "gauge", "1 when the spool's queue directory is writable.")
      .sample(u(s.spool_writable));

  e.family("spoolgate_upstream_up", "gauge", "0 while the upstream is in site backoff after a failure.");
  for (const auto& [name, st] : s.upstreams) e.sample(u(!st.down), "upstream", name);
  e.family("spoolgate_upstream_connections_total", "counter", "Sessions opened to the upstream.");
  for (const auto& [name, st] : s.upstreams) e.sample(st.connections, "upstream", name);
  e.family("spoolgate_upstream_tls_failures_total", "counter",
           "TLS handshakes with the upstream that failed (verification included).");
  for (const auto& [name, st] : s.upstreams) e.sample(st.tls_failures, "upstream", name);
  e.family("spoolgate_upstream_auth_failures_total", "counter", "Authentications the upstream refused.");
  for (const auto& [name, st] : s.upstreams) e.sample(st.auth_failures, "upstream", name);
  e.family("spoolgate_upstream_misconfigured", "gauge",
           "1 while the upstream refuses our account (credentials, SMTP AUTH, send-as, quota) until a delivery.");
  for (const auto& [name, st] : s.upstreams) e.sample(u(!st.misconfigured.empty()), "upstream", name);
  e.family("spoolgate_upstream_last_success_timestamp_seconds", "gauge",
           "When a session with the upstream last got through to sending mail (0: never).");
  for (const auto& [name, st] : s.upstreams) e.sample(st.last_success, "upstream", name);
  // Prometheus wants base units: seconds, divided by 86400 in a dashboard.
  e.family("spoolgate_upstream_certificate_expiry_seconds", "gauge",
           "Seconds until the upstream's certificate (seen at the last handshake) expires; negative once expired.");
  for (const auto& [name, st] : s.upstreams)
    if (st.cert_not_after) e.sample(st.cert_not_after - s.now, "upstream", name);
  e.family("spoolgate_upstream_sessions", "gauge", "Sessions open to the upstream now (held ones included).");
  for (const auto& [name, st] : s.upstreams) e.sample(st.sessions, "upstream", name);
  e.family("spoolgate_upstream_held_messages", "gauge",
           "Messages held because a window of the upstream's limits is full (or a quota reply), by upstream.");
  for (const auto& [name, st] : s.upstreams) e.sample(st.held, "upstream", name);
  // The limits and how much of each window is used now (only the limits
  // the upstream has).
  e.family("spoolgate_upstream_limit", "gauge", "The upstream's limit (upstreams[].limits, the provider's profile).");
  for (const auto& [name, st] : s.upstreams)
    for (const auto& [limit, n] : st.limits) e.sample2(n, "upstream", name, "limit", limit);
  e.family("spoolgate_upstream_limit_used", "gauge",
           "What the upstream's window of that limit holds now (max_connections: sessions open).");
  for (const auto& [name, st] : s.upstreams)
    for (const auto& [limit, n] : st.used) e.sample2(n, "upstream", name, "limit", limit);
  e.family("spoolgate_route_messages_total", "counter",
           "Messages queued for each route (routes[].upstream, a group by its upstreams' names).");
  for (const auto& [route, n] : s.routed) e.sample(n, "route", route);
  if (!s.oauth.empty()) {
    e.family("spoolgate_upstream_oauth_token_expiry_seconds", "gauge",
             "Seconds until the upstream's current OAuth2 access token expires (absent: no token).");
    for (const auto& o : s.oauth)
      if (o.expires_at) e.sample(o.expires_at - s.now, "upstream", o.upstream);
    e.family("spoolgate_upstream_oauth_reauth_required", "gauge",
             "1 while the upstream's OAuth2 consent is gone (invalid_grant, no sign-in): run spoolgate oauth login.");
    for (const auto& o : s.oauth) e.sample(u(o.reauth), "upstream", o.upstream);
  }
  if (!s.heartbeats.empty()) {
    e.family("spoolgate_heartbeat_last_seen_timestamp_seconds", "gauge",
             "When an expected sender or device (expect:) last sent mail (0: not since the daemon started).");
    for (const auto& h : s.heartbeats) e.sample(h.last, "expect", h.name);
    e.family("spoolgate_heartbeat_missed", "gauge",
             "1 while an expected sender or device (expect:) has been silent for longer than its period.");
    for (const auto& h : s.heartbeats) e.sample(u(h.missed), "expect", h.name);
  }
  e.family("spoolgate_alert_active", "gauge",
           "1 for each condition raised now (notify_thresholds), by event and what it is about.");
  for (const auto& a : s.alerts) e.sample2(1, "event", a.name, "key", a.key);
  e.family("spoolgate_notifications_pending", "gauge",
           "Notifications kept in the spool until their notify: target takes them.");
  e.sample(s.notify_pending);
  e.family("spoolgate_notifications_sent_total", "counter", "Notifications a notify: target took (2xx).");
  e.sample(s.notify_sent);
  e.family("spoolgate_notifications_dropped_total", "counter",
           "Notifications given up (refused for good by the target, older than 3 days, target removed).");
  e.sample(s.notify_dropped);
  return e.take();
}

Health check_health(const Snapshot& s, bool readiness) {
  std::string summary = "queue " + std::to_string(s.usage.messages) + " message(s)";
  // Held by an upstream's limits: not trouble (the provider would refuse
  // otherwise), but worth a word.
  for (const auto& [name, st] : s.upstreams)
    if (st.held) summary += ", " + std::to_string(st.held) + " held by the limits of " + name;
  // A silent device is news, not a reason to call the relay unhealthy.
  for (const auto& h : s.heartbeats)
    if (h.missed)
      summary +=
          "; heartbeat missed: " + h.name + " (expected every " + format_duration(Millis(h.every * 1000)) + ", " +
          (h.last ? "last " + format_duration(Millis((s.now - h.last) * 1000)) + " ago" : "none since the start") + ")";
  if (!readiness) return {true, "alive; " + summary};
  if (!s.listening) return {false, "not listening"};
  if (!s.spool_writable) return {false, "spool not writable"};
  if (s.far_over) return {false, "spool far over its watermark; clients are turned away"};
  if (s.upstreams.empty()) return {true, "ready; store-only (no upstream); " + summary};
  std::string worst;
  bool refused = false;  // the last one named refuses our account (reachable, but nothing goes out)
  for (const auto& [name, st] : s.upstreams) {
    // Consent for our OAuth client is gone: nothing goes out until a person
    // signs in again.
    const Snapshot::OAuth* lost = nullptr;
    for (const auto& o : s.oauth)
      if (o.upstream == name && o.reauth) lost = &o;
    if (lost) {
      worst = name + " needs a new OAuth sign-in (" + lost->reason + "): run spoolgate oauth login";
      refused = true;
      continue;
    }
    // Our account refused (credentials, SMTP AUTH off, quota): not ready at
    // once, whatever unreachable_after says; nothing goes out until fixed.
    if (!st.misconfigured.empty()) {
      worst = name + " misconfigured: " + st.misconfigured;
      refused = true;
      continue;
    }
    if (!st.failing_since || s.now - st.failing_since < s.unreachable_after) return {true, "ready; " + summary};
    worst = name + " failing for " + format_duration(Millis((s.now - st.failing_since) * 1000)) +
            (st.last_error.empty() ? "" : ": " + st.last_error);
    refused = false;
  }
  return {false,
          std::string(refused ? "no upstream delivering: " : "no upstream reachable: ") + worst + "; " + summary};
}

std::optional<std::string> header_value(const std::string& head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    std::size_t start = pos + 2, end = head.find("\r\n", start);
    std::string_view field = std::string_view(head).substr(start, end == std::string::npos ? end : end - start);
    std::size_t colon = field.find(':');
    if (colon != std::string_view::npos && iequals(field.substr(0, colon), name)) {
      std::string_view value = trim(field.substr(colon + 1));
      if (value.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;  // a bare CR or LF: malformed
      return std::string(value);
    }
    pos = end;
  }
  return std::nullopt;
}

bool host_is_ours(std::string_view host, std::string_view hostname) {
  auto port_ok = [](std::string_view port) {
    return !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (host.starts_with("[")) {  // [v6] or [v6]:port
    std::size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !port_ok(rest.substr(1)))) return false;
    return IpAddress::parse(host.substr(1, close - 1)).has_value();
  }
  std::size_t colon = host.rfind(':');
  std::string_view name = colon == std::string_view::npos ? host : host.substr(0, colon);
  if (colon != std::string_view::npos && !port_ok(host.substr(colon + 1))) return false;
  return IpAddress::parse(name).has_value() || iequals(name, "localhost") ||
         (!hostname.empty() && iequals(name, hostname));
}

bool wants_status(const std::string& head) {
  auto line = request_line(head);
  if (!line) return false;
  std::string target = line->target.substr(0, line->target.find('?'));
  return target == "/" || target == "/status.json";
}

std::string http_reply(const std::string& head, const Snapshot& s, const status::Report* report) {
  auto respond = [](const char* status, const char* type, const std::string& b, bool with_body,
                    const std::string& extra = {}) { return http_response(status, type, b, with_body, extra); };
  auto line = request_line(head);
  if (!line) return respond("400 Bad Request", "text/plain", "bad request\n", true);
  // DNS rebinding: a web page that points its own name at 127.0.0.1 can
  // make a browser fetch our pages, but the browser sends that name as
  // Host. Only an address, localhost or our own host name is served.
  if (auto host = header_value(head, "host"); host && !host_is_ours(*host, s.hostname))
    return respond("421 Misdirected Request", "text/plain", "unknown host\n", true);
  const std::string& method = line->method;
  std::string target = line->target.substr(0, line->target.find('?'));
  bool body = method == "GET";
  if (method != "GET" && method != "HEAD") return respond("405 Method Not Allowed", "text/plain", "GET only\n", true);
  if (target == "/metrics")
    return respond("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_metrics(s), body);
  if (target == "/healthz" || target == "/readyz") {
    Health h = check_health(s, target == "/readyz");
    return respond(h.ok ? "200 OK" : "503 Service Unavailable", "text/plain",
                   (h.ok ? "ok: " : "fail: ") + h.reason + "\n", body);
  }
  if ((target == "/" || target == "/status.json") && report) {
    if (target == "/status.json") return respond("200 OK", "application/json", status::to_json(*report), body);
    // No script, no external asset: a policy that allows none.
    return respond("200 OK", "text/html; charset=utf-8", status::to_html(*report), body,
                   "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
                   "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n");
  }
  return respond("404 Not Found", "text/plain", "not found; try /, /status.json, /metrics, /healthz or /readyz\n",
                 true);
}

}  // namespace spoolgate::app
