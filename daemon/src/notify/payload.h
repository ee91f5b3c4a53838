// SPDX-License-Identifier: MIT
// notify/payload: an event as a target takes it.
//   generic      application/json: {"version": 1, "id", "event", "change"
//                ("raised", "reminder", "cleared"), "key", "at", "since",
//                "host", "title", "text", "fields": {...}}; with a secret,
//                X-Spoolgate-Timestamp: <unix s> and X-Spoolgate-Signature:
//                sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">, which the
//                caller computes (tls/) over signing_input().
//   ntfy         text/plain: the text; Title, Priority (high when raised,
//                default otherwise) and Tags headers (ntfy's publish API).
//   teams        an Adaptive Card message (Teams' Workflows webhooks).
//   slack        {"text": ...} with *bold* title (Slack incoming webhooks).
//   google-chat  {"text": ...} (Google Chat incoming webhooks).
// Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "notify/event.h"

namespace spoolgate::notify {

enum class Format { Generic, Ntfy, Teams, Slack, GoogleChat };

struct Payload {
  std::string content_type;
  std::string body;
  std::vector<std::string> headers;  // "Name: value", besides Content-Type
};

Payload render(Format f, const Event& e, const std::string& host);

// What a generic target's signature covers, and the headers that carry it
// (hex_hmac: the lowercase hex HMAC-SHA256 of signing_input with the secret).
std::string signing_input(std::int64_t timestamp, const std::string& body);
std::vector<std::string> signature_headers(std::int64_t timestamp, const std::string& hex_hmac);

}  // namespace spoolgate::notify
