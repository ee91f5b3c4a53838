// SPDX-License-Identifier: MIT
// notify/sender with a fake fetcher and a real outbox in a temporary
// directory: at most kPerMinute a minute per target (the rest wait in the
// outbox), a 2xx removes the file, a retryable answer keeps it for the
// backoff, any other drops it, a new sender sends what an earlier one left,
// a target no longer configured loses its notifications.
#include "notify/sender.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <optional>

#include "../support/fake_fetcher.h"
#include "../support/run_until.h"
#include "../support/temp_dir.h"
#include "notify/alerts.h"

using namespace spoolgate;

namespace {

const std::string kUrl = "https://hooks.example/a/secret-path";

notify::Target to(const std::string& url, std::vector<std::string> events = {"all"}) {
  notify::Target t;
  t.url = url;
  t.events = std::move(events);
  return t;
}

std::size_t files_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path().extension() == ".json";
  return n;
}

notify::Event event(int i) {
  return notify::event_of({"message_failed", "m" + std::to_string(i), "a message failed", "550", {}},
                          notify::Change::Raised, 1'800'000'000 + i, 1'800'000'000 + i);
}

struct Fixture {
  TempDir tmp;
  std::filesystem::path dir = tmp.path / "notify";
  loop::Loop loop;
  FakeFetcher fetcher;
  std::optional<notify::Sender> s;
  void start(std::vector<notify::Target> targets = {to(kUrl)}) {
    s.emplace(loop, fetcher, dir.string(), "gw1");
    s->configure(std::move(targets));
    REQUIRE(s->open());
  }
  void answer(std::size_t i, long status) { fetcher.sent.at(i).done(http::Response{status, "text/plain", "", {}}); }
  ~Fixture() {
    if (s) s->close();
    loop.run();
    CHECK(loop.close() == 0);
  }
  Fixture() = default;
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;
};

}  // namespace

TEST_SUITE("notify/sender") {
  TEST_CASE("a target gets at most kPerMinute a minute; the rest wait in the outbox") {
    Fixture f;
    f.start();
    const std::size_t extra = 5;
    for (std::size_t i = 0; i < notify::kPerMinute + extra; ++i) f.s->post(event(static_cast<int>(i)));
    for (std::size_t i = 0; i < notify::kPerMinute; ++i) {
      run_until(f.loop, [&] { return f.fetcher.sent.size() > i; });
      REQUIRE(f.fetcher.sent.size() == i + 1);
      CHECK(f.fetcher.sent[i].req.url == kUrl);
      // In the order they were made, whichever file was written first.
      CHECK(f.fetcher.sent[i].req.body.find("\"key\":\"m" + std::to_string(i) + "\"") != std::string::npos);
      f.answer(i, 200);
    }
    // Each 2xx removed its file; the next would have gone out at once.
    run_until(f.loop, [&] { return files_in(f.dir) == extra && f.s->pending() == extra; });
    CHECK(files_in(f.dir) == extra);
    CHECK(f.fetcher.sent.size() == notify::kPerMinute);
    CHECK(f.s->pending() == extra);
    CHECK(f.s->stats().sent == notify::kPerMinute);
  }

  TEST_CASE("a retryable answer keeps it, another drops it; a new sender sends what is left") {
    Fixture f;
    f.start();
    f.s->post(event(1));
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    f.answer(0, 404);  // the receiver refuses it for good
    run_until(f.loop, [&] { return files_in(f.dir) == 0; });
    CHECK(f.s->stats().dropped == 1);
    f.s->post(event(2));
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 2; });
    f.answer(1, 503);
    CHECK(f.s->stats().retried == 1);
    CHECK(f.s->pending() == 1);
    CHECK(f.fetcher.sent.size() == 2);  // not at once: after the backoff
    CHECK(files_in(f.dir) == 1);
    f.s->close();
    f.start();  // a restart: the outbox read back
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 3; });
    REQUIRE(f.fetcher.sent.size() == 3);
    CHECK(f.fetcher.sent[2].req.body == f.fetcher.sent[1].req.body);  // the same notification, the same id
    f.answer(2, 202);
    run_until(f.loop, [&] { return files_in(f.dir) == 0; });
    CHECK(f.s->pending() == 0);
  }

  TEST_CASE("only the events a target asks for; a target removed loses what waits for it") {
    Fixture f;
    f.start({to(kUrl, {"upstream_down"}), to("https://ntfy.example/t")});
    f.s->post(event(1));  // message_failed: the second target only
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    CHECK(f.fetcher.sent[0].req.url == "https://ntfy.example/t");
    f.answer(0, 503);
    CHECK(files_in(f.dir) == 1);
    f.s->configure({to(kUrl)});
    run_until(f.loop, [&] { return files_in(f.dir) == 0; });
    CHECK(f.s->pending() == 0);
    CHECK(f.s->stats().dropped == 1);
  }
}
