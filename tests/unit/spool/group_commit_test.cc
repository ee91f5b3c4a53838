// SPDX-License-Identifier: MIT
// spool/group_commit: one directory fsync covers every caller that asked
// before it started; callers during it wait for the next one.
#include "spool/group_commit.h"

#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "temp_spool.h"

using namespace spoolgate;
using namespace spoolgate::spool;

TEST_SUITE("spool/group_commit") {
  TEST_CASE("callers during an fsync share the next one; each done runs once, in order, with the result") {
    TempSpool t;
    // A hand-cranked executor: jobs wait until the test finishes them.
    std::vector<std::pair<std::function<void()>, std::function<void()>>> jobs;
    GroupCommit g([&jobs](std::function<void()> work, std::function<void()> done) {
      jobs.emplace_back(std::move(work), std::move(done));
    }, t.spool);
    std::vector<int> done;
    auto finish_one = [&jobs] {
      auto [work, back] = std::move(jobs.front());
      jobs.erase(jobs.begin());
      work();
      back();
    };
    g.sync([&done](Result<void> r) { CHECK(r); done.push_back(1); });
    REQUIRE(jobs.size() == 1);
    g.sync([&done](Result<void> r) { CHECK(r); done.push_back(2); });
    g.sync([&done](Result<void> r) { CHECK(r); done.push_back(3); });
    CHECK(jobs.size() == 1);  // no second fsync while one runs
    finish_one();
    CHECK(done == std::vector<int>{1});
    REQUIRE(jobs.size() == 1);  // the next batch started at once
    finish_one();
    CHECK(done == std::vector<int>{1, 2, 3});
    CHECK(jobs.empty());
    CHECK(g.batches() == 2);
  }
}
