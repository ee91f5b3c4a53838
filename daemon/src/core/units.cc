// SPDX-License-Identifier: MIT
#include "core/units.h"

#include <limits>

#include "core/text.h"

namespace spoolgate {
namespace {

// Reads leading decimal digits; nullopt when there are none or on overflow.
std::optional<std::uint64_t> digits(std::string_view& s) {
  std::uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    std::uint64_t d = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (i == 0) return std::nullopt;
  s.remove_prefix(i);
  return v;
}

bool mul_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b) return false;
  out = a * b;
  return true;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view s) {
  s = trim(s);
  auto n = digits(s);
  if (!n) return std::nullopt;
  s = trim(s);
  std::uint64_t mult = 0;
  if (s.empty() || iequals(s, "B"))
    mult = 1;
  else if (iequals(s, "KiB"))
    mult = 1ULL << 10;
  else if (iequals(s, "MiB"))
    mult = 1ULL << 20;
  else if (iequals(s, "GiB"))
    mult = 1ULL << 30;
  else if (iequals(s, "TiB"))
    mult = 1ULL << 40;
  else
    return std::nullopt;
  std::uint64_t out;
  if (!mul_ok(*n, mult, out)) return std::nullopt;
  return out;
}

std::optional<Millis> parse_duration(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  std::uint64_t total = 0;
  while (!s.empty()) {
    auto n = digits(s);
    if (!n) return std::nullopt;
    std::uint64_t mult = 0;
    if (s.starts_with("ms")) {
      mult = 1;
      s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      mult = 1000;
      s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      mult = 60'000;
      s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      mult = 3'600'000;
      s.remove_prefix(1);
    } else if (s.starts_with("d")) {
      mult = 86'400'000;
      s.remove_prefix(1);
    } else
      return std::nullopt;
    std::uint64_t part;
    if (!mul_ok(*n, mult, part) || total > std::numeric_limits<std::int64_t>::max() / 2 - part) return std::nullopt;
    total += part;
  }
  return Millis(static_cast<Millis::rep>(total));
}

std::string format_size(std::uint64_t b) {
  static const char* units[] = {"TiB", "GiB", "MiB", "KiB"};
  static const int shifts[] = {40, 30, 20, 10};
  for (int i = 0; i < 4; ++i) {
    std::uint64_t m = 1ULL << shifts[i];
    if (b != 0 && b % m == 0) return std::to_string(b / m) + units[i];
  }
  return std::to_string(b) + "B";
}

std::string format_duration(Millis d) {
  auto ms = static_cast<std::uint64_t>(d.count());
  if (ms == 0) return "0s";
  static const char* units[] = {"d", "h", "m", "s"};
  static const std::uint64_t sizes[] = {86'400'000, 3'600'000, 60'000, 1000};
  std::string out;
  for (int i = 0; i < 4; ++i) {
    if (ms >= sizes[i]) {
      out += std::to_string(ms / sizes[i]) + units[i];
      ms %= sizes[i];
    }
  }
  if (ms) out += std::to_string(ms) + "ms";
  return out;
}

}  // namespace spoolgate
