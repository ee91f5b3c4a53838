// SPDX-License-Identifier: MIT
// oauth/refresher: when one upstream's access token is fetched, kept and
// dropped — decided without I/O or a clock of its own.
//
// The token manager owns one Refresher per OAuth upstream, tells it the
// time with every call, and does what it says: due() true means "send one
// token request now" (the manager then calls started(), and later
// answered() or failed()); next_wake() says when to ask again. So the
// timing is unit-tested with a fake clock (tests/unit/oauth/refresher_test.cc).
//
// The rules:
//   - a token is refreshed at 80 % of its lifetime (a lifetime the endpoint
//     did not give counts as an hour), so one is always ready before the
//     old one expires;
//   - never two requests at once: while one is out, nothing is due;
//   - a transient failure (HTTP 5xx or 429, a timeout, a malformed answer)
//     retries after 5 s, doubling up to 5 minutes; the current token stays
//     in use until it expires;
//   - consent gone (invalid_grant) or a wrong client (invalid_client, ...):
//     the named state that an operator must act on. The current token stays
//     in use until it expires; a new request goes out only every 15 minutes
//     or at once after reset() (a new `oauth login`, a reload);
//   - the provider refused the token we sent (rejected()): that token is
//     dropped and a new one is due at once — once per token, so a provider
//     that refuses every token does not get a request per session.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "oauth/token.h"

namespace spoolgate::oauth {

class Refresher {
 public:
  enum class State { Empty, Fresh, Refreshing, Failing, Reauth, Misconfigured };

  static constexpr std::int64_t kDefaultLifetimeMs = 3'600'000;
  static constexpr std::int64_t kFirstRetryMs = 5'000;
  static constexpr std::int64_t kMaxRetryMs = 300'000;      // 5 minutes
  static constexpr std::int64_t kOperatorRetryMs = 900'000;  // 15 minutes

  // A request should go out now.
  bool due(std::int64_t now) const;
  void started(std::int64_t now);
  // The endpoint's verdict. A token with a refresh token means the caller
  // stores the refresh token (rotated) before anything else.
  void answered(std::int64_t now, const TokenAnswer& a);
  // No answer at all (connect, TLS, timeout): transient.
  void failed(std::int64_t now, const std::string& why);
  // The server refused `token` at AUTH. True: it was the current token,
  // now dropped, and a new one is due (retry the session once it is there).
  bool rejected(const std::string& token);
  // An operator acted (login, reload): the next request is due at once.
  void reset();

  // The token to send now, if one is valid (not expired) at `now`.
  const std::string* token(std::int64_t now) const;
  // When due() may next become true (nullopt: only after an answer, or
  // after reset()).
  std::optional<std::int64_t> next_wake(std::int64_t now) const;

  State state(std::int64_t now) const;
  std::int64_t expires_at() const { return expires_at_; }   // ms; 0: no token
  std::int64_t last_attempt() const { return last_attempt_; }  // ms; 0: never
  const std::string& last_outcome() const { return last_outcome_; }  // "ok" or why not
  unsigned failures() const { return failures_; }

 private:
  std::string token_;
  std::int64_t expires_at_ = 0;
  std::int64_t refresh_at_ = 0;
  std::int64_t retry_at_ = 0;  // not before (after a failure)
  std::int64_t last_attempt_ = 0;
  std::string last_outcome_;
  std::string rejected_token_;  // the last token refused: not dropped twice
  unsigned failures_ = 0;
  bool in_flight_ = false;
  bool forced_ = false;
  std::optional<Problem::Kind> stuck_;  // Reauth or Misconfigured
};

const char* to_string(Refresher::State s);

}  // namespace spoolgate::oauth
