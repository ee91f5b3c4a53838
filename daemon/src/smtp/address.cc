// SPDX-License-Identifier: MIT
#include "smtp/address.h"

#include <arpa/inet.h>

#include "core/text.h"

namespace spoolgate::smtp {
namespace {

constexpr size_t kMaxLocal = 64;    // RFC 5321 4.5.3.1.1
constexpr size_t kMaxDomain = 255;  // RFC 5321 4.5.3.1.2
constexpr size_t kMaxPath = 256;    // RFC 5321 4.5.3.1.3

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_atext(unsigned char c) {
  if (is_alpha(c) || is_digit(c) || c >= 0x80) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  unsigned char peek() const { return done() ? 0 : static_cast<unsigned char>(s_[i_]); }
  bool eat(char c) {
    if (!done() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void next() { ++i_; }
  size_t pos() const { return i_; }
  std::string_view rest() const { return s_.substr(i_); }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// sub-domain *("." sub-domain); U-labels (bytes >= 0x80) allowed.
bool parse_domain(Cursor& c, std::string& out) {
  size_t start = c.pos();
  for (;;) {
    unsigned char ch = c.peek();
    if (!(is_alpha(ch) || is_digit(ch) || ch >= 0x80)) return false;
    unsigned char last = ch;
    while (!c.done() && (is_alpha(c.peek()) || is_digit(c.peek()) || c.peek() == '-' || c.peek() >= 0x80)) {
      last = c.peek();
      out += static_cast<char>(c.peek());
      c.next();
    }
    if (last == '-') return false;
    if (!c.eat('.')) break;
    out += '.';
  }
  return c.pos() > start;
}

bool parse_address_literal(Cursor& c, std::string& out) {
  if (!c.eat('[')) return false;
  std::string inner;
  while (!c.done() && c.peek() != ']') {
    unsigned char ch = c.peek();
    if (ch < 33 || ch > 126 || ch == '[' || ch == '\\') return false;  // dcontent
    inner += static_cast<char>(ch);
    c.next();
  }
  if (!c.eat(']') || inner.empty()) return false;
  unsigned char buf[16];
  if (istarts_with(inner, "IPv6:")) {
    if (inet_pton(AF_INET6, inner.c_str() + 5, buf) != 1) return false;
  } else if (is_digit(static_cast<unsigned char>(inner[0]))) {
    if (inet_pton(AF_INET, inner.c_str(), buf) != 1) return false;
  } else {
    // General-address-literal: Standardized-tag ":" 1*dcontent.
    size_t colon = inner.find(':');
    if (colon == 0 || colon == std::string::npos || colon + 1 == inner.size()) return false;
  }
  out = "[" + inner + "]";
  return true;
}

bool parse_local(Cursor& c, std::string& out) {
  if (c.eat('"')) {
    while (!c.done() && c.peek() != '"') {
      unsigned char ch = c.peek();
      if (ch == '\\') {
        c.next();
        unsigned char q = c.peek();
        if (c.done() || q < 32 || q > 126) return false;  // quoted-pairSMTP
        out += static_cast<char>(q);
        c.next();
        continue;
      }
      if (!(ch == 32 || ch == 33 || (ch >= 35 && ch <= 91) || (ch >= 93 && ch <= 126) || ch >= 0x80))
        return false;  // qtextSMTP
      out += static_cast<char>(ch);
      c.next();
    }
    return c.eat('"');
  }
  for (;;) {
    size_t start = c.pos();
    while (!c.done() && is_atext(c.peek())) {
      out += static_cast<char>(c.peek());
      c.next();
    }
    if (c.pos() == start) return false;
    if (!c.eat('.')) return true;
    out += '.';
  }
}

bool skip_source_route(Cursor& c) {
  // A-d-l: "@" Domain *( "," "@" Domain ) ":"
  do {
    if (!c.eat('@')) return false;
    std::string ignored;
    if (!parse_domain(c, ignored)) return false;
  } while (c.eat(','));
  return c.eat(':');
}

bool parse_params(std::string_view s, std::vector<Param>& out) {
  for (std::string_view tok : split(s, ' ')) {
    if (tok.empty()) continue;
    size_t eq = tok.find('=');
    std::string_view key = tok.substr(0, eq);
    if (key.empty() || !(is_alpha(static_cast<unsigned char>(key[0])) || is_digit(static_cast<unsigned char>(key[0]))))
      return false;
    for (unsigned char ch : key)
      if (!(is_alpha(ch) || is_digit(ch) || ch == '-')) return false;
    Param p{std::string(key), std::nullopt};
    for (char& ch : p.keyword) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    if (eq != std::string_view::npos) {
      std::string_view v = tok.substr(eq + 1);
      if (v.empty()) return false;
      for (unsigned char ch : v)
        if (ch < 33 || ch > 126 || ch == '=') return false;  // esmtp-value
      p.value = std::string(v);
    }
    out.push_back(std::move(p));
  }
  return true;
}

}  // namespace

bool is_dot_string(std::string_view local) {
  if (local.empty() || local.front() == '.' || local.back() == '.') return false;
  for (size_t i = 0; i < local.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(local[i]);
    if (c == '.') {
      if (local[i + 1] == '.') return false;
      continue;
    }
    if (!is_atext(c)) return false;
  }
  return true;
}

std::string Mailbox::str() const {
  if (null()) return "";
  std::string out;
  if (is_dot_string(local)) {
    out = local;
  } else {
    out = "\"";
    for (char c : local) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  if (!domain.empty()) {
    out += '@';
    out += domain;
  }
  return out;
}

ParsedPath parse_path(std::string_view s, PathKind kind) {
  ParsedPath r;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  Cursor c(s);
  bool bracketed = c.eat('<');
  auto syntax = [&] {
    r.error = PathError::Syntax;
    return r;
  };
  if (bracketed && c.eat('>')) {
    if (kind == PathKind::Recipient) return syntax();
  } else {
    if (bracketed && c.peek() == '@' && !skip_source_route(c)) return syntax();
    size_t start = c.pos();
    Mailbox& m = r.mailbox;
    if (!parse_local(c, m.local)) return syntax();
    if (c.eat('@')) {
      bool ok = c.peek() == '[' ? parse_address_literal(c, m.domain) : parse_domain(c, m.domain);
      if (!ok) return syntax();
    } else if (!(kind == PathKind::Recipient && bracketed && iequals(m.local, "postmaster"))) {
      return syntax();  // RFC 5321 4.1.1.3: only <Postmaster> may lack a domain
    }
    size_t path_len = c.pos() - start;
    if (bracketed && !c.eat('>')) return syntax();
    if (m.local.size() > kMaxLocal || m.domain.size() > kMaxDomain || path_len + 2 > kMaxPath) {
      r.error = PathError::TooLong;
      return r;
    }
    for (unsigned char ch : m.local + m.domain)
      if (ch >= 0x80) m.utf8 = true;
    if (m.utf8 && !(valid_utf8(m.local) && valid_utf8(m.domain))) {
      r.error = PathError::BadUtf8;
      return r;
    }
  }
  std::string_view rest = c.rest();
  if (!rest.empty() && rest.front() != ' ') return syntax();
  if (!parse_params(rest, r.params)) r.error = PathError::BadParam;
  return r;
}

bool sender_listed(const std::vector<std::string>& list, std::string_view sender) {
  for (const auto& allowed : list) {
    if (allowed.empty()) continue;
    if (allowed.front() == '@') {
      auto at = sender.rfind('@');
      if (at != std::string_view::npos && iequals(sender.substr(at), allowed)) return true;
    } else if (iequals(sender, allowed)) {
      return true;
    }
  }
  return false;
}

}  // namespace spoolgate::smtp
