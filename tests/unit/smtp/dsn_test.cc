// SPDX-License-Identifier: MIT
#include "smtp/dsn.h"

#include <doctest/doctest.h>

using namespace spoolgate::smtp;

TEST_SUITE("smtp/dsn") {
  TEST_CASE("status codes come from the reply, or the class") {
    CHECK(status_of("550 5.1.1 no such user") == "5.1.1");
    CHECK(status_of("552 5.3.4 too big") == "5.3.4");
    CHECK(status_of("550 no such user") == "5.0.0");
    CHECK(status_of("554 x.1.1 odd") == "5.0.0");
    CHECK(status_of("") == "5.0.0");
  }
  TEST_CASE("an RFC 3464 report with original headers") {
    DsnInput in;
    in.hostname = "relay.test";
    in.queue_id = "QID0000000000001";
    in.dsn_id = "QID0000000000002";
    in.original_sender = "dev@lan";
    in.recipients = {{"gone@example.com", "550 5.1.1 no such user", false},
                     {"slow@example.com", "delivery time expired; last reply: 451 4.2.1 busy", true}};
    in.original_headers = "Subject: hi\r\n..dotted: header\r\n";
    std::string d = build_dsn(in);
    CHECK(d.find("Content-Type: multipart/report; "
                 "report-type=delivery-status;\r\n\tboundary=\"QID0000000000002/relay.test\"") != std::string::npos);
    CHECK(d.find("Auto-Submitted: auto-replied\r\n") != std::string::npos);
    CHECK(d.find("Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: "
                 "smtp; 550 5.1.1 no such user\r\n") != std::string::npos);
    CHECK(d.find("Final-Recipient: rfc822; slow@example.com\r\nAction: failed\r\nStatus: 4.4.7\r\n") !=
          std::string::npos);
    CHECK(d.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n..dotted: header\r\n") != std::string::npos);
    CHECK(d.ends_with("--QID0000000000002/relay.test--\r\n"));
    // Canonical: CRLF only, no lone dot line.
    CHECK(d.find("\r\n.\r\n") == std::string::npos);
    for (size_t i = 0; i < d.size(); ++i)
      if (d[i] == '\n') CHECK(d[i - 1] == '\r');
  }
}
