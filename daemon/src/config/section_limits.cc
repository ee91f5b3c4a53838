// SPDX-License-Identifier: MIT
// limits: what one client and one message may take.
#include "config/sections.h"

namespace spoolgate::config {

Table limits_fields(Config& c) {
  auto& l = c.limits;
  return {
      size("limits.max_message_size", l.max_message_size),
      // Postfix's smtpd_recipient_limit is 1000; a device never needs more.
      count("limits.max_recipients", l.max_recipients, 1, kMaxRecipientsLimit),
      count("limits.max_connections", l.max_connections),
      count("limits.max_connections_per_client", l.max_connections_per_client),
      duration("limits.idle_timeout", l.idle_timeout),
      duration("limits.data_timeout", l.data_timeout),
      duration("limits.greeting_delay", l.greeting_delay),
      count("limits.max_bad_commands", l.max_bad_commands),
  };
}

void limits_check(Check& k, Config& c) {
  if (c.limits.max_message_size < 1024) k.err("limits.max_message_size", "expected at least 1KiB");
}

}  // namespace spoolgate::config
