// SPDX-License-Identifier: MIT
// delivery: sessions to the upstreams, retries, lifetime, stage timeouts.
#include "config/sections.h"

namespace spoolgate::config {

Table delivery_fields(Config& c) {
  auto& d = c.delivery;
  auto& t = d.timeouts;
  return {
      count("delivery.max_connections", d.max_connections),
      count("delivery.messages_per_connection", d.messages_per_connection),
      duration("delivery.idle_hold", d.idle_hold),
      duration("delivery.retry.first", d.retry.first),
      duration("delivery.retry.max", d.retry.max),
      number("delivery.retry.factor", d.retry.factor, 1, 100),
      number("delivery.retry.jitter", d.retry.jitter, 0, 1),
      duration("delivery.max_lifetime", d.max_lifetime),
      boolean("delivery.bounce", d.bounce),
      // RFC 5321 4.5.3.2: a timeout per stage.
      duration("delivery.timeouts.connect", t.connect),
      duration("delivery.timeouts.greeting", t.greeting),
      duration("delivery.timeouts.mail", t.mail),
      duration("delivery.timeouts.rcpt", t.rcpt),
      duration("delivery.timeouts.data", t.data),
      duration("delivery.timeouts.block", t.block),
      duration("delivery.timeouts.done", t.done),
  };
}

void delivery_check(Check& k, Config& c) {
  if (c.delivery.idle_hold > Millis(300'000))
    k.err("delivery.idle_hold", "expected at most 5m (servers close idle sessions after 5 minutes, RFC 5321 4.5.3.2.7)");
  if (c.delivery.retry.max < c.delivery.retry.first)
    k.err("delivery.retry.max", "must not be shorter than delivery.retry.first");
}

}  // namespace spoolgate::config
