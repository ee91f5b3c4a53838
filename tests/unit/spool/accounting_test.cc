// SPDX-License-Identifier: MIT
// spool/accounting: the figures and the watermarks, with reservations.
#include "spool/accounting.h"

#include <doctest/doctest.h>

using namespace spoolgate::spool;

namespace {

Record of_size(std::uint64_t n) {
  Record r;
  r.size = n;
  return r;
}

}  // namespace

TEST_SUITE("spool/accounting") {
  TEST_CASE("over at the high watermark, accepting again only under the low one (90%)") {
    Accounting a(Limits{1000, 100, 0}, Usage{0, 0, UINT64_MAX});
    CHECK(a.accepting());
    a.added(of_size(1000));
    CHECK_FALSE(a.accepting());
    a.added(of_size(0));
    a.removed(50);  // 950: under the high mark, not under the low one
    CHECK_FALSE(a.accepting());
    a.removed(100);  // 850: under 900
    CHECK(a.usage().bytes == 850);
    CHECK(a.usage().messages == 0);
    CHECK(a.accepting());
    a.removed(1);  // the message count stops at 0
    CHECK(a.usage().messages == 0);
  }

  TEST_CASE("messages and free disk are watermarks too; far over at 125% or half the free minimum") {
    Accounting a(Limits{1ULL << 40, 4, 1000}, Usage{0, 0, 5000});
    for (int i = 0; i < 4; ++i) a.added(of_size(1));
    CHECK_FALSE(a.accepting());
    CHECK_FALSE(a.far_over());
    a.added(of_size(1));
    CHECK(a.far_over());
    Accounting b(Limits{1ULL << 40, 100, 1000}, Usage{0, 0, 999});
    CHECK_FALSE(b.accepting());
    CHECK_FALSE(b.far_over());
    b.set_free_disk(499);
    CHECK(b.far_over());
  }

  TEST_CASE("a reservation counts as written; one that would cross the mark is refused and not kept") {
    Accounting a(Limits{1000, 100, 0}, Usage{0, 0, UINT64_MAX});
    int s1 = 0, s2 = 0;
    CHECK(a.reserve(&s1, 600));
    CHECK(a.reserved() == 600);
    CHECK_FALSE(a.reserve(&s2, 500));
    CHECK(a.reserved() == 600);
    a.grow(&s1, 700);
    CHECK(a.reserved() == 700);
    a.grow(&s1, 100);  // never shrinks
    CHECK(a.reserved() == 700);
    a.unreserve(&s1);
    a.added(of_size(700));  // committed
    CHECK(a.reserved() == 0);
    CHECK(a.usage().bytes == 700);
  }

  TEST_CASE("new limits start the over state afresh") {
    Accounting a(Limits{1000, 100, 0}, Usage{950, 1, UINT64_MAX});
    a.added(of_size(100));
    CHECK_FALSE(a.accepting());
    a.set_limits(Limits{10000, 100, 0});
    CHECK(a.accepting());
  }
}
