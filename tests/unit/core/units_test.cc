// SPDX-License-Identifier: MIT
#include "core/units.h"

#include <doctest/doctest.h>

using namespace spoolgate;

TEST_SUITE("core/units") {
  TEST_CASE("sizes parse with binary units and print back") {
    CHECK(parse_size("35MiB") == 35ULL << 20);
    CHECK(parse_size("1GiB") == 1ULL << 30);
    CHECK(parse_size("64kib") == 64ULL << 10);
    CHECK(parse_size("512") == 512ULL);
    CHECK(parse_size("512B") == 512ULL);
    CHECK_FALSE(parse_size("35MB"));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("MiB"));
    CHECK_FALSE(parse_size("99999999999999999999999"));
    CHECK_FALSE(parse_size("20000000TiB"));
    CHECK(format_size(35ULL << 20) == "35MiB");
    CHECK(format_size(1000) == "1000B");
  }
  TEST_CASE("durations need a unit and may be sums") {
    CHECK(parse_duration("30s") == Millis(30'000));
    CHECK(parse_duration("5m") == Millis(300'000));
    CHECK(parse_duration("1h30m") == Millis(5'400'000));
    CHECK(parse_duration("250ms") == Millis(250));
    CHECK(parse_duration("5d") == Millis(5 * 86'400'000LL));
    CHECK_FALSE(parse_duration("30"));
    CHECK_FALSE(parse_duration("5 minutes"));
    CHECK_FALSE(parse_duration(""));
    CHECK(format_duration(Millis(5'400'000)) == "1h30m");
    CHECK(format_duration(Millis(0)) == "0s");
  }
}
