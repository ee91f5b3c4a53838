// SPDX-License-Identifier: MIT
#include "config/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <functional>
#include <memory>
#include <set>

#include "core/text.h"

extern char** environ;

namespace spoolgate::config {
namespace {

// A YAML-or-environment value with where it came from.
struct Value {
  enum Kind { Null, Scalar, List, Map } kind = Null;
  std::string scalar;
  std::vector<Value> list;
  // A pair of (key, Value) would need Value complete here; an entry type
  // completed below keeps the order of the keys as written.
  struct Entry;
  std::vector<Entry> map;
  std::string origin;  // "file:line" or "$SPOOLGATE_X"

  Value* find(std::string_view key);
  Value& child(const std::string& key, const std::string& origin_if_new);
};

struct Value::Entry {
  std::string first;
  Value second;
};

Value* Value::find(std::string_view key) {
  for (auto& [k, v] : map)
    if (k == key) return &v;
  return nullptr;
}

Value& Value::child(const std::string& key, const std::string& origin_if_new) {
  if (kind != Map) {
    kind = Map;
    map.clear();
  }
  if (Value* v = find(key)) return *v;
  map.push_back(Entry{key, Value{Null, "", {}, {}, origin_if_new}});
  return map.back().second;
}

// Deeper nesting is no configuration; and an alias that refers to itself
// (`a: &x {b: *x}`) would otherwise recurse until the stack overflows.
constexpr int kMaxDepth = 32;

Value from_yaml(const YAML::Node& n, const std::string& file, int depth = 0) {
  if (depth > kMaxDepth)
    throw YAML::Exception(
        n.Mark(), "nested deeper than " + std::to_string(kMaxDepth) + " levels (an alias that refers to itself?)");
  Value v;
  v.origin = file + ":" + std::to_string(n.Mark().line + 1);
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      v.kind = Value::Scalar;
      v.scalar = n.Scalar();
      // YAML is Unicode text; bytes that are not UTF-8 could not be shown
      // back faithfully by check-config (found by the config fuzz target).
      if (!valid_utf8(v.scalar)) throw YAML::Exception(n.Mark(), "not UTF-8 text");
      break;
    case YAML::NodeType::Sequence:
      v.kind = Value::List;
      for (const auto& e : n) v.list.push_back(from_yaml(e, file, depth + 1));
      break;
    case YAML::NodeType::Map:
      v.kind = Value::Map;
      for (const auto& e : n) {
        Value key = from_yaml(e.first, file, depth + 1);
        v.map.push_back(Value::Entry{key.scalar, from_yaml(e.second, file, depth + 1)});
      }
      break;
    default:
      v.kind = Value::Null;
  }
  return v;
}

class Parser;
using Setter = std::function<void(Parser&, const Value&, const std::string& path)>;

struct Key {
  std::string path;   // dotted
  bool list = false;  // the environment form is comma-separated
  Setter set;
};

class Parser {
 public:
  Errors errors;

