// SPDX-License-Identifier: MIT
// upstream/outcome: the verdict after an attempt, row by row.
#include "upstream/outcome.h"

#include <doctest/doctest.h>

#include "scheduler/scheduler.h"

using namespace spoolgate;
using namespace spoolgate::upstream;
using spoolgate::spool::Record;

namespace {

scheduler::Policy policy() {
  return scheduler::Policy{Millis(60'000), Millis(3'600'000), 2.0, 0.0, Millis(86'400'000)};
}

Record record(std::vector<Record::RcptState> states) {
  Record r;
  r.id = "K1KH0000000000AA";
  r.arrived = 0;
  for (std::size_t i = 0; i < states.size(); ++i) r.recipients.push_back("r" + std::to_string(i) + "@example.com");
  r.normalize();
  r.rcpt_state = std::move(states);
  r.attempts = 1;
  return r;
}

}  // namespace

TEST_SUITE("upstream/outcome") {
  using S = Record::RcptState;
  TEST_CASE("every recipient delivered: remove") {
    scheduler::Scheduler sched(policy(), [] { return 0.5; });
    Record r = record({S::Delivered, S::Delivered});
    Verdict v = decide(r, {}, sched, 1000);
    CHECK(v.action == Verdict::Action::Remove);
  }
  TEST_CASE("done with a permanent failure: fail with the failures as the reason") {
    scheduler::Scheduler sched(policy(), [] { return 0.5; });
    Record r = record({S::Delivered, S::Failed});
    Verdict v = decide(r, {"<r1@example.com>: 550 5.1.1 no such user"}, sched, 1000);
    CHECK(v.action == Verdict::Action::Fail);
    CHECK_FALSE(v.expired);
    CHECK(v.reason == "<r1@example.com>: 550 5.1.1 no such user");
  }
  TEST_CASE("a recipient that failed in an earlier attempt is reported when the last other one is delivered") {
    // (It used to be removed without a report: the last attempt had no
    // failure of its own.)
    scheduler::Scheduler sched(policy(), [] { return 0.5; });
    Record r = record({S::Failed, S::Delivered});
    r.rcpt_reply[0] = "550 5.1.1 no such user";
    Verdict v = decide(r, {}, sched, 1000);
    CHECK(v.action == Verdict::Action::Fail);
    CHECK(v.reason == "<r0@example.com>: 550 5.1.1 no such user");
  }
  TEST_CASE("another route's recipients still to visit this round: due now, no backoff") {
    scheduler::Scheduler sched(policy(), [] { return 0.5; });
    sched.insert("K1KH0000000000AA", 0, 0);
    Record r = record({S::Delivered, S::Pending});
    r.attempts = 2;
    Verdict v = decide(r, {}, sched, 1'000'000, true);
    CHECK(v.action == Verdict::Action::Defer);
    CHECK(v.due == 1'000'000);
    CHECK(r.next_attempt == 1000);
  }
  TEST_CASE("a pending recipient within the lifetime: defer with backoff, next attempt recorded") {
    scheduler::Scheduler sched(policy(), [] { return 0.5; });
    sched.insert("K1KH0000000000AA", 0, 0);
    Record r = record({S::Delivered, S::Pending});
    r.attempts = 2;
    Verdict v = decide(r, {}, sched, 1'000'000);
    CHECK(v.action == Verdict::Action::Defer);
    CHECK(v.due == 1'000'000 + 120'000);
    CHECK(r.next_attempt == v.due / 1000);
  }
  TEST_CASE("a pending recipient past the lifetime: fail it, expired, with the last error") {
    scheduler::Scheduler sched(policy(), [] { return 0.5; });
    sched.insert("K1KH0000000000AA", 0, 0);
    Record r = record({S::Delivered, S::Pending});
    r.last_error = "certificate verification failed";
    Verdict v = decide(r, {}, sched, 86'400'000);
    CHECK(v.action == Verdict::Action::Fail);
    CHECK(v.expired);
    CHECK(r.rcpt_state[1] == S::Failed);
    CHECK(r.rcpt_state[0] == S::Delivered);
    CHECK(v.reason.find("1 recipient(s) pending; last error: certificate verification failed") != std::string::npos);
  }
}
