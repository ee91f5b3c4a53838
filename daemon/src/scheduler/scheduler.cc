// SPDX-License-Identifier: MIT
#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

namespace spoolgate::scheduler {

Scheduler::Scheduler(Policy p, std::function<double()> random01) : p_(p), random01_(std::move(random01)) {
  if (!random01_) {
    auto gen = std::make_shared<std::mt19937_64>(std::random_device{}());
    random01_ = [gen] { return std::uniform_real_distribution<double>(0, 1)(*gen); };
  }
}

void Scheduler::schedule(const std::string& id, Entry& e, std::int64_t due) {
  if (!e.flying)
    queue_.erase({e.due, id});
  else
    --in_flight_;
  e.flying = false;
  e.due = due;
  queue_.insert({due, id});
}

void Scheduler::insert(const std::string& id, std::int64_t arrived_ms, std::int64_t due_ms, std::string route) {
  if (entries_.count(id)) return;
  Entry& e = entries_[id];
  e.arrived = arrived_ms;
  e.due = due_ms;
  e.route = std::move(route);
  queue_.insert({due_ms, id});
  by_arrival_.insert({arrived_ms, id});
}

const std::string& Scheduler::route(const std::string& id) const {
  static const std::string none;
  auto it = entries_.find(id);
  return it == entries_.end() ? none : it->second.route;
}

void Scheduler::set_route(const std::string& id, std::string route) {
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.route = std::move(route);
}

void Scheduler::set_waiting_routes(const std::string& route) {
  for (auto& [id, e] : entries_)
    if (!e.flying) e.route = route;
}

std::vector<std::string> Scheduler::next_batch(std::int64_t now_ms, std::size_t n) {
  return next_batch(now_ms, n, nullptr);
}

std::vector<std::string> Scheduler::next_batch(std::int64_t now_ms, std::size_t n,
                                               const std::function<bool(const std::string&)>& accept) {
  std::vector<std::string> out;
  std::size_t looked = 0;
  for (auto it = queue_.begin(); out.size() < n && it != queue_.end() && it->first <= now_ms;) {
    Entry& e = entries_[it->second];
    if (accept && !accept(e.route)) {
      if (++looked >= kScanLimit) break;
      ++it;
      continue;
    }
    out.push_back(it->second);
    it = queue_.erase(it);
    e.flying = true;
    ++in_flight_;
  }
  return out;
}

Millis Scheduler::backoff(unsigned attempts) const {
  double d = static_cast<double>(p_.first.count()) * std::pow(p_.factor, attempts > 0 ? attempts - 1 : 0);
  d = std::min(d, static_cast<double>(p_.max.count()));
  return Millis(static_cast<Millis::rep>(d));
}

std::int64_t Scheduler::due_after(unsigned attempts, std::int64_t now_ms) const {
  double base = static_cast<double>(backoff(attempts).count());
  double j = base * p_.jitter * (2 * random01_() - 1);
  // Never sooner than a second: no tight retry loop whatever the clock does.
  return now_ms + std::max<std::int64_t>(1000, static_cast<std::int64_t>(base + j));
}

void Scheduler::release(const std::string& id, std::int64_t due_ms) {
  auto it = entries_.find(id);
  if (it != entries_.end()) schedule(id, it->second, due_ms);
}

void Scheduler::remove(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.flying)
    --in_flight_;
  else
    queue_.erase({it->second.due, id});
  by_arrival_.erase({it->second.arrived, id});
  entries_.erase(it);
}

std::int64_t Scheduler::due_after_miss(const std::string& id, std::int64_t now_ms) {
  auto it = entries_.find(id);
  unsigned misses = it == entries_.end() ? 1 : ++it->second.misses;
  return due_after(misses, now_ms);
}

std::vector<std::string> Scheduler::take_expired(std::int64_t now_ms, std::size_t n) {
  std::vector<std::string> out;
  for (const auto& [arrived, id] : by_arrival_) {
    if (out.size() >= n || now_ms - arrived < p_.max_lifetime.count()) break;
    Entry& e = entries_[id];
    if (e.flying) continue;  // its session decides when its attempt ends
    out.push_back(id);
  }
  for (const auto& id : out) {
    Entry& e = entries_[id];
    queue_.erase({e.due, id});
    e.flying = true;
    ++in_flight_;
  }
  return out;
}

std::optional<std::int64_t> Scheduler::next_expiry() const {
  for (const auto& [arrived, id] : by_arrival_)
    if (!entries_.at(id).flying) return arrived + p_.max_lifetime.count();
  return std::nullopt;
}

bool Scheduler::expired(const std::string& id, std::int64_t now_ms) const {
  auto it = entries_.find(id);
  return it != entries_.end() && now_ms - it->second.arrived >= p_.max_lifetime.count();
}

void Scheduler::flush(std::int64_t now_ms) {
  std::vector<std::string> ids;
  for (const auto& [due, id] : queue_)
    if (due > now_ms) ids.push_back(id);
  for (const auto& id : ids) schedule(id, entries_[id], now_ms);
}

std::optional<std::int64_t> Scheduler::next_due_after(std::int64_t t_ms) const {
  auto it = queue_.lower_bound({t_ms + 1, std::string()});
  if (it == queue_.end()) return std::nullopt;
  return it->first;
}

std::optional<std::int64_t> Scheduler::next_due() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first;
}

std::int64_t Scheduler::oldest_arrival_ms() const { return by_arrival_.empty() ? 0 : by_arrival_.begin()->first; }

std::vector<std::string> Scheduler::oldest(std::size_t n) const {
  std::vector<std::string> out;
  for (auto it = by_arrival_.begin(); it != by_arrival_.end() && out.size() < n; ++it) out.push_back(it->second);
  return out;
}

std::vector<std::pair<std::string, std::string>> Scheduler::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [id, e] : entries_)
    if (!e.route.empty()) out.emplace_back(id, e.route);
  return out;
}

std::vector<std::string> Scheduler::flying_ids() const {
  std::vector<std::string> out;
  for (const auto& [id, e] : entries_)
    if (e.flying) out.push_back(id);
  return out;
}

}  // namespace spoolgate::scheduler
