// SPDX-License-Identifier: MIT
// api/recipients: the copy sent through an API reaches exactly the
// envelope recipients the attempt carries.
#include "api/recipients.h"

#include <doctest/doctest.h>

using namespace spoolgate;

TEST_SUITE("api/recipients") {
  TEST_CASE("address lists: display names, comments, quotes, groups, folding") {
    using V = std::vector<std::string>;
    CHECK(api::addresses(" a@x.example") == V{"a@x.example"});
    CHECK(api::addresses(" \"Doe, John\" <john@x.example>, (boss) Jane <jane@y.example> (cfo)") ==
          V{"john@x.example", "jane@y.example"});
    CHECK(api::addresses(" team: a@x.example, b@x.example;, c@y.example") ==
          V{"a@x.example", "b@x.example", "c@y.example"});
    CHECK(api::addresses(" undisclosed-recipients:;") == V{});
    CHECK(api::addresses(" first@x.example,\r\n second@x.example") == V{"first@x.example", "second@x.example"});
    CHECK(api::addresses(" \"odd,local\"@x.example") == V{"\"odd,local\"@x.example"});
    CHECK(api::addresses(" <@relay.example:user@x.example>") == V{"user@x.example"});
    CHECK(api::addresses(" Printer <>") == V{});
  }

  TEST_CASE("To: and Cc: that name only carried recipients stay byte for byte; Bcc: adds the others") {
    std::string m =
        "Received: from printer\r\nFrom: scanner@lan\r\nTo: Boss <boss@x.example>\r\nSubject: scan\r\n\r\nbody\r\n";
    CHECK(api::for_recipients(m, {"boss@x.example"}) == m);
    CHECK(api::for_recipients(m, {"BOSS@x.example", "archive@x.example"}) ==
          "Received: from printer\r\nFrom: scanner@lan\r\nTo: Boss <boss@x.example>\r\nSubject: scan\r\n"
          "Bcc: archive@x.example\r\n\r\nbody\r\n");
  }

  TEST_CASE("a header address outside the envelope is never sent to; Bcc: fields are dropped") {
    std::string m =
        "From: ups@lan\r\nTo: a@x.example,\r\n b@x.example\r\nCc: c@x.example\r\nBcc: secret@x.example\r\n"
        "Subject: power\r\n\r\nbody\r\n";
    // b failed earlier (or goes through another upstream), c was never in the envelope.
    CHECK(api::for_recipients(m, {"a@x.example", "d@y.example"}) ==
          "From: ups@lan\r\nTo: a@x.example\r\nSubject: power\r\nBcc: d@y.example\r\n\r\nbody\r\n");
    // Bcc-only: the envelope names people no header does.
    CHECK(api::for_recipients("Subject: s\r\n\r\nb\r\n", {"p@x.example", "q@x.example"}) ==
          "Subject: s\r\nBcc: p@x.example,\r\n q@x.example\r\n\r\nb\r\n");
  }

  TEST_CASE("odd shapes: no body, no header block, a last line without CRLF") {
    CHECK(api::for_recipients("Subject: s\r\n", {"p@x.example"}) == "Subject: s\r\nBcc: p@x.example\r\n\r\n");
    CHECK(api::for_recipients("\r\nbody\r\n", {"p@x.example"}) == "Bcc: p@x.example\r\n\r\nbody\r\n");
    CHECK(api::for_recipients("To: p@x.example", {"p@x.example"}) == "To: p@x.example\r\n\r\n");
    // A field we cannot read an address from, but with an '@': dropped.
    CHECK(api::for_recipients("To: (p@x.example\r\n\r\nb\r\n", {"p@x.example"}) == "Bcc: p@x.example\r\n\r\nb\r\n");
    CHECK(api::for_recipients("To: undisclosed-recipients:;\r\n\r\nb\r\n", {"p@x.example"}) ==
          "To: undisclosed-recipients:;\r\nBcc: p@x.example\r\n\r\nb\r\n");
    // "To:" inside the body is the body.
    CHECK(api::for_recipients("S: 1\r\n\r\nTo: z@x.example\r\n", {"p@x.example"}) ==
          "S: 1\r\nBcc: p@x.example\r\n\r\nTo: z@x.example\r\n");
  }
}
