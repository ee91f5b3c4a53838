// SPDX-License-Identifier: MIT
// net/connector: done runs once, from the loop, and a cancel abandons what is
// in flight so nothing keeps the loop alive.
#include "net/connector.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop.h"

using namespace spoolgate;

namespace {

// A port where connects hang: a listener that never accepts, its queue full
// (Linux keeps backlog + 1 connections waiting and drops further SYNs).
struct Blackhole {
  int listener = -1, filler = -1;
  std::uint16_t port = 0;

  Blackhole() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener, 0) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    filler = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~Blackhole() {
    ::close(filler);
    ::close(listener);
  }
  Blackhole(const Blackhole&) = delete;
  Blackhole& operator=(const Blackhole&) = delete;
};

}  // namespace

TEST_SUITE("net/connector") {
  TEST_CASE("a connect that fails at once reports it from the loop, after connect() returned") {
    loop::Loop loop;
    bool returned = false, called = false;
    // Not valid UTF-8: libuv refuses the name before any lookup starts.
    auto cancel = net::connect(loop, "\xff\xfe.invalid", 25, Millis(5000), [&](auto r) {
      CHECK(returned);
      CHECK_FALSE(r);
      called = true;
    });
    returned = true;
    loop.run();
    CHECK(called);
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a cancelled connect never calls back and leaves nothing running") {
    Blackhole hole;
    loop::Loop loop;
    bool called = false;
    auto cancel = net::connect(loop, "127.0.0.1", hole.port, Millis(3'600'000), [&](auto) { called = true; });
    auto timer = loop::Timer::create(loop, [&] { cancel(); });
    timer->start(Millis(50));  // lookup or handshake under way: the same either way
    loop.run();                // returns once the cancelled handshake is gone, not in an hour
    CHECK_FALSE(called);
    cancel();  // again: nothing
    timer.reset();
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a connect that times out is abandoned at once") {
    Blackhole hole;
    loop::Loop loop;
    std::string error;
    auto cancel = net::connect(loop, "127.0.0.1", hole.port, Millis(50), [&](auto r) {
      REQUIRE_FALSE(r);
      error = r.error().message();
    });
    loop.run();  // returns without waiting for the kernel to give up on the SYNs
    CHECK(error.find("timed out") != std::string::npos);
    cancel();  // after done ran: nothing
    CHECK(loop.close() == 0);
  }
}
