// SPDX-License-Identifier: MIT
#include "config/schema.h"

#include <charconv>
#include <set>

#include "core/text.h"

namespace spoolgate::config {
namespace {

std::string fmt(double d) {
  std::string s = std::to_string(d);
  while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) s.pop_back();
  return s;
}

std::string shortest(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::general);
  return ec == std::errc() ? std::string(buf, end) : fmt(d);
}

}  // namespace

bool Parser::scalar(const Value& v, const std::string& path, std::string_view expected) {
  if (v.kind == Value::Scalar) return true;
  err(v, path, "expected " + std::string(expected));
  return false;
}

void Parser::str(const Value& v, const std::string& path, std::string& out) {
  if (v.kind == Value::Null) {
    out.clear();
    return;
  }
  if (scalar(v, path, "a string")) out = v.scalar;
}

void Parser::size(const Value& v, const std::string& path, std::uint64_t& out) {
  if (!scalar(v, path, "a size like 35MiB")) return;
  auto s = parse_size(v.scalar);
  if (!s) return err(v, path, "expected a size like 35MiB (units B, KiB, MiB, GiB, TiB), got '" + v.scalar + "'");
  out = *s;
}

void Parser::duration(const Value& v, const std::string& path, Millis& out) {
  if (!scalar(v, path, "a duration like 30s")) return;
  auto d = parse_duration(v.scalar);
  if (!d) return err(v, path, "expected a duration like 30s (units ms, s, m, h, d), got '" + v.scalar + "'");
  out = *d;
}

void Parser::count(const Value& v, const std::string& path, std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
  if (!scalar(v, path, "a whole number")) return;
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.scalar.data(), v.scalar.data() + v.scalar.size(), n);
  if (v.scalar.empty() || ec != std::errc() || p != v.scalar.data() + v.scalar.size() || n < min || n > max) {
    std::string range =
        max == UINT64_MAX ? ">= " + std::to_string(min) : "from " + std::to_string(min) + " to " + std::to_string(max);
    return err(v, path, "expected a whole number " + range + ", got '" + v.scalar + "'");
  }
  out = n;
}

