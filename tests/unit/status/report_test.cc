// SPDX-License-Identifier: MIT
// status/history and status/report: the hours of the chart, and what the
// page, the JSON and the text say (and never run as markup).
#include "status/report.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace spoolgate;

TEST_SUITE("status") {
  TEST_CASE("history: what the totals grew by goes to its hour; 24 hours, the oldest dropped") {
    status::History h;
    const std::int64_t t0 = 1'800'000'000 - 1'800'000'000 % 3600;  // a whole hour
    h.sample(t0 + 10, {5, 1, 0});
    h.sample(t0 + 20, {7, 1, 1});
    h.sample(t0 + 3600, {9, 2, 1});
    auto hours = h.hours(t0 + 3600 + 5);
    REQUIRE(hours.size() == 24);
    CHECK(hours.back().start == t0 + 3600);
    CHECK(hours.back().n.delivered == 2);
    CHECK(hours.back().n.deferred == 1);
    CHECK(hours[22].start == t0);
    CHECK(hours[22].n.delivered == 7);
    CHECK(hours[22].n.failed == 1);
    CHECK(hours[0].n.delivered == 0);
    // Totals that went down (their owner started afresh) are a new base.
    h.sample(t0 + 3700, {1, 0, 0});
    CHECK(h.hours(t0 + 3700).back().n.delivered == 3);
    // A day later the first hour is gone.
    h.sample(t0 + 25 * 3600, {1, 0, 0});
    for (const auto& x : h.hours(t0 + 25 * 3600)) CHECK(x.n.delivered == 0);
  }

  TEST_CASE("the report as JSON, text and HTML") {
    status::Report r;
    r.now = 1'800'000'000;
    r.started = r.now - 7200;
    r.hostname = "relay<1>";
    r.version = "0.1.0";
    r.flowing = false;
    r.summary = "no upstream reachable: m365 failing for 12m";
    r.queue.messages = 2;
    r.queue.bytes = 2048;
    r.queue.oldest_arrival = r.now - 600;
    r.queue.oldest = {{"K1", r.now - 600, 3, "451 4.3.0 <try later> & again"}};
    status::History h;
    h.sample(r.now, {4, 3, 1});
    r.hours = h.hours(r.now);
    r.upstreams = {{"m365", "down", "connection refused", r.now - 3600, r.now - 720, 0, 0, 0, 0}};
    r.devices = {{"<script>alert(1)</script>", r.now - 60, 5}};

    auto j = nlohmann::json::parse(status::to_json(r));
    CHECK(j["version"] == 1);
    CHECK(j["flowing"] == false);
    CHECK(j["queue"]["oldest_age_s"] == 600);
    CHECK(j["queue"]["oldest"][0]["last_error"] == "451 4.3.0 <try later> & again");
    CHECK(j["hours"].size() == 24);
    CHECK(j["hours"][23]["delivered"] == 4);
    CHECK(j["upstreams"][0]["state"] == "down");
    CHECK(j["devices"][0]["messages"] == 5);

    std::string text = status::to_text(r);
    CHECK(text.starts_with("MAIL IS NOT FLOWING: no upstream reachable"));
    CHECK(text.find("upstream m365: down, last delivery 1h ago, failing for 12m: connection refused") !=
          std::string::npos);
    CHECK(text.find("last 24 hours: 4 delivered, 3 deferred, 1 failed") != std::string::npos);

    std::string page = status::to_html(r, 15);
    CHECK(page.find("<meta http-equiv=\"refresh\" content=\"15\">") != std::string::npos);
    CHECK(page.find("<script>") == std::string::npos);
    CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    CHECK(page.find("relay&lt;1&gt;") != std::string::npos);
    CHECK(page.find("&lt;try later&gt; &amp; again") != std::string::npos);
    CHECK(page.find("<span id=\"queue-messages\">2</span>") != std::string::npos);
    CHECK(page.find("data-flowing=\"false\"") != std::string::npos);
    CHECK(page.find("<rect class=\"failed\"") != std::string::npos);
    CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));  // no other URL than the SVG namespace
  }
}
