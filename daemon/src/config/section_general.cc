// SPDX-License-Identifier: MIT
// The top-level keys: who we are, where we listen, who may relay.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "config/sections.h"
#include "config/url.h"

namespace spoolgate::config {
namespace {

constexpr const char* kListenExpected = "expected host:port, [v6]:port or unix:/path with an IP address";

// One listener written as a map (listen: [{address: ..., tls: ...}]).
Table listen_fields(ListenAddress& a) {
  return {
      custom(
          "address", false,
          [&a](Parser& p, const Value& v, const std::string& path) {
            if (!p.scalar(v, path, "an address")) return;
            auto parsed = parse_listen_address(v.scalar, true);
            if (!parsed) return p.err(v, path, std::string(kListenExpected) + ", got '" + v.scalar + "'");
            a.unix_socket = parsed->unix_socket;
            a.host = parsed->host;
            a.port = parsed->port;
            a.path = parsed->path;
            a.text = parsed->text;
          },
          [&a] { return quoted_list({a.text}).substr(1, a.text.size() + 2); }),
      choice("tls", a.tls,
             {{"none", ListenTls::None}, {"starttls", ListenTls::StartTls}, {"implicit", ListenTls::Implicit}}),
      text("cert_file", a.cert_file),
      text("key_file", a.key_file),
      choice("tls_min_version", a.tls_min_version, {{"1.0", 10}, {"1.1", 11}, {"1.2", 12}, {"1.3", 13}}),
      networks("allow_networks", a.allow_networks, &a.allow_networks_set),
      choice("auth", a.auth,
             {{"off", ListenAuth::Off}, {"optional", ListenAuth::Optional}, {"required", ListenAuth::Required}}),
      text("users_file", a.users_file),
      networks("auth_plaintext_networks", a.auth_plaintext_networks),
  };
}

ListenAddress listen_entry(Parser& p, const Value& map, const std::string& at) {
  ListenAddress a;
  a.map_form = true;
  Table keys = listen_fields(a);
  for (auto& k : keys) k.path = at + "." + k.path;
  walk(p, map, at, keys, nullptr);
  if (a.text.empty()) p.err(map, at + ".address", "required");
  if (a.tls != ListenTls::None && (a.cert_file.empty() || a.key_file.empty()))
    p.err(map, at, std::string("tls: ") + std::string(to_string(a.tls)) + " needs cert_file and key_file");
  if (a.tls == ListenTls::None && (!a.cert_file.empty() || !a.key_file.empty()))
    p.err(map, at, "cert_file and key_file are used with tls: starttls or implicit");
  if (a.tls != ListenTls::None && a.unix_socket) p.err(map, at + ".tls", "not on a unix socket");
  if (a.auth != ListenAuth::Off && a.users_file.empty())
    p.err(map, at + ".users_file", std::string("required with auth: ") + std::string(to_string(a.auth)));
  if (a.auth == ListenAuth::Off && (!a.users_file.empty() || !a.auth_plaintext_networks.empty()))
    p.err(map, at + ".auth", "users_file and auth_plaintext_networks need auth: optional or required");
  if (a.auth == ListenAuth::Required && a.tls == ListenTls::None && a.auth_plaintext_networks.empty() &&
      !a.unix_socket) {
    auto ip = IpAddress::parse(a.host);
    if (!ip || !ip->loopback())
      p.err(map, at + ".auth",
            "required, but no client could log in: AUTH goes only over TLS (set tls) or from "
            "auth_plaintext_networks");
  }
  if (a.tls_min_version < 12) {
    // Old devices only where the operator says which: the listener's own
    // allow_networks, every one of them a LAN range.
    bool lan = a.allow_networks_set && !a.allow_networks.empty();
    for (const auto& n : a.allow_networks) lan = lan && n.is_private();
    if (!lan)
      p.err(map, at + ".tls_min_version",
            "TLS 1.0 and 1.1 are only for old devices on a LAN: give this listener its own allow_networks, "
            "private ranges only (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7, loopback)");
  }
  return a;
}

}  // namespace

std::string_view to_string(ListenAuth a) {
  switch (a) {
    case ListenAuth::Off:
      return "off";
    case ListenAuth::Optional:
      return "optional";
    case ListenAuth::Required:
      return "required";
  }
  return "?";
}

std::string_view to_string(ListenTls t) {
  switch (t) {
    case ListenTls::None:
      return "none";
    case ListenTls::StartTls:
      return "starttls";
    case ListenTls::Implicit:
      return "implicit";
  }
  return "?";
}

Table general_fields(Config& c) {
  return {
      text("hostname", c.hostname),
      custom(
          "listen", true,
          [&c](Parser& p, const Value& v, const std::string& path) {
            c.listen.clear();
            if (v.kind == Value::Null) return;
            if (v.kind != Value::List) return p.err(v, path, "expected a list of addresses or listener maps");
            for (std::size_t i = 0; i < v.list.size(); ++i) {
              const Value& e = v.list[i];
              if (e.kind == Value::Map) {
                c.listen.push_back(listen_entry(p, e, path + "[" + std::to_string(i) + "]"));
              } else if (e.kind != Value::Scalar) {
                p.err(e, path, "expected an address or a listener map");
              } else if (auto a = parse_listen_address(e.scalar, true)) {
                c.listen.push_back(*a);
              } else {
                p.err(e, path, std::string(kListenExpected) + ", got '" + e.scalar + "'");
              }
            }
          },
          [&c] {
            std::vector<std::string> l;
            bool maps = false;
            for (auto& a : c.listen) maps = maps || a.map_form;
            if (!maps) {
              for (const auto& a : c.listen) l.push_back(a.text);
              return quoted_list(l);
            }
            std::string o = "[";
            for (auto& a : c.listen) {
              if (o.size() > 1) o += ", ";
              if (!a.map_form) {
                o += quoted_list({a.text}).substr(1, a.text.size() + 2);
                continue;
              }
              std::string m;
              for (const auto& f : listen_fields(a)) m += (m.empty() ? "" : ", ") + f.path + ": " + f.show();
              o += "{" + m + "}";
            }
            return o + "]";
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
    if (ip && !ip->loopback() && !c.allow_networks_explicit && !l.allow_networks_set)
      k.err("listen", "'" + l.text +
                          "' is not a loopback address; set allow_networks explicitly (for all listeners, or "
                          "this one's) to say which clients may relay through it (spoolgate never becomes an "
                          "open relay by default)");
  }
}

}  // namespace spoolgate::config
