// SPDX-License-Identifier: MIT
// app/queue_cli: `spoolgate queue ...` verbs that read the spool directly.
#pragma once

#include "config/config.h"

namespace spoolgate::app {

// Prints the queue (mailq style, or a JSON array); returns the exit code.
int queue_list(const config::Config& cfg, bool json);

}  // namespace spoolgate::app
