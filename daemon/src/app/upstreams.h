// SPDX-License-Identifier: MIT
// app/upstreams: the configuration's upstreams turned into what delivery and
// probe use: parsed URLs, TLS contexts, and secrets read from their files or
// the environment (here, once; never logged).
#pragma once

#include "config/config.h"
#include "core/result.h"
#include "scheduler/scheduler.h"
#include "upstream/delivery.h"

namespace spoolgate::app {

Result<upstream::Settings> delivery_settings_from(const config::Config& cfg);
// A secret from the environment variable `var`, checked like every secret;
// `key` (the config key that names the variable) goes into the error.
Result<std::string> secret_from_env(const std::string& var, const std::string& key);
scheduler::Policy scheduler_policy(const config::Config& cfg);
// The file name of an upstream's pacing counters under <spool>/pacing/.
std::string pacing_key(const config::Upstream& c);

}  // namespace spoolgate::app
