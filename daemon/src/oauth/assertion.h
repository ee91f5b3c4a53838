// SPDX-License-Identifier: MIT
// oauth/assertion: the JWTs spoolgate signs (RS256) to get a token.
//   - A client assertion (RFC 7523 2.2, RFC 7521 4.2), the JWT a
//     confidential client signs instead of sending a secret: header
//     {"alg":"RS256","typ":"JWT","x5t#S256":...}, claims aud (the token
//     endpoint), iss and sub (the client id), jti, nbf, iat and exp (ten
//     minutes).
//   - A Google service account's authorization grant (RFC 7523 2.1, the
//     JWT-bearer grant, as Google's OAuth 2.0 for server-to-server
//     applications describes it): header {"alg":"RS256","typ":"JWT",
//     "kid": the key's id}, claims iss (the account's email), scope, aud
//     (the token endpoint), sub (the user it acts for, by domain-wide
//     delegation), iat and exp (an hour), from the JSON key file Google
//     issues, read here too.
// The signature comes from the caller (tls/sign.h), so this stays pure and
// BoringSSL stays in tls/. Fuzzed (tests/fuzz/oauth_answer.cc: the key file).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace spoolgate::oauth {

using Signer = std::function<Result<std::string>(std::string_view signing_input)>;

struct AssertionInput {
  std::string token_url;
  std::string client_id;
  std::string thumbprint;  // SHA-256 of the certificate's DER, raw
  std::string jti;
  std::int64_t now = 0;  // unix seconds
};

Result<std::string> client_assertion(const AssertionInput& in, const Signer& sign);
// The form fields that carry it.
std::vector<std::pair<std::string, std::string>> assertion_fields(std::string jwt);
// RFC 4648 5, without padding.
std::string base64url(std::string_view in);

// What a service account's JSON key file holds that the grant needs.
struct ServiceAccountKey {
  std::string client_email;
  std::string private_key;  // PEM
  std::string private_key_id;
};
// Errc::Invalid, naming what is missing (never a value of the file), when
// it is not a service account key.
Result<ServiceAccountKey> parse_service_account_key(std::string_view json);

struct GrantInput {
  std::string token_url;
  std::string scope;
  std::string subject;  // the user the token is for
  std::int64_t now = 0;
};
Result<std::string> service_account_grant(const ServiceAccountKey& key, const GrantInput& in,
                                          const std::function<Result<std::string>(std::string_view)>& sign);

}  // namespace spoolgate::oauth
