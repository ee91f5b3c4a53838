// SPDX-License-Identifier: MIT
// api/answer: one case per row of the table, and the class each reply
// falls in (smtp/trouble.h), so an API answer is judged like an SMTP reply.
#include "api/answer.h"

#include <doctest/doctest.h>

#include "smtp/trouble.h"

using namespace spoolgate;
using api::Kind;
using smtp::Trouble;

namespace {
http::Response answer(long status, std::string body = "", std::vector<std::string> headers = {}) {
  return http::Response{status, "application/json", std::move(body), std::move(headers)};
}
const std::string kGraphQuota = R"({"error":{"code":"ErrorQuotaExceeded","message":"Quota exceeded"}})";
const std::string kGmailDaily =
    R"({"error":{"code":403,"message":"Daily Limit Exceeded","errors":[{"reason":"dailyLimitExceeded"}]}})";
const std::string kGmailRate =
    R"({"error":{"code":403,"message":"User-rate limit exceeded","errors":[{"reason":"userRateLimitExceeded"}]}})";
const std::string kDenied = R"({"error":{"code":"ErrorAccessDenied","message":"Access is denied."}})";
const std::string kInvalid =
    R"({"error":{"code":"ErrorMimeContentInvalidBase64String","message":"Invalid base64 string for MIME content."}})";
constexpr std::int64_t kNow = 1'790'000'000;
}  // namespace

TEST_SUITE("api/answer") {
  TEST_CASE("every row: the reply, its class, Retry-After and the request id") {
    struct Case {
      Kind kind;
      http::Response r;
      int row;
      Trouble cls;
      std::optional<Millis> wait;
    } cases[] = {
        {Kind::Graph, answer(202, "", {"request-id: 5b1c"}), 1, Trouble::Positive, {}},
        {Kind::Gmail, answer(200, R"({"id":"18c","threadId":"18c"})"), 1, Trouble::Positive, {}},
        {Kind::Graph,
         answer(401, R"({"error":{"code":"InvalidAuthenticationToken","message":"expired"}})"),
         2,
         Trouble::Misconfigured,
         {}},
        {Kind::Graph, answer(403, kGraphQuota), 3, Trouble::Quota, {}},
        {Kind::Gmail, answer(403, kGmailDaily, {"retry-after: 3600"}), 3, Trouble::Quota, Millis(3'600'000)},
        {Kind::Gmail, answer(429, kGmailDaily), 3, Trouble::Quota, {}},
        {Kind::Graph, answer(429, R"({"error":{"code":"ApplicationThrottled"}})", {"retry-after: 7"}), 4,
         Trouble::Throttled, Millis(7'000)},
        // A date in the past: no wait rather than a negative one.
        {Kind::Graph, answer(503, "", {"retry-after: Mon, 21 Sep 2026 08:00:10 GMT"}), 4, Trouble::Throttled,
         Millis(0)},
        {Kind::Gmail, answer(403, kGmailRate), 4, Trouble::Throttled, {}},
        {Kind::Graph, answer(403, kDenied), 5, Trouble::Misconfigured, {}},
        {Kind::Graph, answer(404, R"({"error":{"code":"ErrorInvalidUser"}})"), 5, Trouble::Misconfigured, {}},
        {Kind::Graph, answer(413), 6, Trouble::Permanent, {}},
        {Kind::Graph, answer(400, kInvalid), 7, Trouble::Permanent, {}},
        {Kind::Gmail,
         answer(400, R"({"error":{"code":400,"message":"Invalid To header","status":"INVALID_ARGUMENT"}})"),
         7,
         Trouble::Permanent,
         {}},
        {Kind::Graph, answer(408), 8, Trouble::Temporary, {}},
        {Kind::Graph, answer(500, "<html>oops</html>"), 8, Trouble::Temporary, {}},
        {Kind::Gmail, answer(502), 8, Trouble::Temporary, {}},
        {Kind::Graph, answer(302), 8, Trouble::Temporary, {}},
    };
    for (const auto& c : cases) {
      CAPTURE(c.r.status);
      CAPTURE(c.r.body);
      auto m = api::meaning(c.kind, c.r, kNow);
      CHECK(m.row == c.row);
      CHECK(m.trouble == c.cls);
      CHECK(smtp::classify(m.reply) == c.cls);  // the reply alone says the same
      if (c.wait) CHECK(m.retry_after == c.wait);
    }
  }

  TEST_CASE("the reply names the API, the status, its error and the request id, and nothing else") {
    auto m = api::meaning(Kind::Graph, answer(400, kInvalid, {"request-id: 5b1c-77", "authorization: x"}), kNow);
    CHECK(m.reply.summary() ==
          "554 5.6.0 Microsoft Graph answered 400 ErrorMimeContentInvalidBase64String: Invalid base64 string for "
          "MIME content. (request-id 5b1c-77)");
    CHECK(m.request_id == "5b1c-77");
    auto g = api::meaning(Kind::Gmail, answer(200, "{}", {"x-request-id: abc"}), kNow);
    CHECK(g.reply.summary() == "250 2.0.0 Gmail API accepted the message (request-id abc)");
    // Control characters in what the API said never reach a log line or a DSN.
    auto c = api::meaning(Kind::Graph, answer(400, "{\"error\":{\"code\":\"X\",\"message\":\"a\\r\\nb\"}}"), kNow);
    CHECK(c.reply.summary().find('\n') == std::string::npos);
    // What the API said cannot change the row's class: a rate refusal
    // whose request id happens to read "QuotaExceeded" is still a rate.
    auto q = api::meaning(Kind::Graph, answer(429, "", {"request-id: QuotaExceeded"}), kNow);
    CHECK(q.trouble == Trouble::Throttled);
    CHECK(smtp::classify(q.reply) == Trouble::Quota);  // why the table's class is passed on
  }

  TEST_CASE("Retry-After: seconds or a date, at most a day, nothing for garbage") {
    CHECK(http::retry_after("120", kNow) == Millis(120'000));
    CHECK(http::retry_after(" 0 ", kNow) == Millis(0));
    CHECK(http::retry_after("999999", kNow) == Millis(86'400'000));
    CHECK_FALSE(http::retry_after("-5", kNow));
    CHECK_FALSE(http::retry_after("soon", kNow));
    CHECK_FALSE(http::retry_after("", kNow));
    // 2026-09-21 14:13:30 UTC is 1'790'000'010.
    CHECK(http::retry_after("Mon, 21 Sep 2026 14:13:30 GMT", 1'790'000'000 - 5) == Millis(15'000));
    CHECK_FALSE(http::retry_after("Mon, 21 Sep 2026 14:13:30 GMT trailing", kNow));
  }
}