  void err(const Value& v, const std::string& path, const std::string& what) {
    errors.push_back(v.origin + ": " + path + ": " + what);
  }
  bool scalar(const Value& v, const std::string& path, std::string_view expected) {
    if (v.kind == Value::Scalar) return true;
    err(v, path, "expected " + std::string(expected));
    return false;
  }
  void str(const Value& v, const std::string& path, std::string& out) {
    if (v.kind == Value::Null) {
      out.clear();
      return;
    }
    if (scalar(v, path, "a string")) out = v.scalar;
  }
  void size(const Value& v, const std::string& path, std::uint64_t& out) {
    if (!scalar(v, path, "a size like 35MiB")) return;
    auto s = parse_size(v.scalar);
    if (!s) return err(v, path, "expected a size like 35MiB (units B, KiB, MiB, GiB, TiB), got '" + v.scalar + "'");
    out = *s;
  }
  void duration(const Value& v, const std::string& path, Millis& out) {
    if (!scalar(v, path, "a duration like 30s")) return;
    auto d = parse_duration(v.scalar);
    if (!d) return err(v, path, "expected a duration like 30s (units ms, s, m, h, d), got '" + v.scalar + "'");
    out = *d;
  }
  void count(const Value& v, const std::string& path, std::uint64_t& out, std::uint64_t min = 1,
             std::uint64_t max = UINT64_MAX) {
    if (!scalar(v, path, "a whole number")) return;
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.scalar.data(), v.scalar.data() + v.scalar.size(), n);
    if (v.scalar.empty() || ec != std::errc() || p != v.scalar.data() + v.scalar.size() || n < min || n > max) {
      std::string range = max == UINT64_MAX ? ">= " + std::to_string(min)
                                            : "from " + std::to_string(min) + " to " + std::to_string(max);
      return err(v, path, "expected a whole number " + range + ", got '" + v.scalar + "'");
    }
    out = n;
  }
  void number(const Value& v, const std::string& path, double& out, double lo, double hi) {
    if (!scalar(v, path, "a number")) return;
    try {
      size_t used = 0;
      double d = std::stod(v.scalar, &used);
      if (used == v.scalar.size() && d >= lo && d <= hi) {
        out = d;
        return;
      }
    } catch (...) {
    }
    err(v, path, "expected a number from " + fmt(lo) + " to " + fmt(hi) + ", got '" + v.scalar + "'");
  }
  void boolean(const Value& v, const std::string& path, bool& out) {
    if (!scalar(v, path, "true or false")) return;
    std::string s = lower(v.scalar);
    if (s == "true" || s == "yes" || s == "on" || s == "1")
      out = true;
    else if (s == "false" || s == "no" || s == "off" || s == "0")
      out = false;
    else
      err(v, path, "expected true or false, got '" + v.scalar + "'");
  }
  std::vector<const Value*> items(const Value& v, const std::string& path) {
    std::vector<const Value*> out;
    if (v.kind == Value::Null) return out;
    if (v.kind != Value::List) {
      err(v, path, "expected a list");
      return out;
    }
    for (const auto& e : v.list) {
      if (e.kind != Value::Scalar)
        err(e, path, "expected a list of strings");
      else
        out.push_back(&e);
    }
    return out;
  }
  template <class E>
  void choice(const Value& v, const std::string& path, E& out, std::initializer_list<std::pair<const char*, E>> opts) {
    if (!scalar(v, path, "a word")) return;
    std::string all;
    for (auto& [name, val] : opts) {
      if (iequals(v.scalar, name)) {
        out = val;
        return;
      }
      all += all.empty() ? name : std::string(", ") + name;
    }
    err(v, path, "expected one of " + all + ", got '" + v.scalar + "'");
  }

 private:
  static std::string fmt(double d) {
    std::string s = std::to_string(d);
    while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) s.pop_back();
    return s;
  }
};

bool has_ctl(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return true;
  return false;
}

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

