// SPDX-License-Identifier: MIT
// The top-level keys: who we are, where we listen, who may relay.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "config/sections.h"
#include "config/url.h"

namespace spoolgate::config {

Table general_fields(Config& c) {
  return {
      text("hostname", c.hostname),
      custom(
          "listen", true,
          [&c](Parser& p, const Value& v, const std::string& path) {
            c.listen.clear();
            for (const Value* e : p.items(v, path)) {
              if (auto a = parse_listen_address(e->scalar, true))
                c.listen.push_back(*a);
              else
                p.err(*e, path,
                      "expected host:port, [v6]:port or unix:/path with an IP address, got '" + e->scalar + "'");
            }
          },
          [&c] {
            std::vector<std::string> l;
            for (const auto& a : c.listen) l.push_back(a.text);
            return quoted_list(l);
          }),
      networks("allow_networks", c.allow_networks),
      custom(
          "unix_socket_mode", false,
          [&c](Parser& p, const Value& v, const std::string& path) {
            if (!p.scalar(v, path, "an octal mode like \"0660\"")) return;
            const std::string& s = v.scalar;
            unsigned m = 0;
            bool ok = s.size() >= 3 && s.size() <= 4;
            for (char ch : s) ok = ok && ch >= '0' && ch <= '7';
            if (ok) m = static_cast<unsigned>(std::stoul(s, nullptr, 8));
            if (!ok || m > 0777) return p.err(v, path, "expected an octal mode like \"0660\", got '" + s + "'");
            c.unix_socket_mode = m;
          },
          [&c] {
            char mode[8];
            (void)std::snprintf(mode, sizeof mode, "%04o", c.unix_socket_mode);
            return "\"" + std::string(mode) + "\"";
          }),
      text("submission_socket", c.submission_socket),
      choice("bare_newlines", c.bare_newlines,
             {{"normalize", BareNewlines::Normalize}, {"reject", BareNewlines::Reject}}),
      duration("shutdown_timeout", c.shutdown_timeout),
  };
}

void general_check(Check& k, Config& c) {
  if (c.hostname.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) c.hostname = buf;
    if (c.hostname.empty()) c.hostname = "localhost";
  }
  for (char ch : c.hostname)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
          ch == '_')) {
      k.err("hostname", "expected a host name (letters, digits, '.', '-'), got '" + c.hostname + "'");
      break;
    }
  if (c.listen.empty()) k.err("listen", "expected at least one address");
  if (!c.submission_socket.empty() && c.submission_socket.front() != '/')
    k.err("submission_socket", "expected an absolute path, got '" + c.submission_socket + "'");
  c.allow_networks_explicit = k.root().kind == Value::Map && k.root().find("allow_networks") != nullptr;
  for (const auto& l : c.listen) {
    if (l.unix_socket) continue;
    auto ip = IpAddress::parse(l.host);
    if (ip && !ip->loopback() && !c.allow_networks_explicit)
      k.err("listen", "'" + l.text +
                          "' is not a loopback address; set allow_networks explicitly to say which clients may "
                          "relay through it (spoolgate never becomes an open relay by default)");
  }
}

}  // namespace spoolgate::config
