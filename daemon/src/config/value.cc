// SPDX-License-Identifier: MIT
#include "config/value.h"

#include <yaml-cpp/yaml.h>

#include "core/text.h"

namespace spoolgate::config {
namespace {

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

std::string syntax_error(const std::string& name, const YAML::Exception& e) {
  return name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg;
}

}  // namespace

Value* Value::find(std::string_view key) {
  for (auto& [k, v] : map)
    if (k == key) return &v;
  return nullptr;
}

const Value* Value::find(std::string_view key) const { return const_cast<Value*>(this)->find(key); }

Value& Value::child(const std::string& key, const std::string& origin_if_new) {
  if (kind != Map) {
    kind = Map;
    map.clear();
  }
  if (Value* v = find(key)) return *v;
  map.push_back(Entry{key, Value{Null, "", {}, {}, origin_if_new}});
  return map.back().second;
}

tl::expected<Value, std::string> parse_yaml(const std::string& text, const std::string& name) {
  try {
    return from_yaml(YAML::Load(text), name);
  } catch (const YAML::Exception& e) {
    return tl::unexpected(syntax_error(name, e));
  }
}

tl::expected<Value, std::string> parse_yaml_file(const std::string& path) {
  try {
    return from_yaml(YAML::LoadFile(path), path);
  } catch (const YAML::BadFile&) {
    return tl::unexpected(path + ": cannot read the configuration file");
  } catch (const YAML::Exception& e) {
    return tl::unexpected(syntax_error(path, e));
  }
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

}  // namespace spoolgate::config
