// SPDX-License-Identifier: MIT
// pacing/pacer: sliding windows, the day windows by minute, when each
// opens again, and the counters' text form.
#include "pacing/pacer.h"

#include <doctest/doctest.h>

using namespace spoolgate::pacing;

namespace {
constexpr std::int64_t kT0 = 1'790'000'000'000;  // some minute boundary or other; unix ms
constexpr std::int64_t kMin = 60'000, kDay = 86'400'000;
}  // namespace

TEST_SUITE("pacing/pacer") {
  TEST_CASE("no limits: never waits") {
    Pacer p;
    for (int i = 0; i < 1000; ++i) p.count(kT0, 5);
    CHECK_FALSE(p.check(kT0, 1000));
    CHECK_FALSE(p.limits().paced());
  }
  TEST_CASE("messages_per_minute is a sliding minute: never more than N starts in any 60 s") {
    Pacer p(Limits{.messages_per_minute = 3});
    p.count(kT0, 1);
    p.count(kT0 + 10'000, 1);
    CHECK_FALSE(p.check(kT0 + 20'000, 1));
    p.count(kT0 + 20'000, 1);
    auto w = p.check(kT0 + 30'000, 1);
    REQUIRE(w);
    CHECK(w->until_ms == kT0 + kMin);  // the first start leaves the window
    CHECK(w->reason == "messages_per_minute 3 reached");
    CHECK_FALSE(p.check(kT0 + kMin, 1));
    p.count(kT0 + kMin, 1);
    REQUIRE(p.check(kT0 + kMin, 1));
    CHECK(p.check(kT0 + kMin, 1)->until_ms == kT0 + 10'000 + kMin);
    CHECK(p.usage(kT0 + kMin).last_minute == 3);
  }
  TEST_CASE("restamp: a start counted when the provider took it, later than it began") {
    Pacer p(Limits{.messages_per_minute = 2, .recipients_per_day = 100});
    std::int64_t a = p.count(kT0, 3);
    std::int64_t b = p.count(kT0 + 1000, 4);
    CHECK(a == kT0);
    p.restamp(a, 3, kT0 + 30'000);  // its last reply came 30 s on
    REQUIRE(p.check(kT0 + 40'000, 1));
    CHECK(p.check(kT0 + 40'000, 1)->until_ms == kT0 + 1000 + kMin);  // b is now the older one
    p.restamp(b, 4, kT0 + 50'000);
    CHECK(p.check(kT0 + 55'000, 1)->until_ms == kT0 + 30'000 + kMin);
    CHECK(p.usage(kT0 + 55'000).recipients_day == 7);
    // A day count moves to the minute it was taken in.
    Pacer d(Limits{.recipients_per_day = 100});
    std::int64_t c = d.count(kT0, 5);
    d.restamp(c, 5, kT0 + 6 * kMin);
    CHECK(d.day_window_opens(kT0 + 6 * kMin) == ((kT0 + 6 * kMin) / kMin + 1) * kMin + kDay);
    CHECK(d.usage(kT0 + 6 * kMin).recipients_day == 5);
    d.restamp(12345, 1, kT0 + 7 * kMin);  // unknown: nothing
    CHECK(d.usage(kT0 + 7 * kMin).recipients_day == 5);
    // The clock stepped back: a start is counted no earlier than the last.
    CHECK(p.count(kT0, 1) == kT0 + 50'000);
  }
  TEST_CASE("messages_per_second") {
    Pacer p(Limits{.messages_per_second = 1});
    p.count(kT0, 1);
    REQUIRE(p.check(kT0 + 999, 1));
    CHECK(p.check(kT0 + 999, 1)->until_ms == kT0 + 1000);
    CHECK_FALSE(p.check(kT0 + 1000, 1));
  }
  TEST_CASE("recipients_per_day: the oldest minutes leave until the transaction fits") {
    Pacer p(Limits{.recipients_per_day = 100});
    p.count(kT0, 40);
    p.count(kT0 + 5 * kMin, 50);
    CHECK_FALSE(p.check(kT0 + 6 * kMin, 10));
    auto w = p.check(kT0 + 6 * kMin, 11);
    REQUIRE(w);
    CHECK(w->reason == "recipients_per_day 100 reached");
    // The first minute's 40 leave the window 24 h after that minute's end.
    CHECK(w->until_ms == (kT0 / kMin + 1) * kMin + kDay);
    w = p.check(kT0 + 6 * kMin, 70);  // the second minute's 50 must leave too
    REQUIRE(w);
    CHECK(w->until_ms == ((kT0 + 5 * kMin) / kMin + 1) * kMin + kDay);
    // A transaction larger than the limit waits for an empty window.
    CHECK(p.check(kT0 + 6 * kMin, 500)->until_ms == w->until_ms);
    CHECK(p.usage(kT0 + 6 * kMin).recipients_day == 90);
    CHECK(p.day_window_opens(kT0) == (kT0 / kMin + 1) * kMin + kDay);
    CHECK_FALSE(p.check(w->until_ms, 100));  // (time goes forward: what left the window is gone)
    CHECK(p.usage(w->until_ms).recipients_day == 0);
  }
  TEST_CASE("messages_per_day and the latest of several full windows") {
    Pacer p(Limits{.messages_per_minute = 1, .messages_per_day = 2});
    p.count(kT0, 1);
    p.count(kT0 + 2 * kMin, 1);
    auto w = p.check(kT0 + 2 * kMin + 1, 1);
    REQUIRE(w);
    CHECK(w->reason == "messages_per_day 2 reached");  // later than the minute's
  }
  TEST_CASE("a quota the provider reported blocks until its time") {
    Pacer p;
    p.block_until(kT0 + 3600'000, "quota reply: 554 5.2.0 SubmissionQuotaExceeded");
    REQUIRE(p.check(kT0, 1));
    CHECK(p.check(kT0, 1)->reason.starts_with("quota reply"));
    CHECK_FALSE(p.check(kT0 + 3600'000, 1));
  }
  TEST_CASE("the counters survive encode/decode; what left the windows is dropped") {
    Limits l{.messages_per_minute = 2, .recipients_per_day = 10};
    Pacer p(l);
    p.count(kT0, 3);
    p.count(kT0 + 1000, 4);
    p.block_until(kT0 + 120'000, "quota reply: 550 5.4.5 Daily user sending limit exceeded");
    Pacer q(l);
    REQUIRE(q.decode(p.encode(), kT0 + 2000));
    CHECK(q.encode() == p.encode());
    CHECK(q.usage(kT0 + 2000).recipients_day == 7);
    CHECK(q.check(kT0 + 2000, 1)->until_ms == kT0 + 120'000);
    Pacer later(l);
    REQUIRE(later.decode(p.encode(), kT0 + 2 * kDay));
    CHECK(later.usage(kT0 + 2 * kDay).recipients_day == 0);
    CHECK_FALSE(later.check(kT0 + 2 * kDay, 10));
    for (const char* bad :
         {"", "SPOOLGATE-PACING 2\n", "SPOOLGATE-PACING 1\nx 1\n", "SPOOLGATE-PACING 1\nd 5 1\n",
          "SPOOLGATE-PACING 1\nm 5\nm 4\n", "SPOOLGATE-PACING 1\nm 5", "SPOOLGATE-PACING 1\nd 5 a b\n",
          // Times past the year 9999 (a corrupted file) are refused, not overflowed.
          "SPOOLGATE-PACING 1\nd 2000832329832334 1 1\n", "SPOOLGATE-PACING 1\ns 9223372036854775807\n",
          "SPOOLGATE-PACING 1\nb 9223372036854775807 quota\n"}) {
      CAPTURE(bad);
      Pacer r(l);
      CHECK_FALSE(r.decode(bad, kT0));
      CHECK(r.encode() == "SPOOLGATE-PACING 1\n");
    }
    Pacer empty(l);
    CHECK(empty.decode("SPOOLGATE-PACING 1\n", kT0));
  }
}
