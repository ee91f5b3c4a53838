// SPDX-License-Identifier: MIT
#include "status/history.h"

namespace spoolgate::status {
namespace {

std::int64_t hour_of(std::int64_t t) { return t - ((t % 3600) + 3600) % 3600; }

std::uint64_t grew(std::uint64_t now, std::uint64_t before) { return now >= before ? now - before : now; }

}  // namespace

void History::sample(std::int64_t now_unix, const Counts& totals) {
  Counts& h = by_hour_[hour_of(now_unix)];
  h.delivered += grew(totals.delivered, last_.delivered);
  h.deferred += grew(totals.deferred, last_.deferred);
  h.failed += grew(totals.failed, last_.failed);
  last_ = totals;
  std::int64_t oldest = hour_of(now_unix) - std::int64_t{kHours - 1} * 3600;
  while (!by_hour_.empty() && by_hour_.begin()->first < oldest) by_hour_.erase(by_hour_.begin());
}

std::vector<Hour> History::hours(std::int64_t now_unix) const {
  std::vector<Hour> out;
  std::int64_t current = hour_of(now_unix);
  for (int i = kHours - 1; i >= 0; --i) {
    Hour h;
    h.start = current - std::int64_t{i} * 3600;
    if (auto it = by_hour_.find(h.start); it != by_hour_.end()) h.n = it->second;
    out.push_back(h);
  }
  return out;
}

}  // namespace spoolgate::status
