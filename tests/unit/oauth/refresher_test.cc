// SPDX-License-Identifier: MIT
// oauth/refresher: the token timing rules, with a fake clock (ms).
#include "oauth/refresher.h"

#include <doctest/doctest.h>

using namespace spoolgate::oauth;

namespace {

constexpr std::int64_t kS = 1000;

Token token(const std::string& access, std::int64_t expires_in, const std::string& refresh = {}) {
  Token t;
  t.access = access;
  t.expires_in = expires_in;
  t.refresh = refresh;
  return t;
}

Problem problem(Problem::Kind k, const std::string& error) {
  Problem p;
  p.kind = k;
  p.error = error;
  return p;
}

// A fetch that starts at `now` and is answered `latency` later.
void fetch(Refresher& r, std::int64_t now, const TokenAnswer& a, std::int64_t latency = 0) {
  REQUIRE(r.due(now));
  r.started(now);
  r.answered(now + latency, a);
}

}  // namespace

TEST_SUITE("oauth/refresher") {
  TEST_CASE("an empty refresher wants a token at once, and not twice at once") {
    Refresher r;
    CHECK(r.state(0) == Refresher::State::Empty);
    CHECK(r.due(0));
    CHECK(r.next_wake(0) == 0);
    r.started(0);
    CHECK_FALSE(r.due(0));
    CHECK_FALSE(r.due(10 * 60 * kS));
    CHECK(r.state(0) == Refresher::State::Refreshing);
    CHECK_FALSE(r.next_wake(0).has_value());
    CHECK(r.token(0) == nullptr);
  }

  TEST_CASE("a token is refreshed at 80 % of its lifetime, counted from the request") {
    Refresher r;
    fetch(r, 1000 * kS, token("t1", 100), 2 * kS);
    REQUIRE(r.token(1002 * kS) != nullptr);
    CHECK(*r.token(1002 * kS) == "t1");
    CHECK(r.state(1002 * kS) == Refresher::State::Fresh);
    CHECK(r.next_wake(1002 * kS) == 1080 * kS);
    CHECK_FALSE(r.due(1079 * kS));
    CHECK(r.due(1080 * kS));
    CHECK(r.expires_at() == 1100 * kS);
    // Until a new one comes, the old one is still sent.
    r.started(1080 * kS);
    CHECK(*r.token(1099 * kS) == "t1");
    CHECK(r.token(1100 * kS) == nullptr);
    r.answered(1081 * kS, token("t2", 100));
    CHECK(*r.token(1100 * kS) == "t2");
    CHECK(r.next_wake(1081 * kS) == 1160 * kS);
  }

  TEST_CASE("a lifetime the endpoint did not give counts as an hour") {
    Refresher r;
    fetch(r, 0, token("t", 0));
    CHECK(r.expires_at() == 3600 * kS);
    CHECK(r.next_wake(0) == 2880 * kS);
  }

  TEST_CASE("transient failures back off from 5 s, doubling to 5 minutes, keeping the current token") {
    Refresher r;
    fetch(r, 0, token("t", 100));
    std::int64_t now = 80 * kS;
    std::int64_t expect[] = {5, 10, 20, 40, 80, 160, 300, 300};
    for (std::int64_t wait : expect) {
      REQUIRE(r.due(now));
      r.started(now);
      r.failed(now, "connect refused");
      CHECK(r.state(now) == Refresher::State::Failing);
      CHECK(r.next_wake(now) == now + wait * kS);
      CHECK_FALSE(r.due(now + wait * kS - 1));
      now += wait * kS;
    }
    CHECK(r.failures() == 8);
    CHECK(r.last_outcome() == "connect refused");
    CHECK(r.token(99 * kS) != nullptr);  // still used until it expires
    fetch(r, now, token("t2", 100));
    CHECK(r.failures() == 0);
    CHECK(r.state(now) == Refresher::State::Fresh);
    CHECK(r.last_outcome() == "ok");
  }

  TEST_CASE("an HTTP 5xx answer is transient like no answer") {
    Refresher r;
    fetch(r, 0, problem(Problem::Kind::Transient, "HTTP 503"));
    CHECK(r.state(0) == Refresher::State::Failing);
    CHECK(r.next_wake(0) == 5 * kS);
  }

  TEST_CASE("consent gone: a named state, a request only every 15 minutes, at once after reset") {
    Refresher r;
    fetch(r, 0, token("t", 3600));
    std::int64_t now = 2880 * kS;
    Problem p = problem(Problem::Kind::Reauth, "invalid_grant");
    p.description = "AADSTS700082: The refresh token has expired";
    fetch(r, now, p);
    CHECK(r.state(now) == Refresher::State::Reauth);
    CHECK(r.last_outcome() == "invalid_grant: AADSTS700082: The refresh token has expired");
    CHECK(*r.token(now) == "t");  // the current token still works until it expires
    CHECK_FALSE(r.due(now + 15 * 60 * kS - 1));
    CHECK(r.due(now + 15 * 60 * kS));
    CHECK(r.next_wake(now) == now + 15 * 60 * kS);
    r.reset();
    CHECK(r.due(now + 1));
    fetch(r, now + 1, token("t2", 3600));
    CHECK(r.state(now + 1) == Refresher::State::Fresh);
  }

  TEST_CASE("a wrong client is its own state") {
    Refresher r;
    fetch(r, 0, problem(Problem::Kind::Misconfigured, "invalid_client"));
    CHECK(r.state(0) == Refresher::State::Misconfigured);
    CHECK(r.next_wake(0) == 15 * 60 * kS);
  }

  TEST_CASE("a token the server refused is dropped and a new one is due at once, once per token") {
    Refresher r;
    fetch(r, 0, token("t1", 3600));
    CHECK_FALSE(r.rejected("other"));  // not the current token (an old session's)
    CHECK(r.token(10 * kS) != nullptr);
    CHECK(r.rejected("t1"));
    CHECK(r.token(10 * kS) == nullptr);
    CHECK(r.due(10 * kS));
    CHECK(r.next_wake(10 * kS) == 10 * kS);
    CHECK_FALSE(r.rejected("t1"));  // a second session with the same token: no second drop
    fetch(r, 10 * kS, token("t2", 3600));
    CHECK(*r.token(11 * kS) == "t2");
    CHECK(r.rejected("t2"));  // a new token may be refused again, once
  }

  TEST_CASE("a refused token during a backoff waits for the backoff") {
    Refresher r;
    fetch(r, 0, token("t1", 100));
    r.started(80 * kS);
    r.failed(80 * kS, "timeout");
    CHECK(r.rejected("t1"));
    CHECK_FALSE(r.due(84 * kS));
    CHECK(r.due(85 * kS));
  }
}
