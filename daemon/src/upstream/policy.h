// SPDX-License-Identifier: MIT
// upstream/policy: what one attempt means, decided without I/O.
//
// In the spirit of Postfix's smtp_trouble.c: replies or a failure in, a
// decision out. assess() takes the replies an attempt got for its
// recipients and records each recipient's fate in the spool record
// (delivered, failed for good, or still pending), and says what the attempt
// means for the site: nothing, slow down (throttled: back the upstream off),
// our account is wrong (re-authorisation or a fix is needed), or our sending
// quota is spent (held until it resets). judge() does the same for a
// failure of the session itself (connection, TLS, protocol, timeout): is it
// the site's trouble, may the message go to the next upstream at once, and
// could the server have the message already.
//
// The reply classes are smtp/trouble.h's table. An HTTP API upstream
// produces the same Assessment from its answers, so every kind of upstream
// ends an attempt through one path: assess or judge here, then
// Delivery::record (persist, then tell the scheduler) or hand back.
//
// Pure: no clock, no scheduler, no spool I/O; unit-tested row by row.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/units.h"
#include "smtp/client.h"
#include "smtp/reply.h"
#include "smtp/trouble.h"
#include "spool/record.h"

namespace spoolgate::upstream {

struct Assessment {
  // What the attempt means for the upstream as a whole.
  enum class Site {
    None,           // the replies were about recipients only
    Throttled,      // the server asked us to slow down: site backoff
    Misconfigured,  // credentials, SMTP AUTH off, send-as denied: an operator must act
    Quota,          // the account's sending quota is spent: held until it resets
  };
  Site site = Site::None;
  std::string site_reason;          // the reply that said so (the first one)
  bool any_delivered = false;       // some recipient took it: the site works
  std::vector<std::string> failed;  // "<rcpt>: reply" for each recipient failed for good
  std::string last_error;           // the first reply that was not positive
  // Throttled: how long the server asked us to wait (an API's
  // Retry-After); none: the site backoff's own.
  std::optional<Millis> site_wait;
  // Any site trouble ends the session after this message (QUIT).
  bool end_session() const { return site != Site::None; }
};

// rec: the message; attempt_rcpts[k]: the index in rec of the attempt's k-th
// recipient, whose deciding reply is replies[k] (fewer replies than
// recipients leave the rest pending). Updates rec's recipient states and
// replies, counts the attempt and keeps last_error. classes: when given,
// the class of each reply (an API upstream's table decides it, api/answer.h);
// otherwise smtp::classify reads it from the reply.
Assessment assess(spool::Record& rec, const std::vector<std::size_t>& attempt_rcpts,
                  const std::vector<smtp::Reply>& replies, const std::vector<smtp::Trouble>& classes = {});

struct Judgement {
  bool site = false;            // mark the upstream failing (backoff)
  bool failover = false;        // hand the message to the next upstream now, untouched
  bool duplicate_risk = false;  // the final dot went out unanswered: the server may have it
};

// A session failure. dot_sent: the end of data went out and its reply did
// not come; content_started: any content went out (then the message is
// deferred, never moved mid-transaction to another upstream); other_usable:
// another upstream could take the message now.
Judgement judge(const smtp::Failure& f, bool dot_sent, bool content_started, bool other_usable);

}  // namespace spoolgate::upstream
