// SPDX-License-Identifier: MIT
// app/routes: the configuration's routes as one routing::Table, shared by
// the listener (a recipient no rule takes is refused at RCPT) and delivery
// (which upstreams carry each recipient), and what check-config says of it.
//
// The rules, in order: one {device: X, upstream: ...} for each device that
// names its upstreams, then routes[]; without routes[] but with device
// upstreams, a last rule sends the rest through every upstream in order.
// Neither: the table is trivial and nothing routes per message.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "routing/routes.h"

namespace spoolgate::app {

std::shared_ptr<const routing::Table> routing_table(const config::Config& cfg);
// The table as check-config prints it (comment lines: each rule, what it
// matches, where it sends; rules an earlier one shadows flagged), "" when
// trivial.
std::string route_report(const config::Config& cfg);
// The shadowed rules, one line each (logged at start).
std::vector<std::string> route_warnings(const config::Config& cfg);

}  // namespace spoolgate::app
