// SPDX-License-Identifier: MIT
// upstream::Link and its Credentials: a secret that cannot be had fails the
// link before it connects, never from inside start(); a fetch abandoned by
// close() never calls back.
#include "upstream/link.h"

#include <doctest/doctest.h>

#include <optional>

using namespace spoolgate;

namespace {

// Answers at once, or when answer() is called; records cancellation.
struct FakeCredentials final : upstream::Credentials {
  std::optional<Result<std::string>> immediate;
  Done pending;
  bool cancelled = false;
  int asked = 0;

  net::CancelConnect get(loop::Loop&, const upstream::Upstream&, const std::string&, Done done) override {
    ++asked;
    if (immediate) {
      done(*immediate);
      return nullptr;
    }
    pending = std::move(done);
    return [this] { cancelled = true; };
  }
};

upstream::Upstream loopback_upstream() {
  upstream::Upstream u;
  u.name = "smtps://127.0.0.1:1";
  u.host = "127.0.0.1";
  u.port = 1;  // nothing listens: a connect is refused at once
  u.username = "relay@example.com";
  return u;
}

struct Seen {
  std::optional<smtp::Failure> failed;
  bool in_start = false;
  bool failed_in_start = false;
};

upstream::Link::Hooks hooks(Seen& seen) {
  upstream::Link::Hooks h;
  h.ready = [] {};
  h.read = [](std::string_view, bool) {};
  h.failed = [&seen](const smtp::Failure& f) {
    seen.failed = f;
    seen.failed_in_start = seen.in_start;
  };
  return h;
}

}  // namespace

TEST_SUITE("upstream/link") {
  TEST_CASE("a secret that cannot be had fails the link from the loop, not inside start()") {
    loop::Loop l;
    FakeCredentials creds;
    creds.immediate = fail(Errc::Refused, "re-authorisation needed");
    Seen seen;
    upstream::Link link(l, loopback_upstream(), "relay.test", upstream::Timeouts{}, creds, "u1", true, hooks(seen));
    seen.in_start = true;
    link.start();
    seen.in_start = false;
    CHECK_FALSE(seen.failed.has_value());
    l.run();  // the failure comes from the loop; nothing else is open, so run returns once it did
    REQUIRE(seen.failed.has_value());
    CHECK_FALSE(seen.failed_in_start);
    CHECK(seen.failed->kind == smtp::Failure::Auth);
    CHECK(seen.failed->code == Errc::Refused);
    CHECK(seen.failed->reason == "re-authorisation needed");
    link.close();
    CHECK(link.closed());
    CHECK(l.close() == 0);
  }

  TEST_CASE("with the secret, the link goes on to connect") {
    loop::Loop l;
    FakeCredentials creds;
    Seen seen;
    upstream::Link link(l, loopback_upstream(), "relay.test", upstream::Timeouts{}, creds, "u1", true, hooks(seen));
    link.start();
    REQUIRE(creds.pending);
    creds.pending(std::string("token"));
    l.run();
    REQUIRE(seen.failed.has_value());
    CHECK(seen.failed->code != Errc::Refused);
    CHECK(seen.failed->reason.find("127.0.0.1") != std::string::npos);  // the connect's own error
    link.close();
    CHECK(l.close() == 0);
  }

  TEST_CASE("close() abandons a fetch in progress; without authentication nothing is fetched") {
    loop::Loop l;
    FakeCredentials creds;
    Seen seen;
    {
      upstream::Link link(l, loopback_upstream(), "relay.test", upstream::Timeouts{}, creds, "u1", true, hooks(seen));
      link.start();
      link.close();
      CHECK(creds.cancelled);
      CHECK(link.closed());
    }
    upstream::Link plain(l, loopback_upstream(), "relay.test", upstream::Timeouts{}, creds, "u2", false, hooks(seen));
    plain.start();
    CHECK(creds.asked == 1);
    l.run();
    CHECK(seen.failed.has_value());  // it connected (and was refused) without asking
    plain.close();
    CHECK(l.close() == 0);
  }
}
