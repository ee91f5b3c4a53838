// SPDX-License-Identifier: MIT
#include "core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace spoolgate {

std::optional<IpAddress> IpAddress::parse(std::string_view s) {
  // inet_pton reads a C string: a NUL inside `s` would cut it short and
  // "::\0junk" would pass as "::" (found by the http_head fuzz target).
  if (s.find('\0') != std::string_view::npos || s.size() > 64) return std::nullopt;
  std::string str(s);
  IpAddress a;
  if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) == 1) {
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa) {
  IpAddress a;
  if (sa->sa_family == AF_INET) {
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return a;
  }
  if (sa->sa_family == AF_INET6) {
    a.v6 = true;
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::unmapped() const {
  static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!v6 || std::memcmp(bytes.data(), prefix, 12) != 0) return *this;
  IpAddress a;
  std::memcpy(a.bytes.data(), bytes.data() + 12, 4);
  return a;
}

bool IpAddress::loopback() const {
  IpAddress a = unmapped();
  if (!a.v6) return a.bytes[0] == 127;
  for (int i = 0; i < 15; ++i)
    if (a.bytes[static_cast<size_t>(i)] != 0) return false;
  return a.bytes[15] == 1;
}

bool IpAddress::unspecified() const {
  size_t n = v6 ? 16 : 4;
  for (size_t i = 0; i < n; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view s) {
  size_t slash = s.find('/');
  auto ip = IpAddress::parse(s.substr(0, slash));
  if (!ip) return std::nullopt;
  Cidr c{*ip, ip->v6 ? 128u : 32u};
  if (slash != std::string_view::npos) {
    std::string_view p = s.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v > c.prefix) return std::nullopt;
    c.prefix = v;
  }
  // Normalise host bits away so "10.1.2.3/8" means 10.0.0.0/8.
  for (unsigned bit = c.prefix; bit < (c.net.v6 ? 128u : 32u); ++bit)
    c.net.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return c;
}

bool Cidr::contains(const IpAddress& addr) const {
  IpAddress a = addr.unmapped();
  IpAddress n = net.unmapped();
  unsigned prefix_bits = prefix;
  if (net.v6 && !n.v6) prefix_bits = prefix >= 96 ? prefix - 96 : 0;  // ::ffff:0:0/96 style
  if (a.v6 != n.v6) return false;
  for (unsigned bit = 0; bit < prefix_bits; ++bit) {
    std::uint8_t m = static_cast<std::uint8_t>(0x80u >> (bit % 8));
    if ((a.bytes[bit / 8] & m) != (n.bytes[bit / 8] & m)) return false;
  }
  return true;
}

std::string Cidr::str() const { return net.str() + "/" + std::to_string(prefix); }

bool Cidr::is_private() const {
  static const char* lans[] = {"10.0.0.0/8",  "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                               "127.0.0.0/8", "fc00::/7",      "fe80::/10",      "::1/128"};
  for (const char* l : lans) {
    Cidr lan = *parse(l);
    if (lan.net.v6 == net.v6 && lan.prefix <= prefix && lan.contains(net)) return true;
  }
  return false;
}

}  // namespace spoolgate
