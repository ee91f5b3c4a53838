// SPDX-License-Identifier: MIT
#include "pacing/pacer.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include "core/text.h"

namespace spoolgate::pacing {
namespace {

constexpr std::int64_t kSecond = 1000, kMinute = 60'000, kDay = 86'400'000;
constexpr std::string_view kMagic = "SPOOLGATE-PACING 1";
// The latest time a counters file may hold (the end of the year 9999), so
// that no window arithmetic on what a file says can overflow.
constexpr std::int64_t kLastTime = 253'402'300'799'999;

// When the day bucket of minute `m` leaves the rolling 24 hours.
std::int64_t day_end(std::int64_t m) { return (m + 1) * kMinute + kDay; }

// A window holding the last starts (newest last) with room for `limit`:
// when it has room for one more.
std::optional<std::int64_t> sliding_full(const std::deque<std::int64_t>& starts, std::uint64_t limit,
                                         std::int64_t period) {
  if (!limit || starts.size() < limit) return std::nullopt;
  return starts[starts.size() - limit] + period;
}

bool parse_i64(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

void Pacer::prune(std::int64_t now_ms) const {
  while (!second_.empty() && second_.front() <= now_ms - kSecond) second_.pop_front();
  while (!minute_.empty() && minute_.front() <= now_ms - kMinute) minute_.pop_front();
  while (!days_.empty() && day_end(days_.begin()->first) <= now_ms) {
    day_total_.messages -= days_.begin()->second.messages;
    day_total_.recipients -= days_.begin()->second.recipients;
    days_.erase(days_.begin());
  }
}

std::optional<Wait> Pacer::check(std::int64_t now_ms, std::uint64_t rcpts) const {
  prune(now_ms);
  std::optional<Wait> w;
  auto wait = [&](std::int64_t until, std::string reason) {
    if (until > now_ms && (!w || until > w->until_ms)) w = Wait{until, std::move(reason)};
  };
  if (blocked_until_ > now_ms) wait(blocked_until_, blocked_reason_);
  if (auto t = sliding_full(second_, l_.messages_per_second, kSecond))
    wait(*t, "messages_per_second " + std::to_string(l_.messages_per_second) + " reached");
  if (auto t = sliding_full(minute_, l_.messages_per_minute, kMinute))
    wait(*t, "messages_per_minute " + std::to_string(l_.messages_per_minute) + " reached");
  // The day windows: the oldest minutes leave until the start fits.
  auto day = [&](std::uint64_t limit, std::uint64_t Day::*field, std::uint64_t need, const char* name) {
    if (!limit) return;
    need = std::min(need, limit);  // a transaction larger than the limit goes when the window is empty
    std::uint64_t used = day_total_.*field;
    if (used + need <= limit) return;
    for (const auto& [m, d] : days_) {
      used -= d.*field;
      if (used + need <= limit) return wait(day_end(m), std::string(name) + " " + std::to_string(limit) + " reached");
    }
  };
  day(l_.messages_per_day, &Day::messages, 1, "messages_per_day");
  day(l_.recipients_per_day, &Day::recipients, rcpts, "recipients_per_day");
  return w;
}

std::int64_t Pacer::count(std::int64_t now_ms, std::uint64_t rcpts) {
  prune(now_ms);
  std::int64_t at = now_ms;
  // Starts stay in order when the clock steps back: a start is never
  // counted earlier than the last one (which only makes the wait longer).
  if (!second_.empty()) at = std::max(at, second_.back());
  if (!minute_.empty()) at = std::max(at, minute_.back());
  if (l_.messages_per_second) {
    second_.push_back(at);
    while (second_.size() > l_.messages_per_second) second_.pop_front();
  }
  if (l_.messages_per_minute) {
    minute_.push_back(at);
    while (minute_.size() > l_.messages_per_minute) minute_.pop_front();
  }
  if (l_.messages_per_day || l_.recipients_per_day) {
    Day& d = days_[now_ms / kMinute];
    d.messages += 1;
    d.recipients += rcpts;
    day_total_.messages += 1;
    day_total_.recipients += rcpts;
  }
  return at;
}

void Pacer::restamp(std::int64_t stamp, std::uint64_t rcpts, std::int64_t now_ms) {
  if (now_ms <= stamp) return;
  for (auto* q : {&second_, &minute_}) {
    auto it = std::find(q->begin(), q->end(), stamp);
    if (it == q->end()) continue;
    q->erase(it);
    q->insert(std::upper_bound(q->begin(), q->end(), now_ms), now_ms);
  }
  auto from = days_.find(stamp / kMinute);
  if (from == days_.end() || from->first == now_ms / kMinute || !from->second.messages) return;
  std::uint64_t moved = std::min(rcpts, from->second.recipients);
  from->second.messages -= 1;
  from->second.recipients -= moved;
  if (!from->second.messages && !from->second.recipients) days_.erase(from);
  Day& to = days_[now_ms / kMinute];
  to.messages += 1;
  to.recipients += moved;  // (the totals stay: the same start, in a later minute)
}

void Pacer::block_until(std::int64_t until_ms, std::string reason) {
  if (until_ms <= blocked_until_) return;
  blocked_until_ = until_ms;
  blocked_reason_ = std::move(reason);
}

std::optional<std::int64_t> Pacer::day_window_opens(std::int64_t now_ms) const {
  prune(now_ms);
  if (days_.empty()) return std::nullopt;
  return day_end(days_.begin()->first);
}

Pacer::Usage Pacer::usage(std::int64_t now_ms) const {
  prune(now_ms);
  return Usage{second_.size(), minute_.size(), day_total_.messages, day_total_.recipients};
}

std::string Pacer::encode() const {
  std::string out(kMagic);
  out += "\n";
  for (std::int64_t t : second_) out += "s " + std::to_string(t) + "\n";
  for (std::int64_t t : minute_) out += "m " + std::to_string(t) + "\n";
  for (const auto& [m, d] : days_)
    out += "d " + std::to_string(m) + " " + std::to_string(d.messages) + " " + std::to_string(d.recipients) + "\n";
  if (blocked_until_) out += "b " + std::to_string(blocked_until_) + " " + blocked_reason_ + "\n";
  return out;
}

void Pacer::clear() {
  second_.clear();
  minute_.clear();
  days_.clear();
  day_total_ = {};
  blocked_until_ = 0;
  blocked_reason_.clear();
}

Result<void> Pacer::decode(std::string_view text, std::int64_t now_ms) {
  clear();
  auto bad = [&](const std::string& why) -> Result<void> {
    clear();
    return fail(Errc::Invalid, "pacing counters: " + why);
  };
  if (!text.starts_with(kMagic) || text.size() < kMagic.size() + 1 || text[kMagic.size()] != '\n')
    return bad("not a SPOOLGATE-PACING 1 file");
  std::string_view body = text.substr(kMagic.size() + 1);
  if (!body.empty() && body.back() != '\n') return bad("truncated");
  if (!body.empty()) body.remove_suffix(1);
  std::int64_t last_s = INT64_MIN, last_m = INT64_MIN, last_d = INT64_MIN;
  for (std::string_view line : body.empty() ? std::vector<std::string_view>{} : split(body, '\n')) {
    auto f = split(line, ' ');
    if (f.size() < 2 || f[0].size() != 1) return bad("bad line '" + std::string(line) + "'");
    std::int64_t t = 0;
    if (!parse_i64(f[1], t) || t < 0 || t > (f[0] == "d" ? kLastTime / kMinute : kLastTime))
      return bad("bad time in '" + std::string(line) + "'");
    switch (f[0][0]) {
      case 's':
      case 'm': {
        std::int64_t& last = f[0][0] == 's' ? last_s : last_m;
        auto& q = f[0][0] == 's' ? second_ : minute_;
        if (f.size() != 2 || t < last) return bad("bad start in '" + std::string(line) + "'");
        last = t;
        q.push_back(t);
        break;
      }
      case 'd': {
        Day d;
        if (f.size() != 4 || t <= last_d || !parse_u64(f[2], d.messages) || !parse_u64(f[3], d.recipients) ||
            d.messages > (1ULL << 40) || d.recipients > (1ULL << 40))
          return bad("bad day entry '" + std::string(line) + "'");
        last_d = t;
        days_[t] = d;
        day_total_.messages += d.messages;
        day_total_.recipients += d.recipients;
        break;
      }
      case 'b': {
        std::string_view reason = line.substr(std::min(line.size(), f[0].size() + f[1].size() + 2));
        if (reason.empty() || has_control(reason)) return bad("bad block line");
        blocked_until_ = t;
        blocked_reason_ = std::string(reason);
        break;
      }
      default:
        return bad("bad line '" + std::string(line) + "'");
    }
  }
  // Keep no more starts than the limits look at.
  while (second_.size() > l_.messages_per_second) second_.pop_front();
  while (minute_.size() > l_.messages_per_minute) minute_.pop_front();
  prune(now_ms);
  return {};
}

}  // namespace spoolgate::pacing
