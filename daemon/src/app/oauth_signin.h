// SPDX-License-Identifier: MIT
// app/oauth_signin: the one interactive step of OAuth, a person signing in
// once for a refresh_token upstream. Owns the two flows `oauth login` runs,
// each on its own loop, with the token endpoint reached through the https
// helper like the daemon's refreshes:
//
// - Device code (RFC 8628; Microsoft): prints the URL and the code, polls the
//   token endpoint until the person has signed in or the code expires.
// - Authorization code with PKCE (RFC 7636) and a loopback redirect (RFC
//   8252 7.3; Google, which grants Gmail's scope to no device flow): prints
//   the authorization URL, answers the browser's redirect on 127.0.0.1 (a
//   port of its own, or --port), checks the state, trades the code and the
//   verifier for the tokens, and tells the browser how it went. Answers that
//   are not for this sign-in (another state, another path) are refused and
//   the wait goes on.
//
// What it returns holds the refresh token; storing it is the caller's job.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>

#include "config/config.h"
#include "oauth/token.h"

namespace spoolgate::app {

enum class SignInFlow { DeviceCode, Browser };

// The flow `oauth login` uses for an upstream: the browser for Google and for
// an endpoint without device authorization, else the device code.
SignInFlow sign_in_flow(const config::OAuth& o, bool browser_asked);

// Runs the flow to the end; progress and any failure go to `out`. `port` is
// the browser flow's loopback port (0: one the kernel picks).
std::optional<oauth::Token> sign_in(const config::Upstream& u, SignInFlow flow, std::uint16_t port, std::ostream& out);

}  // namespace spoolgate::app
