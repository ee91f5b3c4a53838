// SPDX-License-Identifier: MIT
// scheduler/scheduler: which message goes when. Pure logic, no I/O.
//
// Rebuilt from the spool at start (insert every queued message with its
// persisted attempts and next-attempt time); keeps no durable state of its
// own. A message is queued (due at some time), in flight (handed out by
// next_batch, never twice), or gone (done). Retries back off exponentially
// from delivery.retry.first by factor up to max, with +-jitter; the next
// attempt time is persisted by the caller, so a restart keeps the schedule.
// Times are milliseconds of the wall clock; the caller passes `now`, which
// makes the whole thing testable with a fake clock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/units.h"

namespace spoolgate::scheduler {

struct Policy {
  Millis first{60'000};
  Millis max{3'600'000};
  double factor = 2;
  double jitter = 0.2;
  Millis max_lifetime{5 * 86'400'000LL};
};

class Scheduler {
 public:
  explicit Scheduler(Policy p, std::function<double()> random01 = {});

  void set_policy(Policy p) { p_ = p; }
  // due_ms 0 = now. route: the caller's name for where the message may go
  // (Delivery uses the device's name, whose upstreams the config lists);
  // "" for anywhere. Kept with the message, never interpreted here.
  void insert(const std::string& id, std::int64_t arrived_ms, std::int64_t due_ms, std::string route = {});
  const std::string& route(const std::string& id) const;
  void set_route(const std::string& id, std::string route);
  // Every message not in flight gets this route (a reload that changed
  // where mail goes).
  void set_waiting_routes(const std::string& route);
  bool contains(const std::string& id) const { return entries_.count(id) != 0; }
  bool flying(const std::string& id) const {
    auto it = entries_.find(id);
    return it != entries_.end() && it->second.flying;
  }
  // Up to n messages due at now_ms, earliest first; they are now in flight.
  std::vector<std::string> next_batch(std::int64_t now_ms, std::size_t n);
  // The same, only messages whose route `accept` takes; it looks at no more
  // than kScanLimit due messages, so that a long line of mail for another
  // route costs a bounded scan (that mail is started by its own route).
  static constexpr std::size_t kScanLimit = 256;
  std::vector<std::string> next_batch(std::int64_t now_ms, std::size_t n,
                                      const std::function<bool(const std::string& route)>& accept);
  // When a message that failed temporarily after `attempts` attempts is due
  // again (backoff with jitter, at least a second away). Persist it, then
  // release(id, due). Loop thread only, like every member: a worker is
  // handed the result, never the scheduler (set_policy runs on a reload).
  std::int64_t due_after(unsigned attempts, std::int64_t now_ms) const;
  // A message whose spool entry could not be read (EACCES, EMFILE, EIO):
  // nothing on disk can record an attempt, so the count of such misses in a
  // row is kept here (in memory; a restart starts it afresh) and the due
  // time backs off with it.
  std::int64_t due_after_miss(const std::string& id, std::int64_t now_ms);
  // Up to n queued (not in flight) messages that have outlived
  // delivery.max_lifetime, oldest first; they are now in flight, for the
  // caller to fail. Waiting behind a site backoff does not stop the clock.
  std::vector<std::string> take_expired(std::int64_t now_ms, std::size_t n);
  // When the oldest queued message expires; nullopt when none is queued.
  std::optional<std::int64_t> next_expiry() const;
  // Handed back without an attempt (shutdown, failover): due at due_ms.
  void release(const std::string& id, std::int64_t due_ms);
  // Delivered, failed or deleted: forgotten.
  void remove(const std::string& id);
  // True when the message has outlived delivery.max_lifetime.
  bool expired(const std::string& id, std::int64_t now_ms) const;
  // Every queued message becomes due now (queue flush).
  void flush(std::int64_t now_ms);
  // When the next queued (not in flight) message is due; nullopt when none.
  std::optional<std::int64_t> next_due() const;
  // The same among those due after t_ms.
  std::optional<std::int64_t> next_due_after(std::int64_t t_ms) const;
  // The retry delay after `attempts` attempts, before jitter.
  Millis backoff(unsigned attempts) const;

  std::size_t size() const { return entries_.size(); }
  std::size_t in_flight() const { return in_flight_; }
  // Arrival of the oldest message (0 when empty).
  std::int64_t oldest_arrival_ms() const;
  // The ids of the n messages that arrived first, oldest first.
  std::vector<std::string> oldest(std::size_t n) const;
  // The messages in flight now; a scan, for `queue list`.
  std::vector<std::string> flying_ids() const;
  // (id, route) of the messages that have one; a scan, for `queue list`.
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct Entry {
    std::int64_t arrived = 0;
    std::int64_t due = 0;
    unsigned misses = 0;  // unreadable loads (due_after_miss)
    bool flying = false;
    std::string route;
  };
  void schedule(const std::string& id, Entry& e, std::int64_t due);

  Policy p_;
  std::function<double()> random01_;
  std::map<std::string, Entry> entries_;
  std::set<std::pair<std::int64_t, std::string>> queue_;       // (due, id), not in flight
  std::set<std::pair<std::int64_t, std::string>> by_arrival_;  // (arrived, id), every entry
  std::size_t in_flight_ = 0;
};

}  // namespace spoolgate::scheduler
