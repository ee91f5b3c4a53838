// SPDX-License-Identifier: MIT
#include "core/log.h"

#include <unistd.h>

#include <atomic>

#include "core/text.h"

namespace spoolgate::log {
namespace {
std::atomic<Level> g_level{Level::Info};
std::atomic<Format> g_format{Format::Text};
}  // namespace

std::string_view to_string(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "info";
}

void set_level(Level l) { g_level = l; }
void set_format(Format f) { g_format = f; }
bool enabled(Level l) { return static_cast<int>(l) >= static_cast<int>(g_level.load()); }

Line::Line(Level level, std::string_view event) : on_(enabled(level)) {
  if (!on_) return;
  buf_.reserve(160);
  if (g_format == Format::Json) buf_ += '{';
  raw("level", to_string(level), false);
  raw("event", event, false);
}

Line& Line::kv(std::string_view key, std::string_view value) {
  if (on_) raw(key, value, false);
  return *this;
}

Line& Line::kv(std::string_view key, std::int64_t value) {
  if (on_) raw(key, std::to_string(value), true);
  return *this;
}

Line& Line::kv(std::string_view key, std::uint64_t value) {
  if (on_) raw(key, std::to_string(value), true);
  return *this;
}

void Line::raw(std::string_view key, std::string_view value, bool number) {
  if (g_format == Format::Json) {
    if (buf_.size() > 1) buf_ += ',';
    buf_ += json_quote(key);
    buf_ += ':';
    if (number)
      buf_ += value;  // a JSON number, for log pipelines that sum or compare
    else
      buf_ += json_quote(value);
    return;
  }
  if (!buf_.empty()) buf_ += ' ';
  buf_ += key;
  buf_ += '=';
  bool quote = value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    buf_ += value;
    return;
  }
  buf_ += '"';
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      buf_ += '\\';
      buf_ += static_cast<char>(c);
    } else if (c < ' ' || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      buf_ += "\\x";
      buf_ += hex[c >> 4];
      buf_ += hex[c & 15];
    } else {
      buf_ += static_cast<char>(c);
    }
  }
  buf_ += '"';
}

Line::~Line() {
  if (!on_) return;
  if (g_format == Format::Json) buf_ += '}';
  buf_ += '\n';
  const char* p = buf_.data();
  size_t left = buf_.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;  // Nowhere to report a failing stderr.
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace spoolgate::log
