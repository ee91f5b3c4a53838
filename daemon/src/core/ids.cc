// SPDX-License-Identifier: MIT
#include "core/ids.h"

#include <sys/random.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>

namespace spoolgate {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

std::uint64_t random64() {
  static std::mutex mu;
  static std::mt19937_64 gen = [] {
    std::uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
      seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return std::mt19937_64(seed);
  }();
  std::lock_guard lock(mu);
  return gen();
}

}  // namespace

std::string new_queue_id() {
  static std::atomic<std::uint64_t> last{0};
  auto us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  // Strictly increasing within the process even if the clock stalls.
  std::uint64_t prev = last.load();
  while (true) {
    std::uint64_t next = us > prev ? us : prev + 1;
    if (last.compare_exchange_weak(prev, next)) {
      us = next;
      break;
    }
  }
  std::string id(16, '0');
  for (int i = 9; i >= 0; --i) {
    id[static_cast<size_t>(i)] = kAlphabet[us & 31];
    us >>= 5;
  }
  std::uint64_t r = random64();
  for (int i = 10; i < 16; ++i) {
    id[static_cast<size_t>(i)] = kAlphabet[r & 31];
    r >>= 5;
  }
  return id;
}

bool is_queue_id(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  return true;
}

std::string new_session_id(char prefix) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t n = ++counter;
  std::string out(1, prefix);
  std::string digits;
  do {
    digits.insert(digits.begin(), kAlphabet[n & 31]);
    n >>= 5;
  } while (n);
  return out + digits;
}

}  // namespace spoolgate
