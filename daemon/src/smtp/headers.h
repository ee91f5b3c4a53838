// SPDX-License-Identifier: MIT
// smtp/headers: the header fix-ups a relay makes on the way through.
//
// Fed canonical content (see smtp/data.h), HeaderFixer holds back only the
// header block (bounded by max_header_bytes), then emits:
//   the Received: trace line we were given, the original header fields with
//   From: rewritten when asked (the original kept as Reply-To: when there is
//   none), Date: and Message-ID: when missing and add_missing is set, a blank
//   line when the original block ran straight into the body, then the rest
//   untouched. Everything after the header block streams through unbuffered.
// A header block over the bound sets too_big(); from then on nothing is
// emitted and the caller refuses the message (552).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spoolgate::smtp {

struct HeaderFixSettings {
  std::string received;      // a complete field, CRLF-terminated, or empty
  bool add_missing = true;   // Date, Message-ID
  std::string rewrite_from;  // mailbox for From:, empty = keep
  std::string message_id;    // used when Message-ID: is missing, without <>
  std::int64_t now = 0;      // for Date:
  size_t max_header_bytes = 256 * std::size_t{1024};
};

class HeaderFixer {
 public:
  explicit HeaderFixer(HeaderFixSettings s) : s_(std::move(s)) {}
  // Appends what can be emitted so far to out.
  void feed(std::string_view in, std::string& out);
  // End of content: flushes a header block that never ended.
  void finish(std::string& out);
  bool too_big() const { return too_big_; }

 private:
  void end_of_headers(size_t body_at, bool blank_line, std::string& out);

  HeaderFixSettings s_;
  std::string hdr_;
  size_t scanned_ = 0;  // hdr_[0, scanned_) holds whole header lines
  bool in_headers_ = true;
  bool too_big_ = false;
};

}  // namespace spoolgate::smtp
