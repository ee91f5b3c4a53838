// SPDX-License-Identifier: MIT
// The outbound state machine fed arbitrary server replies, the way a
// hostile or broken provider could answer. Oracles: with STARTTLS, nothing
// but EHLO/HELO/STARTTLS/QUIT goes out before TLS is up (never AUTH, MAIL
// or content); one transaction's commands per group (at most one MAIL before
// its outcome); a refused OAuth2 token is offered for one retry at most; the
// machine never loops without input.
#include "oracle.h"
#include "smtp/client.h"

using namespace spoolgate;

namespace {
bool allowed_before_tls(std::string_view out) {
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find("\r\n", pos);
    std::string_view line = out.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (!(line.starts_with("EHLO ") || line.starts_with("HELO ") || line == "STARTTLS" || line == "QUIT"))
      return false;
    if (end == std::string_view::npos) break;
    pos = end + 2;
  }
  return true;
}

size_t count(std::string_view out, std::string_view what) {
  size_t n = 0;
  for (size_t p = out.find(what); p != std::string_view::npos; p = out.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  smtp::ClientSettings s;
  s.helo = "relay.test";
  s.tls = in.ConsumeBool() ? smtp::TlsMode::StartTls : smtp::TlsMode::Implicit;
  int mech = in.ConsumeIntegralInRange<int>(0, 5);  // 5: Auto with an OAuth2 token
  s.auth = mech == 5 ? smtp::AuthMech::Auto : static_cast<smtp::AuthMech>(mech);
  s.bearer = mech >= 3;
  if (in.ConsumeBool()) {
    s.username = "user@example.com";
    s.secret = "s3cret";
  }
  bool tls = s.tls == smtp::TlsMode::Implicit;  // implicit: TLS before the greeting
  smtp::Client client(s);
  smtp::Job job{"a@example.com", {"b@example.com", "c@example.com"}, 100, in.ConsumeBool(), in.ConsumeBool()};
  int jobs = 0, mails_open = 0, token_refusals = 0;
  for (const std::string& piece : fuzz::chunks(in)) {
    client.receive(piece);
    for (int turns = 0;; ++turns) {
      SG_REQUIRE(turns < 1000);
      smtp::ClientEvent e = client.next();
      std::string out = client.take_output();
      if (!tls) SG_REQUIRE(allowed_before_tls(out));
      size_t mails = count(out, "MAIL FROM:");
      mails_open += static_cast<int>(mails);
      SG_REQUIRE(mails_open <= 1);
      if (e == smtp::ClientEvent::NeedInput) break;
      if (e == smtp::ClientEvent::StartTls) {
        SG_REQUIRE(!tls);
        tls = true;
        client.tls_established();
      } else if (e == smtp::ClientEvent::Ready) {
        SG_REQUIRE(tls);
        if (jobs++ < 2)
          client.begin(job);
        else
          client.quit();
      } else if (e == smtp::ClientEvent::SendContent) {
        SG_REQUIRE(tls);
        client.content_sent();
      } else if (e == smtp::ClientEvent::Delivered) {
        mails_open = 0;
      } else if (e == smtp::ClientEvent::TokenRefused) {
        SG_REQUIRE(tls && s.bearer);
        SG_REQUIRE(++token_refusals == 1);  // one retry per connection
        client.retry_auth("fresh-token");
      } else {  // Failed, Closed
        return 0;
      }
    }
  }
  client.connection_lost("end of input");
  for (int i = 0; i < 10 && client.next() != smtp::ClientEvent::NeedInput; ++i) {
  }
  return 0;
}
