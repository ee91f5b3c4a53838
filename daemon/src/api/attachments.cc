// SPDX-License-Identifier: MIT
#include "api/attachments.h"

#include <algorithm>
#include <map>
#include <optional>

#include "core/base64.h"
#include "core/text.h"

namespace spoolgate::api {
namespace {

constexpr int kMaxDepth = 32;
constexpr std::string_view kCrlf = "\r\n";

// A value with its parameters (RFC 2045 5.1, RFC 2183): "type/sub; a=b;
// c="d"". The value and parameter names in lower case; quoted strings
// unquoted; RFC 2231 "name*=utf-8''%.." decoded when the charset is
// UTF-8 or US-ASCII (continuations are not joined).
struct Valued {
  std::string value;
  std::map<std::string, std::string> params;
};

std::string pct_decoded(std::string_view s) {
  std::string out;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = ascii_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Valued parse_valued(std::string_view v) {
  Valued out;
  std::vector<std::string> items;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted && c == '\\' && i + 1 < v.size()) {
      cur += c;
      cur += v[++i];
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (c == ';' && !quoted) {
      items.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  items.push_back(std::move(cur));
  out.value = lower(trim(items[0]));
  for (std::size_t i = 1; i < items.size(); ++i) {
    std::string_view item = items[i];
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = lower(trim(item.substr(0, eq)));
    std::string_view raw = trim(item.substr(eq + 1));
    std::string val;
    if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
      raw = raw.substr(1, raw.size() - 2);
      for (std::size_t k = 0; k < raw.size(); ++k) {
        if (raw[k] == '\\' && k + 1 < raw.size()) ++k;
        val += raw[k];
      }
    } else {
      val = std::string(raw);
    }
    if (name.ends_with('*')) {
      name.pop_back();
      auto q1 = val.find('\'');
      auto q2 = q1 == std::string::npos ? std::string::npos : val.find('\'', q1 + 1);
      if (q2 == std::string::npos) continue;
      std::string charset = lower(val.substr(0, q1));
      if (charset != "utf-8" && charset != "us-ascii") continue;
      val = pct_decoded(std::string_view(val).substr(q2 + 1));
      out.params[name] = std::move(val);  // the extended form wins
      continue;
    }
    out.params.emplace(std::move(name), std::move(val));
  }
  return out;
}

// The header fields of an entity that matter here, unfolded.
struct Head {
  std::string content_type, disposition, encoding, content_id;
  std::size_t body = 0;   // where the body starts
  bool has_body = false;  // the header block ends with an empty line
};

Head read_head(std::string_view m, std::size_t s, std::size_t e) {
  Head h;
  std::string_view ent = m.substr(s, e - s);
  std::size_t end;
  if (ent.starts_with(kCrlf)) {
    end = 0;
    h.body = s + 2;
  } else {
    auto blank = ent.find("\r\n\r\n");
    end = blank == std::string_view::npos ? ent.size() : blank + 2;
    h.body = blank == std::string_view::npos ? e : s + blank + 4;
    h.has_body = blank != std::string_view::npos;
  }
  std::string_view head = ent.substr(0, end);
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t stop = pos;
    do {
      std::size_t nl = head.find(kCrlf, stop);
      stop = nl == std::string_view::npos ? head.size() : nl + 2;
    } while (stop < head.size() && (head[stop] == ' ' || head[stop] == '\t'));
    std::string_view field = head.substr(pos, stop - pos);
    pos = stop;
    auto colon = field.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = lower(trim(field.substr(0, colon)));
    std::string value;
    for (char c : field.substr(colon + 1))
      if (c != '\r' && c != '\n') value += c;
    std::string* slot = name == "content-type"                ? &h.content_type
                        : name == "content-disposition"       ? &h.disposition
                        : name == "content-transfer-encoding" ? &h.encoding
                        : name == "content-id"                ? &h.content_id
                                                              : nullptr;
    if (slot && slot->empty()) *slot = std::string(trim(value));
  }
  return h;
}

// A part that could be taken out: the range it goes with ([cut, cut_end):
// its delimiter line to the next one's) and its body.
struct Candidate {
  std::size_t cut = 0, cut_end = 0, body = 0, body_end = 0;
  Head head;
};

void scan(std::string_view m, std::size_t s, std::size_t e, std::optional<std::pair<std::size_t, std::size_t>> cut,
          int depth, std::vector<Candidate>& out) {
  Head h = read_head(m, s, e);
  Valued ct = parse_valued(h.content_type.empty() ? "text/plain" : h.content_type);
  if (ct.value.starts_with("multipart/")) {
    auto b = ct.params.find("boundary");
    if (b == ct.params.end() || b->second.empty() || depth >= kMaxDepth) return;
    std::string dash = "--" + b->second;
    // Delimiter lines: "--boundary" at the start of a line, then only
    // white space; the close delimiter "--boundary--".
    std::vector<std::size_t> lines;  // where each delimiter line starts
    std::vector<std::size_t> after;  // where the part after it starts
    std::size_t close = e;
    std::size_t pos = h.body;
    while (pos < e) {
      std::size_t nl = m.find(kCrlf, pos);
      std::size_t line_end = nl == std::string_view::npos || nl + 2 > e ? e : nl;
      std::string_view line = m.substr(pos, line_end - pos);
      if (line.starts_with(dash)) {
        std::string_view rest = line.substr(dash.size());
        if (rest.starts_with("--")) {
          close = pos;
          break;
        }
        if (trim(rest).empty()) {
          lines.push_back(pos);
          after.push_back(line_end == e ? e : line_end + 2);
        }
      }
      pos = line_end == e ? e : line_end + 2;
    }
    for (std::size_t k = 0; k < lines.size(); ++k) {
      std::size_t next = k + 1 < lines.size() ? lines[k + 1] : close;
      // The CRLF before the next delimiter belongs to it (RFC 2046 5.1.1).
      std::size_t part_end = next;
      if (next != e && next >= after[k] + 2) part_end -= 2;
      part_end = std::max(part_end, after[k]);
      scan(m, after[k], part_end, std::make_pair(lines[k], next), depth + 1, out);
    }
    return;
  }
  if (!cut || !h.has_body || lower(h.encoding) != "base64") return;
  Valued disp = parse_valued(h.disposition);
  bool named = disp.params.count("filename") || ct.params.count("name");
  if (!named && disp.value != "attachment" && ct.value.starts_with("text/")) return;
  out.push_back({cut->first, cut->second, h.body, e, std::move(h)});
}

std::optional<std::string> decoded(std::string_view body) {
  std::string clean;
  clean.reserve(body.size());
  for (char c : body)
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') clean += c;
  return base64_decode(clean);
}

Attachment describe(const Head& h, std::string bytes, std::size_t n) {
  Attachment a;
  Valued ct = parse_valued(h.content_type.empty() ? "application/octet-stream" : h.content_type);
  Valued disp = parse_valued(h.disposition);
  if (auto f = disp.params.find("filename"); f != disp.params.end()) a.name = f->second;
  if (a.name.empty())
    if (auto f = ct.params.find("name"); f != ct.params.end()) a.name = f->second;
  if (a.name.empty() || has_control(a.name) || !valid_utf8(a.name)) a.name = "attachment-" + std::to_string(n);
  a.content_type = ct.value.find('/') == std::string::npos || has_control(ct.value) || !valid_utf8(ct.value)
                       ? "application/octet-stream"
                       : ct.value;
  std::string_view id = trim(h.content_id);
  if (id.starts_with('<') && id.ends_with('>') && id.size() >= 2) id = id.substr(1, id.size() - 2);
  if (!has_control(id) && valid_utf8(id)) a.content_id = std::string(id);
  a.is_inline = disp.value == "inline" && !a.content_id.empty();
  a.bytes = std::move(bytes);
  return a;
}

}  // namespace

Result<Split> split_attachments(std::string_view message, std::size_t draft_max) {
  std::vector<Candidate> all;
  scan(message, 0, message.size(), std::nullopt, 0, all);
  std::vector<std::size_t> order(all.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return all[a].cut_end - all[a].cut > all[b].cut_end - all[b].cut;
  });
  std::size_t size = message.size();
  std::vector<std::pair<std::size_t, std::string>> taken;  // candidate index, decoded bytes
  for (std::size_t i : order) {
    if (size <= draft_max) break;
    const Candidate& c = all[i];
    auto bytes = decoded(message.substr(c.body, c.body_end - c.body));
    if (!bytes) continue;
    size -= c.cut_end - c.cut;
    taken.emplace_back(i, std::move(*bytes));
  }
  if (size > draft_max)
    return fail(Errc::Invalid,
                "too large for Microsoft Graph: without the attachments it can take apart the message "
                "is still " +
                    std::to_string(size) + " bytes, more than the " + std::to_string(draft_max) +
                    " bytes one request takes");
  std::sort(taken.begin(), taken.end(),
            [&](const auto& a, const auto& b) { return all[a.first].cut < all[b.first].cut; });
  Split out;
  out.draft.reserve(size);
  std::size_t pos = 0;
  for (auto& [i, bytes] : taken) {
    const Candidate& c = all[i];
    out.draft.append(message.substr(pos, c.cut - pos));
    Carved k;
    k.at = c.cut;
    k.raw = std::string(message.substr(c.cut, c.cut_end - c.cut));
    k.attachment = describe(c.head, std::move(bytes), out.carved.size() + 1);
    out.carved.push_back(std::move(k));
    pos = c.cut_end;
  }
  out.draft.append(message.substr(pos));
  return out;
}

}  // namespace spoolgate::api
