// SPDX-License-Identifier: MIT
#include "http/wire.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/text.h"

namespace spoolgate::http {
namespace {

using Json = nlohmann::json;

void put32(std::string& out, std::size_t n) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
}

std::size_t get32(std::string_view s) {
  std::size_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
  return n;
}

Json head_of(const Frame& f) {
  Json h = {{"id", f.id}};
  switch (f.kind) {
    case Frame::Kind::Request: {
      const Request& r = f.request;
      h["method"] = r.method;
      h["url"] = r.url;
      h["headers"] = r.headers;
      h["ca_file"] = r.ca_file;
      h["timeout_ms"] = r.timeout.count();
      h["max_body"] = r.max_body;
      if (!r.form.empty()) h["form"] = r.form;
      break;
    }
    case Frame::Kind::Cancel:
      h["cancel"] = true;
      break;
    case Frame::Kind::Answer:
      if (f.answer) {
        h["status"] = f.answer->status;
        h["content_type"] = f.answer->content_type;
        if (!f.answer->headers.empty()) h["headers"] = f.answer->headers;
      } else {
        h["error"] = std::string(to_string(f.answer.error().code));
        h["detail"] = f.answer.error().detail;
      }
      break;
  }
  return h;
}

// Every string in a head is text we wrote from text: invalid UTF-8 is
// replaced rather than thrown about.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool get_string(const Json& h, const char* key, std::string& out) {
  auto it = h.find(key);
  if (it == h.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

bool get_count(const Json& h, const char* key, std::uint64_t& out) {
  auto it = h.find(key);
  if (it == h.end() || !it->is_number_unsigned()) return false;
  out = it->get<std::uint64_t>();
  return true;
}

Result<Frame> frame_of(const Json& h, std::string body) {
  Frame f;
  if (!h.is_object() || !get_count(h, "id", f.id)) return fail(Errc::Protocol, "frame head without an id");
  if (h.contains("cancel")) {
    f.kind = Frame::Kind::Cancel;
    return f;
  }
  if (h.contains("url")) {
    f.kind = Frame::Kind::Request;
    Request& r = f.request;
    std::uint64_t timeout = 0, max_body = 0;
    if (!get_string(h, "url", r.url) || !get_string(h, "method", r.method) || !get_string(h, "ca_file", r.ca_file) ||
        !get_count(h, "timeout_ms", timeout) || !get_count(h, "max_body", max_body) || !h.contains("headers") ||
        !h["headers"].is_array())
      return fail(Errc::Protocol, "malformed request head");
    for (const auto& x : h["headers"]) {
      if (!x.is_string()) return fail(Errc::Protocol, "malformed request header");
      r.headers.push_back(x.get<std::string>());
    }
    if (auto fo = h.find("form"); fo != h.end()) {
      if (!fo->is_array()) return fail(Errc::Protocol, "malformed request form");
      for (const auto& x : *fo) {
        if (!x.is_array() || x.size() != 2 || !x[0].is_string() || !x[1].is_string())
          return fail(Errc::Protocol, "malformed request form field");
        r.form.emplace_back(x[0].get<std::string>(), x[1].get<std::string>());
      }
    }
    r.timeout = Millis(static_cast<Millis::rep>(std::min<std::uint64_t>(timeout, 3'600'000)));
    r.max_body = static_cast<std::size_t>(std::min<std::uint64_t>(max_body, kMaxFrame));
    r.body = std::move(body);
    return f;
  }
  f.kind = Frame::Kind::Answer;
  std::string error;
  if (get_string(h, "error", error)) {
    std::string detail;
    get_string(h, "detail", detail);
    f.answer = tl::unexpected(Error{errc_from(error), 0, std::move(detail)});
    return f;
  }
  auto st = h.find("status");
  if (st == h.end() || !st->is_number_integer()) return fail(Errc::Protocol, "malformed answer head");
  Response resp;
  resp.status = st->get<long>();
  get_string(h, "content_type", resp.content_type);
  if (auto hs = h.find("headers"); hs != h.end()) {
    if (!hs->is_array() || hs->size() > kMaxHeaders) return fail(Errc::Protocol, "malformed answer headers");
    for (const auto& x : *hs) {
      if (!x.is_string()) return fail(Errc::Protocol, "malformed answer header");
      resp.headers.push_back(x.get<std::string>());
    }
  }
  resp.body = std::move(body);
  f.answer = std::move(resp);
  return f;
}

}  // namespace

std::string Response::header(std::string_view name) const {
  for (const auto& h : headers)
    if (h.size() > name.size() && h.compare(0, name.size(), name) == 0 && h[name.size()] == ':')
      return std::string(trim(std::string_view(h).substr(name.size() + 1)));
  return "";
}

Errc errc_from(std::string_view name) {
  for (Errc e : {Errc::Io, Errc::SpoolNoSpace, Errc::SpoolCorrupt, Errc::NotFound, Errc::Invalid, Errc::Protocol,
                 Errc::Timeout, Errc::Closed, Errc::Refused, Errc::TlsVerify})
    if (to_string(e) == name) return e;
  return Errc::Io;
}

std::string encode(const Frame& f) {
  std::string head = dump(head_of(f));
  const std::string& body = f.kind == Frame::Kind::Request              ? f.request.body
                            : f.kind == Frame::Kind::Answer && f.answer ? f.answer->body
                                                                        : std::string();
  std::string out;
  out.reserve(8 + head.size() + body.size());
  put32(out, 4 + head.size() + body.size());
  put32(out, head.size());
  out += head;
  out += body;
  return out;
}

std::optional<Result<Frame>> Decoder::next() {
  if (broken_) return Result<Frame>(fail(Errc::Protocol, "the stream is broken"));
  std::string_view rest(buf_.data() + pos_, buf_.size() - pos_);
  if (rest.size() < 4) return std::nullopt;
  std::size_t len = get32(rest);
  if (len < 4 || len > kMaxFrame + 4096) {
    broken_ = true;
    return Result<Frame>(fail(Errc::Protocol, "frame length " + std::to_string(len) + " out of range"));
  }
  if (rest.size() < 4 + len) return std::nullopt;
  std::size_t head_len = get32(rest.substr(4));
  if (head_len > len - 4) {
    broken_ = true;
    return Result<Frame>(fail(Errc::Protocol, "frame head longer than the frame"));
  }
  std::string_view head = rest.substr(8, head_len);
  std::string body(rest.substr(8 + head_len, len - 4 - head_len));
  pos_ += 4 + len;
  if (pos_ > (std::size_t{1} << 16) && pos_ * 2 > buf_.size()) {  // compact now and then
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  Json h = Json::parse(head.begin(), head.end(), nullptr, false);
  auto f = frame_of(h, std::move(body));
  if (!f) broken_ = true;
  return f;
}

std::optional<Millis> retry_after(const std::string& value, std::int64_t now_unix) {
  std::string_view v = trim(value);
  if (v.empty()) return std::nullopt;
  std::int64_t secs = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (ec == std::errc() && p == v.data() + v.size()) {
    if (secs < 0) return std::nullopt;
  } else {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    std::tm tm{};
    std::string s(v);
    const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return std::nullopt;
    secs = std::max<std::int64_t>(0, static_cast<std::int64_t>(timegm(&tm)) - now_unix);
  }
  return Millis(std::min(secs, std::int64_t{86'400}) * 1000);
}

}  // namespace spoolgate::http
