// SPDX-License-Identifier: MIT
#include "api/answer.h"

#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/text.h"

namespace spoolgate::api {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxText = 300;

// The API's error code and message from its JSON body (either API's shape),
// as plain printable text.
struct ApiError {
  std::string code, message;
};

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxText) break;
    auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? ' ' : c;
  }
  return out;
}

ApiError error_of(const http::Response& r) {
  ApiError e;
  Json j = Json::parse(r.body, nullptr, false);
  if (!j.is_object()) return e;
  auto err = j.find("error");
  if (err == j.end() || !err->is_object()) return e;
  if (auto m = err->find("message"); m != err->end() && m->is_string()) e.message = printable(m->get<std::string>());
  // Graph: "code" is the error's name. Gmail: "code" is the status number
  // and the name is errors[0].reason (or "status").
  if (auto c = err->find("code"); c != err->end() && c->is_string()) e.code = printable(c->get<std::string>());
  if (auto es = err->find("errors");
      e.code.empty() && es != err->end() && es->is_array() && !es->empty() && (*es)[0].is_object()) {
    if (auto rs = (*es)[0].find("reason"); rs != (*es)[0].end() && rs->is_string())
      e.code = printable(rs->get<std::string>());
  }
  if (auto st = err->find("status"); e.code.empty() && st != err->end() && st->is_string())
    e.code = printable(st->get<std::string>());
  return e;
}

bool names_any(const std::string& code, std::initializer_list<std::string_view> words) {
  std::string c = lower(code);
  for (auto w : words)
    if (c.find(w) != std::string::npos) return true;
  return false;
}

bool names_quota(const ApiError& e) {
  return names_any(e.code, {"quotaexceeded", "dailylimitexceeded", "submissionquota"}) ||
         names_any(e.message, {"quota exceeded", "sending limit"});
}

bool names_rate(const ApiError& e) {
  return names_any(e.code, {"ratelimitexceeded", "throttl", "concurrency", "toomanyrequests"});
}

}  // namespace

Meaning meaning(Kind k, const http::Response& r, std::int64_t now_unix) {
  Meaning m;
  m.request_id = r.header("request-id");
  if (m.request_id.empty()) m.request_id = r.header("x-request-id");
  m.request_id = printable(m.request_id.substr(0, 100));
  ApiError e = error_of(r);
  std::string api = k == Kind::Graph ? "Microsoft Graph" : "Gmail API";
  std::string said = api + " answered " + std::to_string(r.status);
  if (!e.code.empty()) said += " " + e.code;
  if (!e.message.empty()) said += ": " + e.message;
  if (!m.request_id.empty()) said += " (request-id " + m.request_id + ")";
  auto set = [&](int row, int code, const std::string& status, const std::string& text) {
    static constexpr smtp::Trouble kClass[] = {
        smtp::Trouble::Positive,      smtp::Trouble::Misconfigured, smtp::Trouble::Quota,     smtp::Trouble::Throttled,
        smtp::Trouble::Misconfigured, smtp::Trouble::Permanent,     smtp::Trouble::Permanent, smtp::Trouble::Temporary};
    m.row = row;
    m.trouble = kClass[row - 1];
    m.reply.code = code;
    m.reply.lines = {status + " " + text};
  };
  long s = r.status;
  bool quota = (s == 403 || s == 429 || s == 503) && names_quota(e);
  bool rate = s == 429 || s == 503 || (s == 403 && names_rate(e));
  if (s >= 200 && s < 300)
    set(1, 250, "2.0.0",
        api + " accepted the message" + (m.request_id.empty() ? std::string() : " (request-id " + m.request_id + ")"));
  else if (s == 401)
    set(2, 535, "5.7.8", said + " (the access token was refused)");
  else if (quota)
    set(3, 550, "5.4.5", said + " (sending quota reached)");
  else if (rate)
    set(4, 432, "4.7.0", said + " (throttled)");
  else if (s == 403 || s == 404)
    set(5, 530, "5.7.0", said + " (the account may not send this way: permission, mailbox or send-as)");
  else if (s == 413)
    set(6, 552, "5.3.4", said + " (message too large for the API)");
  else if (s >= 400 && s < 500 && s != 408)
    set(7, 554, "5.6.0", said);
  else
    set(8, 451, "4.4.0", said);
  if (m.row == 3 || m.row == 4) m.retry_after = http::retry_after(r.header("retry-after"), now_unix);
  return m;
}

}  // namespace spoolgate::api
