// SPDX-License-Identifier: MIT
// app/status: the daemon's state as a status::Report (status/report.h),
// for the status page (GET / on metrics.listen), GET /status.json and
// `spoolgate status` (the control socket's "status" verb).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "app/metrics.h"
#include "status/history.h"
#include "status/report.h"

namespace spoolgate::app {

// oldest: the queue's oldest messages, read from their records.
status::Report make_report(const Snapshot& s, const status::History& history, std::vector<status::Queued> oldest);

// An upstream's state and its last error, as the report names them
// (status::Upstream::state); oauth: its token's figures, if any.
std::pair<std::string, std::string> upstream_state(const upstream::SiteStats& st, const Snapshot::OAuth* oauth);
const Snapshot::OAuth* oauth_of(const Snapshot& s, const std::string& upstream);

// The delivery's running totals, as the history samples them.
status::Counts totals_of(const upstream::Stats& s);

}  // namespace spoolgate::app
