// SPDX-License-Identifier: MIT
// app/listeners: the configuration's `listen` list (and the limits sessions
// follow) as the listener's settings, with each TLS listener's certificate
// loaded and checked (the key matches the certificate, the certificate is
// valid now, a warning once it has less than 30 days left) and each AUTH
// listener's users_file read. Used at start,
// on every reload (a certificate replaced on disk is picked up by SIGHUP) and
// by check-config.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "listener/inbound.h"

namespace spoolgate::app {

// The socket part of a listen address (the metrics endpoint's too).
net::ListenSpec spec_of(const config::ListenAddress& l);
// Socket activation: the sockets systemd passed (`inherited`) replace the
// `listen` list (plain SMTP on each).
Result<listener::Settings> inbound_settings_from(const config::Config& c, const std::vector<int>& inherited);

// For check-config: a line per TLS listener (its certificate's subject and
// expiry) and per listener with AUTH (how many devices), or the first error.
Result<std::vector<std::string>> describe_listener_tls(const config::Config& c);

}  // namespace spoolgate::app
