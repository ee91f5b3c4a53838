// SPDX-License-Identifier: MIT
// app/oauth_cli: `spoolgate oauth status` and `spoolgate oauth login`.
//
// status asks the running daemon (control socket: oauth-status), or reads
// the token store when no daemon answers. login signs in once for a
// refresh_token upstream (app/oauth_signin: the device code, or the browser
// with PKCE), stores the result like the daemon does and tells the running
// daemon (oauth-reload), which uses the new sign-in at once, without a
// restart. Run it as the daemon's user; run
// as root, the record is handed to the owner of the store's directory.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "config/config.h"

namespace spoolgate::app {

int oauth_status(const config::Config& cfg, bool json, std::ostream& out);
struct LoginOptions {
  // empty (the only refresh_token upstream), a number counted from 0, or the
  // name `oauth status` shows
  std::string upstream;
  bool browser = false;    // the browser flow even where a device code would do
  std::uint16_t port = 0;  // the browser flow's loopback port; 0: any free one
};
int oauth_login(const config::Config& cfg, const LoginOptions& options, std::ostream& out);

}  // namespace spoolgate::app
