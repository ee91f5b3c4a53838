// SPDX-License-Identifier: MIT
// app/status: the daemon's state as a status::Report (status/report.h),
// for the status page (GET / on metrics.listen), GET /status.json and
// `spoolgate status` (the control socket's "status" verb).
#pragma once

#include <vector>

#include "app/metrics.h"
#include "status/history.h"
#include "status/report.h"

namespace spoolgate::app {

// oldest: the queue's oldest messages, read from their records.
status::Report make_report(const Snapshot& s, const status::History& history, std::vector<status::Queued> oldest);

// The delivery's running totals, as the history samples them.
status::Counts totals_of(const upstream::Stats& s);

}  // namespace spoolgate::app
