// SPDX-License-Identifier: MIT
// status/history: deliveries, deferrals and failures per hour over the last
// 24 hours, for the status page's chart, made from the delivery's running
// totals by sampling them (the daemon's one-second timer and each status
// request): no cost per message. Kept in memory: a restart starts it afresh (the
// Prometheus counters and the log are the long record). Pure.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace spoolgate::status {

struct Counts {
  std::uint64_t delivered = 0, deferred = 0, failed = 0;
};

struct Hour {
  std::int64_t start = 0;  // unix seconds, a whole hour
  Counts n;
};

class History {
 public:
  static constexpr int kHours = 24;
  // What the totals grew by since the last sample goes to the hour now_unix
  // is in (totals that went down, as after a restart of their owner, start
  // a new base).
  void sample(std::int64_t now_unix, const Counts& totals);
  // The last kHours hours, oldest first, the current one last; hours
  // without anything count 0.
  std::vector<Hour> hours(std::int64_t now_unix) const;

 private:
  std::map<std::int64_t, Counts> by_hour_;
  Counts last_;
};

}  // namespace spoolgate::status
