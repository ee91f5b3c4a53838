// SPDX-License-Identifier: MIT
// config/schema: keys as a table. Each key of the file is one Field: its
// dotted path, how a value is read into the Config (with an error naming
// the origin, the key and what was expected) and how the current value is
// shown. One table per section (config/section_*.cc) drives parsing, the
// environment overlay (every key's variable is derived from its path),
// check-config's dump and, through the dump, the documentation check.
//
// A Field binds a reference into the Config (or one Upstream) it was made
// for: build the table for the object being filled or shown, use it, drop it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/value.h"
#include "core/cidr.h"
#include "core/units.h"

namespace spoolgate::config {

using Errors = std::vector<std::string>;

// Collects errors; reads typed values (the message names what was expected).
class Parser {
 public:
  Errors errors;

  void err(const Value& v, const std::string& path, const std::string& what) {
    errors.push_back(v.origin + ": " + path + ": " + what);
  }
  bool scalar(const Value& v, const std::string& path, std::string_view expected);
  void str(const Value& v, const std::string& path, std::string& out);
  void size(const Value& v, const std::string& path, std::uint64_t& out);
  void duration(const Value& v, const std::string& path, Millis& out);
  void count(const Value& v, const std::string& path, std::uint64_t& out, std::uint64_t min = 1,
             std::uint64_t max = UINT64_MAX);
  void number(const Value& v, const std::string& path, double& out, double lo, double hi);
  void boolean(const Value& v, const std::string& path, bool& out);
  // The scalar items of a list (null: none; one scalar: itself; anything
  // else an error).
  std::vector<const Value*> items(const Value& v, const std::string& path);
  // One of `names` (case-insensitive): its index, or -1 after an error.
  int word(const Value& v, const std::string& path, const std::vector<std::string_view>& names);
};

using Setter = std::function<void(Parser&, const Value&, const std::string& path)>;

struct Field {
  std::string path;   // dotted, from the section's root
  bool list = false;  // the environment form is comma-separated
  Setter set;
  std::function<std::string()> show;  // the current value as YAML text
};
using Table = std::vector<Field>;

// The makers: one line per key in a section's table.
Field text(std::string path, std::string& out);
Field size(std::string path, std::uint64_t& out);
Field duration(std::string path, Millis& out);
Field count(std::string path, std::uint64_t& out, std::uint64_t min = 1, std::uint64_t max = UINT64_MAX);
Field number(std::string path, double& out, double lo, double hi);
Field boolean(std::string path, bool& out);
// A list of addresses or networks (192.168.1.0/24, ::1/128); *explicit_set
// becomes true when the key is given.
Field networks(std::string path, std::vector<Cidr>& out, bool* explicit_set = nullptr);
// One value or a list of them, each trimmed and not empty.
Field strings(std::string path, std::vector<std::string>& out);
Field custom(std::string path, bool list, Setter set, std::function<std::string()> show);

// One of several words, each naming a value of E.
template <class E>
Field choice(std::string path, E& out, std::vector<std::pair<std::string_view, E>> opts) {
  std::vector<std::string_view> names;
  names.reserve(opts.size());
  for (const auto& o : opts) names.push_back(o.first);
  return custom(
      std::move(path), false,
      [&out, opts, names](Parser& p, const Value& v, const std::string& at) {
        int i = p.word(v, at, names);
        if (i >= 0) out = opts[static_cast<std::size_t>(i)].second;
      },
      [&out, opts] {
        for (const auto& o : opts)
          if (o.second == out) return std::string(o.first);
        return std::string("?");
      });
}

// YAML text helpers for show(): a quoted string, a flow list of strings.
std::string quoted(const std::string& s);
std::string quoted_list(const std::vector<std::string>& v);

// Reads the map `map` (at `prefix`) into the table's fields, recursing into
// sub-maps; `special` may claim a key first (returns true). An unknown key
// is an error listing the keys expected there (`extra`: more top-level names).
void walk(Parser& p, const Value& map, const std::string& prefix, const Table& keys,
          const std::function<bool(const std::string&, const Value&)>& special,
          const std::vector<std::string>& extra = {});

// The table's values as YAML, `indent` spaces in; the groups named in
// `flow` ("delivery.retry") on one line each.
std::string render(const Table& t, const std::vector<std::string>& flow, int indent = 0);

}  // namespace spoolgate::config