void Parser::number(const Value& v, const std::string& path, double& out, double lo, double hi) {
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

void Parser::boolean(const Value& v, const std::string& path, bool& out) {
  if (!scalar(v, path, "true or false")) return;
  std::string s = lower(v.scalar);
  if (s == "true" || s == "yes" || s == "on" || s == "1")
    out = true;
  else if (s == "false" || s == "no" || s == "off" || s == "0")
    out = false;
  else
    err(v, path, "expected true or false, got '" + v.scalar + "'");
}

std::vector<const Value*> Parser::items(const Value& v, const std::string& path) {
  std::vector<const Value*> out;
  if (v.kind == Value::Null) return out;
  if (v.kind == Value::Scalar) {  // one item needs no brackets
    out.push_back(&v);
    return out;
  }
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

int Parser::word(const Value& v, const std::string& path, const std::vector<std::string_view>& names) {
  if (!scalar(v, path, "a word")) return -1;
  std::string all;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (iequals(v.scalar, names[i])) return static_cast<int>(i);
    all += (all.empty() ? "" : ", ") + std::string(names[i]);
  }
  err(v, path, "expected one of " + all + ", got '" + v.scalar + "'");
  return -1;
}

std::string quoted(const std::string& s) { return json_quote(s); }  // JSON strings are valid YAML scalars

std::string quoted_list(const std::vector<std::string>& v) {
  std::string o = "[";
  for (std::size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + quoted(v[i]);
  return o + "]";
}

Field custom(std::string path, bool list, Setter set, std::function<std::string()> show) {
  return Field{std::move(path), list, std::move(set), std::move(show)};
}

Field text(std::string path, std::string& out) {
  return custom(
      std::move(path), false, [&out](Parser& p, const Value& v, const std::string& at) { p.str(v, at, out); },
      [&out] { return quoted(out); });
}

Field size(std::string path, std::uint64_t& out) {
  return custom(
      std::move(path), false, [&out](Parser& p, const Value& v, const std::string& at) { p.size(v, at, out); },
      [&out] { return format_size(out); });
}

Field duration(std::string path, Millis& out) {
  return custom(
      std::move(path), false, [&out](Parser& p, const Value& v, const std::string& at) { p.duration(v, at, out); },
      [&out] { return format_duration(out); });
}

Field count(std::string path, std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
  return custom(
      std::move(path), false,
      [&out, min, max](Parser& p, const Value& v, const std::string& at) { p.count(v, at, out, min, max); },
      [&out] { return std::to_string(out); });
}

Field number(std::string path, double& out, double lo, double hi) {
  return custom(
      std::move(path), false,
      [&out, lo, hi](Parser& p, const Value& v, const std::string& at) { p.number(v, at, out, lo, hi); },
      [&out] { return shortest(out); });
}

Field boolean(std::string path, bool& out) {
  return custom(
      std::move(path), false, [&out](Parser& p, const Value& v, const std::string& at) { p.boolean(v, at, out); },
      [&out] { return std::string(out ? "true" : "false"); });
}

Field networks(std::string path, std::vector<Cidr>& out, bool* explicit_set) {
  return custom(
      std::move(path), true,
      [&out, explicit_set](Parser& p, const Value& v, const std::string& at) {
        out.clear();
        for (const Value* e : p.items(v, at)) {
          auto n = Cidr::parse(trim(e->scalar));
          if (!n)
            p.err(*e, at, "expected an address or network like 192.168.1.0/24 or ::1/128, got '" + e->scalar + "'");
          else
            out.push_back(*n);
        }
        if (explicit_set) *explicit_set = true;
      },
      [&out] {
        std::vector<std::string> s;
        s.reserve(out.size());
        for (const auto& n : out) s.push_back(n.str());
        return quoted_list(s);
      });
}

Field strings(std::string path, std::vector<std::string>& out) {
  return custom(
      std::move(path), true,
      [&out](Parser& p, const Value& v, const std::string& at) {
        out.clear();
        for (const Value* e : p.items(v, at)) {
          std::string_view s = trim(e->scalar);
          if (s.empty())
            p.err(*e, at, "expected a value, got an empty one");
          else
            out.emplace_back(s);
        }
      },
      [&out] { return quoted_list(out); });
}

void walk(Parser& p, const Value& map, const std::string& prefix, const Table& keys,
          const std::function<bool(const std::string&, const Value&)>& special, const std::vector<std::string>& extra) {
  if (map.kind == Value::Null) return;
  if (map.kind != Value::Map) {
    p.err(map, prefix.empty() ? "(top level)" : prefix, "expected a mapping of keys");
    return;
  }
  for (const auto& [k, v] : map.map) {
    std::string path = prefix.empty() ? k : prefix + ".";
    if (!prefix.empty()) path += k;
    if (special && special(path, v)) continue;
    const Field* leaf = nullptr;
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
      walk(p, v, path, keys, special, extra);
    } else {
      std::set<std::string> here;
      for (const auto& key : keys) {
        if (!prefix.empty() && !key.path.starts_with(prefix + ".")) continue;
        std::string rest = prefix.empty() ? key.path : key.path.substr(prefix.size() + 1);
        here.insert(rest.substr(0, rest.find('.')));
      }
      if (prefix.empty()) here.insert(extra.begin(), extra.end());
      std::string all;
      for (const auto& h : here) all += (all.empty() ? "" : ", ") + h;
      p.err(v, path, "unknown key (expected one of: " + all + ")");
    }
  }
}

std::string render(const Table& t, const std::vector<std::string>& flow, int indent) {
  std::string out;
  std::vector<std::string> open;  // the groups open now, outermost first (their full paths)
  auto pad = [indent](std::size_t level) { return std::string(static_cast<std::size_t>(indent) + 2 * level, ' '); };
  std::size_t i = 0;
  while (i < t.size()) {
    const std::string& path = t[i].path;
    std::string group_of_flow;
    for (const auto& g : flow)
      if (path.starts_with(g + ".")) group_of_flow = g;
    // The groups this key sits in (a flow group is shown as a leaf).
    std::string holder = group_of_flow.empty() ? path : group_of_flow;
    std::vector<std::string> groups;
    for (std::size_t dot = holder.find('.'); dot != std::string::npos; dot = holder.find('.', dot + 1))
      groups.push_back(holder.substr(0, dot));
    std::size_t common = 0;
    while (common < open.size() && common < groups.size() && open[common] == groups[common]) ++common;
    open.resize(common);
    for (std::size_t g = common; g < groups.size(); ++g) {
      std::size_t from = g == 0 ? 0 : groups[g - 1].size() + 1;
      out += pad(g) + groups[g].substr(from) + ":\n";
      open.push_back(groups[g]);
    }
    std::string name = holder.substr(groups.empty() ? 0 : groups.back().size() + 1);
    if (group_of_flow.empty()) {
      out += pad(groups.size()) + name + ": " + t[i].show() + "\n";
      ++i;
      continue;
    }
    std::string items;
    for (; i < t.size() && t[i].path.starts_with(group_of_flow + "."); ++i)
      items += (items.empty() ? "" : ", ") + t[i].path.substr(group_of_flow.size() + 1) + ": " + t[i].show();
    out.append(pad(groups.size())).append(name).append(": {").append(items).append("}\n");
  }
  return out;
}

}  // namespace spoolgate::config
