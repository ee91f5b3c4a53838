// SPDX-License-Identifier: MIT
#include "oauth/assertion.h"

#include <nlohmann/json.hpp>

#include "core/base64.h"

namespace spoolgate::oauth {

std::string base64url(std::string_view in) {
  std::string s = base64_encode(in);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

namespace {

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

Result<std::string> signed_jwt(const nlohmann::json& header, const nlohmann::json& claims, const Signer& sign) {
  std::string input = base64url(dump(header)) + "." + base64url(dump(claims));
  auto sig = sign(input);
  if (!sig) return tl::unexpected(sig.error());
  return input + "." + base64url(*sig);
}

}  // namespace

Result<ServiceAccountKey> parse_service_account_key(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::Invalid, "not a JSON object (a service account key is)");
  auto str = [&j](const char* name) -> std::string {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (str("type") != "service_account")
    return fail(Errc::Invalid, "not a service account key (\"type\" is not \"service_account\")");
  ServiceAccountKey k{str("client_email"), str("private_key"), str("private_key_id")};
  for (auto [name, v] : {std::pair<const char*, const std::string*>{"client_email", &k.client_email},
                         {"private_key", &k.private_key},
                         {"private_key_id", &k.private_key_id}})
    if (v->empty()) return fail(Errc::Invalid, std::string("the key has no \"") + name + "\"");
  if (!k.private_key.starts_with("-----BEGIN ")) return fail(Errc::Invalid, "the key's \"private_key\" is not PEM");
  return k;
}

Result<std::string> service_account_grant(const ServiceAccountKey& key, const GrantInput& in, const Signer& sign) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", key.private_key_id}};
  nlohmann::json claims = {{"iss", key.client_email}, {"scope", in.scope}, {"aud", in.token_url},
                           {"sub", in.subject},       {"iat", in.now},     {"exp", in.now + 3600}};
  return signed_jwt(header, claims, sign);
}

Result<std::string> client_assertion(const AssertionInput& in, const Signer& sign) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5t#S256", base64url(in.thumbprint)}};
  nlohmann::json claims = {{"aud", in.token_url}, {"iss", in.client_id}, {"sub", in.client_id}, {"jti", in.jti},
                           {"nbf", in.now},       {"iat", in.now},       {"exp", in.now + 600}};
  return signed_jwt(header, claims, sign);
}

std::vector<std::pair<std::string, std::string>> assertion_fields(std::string jwt) {
  return {{"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
          {"client_assertion", std::move(jwt)}};
}

}  // namespace spoolgate::oauth
