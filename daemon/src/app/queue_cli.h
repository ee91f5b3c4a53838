// SPDX-License-Identifier: MIT
// app/queue_cli: `spoolgate queue ...` verbs that read the spool directly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "config/config.h"
#include "spool/spool.h"

namespace spoolgate::app {

// Prints the queue (mailq style, or a JSON array); returns the exit code.
int queue_list(const config::Config& cfg, bool json);

// queue flush | retry ID | delete ID | show ID: through the running daemon's
// control socket, or on the spool directly when no daemon runs (holding the
// spool lock meanwhile). Returns the exit code.
int queue_command(const config::Config& cfg, const std::string& verb, const std::string& id);

// The `queue show` text for one message (also used by the daemon).
// `spoolgate health [--live]`: one line, exit 0 (healthy) or 1.
int health(const config::Config& cfg, bool live);
// `spoolgate status [--json]`: the running daemon's status report
// (status/report.h); exit 1 when no daemon answers.
int status(const config::Config& cfg, bool json);
// Asks the running daemon to reload (as SIGHUP does) and waits for the
// answer: 0 when it took the new configuration, 1 when it refused it (the
// reason on stderr) or no daemon answers.
int reload(const config::Config& cfg);

// What the running daemon knows of a queued message beyond its spool
// entry: being delivered, the route it waits for, held by a limit until.
struct Waiting {
  bool active = false;
  std::string route;            // group keys, ";" between groups; "" any upstream
  std::int64_t held_until = 0;  // unix seconds; 0: not held
  std::string held_reason;
};
// The control socket's "waiting" answer, both ways: one line per message
// "id TAB active TAB route TAB held_until TAB reason".
std::string encode_waiting(const std::map<std::string, Waiting>& w);
std::map<std::string, Waiting> decode_waiting(std::string_view text);

std::string show_message(const spool::Spool& spool, const std::string& id, const Waiting* w = nullptr);

}  // namespace spoolgate::app
