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

Result<std::string> client_assertion(const AssertionInput& in, const Signer& sign) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5t#S256", base64url(in.thumbprint)}};
  nlohmann::json claims = {{"aud", in.token_url}, {"iss", in.client_id}, {"sub", in.client_id},
                           {"jti", in.jti},       {"nbf", in.now},       {"iat", in.now},
                           {"exp", in.now + 600}};
  auto dump = [](const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  std::string input = base64url(dump(header)) + "." + base64url(dump(claims));
  auto sig = sign(input);
  if (!sig) return tl::unexpected(sig.error());
  return input + "." + base64url(*sig);
}

std::vector<std::pair<std::string, std::string>> assertion_fields(std::string jwt) {
  return {{"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
          {"client_assertion", std::move(jwt)}};
}

}  // namespace spoolgate::oauth
