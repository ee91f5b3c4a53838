// SPDX-License-Identifier: MIT
#include "core/units.h"

#include <doctest/doctest.h>

#include "core/cidr.h"
#include "core/ids.h"
#include "core/text.h"

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

TEST_SUITE("core/cidr") {
  TEST_CASE("an address with a NUL inside is not an address") {
    using namespace std::string_literals;
    CHECK_FALSE(IpAddress::parse("::\0junk"s));
    CHECK_FALSE(IpAddress::parse("127.0.0.1\0"s));
    CHECK_FALSE(Cidr::parse("10.0.0.0\0/8"s));
    CHECK(IpAddress::parse("::1"));
  }
  TEST_CASE("networks match their members, IPv4-mapped IPv6 like IPv4") {
    auto lan = *Cidr::parse("192.168.1.0/24");
    CHECK(lan.contains(*IpAddress::parse("192.168.1.77")));
    CHECK_FALSE(lan.contains(*IpAddress::parse("192.168.2.1")));
    CHECK(lan.contains(*IpAddress::parse("::ffff:192.168.1.9")));
    CHECK_FALSE(lan.contains(*IpAddress::parse("::1")));
    auto lo6 = *Cidr::parse("::1/128");
    CHECK(lo6.contains(*IpAddress::parse("::1")));
    CHECK_FALSE(lo6.contains(*IpAddress::parse("::2")));
    auto host = *Cidr::parse("10.0.0.7");
    CHECK(host.prefix == 32);
    CHECK(host.contains(*IpAddress::parse("10.0.0.7")));
    CHECK(Cidr::parse("10.1.2.3/8")->str() == "10.0.0.0/8");
    CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
    CHECK_FALSE(Cidr::parse("example.com/8"));
    CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("8.8.8.8")));
  }
  TEST_CASE("loopback detection") {
    CHECK(IpAddress::parse("127.0.0.2")->loopback());
    CHECK(IpAddress::parse("::1")->loopback());
    CHECK(IpAddress::parse("::ffff:127.0.0.1")->loopback());
    CHECK_FALSE(IpAddress::parse("0.0.0.0")->loopback());
    CHECK_FALSE(IpAddress::parse("192.168.0.1")->loopback());
  }
}

TEST_SUITE("core/ids") {
  TEST_CASE("queue ids are unique, increasing and file-name safe") {
    std::string prev;
    for (int i = 0; i < 1000; ++i) {
      std::string id = new_queue_id();
      CHECK(is_queue_id(id));
      CHECK(id > prev);
      prev = id;
    }
    CHECK_FALSE(is_queue_id("../../etc/passwd"));
    CHECK_FALSE(is_queue_id("K0VJA8SA6KZWNM1"));
  }
  TEST_CASE("json_quote escapes controls and invalid UTF-8") {
    CHECK(json_quote("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"");
    CHECK(json_quote(std::string("\x01", 1)) == "\"\\u0001\"");
    CHECK(json_quote("\xc3\xa9") == "\"\xc3\xa9\"");
    CHECK(json_quote("\xff") == "\"\\u00ff\"");
  }
}
