// SPDX-License-Identifier: MIT
// app/metrics: the pure renderers (exposition, health, the HTTP answer)
// from a Snapshot, without a daemon.
#include "app/metrics.h"

#include <doctest/doctest.h>

#include <string>

using namespace spoolgate;
using namespace spoolgate::app;

namespace {

Snapshot healthy() {
  Snapshot s;
  s.now = 1'000'000;
  s.started = 999'000;
  s.hostname = "relay.lan";
  s.listening = true;
  s.usage.messages = 3;
  s.usage.bytes = 4096;
  s.usage.free_disk = 1 << 30;
  upstream::SiteStats ok;
  ok.connections = 7;
  ok.last_success = 999'990;
  ok.cert_not_after = 1'000'000 + 86'400;
  s.upstreams.push_back({"smtps://smtp.example.com:465", ok});
  s.unreachable_after = 600;
  return s;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_SUITE("app/metrics") {
  TEST_CASE("every family has HELP and TYPE, samples carry the snapshot's figures and labels") {
    Snapshot s = healthy();
    s.inbound.received = 12;
    s.delivery.delivered = 11;
    s.oldest_arrival = s.now - 30;
    std::string m = render_metrics(s);
    CHECK(has_line(m, "# TYPE spoolgate_messages_received_total counter"));
    CHECK(has_line(m, "spoolgate_messages_received_total 12"));
    CHECK(has_line(m, "spoolgate_messages_delivered_total 11"));
    CHECK(has_line(m, "spoolgate_queue_messages 3"));
    CHECK(has_line(m, "spoolgate_queue_oldest_message_age_seconds 30"));
    CHECK(has_line(m, "spoolgate_upstream_up{upstream=\"smtps://smtp.example.com:465\"} 1"));
    CHECK(has_line(m, "spoolgate_upstream_connections_total{upstream=\"smtps://smtp.example.com:465\"} 7"));
    CHECK(has_line(m, "spoolgate_upstream_certificate_expiry_seconds{upstream=\"smtps://smtp.example.com:465\"} 86400"));
    CHECK(has_line(m, "spoolgate_spool_watermark_state 0"));
    // Every sample line belongs to a family announced before it.
    std::size_t pos = 0;
    std::string family;
    while (pos < m.size()) {
      std::size_t end = m.find('\n', pos);
      std::string line = m.substr(pos, end - pos);
      if (line.starts_with("# TYPE "))
        family = line.substr(7, line.find(' ', 7) - 7);
      else if (!line.starts_with("# "))
        CHECK_MESSAGE(line.starts_with(family), line);
      pos = end + 1;
    }
  }

  TEST_CASE("a label value with a quote, a backslash or a newline is escaped") {
    Snapshot s = healthy();
    s.upstreams[0].first = "a\"b\\c\nd";
    CHECK(render_metrics(s).find("{upstream=\"a\\\"b\\\\c\\nd\"}") != std::string::npos);
  }

  TEST_CASE("watermark state: 1 over, 2 far over; no certificate seen: no expiry sample") {
    Snapshot s = healthy();
    s.over_watermark = true;
    CHECK(has_line(render_metrics(s), "spoolgate_spool_watermark_state 1"));
    s.far_over = true;
    s.upstreams[0].second.cert_not_after = 0;
    std::string m = render_metrics(s);
    CHECK(has_line(m, "spoolgate_spool_watermark_state 2"));
    CHECK(m.find("spoolgate_upstream_certificate_expiry_seconds{") == std::string::npos);
  }

  TEST_CASE("liveness is the loop answering, whatever else is wrong") {
    Snapshot s = healthy();
    s.listening = false;
    s.spool_writable = false;
    CHECK(check_health(s, false).ok);
  }

  TEST_CASE("readiness: listening, a writable spool, not far over, and an upstream not failing too long") {
    CHECK(check_health(healthy(), true).ok);
    Snapshot s = healthy();
    s.listening = false;
    CHECK(check_health(s, true).reason == "not listening");
    s = healthy();
    s.spool_writable = false;
    CHECK_FALSE(check_health(s, true).ok);
    s = healthy();
    s.far_over = true;
    CHECK_FALSE(check_health(s, true).ok);
    s = healthy();
    s.upstreams[0].second.failing_since = s.now - 599;
    CHECK(check_health(s, true).ok);  // not yet unreachable_after
    s.upstreams[0].second.failing_since = s.now - 601;
    s.upstreams[0].second.last_error = "connection refused";
    Health h = check_health(s, true);
    CHECK_FALSE(h.ok);
    CHECK(h.reason.find("no upstream reachable") != std::string::npos);
    CHECK(h.reason.find("connection refused") != std::string::npos);
  }

  TEST_CASE("readiness: store-only is ready; a refused account is not, at once; a second upstream that works is") {
    Snapshot s = healthy();
    s.upstreams.clear();
    CHECK(check_health(s, true).ok);
    s = healthy();
    s.upstreams[0].second.misconfigured = "535 5.7.139 Authentication unsuccessful";
    Health h = check_health(s, true);
    CHECK_FALSE(h.ok);
    CHECK(h.reason.find("no upstream delivering") != std::string::npos);
    s.upstreams.push_back({"smtps://backup.example.com:465", upstream::SiteStats{}});
    CHECK(check_health(s, true).ok);
  }

  TEST_CASE("OAuth: token expiry and reauth-required per upstream; consent gone fails readiness with what to run") {
    Snapshot s = healthy();
    CHECK(render_metrics(s).find("oauth") == std::string::npos);  // no OAuth upstream: no families
    Snapshot::OAuth o;
    o.upstream = "smtps://smtp.example.com:465";
    o.state = "fresh";
    o.expires_at = s.now + 3000;
    s.oauth.push_back(o);
    std::string m = render_metrics(s);
    CHECK(has_line(m, "spoolgate_upstream_oauth_token_expiry_seconds{upstream=\"smtps://smtp.example.com:465\"} 3000"));
    CHECK(has_line(m, "spoolgate_upstream_oauth_reauth_required{upstream=\"smtps://smtp.example.com:465\"} 0"));
    CHECK(check_health(s, true).ok);
    s.oauth[0].reauth = true;
    s.oauth[0].expires_at = 0;
    s.oauth[0].reason = "invalid_grant: AADSTS70008";
    m = render_metrics(s);
    CHECK(has_line(m, "spoolgate_upstream_oauth_reauth_required{upstream=\"smtps://smtp.example.com:465\"} 1"));
    CHECK(m.find("spoolgate_upstream_oauth_token_expiry_seconds{") == std::string::npos);
    Health h = check_health(s, true);
    CHECK_FALSE(h.ok);
    CHECK(h.reason.find("needs a new OAuth sign-in (invalid_grant: AADSTS70008): run spoolgate oauth login") !=
          std::string::npos);
    CHECK(check_health(s, false).ok);  // alive all the same
  }

  TEST_CASE("HTTP: /metrics, /healthz and /readyz; HEAD without a body; other methods 405, other paths 404") {
    Snapshot s = healthy();
    std::string r = http_reply("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n", s);
    CHECK(r.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(r.find("spoolgate_queue_messages 3") != std::string::npos);
    CHECK(http_reply("GET /readyz HTTP/1.1\r\n", s).starts_with("HTTP/1.1 200 OK"));
    std::string head = http_reply("HEAD /healthz HTTP/1.1\r\n", s);
    CHECK(head.starts_with("HTTP/1.1 200 OK"));
    CHECK(head.ends_with("\r\n\r\n"));
    CHECK(http_reply("POST /metrics HTTP/1.1\r\n", s).starts_with("HTTP/1.1 405"));
    CHECK(http_reply("GET /nothing HTTP/1.1\r\n", s).starts_with("HTTP/1.1 404"));
    s.listening = false;
    CHECK(http_reply("GET /readyz?x=1 HTTP/1.1\r\n", s).starts_with("HTTP/1.1 503"));
  }

  TEST_CASE("HTTP: a Host that is not an address, localhost or our name is 421; a bare LF or CR is 400") {
    Snapshot s = healthy();
    CHECK(http_reply("GET /metrics HTTP/1.1\r\nHost: evil.example\r\n", s).starts_with("HTTP/1.1 421"));
    CHECK(http_reply("GET /metrics HTTP/1.1\r\nHost: RELAY.lan:9100\r\n", s).starts_with("HTTP/1.1 200"));
    CHECK(http_reply("GET /metrics HTTP/1.1\r\nHost: [::1]:9100\r\n", s).starts_with("HTTP/1.1 200"));
    CHECK(http_reply("GET /metrics HTTP/1.1\r\nHost: [::1]x\r\n", s).starts_with("HTTP/1.1 421"));
    CHECK(http_reply("GET /metrics HTTP/1.1\nHost: x\r\n", s).starts_with("HTTP/1.1 400"));
    CHECK(http_reply("GET /metrics HTTP/1.1\r\nHost: a\rb\r\n", s).starts_with("HTTP/1.1 400"));
    CHECK(http_reply("GARBAGE\r\n", s).starts_with("HTTP/1.1 400"));
  }
}
