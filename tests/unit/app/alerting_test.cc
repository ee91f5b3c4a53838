// SPDX-License-Identifier: MIT
// app/alerting: which conditions a snapshot holds (thresholds, undecided
// upstreams, certificates, heartbeats, the crash loop), the failed
// message's condition, and the unclean-stop marks.
#include "app/alerting.h"

#include <doctest/doctest.h>

#include <fstream>

#include "../support/temp_dir.h"

using namespace spoolgate;
using namespace spoolgate::app;

namespace {

constexpr std::int64_t kNow = 2'000'000;

Snapshot calm() {
  Snapshot s;
  s.now = kNow;
  s.spool_writable = true;
  upstream::SiteStats ok;
  ok.last_success = kNow - 5;
  ok.cert_not_after = kNow + 90 * std::int64_t{86'400};
  s.upstreams.push_back({"m365", ok});
  return s;
}

std::vector<std::string> names(const std::vector<notify::Condition>& cs) {
  std::vector<std::string> out;
  out.reserve(cs.size());
  for (const auto& c : cs) out.push_back(c.name + " " + c.key);
  return out;
}

}  // namespace

TEST_SUITE("app/alerting") {
  TEST_CASE("a calm relay holds no condition; each trouble past its threshold is one") {
    AlertThresholds t;
    Keys undecided;
    CHECK(conditions_of(calm(), t, {}, &undecided).empty());
    CHECK(undecided.empty());

    Snapshot s = calm();
    s.upstreams[0].second.failing_since = kNow - 599;
    s.upstreams[0].second.last_error = "connection refused";
    CHECK(conditions_of(s, t, {}, &undecided).empty());      // not yet the threshold
    CHECK(undecided.count({"upstream_down", "m365"}) == 1);  // but not ended either
    s.upstreams[0].second.failing_since = kNow - 600;
    auto c = conditions_of(s, t, {});
    REQUIRE(c.size() == 1);
    CHECK(c[0].name == "upstream_down");
    CHECK(c[0].text == "connection refused");

    s = calm();
    s.upstreams[0].second.misconfigured = "535 5.7.139 SmtpClientAuthentication is disabled";
    CHECK(names(conditions_of(s, t, {})) == std::vector<std::string>{"upstream_down m365"});
    s = calm();
    s.oauth.push_back({"m365", "failed", 0, true, "invalid_grant"});
    c = conditions_of(s, t, {});
    REQUIRE(c.size() == 1);
    CHECK(c[0].title == "upstream m365 needs a new OAuth sign-in");

    s = calm();
    s.oldest_arrival = kNow - 3600;
    s.over_watermark = true;
    s.listener_certificates.push_back({"0.0.0.0:465", kNow + 14 * std::int64_t{86'400}});
    s.upstreams[0].second.cert_not_after = kNow - 10;
    s.heartbeats.push_back({"ups@lan", 86'400, 0, true});
    s.heartbeats.push_back({"nas", 86'400, kNow - 10, false});
    CHECK(names(conditions_of(s, t, {})) == std::vector<std::string>{"queue_stale queue", "spool_full spool",
                                                                     "expiring listen 0.0.0.0:465",
                                                                     "expiring upstream m365", "heartbeat ups@lan"});
    s.spool_writable = false;
    c = conditions_of(s, t, {});
    CHECK(c[1].title == "the spool cannot be written: new mail is refused");
  }

  TEST_CASE("an upstream not tried yet is undecided, and so is its certificate") {
    Snapshot s = calm();
    s.upstreams[0].second = upstream::SiteStats{};
    Keys undecided;
    CHECK(conditions_of(s, AlertThresholds{}, {}, &undecided).empty());
    CHECK(undecided == Keys{{"expiring", "upstream m365"}, {"upstream_down", "m365"}});
  }

  TEST_CASE("more than crash_loop unclean stops within the last hour") {
    AlertThresholds t;  // crash_loop 3
    std::vector<std::int64_t> unclean{kNow - 4000, kNow - 3700, kNow - 100, kNow - 50};
    CHECK(conditions_of(calm(), t, unclean).empty());  // two within the hour
    unclean.push_back(kNow - 10);
    unclean.push_back(kNow);
    auto c = conditions_of(calm(), t, unclean);
    REQUIRE(c.size() == 1);
    CHECK(c[0].name == "crash_loop");
    CHECK(c[0].fields == std::vector<std::pair<std::string, std::string>>{{"unclean_stops", "4"}});
  }

  TEST_CASE("a failed message's condition names its failed recipients, never its content") {
    spool::Record r;
    r.id = "K1";
    r.sender = "";
    r.recipients = {"a@x", "b@x", "c@x"};
    r.rcpt_state = {spool::Record::RcptState::Failed, spool::Record::RcptState::Delivered,
                    spool::Record::RcptState::Failed};
    auto c = failed_condition(r, "550 5.1.1 no such user");
    CHECK(c.key == "K1");
    CHECK(c.title == "a message from <> failed for good");
    CHECK(c.fields ==
          std::vector<std::pair<std::string, std::string>>{
              {"message", "K1"}, {"sender", "<>"}, {"recipients", "a@x, c@x"}, {"reason", "550 5.1.1 no such user"}});
  }

  TEST_CASE("a start that finds the running mark counts an unclean stop; a clean stop removes it") {
    TempDir t;
    std::string dir = (t.path / "notify").string();
    auto first = note_start(dir, 10'000);
    REQUIRE(first);
    CHECK(first->empty());
    auto second = note_start(dir, 10'100);  // no clean stop between
    REQUIRE(second);
    CHECK(*second == std::vector<std::int64_t>{10'100});
    note_clean_stop(dir);
    auto third = note_start(dir, 10'200);
    REQUIRE(third);
    CHECK(*third == std::vector<std::int64_t>{10'100});
    auto later = note_start(dir, 10'100 + 3600);  // an hour on: forgotten; unclean again
    REQUIRE(later);
    CHECK(*later == std::vector<std::int64_t>{10'100 + 3600});
  }
}
