// SPDX-License-Identifier: MIT
#include "config/url.h"

#include <cctype>
#include <charconv>

#include "core/text.h"

namespace spoolgate::config {

// host:port, [v6]:port, or (when allowed) unix:/path; host an IP literal.
std::optional<ListenAddress> parse_listen_address(std::string_view s, bool allow_unix) {
  ListenAddress a;
  a.text = s;
  if (allow_unix && s.starts_with("unix:")) {
    a.unix_socket = true;
    a.path = s.substr(5);
    if (a.path.empty() || a.path.size() > 100) return std::nullopt;
    return a;
  }
  size_t colon = s.rfind(':');
  std::string_view host = colon == std::string_view::npos ? s : s.substr(0, colon);
  std::string_view port = colon == std::string_view::npos ? "" : s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned pn = 0;
  auto [q, ec] = std::from_chars(port.data(), port.data() + port.size(), pn);
  if (!IpAddress::parse(host) || port.empty() || ec != std::errc() || q != port.data() + port.size() || pn > 65535)
    return std::nullopt;
  a.host = host;
  a.port = static_cast<std::uint16_t>(pn);
  return a;
}

namespace {

// graph://MAILBOX, gmail-api://USER: the rest of the URL is the mailbox,
// as it is (an address, "me", or a Graph object id); the host is the API's.
void parse_api_url(Parser& p, const Value& where, const std::string& path, Upstream& u, Scheme scheme,
                   std::string_view rest) {
  u.scheme = scheme;
  u.port = 443;
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  bool ok = !rest.empty() && rest.size() <= 320;
  for (char c : rest) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '/' && c != '?' && c != '#';
  if (!ok)
    return p.err(where, path + ".url",
                 scheme == Scheme::Graph ? "expected graph://MAILBOX (the mailbox to send as), got '" + u.url + "'"
                                         : "expected gmail-api://me or gmail-api://USER@DOMAIN, got '" + u.url + "'");
  if (scheme == Scheme::GmailApi && rest != "me" && rest.find('@') == std::string_view::npos)
    return p.err(where, path + ".url", "expected gmail-api://me or gmail-api://USER@DOMAIN, got '" + u.url + "'");
  u.mailbox = std::string(rest);
  if (u.username.empty()) u.username = u.mailbox;
}

}  // namespace

void parse_upstream_url(Parser& p, const Value& where, const std::string& path, Upstream& u) {
  std::string_view s = u.url;
  auto bad = [&](const std::string& why) { p.err(where, path + ".url", why + ", got '" + u.url + "'"); };
  size_t sep = s.find("://");
  if (sep == std::string_view::npos) return bad("expected smtps://host:465 or smtp+starttls://host:587");
  std::string_view scheme = s.substr(0, sep);
  s.remove_prefix(sep + 3);
  if (scheme == "smtps") {
    u.scheme = Scheme::Smtps;
    u.port = 465;
  } else if (scheme == "smtp+starttls") {
    u.scheme = Scheme::StartTls;
    u.port = 587;
  } else if (scheme == "smtp") {
    u.scheme = Scheme::Plain;
    u.port = 25;
  } else if (scheme == "graph" || scheme == "gmail-api") {
    return parse_api_url(p, where, path, u, scheme == "graph" ? Scheme::Graph : Scheme::GmailApi, s);
  } else
    return bad("unknown scheme (expected smtps, smtp+starttls, smtp, graph or gmail-api)");
  if (!s.empty() && s.back() == '/') s.remove_suffix(1);
  size_t at = s.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view user = s.substr(0, at);
    if (user.find(':') != std::string_view::npos)
      return bad("a password in the URL is not accepted; use password_file or password_env");
    // Percent-decoding lets a mailbox be the user: alerts%40example.com.
    std::string decoded;
    for (size_t k = 0; k < user.size(); ++k) {
      if (user[k] == '%' && k + 2 < user.size() + 0 && std::isxdigit(static_cast<unsigned char>(user[k + 1])) &&
          std::isxdigit(static_cast<unsigned char>(user[k + 2]))) {
        decoded += static_cast<char>(std::stoi(std::string(user.substr(k + 1, 2)), nullptr, 16));
        k += 2;
      } else {
        decoded += user[k];
      }
    }
    if (u.username.empty()) u.username = decoded;
    s.remove_prefix(at + 1);
  }
  std::string_view host = s, port;
  if (s.starts_with("[")) {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] host");
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (rest.starts_with(":"))
      port = rest.substr(1);
    else if (!rest.empty())
      return bad("unexpected text after the host");
  } else if (size_t colon = s.rfind(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  for (char ch : host)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
          ch == ':'))
      return bad("bad character in host");
  if (!port.empty()) {
    unsigned pn = 0;
    auto [q, ec] = std::from_chars(port.data(), port.data() + port.size(), pn);
    if (ec != std::errc() || q != port.data() + port.size() || pn == 0 || pn > 65535) return bad("bad port");
    u.port = static_cast<std::uint16_t>(pn);
  }
  u.host = host;
  if (u.scheme == Scheme::Plain) {
    auto ip = IpAddress::parse(u.host);
    bool loop = iequals(u.host, "localhost") || (ip && ip->loopback());
    if (!u.insecure_plaintext)
      return bad(
          "smtp:// sends mail and credentials in clear text; use smtps:// or smtp+starttls://, or set "
          "insecure_plaintext: true for a loopback test server");
    if (!loop) return bad("smtp:// with insecure_plaintext is only allowed to a loopback host");
  }
}

}  // namespace spoolgate::config
