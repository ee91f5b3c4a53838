// SPDX-License-Identifier: MIT
// smtp/server and STARTTLS (RFC 3207): offered only where configured and
// until TLS is up, nothing pipelined behind it is run, and everything learned
// before it is forgotten.
#include <doctest/doctest.h>

#include <memory>

#include "machine.h"
#include "smtp/server.h"

using namespace spoolgate::smtp;

using spoolgate::smtp::test::Machine;

namespace {

Machine tls_machine(bool offer) {
  return Machine([offer](ServerSettings& s) { s.offer_starttls = offer; });
}

}  // namespace

TEST_SUITE("smtp/starttls") {
  TEST_CASE("offered in EHLO only where configured, and no longer once TLS is up") {
    Machine plain = tls_machine(false);
    CHECK(plain.feed("EHLO dev\r\n").second.find("STARTTLS") == std::string::npos);
    CHECK(plain.feed("STARTTLS\r\n").second == "502 5.5.1 Error: command not implemented\r\n");

    Machine m = tls_machine(true);
    CHECK(m.feed("EHLO dev\r\n").second.find("250-STARTTLS\r\n") != std::string::npos);
    CHECK(m.feed("STARTTLS now\r\n").second == "501 5.5.4 Syntax: STARTTLS\r\n");
    auto [e, out] = m.feed("STARTTLS\r\n");
    CHECK(e == EventType::StartTls);
    CHECK(out == "220 2.0.0 Ready to start TLS\r\n");
    CHECK(m.server->next() == EventType::StartTls);  // nothing more until the handshake
    m.server->tls_started("TLSv1.3 TLS_AES_128_GCM_SHA256");
    CHECK(m.server->tls());
    auto [e2, ehlo] = m.feed("EHLO dev\r\n");
    CHECK(e2 == EventType::NeedInput);
    CHECK(ehlo.find("STARTTLS") == std::string::npos);
    CHECK(m.feed("STARTTLS\r\n").second == "554 5.5.1 Error: TLS already active\r\n");
  }

  TEST_CASE("commands pipelined behind STARTTLS are never run (the CVE-2011-0411 injection)") {
    Machine m = tls_machine(true);
    m.feed("EHLO dev\r\n");
    auto [e, out] = m.feed("STARTTLS\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<a@b>\r\n");
    CHECK(e == EventType::StartTls);
    CHECK(out == "220 2.0.0 Ready to start TLS\r\n");
    CHECK(m.server->discarded_after_starttls() == 35);
    m.server->tls_started("TLSv1.3 x");
    // Had MAIL survived, this would be a nested MAIL; and without a new EHLO
    // MAIL is refused: the EHLO before TLS is forgotten too.
    CHECK(m.feed("MAIL FROM:<a@b>\r\n").second == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  }

  TEST_CASE("not inside a transaction; the Received field says ESMTPS and the cipher") {
    Machine m = tls_machine(true);
    m.feed("EHLO dev\r\n");
    m.feed("MAIL FROM:<a@b>\r\n");
    CHECK(m.feed("STARTTLS\r\n").second == "503 5.5.1 Error: MAIL transaction in progress\r\n");
    m.feed("RSET\r\n");
    m.feed("STARTTLS\r\n");
    m.server->tls_started("TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256");
    m.feed("EHLO dev\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    std::string content;
    m.server->receive("Subject: x\r\n\r\nhi\r\n.\r\n");
    for (EventType e = m.server->next(); e != EventType::Wait; e = m.server->next())
      if (e == EventType::Content) content += m.server->take_content();
    CHECK(content.find("(using TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256)") != std::string::npos);
    CHECK(content.find("with ESMTPS id QID1") != std::string::npos);
  }
}
