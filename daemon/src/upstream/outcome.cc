// SPDX-License-Identifier: MIT
#include "upstream/outcome.h"

#include "scheduler/scheduler.h"

namespace spoolgate::upstream {

Verdict decide(spool::Record& rec, const std::vector<std::string>& failed, const scheduler::Scheduler& sched,
               std::int64_t now_ms, bool round_goes_on) {
  Verdict v;
  if (rec.all_done()) {
    // A recipient that failed for good in an earlier attempt is reported
    // too, when the last of the others is done.
    bool any_failed = false;
    for (std::size_t i = 0; i < rec.rcpt_state.size(); ++i) {
      if (rec.rcpt_state[i] != spool::Record::RcptState::Failed) continue;
      any_failed = true;
      if (failed.empty()) v.reason += (v.reason.empty() ? "<" : "; <") + rec.recipients[i] + ">: " + rec.rcpt_reply[i];
    }
    v.action = any_failed ? Verdict::Action::Fail : Verdict::Action::Remove;
    for (const auto& f : failed) v.reason += (v.reason.empty() ? "" : "; ") + f;
    return v;
  }
  if (sched.expired(rec.id, now_ms)) return expire(rec);
  v.due = round_goes_on ? now_ms : sched.due_after(rec.attempts, now_ms);
  rec.next_attempt = v.due / 1000;
  return v;
}

Verdict expire(spool::Record& rec) {
  Verdict v;
  v.action = Verdict::Action::Fail;
  v.expired = true;
  v.reason = "delivery time expired (delivery.max_lifetime) with " + std::to_string(rec.pending().size()) +
             " recipient(s) pending; last error: " + (rec.last_error.empty() ? "none" : rec.last_error);
  for (std::size_t i : rec.pending()) rec.rcpt_state[i] = spool::Record::RcptState::Failed;
  return v;
}

Persisted persist(const std::shared_ptr<spool::Spool>& spool, const spool::Record& rec, const Verdict& v,
                  const FailOptions& fo) {
  Persisted out;
  switch (v.action) {
    case Verdict::Action::Remove:
      out.result = spool->remove(rec.id);
      break;
    case Verdict::Action::Fail: {
      FailOptions o = fo;
      o.expired = v.expired;
      auto r = fail_message(spool, rec, v.reason, o);
      if (r)
        out.report = std::move(*r);
      else
        out.result = tl::unexpected(r.error());
      break;
    }
    case Verdict::Action::Defer:
      out.result = spool->write_state(rec);
      break;
  }
  return out;
}

}  // namespace spoolgate::upstream
