// SPDX-License-Identifier: MIT
// oauth/manager with a fake fetcher (the token endpoint answers what each
// test says) and a real store in a temporary directory: one request however
// many sessions wait, a rotated refresh token on disk before its access
// token is used, a stored token reused after a restart, the operator states
// reported to the waiting session, a refused token replaced once.
#include "oauth/manager.h"

#include <doctest/doctest.h>

#include <functional>
#include <optional>

#include "../support/fake_fetcher.h"
#include "../support/run_until.h"
#include "../support/temp_dir.h"
#include "core/clock.h"

using namespace spoolgate;

namespace {

oauth::ClientConfig client(bool refresh_grant) {
  oauth::ClientConfig c;
  c.key = "m365";
  c.refresh_grant = refresh_grant;
  c.token_url = "https://login.example/tenant/oauth2/v2.0/token";
  c.client_id = "app-1";
  c.scope = "https://outlook.office365.com/.default";
  c.client_auth = [] {
    return Result<std::vector<std::pair<std::string, std::string>>>(
        std::vector<std::pair<std::string, std::string>>{{"client_secret", "s3cret"}});
  };
  return c;
}

struct Fixture {
  TempDir dir;
  loop::Loop loop;
  FakeFetcher fetcher;
  std::int64_t now = 1'800'000'000'000;
  std::optional<oauth::Manager> m;
  oauth::Store store() { return *oauth::Store::open(dir.path.string()); }
  void start() {
    m.emplace(loop, fetcher, store(), [this] { return now; });
  }
  // get(), and the loop run until it has called back.
  std::optional<Result<std::string>> token() {
    std::optional<Result<std::string>> got;
    (void)m->get("m365", [&](auto r) { got = std::move(r); });
    run_until(loop, [&] { return got.has_value(); });
    return got;
  }
  // get(), request i answered by `answer`, and the loop run until get()
  // has called back.
  std::optional<Result<std::string>> token_after(std::size_t i, const std::function<void()>& answer) {
    std::optional<Result<std::string>> got;
    (void)m->get("m365", [&](auto r) { got = std::move(r); });
    run_until(loop, [&] { return fetcher.sent.size() > i; });
    REQUIRE(fetcher.sent.size() == i + 1);
    answer();
    run_until(loop, [&] { return got.has_value(); });
    return got;
  }
  ~Fixture() {
    if (m) m->close();
    loop.run();
    CHECK(loop.close() == 0);
  }
  Fixture() = default;
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;
};

// What `oauth login` leaves in the store for client(true).
oauth::Stored sign_in(Fixture& f, const std::string& refresh) {
  auto c = client(true);
  oauth::Stored s;
  s.client = oauth::client_fingerprint(c.token_url, c.client_id, c.scope, "refresh_token");
  s.refresh = refresh;
  REQUIRE(f.store().save("m365", s));
  return s;
}

std::string token_json(const std::string& access, int expires_in, const std::string& refresh = "") {
  std::string j =
      "{\"token_type\":\"Bearer\",\"access_token\":\"" + access + "\",\"expires_in\":" + std::to_string(expires_in);
  if (!refresh.empty()) j += ",\"refresh_token\":\"" + refresh + "\"";
  return j + "}";
}

}  // namespace

