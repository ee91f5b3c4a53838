// SPDX-License-Identifier: MIT
// smtp/trouble: what a provider's reply means for us, in one table.
//
// A reply about the recipient or the message decides that recipient's fate
// (5xx fails it, 4xx retries it). A reply about *our* side — credentials,
// the account, its sending quota, the sender it may use — must never fail
// the message (invariant 8): a device cannot read a bounce, and the mail is
// fine once the operator fixes the account. Those defer the message, back
// the upstream off (a Quota reply holds the account's mail until its window
// opens: upstream/delivery.h), and raise a health state until a delivery
// gets through.
//
//   row  what the reply carries                               class
//   1    code 530 (any stage)                                 Misconfigured   authentication required
//   2    code 535 (any stage)                                 Misconfigured   credentials refused
//   3    status x.7.57                                        Misconfigured   M365: client not authenticated
//   4    status x.7.30                                        Misconfigured   M365: basic authentication not supported
//   5    status x.7.139, or x.7.12                            Misconfigured   M365: SMTP AUTH disabled / unsuccessful;
//                                                                         RFC 4954: a password transition is needed
//   6    status x.7.60, or text "SendAsDenied"                Misconfigured   not allowed to send as this sender
//   7    text "QuotaExceeded" (M365 SubmissionQuotaExceeded)  Quota           the account's daily sending limit
//   8    status 5.4.5 or text "sending limit"/"sending quota" Quota           Gmail: daily sending limit;
//        or "daily message quota" / "daily SMTP relay limit"                SES's daily quota, Google's relay's
//   9    code 432, or status 4.7.0 / 4.3.2, or text           Throttled       slow down: back the site off
//        "maximum sending rate" / "relay limit exceeded" (a 4xx)              (SES's rate, Google's relay's peak)
//   10   any other 4xx                                        Temporary       retry this recipient later
//   11   any other 5xx                                        Permanent       fail this recipient
//   12   2xx / 3xx                                            Positive
//
// Rows are tried in order; text matches ignore case. Pure: no I/O.
#pragma once

#include <string_view>

#include "smtp/reply.h"

namespace spoolgate::smtp {

enum class Trouble { Positive, Temporary, Permanent, Throttled, Misconfigured, Quota };

std::string_view to_string(Trouble t);
Trouble classify(const Reply& r);
// Misconfigured or Quota: our side, never the message's fault.
inline bool ours(Trouble t) { return t == Trouble::Misconfigured || t == Trouble::Quota; }

}  // namespace spoolgate::smtp