std::vector<Key> top_keys(Config& c) {
  std::vector<Key> k;
  auto add = [&](std::string path, Setter s, bool list = false) { k.push_back({std::move(path), list, std::move(s)}); };
  add("hostname", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, c.hostname); });
  add(
      "listen",
      [&](Parser& p, const Value& v, const std::string& path) {
        c.listen.clear();
        for (const Value* e : p.items(v, path)) {
          if (auto a = parse_listen_address(e->scalar, true))
            c.listen.push_back(*a);
          else
            p.err(*e, path, "expected host:port, [v6]:port or unix:/path with an IP address, got '" + e->scalar + "'");
        }
      },
      true);
  add("submission_socket",
      [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, c.submission_socket); });
  add("unix_socket_mode", [&](Parser& p, const Value& v, const std::string& path) {
    if (!p.scalar(v, path, "an octal mode like \"0660\"")) return;
    const std::string& s = v.scalar;
    unsigned m = 0;
    bool ok = s.size() >= 3 && s.size() <= 4;
    for (char ch : s) ok = ok && ch >= '0' && ch <= '7';
    if (ok) m = static_cast<unsigned>(std::stoul(s, nullptr, 8));
    if (!ok || m > 0777) return p.err(v, path, "expected an octal mode like \"0660\", got '" + s + "'");
    c.unix_socket_mode = m;
  });
  auto networks = [](Parser& p, const Value& v, const std::string& path, std::vector<Cidr>& out) {
    out.clear();
    for (const Value* e : p.items(v, path)) {
      auto n = Cidr::parse(trim(e->scalar));
      if (!n)
        p.err(*e, path, "expected an address or network like 192.168.1.0/24 or ::1/128, got '" + e->scalar + "'");
      else
        out.push_back(*n);
    }
  };
  add(
      "allow_networks",
      [&, networks](Parser& p, const Value& v, const std::string& path) { networks(p, v, path, c.allow_networks); },
      true);
  add("bare_newlines", [&](Parser& p, const Value& v, const std::string& path) {
    p.choice(v, path, c.bare_newlines, {{"normalize", BareNewlines::Normalize}, {"reject", BareNewlines::Reject}});
  });
  add("shutdown_timeout",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.shutdown_timeout); });
  add("spool.dir", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, c.spool.dir); });
  add("spool.max_bytes",
      [&](Parser& p, const Value& v, const std::string& path) { p.size(v, path, c.spool.max_bytes); });
  add("spool.max_messages",
      [&](Parser& p, const Value& v, const std::string& path) { p.count(v, path, c.spool.max_messages); });
  add("spool.min_free_disk",
      [&](Parser& p, const Value& v, const std::string& path) { p.size(v, path, c.spool.min_free_disk); });
  add("limits.max_message_size",
      [&](Parser& p, const Value& v, const std::string& path) { p.size(v, path, c.limits.max_message_size); });
  add("limits.max_recipients",
      [&](Parser& p, const Value& v, const std::string& path) {
        // Postfix's smtpd_recipient_limit is 1000; a device never needs more.
        p.count(v, path, c.limits.max_recipients, 1, kMaxRecipientsLimit);
      });
  add("limits.max_connections",
      [&](Parser& p, const Value& v, const std::string& path) { p.count(v, path, c.limits.max_connections); });
  add("limits.max_connections_per_client", [&](Parser& p, const Value& v, const std::string& path) {
    p.count(v, path, c.limits.max_connections_per_client);
  });
  add("limits.idle_timeout",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.limits.idle_timeout); });
  add("limits.data_timeout",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.limits.data_timeout); });
  add("limits.greeting_delay",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.limits.greeting_delay); });
  add("limits.max_bad_commands",
      [&](Parser& p, const Value& v, const std::string& path) { p.count(v, path, c.limits.max_bad_commands); });
  add("headers.add_missing",
      [&](Parser& p, const Value& v, const std::string& path) { p.boolean(v, path, c.headers.add_missing); });
  add("headers.rewrite_from",
      [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, c.headers.rewrite_from); });
  add("delivery.max_connections",
      [&](Parser& p, const Value& v, const std::string& path) { p.count(v, path, c.delivery.max_connections); });
  add("delivery.messages_per_connection", [&](Parser& p, const Value& v, const std::string& path) {
    p.count(v, path, c.delivery.messages_per_connection);
  });
  add("delivery.idle_hold",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.delivery.idle_hold); });
  add("delivery.retry.first",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.delivery.retry.first); });
  add("delivery.retry.max",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.delivery.retry.max); });
  add("delivery.retry.factor",
      [&](Parser& p, const Value& v, const std::string& path) { p.number(v, path, c.delivery.retry.factor, 1, 100); });
  add("delivery.retry.jitter",
      [&](Parser& p, const Value& v, const std::string& path) { p.number(v, path, c.delivery.retry.jitter, 0, 1); });
  add("delivery.max_lifetime",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.delivery.max_lifetime); });
  add("delivery.bounce",
      [&](Parser& p, const Value& v, const std::string& path) { p.boolean(v, path, c.delivery.bounce); });
  auto& t = c.delivery.timeouts;
  for (auto [name, field] : {std::pair{"connect", &t.connect},
                             {"greeting", &t.greeting},
                             {"mail", &t.mail},
                             {"rcpt", &t.rcpt},
                             {"data", &t.data},
                             {"block", &t.block},
                             {"done", &t.done}}) {
    Millis* f = field;
    add(std::string("delivery.timeouts.") + name,
        [f](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, *f); });
  }
  add("metrics.listen", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, c.metrics.listen); });
  add(
      "metrics.allow_networks",
      [&, networks](Parser& p, const Value& v, const std::string& path) {
        networks(p, v, path, c.metrics.allow_networks);
        c.metrics.allow_networks_explicit = true;
      },
      true);
  add("metrics.unreachable_after",
      [&](Parser& p, const Value& v, const std::string& path) { p.duration(v, path, c.metrics.unreachable_after); });
  add("log.level", [&](Parser& p, const Value& v, const std::string& path) {
    p.choice(v, path, c.log.level,
             {{"debug", std::string("debug")},
              {"info", std::string("info")},
              {"warn", std::string("warn")},
              {"error", std::string("error")}});
  });
  add("log.format", [&](Parser& p, const Value& v, const std::string& path) {
    p.choice(v, path, c.log.format, {{"text", std::string("text")}, {"json", std::string("json")}});
  });
  return k;
}

