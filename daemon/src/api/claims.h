// SPDX-License-Identifier: MIT
// api/claims: what a Microsoft identity platform access token says it may
// do, for probe: the "roles" (application permissions) and "scp"
// (delegated scopes) claims of its payload. The token is not verified
// here (the API does that); this only reads what it claims, so that probe
// can say "Mail.Send is missing" before any mail waits on it. Google's
// tokens are opaque: nothing to read.
//
// Pure; fuzzed (tests/fuzz/api_answer.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spoolgate::api {

struct Claims {
  std::vector<std::string> roles;   // application permissions ("Mail.Send")
  std::vector<std::string> scopes;  // delegated ("Mail.Send", "offline_access")
  bool has(std::string_view permission) const;
};

// nullopt when the token is not a JWT with a JSON object payload.
std::optional<Claims> claims(std::string_view token);

}  // namespace spoolgate::api
