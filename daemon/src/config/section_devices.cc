// SPDX-License-Identifier: MIT
// devices: names for the devices that send through the relay, and what each
// may do. A device is whoever logs in with that name, or a client from its
// networks that does not log in.
#include <set>

#include "config/sections.h"
#include "core/text.h"

namespace spoolgate::config {
namespace {

bool sender_pattern(std::string_view s) {
  auto at = s.find('@');
  if (at == std::string_view::npos || s.find('@', at + 1) != std::string_view::npos) return false;
  if (at + 1 >= s.size() || s.find_first_of(" <>\t\r\n,") != std::string_view::npos) return false;
  return true;
}

}  // namespace

Table device_fields(Device& d) {
  return {
      text("name", d.name),
      networks("networks", d.networks),
      custom(
          "senders", true,
          [&d](Parser& p, const Value& v, const std::string& path) {
            d.senders.clear();
            for (const Value* e : p.items(v, path)) {
              std::string_view s = trim(e->scalar);
              if (!sender_pattern(s))
                p.err(*e, path,
                      "expected an address (scanner@example.com) or a domain (@example.com), got '" + e->scalar + "'");
              else
                d.senders.emplace_back(s);
            }
          },
          [&d] { return quoted_list(d.senders); }),
      text("rewrite_from", d.rewrite_from),
      size("max_message_size", d.max_message_size),
      count("rate_limit", d.rate_limit, 0, 1000000),
      strings("upstream", d.upstream),  // one name, or a list of them (failover in order)
  };
}

void devices_check(Check& k, Config& c) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < c.devices.size(); ++i) {
    const Device& d = c.devices[i];
    std::string at = "devices[" + std::to_string(i) + "]";
    if (!valid_device_name(d.name))
      k.err(at + ".name", "a device name is 1 to 64 of A-Z a-z 0-9 . _ @ + - (as in a users_file)");
    else if (!seen.insert(d.name).second)
      k.err(at + ".name", "'" + d.name + "' is listed twice");
    if (!d.rewrite_from.empty() && !sender_pattern(d.rewrite_from))
      k.err(at + ".rewrite_from", "expected an address, got '" + d.rewrite_from + "'");
    check_upstream_names(k, c, at + ".upstream", d.upstream);
  }
}

void check_upstream_names(Check& k, const Config& c, const std::string& key, const std::vector<std::string>& names) {
  std::set<std::string> listed;
  for (const auto& name : names) {
    bool known = false;
    for (const auto& u : c.upstreams) known = known || u.name == name;
    if (!known) {
      std::string why = "no upstream is named '";
      why.append(name).append("' (give one upstreams[].name: ").append(name).append(")");
      k.err(key, why);
    } else if (!listed.insert(name).second) {
      k.err(key, "'" + name + "' is listed twice");
    }
  }
}

}  // namespace spoolgate::config
