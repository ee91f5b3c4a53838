// SPDX-License-Identifier: MIT
#include "spool/accounting.h"

#include <algorithm>

#include "core/log.h"

namespace spoolgate::spool {

void Accounting::set_limits(Limits limits) {
  limits_ = limits;
  over_ = false;
}

void Accounting::added(const Record& r) {
  usage_.bytes += r.size;
  usage_.messages += 1;
}

void Accounting::removed(std::uint64_t bytes) {
  usage_.bytes -= std::min(usage_.bytes, bytes);
  if (usage_.messages) --usage_.messages;
}

bool Accounting::far_over() const {
  const Limits& l = limits_;
  return usage_.bytes >= l.max_bytes + std::max<std::uint64_t>(1, l.max_bytes / 4) ||
         usage_.messages >= l.max_messages + std::max<std::uint64_t>(1, l.max_messages / 4) ||
         usage_.free_disk < l.min_free_disk / 2;
}

bool Accounting::accepting() {
  const Limits& l = limits_;
  // What transactions in progress reserved counts as written already.
  std::uint64_t bytes = usage_.bytes + reserved_;
  std::uint64_t free = usage_.free_disk - std::min(usage_.free_disk, reserved_);
  bool high = bytes >= l.max_bytes || usage_.messages >= l.max_messages || free < l.min_free_disk;
  bool low = bytes < l.max_bytes - l.max_bytes / 10 && usage_.messages < l.max_messages - l.max_messages / 10 &&
             free >= l.min_free_disk + l.min_free_disk / 10;
  if (!over_ && high) {
    over_ = true;
    log::warn("watermark_high")
        .kv("queue_bytes", usage_.bytes)
        .kv("queue_messages", usage_.messages)
        .kv("free_disk", usage_.free_disk);
  } else if (over_ && low) {
    over_ = false;
    log::info("watermark_low")
        .kv("queue_bytes", usage_.bytes)
        .kv("queue_messages", usage_.messages)
        .kv("free_disk", usage_.free_disk);
  }
  return !over_;
}

bool Accounting::reserve(const void* owner, std::uint64_t bytes) {
  unreserve(owner);
  reservations_[owner] = bytes;
  reserved_ += bytes;
  if (accepting()) return true;
  unreserve(owner);
  return false;
}

void Accounting::grow(const void* owner, std::uint64_t written) {
  auto it = reservations_.find(owner);
  if (it == reservations_.end() || it->second >= written) return;
  reserved_ += written - it->second;
  it->second = written;
}

void Accounting::unreserve(const void* owner) {
  auto it = reservations_.find(owner);
  if (it == reservations_.end()) return;
  reserved_ -= it->second;
  reservations_.erase(it);
}

}  // namespace spoolgate::spool
