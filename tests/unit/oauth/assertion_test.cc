// SPDX-License-Identifier: MIT
// oauth/assertion: the client assertion JWT has the header and claims
// Microsoft's certificate credentials expect, base64url without padding, and
// the signature over exactly "header.claims".
#include "oauth/assertion.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/base64.h"

using namespace spoolgate;

namespace {

std::string unurl(std::string s) {
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (s.size() % 4) s += '=';
  return base64_decode(s).value_or("?");
}

}  // namespace

TEST_SUITE("oauth/assertion") {
  TEST_CASE("base64url: RFC 4648 5 without padding") {
    CHECK(oauth::base64url("") == "");
    CHECK(oauth::base64url("f") == "Zg");
    CHECK(oauth::base64url(std::string("\xfb\xff", 2)) == "-_8");
  }

  TEST_CASE("header, claims and the signature over header.claims") {
    oauth::AssertionInput in{"https://login.example/t/oauth2/v2.0/token", "app-1", std::string(32, '\x01'), "jti-1",
                             1'800'000'000};
    std::string signed_input;
    auto jwt = oauth::client_assertion(in, [&](std::string_view data) {
      signed_input = std::string(data);
      return Result<std::string>(std::string("SIG"));
    });
    REQUIRE(jwt);
    auto dot1 = jwt->find('.'), dot2 = jwt->rfind('.');
    REQUIRE(dot1 != std::string::npos);
    REQUIRE(dot2 > dot1);
    CHECK(jwt->substr(0, dot2) == signed_input);
    CHECK(jwt->find('=') == std::string::npos);
    auto header = nlohmann::json::parse(unurl(jwt->substr(0, dot1)));
    CHECK(header["alg"] == "RS256");
    CHECK(header["typ"] == "JWT");
    CHECK(header["x5t#S256"] == oauth::base64url(std::string(32, '\x01')));
    auto claims = nlohmann::json::parse(unurl(jwt->substr(dot1 + 1, dot2 - dot1 - 1)));
    CHECK(claims["aud"] == in.token_url);
    CHECK(claims["iss"] == "app-1");
    CHECK(claims["sub"] == "app-1");
    CHECK(claims["jti"] == "jti-1");
    CHECK(claims["nbf"] == 1'800'000'000);
    CHECK(claims["exp"] == 1'800'000'600);
    CHECK(unurl(jwt->substr(dot2 + 1)) == "SIG");
    auto f = oauth::assertion_fields(*jwt);
    CHECK(f[0].second == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    CHECK(f[1].first == "client_assertion");
  }

  TEST_CASE("a signer that fails fails the assertion") {
    oauth::AssertionInput in;
    auto jwt = oauth::client_assertion(
        in, [](std::string_view) -> Result<std::string> { return fail(Errc::Invalid, "the key is not RSA"); });
    REQUIRE_FALSE(jwt);
    CHECK(jwt.error().detail == "the key is not RSA");
  }

  TEST_CASE("a service account's grant: the key file's account and key id, the user it acts for, an hour") {
    std::string file = R"({"type": "service_account", "project_id": "p", "private_key_id": "k1",
      "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
      "client_email": "relay@p.iam.gserviceaccount.com", "client_id": "1",
      "token_uri": "https://oauth2.googleapis.com/token"})";
    auto key = oauth::parse_service_account_key(file);
    REQUIRE(key);
    CHECK(key->client_email == "relay@p.iam.gserviceaccount.com");
    CHECK(key->private_key_id == "k1");
    CHECK(key->private_key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    std::string signed_input;
    auto jwt =
        oauth::service_account_grant(*key,
                                     {"https://oauth2.googleapis.com/token",
                                      "https://www.googleapis.com/auth/gmail.send", "scanner@a.example", 1'800'000'000},
                                     [&](std::string_view data) {
                                       signed_input = std::string(data);
                                       return Result<std::string>(std::string("SIG"));
                                     });
    REQUIRE(jwt);
    auto dot1 = jwt->find('.'), dot2 = jwt->rfind('.');
    CHECK(jwt->substr(0, dot2) == signed_input);
    auto header = nlohmann::json::parse(unurl(jwt->substr(0, dot1)));
    CHECK(header == nlohmann::json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "k1"}});
    auto claims = nlohmann::json::parse(unurl(jwt->substr(dot1 + 1, dot2 - dot1 - 1)));
    CHECK(claims == nlohmann::json{{"iss", "relay@p.iam.gserviceaccount.com"},
                                   {"scope", "https://www.googleapis.com/auth/gmail.send"},
                                   {"aud", "https://oauth2.googleapis.com/token"},
                                   {"sub", "scanner@a.example"},
                                   {"iat", 1'800'000'000},
                                   {"exp", 1'800'003'600}});
  }

  TEST_CASE("what is not a service account key is refused, naming what is missing and no value") {
    auto why = [](std::string_view f) {
      auto k = oauth::parse_service_account_key(f);
      return k ? std::string("accepted") : k.error().message();
    };
    CHECK(why("[]").find("not a JSON object") != std::string::npos);
    CHECK(why(R"({"type": "authorized_user", "client_secret": "s3cret"})").find("not a service account key") !=
          std::string::npos);
    CHECK(why(R"({"type": "service_account", "client_email": "a@b", "private_key_id": "k"})")
              .find("no \"private_key\"") != std::string::npos);
    std::string not_pem = why(R"({"type": "service_account", "client_email": "a@b", "private_key_id": "k",
                                  "private_key": "MIIsecret"})");
    CHECK(not_pem.find("not PEM") != std::string::npos);
    CHECK(not_pem.find("MIIsecret") == std::string::npos);
  }
}
