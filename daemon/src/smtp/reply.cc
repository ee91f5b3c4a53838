// SPDX-License-Identifier: MIT
#include "smtp/reply.h"

#include <charconv>

#include "core/text.h"

namespace spoolgate::smtp {

std::string Reply::summary() const {
  std::string out = std::to_string(code);
  for (const auto& l : lines) {
    out += ' ';
    for (char c : l) out += (static_cast<unsigned char>(c) < 32 || c == 127) ? ' ' : c;
  }
  if (out.size() > 300) out.resize(300);
  return out;
}

Result<void> ReplyParser::feed(std::string_view bytes) {
  if (failed_) return fail(Errc::Protocol, "reply stream already failed");
  buf_.append(bytes);
  size_t pos = 0;
  for (;;) {
    size_t lf = buf_.find('\n', pos);
    if (lf == std::string::npos) {
      // Still short enough if a CR ends it and the LF is in the next read:
      // the limit counts the line without its CRLF, however it was split.
      if (buf_.size() - pos > kMaxLine + 1) {
        failed_ = true;
        return fail(Errc::Protocol, "reply line too long");
      }
      break;
    }
    std::string_view line(buf_.data() + pos, lf - pos);
    pos = lf + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto bad = [&](const char* why) {
      failed_ = true;
      std::string shown(line.substr(0, 60));
      for (char& c : shown)
        if (static_cast<unsigned char>(c) < 32) c = '?';
      return fail(Errc::Protocol, std::string(why) + ": '" + shown + "'");
    };
    if (line.size() > kMaxLine) return bad("reply line too long");
    if (line.size() < 3) return bad("malformed reply");
    int code = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + 3, code);
    if (ec != std::errc() || p != line.data() + 3 || line[0] < '2' || line[0] > '5' || line[1] > '5')
      return bad("malformed reply code");
    char sep = line.size() > 3 ? line[3] : ' ';
    if (sep != ' ' && sep != '-') return bad("malformed reply");
    if (pending_ && code != cur_.code) return bad("inconsistent codes in a multiline reply");
    cur_.code = code;
    cur_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
    if (cur_.lines.size() > kMaxLines) return bad("reply has too many lines");
    if (sep == '-') {
      pending_ = true;
      continue;
    }
    ready_.push_back(std::move(cur_));
    cur_ = Reply{};
    pending_ = false;
  }
  buf_.erase(0, pos);
  return {};
}

std::optional<Reply> ReplyParser::next() {
  if (ready_.empty()) return std::nullopt;
  Reply r = std::move(ready_.front());
  ready_.erase(ready_.begin());
  return r;
}

Capabilities Capabilities::parse(const Reply& ehlo) {
  Capabilities c;
  for (size_t i = 1; i < ehlo.lines.size(); ++i) {  // line 0 is the greeting name
    std::string_view l = trim(ehlo.lines[i]);
    // The old "AUTH=LOGIN PLAIN" form some servers still send.
    std::string_view kw = l.substr(0, l.find_first_of(" ="));
    std::string_view rest = kw.size() < l.size() ? l.substr(kw.size() + 1) : std::string_view();
    if (iequals(kw, "PIPELINING"))
      c.pipelining = true;
    else if (iequals(kw, "8BITMIME"))
      c.eight_bit_mime = true;
    else if (iequals(kw, "SMTPUTF8"))
      c.smtputf8 = true;
    else if (iequals(kw, "ENHANCEDSTATUSCODES"))
      c.enhanced_status = true;
    else if (iequals(kw, "STARTTLS"))
      c.starttls = true;
    else if (iequals(kw, "SIZE")) {
      c.size = true;
      rest = trim(rest);
      std::uint64_t n = 0;
      auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
      if (ec == std::errc() && p == rest.data() + rest.size()) c.max_size = n;
    } else if (iequals(kw, "AUTH")) {
      for (std::string_view m : split(rest, ' ')) {
        if (m.empty()) continue;
        std::string up = lower(m);
        for (char& ch : up) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        if (!c.has_auth(up)) c.auth.push_back(up);
      }
    }
  }
  return c;
}

bool Capabilities::has_auth(std::string_view mech) const {
  for (const auto& a : auth)
    if (iequals(a, mech)) return true;
  return false;
}

}  // namespace spoolgate::smtp
