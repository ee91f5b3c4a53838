// SPDX-License-Identifier: MIT
// app/oauth_cli: `spoolgate oauth status` and `spoolgate oauth login`.
//
// status asks the running daemon (control socket: oauth-status), or reads
// the token store when no daemon answers. login signs in once for a
// refresh_token upstream with the device-code flow (RFC 8628: prints the
// URL and the code, polls the token endpoint, stores the result like the
// daemon does) and tells the running daemon (oauth-reload), which uses the
// new sign-in at once, without a restart. Run it as the daemon's user; run
// as root, the record is handed to the owner of the store's directory.
#pragma once

#include <ostream>
#include <string>

#include "config/config.h"

namespace spoolgate::app {

int oauth_status(const config::Config& cfg, bool json, std::ostream& out);
// upstream: empty (the only refresh_token upstream), a number counted from
// 0, or the name `oauth status` shows.
int oauth_login(const config::Config& cfg, const std::string& upstream, std::ostream& out);

}  // namespace spoolgate::app
