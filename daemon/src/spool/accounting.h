// SPDX-License-Identifier: MIT
// spool/accounting: how full the spool is, and the watermarks that follow.
//
// One object, owned by the daemon, that every path which adds to or takes
// from the spool reports to: a client's committed message, a failure
// report, a message `spoolgate sendmail` wrote itself, a delivered or
// failed message leaving it, and the free disk the daemon samples. The
// listener asks it whether to accept (MAIL: 452 4.3.1 while over, until
// under the low watermark: 90% of bytes and messages, free disk 10% above
// its minimum) and whether to turn connections away (421 4.3.2 when far
// over: 125% of bytes or messages, or half the free-disk minimum).
//
// Messages still in DATA count: a transaction reserves its announced SIZE
// (or a share) at MAIL under an owner key, the reservation grows with what
// it writes, and ends when the message is committed (then counted by
// added()) or dropped.
//
// Pure arithmetic on the loop thread: no I/O, no clock. Logs
// watermark_high and watermark_low once per crossing.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "spool/record.h"

namespace spoolgate::spool {

struct Usage {
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  std::uint64_t free_disk = UINT64_MAX;
};

struct Limits {
  std::uint64_t max_bytes = 1ULL << 30;
  std::uint64_t max_messages = 100000;
  std::uint64_t min_free_disk = 256ULL << 20;
};

class Accounting {
 public:
  Accounting(Limits limits, Usage initial) : limits_(limits), usage_(initial) {}

  // A reload; the over/under state starts afresh.
  void set_limits(Limits limits);
  // A message is in the spool now (durable), or has left it.
  void added(const Record& r);
  void removed(std::uint64_t bytes);
  void set_free_disk(std::uint64_t bytes) { usage_.free_disk = bytes; }

  // Under the watermarks (with the hysteresis above), reservations counted.
  bool accepting();
  bool far_over() const;

  // Replaces `owner`'s reservation; false (nothing reserved) when the
  // spool, with it, is over its watermarks.
  bool reserve(const void* owner, std::uint64_t bytes);
  // The owner has written this much: its reservation grows to it.
  void grow(const void* owner, std::uint64_t written);
  void unreserve(const void* owner);

  const Usage& usage() const { return usage_; }
  std::uint64_t reserved() const { return reserved_; }

 private:
  Limits limits_;
  Usage usage_;
  bool over_ = false;
  std::unordered_map<const void*, std::uint64_t> reservations_;
  std::uint64_t reserved_ = 0;  // their sum
};

}  // namespace spoolgate::spool
