// SPDX-License-Identifier: MIT
// spool/record: what the spool knows about one message, and its on-disk form.
//
// Message file, queue/<id> (format version 1), written once and never changed:
//
//   SPOOLGATE-MESSAGE 1\n
//   content-size: 00000000000000004096\n   fixed width, written last (commit)
//   id: 01JD3Q5V0K7ZC4XW\n
//   arrived: 1795003200\n                   unix seconds
//   client: 127.0.0.1\n
//   helo: printer.lan\n
//   smtputf8: 0\n
//   body: 7bit\n                            or 8bitmime
//   sender: <alerts@example.com>\n          <> for the null sender
//   rcpt: <ops@example.com>\n               one line per recipient, in order
//   \n
//   <content: canonical CRLF lines, dot-stuffed (smtp/data.h)>
//
// The file is complete iff its size equals the header length plus
// content-size; a file that fails this or any field check is corrupt and is
// never delivered (it is moved to failed/). Values never hold CR, LF or NUL:
// addresses come re-serialised from the parser, helo is sanitised.
//
// Delivery state, queue/<id>.state (format version 1), rewritten atomically
// (tmp/<id>.state, fsync, rename, fsync queue/) after each attempt:
//
//   SPOOLGATE-STATE 1\n
//   attempts: 2\n
//   next-attempt: 1795003800\n              unix seconds
//   last-error: 451 4.3.0 try again later\n
//   rcpt: 0 delivered 250 2.0.0 ok\n        index into the rcpt lines above,
//   rcpt: 1 pending 451 4.2.1 mailbox busy\n  state, last reply
//
// The message file stays immutable, so a crash while updating state can
// never damage content; a lost state update only repeats an attempt.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace spoolgate::spool {

constexpr int kFormatVersion = 1;
// The largest header a message file may have: encode_header refuses more,
// and the reader reads up to this much, so whatever is written can be read
// back. The listener bounds the envelope below it (452 4.5.3 at RCPT).
constexpr std::size_t kMaxHeaderBytes = 1024 * std::size_t{1024};

struct Record {
  std::string id;
  std::int64_t arrived = 0;
  std::string client;
  std::string helo;
  std::string device;  // who sent it: a device's login or named network; "" = unknown
  bool smtputf8 = false;
  bool body_8bit = false;
  std::string sender;                   // without brackets; "" = null sender
  std::vector<std::string> recipients;  // without brackets
  std::uint64_t size = 0;               // content bytes
  std::uint64_t content_offset = 0;     // where content starts in the file
  // Delivery state (from the .state file; defaults before the first attempt).
  enum class RcptState { Pending, Delivered, Failed };
  unsigned attempts = 0;
  std::int64_t next_attempt = 0;
  std::string last_error;
  std::vector<RcptState> rcpt_state;  // parallel to recipients
  std::vector<std::string> rcpt_reply;

  // Makes rcpt_state/rcpt_reply as long as recipients.
  void normalize();
  bool all_done() const;  // no recipient pending
  std::vector<size_t> pending() const;
};

std::string_view to_string(Record::RcptState s);
std::string encode_state(const Record& r);
// Overlays a state file onto r (whose recipients are already known).
Result<void> decode_state(std::string_view text, Record& r);

// The header text for r (with a zero content-size placeholder); fails when a
// field holds a byte that would break the line format, or when the header
// would be larger than kMaxHeaderBytes.
Result<std::string> encode_header(const Record& r);
// Byte offset of the 20 content-size digits in every message file.
std::uint64_t content_size_offset();
std::string encode_size(std::uint64_t size);
// Parses a header from the start of a file of file_size bytes.
Result<Record> decode_header(std::string_view head, std::uint64_t file_size);

}  // namespace spoolgate::spool