TEST_SUITE("oauth/manager") {
  TEST_CASE("client_credentials: sessions waiting at once share one request; the token is then handed over at once") {
    Fixture f;
    f.start();
    f.m->add(client(false));
    std::vector<Result<std::string>> got;
    for (int i = 0; i < 3; ++i) (void)f.m->get("m365", [&](auto r) { got.push_back(std::move(r)); });
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    REQUIRE(f.fetcher.sent.size() == 1);
    CHECK(f.fetcher.field(0, "grant_type") == "client_credentials");
    CHECK(f.fetcher.field(0, "client_id") == "app-1");
    CHECK(f.fetcher.field(0, "client_secret") == "s3cret");
    CHECK(f.fetcher.field(0, "scope") == "https://outlook.office365.com/.default");
    CHECK(f.fetcher.sent[0].req.url == "https://login.example/tenant/oauth2/v2.0/token");
    f.fetcher.answer(0, 200, token_json("AT1", 3600));
    run_until(f.loop, [&] { return got.size() == 3; });
    REQUIRE(got.size() == 3);
    for (auto& g : got) {
      REQUIRE(g);
      CHECK(*g == "AT1");
    }
    bool inside = false;
    (void)f.m->get("m365", [&](auto r) {
      REQUIRE(r);
      CHECK(*r == "AT1");
      inside = true;
    });
    CHECK(inside);  // a valid token: no wait, no request
    CHECK(f.fetcher.sent.size() == 1);
    auto st = f.m->status();
    REQUIRE(st.size() == 1);
    CHECK(st[0].state == oauth::Refresher::State::Fresh);
    CHECK(st[0].expires_at == f.now + 3'600'000);
  }

  TEST_CASE("refresh_token: a rotated refresh token is in the store before the access token is handed out") {
    Fixture f;
    sign_in(f, "R1");
    f.start();
    f.m->add(client(true));
    std::optional<Result<std::string>> got;
    (void)f.m->get("m365", [&](auto r) {
      // When the token arrives here, the store already holds R2.
      auto rec = f.store().load("m365");
      REQUIRE(rec);
      REQUIRE(rec->has_value());
      CHECK((*rec)->refresh == "R2");
      CHECK((*rec)->access == "AT2");
      got = std::move(r);
    });
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    REQUIRE(f.fetcher.sent.size() == 1);
    CHECK(f.fetcher.field(0, "grant_type") == "refresh_token");
    CHECK(f.fetcher.field(0, "refresh_token") == "R1");
    f.fetcher.answer(0, 200, token_json("AT2", 3600, "R2"));
    run_until(f.loop, [&] { return got.has_value(); });
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == "AT2");
    CHECK(f.m->status()[0].generation == 2);
  }

  TEST_CASE("a restart uses the stored access token while it is good; one for another client is ignored") {
    Fixture f;
    oauth::Stored s;
    s.client = oauth::client_fingerprint(client(false).token_url, "app-1", client(false).scope, "client_credentials");
    s.access = "AT-stored";
    s.refreshed_at = f.now - 600'000;
    s.expires_at = f.now + 3'000'000;
    REQUIRE(f.store().save("m365", s));
    f.start();
    f.m->add(client(false));
    auto got = f.token();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == "AT-stored");
    CHECK(f.fetcher.sent.empty());

    auto other = client(false);
    other.client_id = "app-2";
    f.m->add(other);  // other settings: starts afresh, the stored token is not for it
    std::optional<Result<std::string>> got2;
    (void)f.m->get("m365", [&](auto r) { got2 = std::move(r); });
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    REQUIRE(f.fetcher.sent.size() == 1);
    CHECK(f.fetcher.field(0, "client_id") == "app-2");
    CHECK_FALSE(got2.has_value());
  }

  TEST_CASE("a revoked grant fails the waiting session with Refused and says to sign in again; reload() retries") {
    Fixture f;
    auto s = sign_in(f, "R-old");
    f.start();
    f.m->add(client(true));
    std::optional<Result<std::string>> got;
    (void)f.m->get("m365", [&](auto r) { got = std::move(r); });
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    f.fetcher.answer(0, 400, R"({"error":"invalid_grant","error_description":"AADSTS70000: revoked"})");
    run_until(f.loop, [&] { return got.has_value(); });
    REQUIRE(got);
    REQUIRE_FALSE(*got);
    CHECK(got->error().code == Errc::Refused);
    CHECK(got->error().detail.find("oauth login --upstream m365") != std::string::npos);
    CHECK(got->error().detail.find("R-old") == std::string::npos);
    CHECK(f.m->status()[0].state == oauth::Refresher::State::Reauth);
    // The next session is told at once, without a request.
    bool inside = false;
    (void)f.m->get("m365", [&](auto r) {
      CHECK_FALSE(r);
      inside = true;
    });
    CHECK(inside);
    CHECK(f.fetcher.sent.size() == 1);
    // `oauth login` stored a new refresh token and told the daemon.
    s.refresh = "R-new";
    REQUIRE(f.store().save("m365", s));
    f.m->reload("m365");
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 2; });
    REQUIRE(f.fetcher.sent.size() == 2);
    CHECK(f.fetcher.field(1, "refresh_token") == "R-new");
  }

  TEST_CASE("a reload after oauth login uses the access token it stored, without a request") {
    Fixture f;
    auto s = sign_in(f, "R-old");
    f.start();
    f.m->add(client(true));
    auto first = f.token_after(0, [&] { f.fetcher.answer(0, 400, R"({"error":"invalid_grant"})"); });
    REQUIRE(first);
    CHECK_FALSE(*first);
    // oauth login's record: the new refresh token and the access token that
    // came with it. Refreshing at once would only rotate the refresh token
    // under the login's feet.
    s.refresh = "R-new";
    s.access = "A-login";
    s.refreshed_at = f.now;
    s.expires_at = f.now + 3'600'000;
    REQUIRE(f.store().save("m365", s));
    f.m->reload("m365");
    run_until(f.loop, [&] { return f.m->status()[0].state == oauth::Refresher::State::Fresh; });
    auto got = f.token();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == "A-login");
    CHECK(f.fetcher.sent.size() == 1);
  }

  TEST_CASE("no sign-in stored: Refused at once, no request") {
    Fixture f;
    f.start();
    f.m->add(client(true));
    auto got = f.token();
    REQUIRE(got);
    REQUIRE_FALSE(*got);
    CHECK(got->error().code == Errc::Refused);
    CHECK(f.fetcher.sent.empty());
  }

  TEST_CASE("the endpoint down: the session fails with a temporary error; the next one is told at once") {
    Fixture f;
    f.start();
    f.m->add(client(false));
    auto got = f.token_after(0, [&] {
      f.fetcher.sent[0].done(fail(Errc::Closed, "POST https://login.example/tenant/oauth2/v2.0/token: refused"));
    });
    REQUIRE(got);
    REQUIRE_FALSE(*got);
    CHECK(got->error().code == Errc::Io);
    CHECK(got->error().detail.find("refused") != std::string::npos);
    CHECK(f.m->status()[0].state == oauth::Refresher::State::Failing);
    bool inside = false;
    (void)f.m->get("m365", [&](auto r) {
      CHECK_FALSE(r);
      inside = true;
    });
    CHECK(inside);  // in backoff: no second request
    CHECK(f.fetcher.sent.size() == 1);
    // A 503 later is transient too.
    f.now += 5'000;
    auto got2 = f.token_after(1, [&] { f.fetcher.answer(1, 503, "busy"); });
    REQUIRE(got2);
    CHECK_FALSE(*got2);
  }

  TEST_CASE("a refused token is replaced once; the same token refused again is not") {
    Fixture f;
    f.start();
    f.m->add(client(false));
    auto got = f.token_after(0, [&] { f.fetcher.answer(0, 200, token_json("AT1", 3600)); });
    CHECK(f.m->refused("m365", "AT1"));
    CHECK_FALSE(f.m->refused("m365", "AT1"));
    CHECK_FALSE(f.m->refused("m365", "never-issued"));
    auto again = f.token_after(1, [&] { f.fetcher.answer(1, 200, token_json("AT2", 3600)); });
    REQUIRE(again);
    REQUIRE(*again);
    CHECK(**again == "AT2");
    auto rec = f.store().load("m365");
    REQUIRE(rec);
    CHECK((*rec)->access == "AT2");
  }

  TEST_CASE("a token is refreshed at 80 % of its lifetime by the manager's own timer") {
    Fixture f;
    f.start();
    // A real clock here: the timer is real. One second of lifetime.
    f.m.reset();
    f.m.emplace(f.loop, f.fetcher, f.store(), [] { return unix_now_ms(); });
    f.m->add(client(false));
    (void)f.m->get("m365", [](auto) {});
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    f.fetcher.answer(0, 200, token_json("AT1", 1));
    // Nobody asks; the next request goes out on its own, before expiry.
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 2; });
    REQUIRE(f.fetcher.sent.size() == 2);
    f.fetcher.answer(1, 200, token_json("AT2", 3600));
    run_until(f.loop, [&] { return f.m->status()[0].state == oauth::Refresher::State::Fresh; });
    bool inside = false;
    (void)f.m->get("m365", [&](auto r) {
      REQUIRE(r);
      CHECK(*r == "AT2");
      inside = true;
    });
    CHECK(inside);
  }

  TEST_CASE("an abandoned wait never calls back; close() drops waiters and cancels the request") {
    Fixture f;
    f.start();
    f.m->add(client(false));
    bool called = false;
    auto cancel = f.m->get("m365", [&](auto) { called = true; });
    (void)f.m->get("m365", [&](auto) { called = true; });
    cancel();
    run_until(f.loop, [&] { return f.fetcher.sent.size() == 1; });
    f.m->close();
    CHECK(f.fetcher.cancelled == std::vector<std::uint64_t>{1});
    CHECK_FALSE(called);
  }
}

