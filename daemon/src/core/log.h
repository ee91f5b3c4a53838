// SPDX-License-Identifier: MIT
// core/log: one line per event, key=value (or JSON), written to stderr.
//
//   log::info("accept").kv("session", id).kv("client", addr);
//
// The line is emitted by one write(2) when the temporary is destroyed, so lines
// from different threads never interleave. Values are quoted and control bytes
// escaped: a peer cannot forge log lines. Callers never pass secrets; there is
// no key that is "safe" for one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace spoolgate::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json };

std::string_view to_string(Level l);

void set_level(Level l);
void set_format(Format f);
bool enabled(Level l);

class Line {
 public:
  Line(Level level, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& kv(std::string_view key, std::string_view value);
  Line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  Line& kv(std::string_view key, std::int64_t value);
  Line& kv(std::string_view key, std::uint64_t value);
  Line& kv(std::string_view key, int value) { return kv(key, static_cast<std::int64_t>(value)); }
  Line& kv(std::string_view key, unsigned value) { return kv(key, static_cast<std::uint64_t>(value)); }
  Line& kv(std::string_view key, long long value) { return kv(key, static_cast<std::int64_t>(value)); }
  Line& kv(std::string_view key, unsigned long long value) { return kv(key, static_cast<std::uint64_t>(value)); }

 private:
  void raw(std::string_view key, std::string_view value, bool number);
  bool on_;
  std::string buf_;
};

inline Line debug(std::string_view event) { return Line(Level::Debug, event); }
inline Line info(std::string_view event) { return Line(Level::Info, event); }
inline Line warn(std::string_view event) { return Line(Level::Warn, event); }
inline Line error(std::string_view event) { return Line(Level::Error, event); }

}  // namespace spoolgate::log
