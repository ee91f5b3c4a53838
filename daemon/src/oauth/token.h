// SPDX-License-Identifier: MIT
// oauth/token: what an OAuth2 endpoint answered, parsed and judged.
//
// The token endpoint's answers (RFC 6749 5.1 and 5.2) and the device
// authorization endpoint's (RFC 8628 3.2, 3.5), from the HTTP status and
// the JSON body, into values the token manager can act on without looking
// at JSON again. Every answer gets a verdict: a token, or a Problem whose
// kind says what to do (wait and retry, ask a person to sign in again, fix
// the configuration, keep polling).
//
// A token is accepted only when it can go into an AUTH line unchanged:
// visible ASCII, no space, at most 16 KiB. The texts kept from an error
// answer (error, error_description) are cut to printable ASCII and 300
// bytes, for logs and `oauth status`; a token is never part of them.
//
// Pure; fuzzed (tests/fuzz/oauth_answer.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace spoolgate::oauth {

struct Token {
  std::string access;
  std::int64_t expires_in = 0;  // seconds, as the endpoint said (0: it did not say)
  std::string refresh;          // a refresh token in the answer (rotated, or the first one), else empty
  std::string scope;
};

struct Problem {
  enum class Kind {
    Transient,      // try again later: 5xx, 429, temporarily_unavailable, a malformed answer
    Reauth,         // consent is gone (invalid_grant, expired or revoked refresh token): sign in again
    Misconfigured,  // the client is wrong (invalid_client, unauthorized_client, invalid_scope, ...)
    Pending,        // device flow: the person has not answered yet
    SlowDown,       // device flow: poll less often (RFC 8628 3.5)
  };
  Kind kind = Kind::Transient;
  std::string error;        // the endpoint's error code, or what was wrong with the answer
  std::string description;  // error_description, when given
  long status = 0;          // the HTTP status
};

using TokenAnswer = std::variant<Token, Problem>;
TokenAnswer parse_token_answer(long status, std::string_view body);

struct DeviceCode {
  std::string device_code;
  std::string user_code;
  std::string verification_uri;  // Microsoft: verification_uri; Google: verification_url
  std::string message;           // the provider's own instructions, when given
  std::int64_t expires_in = 900;
  std::int64_t interval = 5;
};

using DeviceAnswer = std::variant<DeviceCode, Problem>;
DeviceAnswer parse_device_answer(long status, std::string_view body);

// Safe to send in an AUTH line: 1..16384 bytes of %x21-7E.
bool valid_token(std::string_view s);
const char* to_string(Problem::Kind k);

}  // namespace spoolgate::oauth
