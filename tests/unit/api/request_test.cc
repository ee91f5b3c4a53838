// SPDX-License-Identifier: MIT
// api/request: the send and probe requests of each API, as the providers
// document them.
#include "api/request.h"

#include <doctest/doctest.h>

#include "core/base64.h"

using namespace spoolgate;
using api::Kind;

TEST_SUITE("api/request") {
  TEST_CASE("Graph: MIME sendMail, base64 as text/plain, the mailbox in the path") {
    auto r = api::send_request(Kind::Graph, "https://graph.microsoft.us/", "relay+x@contoso.com", "tok",
                               "Subject: s\r\n\r\nb\r\n", "K1KH0000000000AA-1");
    CHECK(r.method == "POST");
    CHECK(r.url == "https://graph.microsoft.us/v1.0/users/relay%2Bx@contoso.com/sendMail");
    CHECK(r.body == base64_encode("Subject: s\r\n\r\nb\r\n"));
    CHECK(r.headers == std::vector<std::string>{"Authorization: Bearer tok", "Content-Type: text/plain",
                                                "client-request-id: K1KH0000000000AA-1"});
  }

  TEST_CASE("Gmail: media upload of message/rfc822, the message as it is") {
    auto r = api::send_request(Kind::Gmail, api::default_base(Kind::Gmail), "me", "tok", "Subject: s\r\n\r\nb\r\n", "");
    CHECK(r.url == "https://gmail.googleapis.com/upload/gmail/v1/users/me/messages/send?uploadType=media");
    CHECK(r.body == "Subject: s\r\n\r\nb\r\n");
    CHECK(r.headers == std::vector<std::string>{"Authorization: Bearer tok", "Content-Type: message/rfc822"});
  }

  TEST_CASE("probe requests send nothing") {
    auto g = api::probe_request(Kind::Graph, "https://graph.microsoft.com", "a/b@c", "t");
    CHECK(g.method == "GET");
    CHECK(g.url == "https://graph.microsoft.com/v1.0/users/a%2Fb@c?$select=mail");
    CHECK(api::probe_request(Kind::Gmail, "https://gmail.googleapis.com", "me", "t").url ==
          "https://gmail.googleapis.com/gmail/v1/users/me/profile");
  }
}

#include "api/claims.h"

TEST_SUITE("api/claims") {
  TEST_CASE("roles and scp of a Microsoft token; anything else is not a JWT") {
    auto jwt = [](const std::string& payload) {
      std::string p = base64_encode(payload);
      for (char& c : p) c = c == '+' ? '-' : c == '/' ? '_' : c;
      while (!p.empty() && p.back() == '=') p.pop_back();
      return "eyJhbGciOiJSUzI1NiJ9." + p + ".sig";
    };
    auto app = api::claims(jwt(R"({"aud":"https://graph.microsoft.com","roles":["Mail.Send","User.Read.All"]})"));
    REQUIRE(app);
    CHECK(app->has("Mail.Send"));
    CHECK(app->has("mail.send"));
    auto delegated = api::claims(jwt(R"({"scp":"Mail.Send offline_access"})"));
    REQUIRE(delegated);
    CHECK(delegated->scopes == std::vector<std::string>{"Mail.Send", "offline_access"});
    auto none = api::claims(jwt(R"({"roles":["Calendars.Read"]})"));
    REQUIRE(none);
    CHECK_FALSE(none->has("Mail.Send"));
    CHECK_FALSE(api::claims("ya29.opaque-google-token"));
    CHECK_FALSE(api::claims("a.b.c"));
    CHECK_FALSE(api::claims(jwt("[1,2]")));
  }
}
