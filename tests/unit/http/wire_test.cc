// SPDX-License-Identifier: MIT
// http/wire: frames between the daemon and spoolgate-https survive any
// split, carry bodies that are not UTF-8, and a malformed one breaks the
// stream instead of being guessed at.
#include "http/wire.h"

#include <doctest/doctest.h>

using namespace spoolgate;

TEST_SUITE("http/wire") {
  TEST_CASE("a request, a cancel and two answers round-trip through any split") {
    http::Frame req;
    req.id = 7;
    req.request.url = "https://login.example/token";
    req.request.headers = {"Content-Type: application/x-www-form-urlencoded"};
    req.request.body = std::string("a=1\0\xff\xfe", 6);
    req.request.timeout = Millis(1234);
    http::Frame cancel;
    cancel.kind = http::Frame::Kind::Cancel;
    cancel.id = 7;
    http::Frame ok;
    ok.kind = http::Frame::Kind::Answer;
    ok.id = 8;
    ok.answer =
        http::Response{200, "application/json", "{\"access_token\":\"x\"}", {"retry-after: 30", "request-id: r-1"}};
    http::Frame bad;
    bad.kind = http::Frame::Kind::Answer;
    bad.id = 9;
    bad.answer = fail(Errc::Timeout, "POST https://login.example/token: timed out");
    std::string all = http::encode(req) + http::encode(cancel) + http::encode(ok) + http::encode(bad);
    for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{7}, all.size()}) {
      http::Decoder d;
      std::vector<http::Frame> got;
      for (std::size_t i = 0; i < all.size(); i += step) {
        d.feed(std::string_view(all).substr(i, step));
        while (auto f = d.next()) {
          REQUIRE(*f);
          got.push_back(std::move(**f));
        }
      }
      REQUIRE(got.size() == 4);
      CHECK(got[0].kind == http::Frame::Kind::Request);
      CHECK(got[0].request.body == req.request.body);
      CHECK(got[0].request.headers == req.request.headers);
      CHECK(got[0].request.timeout == Millis(1234));
      CHECK(got[1].kind == http::Frame::Kind::Cancel);
      CHECK(got[1].id == 7);
      REQUIRE(got[2].answer);
      CHECK(got[2].answer->status == 200);
      CHECK(got[2].answer->body == "{\"access_token\":\"x\"}");
      CHECK(got[2].answer->headers == ok.answer->headers);
      CHECK(got[2].answer->header("retry-after") == "30");
      CHECK(got[2].answer->header("retry") == "");
      REQUIRE_FALSE(got[3].answer);
      CHECK(got[3].answer.error().code == Errc::Timeout);
      CHECK(d.buffered() == 0);
    }
  }

  TEST_CASE("a malformed frame breaks the stream") {
    http::Decoder d;
    d.feed(std::string("\xff\xff\xff\xff", 4));
    auto f = d.next();
    REQUIRE(f);
    CHECK_FALSE(*f);
    d.feed(http::encode(http::Frame{}));
    auto g = d.next();
    REQUIRE(g);
    CHECK_FALSE(*g);  // no resynchronisation
    http::Decoder e;
    e.feed(std::string("\0\0\0\x0c\0\0\0\x08{\"x\":1}", 16));
    auto h = e.next();
    REQUIRE(h);
    CHECK_FALSE(*h);  // a head without an id
  }
}
