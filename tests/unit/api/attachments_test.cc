// SPDX-License-Identifier: MIT
// api/attachments: what Graph's large-message path takes out of a message,
// and that everything else stays as it was.
#include "api/attachments.h"

#include <doctest/doctest.h>

#include "core/base64.h"

using namespace spoolgate;

namespace {

std::string wrapped(const std::string& bytes) {
  std::string b64 = base64_encode(bytes), out;
  for (std::size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\r\n";
  return out;
}

std::string bytes_of(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i * 7 % 251));
  return s;
}

// Putting every carved part back where it stood gives the message again.
std::string rebuilt(const api::Split& s) {
  std::string out;
  std::size_t from = 0, pos = 0;
  for (const auto& c : s.carved) {
    std::size_t n = c.at - pos;
    out += s.draft.substr(from, n);
    from += n;
    out += c.raw;
    pos = c.at + c.raw.size();
  }
  return out + s.draft.substr(from);
}

}  // namespace

TEST_SUITE("api/attachments") {
  TEST_CASE("a scan: the PDF goes out, the text stays byte for byte, largest first and only as many as needed") {
    std::string pdf = bytes_of(40'000, 'a'), jpg = bytes_of(20'000, 'j'), small = bytes_of(900, 's');
    std::string m =
        "From: scanner@lan\r\nTo: ops@example.com\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n"
        "--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
        "--b2\r\nContent-Type: text/plain\r\n\r\nScanned.\r\n"
        "--b2\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        wrapped("<p>Scanned.</p>") +
        "--b2--\r\n"
        "--b1\r\nContent-Type: application/pdf; name=\"ignored.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment;\r\n filename=\"scan 0001.pdf\"\r\n\r\n" +
        wrapped(pdf) +
        "--b1\r\nContent-Type: image/JPEG\r\nContent-Transfer-Encoding: BASE64\r\nContent-ID: <logo@x>\r\n"
        "Content-Disposition: inline\r\n\r\n" +
        wrapped(jpg) +
        "--b1\r\nContent-Type: text/csv\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.csv\r\n\r\n" +
        wrapped(small) + "--b1--\r\nepilogue\r\n";
    SUBCASE("under the limit: nothing taken") {
      auto s = api::split_attachments(m, m.size());
      REQUIRE(s);
      CHECK(s->draft == m);
      CHECK(s->carved.empty());
    }
    SUBCASE("the PDF alone brings it under") {
      auto s = api::split_attachments(m, m.size() - 50'000);
      REQUIRE(s);
      REQUIRE(s->carved.size() == 1);
      const auto& a = s->carved[0].attachment;
      CHECK(a.name == "scan 0001.pdf");
      CHECK(a.content_type == "application/pdf");
      CHECK(a.bytes == pdf);
      CHECK_FALSE(a.is_inline);
      CHECK(s->draft.find("Scanned.") != std::string::npos);
      CHECK(s->draft.find("--b1\r\nContent-Type: image/JPEG") != std::string::npos);
      CHECK(rebuilt(*s) == m);
    }
    SUBCASE("all three, in the order they stood") {
      auto s = api::split_attachments(m, 800);
      REQUIRE(s);
      REQUIRE(s->carved.size() == 3);
      CHECK(s->carved[0].attachment.bytes == pdf);
      CHECK(s->carved[1].attachment.bytes == jpg);
      CHECK(s->carved[1].attachment.content_type == "image/jpeg");
      CHECK(s->carved[1].attachment.content_id == "logo@x");
      CHECK(s->carved[1].attachment.is_inline);
      CHECK(s->carved[1].attachment.name == "attachment-2");
      CHECK(s->carved[2].attachment.name == "r\xC3\xA9sum\xC3\xA9.csv");
      CHECK(s->carved[2].attachment.bytes == small);
      CHECK(rebuilt(*s) == m);
      // The draft is still well-formed: its delimiters close.
      CHECK(s->draft.find("--b2--\r\n--b1--\r\nepilogue") != std::string::npos);
    }
    SUBCASE("the text alone is too large: refused with the sizes") {
      auto s = api::split_attachments(m, 100);
      REQUIRE_FALSE(s);
      CHECK(s.error().message().find("more than the 100 bytes") != std::string::npos);
    }
  }

  TEST_CASE("what is not taken out") {
    std::string big = bytes_of(10'000, 'x');
    SUBCASE("a single-part message: no delimiter to take it out with") {
      std::string m = "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + wrapped(big);
      CHECK_FALSE(api::split_attachments(m, 1000));
    }
    SUBCASE("quoted-printable and text bodies, and base64 that does not decode") {
      std::string m =
          "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n"
          "Content-Transfer-Encoding: base64\r\n\r\n" +
          wrapped(big) + "--q\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
          std::string(10'000, 'q') +
          "\r\n--q\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!" + wrapped(big) +
          "--q--\r\n";
      CHECK_FALSE(api::split_attachments(m, 1000));
    }
    SUBCASE("a boundary that is only a prefix of a line is no delimiter") {
      std::string m =
          "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: image/png\r\n"
          "Content-Transfer-Encoding: base64\r\n\r\n" +
          wrapped(big) + "--qq\r\n" + wrapped(big) + "--q--\r\n";
      auto s = api::split_attachments(m, 1000);
      REQUIRE_FALSE(s);  // "--qq" made the part's base64 invalid: it stays
    }
  }

  TEST_CASE("an unclosed multipart: the last part runs to the end") {
    std::string big = bytes_of(5'000, 'u');
    std::string m =
        "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        "--z\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        wrapped(big);
    auto s = api::split_attachments(m, 1000);
    REQUIRE(s);
    REQUIRE(s->carved.size() == 1);
    CHECK(s->carved[0].attachment.bytes == big);
    CHECK(s->draft.ends_with("hi\r\n"));
    CHECK(rebuilt(*s) == m);
  }
}