std::vector<Key> upstream_keys(Upstream& u) {
  std::vector<Key> k;
  auto add = [&](std::string path, Setter s, bool list = false) { k.push_back({std::move(path), list, std::move(s)}); };
  add("url", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.url); });
  add("username", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.username); });
  add("password_file", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.password_file); });
  add("password_env", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.password_env); });
  add("auth", [&](Parser& p, const Value& v, const std::string& path) {
    p.choice(v, path, u.auth,
             {{"auto", AuthMode::Auto},
              {"plain", AuthMode::Plain},
              {"login", AuthMode::Login},
              {"xoauth2", AuthMode::XOAuth2}});
  });
  add("ca_file", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.ca_file); });
  add(
      "pins",
      [&](Parser& p, const Value& v, const std::string& path) {
        u.pins.clear();
        for (const Value* e : p.items(v, path)) {
          std::string_view s = trim(e->scalar);
          if (s.starts_with("sha256/")) s.remove_prefix(7);
          bool ok = s.size() == 44 && s.back() == '=';
          for (char ch : s.substr(0, 43))
            ok = ok && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
                        ch == '/');
          if (!ok)
            p.err(*e, path,
                  "expected a base64 SHA-256 of a SubjectPublicKeyInfo (44 characters), got '" + e->scalar + "'");
          else
            u.pins.emplace_back(s);
        }
      },
      true);
  add("client_cert", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.client_cert); });
  add("client_key", [&](Parser& p, const Value& v, const std::string& path) { p.str(v, path, u.client_key); });
  add("insecure_plaintext",
      [&](Parser& p, const Value& v, const std::string& path) { p.boolean(v, path, u.insecure_plaintext); });
  return k;
}

std::string env_name(const std::string& path) {
  std::string n = "SPOOLGATE_";
  for (char ch : path) n += ch == '.' ? '_' : static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  return n;
}

Value env_value(const std::string& name, const std::string& text, bool list) {
  Value v;
  v.origin = "$" + name;
  if (!list) {
    v.kind = Value::Scalar;
    v.scalar = text;
    return v;
  }
  v.kind = Value::List;
  for (std::string_view part : split(text, ',')) {
    part = trim(part);
    if (part.empty()) continue;
    v.list.push_back(Value{Value::Scalar, std::string(part), {}, {}, v.origin});
  }
  return v;
}

