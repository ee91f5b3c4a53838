// SPDX-License-Identifier: MIT
#include "scheduler/scheduler.h"

#include <doctest/doctest.h>

using namespace spoolgate;
using namespace spoolgate::scheduler;

namespace {
Policy policy() { return Policy{Millis(60'000), Millis(3'600'000), 2.0, 0.0, Millis(5 * 86'400'000LL)}; }
}  // namespace

TEST_SUITE("scheduler") {
  TEST_CASE("new mail is due at once and never handed out twice") {
    Scheduler s(policy(), [] { return 0.5; });
    s.insert("A", 0, 0);
    s.insert("B", 0, 0);
    auto first = s.next_batch(1000, 10);
    CHECK(first == std::vector<std::string>{"A", "B"});
    CHECK(s.next_batch(1000, 10).empty());
    CHECK(s.in_flight() == 2);
    CHECK(s.flying_ids() == std::vector<std::string>{"A", "B"});
    s.release("A", 5000);
    s.remove("B");
    CHECK(s.flying_ids().empty());
  }
  TEST_CASE("a route is kept with its message; a filtered batch skips other routes, within a bounded scan") {
    Scheduler s(policy(), [] { return 0.5; });
    s.insert("A", 0, 0, "printer");
    s.insert("B", 0, 10, "");
    s.insert("C", 0, 20, "printer");
    CHECK(s.route("A") == "printer");
    CHECK(s.route("B").empty());
    CHECK(s.route("unknown").empty());
    auto not_printer = [](const std::string& r) { return r != "printer"; };
    CHECK(s.next_batch(1000, 10, not_printer) == std::vector<std::string>{"B"});
    CHECK(s.next_batch(1000, 10, not_printer).empty());  // A and C stay queued
    CHECK(s.in_flight() == 1);
    CHECK(s.next_batch(1000, 10) == std::vector<std::string>{"A", "C"});
    s.release("A", 2000);
    CHECK(s.route("A") == "printer");  // released, still routed
    // A long line of due mail for another route: the scan gives up.
    Scheduler t(policy(), [] { return 0.5; });
    for (std::size_t i = 0; i < Scheduler::kScanLimit; ++i) t.insert("X" + std::to_string(1000 + i), 0, 0, "other");
    t.insert("Z", 0, 1, "");
    CHECK(t.next_batch(1000, 1, [](const std::string& r) { return r.empty(); }).empty());
    t.remove("X1000");  // one fewer in front of it: within reach
    CHECK(t.next_batch(1000, 1, [](const std::string& r) { return r.empty(); }) == std::vector<std::string>{"Z"});
  }
  TEST_CASE("the oldest arrival is tracked across inserts and removals") {
    Scheduler s(policy(), [] { return 0.5; });
    CHECK(s.oldest_arrival_ms() == 0);
    s.insert("B", 5000, 0);
    s.insert("A", 3000, 0);
    s.insert("C", 9000, 0);
    CHECK(s.oldest_arrival_ms() == 3000);
    s.remove("A");
    CHECK(s.oldest_arrival_ms() == 5000);
  }
  TEST_CASE("backoff doubles from first up to max") {
    Scheduler s(policy(), [] { return 0.5; });
    CHECK(s.backoff(1) == Millis(60'000));
    CHECK(s.backoff(2) == Millis(120'000));
    CHECK(s.backoff(6) == Millis(1'920'000));
    CHECK(s.backoff(7) == Millis(3'600'000));
    CHECK(s.backoff(50) == Millis(3'600'000));
  }
  TEST_CASE("jitter stays within its fraction and never below a second") {
    Policy p = policy();
    p.jitter = 0.2;
    Scheduler lo(p, [] { return 0.0; }), hi(p, [] { return 1.0; });
    CHECK(lo.due_after(1, 0) == 48'000);
    CHECK(hi.due_after(1, 0) == 72'000);
    Policy tiny = policy();
    tiny.first = Millis(1);
    CHECK(Scheduler(tiny, [] { return 0.5; }).due_after(1, 5) == 1005);
  }
  TEST_CASE("a deferred message comes back when due, not before") {
    Scheduler s(policy(), [] { return 0.5; });
    s.insert("A", 0, 0);
    s.next_batch(0, 1);
    std::int64_t due = s.due_after(1, 1000);
    s.release("A", due);
    CHECK(s.next_batch(due - 1, 1).empty());
    CHECK(s.next_due() == due);
    CHECK(s.next_batch(due, 1) == std::vector<std::string>{"A"});
  }
  TEST_CASE("flush makes deferred mail due now; remove forgets") {
    Scheduler s(policy(), [] { return 0.5; });
    s.insert("A", 0, 1'000'000);
    s.insert("B", 0, 2'000'000);
    s.flush(10);
    CHECK(s.next_batch(10, 5).size() == 2);
    s.remove("A");
    s.remove("B");
    CHECK(s.size() == 0);
    CHECK(s.in_flight() == 0);
  }
  TEST_CASE("lifetime is measured from arrival") {
    Scheduler s(policy(), [] { return 0.5; });
    s.insert("A", 1000, 0);
    CHECK_FALSE(s.expired("A", 1000 + 5 * 86'400'000LL - 1));
    CHECK(s.expired("A", 1000 + 5 * 86'400'000LL));
  }
  TEST_CASE("expired mail waiting in the queue is taken oldest first; mail in flight is left to its session") {
    Policy p = policy();
    p.max_lifetime = Millis(10'000);
    Scheduler s(p, [] { return 0.5; });
    s.insert("OLD", 1000, 999'999'999);  // waits far ahead (a site backoff)
    s.insert("MID", 2000, 0);
    s.insert("NEW", 50'000, 0);
    CHECK(s.next_expiry() == 11'000);
    CHECK(s.next_batch(0, 1) == std::vector<std::string>{"MID"});  // in flight now
    CHECK(s.next_expiry() == 11'000);
    CHECK(s.take_expired(10'999, 10).empty());
    CHECK(s.take_expired(12'000, 10) == std::vector<std::string>{"OLD"});
    CHECK(s.in_flight() == 2);
    CHECK(s.next_expiry() == 60'000);  // OLD and MID are in flight
    s.release("MID", 0);
    CHECK(s.take_expired(12'000, 10) == std::vector<std::string>{"MID"});
    s.remove("OLD");
    s.remove("MID");
    CHECK(s.oldest_arrival_ms() == 50'000);
    CHECK(s.take_expired(59'999, 10).empty());
    CHECK(s.take_expired(60'000, 10) == std::vector<std::string>{"NEW"});
  }
  TEST_CASE("an unreadable entry backs off with each miss in a row") {
    Scheduler s(policy(), [] { return 0.5; });
    s.insert("A", 0, 0);
    CHECK(s.due_after_miss("A", 0) == 60'000);
    CHECK(s.due_after_miss("A", 0) == 120'000);
    CHECK(s.due_after_miss("A", 0) == 240'000);
    CHECK(s.due_after_miss("unknown", 0) == 60'000);
  }
}
