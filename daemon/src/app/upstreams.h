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
scheduler::Policy scheduler_policy(const config::Config& cfg);

}  // namespace spoolgate::app
