// SPDX-License-Identifier: MIT
// config/sections: the sections of the file, one source file each
// (section_<name>.cc) holding its table of keys (config/schema.h) and the
// checks that need more than one key or the whole file. A new section is
// one new file and one row in sections(); config.cc drives them all:
// parse, environment overlay, checks, dump.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

namespace spoolgate::config {

// The checks' view of the parsed file: where a key was set, for errors.
class Check {
 public:
  Check(Parser& p, const Value& root, std::string source) : p_(p), root_(root), source_(std::move(source)) {}
  // The value at `key` (for its origin), or the file itself when unset.
  Value where(const std::string& key) const;
  void err(const std::string& key, const std::string& what) { p_.err(where(key), key, what); }
  Parser& parser() { return p_; }
  const Value& root() const { return root_; }

 private:
  Parser& p_;
  const Value& root_;
  std::string source_;
};

struct Section {
  const char* name;  // "" for the top-level keys
  Table (*fields)(Config&);
  void (*check)(Check&, Config&);
  std::vector<std::string> flow;  // groups check-config prints on one line
};

// In the order check-config prints them; the upstream list comes after
// the section named "headers".
const std::vector<Section>& sections();

Table general_fields(Config& c);
void general_check(Check& k, Config& c);
Table spool_fields(Config& c);
void spool_check(Check& k, Config& c);
Table limits_fields(Config& c);
void limits_check(Check& k, Config& c);
Table headers_fields(Config& c);
void headers_check(Check& k, Config& c);
Table delivery_fields(Config& c);
void delivery_check(Check& k, Config& c);
Table metrics_fields(Config& c);
void metrics_check(Check& k, Config& c);
Table log_fields(Config& c);

// upstreams: a list; each entry's keys, the checks of every entry, and the
// environment form of the first entry (SPOOLGATE_UPSTREAM_<KEY> and the
// short forms).
// Shown::Set leaves out the oauth block of an upstream without one (the
// dump); parsing and the environment know every key.
enum class Shown { All, Set };
Table upstream_fields(Upstream& u, Shown shown = Shown::All);
void upstreams_check(Check& k, Config& c);

// devices: a list, like upstreams (section_devices.cc).
Table device_fields(Device& d);
void devices_check(Check& k, Config& c);

// routes: a list, like devices (section_routes.cc). Rules an earlier one
// shadows are app's to find (routing/ knows how rules match).
Table route_fields(Route& r);
void routes_check(Check& k, Config& c);
// Each name must be an upstreams[].name, once: errors at `key`.
void check_upstream_names(Check& k, const Config& c, const std::string& key, const std::vector<std::string>& names);

// expect: device heartbeats, a list like devices (section_expect.cc).
Table expect_fields(Expect& e);
void expect_check(Check& k, Config& c);

// notify: a list like devices, and notify_thresholds (section_notify.cc).
Table notify_fields(NotifyTarget& t);
Table notify_thresholds_fields(Config& c);
void notify_check(Check& k, Config& c);
// The event names a notify entry may list ("all" besides).
const std::vector<std::string>& notify_events();

// An upstream's oauth block (section_oauth.cc): its keys, each under
// "oauth.", and its checks, which also fill in the provider's presets.
Table oauth_fields(OAuth& o);
void oauth_check(Parser& p, const Value& at, const std::string& path, Upstream& u);
struct EnvName {
  std::string key;       // the entry's key
  std::string variable;  // SPOOLGATE_...
  bool list = false;     // comma-separated
};
std::vector<EnvName> upstream_env_names();

}  // namespace spoolgate::config