// Walks a map against the keys under `prefix`; recurses into sub-maps.
void walk(Parser& p, const Value& map, const std::string& prefix, const std::vector<Key>& keys,
          const std::function<bool(const std::string&, const Value&)>& special) {
  if (map.kind == Value::Null) return;
  if (map.kind != Value::Map) {
    p.err(map, prefix.empty() ? "(top level)" : prefix, "expected a mapping of keys");
    return;
  }
  for (const auto& [k, v] : map.map) {
    std::string path = prefix.empty() ? k : prefix + ".";
    if (!prefix.empty()) path += k;
    if (special && special(path, v)) continue;
    const Key* leaf = nullptr;
    bool branch = false;
    for (const auto& key : keys) {
      if (key.path == path)
        leaf = &key;
      else if (key.path.starts_with(path + "."))
        branch = true;
    }
    if (leaf) {
      leaf->set(p, v, path);
    } else if (branch) {
      walk(p, v, path, keys, special);
    } else {
      std::set<std::string> here;
      for (const auto& key : keys) {
        if (!prefix.empty() && !key.path.starts_with(prefix + ".")) continue;
        std::string rest = prefix.empty() ? key.path : key.path.substr(prefix.size() + 1);
        here.insert(rest.substr(0, rest.find('.')));
      }
      if (prefix.empty()) here.insert("upstreams");
      std::string all;
      for (const auto& h : here) all += (all.empty() ? "" : ", ") + h;
      p.err(v, path, "unknown key (expected one of: " + all + ")");
    }
  }
}

void parse_url(Parser& p, const Value& where, const std::string& path, Upstream& u) {
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
  } else
    return bad("unknown scheme (expected smtps, smtp+starttls or smtp)");
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

