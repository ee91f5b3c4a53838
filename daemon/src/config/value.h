// SPDX-License-Identifier: MIT
// config/value: the YAML value layer. A configuration value (scalar, list
// or map, keys in the order written) with where it came from: "file:line"
// for YAML, "$SPOOLGATE_X" for the environment. The schema works on these,
// never on yaml-cpp nodes; this is the only file that includes yaml-cpp.
//
// parse_yaml() fails with "file:line: YAML syntax error: ..." (also for
// text that is not UTF-8 and nesting deeper than 32 levels, which an alias
// that refers to itself would otherwise recurse into); it throws nothing.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace spoolgate::config {

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
  const Value* find(std::string_view key) const;
  // The child `key` of this map (made a map, and the child made, as needed).
  Value& child(const std::string& key, const std::string& origin_if_new);
};

struct Value::Entry {
  std::string first;
  Value second;
};

// YAML text (from `name`) or a file (path) as a Value; an error message
// naming the file and line when it does not parse.
tl::expected<Value, std::string> parse_yaml(const std::string& text, const std::string& name);
tl::expected<Value, std::string> parse_yaml_file(const std::string& path);

// The environment variable of a key path: SPOOLGATE_ + upper case, dots
// to underscores (spool.dir -> SPOOLGATE_SPOOL_DIR).
std::string env_name(const std::string& path);
// A variable's text as a Value: a scalar, or (list) comma-separated items.
Value env_value(const std::string& name, const std::string& text, bool list);

}  // namespace spoolgate::config
