// SPDX-License-Identifier: MIT
// smtp/server and AUTH (RFC 4954, 4616): PLAIN and LOGIN read, offered only
// where allowed, required before MAIL where configured; the driver decides.
#include <doctest/doctest.h>

#include <memory>

#include "core/base64.h"
#include "machine.h"
#include "smtp/server.h"

using namespace spoolgate;
using namespace spoolgate::smtp;

using spoolgate::smtp::test::Machine;

namespace {

Machine auth_machine(ServerSettings::Auth auth, bool plaintext = true, bool starttls = false) {
  return Machine([=](ServerSettings& s) {
    s.auth = auth;
    s.auth_plaintext = plaintext;
    s.offer_starttls = starttls;
  });
}

std::string plain(const std::string& authz, const std::string& user, const std::string& pw) {
  return base64_encode(authz + std::string(1, '\0') + user + std::string(1, '\0') + pw);
}

}  // namespace

TEST_SUITE("smtp/auth") {
  TEST_CASE("PLAIN with an initial response; the driver says yes; MAIL then works") {
    Machine m = auth_machine(ServerSettings::Auth::Required);
    CHECK(m.feed("EHLO dev\r\n").second.find("250-AUTH PLAIN LOGIN\r\n") != std::string::npos);
    CHECK(m.feed("MAIL FROM:<a@b>\r\n").second == "530 5.7.0 Authentication required\r\n");
    auto [e, out] = m.feed("AUTH PLAIN " + plain("", "printer", "s3cret") + "\r\n");
    CHECK(e == EventType::Authenticate);
    CHECK(out.empty());
    CHECK(m.server->credentials().mechanism == "PLAIN");
    CHECK(m.server->credentials().user == "printer");
    CHECK(m.server->credentials().password == "s3cret");
    CHECK(m.server->next() == EventType::Authenticate);  // nothing else until the answer
    m.server->auth_result(true);
    CHECK(m.server->credentials().password.empty());
    CHECK(m.server->user() == "printer");
    CHECK(m.feed("").second == "235 2.7.0 Authentication successful\r\n");
    CHECK(m.feed("EHLO dev\r\n").second.find("AUTH") == std::string::npos);  // not again
    CHECK(m.feed("AUTH PLAIN " + plain("", "x", "y") + "\r\n").second == "503 5.5.1 Error: already authenticated\r\n");
    CHECK(m.feed("MAIL FROM:<a@b>\r\n").second.starts_with("250"));
  }

  TEST_CASE("LOGIN step by step, a wrong password, an abort, bad base64, an unknown mechanism") {
    Machine m = auth_machine(ServerSettings::Auth::Optional);
    m.feed("EHLO dev\r\n");
    CHECK(m.feed("AUTH LOGIN\r\n").second == "334 VXNlcm5hbWU6\r\n");
    CHECK(m.feed(base64_encode("scanner") + "\r\n").second == "334 UGFzc3dvcmQ6\r\n");
    CHECK(m.feed(base64_encode("wrong") + "\r\n").first == EventType::Authenticate);
    CHECK(m.server->credentials().user == "scanner");
    m.server->auth_result(false);
    CHECK(m.feed("").second == "535 5.7.8 Error: authentication failed\r\n");
    CHECK(m.server->user().empty());
    CHECK(m.feed("AUTH LOGIN " + base64_encode("scanner") + "\r\n").second == "334 UGFzc3dvcmQ6\r\n");
    CHECK(m.feed("*\r\n").second == "501 5.7.0 Authentication aborted\r\n");
    CHECK(m.feed("AUTH PLAIN\r\n").second == "334 \r\n");
    CHECK(m.feed("not base64!\r\n").second == "501 5.5.2 Error: cannot decode the response\r\n");
    CHECK(m.feed("AUTH CRAM-MD5\r\n").second == "504 5.5.4 Unrecognized authentication type\r\n");
    CHECK(m.feed("AUTH PLAIN " + base64_encode("no nul here") + "\r\n").second ==
          "501 5.5.2 Error: malformed PLAIN response\r\n");
    // Acting for another identity is refused without asking the driver.
    CHECK(m.feed("AUTH PLAIN " + plain("boss", "scanner", "pw") + "\r\n").second ==
          "535 5.7.8 Error: authentication failed\r\n");
    // Optional: mail without a login is fine.
    CHECK(m.feed("MAIL FROM:<a@b>\r\n").second.starts_with("250"));
    CHECK(m.feed("AUTH PLAIN " + plain("", "a", "b") + "\r\n").second ==
          "503 5.5.1 Error: MAIL transaction in progress\r\n");
  }

  TEST_CASE("not in plaintext where it must wait for STARTTLS; forgotten by STARTTLS; off means 502") {
    Machine m = auth_machine(ServerSettings::Auth::Required, false, true);
    std::string ehlo = m.feed("EHLO dev\r\n").second;
    CHECK(ehlo.find("AUTH") == std::string::npos);
    CHECK(m.feed("AUTH PLAIN " + plain("", "a", "b") + "\r\n").second ==
          "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
    CHECK(m.feed("MAIL FROM:<a@b>\r\n").second == "530 5.7.0 Must issue a STARTTLS command first\r\n");
    m.feed("STARTTLS\r\n");
    m.server->tls_started("TLSv1.3 x");
    CHECK(m.feed("EHLO dev\r\n").second.find("250-AUTH PLAIN LOGIN") != std::string::npos);
    CHECK(m.feed("AUTH PLAIN " + plain("", "a", "b") + "\r\n").first == EventType::Authenticate);
    m.server->auth_result(true);
    CHECK(m.feed("").second.starts_with("235"));

    Machine off = auth_machine(ServerSettings::Auth::Off);
    CHECK(off.feed("EHLO dev\r\n").second.find("AUTH") == std::string::npos);
    CHECK(off.feed("AUTH PLAIN " + plain("", "a", "b") + "\r\n").second ==
          "502 5.5.1 Error: command not implemented\r\n");
  }

  TEST_CASE("refusals before any password check are handed to the driver with the mechanism asked for") {
    Machine m = auth_machine(ServerSettings::Auth::Required, false, true);
    m.feed("EHLO dev\r\n");
    m.feed("AUTH login\r\n");
    auto r = m.server->take_auth_refusals();
    REQUIRE(r.size() == 1);
    CHECK(r[0].mechanism == "LOGIN");
    CHECK(r[0].reply == "538 5.7.11 Encryption required for requested authentication mechanism");
    CHECK(m.server->take_auth_refusals().empty());  // taken once
    m.feed("STARTTLS\r\n");
    m.server->tls_started("TLSv1.3 x");
    m.feed("EHLO dev\r\n");
    // Pipelined: both refusals come out of one read, in order; a name that
    // is no SASL mechanism is not repeated.
    m.feed("AUTH CRAM-MD5\r\nAUTH PL\x01AIN\r\n");
    r = m.server->take_auth_refusals();
    REQUIRE(r.size() == 2);
    CHECK(r[0].mechanism == "CRAM-MD5");
    CHECK(r[0].reply == "504 5.5.4 Unrecognized authentication type");
    CHECK(r[1].mechanism == "?");
    // A failed password check is the driver's: no refusal here.
    CHECK(m.feed("AUTH PLAIN " + plain("", "a", "b") + "\r\n").first == EventType::Authenticate);
    m.server->auth_result(false);
    m.feed("");
    CHECK(m.server->take_auth_refusals().empty());
    // Acting for someone else never reaches the driver: a refusal.
    m.feed("AUTH PLAIN " + plain("boss", "a", "b") + "\r\n");
    r = m.server->take_auth_refusals();
    REQUIRE(r.size() == 1);
    CHECK(r[0].reply == "535 5.7.8 Error: authentication failed");
    // Bounded between takes.
    for (int i = 0; i < 15; ++i) m.feed("AUTH X" + std::to_string(i) + "\r\n");
    CHECK(m.server->take_auth_refusals().size() == Server::kMaxAuthRefusals);
  }

  TEST_CASE("a locked-out client gets 421 and the machine closes") {
    Machine m = auth_machine(ServerSettings::Auth::Optional);
    m.feed("EHLO dev\r\n");
    m.feed("AUTH PLAIN " + plain("", "a", "b") + "\r\n");
    m.server->auth_locked();
    auto [e, out] = m.feed("");
    CHECK(e == EventType::Close);
    CHECK(out == "421 4.7.0 relay.test Error: too many failed logins, try again later\r\n");
  }
}

TEST_SUITE("smtp/devices") {
  TEST_CASE("sender_allowed: addresses and domains, case-insensitive; an empty list allows any") {
    DevicePolicy d{"scanner", {"scanner@lan.example", "@print.example"}, "", 0};
    CHECK(sender_allowed(d, "scanner@lan.example"));
    CHECK(sender_allowed(d, "Scanner@LAN.example"));
    CHECK(sender_allowed(d, "anyone@print.example"));
    CHECK_FALSE(sender_allowed(d, "anyone@sub.print.example"));
    CHECK_FALSE(sender_allowed(d, "scanner@lan.example.evil"));
    CHECK_FALSE(sender_allowed(d, ""));  // no bounces from a device
    CHECK(sender_allowed(DevicePolicy{}, ""));
  }

  TEST_CASE("a device's policy: its senders (550 5.7.1), size and From rewriting") {
    Machine m = auth_machine(ServerSettings::Auth::Optional);
    m.server->set_device(DevicePolicy{"scanner", {"scanner@lan.example"}, "", 1000});
    CHECK(m.feed("EHLO dev\r\n").second.find("250-SIZE 1000\r\n") != std::string::npos);
    CHECK(m.feed("MAIL FROM:<boss@example.com>\r\n").second ==
          "550 5.7.1 Sender address rejected: not allowed for scanner\r\n");
    CHECK(m.feed("MAIL FROM:<scanner@lan.example> SIZE=2000\r\n").second.starts_with("552 5.3.4"));
    CHECK(m.feed("MAIL FROM:<scanner@lan.example>\r\n").second.starts_with("250"));
  }

  TEST_CASE("over its rate: 450 4.7.1 at MAIL, and the next MAIL is asked again") {
    bool ok = false;
    Machine m([&ok](ServerSettings& s) { s.within_rate = [&ok] { return ok; }; });
    m.server->set_device(DevicePolicy{"ups", {}, "", 0});
    m.feed("EHLO dev\r\n");
    CHECK(m.feed("MAIL FROM:<ups@lan>\r\n").second == "450 4.7.1 Error: too much mail from ups, try again later\r\n");
    ok = true;
    CHECK(m.feed("MAIL FROM:<ups@lan>\r\n").second.starts_with("250"));
  }
}