void validate(Parser& p, Config& c, const Value& root) {
  auto where = [&](const std::string& key) -> Value {
    Value v;
    v.origin = c.source.empty() ? "(defaults)" : c.source;
    Value* cur = const_cast<Value*>(&root);
    for (std::string_view part : split(key, '.')) {
      Value* nxt = cur && cur->kind == Value::Map ? cur->find(part) : nullptr;
      if (!nxt) break;
      cur = nxt;
      v.origin = cur->origin;
    }
    return v;
  };
  if (c.hostname.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) c.hostname = buf;
    if (c.hostname.empty()) c.hostname = "localhost";
  }
  for (char ch : c.hostname)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
          ch == '_')) {
      p.err(where("hostname"), "hostname",
            "expected a host name (letters, digits, '.', '-'), got '" + c.hostname + "'");
      break;
    }
  if (c.listen.empty()) p.err(where("listen"), "listen", "expected at least one address");
  if (!c.submission_socket.empty() && c.submission_socket.front() != '/')
    p.err(where("submission_socket"), "submission_socket",
          "expected an absolute path, got '" + c.submission_socket + "'");
  bool explicit_allow =
      root.kind == Value::Map && root.map.end() != std::find_if(root.map.begin(), root.map.end(),
                                                                [](auto& kv) { return kv.first == "allow_networks"; });
  c.allow_networks_explicit = explicit_allow;
  for (const auto& l : c.listen) {
    if (l.unix_socket) continue;
    auto ip = IpAddress::parse(l.host);
    if (ip && !ip->loopback() && !explicit_allow)
      p.err(where("listen"), "listen",
            "'" + l.text +
                "' is not a loopback address; set allow_networks explicitly to say which clients may "
                "relay through it (spoolgate never becomes an open relay by default)");
  }
  if (c.delivery.idle_hold > Millis(300'000))
    p.err(where("delivery.idle_hold"), "delivery.idle_hold",
          "expected at most 5m (servers close idle sessions after 5 minutes, RFC 5321 4.5.3.2.7)");
  if (c.spool.dir.empty()) p.err(where("spool.dir"), "spool.dir", "expected a directory");
  if (c.limits.max_message_size < 1024)
    p.err(where("limits.max_message_size"), "limits.max_message_size", "expected at least 1KiB");
  if (!c.headers.rewrite_from.empty()) {
    std::string_view r = c.headers.rewrite_from;
    size_t at = r.find('@');
    if (at == 0 || at == std::string_view::npos || at + 1 == r.size() ||
        r.find_first_of(" <>\"\r\n\t,;") != std::string_view::npos)
      p.err(where("headers.rewrite_from"), "headers.rewrite_from",
            "expected a plain mailbox like alerts@example.com, got '" + c.headers.rewrite_from + "'");
  }
  if (c.delivery.retry.max < c.delivery.retry.first)
    p.err(where("delivery.retry.max"), "delivery.retry.max", "must not be shorter than delivery.retry.first");
  if (!c.metrics.listen.empty()) {
    if (auto a = parse_listen_address(c.metrics.listen, false)) {
      c.metrics.address = *a;
      // The queue's figures and upstream names are nobody else's business.
      auto ip = IpAddress::parse(a->host);
      if (ip && !ip->loopback() && !c.metrics.allow_networks_explicit)
        p.err(where("metrics.listen"), "metrics.listen",
              "'" + c.metrics.listen +
                  "' is not a loopback address; set metrics.allow_networks explicitly to say who may scrape it");
    } else {
      p.err(where("metrics.listen"), "metrics.listen",
            "expected host:port or [v6]:port with an IP address, got '" + c.metrics.listen + "'");
    }
  }
  const Value* ups = root.kind == Value::Map ? const_cast<Value&>(root).find("upstreams") : nullptr;
  for (size_t i = 0; i < c.upstreams.size(); ++i) {
    Upstream& u = c.upstreams[i];
    std::string path = "upstreams[" + std::to_string(i) + "]";
    Value at = ups && i < ups->list.size() ? ups->list[i] : where("upstreams");
    if (u.url.empty()) {
      p.err(at, path + ".url", "expected a URL like smtps://smtp.example.com:465");
      continue;
    }
    parse_url(p, at, path, u);
    // Also a %01 the URL decoded into the username: a control character
    // in a credential would split the XOAUTH2 string (0x01 separates it).
    if (has_control(u.username)) p.err(at, path + ".username", "must not contain control characters");
    for (auto [name, val] : {std::pair{"password_file", &u.password_file},
                             {"password_env", &u.password_env},
                             {"ca_file", &u.ca_file}})
      if (has_ctl(*val)) p.err(at, path + "." + name, "must not contain CR, LF or NUL");
    if (!u.password_file.empty() && !u.password_env.empty())
      p.err(at, path, "set password_file or password_env, not both");
    if (u.client_cert.empty() != u.client_key.empty()) p.err(at, path, "client_cert and client_key go together");
  }
}

tl::expected<Config, Errors> parse_root(Value root, const std::string& source, const Env& env) {
  Config c;
  c.source = source;
  c.listen.push_back({false, "127.0.0.1", 2525, "", "127.0.0.1:2525"});
  c.allow_networks = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
  Parser p;
  if (root.kind == Value::Null) {
    root.kind = Value::Map;
    root.origin = source.empty() ? "(defaults)" : source;
  }
  // Environment overlay: every known leaf can be set by its variable.
  std::set<std::string> used;
  Upstream scratch;
  std::vector<Key> tops = top_keys(c);
  if (root.kind == Value::Map) {
    for (const auto& k : tops) {
      std::string name = env_name(k.path);
      auto it = env.find(name);
      if (it == env.end()) continue;
      used.insert(name);
      Value* cur = &root;
      for (std::string_view part : split(k.path, '.')) cur = &cur->child(std::string(part), "$" + name);
      *cur = env_value(name, it->second, k.list);
    }
    std::vector<std::pair<std::string, std::string>> up_env;  // (key, variable)
    for (const auto& k : upstream_keys(scratch)) up_env.emplace_back(k.path, env_name("upstream." + k.path));
    up_env.emplace_back("username", "SPOOLGATE_USERNAME");
    up_env.emplace_back("password_file", "SPOOLGATE_PASSWORD_FILE");
    up_env.emplace_back("password_env", "SPOOLGATE_PASSWORD_ENV");
    for (const auto& [key, name] : up_env) {
      auto it = env.find(name);
      if (it == env.end()) continue;
      used.insert(name);
      Value& list = root.child("upstreams", "$" + name);
      if (list.kind != Value::List) {
        list.kind = Value::List;
        list.origin = "$" + name;
      }
      if (list.list.empty()) list.list.push_back(Value{Value::Map, "", {}, {}, "$" + name});
      bool is_list = key == "pins";
      list.list[0].child(key, "$" + name) = env_value(name, it->second, is_list);
    }
  }
  // Unknown SPOOLGATE_* variables are reported, not fatal: Kubernetes injects
  // SPOOLGATE_PORT, SPOOLGATE_SERVICE_HOST, ... for a Service of that name.
  for (const auto& [name, value] : env) {
    if (name.starts_with("SPOOLGATE_") && !used.count(name) && name != "SPOOLGATE_CONFIG")
      c.ignored_env.push_back(name);
  }
  walk(p, root, "", tops, [&](const std::string& path, const Value& v) {
    if (path != "upstreams") return false;
    c.upstreams.clear();
    if (v.kind == Value::Null) return true;
    if (v.kind != Value::List) {
      p.err(v, path, "expected a list of upstreams");
      return true;
    }
    for (size_t i = 0; i < v.list.size(); ++i) {
      Upstream u;
      walk(
          p, v.list[i], "upstreams[" + std::to_string(i) + "]",
          [&] {
            auto keys = upstream_keys(u);
            for (auto& k : keys) k.path = "upstreams[" + std::to_string(i) + "]." + k.path;
            return keys;
          }(),
          nullptr);
      c.upstreams.push_back(std::move(u));
    }
    return true;
  });
  validate(p, c, root);
  if (!p.errors.empty()) return tl::unexpected(std::move(p.errors));
  return c;
}

}  // namespace

