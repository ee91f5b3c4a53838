// SPDX-License-Identifier: MIT
#include "core/cidr.h"

#include <doctest/doctest.h>

using namespace spoolgate;

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
  TEST_CASE("is_private: the whole network inside a LAN range") {
    for (const char* lan : {"192.168.10.0/24", "10.0.0.0/8", "10.1.2.3", "172.16.0.0/12", "172.31.255.0/24",
                            "127.0.0.1", "fd00::/8", "fe80::1", "::1"})
      CHECK_MESSAGE(Cidr::parse(lan)->is_private(), lan);
    for (const char* wide : {"0.0.0.0/0", "10.0.0.0/7", "172.16.0.0/11", "192.168.0.0/15", "8.8.8.8", "::/0",
                             "2001:db8::/32", "172.32.0.1"})
      CHECK_FALSE_MESSAGE(Cidr::parse(wide)->is_private(), wide);
  }
}
