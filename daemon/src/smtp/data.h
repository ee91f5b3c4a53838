// SPDX-License-Identifier: MIT
// smtp/data: the DATA phase, both ways (RFC 5321 4.1.1.4, 4.5.2).
//
// DataDecoder turns the bytes a client sends after 354 into the canonical form
// the spool holds: CRLF line ends and transparency dots applied, i.e. exactly
// the bytes that go back on the wire between DATA and the final ".CRLF".
// Canonical content therefore never holds a bare CR, a bare LF, or a line that
// is a lone dot, and the upstream side can send it without re-framing.
//
// SMTP smuggling: only CRLF "." CRLF ends the data, where the first CRLF is a
// real one (or the start of data). LF.LF, CR.CR, LF.CRLF, CRLF.LF, CR.CRLF and
// friends are content; their bare CR/LF become CRLF line ends, and the "." line
// becomes ".." (a content line holding one dot). The decoder is byte-driven and
// keeps four bits of state, so its memory does not depend on line length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace spoolgate::smtp {

class DataDecoder {
 public:
  // Consumes bytes from `in` and appends canonical content to `out`. Returns the
  // number of bytes consumed: all of `in`, or up to and including the final
  // ".CRLF" once the end is found (done() is then true; the rest of `in` is the
  // next command, RFC 2920 pipelining).
  size_t decode(std::string_view in, std::string& out);
  bool done() const { return done_; }
  // A bare CR or LF was seen (and normalised) in this message.
  bool saw_bare_newline() const { return saw_bare_; }
  void reset() { *this = DataDecoder(); }

 private:
  void line_end(bool real_crlf, std::string& out);

  bool line_start_ = true;
  bool prev_real_ = true;  // the start of data counts as following a CRLF
  bool dot_pending_ = false;
  bool cr_pending_ = false;
  bool saw_bare_ = false;
  bool done_ = false;
};

// Applies transparency to plain text whose lines already end in CRLF: a line
// starting with "." gets another one. Used for text we generate.
std::string dot_stuff(std::string_view crlf_text);
// Removes transparency from canonical content (tests and the queue viewer).
std::string dot_unstuff(std::string_view canonical);

}  // namespace spoolgate::smtp
