// SPDX-License-Identifier: MIT
// notify/alerts, notify/payload and notify/outbox: raised once, reminded
// after the repeat interval, cleared once; each target's format; the outbox
// file.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "notify/alerts.h"
#include "notify/outbox.h"
#include "notify/payload.h"

using namespace spoolgate;
using notify::Change;

namespace {

notify::Condition down(const std::string& up) {
  return {"upstream_down", up, up + " unreachable for 10m", "connection refused", {{"upstream", up}}};
}

}  // namespace

TEST_SUITE("notify") {
  TEST_CASE("a condition is raised once, reminded every repeat interval, cleared once") {
    notify::Alerts a(3600);
    auto e = a.update(1000, {down("m365")});
    REQUIRE(e.size() == 1);
    CHECK(e[0].change == Change::Raised);
    CHECK(e[0].since == 1000);
    CHECK(e[0].id == "upstream_down:m365:1000:raised");
    CHECK(a.update(1001, {down("m365"), down("m365")}).empty());  // still there; named twice: once
    CHECK(a.update(4599, {down("m365")}).empty());
    e = a.update(4600, {down("m365"), down("gmail")});
    REQUIRE(e.size() == 2);
    CHECK(e[0].change == Change::Reminder);
    CHECK(e[0].since == 1000);
    CHECK(e[1].change == Change::Raised);
    CHECK(a.active().size() == 2);
    e = a.update(4700, {down("gmail")});
    REQUIRE(e.size() == 1);
    CHECK(e[0].change == Change::Cleared);
    CHECK(e[0].key == "m365");
    CHECK(e[0].title == "resolved: m365 unreachable for 10m");
    CHECK(e[0].since == 1000);
    CHECK(a.update(4800, {}).size() == 1);
    CHECK(a.update(4900, {}).empty());
    notify::Alerts never(0);  // no reminders
    never.update(0, {down("x")});
    CHECK(never.update(1'000'000, {down("x")}).empty());
  }

  TEST_CASE("an undecided condition stays raised and none is raised; what is raised survives a restart") {
    notify::Alerts a(3600);
    a.update(1000, {down("m365")});
    // Not tried since a restart: neither cleared nor raised.
    CHECK(a.update(1001, {}, {{"upstream_down", "m365"}, {"upstream_down", "gmail"}}).empty());
    CHECK(a.active().size() == 1);
    notify::Alerts b(3600);
    b.restore(a.save() + "not an alert\n");
    REQUIRE(b.active().size() == 1);
    const auto& kept = b.active().begin()->second;
    CHECK(kept.since == 1000);
    CHECK(kept.last_sent == 1000);
    CHECK(kept.c.title == "m365 unreachable for 10m");
    CHECK(kept.c.fields == down("m365").fields);
    CHECK(b.update(1002, {down("m365")}).empty());  // not raised again
    auto e = b.update(1003, {});
    REQUIRE(e.size() == 1);
    CHECK(e[0].change == Change::Cleared);
    CHECK(e[0].since == 1000);
  }

  TEST_CASE("each target's format") {
    notify::Event e = notify::event_of(down("m365"), Change::Raised, 1000, 1000);
    auto g = notify::render(notify::Format::Generic, e, "gw1");
    CHECK(g.content_type == "application/json");
    auto j = nlohmann::json::parse(g.body);
    CHECK(j["version"] == 1);
    CHECK(j["event"] == "upstream_down");
    CHECK(j["change"] == "raised");
    CHECK(j["key"] == "m365");
    CHECK(j["host"] == "gw1");
    CHECK(j["fields"]["upstream"] == "m365");
    CHECK(notify::signing_input(1000, g.body) == "1000." + g.body);
    CHECK(notify::signature_headers(1000, "ab") ==
          std::vector<std::string>{"X-Spoolgate-Timestamp: 1000", "X-Spoolgate-Signature: sha256=ab"});

    auto n = notify::render(notify::Format::Ntfy, e, "gw1");
    CHECK(n.content_type == "text/plain; charset=utf-8");
    CHECK(n.body == "connection refused\nupstream: m365");
    CHECK(n.headers == std::vector<std::string>{"Title: [spoolgate gw1] m365 unreachable for 10m", "Priority: high",
                                                "Tags: warning,upstream_down"});

    auto t = nlohmann::json::parse(notify::render(notify::Format::Teams, e, "gw1").body);
    CHECK(t["type"] == "message");
    auto card = t["attachments"][0];
    CHECK(card["contentType"] == "application/vnd.microsoft.card.adaptive");
    CHECK(card["content"]["type"] == "AdaptiveCard");
    CHECK(card["content"]["body"][0]["text"] == "[spoolgate gw1] m365 unreachable for 10m");
    CHECK(card["content"]["body"][2]["facts"][0]["value"] == "m365");

    auto s = nlohmann::json::parse(notify::render(notify::Format::Slack, e, "gw1").body);
    CHECK(s["text"] == "*[spoolgate gw1] m365 unreachable for 10m*\nconnection refused\nupstream: m365");
    auto c = notify::render(notify::Format::GoogleChat, notify::event_of(down("m365"), Change::Reminder, 9, 1), "gw1");
    CHECK(nlohmann::json::parse(c.body)["text"] ==
          "*[spoolgate gw1] still: m365 unreachable for 10m*\nconnection refused\nupstream: m365");

    // A title that is not printable ASCII stays one header line.
    notify::Condition odd = down("m365");
    odd.title = "r\xC3\xA9seau\r\nX-Injected: 1";
    auto h = notify::render(notify::Format::Ntfy, notify::event_of(odd, Change::Cleared, 1, 1), "gw1");
    CHECK(h.headers[0] == "Title: [spoolgate gw1] r??seau??X-Injected: 1");
    CHECK(h.headers[2] == "Tags: white_check_mark,upstream_down");
  }
}

TEST_SUITE("notify") {
  TEST_CASE("an outbox entry survives its file; anything else is refused") {
    notify::Entry e{7, "a1b2c3", notify::event_of(down("m365"), Change::Cleared, 2000, 1000)};
    auto back = notify::decode(notify::encode(e));
    REQUIRE(back);
    CHECK(back->seq == 7);
    CHECK(back->target == "a1b2c3");
    CHECK(back->event.change == Change::Cleared);
    CHECK(back->event.since == 1000);
    CHECK(back->event.fields == e.event.fields);
    CHECK(back->event.id == "upstream_down:m365:2000:cleared");
    CHECK_FALSE(notify::decode(""));
    CHECK_FALSE(notify::decode("[]"));
    std::string text = notify::encode(e);
    CHECK_FALSE(notify::decode(text.substr(0, text.size() / 2)));
    std::string other = text;
    other.replace(other.find("\"cleared\""), 9, "\"gone\"");
    CHECK_FALSE(notify::decode(other));
  }
}