TEST_SUITE("oauth/status") {
  TEST_CASE("status text and JSON: the state, the expiry, what to run; never a token") {
    oauth::ClientStatus a;
    a.key = "relay-contoso.com_smtp.office365.com";
    a.grant = "client_credentials";
    a.state = oauth::Refresher::State::Fresh;
    a.expires_at = 1'800'000'600'000;
    a.last_attempt = 1'800'000'000'000;
    a.last_outcome = "ok";
    a.generation = 12;
    oauth::ClientStatus b;
    b.key = "alerts-example.com_smtp.gmail.com";
    b.grant = "refresh_token";
    b.state = oauth::Refresher::State::Reauth;
    b.last_attempt = 1'800'000'000'000;
    b.last_outcome = "invalid_grant: revoked";
    std::string t = oauth::status_text({a, b}, 1'800'000'000'000);
    CHECK(t.find("relay-contoso.com_smtp.office365.com: client_credentials, fresh, token expires "
                 "2027-01-15T08:10:00Z (in 10m)") != std::string::npos);
    CHECK(t.find("store generation 12") != std::string::npos);
    CHECK(t.find("alerts-example.com_smtp.gmail.com: refresh_token, reauthorisation needed, no valid token, last "
                 "refresh 2027-01-15T08:00:00Z: invalid_grant: revoked, not signed in") != std::string::npos);
    CHECK(t.find("  run: spoolgate oauth login --upstream alerts-example.com_smtp.gmail.com\n") != std::string::npos);
    std::string j = oauth::status_json({a, b});
    CHECK(j.find(R"("upstream":"relay-contoso.com_smtp.office365.com")") != std::string::npos);
    CHECK(j.find(R"("expires_at":1800000600)") != std::string::npos);
    CHECK(j.find(R"("reauth_required":true)") != std::string::npos);
    CHECK(oauth::status_text({}, 0) == "no upstream uses OAuth\n");
  }
}
