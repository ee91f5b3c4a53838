// SPDX-License-Identifier: MIT
#include "smtp/address.h"

#include <doctest/doctest.h>

using namespace spoolgate::smtp;

TEST_SUITE("smtp/address") {
  TEST_CASE("the envelope is re-serialised from parsed values") {
    auto p = parse_path("<\"john doe\"@example.com>", PathKind::Recipient);
    REQUIRE(p.error == PathError::Ok);
    CHECK(p.mailbox.local == "john doe");
    CHECK(p.mailbox.str() == "\"john doe\"@example.com");
    // A needlessly quoted dot-string comes out unquoted.
    auto q = parse_path("<\"john\"@example.com>", PathKind::Recipient);
    CHECK(q.mailbox.str() == "john@example.com");
    auto esc = parse_path("<\"a\\\"b\"@example.com>", PathKind::Recipient);
    REQUIRE(esc.error == PathError::Ok);
    CHECK(esc.mailbox.local == "a\"b");
    CHECK(esc.mailbox.str() == "\"a\\\"b\"@example.com");
  }

  TEST_CASE("source routes are accepted and dropped") {
    auto p = parse_path("<@a.example,@b.example:u@c.example>", PathKind::Sender);
    REQUIRE(p.error == PathError::Ok);
    CHECK(p.mailbox.str() == "u@c.example");
  }

  TEST_CASE("null sender, Postmaster and parameters") {
    auto n = parse_path("<> SIZE=100 BODY=8BITMIME", PathKind::Sender);
    REQUIRE(n.error == PathError::Ok);
    CHECK(n.mailbox.null());
    REQUIRE(n.params.size() == 2);
    CHECK(n.params[0].keyword == "SIZE");
    CHECK(n.params[0].value == "100");
    CHECK(parse_path("<>", PathKind::Recipient).error == PathError::Syntax);
    CHECK(parse_path("<postmaster>", PathKind::Recipient).error == PathError::Ok);
    CHECK(parse_path("<postmaster>", PathKind::Sender).error == PathError::Syntax);
    CHECK(parse_path("<a@b.example> smtputf8", PathKind::Sender).params.at(0).keyword == "SMTPUTF8");
    CHECK(parse_path("<a@b.example> =x", PathKind::Sender).error == PathError::BadParam);
    CHECK(parse_path("<a@b.example> A=", PathKind::Sender).error == PathError::BadParam);
  }

  TEST_CASE("malformed paths") {
    for (const char* bad :
         {"<a@b", "a@b>", "<a..b@example.com>", "<.a@example.com>", "<a@example..com>", "<a@example.com.>",
          "<a@-x.com>", "<a@x-.com>", "<@x:a@b.com", "<a@[1.2.3]>", "<a@[]>", "<\"unterminated@example.com>",
          "<a\x01@example.com>", "<a@b.com>x", "<a@exa mple.com>", "", "<>"}) {
      CAPTURE(bad);
      CHECK(parse_path(bad, PathKind::Recipient).error != PathError::Ok);
    }
  }

  TEST_CASE("length limits of RFC 5321 4.5.3.1") {
    std::string local(64, 'a');
    CHECK(parse_path("<" + local + "@example.com>", PathKind::Recipient).error == PathError::Ok);
    CHECK(parse_path("<" + local + "a@example.com>", PathKind::Recipient).error == PathError::TooLong);
    std::string domain;
    while (domain.size() < 250) domain += "abcdefghi.";
    domain += "com";
    CHECK(parse_path("<a@" + domain + ">", PathKind::Recipient).error == PathError::TooLong);
  }

  TEST_CASE("UTF-8 is flagged, and must be well-formed") {
    auto p = parse_path("<j\xc3\xb6rg@example.com>", PathKind::Sender);
    REQUIRE(p.error == PathError::Ok);
    CHECK(p.mailbox.utf8);
    CHECK(parse_path("<j\xc3@example.com>", PathKind::Sender).error == PathError::BadUtf8);
    CHECK(parse_path("<\xc0\xaf@example.com>", PathKind::Sender).error == PathError::BadUtf8);
    CHECK_FALSE(parse_path("<a@example.com>", PathKind::Sender).mailbox.utf8);
  }

  TEST_CASE("bare mailboxes from legacy devices") {
    auto p = parse_path("alerts@example.com SIZE=10", PathKind::Sender);
    REQUIRE(p.error == PathError::Ok);
    CHECK(p.mailbox.str() == "alerts@example.com");
    CHECK(p.params.size() == 1);
  }
}
