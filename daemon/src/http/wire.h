// SPDX-License-Identifier: MIT
// http/wire: the frames between the daemon and its HTTPS helper
// (spoolgate-https, daemon/src/https/): requests one way, answers the other.
//
// Why a helper at all: libcurl cannot share a process with BoringSSL here
// (every Debian libcurl brings OpenSSL's libcrypto.so.3 through libssh2,
// and OpenSSL's calls then bind to BoringSSL's symbols). The helper links
// libcurl and no BoringSSL; the daemon links BoringSSL and no libcurl.
//
// A frame: a 4-byte big-endian length of what follows, then a 4-byte
// big-endian length of the head, the head (a JSON object), and the body
// (raw bytes: a form, JSON, or a MIME message, not necessarily UTF-8).
// Frames are at most kMaxFrame; a longer length is a protocol error.
//
// Request head:  {"id": N, "method": "POST", "url": "https://...",
//                 "headers": ["Name: value", ...], "ca_file": "...",
//                 "timeout_ms": N, "max_body": N, "form": [["k", "v"], ...]}
// Cancel head:   {"id": N, "cancel": true}
// Answer head:   {"id": N, "status": 200, "content_type": "...",
//                 "headers": ["retry-after: 30", ...]} or
//                {"id": N, "error": "Timeout", "detail": "POST https://...: ..."}
//
// Pure; fuzzed through Decoder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "core/units.h"

namespace spoolgate::http {

struct Request {
  std::string url;  // https://... (anything else is refused)
  std::string method = "POST";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  // Fields of an application/x-www-form-urlencoded body, encoded by the
  // helper (libcurl); when given, body is ignored.
  std::vector<std::pair<std::string, std::string>> form;
  std::string ca_file;  // empty: the system's trust store
  Millis timeout{30'000};
  std::size_t max_body = std::size_t{1} << 20;
};

struct Response {
  long status = 0;
  std::string content_type;
  std::string body;
  // The final response's header fields as "name: value", the name in lower
  // case, the value trimmed (at most kMaxHeaders, each under kMaxHeaderLine;
  // others are dropped).
  std::vector<std::string> headers;
  // The value of the first field `name` (lower case), or "".
  std::string header(std::string_view name) const;
};

constexpr std::size_t kMaxHeaders = 100, kMaxHeaderLine = 8192;

constexpr std::size_t kMaxFrame = 64 * std::size_t{1024} * 1024;

struct Frame {
  enum class Kind { Request, Cancel, Answer } kind = Kind::Request;
  std::uint64_t id = 0;
  Request request;                       // Kind::Request
  Result<Response> answer = Response{};  // Kind::Answer
};

std::string encode(const Frame& f);

// Bytes in, frames out. A malformed frame is an error, after which the
// stream is not resynchronised (the peer is broken: restart it).
class Decoder {
 public:
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // The next complete frame, an error, or nullopt when more bytes are needed.
  std::optional<Result<Frame>> next();
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  bool broken_ = false;
};

// Errc by name, for answers ("Timeout", "TlsVerify", ...); Io when unknown.
Errc errc_from(std::string_view name);

// Retry-After (RFC 9110 10.2.3): delta seconds or an HTTP date; nullopt
// when absent or unreadable; at most a day.
std::optional<Millis> retry_after(const std::string& value, std::int64_t now_unix);

}  // namespace spoolgate::http