Env process_env() {
  Env e;
  for (char** p = environ; p && *p; ++p) {
    std::string_view kv = *p;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    e.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return e;
}

tl::expected<Config, Errors> load_text(const std::string& yaml, const std::string& name, const Env& env) {
  Value root;
  try {
    YAML::Node n = YAML::Load(yaml);
    root = from_yaml(n, name);
  } catch (const YAML::Exception& e) {
    return tl::unexpected(Errors{name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg});
  }
  return parse_root(std::move(root), name, env);
}

tl::expected<Config, Errors> load(const std::string& path, const Env& env) {
  if (path.empty()) return parse_root(Value{}, "", env);
  Value root;
  try {
    YAML::Node n = YAML::LoadFile(path);
    root = from_yaml(n, path);
  } catch (const YAML::BadFile&) {
    return tl::unexpected(Errors{path + ": cannot read the configuration file"});
  } catch (const YAML::Exception& e) {
    return tl::unexpected(Errors{path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg});
  }
  return parse_root(std::move(root), path, env);
}

std::string_view to_string(Scheme s) {
  switch (s) {
    case Scheme::Smtps:
      return "smtps";
    case Scheme::StartTls:
      return "smtp+starttls";
    case Scheme::Plain:
      return "smtp";
  }
  return "?";
}

std::string_view to_string(AuthMode a) {
  switch (a) {
    case AuthMode::Auto:
      return "auto";
    case AuthMode::Plain:
      return "plain";
    case AuthMode::Login:
      return "login";
    case AuthMode::XOAuth2:
      return "xoauth2";
  }
  return "?";
}

std::string dump(const Config& c) {
  auto q = [](const std::string& s) { return json_quote(s); };  // JSON strings are valid YAML scalars
  auto list = [&](const std::vector<std::string>& v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + q(v[i]);
    return o + "]";
  };
  auto b = [](bool x) { return std::string(x ? "true" : "false"); };
  auto d = [](Millis m) { return format_duration(m); };
  std::vector<std::string> listen, nets;
  for (const auto& l : c.listen) listen.push_back(l.text);
  for (const auto& n : c.allow_networks) nets.push_back(n.str());
  std::string o;
  o += "# effective configuration" + (c.source.empty() ? std::string(" (no file)") : " from " + c.source) + "\n";
  o += "hostname: " + q(c.hostname) + "\n";
  o += "listen: " + list(listen) + "\n";
  o += "allow_networks: " + list(nets) + "\n";
  char mode[8];
  (void)std::snprintf(mode, sizeof mode, "%04o", c.unix_socket_mode);
  o += std::string("unix_socket_mode: \"") + mode + "\"\n";
  o += "submission_socket: " + q(c.submission_socket) + "\n";
  o += std::string("bare_newlines: ") + (c.bare_newlines == BareNewlines::Reject ? "reject" : "normalize") + "\n";
  o += "shutdown_timeout: " + d(c.shutdown_timeout) + "\n";
  o += "spool:\n  dir: " + q(c.spool.dir) + "\n  max_bytes: " + format_size(c.spool.max_bytes) +
       "\n  max_messages: " + std::to_string(c.spool.max_messages) +
       "\n  min_free_disk: " + format_size(c.spool.min_free_disk) + "\n";
  o += "limits:\n  max_message_size: " + format_size(c.limits.max_message_size) +
       "\n  max_recipients: " + std::to_string(c.limits.max_recipients) +
       "\n  max_connections: " + std::to_string(c.limits.max_connections) +
       "\n  max_connections_per_client: " + std::to_string(c.limits.max_connections_per_client) +
       "\n  idle_timeout: " + d(c.limits.idle_timeout) + "\n  data_timeout: " + d(c.limits.data_timeout) +
       "\n  greeting_delay: " + d(c.limits.greeting_delay) +
       "\n  max_bad_commands: " + std::to_string(c.limits.max_bad_commands) + "\n";
  o += "headers:\n  add_missing: " + b(c.headers.add_missing) + "\n  rewrite_from: " + q(c.headers.rewrite_from) + "\n";
  if (c.upstreams.empty())
    o += "upstreams: []   # store-only: mail is queued, nothing is delivered\n";
  else
    o += "upstreams:\n";
  for (const auto& u : c.upstreams) {
    o += "  - url: " + q(u.url) + "\n    username: " + q(u.username) + "\n    password_file: " + q(u.password_file) +
         "\n    password_env: " + q(u.password_env) + "\n    auth: " + std::string(to_string(u.auth)) +
         "\n    ca_file: " + q(u.ca_file) + "\n    pins: " + list(u.pins) + "\n    client_cert: " + q(u.client_cert) +
         "\n    client_key: " + q(u.client_key) + "\n    insecure_plaintext: " + b(u.insecure_plaintext) + "\n";
  }
  const auto& dl = c.delivery;
  char fac[32], jit[32];
  (void)snprintf(fac, sizeof fac, "%g", dl.retry.factor);
  (void)snprintf(jit, sizeof jit, "%g", dl.retry.jitter);
  o += "delivery:\n  max_connections: " + std::to_string(dl.max_connections) +
       "\n  messages_per_connection: " + std::to_string(dl.messages_per_connection) +
       "\n  idle_hold: " + d(dl.idle_hold) + "\n  retry: {first: " + d(dl.retry.first) + ", max: " + d(dl.retry.max) +
       ", factor: " + fac + ", jitter: " + jit + "}" + "\n  max_lifetime: " + d(dl.max_lifetime) +
       "\n  bounce: " + b(dl.bounce) + "\n  timeouts: {connect: " + d(dl.timeouts.connect) +
       ", greeting: " + d(dl.timeouts.greeting) + ", mail: " + d(dl.timeouts.mail) + ", rcpt: " + d(dl.timeouts.rcpt) +
       ", data: " + d(dl.timeouts.data) + ", block: " + d(dl.timeouts.block) + ", done: " + d(dl.timeouts.done) + "}\n";
  std::vector<std::string> metric_nets;
  for (const auto& n : c.metrics.allow_networks) metric_nets.push_back(n.str());
  o += "metrics:\n  listen: " + q(c.metrics.listen) + "\n  allow_networks: " + list(metric_nets) +
       "\n  unreachable_after: " + d(c.metrics.unreachable_after) + "\n";
  o += "log:\n  level: " + c.log.level + "\n  format: " + c.log.format + "\n";
  for (const auto& name : c.ignored_env) o += "# ignored: $" + name + " is not a configuration variable\n";
  return o;
}

}  // namespace spoolgate::config
