// SPDX-License-Identifier: MIT
// metrics: the Prometheus and health endpoint, and who may reach it.
#include "config/sections.h"
#include "config/url.h"

namespace spoolgate::config {

Table metrics_fields(Config& c) {
  auto& m = c.metrics;
  return {
      text("metrics.listen", m.listen),
      networks("metrics.allow_networks", m.allow_networks, &m.allow_networks_explicit),
      duration("metrics.unreachable_after", m.unreachable_after),
  };
}

void metrics_check(Check& k, Config& c) {
  if (c.metrics.listen.empty()) return;
  auto a = parse_listen_address(c.metrics.listen, false);
  if (!a)
    return k.err("metrics.listen",
                 "expected host:port or [v6]:port with an IP address, got '" + c.metrics.listen + "'");
  c.metrics.address = *a;
  // The queue's figures and upstream names are nobody else's business.
  auto ip = IpAddress::parse(a->host);
  if (ip && !ip->loopback() && !c.metrics.allow_networks_explicit)
    k.err("metrics.listen", "'" + c.metrics.listen +
                                "' is not a loopback address; set metrics.allow_networks explicitly to say who may "
                                "scrape it");
}

}  // namespace spoolgate::config
