// SPDX-License-Identifier: MIT
#include "smtp/client.h"

#include <doctest/doctest.h>

#include "core/base64.h"

using namespace spoolgate;
using namespace spoolgate::smtp;

namespace {

ClientSettings settings(TlsMode tls, std::string user = "u@example.com") {
  ClientSettings s;
  s.helo = "relay.test";
  s.tls = tls;
  s.username = std::move(user);
  s.secret = "pw";
  return s;
}

// Feeds a server reply and returns the next event.
ClientEvent feed(Client& c, std::string_view reply) {
  c.receive(reply);
  return c.next();
}

const char* kEhloTls = "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";

}  // namespace

TEST_SUITE("smtp/client") {
  TEST_CASE("STARTTLS: required, injection-proof, and everything is learned again") {
    Client c(settings(TlsMode::StartTls));
    CHECK(feed(c, "220 hi\r\n") == ClientEvent::NeedInput);
    CHECK(c.take_output() == "EHLO relay.test\r\n");
    // Before TLS the server claims AUTH; we must not believe or use it.
    CHECK(feed(c, "250-x\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n") == ClientEvent::NeedInput);
    CHECK(c.take_output() == "STARTTLS\r\n");
    CHECK(feed(c, "220 go ahead\r\n") == ClientEvent::StartTls);
    c.tls_established();
    CHECK(c.capabilities().auth.empty());
    CHECK(c.take_output() == "EHLO relay.test\r\n");
    CHECK(feed(c, kEhloTls) == ClientEvent::NeedInput);
    std::string auth = c.take_output();
    CHECK(auth == "AUTH PLAIN " + base64_encode(std::string("\0u@example.com\0pw", 17)) + "\r\n");
    CHECK(feed(c, "235 ok\r\n") == ClientEvent::Ready);
  }

  TEST_CASE("bytes after the STARTTLS 220 abort the session") {
    Client c(settings(TlsMode::StartTls));
    feed(c, "220 hi\r\n");
    feed(c, "250-x\r\n250 STARTTLS\r\n");
    c.take_output();
    CHECK(feed(c, "220 ...\r\n250-x\r\n250 AUTH LOGIN\r\n") == ClientEvent::Failed);
    CHECK(c.failure().reason.find("response injection") != std::string::npos);
    CHECK(c.take_output().empty());
  }

  TEST_CASE("STARTTLS missing or refused is a failure, never a fallback") {
    Client a(settings(TlsMode::StartTls));
    feed(a, "220 hi\r\n");
    CHECK(feed(a, "250-x\r\n250 AUTH PLAIN\r\n") == ClientEvent::Failed);
    CHECK(a.take_output() == "EHLO relay.test\r\n");
    for (const char* refusal : {"454 4.7.0 TLS not available\r\n", "502 5.5.1 no\r\n"}) {
      Client b(settings(TlsMode::StartTls));
      feed(b, "220 hi\r\n");
      feed(b, "250-x\r\n250 STARTTLS\r\n");
      b.take_output();
      CHECK(feed(b, refusal) == ClientEvent::Failed);
      CHECK(b.take_output().empty());
    }
  }

  TEST_CASE("no credentials without TLS, whatever the configuration") {
    Client c(settings(TlsMode::None));
    feed(c, "220 hi\r\n");
    CHECK(feed(c, "250-x\r\n250 AUTH PLAIN\r\n") == ClientEvent::Failed);
    CHECK(c.failure().kind == Failure::Auth);
    CHECK(c.take_output() == "EHLO relay.test\r\n");
  }

  TEST_CASE("LOGIN and XOAUTH2 exchanges; 535 is an authentication failure") {
    auto s = settings(TlsMode::Implicit);
    s.auth = AuthMech::Login;
    Client c(s);
    feed(c, "220 hi\r\n");
    c.take_output();
    feed(c, kEhloTls);
    CHECK(c.take_output() == "AUTH LOGIN\r\n");
    feed(c, "334 VXNlcm5hbWU6\r\n");
    CHECK(c.take_output() == base64_encode("u@example.com") + "\r\n");
    feed(c, "334 UGFzc3dvcmQ6\r\n");
    CHECK(c.take_output() == base64_encode("pw") + "\r\n");
    CHECK(feed(c, "535 5.7.8 bad credentials\r\n") == ClientEvent::Failed);
    CHECK(c.failure().kind == Failure::Auth);

    s.auth = AuthMech::XOAuth2;
    s.secret = "tok";
    Client x(s);
    feed(x, "220 hi\r\n");
    x.take_output();
    feed(x, kEhloTls);
    CHECK(x.take_output() == "AUTH XOAUTH2 " +
                                 base64_encode("user=u@example.com\x01"
                                               "auth=Bearer tok\x01\x01") +
                                 "\r\n");
    feed(x, "334 " + base64_encode("{\"status\":\"401\"}") + "\r\n");
    CHECK(x.take_output() == "\r\n");
    // A refused token: the driver may get a new one and try once more.
    CHECK(feed(x, "535 5.7.8 rejected\r\n") == ClientEvent::TokenRefused);
    CHECK(x.failure().kind == Failure::Auth);
    CHECK(x.failure().reason.find("401") != std::string::npos);
    x.retry_auth("tok2");
    CHECK(x.next() == ClientEvent::NeedInput);
    CHECK(x.take_output() == "AUTH XOAUTH2 " +
                                 base64_encode("user=u@example.com\x01"
                                               "auth=Bearer tok2\x01\x01") +
                                 "\r\n");
    CHECK(feed(x, "535 5.7.8 rejected again\r\n") == ClientEvent::Failed);  // once per connection
    CHECK(x.failure().reason.find("rejected again") != std::string::npos);
  }

  TEST_CASE("an OAuth2 token: Auto takes OAUTHBEARER or XOAUTH2 from the EHLO after TLS, never PLAIN") {
    auto s = settings(TlsMode::Implicit, "relay,x=y@example.com");
    s.bearer = true;
    s.secret = "tok";
    Client b(s);
    feed(b, "220 hi\r\n");
    b.take_output();
    feed(b, "250-sink.test\r\n250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n250 8BITMIME\r\n");
    // RFC 7628 3.1; the user's ',' and '=' escaped as in RFC 5801.
    CHECK(b.take_output() == "AUTH OAUTHBEARER " +
                                 base64_encode("n,a=relay=2Cx=3Dy@example.com,\x01"
                                               "auth=Bearer tok\x01\x01") +
                                 "\r\n");
    // RFC 7628 3.2.3: the error challenge is answered with %x01.
    feed(b, "334 " + base64_encode(R"({"status":"invalid_token","scope":"x"})") + "\r\n");
    CHECK(b.take_output() == base64_encode("\x01") + "\r\n");
    CHECK(feed(b, "535 5.7.8 rejected\r\n") == ClientEvent::TokenRefused);
    b.retry_auth("tok2");
    CHECK(b.next() == ClientEvent::NeedInput);
    CHECK(b.take_output().find("AUTH OAUTHBEARER ") == 0);
    CHECK(feed(b, "235 2.7.0 ok\r\n") == ClientEvent::Ready);
    CHECK(b.authenticated());

    Client x(s);  // Microsoft 365 offers LOGIN XOAUTH2
    feed(x, "220 hi\r\n");
    x.take_output();
    feed(x, "250-sink.test\r\n250-AUTH LOGIN XOAUTH2\r\n250 8BITMIME\r\n");
    CHECK(x.take_output().find("AUTH XOAUTH2 ") == 0);
    // A temporary refusal is deferred, not retried with a new token.
    CHECK(feed(x, "454 4.7.0 try later\r\n") == ClientEvent::Failed);
    CHECK(x.failure().kind == Failure::Temporary);

    Client none(s);  // a token is never sent as a password
    feed(none, "220 hi\r\n");
    none.take_output();
    CHECK(feed(none, kEhloTls) == ClientEvent::Failed);
    CHECK(none.failure().reason.find("no AUTH mechanism for an OAuth2 token") != std::string::npos);
    CHECK(none.take_output().empty());
  }

  TEST_CASE("AUTH LOGIN: a challenge that is not base64 or asks for the wrong thing gets '*', never a secret") {
    auto s = settings(TlsMode::Implicit);
    s.auth = AuthMech::Login;
    struct Case {
      const char* first;
      const char* second;  // nullptr: the first already cancels
    };
    for (Case k : {Case{"334 not*base64!\r\n", nullptr}, Case{"334 UGFzc3dvcmQ6\r\n", nullptr},
                   Case{"334 VXNlcm5hbWU6\r\n", "334 VXNlcm5hbWU6\r\n"},
                   Case{"334 VXNlcm5hbWU6\r\n", "334 %%%\r\n"}}) {
      CAPTURE(k.first);
      Client c(s);
      feed(c, "220 hi\r\n");
      c.take_output();
      feed(c, kEhloTls);
      CHECK(c.take_output() == "AUTH LOGIN\r\n");
      feed(c, k.first);
      if (k.second) {
        CHECK(c.take_output() == base64_encode("u@example.com") + "\r\n");
        feed(c, k.second);
      }
      std::string out = c.take_output();
      CHECK(out == "*\r\n");
      CHECK(out.find(base64_encode("pw")) == std::string::npos);
      CHECK(feed(c, "501 5.7.0 cancelled\r\n") == ClientEvent::Failed);
      CHECK(c.failure().kind == Failure::Auth);
      CHECK(c.failure().reason.find("unexpected AUTH LOGIN challenge") != std::string::npos);
    }
    // An empty challenge (some servers) is answered in order.
    Client e(s);
    feed(e, "220 hi\r\n");
    e.take_output();
    feed(e, kEhloTls);
    e.take_output();
    feed(e, "334 \r\n");
    CHECK(e.take_output() == base64_encode("u@example.com") + "\r\n");
    feed(e, "334 \r\n");
    CHECK(e.take_output() == base64_encode("pw") + "\r\n");
  }

  TEST_CASE("a pipelined transaction with per-recipient results") {
    Client c(settings(TlsMode::Implicit, ""));
    feed(c, "220 hi\r\n");
    c.take_output();
    CHECK(feed(c, kEhloTls) == ClientEvent::Ready);
    Job j{"a@example.com", {"ok@x", "busy@x", "gone@x"}, 500, false, true};
    c.begin(j);
    CHECK(c.take_output() ==
          "MAIL FROM:<a@example.com> SIZE=500 BODY=8BITMIME\r\nRCPT TO:<ok@x>\r\nRCPT TO:<busy@x>\r\nRCPT "
          "TO:<gone@x>\r\nDATA\r\n");
    CHECK(feed(c, "250 ok\r\n250 ok\r\n451 later\r\n550 no\r\n354 go\r\n") == ClientEvent::SendContent);
    c.content_sent();
    CHECK(feed(c, "250 queued\r\n") == ClientEvent::Delivered);
    const auto& o = c.outcome();
    CHECK(o.recipients[0].code == 250);
    CHECK(o.recipients[1].code == 451);
    CHECK(o.recipients[2].code == 550);
    CHECK(o.content_sent);
    // The next message starts with RSET, in the same pipelined group.
    c.begin(Job{"", {"r@x"}, 10, false, false});
    CHECK(c.take_output() == "RSET\r\nMAIL FROM:<> SIZE=10\r\nRCPT TO:<r@x>\r\nDATA\r\n");
    CHECK(feed(c, "250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n") == ClientEvent::SendContent);
  }

  TEST_CASE("all recipients refused: a 354 anyway gets an empty data end") {
    Client c(settings(TlsMode::Implicit, ""));
    feed(c, "220 hi\r\n");
    c.take_output();
    feed(c, kEhloTls);
    c.begin(Job{"a@x", {"b@x"}, 5, false, false});
    c.take_output();
    CHECK(feed(c, "250 ok\r\n550 no\r\n354 go\r\n") == ClientEvent::NeedInput);
    CHECK(c.take_output() == ".\r\n");
    CHECK(feed(c, "554 no valid recipients\r\n") == ClientEvent::Delivered);
    CHECK(c.outcome().recipients[0].code == 550);
    CHECK_FALSE(c.outcome().content_sent);
  }

  TEST_CASE("without PIPELINING one command at a time") {
    Client c(settings(TlsMode::Implicit, ""));
    feed(c, "220 hi\r\n");
    c.take_output();
    feed(c, "250-mx\r\n250 SIZE\r\n");
    c.begin(Job{"a@x", {"b@x", "c@x"}, 5, false, false});
    CHECK(c.take_output() == "MAIL FROM:<a@x> SIZE=5\r\n");
    feed(c, "250 ok\r\n");
    CHECK(c.take_output() == "RCPT TO:<b@x>\r\n");
    feed(c, "250 ok\r\n");
    CHECK(c.take_output() == "RCPT TO:<c@x>\r\n");
    feed(c, "250 ok\r\n");
    CHECK(c.take_output() == "DATA\r\n");
  }

  TEST_CASE("too big for the server, or needing SMTPUTF8: refused before anything is sent") {
    Client c(settings(TlsMode::Implicit, ""));
    feed(c, "220 hi\r\n");
    c.take_output();
    feed(c, kEhloTls);
    c.begin(Job{"a@x", {"b@x"}, 5000, false, false});
    CHECK(c.next() == ClientEvent::Delivered);
    CHECK(c.outcome().recipients[0].code == 552);
    CHECK(c.take_output().empty());
    c.begin(Job{"a@x", {"b@x"}, 10, true, false});
    CHECK(c.next() == ClientEvent::Delivered);
    CHECK(c.outcome().recipients[0].code == 553);
    CHECK(c.take_output().empty());
  }

  TEST_CASE("421 anywhere ends the session") {
    Client c(settings(TlsMode::Implicit, ""));
    feed(c, "220 hi\r\n");
    feed(c, kEhloTls);
    c.begin(Job{"a@x", {"b@x"}, 5, false, false});
    CHECK(feed(c, "421 4.3.2 shutting down\r\n") == ClientEvent::Failed);
    CHECK(c.failure().during_job);
    CHECK(c.failure().kind == Failure::Temporary);
  }

  TEST_CASE("greeting refusals and garbage") {
    for (const char* g : {"554 go away\r\n", "421 busy\r\n", "HTTP/1.1 400\r\n"}) {
      Client c(settings(TlsMode::Implicit, ""));
      CAPTURE(g);
      CHECK(feed(c, g) == ClientEvent::Failed);
    }
  }
}
