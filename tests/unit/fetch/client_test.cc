// SPDX-License-Identifier: MIT
// fetch/client with the real spoolgate-https (built beside unit_tests):
// every answer arrives once, from the loop; a helper that dies, hangs or
// talks nonsense fails what was in flight and is replaced on the next
// request; a cancelled request never calls back.
#include "fetch/client.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "loop/loop.h"
#include "../support/run_until.h"

using namespace spoolgate;

namespace {

// A TCP port on 127.0.0.1 chosen at run time. listening: connects succeed
// and then nothing is ever said (a TLS handshake waits forever); otherwise
// the socket is closed again and connects are refused.
struct Port {
  int fd = -1;
  std::uint16_t port = 0;
  explicit Port(bool listening) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    if (listening) {
      REQUIRE(::listen(fd, 16) == 0);
    } else {
      ::close(fd);
      fd = -1;
    }
  }
  ~Port() {
    if (fd >= 0) ::close(fd);
  }
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port) + "/token"; }
};

std::string helper() {
  std::string h = loop::Process::sibling("spoolgate-https");
  REQUIRE_FALSE(h.empty());
  return h;
}

http::Request request(const std::string& url, Millis timeout = Millis(20'000)) {
  http::Request r;
  r.url = url;
  r.form = {{"grant_type", "client_credentials"}, {"client_secret", "s3cret"}};
  r.timeout = timeout;
  return r;
}

// An executable script in a fresh temporary directory.
std::string script(const std::string& body) {
  char dir[] = "/tmp/sg-fetch-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/helper";
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0700);
  return path;
}

}  // namespace

TEST_SUITE("fetch/client") {
  TEST_CASE("a refused connect and a plain-http URL come back as errors, from the loop") {
    loop::Loop loop;
    {
      fetch::Client c(loop, helper());
      Port closed(false);
      bool returned = false;
      std::optional<Result<http::Response>> a, b;
      c.send(request(closed.url()), [&](auto r) {
        CHECK(returned);
        a = std::move(r);
      });
      c.send(request("http://127.0.0.1:1/token"), [&](auto r) { b = std::move(r); });
      returned = true;
      CHECK(c.starts() == 1);  // started on the first request, once
      run_until(loop, [&] { return a && b; });
      REQUIRE(a);
      REQUIRE(b);
      REQUIRE_FALSE(*a);
      CHECK(a->error().code == Errc::Closed);
      CHECK(a->error().detail.find("POST https://127.0.0.1:") != std::string::npos);
      CHECK(a->error().detail.find("s3cret") == std::string::npos);
      REQUIRE_FALSE(*b);
      CHECK(b->error().code == Errc::Invalid);
      CHECK(c.in_flight() == 0);
    }
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a helper that cannot be started fails the request from the loop") {
    loop::Loop loop;
    {
      fetch::Client c(loop, "/nonexistent/spoolgate-https");
      bool returned = false;
      std::optional<Result<http::Response>> a;
      c.send(request("https://127.0.0.1:1/"), [&](auto r) {
        CHECK(returned);
        a = std::move(r);
      });
      returned = true;
      run_until(loop, [&] { return a.has_value(); });
      REQUIRE(a);
      REQUIRE_FALSE(*a);
      CHECK(a->error().message().find("cannot start /nonexistent/spoolgate-https") != std::string::npos);
    }
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a helper killed mid-request fails what was in flight; the next request starts a new one") {
    loop::Loop loop;
    {
      fetch::Client c(loop, helper());
      Port silent(true);
      std::optional<Result<http::Response>> a;
      c.send(request(silent.url()), [&](auto r) { a = std::move(r); });
      int pid = c.helper_pid();
      REQUIRE(pid > 0);
      REQUIRE(::kill(pid, SIGKILL) == 0);
      run_until(loop, [&] { return a.has_value(); });
      REQUIRE(a);
      REQUIRE_FALSE(*a);
      CHECK(a->error().code == Errc::Io);
      CHECK(c.helper_pid() == 0);
      Port closed(false);
      std::optional<Result<http::Response>> b;
      c.send(request(closed.url()), [&](auto r) { b = std::move(r); });
      CHECK(c.starts() == 2);
      CHECK(c.helper_pid() != pid);
      run_until(loop, [&] { return b.has_value(); });
      REQUIRE(b);
      REQUIRE_FALSE(*b);
      CHECK(b->error().code == Errc::Closed);  // the new helper answered
    }
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a cancelled request never calls back, and the others still do") {
    loop::Loop loop;
    {
      fetch::Client c(loop, helper());
      Port silent(true), closed(false);
      bool cancelled_called = false;
      std::optional<Result<http::Response>> other;
      auto id = c.send(request(silent.url()), [&](auto) { cancelled_called = true; });
      c.send(request(closed.url()), [&](auto r) { other = std::move(r); });
      c.cancel(id);
      c.cancel(id);      // twice: ignored
      c.cancel(99'999);  // unknown: ignored
      run_until(loop, [&] { return other.has_value(); });
      CHECK(other.has_value());
      CHECK_FALSE(cancelled_called);
      CHECK(c.in_flight() == 0);
    }
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a helper that answers with something other than an answer is replaced") {
    loop::Loop loop;
    {
      fetch::Client c(loop, script("exec cat"));  // echoes the request frame back
      std::optional<Result<http::Response>> a;
      c.send(request("https://127.0.0.1:1/"), [&](auto r) { a = std::move(r); });
      run_until(loop, [&] { return a.has_value(); });
      REQUIRE(a);
      REQUIRE_FALSE(*a);
      CHECK(a->error().detail.find("not an answer") != std::string::npos);
      CHECK(c.helper_pid() == 0);
    }
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a helper that never answers is given up on after the request's timeout and the grace") {
    loop::Loop loop;
    {
      fetch::Client c(loop, script("exec sleep 600"), Millis(50));
      std::optional<Result<http::Response>> a;
      c.send(request("https://127.0.0.1:1/", Millis(50)), [&](auto r) { a = std::move(r); });
      run_until(loop, [&] { return a.has_value(); });
      REQUIRE(a);
      REQUIRE_FALSE(*a);
      CHECK(a->error().detail.find("did not answer in time") != std::string::npos);
    }
    CHECK(loop.close() == 0);
  }

  TEST_CASE("a request from inside a callback goes out; close() drops what is in flight silently") {
    loop::Loop loop;
    {
      fetch::Client c(loop, helper());
      Port closed(false), silent(true);
      bool second_called = false;
      std::optional<Result<http::Response>> first;
      c.send(request(closed.url()), [&](auto r) {
        first = std::move(r);
        c.send(request(silent.url()), [&](auto) { second_called = true; });
      });
      run_until(loop, [&] { return first.has_value() && c.in_flight() == 1; });
      CHECK(c.in_flight() == 1);
      c.close();
      c.close();
      CHECK(c.in_flight() == 0);
      CHECK_FALSE(second_called);
    }
    loop.run();
    CHECK(loop.close() == 0);
  }
}
