// SPDX-License-Identifier: MIT
#include "smtp/headers.h"

#include <vector>

#include "core/clock.h"
#include "core/text.h"

namespace spoolgate::smtp {
namespace {

// RFC 5322 2.2: field-name is printable ASCII except ":"; obsolete syntax
// allows white space before the colon.
size_t field_name_len(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] > 32 && line[i] < 127 && line[i] != ':') ++i;
  if (i == 0) return 0;
  size_t j = i;
  while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
  return j < line.size() && line[j] == ':' ? i : 0;
}

struct Field {
  std::string_view name;
  std::string_view raw;  // all lines of the field, CRLFs included
};

std::string unfold_value(std::string_view raw) {
  size_t colon = raw.find(':');
  std::string v;
  for (char c : raw.substr(colon + 1))
    if (c != '\r' && c != '\n') v += c;
  return std::string(trim(v));
}

}  // namespace

void HeaderFixer::feed(std::string_view in, std::string& out) {
  if (too_big_) return;
  if (!in_headers_) {
    out.append(in);
    return;
  }
  hdr_.append(in);
  for (;;) {
    size_t eol = hdr_.find("\r\n", scanned_);
    if (eol == std::string::npos) break;
    if (eol + 2 > s_.max_header_bytes) break;  // refused below
    std::string_view line(hdr_.data() + scanned_, eol - scanned_);
    if (line.empty()) {
      end_of_headers(scanned_, true, out);
      return;
    }
    bool continuation = line[0] == ' ' || line[0] == '\t';
    if ((continuation && scanned_ == 0) || (!continuation && field_name_len(line) == 0)) {
      end_of_headers(scanned_, false, out);
      return;
    }
    scanned_ = eol + 2;
  }
  if (hdr_.size() > s_.max_header_bytes && in_headers_) {
    too_big_ = true;
    hdr_.clear();
    hdr_.shrink_to_fit();
  }
}

void HeaderFixer::finish(std::string& out) {
  if (too_big_ || !in_headers_) return;
  end_of_headers(hdr_.size(), true, out);
}

void HeaderFixer::end_of_headers(size_t body_at, bool blank_line, std::string& out) {
  in_headers_ = false;
  std::string_view block(hdr_.data(), body_at);
  std::vector<Field> fields;
  size_t pos = 0;
  auto line_after = [&](size_t from) {
    size_t eol = block.find("\r\n", from);
    return eol == std::string_view::npos ? block.size() : eol + 2;
  };
  while (pos < block.size()) {
    size_t end = line_after(pos);
    while (end < block.size() && (block[end] == ' ' || block[end] == '\t')) end = line_after(end);
    std::string_view raw = block.substr(pos, end - pos);
    fields.push_back({raw.substr(0, field_name_len(raw)), raw});
    pos = end;
  }
  auto has = [&](std::string_view name) {
    for (auto& f : fields)
      if (iequals(f.name, name)) return true;
    return false;
  };

  out += s_.received;
  bool had_from = false;
  std::string original_from;
  for (auto& f : fields) {
    if (!s_.rewrite_from.empty() && iequals(f.name, "From")) {
      if (had_from) continue;  // one From: is what providers accept
      had_from = true;
      original_from = unfold_value(f.raw);
      std::string display;
      size_t lt = original_from.rfind('<');
      if (lt != std::string::npos) display = std::string(trim(std::string_view(original_from).substr(0, lt)));
      out += "From: ";
      if (!display.empty()) out += display + " ";
      out += "<" + s_.rewrite_from + ">\r\n";
      continue;
    }
    out.append(f.raw);
  }
  if (!s_.rewrite_from.empty()) {
    if (!had_from)
      out += "From: <" + s_.rewrite_from + ">\r\n";
    else if (!has("Reply-To") && !original_from.empty())
      out += "Reply-To: " + original_from + "\r\n";
  }
  if (s_.add_missing) {
    if (!has("Date")) out += "Date: " + rfc5322_date(s_.now) + "\r\n";
    if (!has("Message-ID")) out += "Message-ID: <" + s_.message_id + ">\r\n";
  }
  // A body that followed the fields without an empty line would otherwise be
  // read as a malformed field by the next hop.
  if (!blank_line && body_at < hdr_.size()) out += "\r\n";
  out.append(hdr_, body_at, std::string::npos);
  hdr_.clear();
  hdr_.shrink_to_fit();
}

}  // namespace spoolgate::smtp
