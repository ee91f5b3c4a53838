// SPDX-License-Identifier: MIT
// routing/routes: which upstreams may carry mail for one recipient. Pure
// logic, no I/O; owned by nobody but the value that holds it (a
// shared_ptr<const Table> handed to the listener and to delivery, rebuilt
// on a reload).
//
// A rule matches on the envelope sender, the recipient's domain, the
// client's address and the device (the keys of a rule are ANDed, the items
// of one key ORed; a rule without keys matches everything) and names a
// group: upstreams by index, failover in order. The first rule that matches
// a recipient decides. A table without rules is trivial: every recipient
// goes through every upstream, in order, and nothing here runs per message.
//
// Groups are known by a key, their upstreams' names joined with ","
// ("ses,m365"): a key stays meaningful across a reload that keeps the
// names, which indices do not. Delivery keeps with each queued message the
// keys of the groups it still has to visit, joined with ";" (a route
// string); the empty route string means "any upstream".
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cidr.h"

namespace spoolgate::routing {

struct Rule {
  std::vector<std::string> senders;            // globs ('*' any run), case-insensitive; "<>" the null sender
  std::vector<std::string> recipient_domains;  // globs on the part after the last '@'
  std::vector<Cidr> clients;                   // the client's address; "unix" (local submission) never matches
  std::vector<std::string> devices;            // device names
  std::vector<std::size_t> upstreams;          // the group, failover in order (not empty)
};

// What a rule looks at besides the recipient.
struct Mail {
  std::string_view sender;  // without brackets; "" the null sender
  std::string_view client;  // as the spool records it: "192.0.2.7", "::1", "unix"
  std::string_view device;  // "" none
};

// '*' matches any run of characters (none included); the rest compares
// case-insensitively.
bool glob_match(std::string_view pattern, std::string_view text);

// An earlier rule that matches every envelope `rules[i]` matches (so rule i
// is never used), or nullopt. Conservative: it may miss a shadowing that
// only several rules together make.
std::optional<std::size_t> shadowed_by(const std::vector<Rule>& rules, std::size_t i);

class Table {
 public:
  Table() = default;
  // names: the upstreams' names by index (for the keys).
  Table(std::vector<Rule> rules, const std::vector<std::string>& names);

  bool trivial() const { return rules_.empty(); }
  const std::vector<Rule>& rules() const { return rules_; }
  // The first rule that takes this recipient; nullopt: none.
  std::optional<std::size_t> match(const Mail& m, std::string_view rcpt) const;
  // Rule i's group and its key.
  const std::vector<std::size_t>& group(std::size_t rule) const { return rules_[rule].upstreams; }
  const std::string& key(std::size_t rule) const { return keys_[rule]; }
  // The group with this key, nullptr when no rule has it (a reload
  // dropped or renamed it).
  const std::vector<std::size_t>* group_of(std::string_view key) const;

 private:
  std::vector<Rule> rules_;
  std::vector<std::string> keys_;
};

// Route strings: group keys joined with ';'.
std::vector<std::string_view> route_keys(std::string_view route);
std::string join_route(const std::vector<std::string>& keys);

}  // namespace spoolgate::routing
