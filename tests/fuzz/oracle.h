// SPDX-License-Identifier: MIT
// tests/fuzz/oracle: what every fuzz target may assert, and how input is cut.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace spoolgate::fuzz {

// A failed oracle is a finding: report and abort (libFuzzer keeps the input).
#define SG_REQUIRE(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "oracle failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

// The rest of the input cut into chunks whose sizes the input chooses, so
// that every split of a stream across reads gets tried.
inline std::vector<std::string> chunks(FuzzedDataProvider& in) {
  std::vector<std::string> out;
  while (in.remaining_bytes() > 0) {
    size_t n = in.ConsumeIntegralInRange<size_t>(1, 64);
    out.push_back(in.ConsumeBytesAsString(n));
  }
  return out;
}

// Canonical content (smtp/data.h): CRLF line ends only, no line that is a
// lone dot (transparency applied).
inline bool canonical(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  size_t line = 0;
  while (line < s.size()) {
    size_t end = s.find("\r\n", line);
    if (end == std::string_view::npos) end = s.size();
    if (s.substr(line, end - line) == ".") return false;
    line = end + 2;
  }
  return true;
}

}  // namespace spoolgate::fuzz
