// SPDX-License-Identifier: MIT
#include "smtp/reply.h"

#include <doctest/doctest.h>

#include "smtp/client.h"

using namespace spoolgate;
using namespace spoolgate::smtp;

TEST_SUITE("smtp/reply") {
  TEST_CASE("multiline replies split anywhere") {
    std::string text = "250-first\r\n250-second\r\n250 last\r\n";
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      ReplyParser p;
      REQUIRE(p.feed(text.substr(0, cut)));
      REQUIRE(p.feed(text.substr(cut)));
      auto r = p.next();
      REQUIRE(r);
      CHECK(r->code == 250);
      CHECK(r->lines == std::vector<std::string>{"first", "second", "last"});
      CHECK_FALSE(p.next());
    }
  }
  TEST_CASE("garbage, inconsistent and out-of-range codes are protocol errors") {
    for (const char* bad : {"hello\r\n", "250-a\r\n251 b\r\n", "650 x\r\n", "290 x\r\n", "25\r\n", "250x\r\n"}) {
      ReplyParser p;
      CAPTURE(bad);
      CHECK_FALSE(p.feed(bad));
    }
  }
  TEST_CASE("a bare code line and bounds") {
    ReplyParser p;
    REQUIRE(p.feed("250\r\n"));
    CHECK(p.next()->code == 250);
    ReplyParser q;
    CHECK_FALSE(q.feed(std::string(5000, '2')));
    ReplyParser m;
    std::string many;
    for (int i = 0; i < 200; ++i) many += "250-x\r\n";
    CHECK_FALSE(m.feed(many));
  }
  TEST_CASE("the longest line passes however its CRLF is split; one octet more fails either way") {
    // Found by fuzz_reply_parser: a line of exactly kMaxLine octets whose
    // CR ended one read and LF began the next was refused, whole it passed.
    for (size_t extra : {0, 1}) {
      std::string line = "250 " + std::string(ReplyParser::kMaxLine - 4 + extra, 'x') + "\r\n";
      for (size_t cut : {line.size() - 2, line.size() - 1, line.size()}) {
        CAPTURE(extra);
        CAPTURE(cut);
        ReplyParser p;
        bool ok = p.feed(line.substr(0, cut)) && p.feed(line.substr(cut));
        CHECK(ok == (extra == 0));
      }
    }
  }
  TEST_CASE("capabilities, including the old AUTH= form") {
    ReplyParser p;
    REQUIRE(p.feed(
        "250-mx\r\n250-SIZE 35882577\r\n250-AUTH=LOGIN\r\n250-auth plain xoauth2\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n"));
    auto caps = Capabilities::parse(*p.next());
    CHECK(caps.max_size == 35882577);
    CHECK(caps.starttls);
    CHECK(caps.smtputf8);
    CHECK(caps.has_auth("LOGIN"));
    CHECK(caps.has_auth("XOAUTH2"));
    CHECK_FALSE(caps.pipelining);
  }
}
