// SPDX-License-Identifier: MIT
// core/text: small string helpers shared by every layer (ASCII only; SMTP
// keywords and config keys are ASCII by definition).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spoolgate {

char ascii_lower(char c);
std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);
// Splits on sep; empty fields are kept.
std::vector<std::string_view> split(std::string_view s, char sep);

// Length of the valid UTF-8 sequence at s[i] (1 for ASCII), or 0 when the
// bytes there are not UTF-8 (overlong forms and surrogates included).
size_t utf8_len(std::string_view s, size_t i);
bool valid_utf8(std::string_view s);
// A C0 control character or DEL anywhere in s (credentials must have none:
// XOAUTH2 separates its fields with 0x01).
bool has_control(std::string_view s);

// A JSON string literal (with quotes) for s; bytes >= 0x80 are passed through
// when they form valid UTF-8 and escaped as \u00XX otherwise.
std::string json_quote(std::string_view s);

// A device's name (users files, `devices`, the spool record): 1 to 64 of
// A-Z a-z 0-9 . _ @ + -.
bool valid_device_name(std::string_view name);

// RFC 3986 percent-encoding: every byte but the unreserved ones
// (ALPHA DIGIT - . _ ~, and those in also_keep) as %XX. For a URL's query
// values and path segments.
std::string percent_encode(std::string_view s, std::string_view also_keep = {});
// The value of `name` in a request target's query ("/cb?code=a%2Fb&state=x"),
// decoded ('+' is a space, %XX a byte); nullopt when absent or when a %
// is not followed by two hex digits.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

}  // namespace spoolgate
