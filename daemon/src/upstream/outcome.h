// SPDX-License-Identifier: MIT
// upstream/outcome: what becomes of a message after an attempt, and the one
// way that is made durable.
//
// decide() turns a record whose recipient states the attempt has updated
// into a Verdict: every recipient done (remove it, or fail it with a report
// when some failed for good), the lifetime ran out (fail the pending
// recipients with a 4.4.7 report, RFC 3464), or defer it with backoff. It
// is the one place where delivery.max_lifetime is applied, so every
// deferral (a transaction's 4xx, a refused connection, a certificate that
// fails verification, a 535, a timeout) expires alike.
//
// persist() is the disk half and runs on a worker: it touches the spool and
// its arguments, nothing else (no scheduler, no settings). The loop half,
// Delivery::apply(), tells the scheduler, the usage counters, stats and
// logs, only after persist() returned: the spool is updated before the
// scheduler hears of it (STYLE.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "spool/spool.h"
#include "upstream/bounce.h"

namespace spoolgate::scheduler {
class Scheduler;
}

namespace spoolgate::upstream {

struct Verdict {
  enum class Action { Remove, Fail, Defer } action = Action::Defer;
  bool expired = false;  // Fail because delivery.max_lifetime ran out
  std::string reason;    // Fail: the report's and failed/ reason
  std::int64_t due = 0;  // Defer: the next attempt, unix milliseconds
  // Defer: the groups the message waits for next (routing/routes.h's route
  // string); set by Delivery, which knows the routes.
  std::string route;
  bool next_part = false;  // Defer: due now for the next group's first attempt this round
};

// rec: recipient states already updated by the attempt, attempts counted.
// failed: "<rcpt>: reply" for each recipient that failed in this attempt.
// Marks the pending recipients failed when the lifetime ran out, and sets
// next_attempt for a deferral. Every recipient done with some failed for
// good (in this attempt or an earlier one): Fail, so they are reported.
// round_goes_on: recipients of another route wait for their first attempt
// of this round (a split message): due now, no backoff.
Verdict decide(spool::Record& rec, const std::vector<std::string>& failed, const scheduler::Scheduler& sched,
               std::int64_t now_ms, bool round_goes_on = false);

// The lifetime ran out: fail every pending recipient (decide() uses it too).
Verdict expire(spool::Record& rec);

struct Persisted {
  Result<void> result;                  // the spool write's outcome
  std::optional<spool::Record> report;  // a failure report committed to the spool
};

// Worker side: remove, move to failed/ (with a report), or write the state.
Persisted persist(const std::shared_ptr<spool::Spool>& spool, const spool::Record& rec, const Verdict& v,
                  const FailOptions& fo);

}  // namespace spoolgate::upstream
