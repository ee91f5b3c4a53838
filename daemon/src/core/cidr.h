// SPDX-License-Identifier: MIT
// core/cidr: IP networks ("192.168.1.0/24", "::1/128", "10.0.0.7") and the
// membership test used for allow_networks. An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d, as a dual-stack socket reports IPv4 peers) matches IPv4
// networks as the plain IPv4 address would.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr;

namespace spoolgate {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // v4 uses the first 4

  static std::optional<IpAddress> parse(std::string_view s);
  static std::optional<IpAddress> from_sockaddr(const sockaddr* sa);
  // ::ffff:a.b.c.d becomes a.b.c.d; anything else is returned unchanged.
  IpAddress unmapped() const;
  bool loopback() const;
  bool unspecified() const;
  std::string str() const;
};

struct Cidr {
  IpAddress net;
  unsigned prefix = 0;

  static std::optional<Cidr> parse(std::string_view s);
  bool contains(const IpAddress& a) const;
  // The whole network lies in a LAN range: RFC 1918 (10/8, 172.16/12,
  // 192.168/16), unique local fc00::/7, link-local, or loopback.
  bool is_private() const;
  std::string str() const;
};

}  // namespace spoolgate
