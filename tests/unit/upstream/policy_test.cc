// SPDX-License-Identifier: MIT
// upstream/policy: what an attempt's replies and a session's failures mean,
// row by row.
#include "upstream/policy.h"

#include <doctest/doctest.h>

using namespace spoolgate;
using namespace spoolgate::upstream;
using spoolgate::spool::Record;
using S = Record::RcptState;
using Site = Assessment::Site;

namespace {

Record record(std::size_t n) {
  Record r;
  r.id = "K1KH0000000000AA";
  for (std::size_t i = 0; i < n; ++i) r.recipients.push_back("r" + std::to_string(i) + "@example.com");
  r.normalize();
  return r;
}

smtp::Reply reply(int code, std::string text) { return smtp::Reply{code, {std::move(text)}}; }

// One recipient, one reply: its state, and what the attempt means.
struct Row {
  S state;
  Assessment a;
};

Row one(int code, const std::string& text) {
  Record r = record(1);
  Assessment a = assess(r, {0}, {reply(code, text)});
  CHECK(r.attempts == 1);
  CHECK(r.rcpt_reply[0] == std::to_string(code) + " " + text);
  return Row{r.rcpt_state[0], a};
}

}  // namespace

TEST_SUITE("upstream/policy") {
  TEST_CASE("250: delivered; the site works; the session goes on") {
    Row r = one(250, "2.0.0 ok");
    CHECK(r.state == S::Delivered);
    CHECK(r.a.any_delivered);
    CHECK(r.a.site == Site::None);
    CHECK_FALSE(r.a.end_session());
    CHECK(r.a.last_error.empty());
  }

  TEST_CASE("550 5.1.1: that recipient fails for good, with its reply") {
    Row r = one(550, "5.1.1 no such user");
    CHECK(r.state == S::Failed);
    REQUIRE(r.a.failed.size() == 1);
    CHECK(r.a.failed[0] == "<r0@example.com>: 550 5.1.1 no such user");
    CHECK(r.a.site == Site::None);
    CHECK(r.a.last_error == "550 5.1.1 no such user");
  }

  TEST_CASE("451 4.3.0: pending, retried later; not the site's trouble") {
    Row r = one(451, "4.3.0 try again");
    CHECK(r.state == S::Pending);
    CHECK(r.a.failed.empty());
    CHECK(r.a.site == Site::None);
    CHECK(r.a.last_error == "451 4.3.0 try again");
  }

  TEST_CASE("451 4.7.0 and 432 4.3.2: throttled; pending; the session ends") {
    for (auto [code, text] : {std::pair{451, "4.7.0 slow down"}, std::pair{432, "4.3.2 too many connections"}}) {
      Row r = one(code, text);
      CHECK(r.state == S::Pending);
      CHECK(r.a.site == Site::Throttled);
      CHECK(r.a.end_session());
      CHECK(r.a.site_reason == std::to_string(code) + " " + text);
    }
  }

  TEST_CASE("535 5.7.139 and 550 5.7.30: our account (invariant 8): pending whatever the class, misconfigured") {
    for (auto [code, text] : {std::pair{535, "5.7.139 Authentication unsuccessful"},
                              std::pair{550, "5.7.30 Basic authentication is not supported for Client Submission"},
                              std::pair{550, "5.7.60 SendAsDenied"}}) {
      Row r = one(code, text);
      CHECK(r.state == S::Pending);
      CHECK(r.a.failed.empty());
      CHECK(r.a.site == Site::Misconfigured);
      CHECK(r.a.end_session());
    }
  }

  TEST_CASE("a sending quota (M365 SubmissionQuotaExceeded, Gmail 550 5.4.5): pending, held for the quota") {
    for (auto [code, text] : {std::pair{554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"},
                              std::pair{550, "5.4.5 Daily user sending limit exceeded"}}) {
      Row r = one(code, text);
      CHECK(r.state == S::Pending);
      CHECK(r.a.site == Site::Quota);
      CHECK(r.a.end_session());
    }
  }

  TEST_CASE("mixed replies: each recipient gets its own fate; last_error is the first that was not positive") {
    Record r = record(4);
    r.attempts = 2;
    Assessment a =
        assess(r, {0, 1, 2, 3},
               {reply(250, "ok"), reply(451, "4.2.1 mailbox busy"), reply(550, "5.1.1 unknown"), reply(250, "ok")});
    CHECK(r.rcpt_state == std::vector<S>{S::Delivered, S::Pending, S::Failed, S::Delivered});
    CHECK(a.any_delivered);
    CHECK(a.failed == std::vector<std::string>{"<r2@example.com>: 550 5.1.1 unknown"});
    CHECK(a.last_error == "451 4.2.1 mailbox busy");
    CHECK(r.last_error == "451 4.2.1 mailbox busy");
    CHECK(r.attempts == 3);
  }

  TEST_CASE("a retry carries only the pending recipients: indexes map the replies to them") {
    Record r = record(3);
    r.rcpt_state = {S::Delivered, S::Pending, S::Pending};
    Assessment a = assess(r, {1, 2}, {reply(250, "ok"), reply(550, "5.1.1 gone")});
    CHECK(r.rcpt_state == std::vector<S>{S::Delivered, S::Delivered, S::Failed});
    CHECK(a.failed == std::vector<std::string>{"<r2@example.com>: 550 5.1.1 gone"});
  }

  TEST_CASE("our account's trouble outranks throttling, and the first such reply is the reason") {
    Record r = record(3);
    Assessment a =
        assess(r, {0, 1, 2},
               {reply(451, "4.7.0 slow down"), reply(550, "5.4.5 sending limit"), reply(535, "5.7.8 bad credentials")});
    CHECK(a.site == Site::Quota);
    CHECK(a.site_reason == "550 5.4.5 sending limit");
    CHECK(a.last_error == "451 4.7.0 slow down");
  }

  TEST_CASE("fewer replies than recipients leave the rest pending and unchanged") {
    Record r = record(2);
    Assessment a = assess(r, {0, 1}, {reply(250, "ok")});
    CHECK(r.rcpt_state == std::vector<S>{S::Delivered, S::Pending});
    CHECK(r.rcpt_reply[1].empty());
    CHECK(a.last_error.empty());
  }

  TEST_CASE("a deferral without replies counts the attempt and keeps the old last_error") {
    Record r = record(1);
    r.last_error = "earlier";
    Assessment a = assess(r, {}, {});
    CHECK(r.attempts == 1);
    CHECK(r.last_error == "earlier");
    CHECK(a.site == Site::None);
  }

  TEST_CASE("judge: a failure before content may fail over when another upstream is usable") {
    smtp::Failure f{smtp::Failure::Temporary, "connection refused", false, true, Errc::Io};
    Judgement j = judge(f, false, false, true);
    CHECK(j.site);
    CHECK(j.failover);
    CHECK_FALSE(j.duplicate_risk);
    CHECK_FALSE(judge(f, false, false, false).failover);
  }

  TEST_CASE("judge: content on the wire defers; an unanswered final dot is a duplicate risk, a timeout included") {
    smtp::Failure lost{smtp::Failure::Temporary, "connection lost", true, true, Errc::Closed};
    smtp::Failure timeout{smtp::Failure::Temporary, "timeout waiting for the server at end of data", true, true,
                          Errc::Timeout};
    CHECK_FALSE(judge(lost, false, true, true).failover);
    CHECK(judge(lost, true, true, true).duplicate_risk);
    CHECK(judge(timeout, true, true, true).duplicate_risk);
    CHECK_FALSE(judge(timeout, false, true, true).duplicate_risk);
  }

  TEST_CASE("judge: a refused login defers instead of failing over; a spool read failure is not the site's") {
    smtp::Failure auth{smtp::Failure::Auth, "authentication failed: 535", false, true};
    CHECK_FALSE(judge(auth, false, false, true).failover);
    CHECK(judge(auth, false, false, true).site);
    smtp::Failure disk{smtp::Failure::Temporary, "spool read failed", true, false};
    CHECK_FALSE(judge(disk, false, true, true).site);
  }
  TEST_CASE("classes given by an API upstream's table win over the reply's text") {
    Record r = record(2);
    auto a = assess(r, {0, 1}, {reply(432, "4.7.0 throttled (request-id QuotaExceeded)"), reply(554, "5.6.0 bad")},
                    {smtp::Trouble::Throttled, smtp::Trouble::Permanent});
    CHECK(a.site == Site::Throttled);
    CHECK(r.rcpt_state[0] == S::Pending);
    CHECK(r.rcpt_state[1] == S::Failed);
    Record t = record(1);
    CHECK(assess(t, {0}, {reply(432, "4.7.0 throttled (request-id QuotaExceeded)")}).site == Site::Quota);
  }
}
