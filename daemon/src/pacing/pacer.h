// SPDX-License-Identifier: MIT
// pacing/pacer: one upstream account's use of its provider's limits, and
// when a window that is full opens again. Pure logic with the caller's
// clock (milliseconds); no I/O. Delivery owns one Pacer per upstream,
// counts each transaction as it starts (what a provider counts at
// submission; counting before the reply can only make us slower, never
// over the limit) and persists the counters (encode/decode) in the spool,
// so a restart does not forget a day's use.
//
// Windows are sliding, not buckets that refill: "30 a minute" means no 60
// seconds ever hold more than 30 starts, which is what a provider that
// counts over a rolling minute enforces (a token bucket that starts full
// lets through twice its rate in the first minute). Per second and per
// minute the start times themselves are kept (at most the limit of them);
// per 24 hours, counts per minute (at most 1,440 entries), so a day window
// opens again up to a minute later than it exactly would.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace spoolgate::pacing {

// 0: no limit.
struct Limits {
  std::uint64_t max_connections = 0;  // sessions at once to this upstream
  std::uint64_t messages_per_second = 0;
  std::uint64_t messages_per_minute = 0;
  std::uint64_t messages_per_day = 0;    // rolling 24 hours
  std::uint64_t recipients_per_day = 0;  // rolling 24 hours
  std::uint64_t max_message_size = 0;    // bytes; larger: failed at once, never sent
  // Paced: a start has to be counted (and the counters persisted).
  bool paced() const { return messages_per_second || messages_per_minute || messages_per_day || recipients_per_day; }
};

// A full window: when it opens again and which limit it is.
struct Wait {
  std::int64_t until_ms = 0;
  std::string reason;  // "messages_per_minute 30 reached"
};

class Pacer {
 public:
  explicit Pacer(Limits l = {}) : l_(l) {}
  void set_limits(const Limits& l) { l_ = l; }
  const Limits& limits() const { return l_; }

  // nullopt: a transaction of `rcpts` recipients may start at now_ms.
  // Otherwise when every full window (and a block_until) has opened far
  // enough for it, and the reason of the last to open.
  std::optional<Wait> check(std::int64_t now_ms, std::uint64_t rcpts) const;
  // A transaction started: counted in every window. Returns the time it is
  // counted at (now_ms, or the last start's when the clock stepped back),
  // for restamp().
  std::int64_t count(std::int64_t now_ms, std::uint64_t rcpts);
  // The provider counts a message when it takes it, at the end of the
  // transaction, not when we started it: the start counted at `stamp` is
  // moved to now_ms, so a window opens only a full period after the
  // provider's own count (a transaction that outlasts the margin would
  // otherwise let the provider see one too many). Unknown stamps: nothing.
  void restamp(std::int64_t stamp, std::uint64_t rcpts, std::int64_t now_ms);
  // The provider said the account's quota is used up (a quota reply): no
  // start until `until_ms` (the caller picks it: the day window's opening,
  // or the profile's wait).
  void block_until(std::int64_t until_ms, std::string reason);
  // The operator says the quota is back (queue flush): the block ends; the
  // counted windows stay.
  void unblock() {
    blocked_until_ = 0;
    blocked_reason_.clear();
  }
  // When the oldest start counted in the day windows leaves them; nullopt
  // when nothing is counted.
  std::optional<std::int64_t> day_window_opens(std::int64_t now_ms) const;

  struct Usage {
    std::uint64_t last_second = 0, last_minute = 0, messages_day = 0, recipients_day = 0;
  };
  Usage usage(std::int64_t now_ms) const;

  // The counters as text (SPOOLGATE-PACING 1, one line per entry);
  // decode() replaces this pacer's counters (limits stay), ignoring what
  // has left every window by now_ms; an error leaves them empty.
  std::string encode() const;
  Result<void> decode(std::string_view text, std::int64_t now_ms);

 private:
  void prune(std::int64_t now_ms) const;
  void clear();  // every counter, and the block

  Limits l_;
  // Mutable: check() and usage() drop what has left the windows.
  mutable std::deque<std::int64_t> second_, minute_;  // start times, newest last
  struct Day {
    std::uint64_t messages = 0, recipients = 0;
  };
  mutable std::map<std::int64_t, Day> days_;  // by minute (unix ms / 60000)
  mutable Day day_total_;
  std::int64_t blocked_until_ = 0;
  std::string blocked_reason_;
};

}  // namespace spoolgate::pacing
