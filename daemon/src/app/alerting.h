// SPDX-License-Identifier: MIT
// app/alerting: what the operator is told without mail (issue 18). Turns
// the daemon's snapshot into conditions once a second (an upstream
// unusable for longer than notify_thresholds.upstream_down, or waiting for
// a new sign-in or refusing our account; the oldest queued message older
// than queue_age; the spool over its watermark or not writable; a
// certificate expiring within `expiry`; a missed heartbeat; a crash loop),
// raises, reminds and clears them (notify/alerts.h), adds the one-off
// "message failed for good", and hands every event to notify::Sender,
// which keeps it in <spool>/notify/ until each target took it.
//
// The crash loop: <spool>/notify/running exists while a daemon runs and is
// removed by a clean stop; a start that finds it counts an unclean stop
// (<spool>/notify/unclean keeps the last hour's). More than
// notify_thresholds.crash_loop of them within an hour is the condition.
//
// What is raised is kept in <spool>/notify/alerts.state (notify/alerts.h:
// save), so that a restart neither raises a condition again nor forgets to
// clear one. The active alerts are on the status page whether or not a
// target is configured. Nothing here runs per message but the one-off.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "app/metrics.h"
#include "config/config.h"
#include "http/fetcher.h"
#include "loop/loop.h"
#include "notify/alerts.h"
#include "notify/sender.h"
#include "spool/record.h"
#include "status/report.h"

namespace spoolgate::app {

struct AlertThresholds {
  std::int64_t upstream_down = 600, queue_age = 3600, expiry = 14 * std::int64_t{86'400}, repeat = 4 * std::int64_t{3600};  // seconds
  std::uint64_t crash_loop = 3;
};
AlertThresholds thresholds_of(const config::Config& c);

// The conditions true in `s` (pure). unclean: the unclean stops' times.
// undecided: the conditions that cannot be told to have ended (an upstream
// not delivering yet: one raised before stays raised until it delivers).
using Keys = std::set<std::pair<std::string, std::string>>;
std::vector<notify::Condition> conditions_of(const Snapshot& s, const AlertThresholds& t,
                                             const std::vector<std::int64_t>& unclean, Keys* undecided = nullptr);
// The one-off event's condition for a message failed for good.
notify::Condition failed_condition(const spool::Record& rec, const std::string& reason);

// At start (blocking): marks the daemon running and returns the unclean
// stops of the last hour, this one's included when the last run did not
// end cleanly. clean_stop() removes the mark.
Result<std::vector<std::int64_t>> note_start(const std::string& dir, std::int64_t now);
void note_clean_stop(const std::string& dir);

class Alerting {
 public:
  Alerting(loop::Loop& loop, http::Fetcher& fetcher, const std::string& spool_dir, std::string hostname);

  // Notes the start (crash loop), takes the targets, reads the outbox.
  Result<void> start(const config::Config& cfg);
  void configure(const config::Config& cfg);
  void evaluate(const Snapshot& s);
  void message_failed(const spool::Record& rec, const std::string& reason);
  // No more sending (what is pending stays in the outbox); the stop was
  // clean once the daemon's loop has ended.
  void close();
  void stopped_cleanly();

  std::vector<status::Alert> active() const;
  std::size_t pending() const { return sender_.pending(); }
  const notify::SenderStats& stats() const { return sender_.stats(); }

 private:
  void save_state();

  loop::Loop& loop_;
  std::string dir_;
  AlertThresholds thresholds_;
  notify::Alerts alerts_;
  notify::Sender sender_;
  std::vector<std::int64_t> unclean_;
  bool started_ = false;
  bool writing_ = false, dirty_ = false;
};

}  // namespace spoolgate::app
