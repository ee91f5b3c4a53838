// SPDX-License-Identifier: MIT
// oauth/token: token and device answers as Microsoft's and Google's
// endpoints send them, and every way one can be wrong.
#include "oauth/token.h"

#include <doctest/doctest.h>

#include <string>

using namespace spoolgate::oauth;

namespace {

Token ok(long status, const std::string& body) {
  auto a = parse_token_answer(status, body);
  REQUIRE_MESSAGE(std::holds_alternative<Token>(a), body);
  return std::get<Token>(a);
}

Problem bad(long status, const std::string& body) {
  auto a = parse_token_answer(status, body);
  REQUIRE_MESSAGE(std::holds_alternative<Problem>(a), body);
  return std::get<Problem>(a);
}

}  // namespace

TEST_SUITE("oauth/token") {
  TEST_CASE("Microsoft's client_credentials answer") {
    Token t = ok(200, R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.eyJhdWQi.sig-_"})");
    CHECK(t.access == "eyJ0eXAi.eyJhdWQi.sig-_");
    CHECK(t.expires_in == 3599);
    CHECK(t.refresh.empty());
  }

  TEST_CASE("Google's refresh answer, and a rotated refresh token") {
    Token t = ok(200, R"({"access_token":"ya29.a0Af","expires_in":3920,"scope":"https://mail.google.com/","token_type":"Bearer"})");
    CHECK(t.scope == "https://mail.google.com/");
    Token r = ok(200, R"({"access_token":"a","refresh_token":"1//0new","expires_in":60,"token_type":"bearer"})");
    CHECK(r.refresh == "1//0new");
  }

  TEST_CASE("expires_in as a string of digits (older Microsoft endpoints), absent, or nonsense") {
    CHECK(ok(200, R"({"access_token":"a","expires_in":"3599"})").expires_in == 3599);
    CHECK(ok(200, R"({"access_token":"a"})").expires_in == 0);
    CHECK(ok(200, R"({"access_token":"a","expires_in":"12x"})").expires_in == 0);
    CHECK(ok(200, R"({"access_token":"a","expires_in":-5})").expires_in == 0);
    CHECK(ok(200, R"({"access_token":"a","expires_in":1e300})").expires_in == 0);
    CHECK(ok(200, R"({"access_token":"a","expires_in":99999999999999})").expires_in == 10LL * 365 * 86400);
  }

  TEST_CASE("an access token that could not go into an AUTH line unchanged is refused") {
    CHECK(bad(200, R"({"access_token":""})").kind == Problem::Kind::Transient);
    CHECK(bad(200, R"({"access_token":"a b"})").kind == Problem::Kind::Transient);
    CHECK(bad(200, "{\"access_token\":\"a\\r\\nMAIL FROM:<x>\"}").kind == Problem::Kind::Transient);
    CHECK(bad(200, "{\"access_token\":\"a\\u0001\"}").kind == Problem::Kind::Transient);
    CHECK(bad(200, R"({"access_token":7})").kind == Problem::Kind::Transient);
    CHECK(bad(200, R"({"access_token":"a","refresh_token":""})").kind == Problem::Kind::Transient);
    CHECK(bad(200, "{\"access_token\":\"" + std::string(16385, 'a') + "\"}").kind == Problem::Kind::Transient);
    CHECK(ok(200, "{\"access_token\":\"" + std::string(16384, 'a') + "\"}").access.size() == 16384);
  }

  TEST_CASE("a token type other than Bearer is a configuration matter") {
    Problem p = bad(200, R"({"access_token":"a","token_type":"mac"})");
    CHECK(p.kind == Problem::Kind::Misconfigured);
    CHECK(p.error.find("mac") != std::string::npos);
  }

  TEST_CASE("error answers: the code decides what to do") {
    Problem g = bad(400, R"({"error":"invalid_grant","error_description":"AADSTS70000: The provided grant has expired"})");
    CHECK(g.kind == Problem::Kind::Reauth);
    CHECK(g.error == "invalid_grant");
    CHECK(g.description.find("AADSTS70000") == 0);
    CHECK(g.status == 400);
    CHECK(bad(401, R"({"error":"invalid_client"})").kind == Problem::Kind::Misconfigured);
    CHECK(bad(400, R"({"error":"unauthorized_client"})").kind == Problem::Kind::Misconfigured);
    CHECK(bad(400, R"({"error":"invalid_scope"})").kind == Problem::Kind::Misconfigured);
    CHECK(bad(400, R"({"error":"authorization_pending"})").kind == Problem::Kind::Pending);
    CHECK(bad(400, R"({"error":"slow_down"})").kind == Problem::Kind::SlowDown);
    CHECK(bad(400, R"({"error":"expired_token"})").kind == Problem::Kind::Reauth);
    CHECK(bad(503, R"({"error":"temporarily_unavailable"})").kind == Problem::Kind::Transient);
    Problem h = bad(502, "<html>Bad Gateway</html>");
    CHECK(h.kind == Problem::Kind::Transient);
    CHECK(h.error == "HTTP 502");
    CHECK(bad(429, "").kind == Problem::Kind::Transient);
  }

  TEST_CASE("a 200 that is not a JSON object is transient") {
    CHECK(bad(200, "").kind == Problem::Kind::Transient);
    CHECK(bad(200, "[1,2]").kind == Problem::Kind::Transient);
    CHECK(bad(200, R"({"access_token":"a")").kind == Problem::Kind::Transient);
  }

  TEST_CASE("texts kept from an error answer are printable and short") {
    Problem p = bad(400, "{\"error\":\"x\\u001b[31m\",\"error_description\":\"" + std::string(1000, 'd') + "\"}");
    CHECK(p.error == "x?[31m");
    CHECK(p.description.size() == 300);
  }

  TEST_CASE("device authorization answers (RFC 8628 3.2): Microsoft's and Google's spelling") {
    auto m = parse_device_answer(200, R"({"user_code":"F7X2","device_code":"DAQABAAEAAAD","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser"})");
    REQUIRE(std::holds_alternative<DeviceCode>(m));
    CHECK(std::get<DeviceCode>(m).verification_uri == "https://microsoft.com/devicelogin");
    CHECK(std::get<DeviceCode>(m).interval == 5);
    auto g = parse_device_answer(200, R"({"device_code":"AH-1","user_code":"GQVQ-JKEC","verification_url":"https://www.google.com/device","expires_in":1800,"interval":5})");
    REQUIRE(std::holds_alternative<DeviceCode>(g));
    CHECK(std::get<DeviceCode>(g).verification_uri == "https://www.google.com/device");
    CHECK(std::get<DeviceCode>(g).expires_in == 1800);
    auto d = parse_device_answer(200, R"({"device_code":"x","verification_uri":"https://v"})");
    CHECK(std::holds_alternative<Problem>(d));
    auto e = parse_device_answer(400, R"({"error":"invalid_client"})");
    REQUIRE(std::holds_alternative<Problem>(e));
    CHECK(std::get<Problem>(e).kind == Problem::Kind::Misconfigured);
  }
}
