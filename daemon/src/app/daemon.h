// SPDX-License-Identifier: MIT
// app/daemon: wiring. Owns the loop, the spool, the listener side and
// (later) the scheduler and upstreams; handles signals.
//
// Start-up is fatal on any error (bad spool, port in use) before anything is
// accepted. Shutdown (SIGTERM/SIGINT): stop listening, 421 to idle clients,
// let messages in progress finish until shutdown_timeout, close the rest, and
// check that the loop closes with no handle left (exit 0 only then).
#pragma once

#include "config/config.h"

namespace spoolgate::app {

// Runs until a shutdown signal; returns the process exit code.
int run_daemon(const config::Config& cfg);

}  // namespace spoolgate::app
