// SPDX-License-Identifier: MIT
#include "upstream/policy.h"

namespace spoolgate::upstream {

namespace {

// Which site trouble wins when replies disagree: our account's (it needs a
// person) over a request to slow down over nothing; the first of a rank.
int rank(Assessment::Site s) {
  switch (s) {
    case Assessment::Site::None:
      return 0;
    case Assessment::Site::Throttled:
      return 1;
    case Assessment::Site::Misconfigured:
    case Assessment::Site::Quota:
      return 2;
  }
  return 0;
}

}  // namespace

Assessment assess(spool::Record& rec, const std::vector<std::size_t>& attempt_rcpts,
                  const std::vector<smtp::Reply>& replies, const std::vector<smtp::Trouble>& classes) {
  Assessment a;
  auto site = [&a](Assessment::Site s, const std::string& why) {
    if (rank(s) <= rank(a.site)) return;
    a.site = s;
    a.site_reason = why;
  };
  for (std::size_t k = 0; k < attempt_rcpts.size() && k < replies.size(); ++k) {
    std::size_t i = attempt_rcpts[k];
    const smtp::Reply& r = replies[k];
    smtp::Trouble t = k < classes.size() ? classes[k] : smtp::classify(r);
    std::string summary = r.summary();
    rec.rcpt_reply[i] = summary;
    switch (t) {
      case smtp::Trouble::Positive:
        rec.rcpt_state[i] = spool::Record::RcptState::Delivered;
        a.any_delivered = true;
        continue;
      case smtp::Trouble::Misconfigured:
        // Invariant 8: our credentials, account or quota, not the
        // recipient: the recipient stays pending, whatever the reply's class.
        site(Assessment::Site::Misconfigured, summary);
        break;
      case smtp::Trouble::Quota:
        site(Assessment::Site::Quota, summary);
        break;
      case smtp::Trouble::Throttled:
        site(Assessment::Site::Throttled, summary);
        break;
      case smtp::Trouble::Permanent:
        rec.rcpt_state[i] = spool::Record::RcptState::Failed;
        a.failed.push_back("<" + rec.recipients[i] + ">: " + summary);
        break;
      case smtp::Trouble::Temporary:
        break;
    }
    if (a.last_error.empty()) a.last_error = summary;
  }
  ++rec.attempts;
  if (!a.last_error.empty()) rec.last_error = a.last_error;
  return a;
}

Judgement judge(const smtp::Failure& f, bool dot_sent, bool content_started, bool other_usable) {
  Judgement j;
  j.site = f.site;
  j.duplicate_risk = dot_sent;
  // A refused login defers the message (its site is marked down, so the
  // next attempt goes to the next usable upstream); content on the wire
  // means the server saw part of it: defer, do not race another upstream.
  j.failover = f.kind != smtp::Failure::Auth && !content_started && other_usable;
  return j;
}

}  // namespace spoolgate::upstream
