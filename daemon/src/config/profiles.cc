// SPDX-License-Identifier: MIT
// The providers' published limits, the defaults of upstreams[].limits
// (README "Provider profiles" has the table with each figure's source).
#include "config/config.h"

namespace spoolgate::config {

UpstreamLimits profile_limits(Provider p) {
  constexpr std::uint64_t kMiB = 1ULL << 20;
  UpstreamLimits l{0, 0, 0, 0, 0, 0, Millis(3'600'000)};
  switch (p) {
    case Provider::Generic:
      break;
    case Provider::Microsoft365:
      // Exchange Online limits: 3 concurrent SMTP AUTH connections per
      // mailbox (432 4.3.2 beyond), 30 messages a minute, 10,000
      // recipients a rolling day, 35 MB default send size.
      l.max_connections = 3;
      l.messages_per_minute = 30;
      l.recipients_per_day = 10000;
      l.max_message_size = 35 * kMiB;
      break;
    case Provider::Gmail:
      // Gmail (consumer) sending limits: 500 messages and 500 recipients a
      // rolling day, 25 MB messages.
      l.messages_per_day = 500;
      l.recipients_per_day = 500;
      l.max_message_size = 25 * kMiB;
      break;
    case Provider::GoogleWorkspace:
      // Gmail sending limits in Google Workspace: 2,000 messages and 10,000
      // recipients a rolling day, 25 MB messages.
      l.messages_per_day = 2000;
      l.recipients_per_day = 10000;
      l.max_message_size = 25 * kMiB;
      break;
    case Provider::Ses:
      // Amazon SES quotas of a new (sandbox) account: 1 message a second,
      // 200 a rolling day; 40 MB messages. A production account has its own
      // figures (the console's "Sending quota"): set them.
      l.messages_per_second = 1;
      l.messages_per_day = 200;
      l.max_message_size = 40 * kMiB;
      break;
  }
  return l;
}

std::string_view to_string(Provider p) {
  switch (p) {
    case Provider::Generic:
      return "generic";
    case Provider::Microsoft365:
      return "microsoft365";
    case Provider::Gmail:
      return "gmail";
    case Provider::GoogleWorkspace:
      return "google-workspace";
    case Provider::Ses:
      return "ses";
  }
  return "?";
}

}  // namespace spoolgate::config
