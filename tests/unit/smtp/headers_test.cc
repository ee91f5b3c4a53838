// SPDX-License-Identifier: MIT
#include "smtp/headers.h"

#include <doctest/doctest.h>

using namespace spoolgate::smtp;

namespace {
std::string fix(const std::string& content, HeaderFixSettings s, size_t split = 0, bool* too_big = nullptr) {
  HeaderFixer f(std::move(s));
  std::string out;
  if (split == 0)
    f.feed(content, out);
  else
    for (size_t i = 0; i < content.size(); i += split) f.feed(std::string_view(content).substr(i, split), out);
  f.finish(out);
  if (too_big) *too_big = f.too_big();
  return out;
}
HeaderFixSettings base() {
  HeaderFixSettings s;
  s.received = "Received: x\r\n";
  s.message_id = "id@host";
  s.now = 0;
  return s;
}
}  // namespace

TEST_SUITE("smtp/headers") {
  TEST_CASE("missing Date and Message-ID are added at the end of the header block") {
    for (size_t split : {0, 1, 5}) {
      CHECK(fix("Subject: a\r\n\r\nbody\r\n", base(), split) ==
            "Received: x\r\nSubject: a\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: "
            "<id@host>\r\n\r\nbody\r\n");
    }
  }
  TEST_CASE("present fields are kept, case-insensitively") {
    CHECK(fix("date: x\r\nmessage-id: <a@b>\r\n\r\nb\r\n", base()) ==
          "Received: x\r\ndate: x\r\nmessage-id: <a@b>\r\n\r\nb\r\n");
  }
  TEST_CASE("a message without header fields gets a separating blank line") {
    auto s = base();
    s.add_missing = false;
    CHECK(fix("just text\r\nmore\r\n", s) == "Received: x\r\n\r\njust text\r\nmore\r\n");
    CHECK(fix(" indented start\r\n", s) == "Received: x\r\n\r\n indented start\r\n");
  }
  TEST_CASE("an empty message gets only the added fields") {
    auto s = base();
    s.add_missing = false;
    CHECK(fix("", s) == "Received: x\r\n");
  }
  TEST_CASE("rewrite_from replaces From, keeps the original as Reply-To unless present") {
    auto s = base();
    s.add_missing = false;
    s.rewrite_from = "alerts@example.com";
    CHECK(fix("From: dev@lan\r\n\r\nb\r\n", s) ==
          "Received: x\r\nFrom: <alerts@example.com>\r\nReply-To: dev@lan\r\n\r\nb\r\n");
    CHECK(fix("From: \"Dev\" <dev@lan>\r\nReply-To: r@lan\r\n\r\nb\r\n", s) ==
          "Received: x\r\nFrom: \"Dev\" <alerts@example.com>\r\nReply-To: r@lan\r\n\r\nb\r\n");
    CHECK(fix("Subject: s\r\n\r\nb\r\n", s) == "Received: x\r\nSubject: s\r\nFrom: <alerts@example.com>\r\n\r\nb\r\n");
  }
  TEST_CASE("an oversized header block is refused, not buffered") {
    auto s = base();
    s.max_header_bytes = 1000;
    bool too_big = false;
    std::string huge = "X-Long: " + std::string(5000, 'a') + "\r\n\r\nbody\r\n";
    CHECK(fix(huge, s, 100, &too_big).empty());
    CHECK(too_big);
  }
}
