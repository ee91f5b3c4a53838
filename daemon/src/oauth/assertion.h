// SPDX-License-Identifier: MIT
// oauth/assertion: a client assertion (RFC 7523 2.2, RFC 7521 4.2), the
// JWT a confidential client signs instead of sending a secret: header
// {"alg":"RS256","typ":"JWT","x5t#S256":...}, claims aud (the token
// endpoint), iss and sub (the client id), jti, nbf, iat and exp (ten
// minutes). The signature comes from the caller (tls/sign.h), so this
// stays pure and BoringSSL stays in tls/.
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

}  // namespace spoolgate::oauth
