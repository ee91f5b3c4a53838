// SPDX-License-Identifier: MIT
#include "smtp/data.h"

#include <doctest/doctest.h>

#include <string>

using spoolgate::smtp::DataDecoder;
using spoolgate::smtp::dot_stuff;
using spoolgate::smtp::dot_unstuff;

namespace {

struct Decoded {
  std::string content;
  bool done;
  size_t consumed;
  bool bare;
};

Decoded decode(std::string_view in, size_t split = 0) {
  DataDecoder d;
  std::string out;
  size_t used = 0;
  if (split == 0) {
    used = d.decode(in, out);
  } else {
    // Feed in pieces of `split` bytes: the decoder must not care.
    for (size_t i = 0; i < in.size() && !d.done(); i += split) used += d.decode(in.substr(i, split), out);
  }
  return {out, d.done(), used, d.saw_bare_newline()};
}

bool canonical(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return s.find("\r\n.\r\n") == std::string_view::npos && !s.starts_with(".\r\n");
}

}  // namespace

TEST_SUITE("smtp/data") {
  TEST_CASE("only CRLF.CRLF ends data") {
    auto d = decode("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    CHECK(d.done);
    CHECK(d.content == "Subject: x\r\n\r\nbody\r\n");
    CHECK(d.consumed == std::string("Subject: x\r\n\r\nbody\r\n.\r\n").size());
  }

  TEST_CASE("an empty message ends at once") {
    auto d = decode(".\r\n");
    CHECK(d.done);
    CHECK(d.content.empty());
  }

  TEST_CASE("every smuggling variant is content, never an end") {
    // Each variant is followed by a smuggled command and then the real end.
    using namespace std::string_literals;
    const std::string variants[] = {"\n.\n"s,       "\r.\r"s,       "\n.\r\n"s,       "\r\n.\n"s,
                                    "\r.\r\n"s,     "\r\n.\r"s,     "\r\r\n.\r\r\n"s, "\r\n.\r\r\n"s,
                                    "\r\n\0.\r\n"s, "\r\n.\0\r\n"s, "\n.\n\r\n"s,     "\r\n .\r\n"s};
    for (const std::string& variant : variants) {
      std::string msg = "Subject: t\r\n\r\nbody" + variant + "MAIL FROM:<evil@x>\r\n.\r\n";
      for (size_t split : {0, 1, 2, 3, 7}) {
        CAPTURE(variant);
        CAPTURE(split);
        auto d = decode(msg, split);
        CHECK(d.done);
        CHECK(d.consumed == msg.size());
        CHECK(canonical(d.content));
        CHECK(d.content.find("MAIL FROM:<evil@x>\r\n") != std::string::npos);
      }
    }
  }

  TEST_CASE("bare LF and bare CR become CRLF and are reported") {
    auto d = decode("a\nb\rc\r\n.\r\n");
    CHECK(d.done);
    CHECK(d.content == "a\r\nb\r\nc\r\n");
    CHECK(d.bare);
    auto clean = decode("a\r\nb\r\n.\r\n");
    CHECK_FALSE(clean.bare);
  }

  TEST_CASE("a bare CR before a real CRLF.CRLF does not hide the end") {
    auto d = decode("body\r\r\n.\r\nNOOP\r\n");
    CHECK(d.done);
    CHECK(d.content == "body\r\n\r\n");
  }

  TEST_CASE("CR CR LF is a bare CR then a line end") {
    auto d = decode("a\r\r\nb\r\n.\r\n");
    CHECK(d.content == "a\r\n\r\nb\r\n");
  }

  TEST_CASE("dot-unstuffing per RFC 5321 4.5.2, canonical form re-stuffed") {
    auto d = decode("..leading\r\n.x\r\n...\r\n\r\n.\r\n");
    CHECK(d.done);
    // "..leading" is ".leading" unstuffed, stored stuffed again; ".x" from a
    // client that forgot to stuff loses its dot; "..." is ".." unstuffed.
    CHECK(d.content == "..leading\r\nx\r\n...\r\n\r\n");
    CHECK(dot_unstuff(d.content) == ".leading\r\nx\r\n..\r\n\r\n");
  }

  TEST_CASE("a lone dot after a bare LF is stored as a stuffed dot") {
    auto d = decode("a\n.\nb\r\n.\r\n");
    CHECK(d.content == "a\r\n..\r\nb\r\n");
    CHECK(canonical(d.content));
  }

  TEST_CASE("stuffing then unstuffing is the identity") {
    for (std::string text : {"", ".\r\n", "..\r\n", "a\r\n.b\r\n", ".\r\n.\r\n..x\r\n"}) {
      CHECK(dot_unstuff(dot_stuff(text)) == text);
    }
  }
}
