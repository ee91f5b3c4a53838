// SPDX-License-Identifier: MIT
#include "api/recipients.h"

#include <set>

#include "core/text.h"

namespace spoolgate::api {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// An item of the list: its plain text (quoted strings kept, comments and
// white space dropped) and what stood between < and >, if anything did.
struct Item {
  std::string plain, angle;
  bool has_angle = false;

  std::string address() const {
    std::string a = has_angle ? angle : plain;
    // An obsolete source route (<@a,@b:user@host>): the address is after it.
    if (auto colon = a.rfind(':'); has_angle && colon != std::string::npos) a.erase(0, colon + 1);
    return a;
  }
};

// "To: a, b" as the field's lower-case name and its body (after the colon).
bool split_field(std::string_view field, std::string& name, std::string_view& body) {
  auto colon = field.find(':');
  if (colon == std::string_view::npos) return false;
  name = lower(trim(field.substr(0, colon)));
  body = field.substr(colon + 1);
  return true;
}

std::string address_field(const char* name, const std::vector<std::string>& addrs) {
  std::string out = name;
  out += ": ";
  for (std::size_t i = 0; i < addrs.size(); ++i) out += (i ? ",\r\n " : "") + addrs[i];
  return out + "\r\n";
}

}  // namespace

std::vector<std::string> addresses(std::string_view body) {
  std::vector<std::string> out;
  Item cur;
  int comment = 0;
  bool quoted = false, in_angle = false, escaped = false;
  auto finish = [&] {
    std::string a = cur.address();
    if (a.find('@') != std::string::npos) out.push_back(std::move(a));
    cur = Item{};
  };
  for (char c : body) {
    std::string& to = in_angle ? cur.angle : cur.plain;
    if (escaped) {
      escaped = false;
      if (!comment) to += c;
      continue;
    }
    if (c == '\\' && (quoted || comment)) {
      escaped = true;
      if (!comment) to += c;
      continue;
    }
    if (comment) {
      if (c == '(') ++comment;
      if (c == ')') --comment;
      continue;
    }
    if (quoted) {
      to += c;
      if (c == '"') quoted = false;
      continue;
    }
    switch (c) {
      case '"':
        quoted = true;
        to += c;
        break;
      case '(':
        comment = 1;
        break;
      case '<':
        if (!in_angle) {
          in_angle = true;
          cur.has_angle = true;
          cur.angle.clear();
        }
        break;
      case '>':
        in_angle = false;
        break;
      case ',':
        if (in_angle)
          to += c;
        else
          finish();
        break;
      case ':':
        // A group's name ends ("team: a, b;"); inside <> a source route.
        if (in_angle)
          to += c;
        else
          cur = Item{};
        break;
      case ';':
        if (!in_angle) finish();
        break;
      default:
        if (!is_ws(c)) to += c;
    }
  }
  finish();
  return out;
}

std::string for_recipients(std::string_view content, const std::vector<std::string>& carried) {
  // The header block: up to the first empty line (all of it when none).
  std::size_t end = content.starts_with("\r\n") ? 0 : content.find("\r\n\r\n");
  end = end == std::string_view::npos ? content.size() : (end == 0 ? 0 : end + 2);
  std::string_view head = content.substr(0, end);
  std::set<std::string> want;
  for (const auto& r : carried) want.insert(lower(r));
  std::set<std::string> named;
  std::string out;
  out.reserve(content.size() + 256);
  std::size_t pos = 0;
  while (pos < head.size()) {
    // One field: its first line and the continuation lines that follow.
    std::size_t stop = pos;
    do {
      std::size_t nl = head.find("\r\n", stop);
      stop = nl == std::string_view::npos ? head.size() : nl + 2;
    } while (stop < head.size() && (head[stop] == ' ' || head[stop] == '\t'));
    std::string_view field = head.substr(pos, stop - pos);
    pos = stop;
    std::string name;
    std::string_view body;
    auto copy = [&] {
      out += field;
      if (!field.ends_with("\r\n")) out += "\r\n";  // the last line of a message without a body
    };
    if (!split_field(field, name, body) || (name != "to" && name != "cc" && name != "bcc")) {
      copy();
      continue;
    }
    if (name == "bcc") continue;
    std::vector<std::string> keep;
    bool all = true;
    for (auto& a : addresses(body)) {
      if (want.count(lower(a))) {
        named.insert(lower(a));
        keep.push_back(std::move(a));
      } else {
        all = false;
      }
    }
    // A field naming no address we can read is kept only when it has no
    // '@' at all ("undisclosed-recipients:;"): what an API might read in a
    // malformed one is not known.
    if (all && (!keep.empty() || body.find('@') == std::string_view::npos))
      copy();
    else if (!keep.empty()) {
      out += address_field(name == "to" ? "To" : "Cc", keep);
    }
  }
  std::vector<std::string> bcc;
  for (const auto& r : carried)
    if (!named.count(lower(r))) {
      named.insert(lower(r));
      bcc.push_back(r);
    }
  if (!bcc.empty()) out += address_field("Bcc", bcc);
  if (end == content.size() && end != 0) out += "\r\n";  // a message of header fields only gets its empty line
  out += content.substr(end);
  return out;
}

}  // namespace spoolgate::api
