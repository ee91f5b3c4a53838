// SPDX-License-Identifier: MIT
// api/answer: what a Microsoft Graph or Gmail API answer means, as the SMTP
// reply it stands for, in one table, so that an API upstream ends its
// attempts through the same path as an SMTP one (upstream/policy.h:
// assess, smtp/trouble.h's classes).
//
//   row  the answer                                      reply                 class (smtp/trouble.h)
//   1    2xx                                             250 2.0.0             Positive: delivered
//   2    401                                             535 5.7.8             Misconfigured; the caller first
//                                                                              gets one fresh token and retries
//   3    403, 429 or 503 whose error names a quota        550 5.4.5             Quota: held until the window
//        (Graph ErrorQuotaExceeded / ...SubmissionQuota...,                   reopens (limits.quota_wait)
//        Gmail dailyLimitExceeded / quotaExceeded)
//   4    429, or 503, or 403 whose error names a rate     432 4.7.0             Throttled: site backoff, for
//        (Gmail rateLimitExceeded / userRateLimitExceeded,                    Retry-After when it is given
//        Graph ApplicationThrottled / MailboxConcurrency)
//   5    403 otherwise, 404                               530 5.7.0             Misconfigured: no Mail.Send
//                                                                              permission, no such mailbox,
//                                                                              send-as denied
//   6    413                                             552 5.3.4             Permanent: too large for the API
//   7    400, 422 and any other 4xx but 408              554 5.6.0             Permanent: the API refused this
//                                                                              message (its error in the DSN)
//   8    408, any 5xx but 503, any other status          451 4.4.0             Temporary: retried
//
// The reply's text names the API, the status, the API's error code and
// message (never a header or a token) and the request id. Transport errors
// (no answer: connect, TLS, timeout) are not rows: they are a session
// failure (upstream/policy.h: judge), like a lost SMTP connection.
//
// Pure; unit-tested row by row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/units.h"
#include "http/wire.h"
#include "smtp/reply.h"
#include "smtp/trouble.h"

namespace spoolgate::api {

enum class Kind { Graph, Gmail };

struct Meaning {
  smtp::Reply reply;
  // The row's class, decided by the table: the reply's text carries what
  // the API said, which must not move it to another class (assess() is
  // given this class instead of reading the text).
  smtp::Trouble trouble = smtp::Trouble::Temporary;
  std::optional<Millis> retry_after;  // Retry-After, when the answer gave one
  std::string request_id;             // request-id / x-request-id, or ""
  int row = 0;                        // the table's row, for tests and logs
};

// now_unix: for a Retry-After given as an HTTP date.
Meaning meaning(Kind k, const http::Response& r, std::int64_t now_unix);

}  // namespace spoolgate::api
