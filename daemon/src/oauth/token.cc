// SPDX-License-Identifier: MIT
#include "oauth/token.h"

#include <charconv>
#include <optional>
#include <nlohmann/json.hpp>

namespace spoolgate::oauth {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxToken = 16 * std::size_t{1024};
constexpr std::size_t kMaxText = 300;
constexpr std::int64_t kMaxSeconds = 10LL * 365 * 86400;

// For logs: printable ASCII only, cut short.
std::string text(const Json& v) {
  if (!v.is_string()) return {};
  std::string out;
  for (char c : v.get_ref<const std::string&>()) {
    if (out.size() >= kMaxText) break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

std::string field(const Json& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() || !it->is_string() ? std::string() : it->get<std::string>();
}

// A count of seconds: a JSON number, or (Microsoft's older endpoints) a
// string of digits. -1: absent or not a count.
std::int64_t seconds(const Json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return -1;
  std::int64_t n = -1;
  if (it->is_number_unsigned()) {
    auto u = it->get<std::uint64_t>();
    n = u > static_cast<std::uint64_t>(kMaxSeconds) ? kMaxSeconds : static_cast<std::int64_t>(u);
  } else if (it->is_number_integer()) {
    n = it->get<std::int64_t>();
  } else if (it->is_number_float()) {
    double d = it->get<double>();
    n = d >= 0 && d < static_cast<double>(kMaxSeconds) ? static_cast<std::int64_t>(d) : -1;
  } else if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) n = -1;
  }
  if (n < 0) return -1;
  return n > kMaxSeconds ? kMaxSeconds : n;
}

Problem problem(Problem::Kind kind, std::string error, long status, std::string description = {}) {
  return Problem{kind, std::move(error), std::move(description), status};
}

// An answer that is not a success: the error code decides (RFC 6749 5.2,
// RFC 8628 3.5, and what Microsoft and Google send), else the status.
Problem refusal(long status, const Json& o) {
  std::string error = o.is_object() ? text(o.value("error", Json())) : std::string();
  std::string description = o.is_object() ? text(o.value("error_description", Json())) : std::string();
  using K = Problem::Kind;
  K kind = K::Transient;
  if (error == "invalid_grant" || error == "expired_token" || error == "access_denied" ||
      error == "interaction_required" || error == "consent_required" || error == "login_required")
    kind = K::Reauth;
  else if (error == "invalid_client" || error == "unauthorized_client" || error == "invalid_scope" ||
           error == "unsupported_grant_type" || error == "invalid_request")
    kind = K::Misconfigured;
  else if (error == "authorization_pending")
    kind = K::Pending;
  else if (error == "slow_down")
    kind = K::SlowDown;
  else if (error.empty())
    error = "HTTP " + std::to_string(status);
  // Anything else (temporarily_unavailable, server_error, 5xx, 429, an
  // unknown code) is worth another try later.
  return problem(kind, std::move(error), status, std::move(description));
}

// What every answer is first checked for: a refusal, or no JSON object.
std::optional<Problem> not_an_answer(long status, const Json& o) {
  if (status != 200) return refusal(status, o);
  if (o.is_null()) return problem(Problem::Kind::Transient, "the answer is not a JSON object", status);
  return std::nullopt;
}

Json object(std::string_view body) {
  Json o = Json::parse(body.begin(), body.end(), nullptr, false);
  return o.is_object() ? o : Json();
}

}  // namespace

bool valid_token(std::string_view s) {
  if (s.empty() || s.size() > kMaxToken) return false;
  for (char c : s)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

const char* to_string(Problem::Kind k) {
  switch (k) {
    case Problem::Kind::Transient:
      return "transient";
    case Problem::Kind::Reauth:
      return "reauthorisation needed";
    case Problem::Kind::Misconfigured:
      return "misconfigured";
    case Problem::Kind::Pending:
      return "pending";
    case Problem::Kind::SlowDown:
      return "slow down";
  }
  return "?";
}

TokenAnswer parse_token_answer(long status, std::string_view body) {
  Json o = object(body);
  if (auto p = not_an_answer(status, o)) return *p;
  Token t;
  t.access = field(o, "access_token");
  if (!valid_token(t.access))
    return problem(Problem::Kind::Transient, "the answer has no usable access_token", status);
  std::string type = field(o, "token_type");
  if (!type.empty() && type != "Bearer" && type != "bearer")
    return problem(Problem::Kind::Misconfigured, "token_type '" + text(o.value("token_type", Json())) + "' is not Bearer",
                   status);
  std::int64_t exp = seconds(o, "expires_in");
  t.expires_in = exp < 0 ? 0 : exp;
  if (o.contains("refresh_token")) {
    t.refresh = field(o, "refresh_token");
    if (!valid_token(t.refresh))
      return problem(Problem::Kind::Transient, "the answer's refresh_token is not usable", status);
  }
  t.scope = text(o.value("scope", Json()));
  return t;
}

DeviceAnswer parse_device_answer(long status, std::string_view body) {
  Json o = object(body);
  if (auto p = not_an_answer(status, o)) return *p;
  DeviceCode d;
  d.device_code = field(o, "device_code");
  d.user_code = text(o.value("user_code", Json()));
  d.verification_uri = text(o.value("verification_uri", o.value("verification_url", Json())));
  d.message = text(o.value("message", Json()));
  if (!valid_token(d.device_code) || d.user_code.empty() || d.verification_uri.empty())
    return problem(Problem::Kind::Transient, "the answer lacks device_code, user_code or verification_uri", status);
  if (auto e = seconds(o, "expires_in"); e > 0) d.expires_in = e;
  if (auto i = seconds(o, "interval"); i > 0) d.interval = i > 300 ? 300 : i;
  return d;
}

}  // namespace spoolgate::oauth
