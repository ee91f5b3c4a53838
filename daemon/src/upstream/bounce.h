// SPDX-License-Identifier: MIT
// upstream/bounce: a message that failed for good leaves the queue.
//
// fail_message() runs on a worker thread: it reads the original header block
// (bounded), moves the message to failed/ with its reason, and when a
// report is due (bounce on, sender not <>) writes the RFC 3464 report to the
// spool as a new message from <> to the original sender, committed like any
// other (file fsync, rename, directory fsync). The report's record is
// returned for scheduling. A report is never made for a <> sender, so
// reports cannot bounce in a loop.
#pragma once

#include <optional>
#include <string>

#include "core/result.h"
#include "spool/spool.h"

namespace spoolgate::upstream {

struct FailOptions {
  bool bounce = true;
  std::string hostname;
  std::int64_t now = 0;
  bool expired = false;  // lifetime ran out (pending recipients failed for that)
};

Result<std::optional<spool::Record>> fail_message(const std::shared_ptr<spool::Spool>& spool, const spool::Record& rec,
                                                  const std::string& reason, const FailOptions& opt);

}  // namespace spoolgate::upstream
