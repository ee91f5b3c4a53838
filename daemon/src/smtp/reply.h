// SPDX-License-Identifier: MIT
// smtp/reply: server replies as the client side reads them (RFC 5321 4.2),
// and the EHLO capabilities they carry.
//
// ReplyParser takes bytes split anywhere and yields whole replies. A line
// must start with a three-digit code (first digit 2-5, second 0-5) followed
// by "-" (more lines follow), " " or the line end; every line of a reply must
// carry the same code. Lines are bounded (kMaxLine) and so is a reply
// (kMaxLines): a peer cannot make us buffer without limit. Anything else is
// a protocol error, after which the parser stays failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace spoolgate::smtp {

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // text after "NNN-" / "NNN "

  bool positive() const { return code >= 200 && code < 400; }
  bool temporary() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "451 4.3.0 text" on one line: for logs and records (never multi-line).
  std::string summary() const;
};

class ReplyParser {
 public:
  static constexpr size_t kMaxLine = 2048;
  static constexpr size_t kMaxLines = 100;

  Result<void> feed(std::string_view bytes);
  std::optional<Reply> next();
  // Bytes received but not yet part of a complete reply.
  size_t buffered() const { return buf_.size() + (pending_ ? 1 : 0); }
  bool has_reply() const { return !ready_.empty(); }
  void clear() {
    buf_.clear();
    ready_.clear();
    cur_ = Reply{};
    pending_ = false;
  }

 private:
  std::string buf_;
  std::vector<Reply> ready_;
  Reply cur_;
  bool pending_ = false;  // cur_ has lines of an unfinished reply
  bool failed_ = false;
};

struct Capabilities {
  bool pipelining = false;
  bool size = false;
  std::uint64_t max_size = 0;  // 0 = not announced or no limit
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool enhanced_status = false;
  bool starttls = false;
  std::vector<std::string> auth;  // upper-case mechanisms

  static Capabilities parse(const Reply& ehlo);
  bool has_auth(std::string_view mech) const;
};

}  // namespace spoolgate::smtp
