// SPDX-License-Identifier: MIT
#include "smtp/data.h"

namespace spoolgate::smtp {

void DataDecoder::line_end(bool real_crlf, std::string& out) {
  if (dot_pending_) {
    if (real_crlf && prev_real_) {
      done_ = true;  // CRLF . CRLF
      return;
    }
    out += "..";  // a lone dot that does not end the data is content
  }
  out += "\r\n";
  if (!real_crlf) saw_bare_ = true;
  prev_real_ = real_crlf;
  line_start_ = true;
  dot_pending_ = false;
}

size_t DataDecoder::decode(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size() && !done_) {
    char b = in[i++];
    if (cr_pending_) {
      cr_pending_ = false;
      if (b == '\n') {
        line_end(true, out);
        continue;
      }
      line_end(false, out);  // bare CR, then b starts the next line
      if (done_) break;
    }
    if (b == '\r') {
      cr_pending_ = true;
      continue;
    }
    if (b == '\n') {
      line_end(false, out);
      continue;
    }
    if (line_start_) {
      line_start_ = false;
      if (b == '.') {
        dot_pending_ = true;  // wait: end marker, stuffed dot, or unstuffed dot
        continue;
      }
      out += b;
      continue;
    }
    if (dot_pending_) {
      // RFC 5321 4.5.2: a leading dot followed by more text is removed. The
      // canonical form re-adds one when the remaining line starts with a dot.
      dot_pending_ = false;
      if (b == '.') out += '.';
    }
    out += b;
  }
  return i;
}

std::string dot_stuff(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  bool bol = true;
  for (char c : text) {
    if (bol && c == '.') out += '.';
    out += c;
    bol = c == '\n';
  }
  return out;
}

std::string dot_unstuff(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool bol = true;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (bol && c == '.') {
      bol = false;
      continue;
    }
    out += c;
    bol = c == '\n';
  }
  return out;
}

}  // namespace spoolgate::smtp
